"""One line saying what an event did, shared by every text output (live table, stderr findings,
report and Markdown, GitHub annotations) so they never disagree. Plain text: the strings in it are
attacker-controlled (paths, names, comm), so each caller escapes the line for its medium with
escape.py (terminal(), md(), the workflow-command encoding)."""

from __future__ import annotations

from typing import Any

ARROW = "→"    # "acts on": memory access to a target, ancestry chains


def _s(v: Any) -> str:
    return v if isinstance(v, str) else ("" if v is None else str(v))


def describe(ev: dict[str, Any]) -> str:
    kind = ev.get("kind")
    if kind == "file":
        return f"{_s(ev.get('access')) or 'open'} {_s(ev.get('path'))}"
    if kind == "network":
        addr = _s(ev.get("daddr"))
        if ev.get("domain"):   # the name the kernel learned for this address, then the address
            dest = f"{_s(ev['domain'])}:{_s(ev.get('dport'))} ({addr})"
        else:
            dest = f"[{addr}]:{_s(ev.get('dport'))}" if ev.get("family") == "ipv6" else f"{addr}:{_s(ev.get('dport'))}"
        return f"{_s(ev.get('protocol'))} {dest} {_s(ev.get('action'))}".rstrip()
    if kind == "memory":
        d = f"{_s(ev.get('technique'))} {ARROW} {_s(ev.get('target_comm'))}[{_s(ev.get('target_pid'))}]"
        names = ev.get("secret_env_names")
        if isinstance(names, list) and names:
            d += " secrets: " + ", ".join(_s(n) for n in names)
        return d
    if kind == "tamper":
        return _tamper(ev)
    return _s(ev.get("exe")) or _s(ev.get("filename")) or _s(ev.get("cmdline"))


def _tamper(ev: dict[str, Any]) -> str:
    rule = _s(ev.get("rule"))
    if "signal" in ev:
        return f"{_s(ev['signal'])} {ARROW} agent {_s(ev.get('target_pid'))}"
    if rule == "tamper.bpf":
        return f"{_s(ev.get('bpf_cmd'))} {_s(ev.get('target'))} id {_s(ev.get('object_id'))} of the agent"
    if rule == "tamper.memory":
        where = f" {_s(ev['path'])}" if ev.get("path") else ""
        return f"{_s(ev.get('technique'))} {ARROW} agent {_s(ev.get('target_pid'))}{where}"
    return rule
