"""Allowlists from what a job did: `bee-trace policy learn` turns the network events of an audit
run into a commented network policy for block mode, and `report --baseline` lists destinations
a later run reached that the policy does not allow (drift). Event files are input from the job:
names are re-validated here and everything written is quoted."""

from __future__ import annotations

import ipaddress
import json
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..addr import parse_addr
from ..classify import domain_matches
from ..records import DNS_PORT

if TYPE_CHECKING:
    from ..config import NetworkConfig

_NAME = re.compile(r"[a-z0-9_]([a-z0-9_.-]*[a-z0-9_])?")
FOLD_AT = 3              # distinct subdomains of one parent before "*.parent" replaces them


def _valid_name(name: object) -> str | None:
    if not isinstance(name, str):
        return None
    n = name.lower().rstrip(".")
    return n if len(n) <= 253 and _NAME.fullmatch(n) and ".." not in n else None



def destinations(events: Iterable[dict]) -> Iterable[dict]:
    """Network events that reached (or tried to reach) an address."""
    for ev in events:
        if ev.get("kind") == "network" and ev.get("op") != "socket" and parse_addr(ev.get("daddr")):
            yield ev


def fold_domains(names: set[str]) -> list[str]:
    """Domains as a user would write them: FOLD_AT or more subdomains of one parent become
    "*.parent" (or "parent" when the parent itself was reached too); never a bare TLD."""
    children: dict[str, set[str]] = defaultdict(set)
    for n in names:
        if n.count(".") >= 2:
            children[n.split(".", 1)[1]].add(n)
    out: set[str] = set()
    folded: set[str] = set()
    for parent, kids in children.items():
        if len(kids) >= FOLD_AT:
            folded |= kids
            out.add(parent if parent in names else "*." + parent)
    # Shortest first, so a name an entry already covers ('x' covers its subdomains) is left out.
    for n in sorted(names - folded, key=lambda d: (d.count("."), d)):
        if not domain_matches(n, out):
            out.add(n)
    return sorted(out, key=lambda d: (d.lstrip("*.").split(".")[::-1], d))


@dataclass
class Learned:
    domains: list[str] = field(default_factory=list)
    ips: list[str] = field(default_factory=list)
    dns_servers: list[str] = field(default_factory=list)
    loopback: bool = False
    skipped_blocked: int = 0
    skipped_names: int = 0
    events: int = 0


def learn(events: Iterable[dict]) -> Learned:
    names: set[str] = set()
    ips: set[str] = set()
    servers: set[str] = set()
    out = Learned()
    for ev in destinations(events):
        out.events += 1
        if ev.get("action") == "blocked":
            out.skipped_blocked += 1       # the job ran without it
            continue
        a = parse_addr(ev.get("daddr"))
        assert a is not None
        if ev.get("dport") == DNS_PORT:
            servers.add(str(a))
            continue
        if ev.get("domain") is not None and ev.get("domain_source") == "answer":
            n = _valid_name(ev["domain"])
            if n:
                names.add(n)
                continue
            out.skipped_names += 1
        if a.is_loopback or a.is_unspecified:
            out.loopback = True            # allow_loopback covers unnamed local services
            continue
        ips.add(str(a))
    out.domains = fold_domains(names)
    out.ips = sorted(ips, key=lambda s: (ipaddress.ip_address(s).version, ipaddress.ip_address(s)))
    out.dns_servers = sorted(servers)
    return out


def to_yaml(learned: Learned, source: str) -> str:
    q = json.dumps     # JSON strings are valid YAML double-quoted scalars
    lines = [
        "# bee-trace egress allowlist, learned by `bee-trace policy learn` from",
        f"# {q(source)}: {learned.events} destinations seen.",
        "# Review before committing: every name here was resolved by this job's DNS answers.",
        "network:",
        "  mode: block",
        "  # 'x' allows x and its subdomains; '*.x' only its subdomains",
        "  allowed_domains:" + ("" if learned.domains else " []"),
        *[f"    - {q(d)}" for d in learned.domains],
        "  # addresses reached without a DNS answer naming them",
        "  allowed_ips:" + ("" if learned.ips else " []"),
        *[f"    - {q(ip + ('/32' if ':' not in ip else '/128'))}" for ip in learned.ips],
        "  # resolvers queried (answers are learned only from these)",
        "  dns_servers:" + ("" if learned.dns_servers else " []"),
        *[f"    - {q(s)}" for s in learned.dns_servers],
        "  # true: the job reached loopback addresses no DNS answer named",
        f"  allow_loopback: {'true' if learned.loopback else 'false'}",
    ]
    if learned.skipped_blocked:
        lines.append(f"# {learned.skipped_blocked} refused attempts in the input were left out")
    if learned.skipped_names:
        lines.append(f"# {learned.skipped_names} malformed domain names were left out (kept as IPs)")
    return "\n".join(lines) + "\n"


def new_destinations(events: Iterable[dict], net: NetworkConfig) -> list[dict]:
    """Destinations the policy `net` does not allow, one per distinct
    (domain, daddr, dport, protocol), in order of first appearance."""
    allowed_nets = [ipaddress.ip_network(x, strict=False) for x in net.allowed_ips]
    servers = {str(a) for a in (parse_addr(s) for s in net.dns_servers) if a}
    seen: dict[tuple, dict] = {}
    for ev in destinations(events):
        a = parse_addr(ev.get("daddr"))
        assert a is not None
        domain = ev.get("domain") if ev.get("domain_source") == "answer" else None
        if (a.is_loopback or a.is_unspecified) and net.allow_loopback:
            continue
        if ev.get("dport") == DNS_PORT and (not servers or str(a) in servers):
            continue
        if domain and domain_matches(domain, net.allowed_domains):
            continue
        if any(a in n for n in allowed_nets if n.version == a.version):
            continue
        key = (domain, str(a), ev.get("dport"), ev.get("protocol"))
        if key not in seen:
            seen[key] = {"domain": domain, "daddr": str(a), "dport": ev.get("dport"),
                         "protocol": ev.get("protocol"), "pid": ev.get("pid"), "comm": ev.get("comm"),
                         "action": ev.get("action")}
    return list(seen.values())


def drift_text(report_text: str, fmt: str, drift: list[dict], baseline: str) -> str:
    """The report with its new destinations: a Markdown section, a JSON key, or CSV rows."""
    from ..escape import markdown

    if fmt == "json":
        obj = json.loads(report_text)
        obj["new_destinations"] = {"baseline": baseline, "destinations": drift}
        return json.dumps(obj, indent=2) + "\n"
    if fmt == "csv":
        import csv
        import io

        buf = io.StringIO()
        w = csv.writer(buf)
        for d in drift:
            w.writerow(["new_destination", d["domain"] or "", d["daddr"], d["dport"], d["protocol"],
                        d["pid"], d["comm"]])
        return report_text + buf.getvalue()
    lines = ["", f"## New destinations (not in {markdown(baseline)})", ""]
    if not drift:
        lines.append("None: every destination is allowed by the baseline.")
    else:
        lines += ["| domain | address | port | protocol | process | action |", "|---|---|---|---|---|---|"]
        for d in drift:
            lines.append(f"| {markdown(d['domain'] or '–')} | {markdown(d['daddr'])} | {d['dport']} | "
                         f"{markdown(d['protocol'])} | {markdown(d['comm'])} ({d['pid']}) | "
                         f"{markdown(d['action'])} |")
    return report_text.rstrip("\n") + "\n" + "\n".join(lines) + "\n"
