"""Severity, rule id, category and risk score for one event (the single scheme).

``classify`` only reads the event and the policy; it never trusts anything the event
says about itself (an attacker controls comm, paths and names).
"""

from __future__ import annotations

from collections.abc import Iterable
from fnmatch import fnmatchcase
from typing import Any

from .addr import parse_addr
from .config import SEVERITIES, Config, FilesConfig
from .globs import GlobGroup, GlobSet
from .identity import any_match, is_inspector

__all__ = [
    "classify",
    "severity_rank",
    "meets",
    "max_severity",
    "env_secret_names",
    "domain_matches",
    "is_loopback",
]

_RANK = {s: i for i, s in enumerate(SEVERITIES)}
# Risk bands per severity (inclusive); position inside the band says how specific the rule is.
_BANDS = {"low": (10, 30), "medium": (40, 60), "high": (70, 85), "critical": (90, 100)}

# Path classes checked in this order; the first that matches decides the category.
_SSH = GlobSet([
    "**/.ssh/*", "**/id_rsa", "**/id_dsa", "**/id_ecdsa", "**/id_ed25519", "**/id_*_sk",
    "**/ssh_host_*_key", "**/authorized_keys", "**/authorized_keys2",
])
_CLOUD = GlobSet([
    "**/.aws/credentials", "**/.config/gcloud/**", "**/.azure/**", "**/.kube/config",
    "**/kubeconfig",
])
_PRIVATE_KEY = GlobSet([
    "**/*.pem", "**/*.key", "**/*.p12", "**/*.pfx", "**/*.jks", "**/*.p8", "**/private.key",
])
_CREDENTIAL = GlobSet([
    "**/credentials.json", "**/.env", "**/.env.*", "**/.docker/config.json",
    "**/secrets.yaml", "**/secrets.yml", "**/.aws/config", "**/.git-credentials",
    "**/.npmrc", "**/.pypirc", "**/.netrc", "**/.vault-token", "**/service-account*.json",
    "**/*.kdbx", "/etc/shadow", "/etc/gshadow",
])
# Public material that happens to match key globs is not a secret.
_PUBLIC = GlobSet(["**/*.pub", "**/known_hosts", "**/known_hosts.old"])


def severity_rank(sev: Any) -> int:
    """0 (low) .. 3 (critical); -1 for anything unknown (hostile input never raises)."""
    if not isinstance(sev, str):
        return -1
    rank = _RANK.get(sev)   # the canonical spelling (every event the pipeline classified)
    return _RANK.get(sev.lower(), -1) if rank is None else rank


def meets(sev: Any, minimum: str) -> bool:
    """True if ``sev`` is at least ``minimum``. An unknown minimum is a programming error."""
    floor = severity_rank(minimum)
    if floor < 0:
        raise ValueError(f"unknown severity {minimum!r}")
    return severity_rank(sev) >= floor


def max_severity(*sevs: str) -> str:
    if len(sevs) == 2:   # the classifiers' case: a forced floor and the configured level
        a, b = sevs
        return a if severity_rank(a) >= severity_rank(b) else b
    return max(sevs, key=severity_rank)


def _risk(sev: str, position: float) -> int:
    lo, hi = _BANDS[sev]
    return lo + round((hi - lo) * min(max(position, 0.0), 1.0))


_RISKS: dict[tuple[str, float], int] = {}   # (severity, position) -> risk: a handful of pairs


def _set(ev: dict, sev: str, rule: str, category: str, position: float = 0.5) -> None:
    ev["severity"] = sev
    ev["rule"] = rule
    ev["category"] = category
    risk = _RISKS.get((sev, position))
    if risk is None:
        risk = _RISKS[(sev, position)] = _risk(sev, position)
    ev["risk"] = risk


def _s(ev: dict, key: str) -> str:
    v = ev.get(key)
    return v if isinstance(v, str) else ""


# --------------------------------------------------------------------------- file


# (category, forced severity) of each class's patterns, in order of precedence: public keys first.
_CLASSES = ((_PUBLIC, "watched", None), (_SSH, "ssh_key", "critical"),
            (_CLOUD, "cloud_credential", "critical"), (_PRIVATE_KEY, "private_key", "high"),
            (_CREDENTIAL, "credential", "high"))
# One regex pass over every class: the alternation tries patterns in precedence order.
_ALL_CLASSES = GlobSet([p for gs, _, _ in _CLASSES for p in gs.patterns])
_CLASS_OF = {p: (cat, forced) for gs, cat, forced in reversed(_CLASSES) for p in gs.patterns}


def _file_class(path: str) -> tuple[str, str | None]:
    """(category, forced severity) for a path; forced None = use file_access level."""
    return _class_of(_ALL_CLASSES.match(path))


def _class_of(pattern: str | None) -> tuple[str, str | None]:
    """(category, forced severity) of the class pattern a path matched (None: just watched)."""
    return _CLASS_OF[pattern] if pattern else ("watched", None)


_GROUPS: dict[int, tuple[FilesConfig, GlobGroup]] = {}


def file_patterns(files: FilesConfig) -> GlobGroup:
    """The policy's exclusions, reads and writes with the classes and public keys, as one
    group: confirmation and classification look a path up once (one group per config)."""
    hit = _GROUPS.get(id(files))
    if hit is None or hit[0] is not files:
        if len(_GROUPS) >= 16:
            _GROUPS.clear()
        hit = _GROUPS[id(files)] = (files, GlobGroup(
            (files.exclude_set, files.read_set, files.write_set, _ALL_CLASSES, _PUBLIC)))
    return hit[1]


def _classify_file(ev: dict, cfg: Config) -> None:
    # A watched inode reached under another name is judged by the name the policy gave it.
    path = _s(ev, "watched_path") or _s(ev, "path")
    access = ev.get("access") if ev.get("access") in ("write", "link", "rename") else "read"
    files = cfg.files
    levels = cfg.reporting.severity_levels
    cat_name = "file_access"

    excluded, read, write, cls, public = file_patterns(files).match(path)
    if excluded:
        _set(ev, "low", f"file.excluded.{access}", cat_name, 0.0)
        return
    if access == "write" and write:
        if public:
            _set(ev, levels["file_access"], "file.watched.write", cat_name, 0.5)
        else:
            _set(ev, "high", "file.key.write", cat_name, 0.7)
        return
    if not read:
        if ev.get("truncated"):
            # The kernel matched a path we could not see in full: never drop it silently.
            _set(ev, levels["file_access"], f"file.unconfirmed.{access}", cat_name, 0.3)
        else:
            _set(ev, "low", f"file.unwatched.{access}", cat_name, 0.0)
        return

    category, forced = _class_of(cls)
    rule = f"file.{category}.{access}"
    if forced is None:
        _set(ev, levels["file_access"], rule, cat_name, 0.5)
        return
    if any_match(files.allowed_processes, _s(ev, "comm"), _s(ev, "exe")):
        # Expected reader (e.g. ssh for its own key): keep the record, drop the alarm.
        _set(ev, "low", f"{rule}.allowed", cat_name, 0.5)
        return
    _set(ev, max_severity(forced, levels["file_access"]), rule, cat_name, _CLASS_POSITION[category])


_CLASS_POSITION = {"ssh_key": 1.0, "cloud_credential": 0.8, "private_key": 0.6, "credential": 0.5}


# --------------------------------------------------------------------------- memory


def _lists_fds(ev: dict) -> bool:
    """Opening another process's /proc/PID/fd directory: names of its files, not their data."""
    return ev.get("technique") == "proc_fd" and _s(ev, "path").endswith("/fd")


def _classify_memory(ev: dict, cfg: Config) -> None:
    mem = cfg.memory
    levels = cfg.reporting.severity_levels
    technique = _s(ev, "technique") or "unknown"
    target_comm = _s(ev, "target_comm")
    secrets = ev.get("secret_env_names") or []
    is_self = ev.get("target_pid") is not None and ev.get("target_pid") == ev.get("pid")
    position = {"proc_mem": 1.0, "process_vm_readv": 0.9, "process_vm_writev": 1.0,
                "ptrace": 0.8, "pidfd_getfd": 0.7, "proc_fd": 0.7, "proc_environ": 0.6,
                "proc_maps": 0.3}
    pos = position.get(technique, 0.5)

    if target_comm in mem.protected_processes and not is_self:
        # Exclusions never apply here: comm is attacker-chosen.
        _set(ev, "critical", f"memory.protected.{technique}", "memory_access", pos)
    elif is_self:
        _set(ev, "low", f"memory.self.{technique}", "memory_access", 0.0)
    elif any_match(mem.exclude_processes, _s(ev, "comm"), _s(ev, "exe")):
        _set(ev, "low", f"memory.excluded.{technique}", "memory_access", 0.2)
    elif (technique in ("proc_environ", "proc_maps") or _lists_fds(ev)) and is_inspector(_s(ev, "exe")):
        # ps/top/pgrep read every process's /proc entries as their job (lsof lists their fds).
        _set(ev, "low", f"memory.inspector.{technique}", "memory_access", 0.1)
    elif mem.alert_on_memory_access:
        _set(ev, levels["memory_access"], f"memory.{technique}", "memory_access", pos)
    else:
        _set(ev, "low", f"memory.{technique}", "memory_access", 0.5)

    if technique == "proc_environ" and secrets and ".inspector." not in ev["rule"]:
        floor = levels["secret_env_access"]
        if severity_rank(ev["severity"]) < severity_rank(floor):
            _set(ev, floor, "memory.secret_env", "secret_env_access", 0.8)
        elif not ev["rule"].startswith("memory.protected."):
            ev["rule"] = "memory.secret_env"
            ev["category"] = "secret_env_access"


# --------------------------------------------------------------------------- network


def is_loopback(daddr: str) -> bool:
    a = parse_addr(daddr)
    return a is not None and a.is_loopback


def domain_matches(domain: str | None, patterns: Iterable[str]) -> str | None:
    """Pattern that ``domain`` equals or is a subdomain of (case-insensitive), else None;
    a pattern "*.x" matches subdomains of x only."""
    if not domain or not isinstance(domain, str):
        return None
    d = domain.lower().rstrip(".")
    for p in patterns:
        if p.startswith("*."):
            if d.endswith(p[1:]):
                return p
        elif d == p or d.endswith("." + p):
            return p
    return None


def _blocked_severity(levels: dict[str, str]) -> str:
    """Severity of a blocked or block-listed connection: at least high (asked for only then)."""
    return max_severity("high", levels["blocked_connection"])


def _classify_network(ev: dict, cfg: Config) -> None:
    net = cfg.network
    levels = cfg.reporting.severity_levels
    addr = parse_addr(_s(ev, "daddr"))
    domain = ev.get("domain") if isinstance(ev.get("domain"), str) else None
    if ev.get("op") == "socket":
        # A raw/packet/ICMP/vsock socket: it sends without a destination the hooks could check.
        _set(ev, _blocked_severity(levels) if ev.get("action") == "blocked" else "high", "network.bypass_socket",
             "blocked_connection" if ev.get("action") == "blocked" else "network_connection", 0.9)
        return
    if ev.get("action") == "blocked":
        _set(ev, _blocked_severity(levels), "network.blocked", "blocked_connection", 1.0)
        return
    if addr is not None and any(addr in n for n in net.blocked_networks if n.version == addr.version):
        _set(ev, _blocked_severity(levels), "network.blocked_ip", "blocked_connection", 0.9)
        return
    if domain_matches(domain, net.blocked_domains):
        _set(ev, _blocked_severity(levels), "network.blocked_domain", "blocked_connection", 0.9)
        return
    if ev.get("not_allowed"):
        # The kernel's allowlist verdict (allow_loopback false makes loopback count too).
        _set(ev, "high", "network.not_allowed", "network_connection", 0.6)
        return
    if addr is not None and addr.is_loopback:
        _set(ev, "low", "network.loopback", "network_connection", 0.0)
        return
    if net.allowed_domains and not domain_matches(domain, net.allowed_domains):
        _set(ev, "high", "network.not_allowed", "network_connection", 0.6)
        return
    if net.monitored_ports and ev.get("dport") not in net.monitored_ports:
        _set(ev, "low", "network.unmonitored_port", "network_connection", 0.2)
        return
    if net.alert_on_any_connection:
        _set(ev, "high", "network.any", "network_connection", 0.4)
        return
    _set(ev, levels["network_connection"], "network.external", "network_connection", 0.5)


# --------------------------------------------------------------------------- process


def _classify_process(ev: dict, cfg: Config) -> None:
    # The record's operation is named differently by different producers; accept any.
    op = next((ev[k] for k in ("op", "action", "event", "type") if isinstance(ev.get(k), str)), "exec")
    op = op if op in ("exec", "exit", "fork") else "exec"
    _set(ev, "low", f"process.{op}", "process", 0.0 if op != "exec" else 0.2)


def _classify_tamper(ev: dict, cfg: Config) -> None:
    from .tamper import classify_tamper
    sev, rule = classify_tamper(ev)
    _set(ev, sev, rule, "tamper", 1.0 if sev == "critical" else 0.0)


_BY_KIND = {
    "file": _classify_file,
    "memory": _classify_memory,
    "network": _classify_network,
    "process": _classify_process,
    "tamper": _classify_tamper,
}


def classify(event: dict, cfg: Config) -> None:
    """Fill ``severity``, ``rule``, ``category`` and ``risk`` of ``event`` in place."""
    fn = _BY_KIND.get(event.get("kind"))  # type: ignore[arg-type]
    if fn is None:
        _set(event, "low", "unknown", "unknown", 0.0)
        return
    fn(event, cfg)


# --------------------------------------------------------------------------- environ


def env_secret_names(environ_bytes: bytes, patterns: Iterable[str]) -> list[str]:
    """Names (never values) of NUL-separated ``NAME=value`` entries matching any pattern."""
    pats = tuple(patterns)
    out: list[str] = []
    seen: set[str] = set()
    for entry in environ_bytes.split(b"\0"):
        name_b, sep, _value = entry.partition(b"=")
        if not sep or not name_b:
            continue  # no '=' or empty name: not a variable
        name = name_b.decode("utf-8", errors="backslashreplace")
        if name in seen:
            continue
        if any(fnmatchcase(name, p) for p in pats):
            seen.add(name)
            out.append(name)
    return out
