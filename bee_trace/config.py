"""Policy file (``.github/security.yml``): schema, defaults, validation, generation.

The schema is the original bee-trace one plus additive keys. Validation walks the
``yaml.compose`` node tree instead of loaded Python objects so every error can name
the file, the line and the dotted key path in a single line. Each key is declared once: its
dataclass field carries the validator and the comment (``setting()``), and both the schema and
the generated policy are built from the fields.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import yaml

from . import records as R
from .event import KINDS, SEVERITIES
from .globs import GlobError, GlobSet, glob_to_regex

__all__ = [
    "Config",
    "NetworkConfig",
    "FilesConfig",
    "MemoryConfig",
    "ReportingConfig",
    "PerformanceConfig",
    "AdvancedConfig",
    "EbpfParams",
    "ExperimentalConfig",
    "KindLimits",
    "ConfigError",
    "SEVERITIES",
    "SEVERITY_KEYS",
    "KINDS",
    "PROFILES",
    "DEFAULT_CONFIG_PATH",
    "load_config",
    "parse_config",
    "default_config",
    "generate_default_config",
]

DEFAULT_CONFIG_PATH = ".github/security.yml"
SEVERITY_KEYS = (
    "file_access",
    "network_connection",
    "blocked_connection",
    "memory_access",
    "secret_env_access",
)
BULK_KINDS = tuple(R.BULK_KINDS)   # the only kinds sampling and rate limits touch
PROFILES = ("max-coverage", "balanced", "max-performance")
MODES = ("audit", "block")


class ConfigError(Exception):
    """A policy problem, rendered as one line: ``file:line: key.path: what is wrong``."""

    def __init__(self, file: str, line: int | None, key: str, message: str) -> None:
        self.file = file
        self.line = line
        self.key = key
        self.message = message
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        text = f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"
        # One line, whatever the YAML parser or a hostile key put in the message.
        return " ".join(text.split())


# --------------------------------------------------------------------------- defaults

_DEFAULT_WATCH_READ_NAMES = (
    "credentials.json", "id_rsa", "id_dsa", "id_ecdsa", "id_ed25519", ".env", ".env.*",
    ".docker/config.json", "secrets.yaml", "secrets.yml", "private.key", "*.pem", "*.key",
    "*.p12", "*.pfx", "*.crt", "*.cer", "*.der", ".aws/credentials", ".aws/config",
    ".config/gcloud/*credentials*", ".azure/*", ".kube/config", "kubeconfig",
    ".git-credentials", ".npmrc", ".pypirc", ".netrc", ".vault-token",
    "service-account*.json", "authorized_keys", "ssh_host_*_key", "*.jks", "*.p8", "*.kdbx",
    ".ssh/id_*",
)
DEFAULT_WATCH_READ: tuple[str, ...] = tuple(
    f"**/{n}" for n in _DEFAULT_WATCH_READ_NAMES
) + ("/etc/shadow", "/etc/gshadow")
DEFAULT_WATCH_WRITE: tuple[str, ...] = tuple(
    f"**/{n}"
    for n in ("id_rsa", "id_dsa", "id_ecdsa", "id_ed25519", ".ssh/id_*", "*.pem", "*.key",
              "private.key", "authorized_keys")
)
# /tmp is deliberately not excluded: attackers stage files there and tests use temp dirs.
# Public CA trust stores are read by every TLS client: certificates, not secrets.
DEFAULT_EXCLUDE_PATHS: tuple[str, ...] = (
    "**/.git/**", "**/node_modules/**", "/etc/ssl/certs/**", "/usr/share/ca-certificates/**",
    "/etc/pki/ca-trust/**", "/usr/lib/ssl/certs/**", "**/certifi/cacert.pem",
)
DEFAULT_SECRET_ENV_PATTERNS: tuple[str, ...] = (
    "SECRET_*", "PASSWORD*", "PASSWD*", "TOKEN*", "KEY*", "API_KEY*", "*_SECRET",
    "*_PASSWORD", "*_TOKEN", "*_KEY", "GITHUB_TOKEN", "NPM_TOKEN", "DOCKER_PASSWORD",
    "AWS_SECRET_ACCESS_KEY", "AZURE_CLIENT_SECRET",
)
DEFAULT_PROTECTED_PROCESSES: tuple[str, ...] = (
    "Runner.Worker", "Runner.Listener", "sshd", "gpg-agent", "ssh-agent", "containerd",
    "dockerd",
)
DEFAULT_SEVERITY_LEVELS: dict[str, str] = {
    "file_access": "medium",
    "network_connection": "medium",
    "blocked_connection": "high",
    "memory_access": "high",
    "secret_env_access": "medium",
}


# --------------------------------------------------------------------------- validation

_T_STR = "tag:yaml.org,2002:str"
_T_INT = "tag:yaml.org,2002:int"
_T_FLOAT = "tag:yaml.org,2002:float"
_T_BOOL = "tag:yaml.org,2002:bool"
_T_NULL = "tag:yaml.org,2002:null"

_constructor = yaml.constructor.SafeConstructor()


class _Ctx:
    def __init__(self, source: str) -> None:
        self.source = source

    def err(self, node: yaml.Node | None, key: str, msg: str) -> ConfigError:
        line = node.start_mark.line + 1 if node is not None else None
        return ConfigError(self.source, line, key, msg)


Validator = Callable[[_Ctx, yaml.Node, str], Any]


def _kind_name(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    return {
        _T_STR: "a string", _T_INT: "an integer", _T_FLOAT: "a number", _T_BOOL: "a boolean",
        _T_NULL: "null",
    }.get(node.tag, f"a value of type {node.tag}")


def _scalar(ctx: _Ctx, node: yaml.Node, key: str, tags: tuple[str, ...], what: str) -> Any:
    if not isinstance(node, yaml.ScalarNode) or node.tag not in tags:
        raise ctx.err(node, key, f"expected {what}, got {_kind_name(node)}")
    try:
        return _constructor.construct_object(node)
    except (yaml.YAMLError, ValueError) as e:
        raise ctx.err(node, key, f"invalid {what}: {e}") from None


def v_bool(ctx: _Ctx, node: yaml.Node, key: str) -> bool:
    return bool(_scalar(ctx, node, key, (_T_BOOL,), "a boolean (true/false)"))


def v_only(required: bool, why: str) -> Validator:
    """An original-schema switch whose other value bee-trace cannot honour: refuse it openly
    instead of accepting a setting that would silently do nothing."""
    def check(ctx: _Ctx, node: yaml.Node, key: str) -> bool:
        value = v_bool(ctx, node, key)
        if value != required:
            raise ctx.err(node, key, f"must be {str(required).lower()}: {why}")
        return value
    return check


def v_int(lo: int | None = None, hi: int | None = None) -> Validator:
    def check(ctx: _Ctx, node: yaml.Node, key: str) -> int:
        v = _scalar(ctx, node, key, (_T_INT,), "an integer")
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            rng = f"{lo}..{hi}" if hi is not None else f">= {lo}"
            raise ctx.err(node, key, f"{v} is out of range ({rng})")
        return int(v)

    return check


def v_float(lo: float, hi: float, lo_open: bool = False) -> Validator:
    def check(ctx: _Ctx, node: yaml.Node, key: str) -> float:
        v = float(_scalar(ctx, node, key, (_T_INT, _T_FLOAT), "a number"))
        if v != v or v > hi or v < lo or (lo_open and v == lo):
            rng = f"{'(' if lo_open else '['}{lo:g}, {hi:g}]"
            raise ctx.err(node, key, f"{v:g} is out of range {rng}")
        return v

    return check


def v_str(ctx: _Ctx, node: yaml.Node, key: str) -> str:
    v = _scalar(ctx, node, key, (_T_STR,), "a string")
    if not v.strip():
        raise ctx.err(node, key, "empty string")
    return v


def v_enum(*choices: str) -> Validator:
    def check(ctx: _Ctx, node: yaml.Node, key: str) -> str:
        v = _scalar(ctx, node, key, (_T_STR,), f"one of {', '.join(choices)}")
        if v not in choices:
            raise ctx.err(node, key, f"{v!r} is not one of {', '.join(choices)}")
        return v

    return check


def v_version(ctx: _Ctx, node: yaml.Node, key: str) -> str:
    # Unquoted 4.18 is a YAML float; take the source text so "4.10" is not read as 4.1.
    if not isinstance(node, yaml.ScalarNode) or node.tag not in (_T_STR, _T_INT, _T_FLOAT):
        raise ctx.err(node, key, f"expected a version string like \"5.8\", got {_kind_name(node)}")
    v = str(node.value).strip()
    if not re.fullmatch(r"\d+(\.\d+){0,2}", v):
        raise ctx.err(node, key, f"{v!r} is not a kernel version like \"5.8\"")
    return v


def v_ip_or_cidr(ctx: _Ctx, node: yaml.Node, key: str) -> str:
    v = v_str(ctx, node, key).strip()
    try:
        ipaddress.ip_network(v, strict=False)
    except ValueError:
        raise ctx.err(node, key, f"{v!r} is not an IP address or CIDR") from None
    return v


def v_domain(ctx: _Ctx, node: yaml.Node, key: str) -> str:
    v = v_str(ctx, node, key).strip().lower().rstrip(".")
    if v.startswith("*."):
        v = v[2:]  # "*.example.com" means the same as "example.com" (suffix match)
    if not v or not re.fullmatch(r"[a-z0-9_]([a-z0-9_.-]*[a-z0-9_])?", v):
        raise ctx.err(node, key, f"{v!r} is not a domain name")
    return v


def v_domain_pattern(ctx: _Ctx, node: yaml.Node, key: str) -> str:
    """allowed_domains: "x" is x and its subdomains, "*.x" only its subdomains (kept as written)."""
    raw = v_str(ctx, node, key).strip().lower().rstrip(".")
    wildcard = raw.startswith("*.")
    v = raw[2:] if wildcard else raw
    if not v or not re.fullmatch(r"[a-z0-9_]([a-z0-9_.-]*[a-z0-9_])?", v) or ".." in v:
        raise ctx.err(node, key, f"{raw!r} is not a domain name or *.domain")
    return ("*." if wildcard else "") + v


def v_ip(ctx: _Ctx, node: yaml.Node, key: str) -> str:
    v = v_str(ctx, node, key).strip()
    try:
        ipaddress.ip_address(v.split("%", 1)[0])
    except ValueError:
        raise ctx.err(node, key, f"{v!r} is not an IP address") from None
    return v


def v_glob(ctx: _Ctx, node: yaml.Node, key: str) -> str:
    v = v_str(ctx, node, key)
    try:
        re.compile(glob_to_regex(v))
    except (GlobError, re.error) as e:
        raise ctx.err(node, key, f"invalid glob {v!r}: {e}") from None
    return v


def v_list(item: Validator) -> Validator:
    def check(ctx: _Ctx, node: yaml.Node, key: str) -> tuple[Any, ...]:
        if isinstance(node, yaml.ScalarNode) and node.tag == _T_NULL:
            return ()  # "key:" with nothing after it = empty list
        if not isinstance(node, yaml.SequenceNode):
            raise ctx.err(node, key, f"expected a list, got {_kind_name(node)}")
        return tuple(item(ctx, n, f"{key}[{i}]") for i, n in enumerate(node.value))

    return check


def _mapping_items(ctx: _Ctx, node: yaml.Node, key: str) -> list[tuple[str, yaml.Node, yaml.Node]]:
    if isinstance(node, yaml.ScalarNode) and node.tag == _T_NULL:
        return []
    if not isinstance(node, yaml.MappingNode):
        raise ctx.err(node, key, f"expected a mapping, got {_kind_name(node)}")
    seen: set[str] = set()
    out: list[tuple[str, yaml.Node, yaml.Node]] = []
    for knode, vnode in node.value:
        if not isinstance(knode, yaml.ScalarNode) or knode.tag == _T_NULL:
            raise ctx.err(knode, key, "keys must be plain names")
        name = str(knode.value)
        path = f"{key}.{name}" if key else name
        if name in seen:
            raise ctx.err(knode, path, "duplicate key")
        seen.add(name)
        out.append((name, knode, vnode))
    return out


# --------------------------------------------------------------------------- keys
# Every key is declared once, as a dataclass field that carries its validator ("check") and the
# comment of the generated policy ("doc"); the schema and `config generate` are built from them.


def setting(default: Any, check: Validator, doc: str) -> Any:
    """A policy key: its default, how its YAML is validated, and its comment."""
    return field(default=default, metadata={"check": check, "doc": doc})


def setting_factory(factory: Callable[[], Any], check: Validator, doc: str) -> Any:
    """A policy key whose default is a mutable value built per instance."""
    return field(default_factory=factory, metadata={"check": check, "doc": doc})


def section(cls: type, doc: str) -> Any:
    """A nested section: validated by its own fields, absent keys keep their defaults."""
    return field(default_factory=cls, metadata={"check": v_section(cls), "doc": doc})


def keys_of(cls: type) -> list[dataclasses.Field]:
    """The policy keys of a section (fields with a validator), in declaration order."""
    return [f for f in dataclasses.fields(cls) if "check" in f.metadata]


def v_section(cls: type) -> Validator:
    """A mapping with the key set of dataclass ``cls``, built into it; absent keys keep defaults."""

    def check(ctx: _Ctx, node: yaml.Node, key: str) -> Any:
        fields = {f.name: f.metadata["check"] for f in keys_of(cls)}
        kwargs: dict[str, Any] = {}
        for name, knode, vnode in _mapping_items(ctx, node, key):
            path = f"{key}.{name}" if key else name
            if name not in fields:
                raise ctx.err(
                    knode, path, f"unknown key (expected one of: {', '.join(fields)})"
                )
            kwargs[name] = fields[name](ctx, vnode, path)
        return cls(**kwargs)

    return check


# --------------------------------------------------------------------------- dataclasses
# Frozen, with tuples for lists; the two maps stay dicts (read-only by convention).

@dataclass(frozen=True)
class NetworkConfig:
    blocked_ips: tuple[str, ...] = setting(
        (), v_list(v_ip_or_cidr),
        "IP addresses or CIDR ranges; connections to them are high severity (and denied in block mode)")
    blocked_domains: tuple[str, ...] = setting(
        (), v_list(v_domain), "Domains (and their subdomains) to flag / block")
    allowed_domains: tuple[str, ...] = setting(
        (), v_list(v_domain_pattern),
        "If non-empty, connections to any other domain (or an unknown one) are high severity, and "
        "refused in block mode; 'x' = x and its subdomains, '*.x' = subdomains only")
    monitored_ports: tuple[int, ...] = setting(
        (), v_list(v_int(1, 65535)), "Only report these destination ports (empty = all ports)")
    alert_on_any_connection: bool = setting(
        False, v_bool, "Raise every outbound connection to high severity (air-gapped jobs)")
    mode: str = setting(
        "audit", v_enum(*MODES),
        "audit = report only; block = refuse blocked destinations, addresses outside the allowlist "
        "and raw/packet sockets in the kernel")
    report_loopback: bool = setting(False, v_bool, "Also report connections to 127.0.0.0/8 and ::1")
    # Egress policy (issue 10): enforced in the kernel in block mode.
    allowed_ips: tuple[str, ...] = setting(
        (), v_list(v_ip_or_cidr),
        "Addresses or CIDRs always allowed (with allowed_domains: the allowlist enforced in block mode)")
    dns_servers: tuple[str, ...] = setting(
        (), v_list(v_ip),
        "Resolvers the job may query and whose answers name destinations (default: nameservers of "
        "/etc/resolv.conf)")
    allow_loopback: bool = setting(
        True, v_bool, "Loopback destinations pass the allowlist (false: filtered like any other address)")
    fail_closed: bool = setting(
        False, v_bool,
        "Block mode: keep the enforcement attached (pinned in bpffs) if the agent dies; "
        "`bee-trace unblock` removes it")

    @cached_property
    def blocked_networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        return tuple(ipaddress.ip_network(x, strict=False) for x in self.blocked_ips)


@dataclass(frozen=True)
class FilesConfig:
    watch_read: tuple[str, ...] = setting(
        DEFAULT_WATCH_READ, v_list(v_glob), "Files whose opens (for reading) are reported")
    watch_write: tuple[str, ...] = setting(
        DEFAULT_WATCH_WRITE, v_list(v_glob),
        "Files whose opens for writing are reported (key tampering / persistence)")
    exclude_paths: tuple[str, ...] = setting(DEFAULT_EXCLUDE_PATHS, v_list(v_glob), "Paths never reported")
    allowed_processes: tuple[str, ...] = setting(
        (), v_list(v_str),
        "Programs allowed to read credentials without a high-severity finding: exe path globs, names "
        "of root-owned system binaries, or comm:NAME")

    # Compiled matchers, built once per config (cached_property writes __dict__ directly).
    @cached_property
    def read_set(self) -> GlobSet:
        return GlobSet(self.watch_read)

    @cached_property
    def write_set(self) -> GlobSet:
        return GlobSet(self.watch_write)

    @cached_property
    def exclude_set(self) -> GlobSet:
        return GlobSet(self.exclude_paths)


@dataclass(frozen=True)
class MemoryConfig:
    secret_env_patterns: tuple[str, ...] = setting(
        DEFAULT_SECRET_ENV_PATTERNS, v_list(v_str),
        "Environment variable NAME patterns treated as secrets (values are never recorded)")
    alert_on_memory_access: bool = setting(
        True, v_bool, "Report access to another process's memory at the memory_access severity")
    # Empty by default: comm names are attacker-chosen, so excluding "systemd" (as the
    # original example does) would hand attackers an easy bypass.
    exclude_processes: tuple[str, ...] = setting(
        (), v_list(v_str),
        "Accessing programs not reported (exe path globs, system binary names, or comm:NAME); never "
        "for protected targets")
    protected_processes: tuple[str, ...] = setting(
        DEFAULT_PROTECTED_PROCESSES, v_list(v_str), "Targets whose memory access is always critical")


def v_severity_levels(ctx: _Ctx, node: yaml.Node, key: str) -> dict[str, str]:
    levels = dict(DEFAULT_SEVERITY_LEVELS)
    sev = v_enum(*SEVERITIES)
    for name, knode, vnode in _mapping_items(ctx, node, key):
        path = f"{key}.{name}"
        if name not in SEVERITY_KEYS:
            raise ctx.err(knode, path, f"unknown key (expected one of: {', '.join(SEVERITY_KEYS)})")
        levels[name] = sev(ctx, vnode, path)
    return levels


@dataclass(frozen=True)
class ReportingConfig:
    include_stack_traces: bool = setting(
        False, v_only(False, "stack traces are not collected"),
        "Include stack traces for high-severity events")
    max_events_per_type: int = setting(
        100, v_int(0),
        "Events kept per kind in reports (counts stay exact; lowest severities are dropped first)")
    severity_levels: dict[str, str] = setting_factory(
        lambda: dict(DEFAULT_SEVERITY_LEVELS), v_severity_levels,
        "Severity per finding type: low, medium, high, critical")


@dataclass(frozen=True)
class KindLimits:
    """Per-kind overrides; None means "use the global performance value"."""

    sampling_rate: float | None = setting(
        None, v_float(0.0, 1.0, lo_open=True), "Fraction of this kind's events kept, 0 < x <= 1")
    max_events_per_second: int | None = setting(None, v_int(0), "Rate limit of this kind (0 = unlimited)")


_KIND_LIMITS = v_section(KindLimits)


def v_per_kind(ctx: _Ctx, node: yaml.Node, key: str) -> dict[str, KindLimits]:
    out: dict[str, KindLimits] = {}
    for name, knode, vnode in _mapping_items(ctx, node, key):
        path = f"{key}.{name}"
        if name not in KINDS:
            raise ctx.err(knode, path, f"unknown event kind (expected one of: {', '.join(KINDS)})")
        if name not in BULK_KINDS:
            raise ctx.err(knode, path, f"{name} events are security-critical and never sampled or "
                                       f"rate-limited (per-kind limits apply to: {', '.join(BULK_KINDS)})")
        out[name] = _KIND_LIMITS(ctx, vnode, path)
    return out


@dataclass(frozen=True)
class PerformanceConfig:
    event_buffer_size: int = setting(1024, v_int(1), "Event buffer size")
    sampling_rate: float = setting(1.0, v_float(0.0, 1.0, lo_open=True), "Fraction of bulk events kept, 0 < x <= 1")
    # applies to the bulk lane only
    max_events_per_second: int = setting(
        1000, v_int(0), "Bulk event rate limit (0 = unlimited); dropped events are counted")
    cpu_budget_percent: float = setting(
        5.0, v_float(0.0, 100.0, lo_open=True), "Target CPU use of the monitor, percent of one core")
    profile: str = setting("balanced", v_enum(*PROFILES), "max-coverage | balanced | max-performance")
    aggregation_window_ms: int = setting(
        1000, v_int(0), "Identical bulk events inside this window are counted, not sent (0 = off)")
    per_kind: dict[str, KindLimits] = setting_factory(
        dict, v_per_kind,
        "Per-kind overrides, bulk kinds only, e.g. network: {sampling_rate: 0.5, max_events_per_second: 200}")

    def limits_for(self, kind: str) -> tuple[float, int]:
        """Effective (sampling_rate, max_events_per_second) for an event kind."""
        k = self.per_kind.get(kind, KindLimits())
        rate = self.sampling_rate if k.sampling_rate is None else k.sampling_rate
        eps = self.max_events_per_second if k.max_events_per_second is None else k.max_events_per_second
        return rate, eps


@dataclass(frozen=True)
class EbpfParams:
    stack_trace_depth: int = setting(10, v_int(0, 127), "Stack frames per trace (stack traces are not collected)")
    max_entries_per_map: int = setting(
        10000, v_int(1), "Entries of the per-process and per-destination maps (aggregation, rate limits, "
        "learned names) and of the process cache")


@dataclass(frozen=True)
class ExperimentalConfig:
    uprobe_monitoring: bool = setting(False, v_only(False, "not implemented"), "Not implemented: must stay false")
    network_packet_inspection: bool = setting(
        False, v_only(False, "not implemented"), "Not implemented: must stay false")


@dataclass(frozen=True)
class AdvancedConfig:
    enable_core: bool = setting(
        True, v_only(True, "bee-trace's programs are CO-RE only"), "Use CO-RE (BTF) relocations")
    ebpf_params: EbpfParams = section(EbpfParams, "eBPF program parameters")
    min_kernel_version: str = setting("4.18", v_version, "Minimum kernel version")
    experimental: ExperimentalConfig = section(ExperimentalConfig, "Experimental features")


@dataclass(frozen=True)
class Config:
    network: NetworkConfig = section(
        NetworkConfig, "Outbound network monitoring (TCP connect, UDP send; IPv4 and IPv6)")
    files: FilesConfig = section(
        FilesConfig, "Secret file monitoring. Globs: ** = any number of directories, * and ? stay in one "
        "directory;\na pattern without a leading / matches at any depth")
    memory: MemoryConfig = section(
        MemoryConfig,
        "Access to other processes' memory (ptrace, process_vm_*, /proc/PID/{mem,maps,environ}, pidfd_getfd)")
    reporting: ReportingConfig = section(ReportingConfig, "Report content")
    performance: PerformanceConfig = section(
        PerformanceConfig,
        "Performance tuning (sampling and rate limits never apply to security-critical events)")
    advanced: AdvancedConfig = section(AdvancedConfig, "Advanced settings")
    # Path of the file the policy came from; None = built-in defaults. Not part of equality.
    source: str | None = field(default=None, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """Plain-data view (lists/dicts), e.g. for JSON metadata."""
        d = dataclasses.asdict(self)
        d.pop("source", None)
        return _untuple(d)


def _untuple(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _untuple(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_untuple(v) for v in x]
    return x


def default_config() -> Config:
    return Config()


_SCHEMA = v_section(Config)


def parse_config(text: str, source: str) -> Config:
    """Validate policy text; raise ConfigError (one line) on any problem."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark is not None else None
        msg = " ".join(x for x in (e.context, e.problem) if x) or "syntax error"
        raise ConfigError(source, line, "", f"invalid YAML: {msg}") from None
    except yaml.YAMLError as e:
        raise ConfigError(source, None, "", f"invalid YAML: {e}") from None
    if root is None:
        return Config(source=source)  # empty file: defaults
    if not isinstance(root, yaml.MappingNode) and not (
        isinstance(root, yaml.ScalarNode) and root.tag == _T_NULL
    ):
        raise ConfigError(source, root.start_mark.line + 1, "(top level)",
                          f"expected a mapping of sections, got {_kind_name(root)}")
    cfg: Config = _SCHEMA(_Ctx(source), root, "")
    if cfg.network.fail_closed and cfg.network.mode != "block":
        raise ConfigError(source, None, "network.fail_closed",
                          "needs network.mode: block (audit mode enforces nothing to keep)")
    return dataclasses.replace(cfg, source=source)


def load_config(path: str | None) -> Config:
    """Load a policy file; None means ./.github/security.yml if present, else defaults."""
    if path is None:
        if not os.path.isfile(DEFAULT_CONFIG_PATH):
            return Config()
        path = DEFAULT_CONFIG_PATH
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise ConfigError(path, None, "", f"cannot read: {e.strerror or e}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise ConfigError(path, line, "", "file is not valid UTF-8") from None
    return parse_config(text, path)


# --------------------------------------------------------------------------- generation

def _yaml_scalar(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    return json.dumps(v)  # a JSON string is a valid YAML double-quoted scalar


def _emit(obj: Any, path: str, indent: int, out: list[str]) -> None:
    pad = "  " * indent
    for f in keys_of(type(obj)):
        key = f"{path}.{f.name}" if path else f.name
        val = getattr(obj, f.name)
        comment = f.metadata.get("doc")
        if comment:
            if indent == 0:
                out.append("")
            out.extend(f"{pad}# {c}" for c in comment.split("\n"))
        if dataclasses.is_dataclass(val):
            out.append(f"{pad}{f.name}:")
            _emit(val, key, indent + 1, out)
        elif isinstance(val, tuple):
            if not val:
                out.append(f"{pad}{f.name}: []")
            else:
                out.append(f"{pad}{f.name}:")
                out.extend(f"{pad}  - {_yaml_scalar(x)}" for x in val)
        elif isinstance(val, dict):
            if not val:
                out.append(f"{pad}{f.name}: {{}}")
            else:
                out.append(f"{pad}{f.name}:")
                for k, v in val.items():
                    if dataclasses.is_dataclass(v):
                        items = {x.name: getattr(v, x.name) for x in dataclasses.fields(v)}
                        body = ", ".join(f"{a}: {_yaml_scalar(b)}" for a, b in items.items() if b is not None)
                        out.append(f"{pad}  {k}: {{{body}}}")
                    else:
                        out.append(f"{pad}  {k}: {_yaml_scalar(v)}")
        else:
            out.append(f"{pad}{f.name}: {_yaml_scalar(val)}")


def generate_default_config(cfg: Config | None = None) -> str:
    """Commented YAML for ``cfg`` (default: built-in policy); parse_config round-trips it."""
    out = [
        "# bee-trace security policy (.github/security.yml)",
        "# Generated by `bee-trace config generate`. Compatible with the original bee-trace schema.",
    ]
    _emit(cfg or Config(), "", 0, out)
    return "\n".join(out) + "\n"
