"""Live table on a terminal: one escaped line per event (no raw control characters ever), with
repeats collapsed so that a flood cannot scroll a finding away."""

from __future__ import annotations

import time
from datetime import datetime
from typing import IO, Any

from ..describe import describe
from ..escape import terminal
from . import Run, Sink

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
    """The event's one line (describe.py), escaped for a terminal."""
    return terminal(describe(ev))


RECENT_LINES = 8          # a live terminal keeps this many lines updatable in place
REPEAT_NOTE_S = 1.0       # files and pipes: at most one "repeated" line per second per flood


class TableSink(Sink):
    """One line per event, and a flood cannot scroll a finding away: on a live terminal an event
    like one of the last RECENT_LINES lines updates that line's count in place (below high
    severity, events of one process and rule count as alike whatever their details); in a file
    or pipe a run of identical lines is written once, then `... repeated N more times`."""

    def __init__(self, stream: IO[str], verbose: bool = False, header: bool = True,
                 timestamp_format: str = "iso8601", start_ns: int = 0, color: bool | None = None,
                 live: bool = False, width: int = 0) -> None:
        self.stream = stream
        self.verbose = verbose
        self.ts_fmt = timestamp_format
        self.start_ns = start_ns
        self.color = stream.isatty() if color is None else color
        self.live = live
        self.width = width
        # live: [key, line, count, severity, printed], newest last; the live view is written at
        # flush only (once per drained batch), in one piece, so its cursor moves stay exact.
        self._recent: list[list[Any]] = []
        self._evicted: list[list[Any]] = []  # left the window before they were printed
        self._dirty = False
        self._last_key: tuple | None = None  # plain: the line being repeated
        self._repeats = 0
        self._noted = 0.0
        if header:
            self.stream.write(self._row("TIME", "PID", "UID", "COMMAND", "SEVERITY", "EVENT", "DETAILS") + "\n")

    def _row(self, t: str, pid: str, uid: str, comm: str, sev: str, event: str, det: str) -> str:
        uid_col = f"{uid:>6} " if self.verbose else ""
        return f"{t:<15} {pid:>7} {uid_col}{comm:<16} {sev:<8} {event:<22} {det}"

    def _paint(self, line: str, n: int, sev: str) -> str:
        text = line + (f" x{n}" if n > 1 else "")
        if self.width and len(text) >= self.width:  # a wrapped line would break the redraw
            text = text[:self.width - 2] + "…"
        return _COLORS[sev] + text + _RESET if self.color and sev in _COLORS else text

    def _emit(self, ev: dict[str, Any], n: int) -> None:
        sev = str(ev.get("severity", ""))
        n *= int(ev.get("count", 1) or 1)
        pid, uid, comm = str(ev.get("pid", "")), str(ev.get("uid", "")), terminal(ev.get("comm", ""))[:16]
        rule, det = str(ev.get("rule", ev.get("kind", ""))), details(ev)
        line = self._row(format_time(ev, self.ts_fmt, self.start_ns), pid, uid, comm, sev, rule, det)
        if self.live:
            alike = sev in ("high", "critical")
            self._live((pid, uid, comm, sev, rule) + ((det,) if alike else ()), line, sev, n)
        else:
            self._plain((pid, uid, comm, sev, rule, det), line, sev, n)

    def _live(self, key: tuple, line: str, sev: str, n: int) -> None:
        for entry in self._recent:
            if entry[0] == key:
                entry[1] = line
                entry[2] += n
                self._dirty = self._dirty or entry[4]
                return
        self._recent.append([key, line, n, sev, False])
        if len(self._recent) > RECENT_LINES:
            old = self._recent.pop(0)
            if not old[4]:
                self._evicted.append(old)

    def _redraw(self) -> None:
        """Rewrite the printed lines of the window in place with their counts (they are the
        last lines on the screen: cursor up, then line by line), then print the new ones."""
        out: list[str] = []
        printed = [e for e in self._recent if e[4]]
        if self._dirty and printed:
            out.append(f"\x1b[{len(printed)}A")
            out += ["\r" + self._paint(e[1], e[2], e[3]) + "\x1b[K\n" for e in printed]
        for e in self._evicted + [e for e in self._recent if not e[4]]:
            out.append(self._paint(e[1], e[2], e[3]) + "\n")
            e[4] = True
        self._evicted.clear()
        self._dirty = False
        if out:
            self.stream.write("".join(out))

    def _plain(self, key: tuple, line: str, sev: str, n: int) -> None:
        if key == self._last_key:
            self._repeats += n
            return
        self._note_repeats()
        self._last_key = key
        self.stream.write(self._paint(line, n, sev) + "\n")

    def _note_repeats(self) -> None:
        if self._repeats:
            self.stream.write(f"{'':<15} ... repeated {self._repeats} more times\n")
            self._repeats = 0
        self._noted = time.monotonic()

    def __call__(self, ev: dict[str, Any]) -> None:
        self._emit(ev, 1)

    def emit_run(self, run: Run) -> None:
        """A run of one template is one line (the time of its last record) and a count."""
        ev = dict(run.template)
        ev["ts_ns"] = run.rows[-1][0] + run.realtime_offset_ns
        self._emit(ev, len(run))

    def flush(self) -> None:
        if self.live:
            self._redraw()
        if self._repeats and time.monotonic() - self._noted >= REPEAT_NOTE_S:
            self._note_repeats()
        self.stream.flush()

    def close(self) -> None:
        if self.live:
            self._redraw()
        self._note_repeats()
        self.stream.flush()
