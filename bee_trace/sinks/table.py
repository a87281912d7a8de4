"""Live table on a terminal: one escaped line per event (no raw control characters ever)."""

from __future__ import annotations

from datetime import datetime
from typing import IO, Any

from ..escape import terminal
from . import Sink

_COLORS = {"low": "\x1b[2m", "medium": "\x1b[33m", "high": "\x1b[31m", "critical": "\x1b[1;31m"}
_RESET = "\x1b[0m"


def format_time(ev: dict[str, Any], fmt: str, start_ns: int) -> str:
    ns = int(ev.get("ts_ns") or 0)
    if fmt == "unix":
        return f"{ns / 1e9:.6f}"
    if fmt == "relative":
        return f"+{(ns - start_ns) / 1e9:.3f}s"
    return datetime.fromtimestamp(ns / 1e9).strftime("%H:%M:%S.%f")[:-3]


def details(ev: dict[str, Any]) -> str:
    kind = ev.get("kind")
    if kind == "file":
        return f"{ev.get('access', '')} {terminal(ev.get('path', ''))}"
    if kind == "network":
        dest = f"[{ev.get('daddr')}]" if ev.get("family") == "ipv6" else str(ev.get("daddr"))
        name = f"{terminal(ev['domain'])} ({dest})" if ev.get("domain") else dest
        return f"{ev.get('protocol', '')} {name}:{ev.get('dport')} {ev.get('action', '')}"
    if kind == "memory":
        extra = ""
        if ev.get("secret_env_names"):
            extra = " secrets: " + ",".join(terminal(n) for n in ev["secret_env_names"])
        return (f"{ev.get('technique')} -> {ev.get('target_pid')} "
                f"({terminal(ev.get('target_comm', ''))}){extra}")
    if kind == "process":
        return terminal(ev.get("exe") or ev.get("filename") or "")
    if kind == "tamper":
        from ..tamper import describe
        return terminal(describe(ev))
    return ""


class TableSink(Sink):
    def __init__(self, stream: IO[str], verbose: bool = False, header: bool = True,
                 timestamp_format: str = "iso8601", start_ns: int = 0, color: bool | None = None) -> None:
        self.stream = stream
        self.verbose = verbose
        self.ts_fmt = timestamp_format
        self.start_ns = start_ns
        self.color = stream.isatty() if color is None else color
        if header:
            self.stream.write(self._row("TIME", "PID", "UID", "COMMAND", "SEVERITY", "EVENT", "DETAILS") + "\n")

    def _row(self, t: str, pid: str, uid: str, comm: str, sev: str, event: str, det: str) -> str:
        uid_col = f"{uid:>6} " if self.verbose else ""
        return f"{t:<15} {pid:>7} {uid_col}{comm:<16} {sev:<8} {event:<22} {det}"

    def __call__(self, ev: dict[str, Any]) -> None:
        sev = str(ev.get("severity", ""))
        count = f" x{ev['count']}" if int(ev.get("count", 1) or 1) > 1 else ""
        line = self._row(format_time(ev, self.ts_fmt, self.start_ns), str(ev.get("pid", "")),
                         str(ev.get("uid", "")), terminal(ev.get("comm", ""))[:16], sev,
                         str(ev.get("rule", ev.get("kind", ""))), details(ev) + count)
        if self.color and sev in _COLORS:
            line = _COLORS[sev] + line + _RESET
        self.stream.write(line + "\n")

    def flush(self) -> None:
        self.stream.flush()
