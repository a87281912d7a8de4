"""The live table through a real pseudo-terminal and the real output chain (writer thread,
visibility filter): a flood of identical (or alternating) events cannot scroll a finding off the
screen; a count updates in place instead."""

from __future__ import annotations

import io
import os
import pty
import re
import threading

from bee_trace.config import default_config
from bee_trace.report import Report
from bee_trace.sinks.chain import build_chain
from bee_trace.sinks.table import TableSink

_CSI = re.compile(r"\x1b\[(\d*)([A-Za-z])")


def screen(raw: str, rows: int = 24) -> list[str]:
    """What a terminal shows: cursor up (CSI n A), erase to end of line (CSI K), colours
    (CSI ...m) ignored, CR, LF; the bottom `rows` lines."""
    lines, row, col, i = [""], 0, 0, 0
    while i < len(raw):
        m = _CSI.match(raw, i) if raw[i] == "\x1b" else None
        if raw[i] == "\x1b" and not m:
            m = re.compile(r"\x1b\[[\d;]*m").match(raw, i)
            i = m.end() if m else i + 1
            continue
        if m:
            n, op = int(m.group(1) or 1), m.group(2)
            if op == "A":
                row = max(0, row - n)
            elif op == "K":
                lines[row] = lines[row][:col]
            i = m.end()
            continue
        ch = raw[i]
        i += 1
        if ch == "\r":
            col = 0
        elif ch == "\n":
            row += 1
            col = 0
            if row == len(lines):
                lines.append("")
        else:
            line = lines[row].ljust(col)
            lines[row] = line[:col] + ch + line[col + 1:]
            col += 1
    return [ln for ln in lines if ln][-rows:]


def ev(i: int, **kw) -> dict:
    base = {"kind": "network", "severity": "low", "rule": "network.loopback", "pid": 4242,
            "uid": 0, "comm": "flooder", "protocol": "tcp", "family": "ipv4", "daddr": "127.0.0.1",
            "dport": 40000 + i, "action": "allowed", "ts_ns": 1_700_000_000_000_000_000 + i,
            "lane": "bulk"}
    base.update(kw)
    return base


FINDING = {"kind": "file", "severity": "critical", "rule": "file.ssh_key.read", "pid": 777,
           "uid": 0, "comm": "thief", "path": "/home/u/.ssh/id_rsa", "access": "read",
           "ts_ns": 1_700_000_000_500_000_000, "lane": "critical"}


def test_flood_cannot_scroll_a_finding_away_on_a_terminal() -> None:
    master, slave = pty.openpty()
    os.set_blocking(master, True)
    term = os.fdopen(slave, "w", encoding="utf-8")
    chunks: list[bytes] = []

    def read() -> None:
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    cfg = default_config()
    chain = build_chain(cfg, "table", None, term, Report(cfg, {}), verbose=True)
    (sink,) = [s for s in chain.sinks if type(s).__name__ == "BufferedSink"]
    sink(FINDING)
    sink.flush()
    # Identical-rule flood of one process (distinct ports), then an alternating flood of two.
    for i in range(10_000):
        sink(ev(i))
        if i % 500 == 0:
            sink.flush()
    for i in range(3_000):
        sink(ev(0, comm="alt-a" if i % 2 else "alt-b", dport=9))
        if i % 100 == 0:
            sink.flush()
    chain.close()
    term.close()
    reader.join(5)
    os.close(master)
    shown = screen(b"".join(chunks).decode("utf-8", "replace").replace("\r\n", "\n"))
    assert len(shown) <= 6, shown
    assert shown[0].startswith("TIME")
    assert "thief" in shown[1] and "file.ssh_key.read" in shown[1] and "/home/u/.ssh/id_rsa" in shown[1]
    assert "flooder" in shown[2] and shown[2].endswith(" x10000")
    assert sorted((line.split()[3], line.split()[-1]) for line in shown[3:5]) == \
        [("alt-a", "x1500"), ("alt-b", "x1500")]


def test_plain_stream_writes_a_run_once_then_the_repeat_count() -> None:
    out = io.StringIO()
    t = TableSink(out, header=False, color=False)
    t(FINDING)
    for _ in range(5000):
        t(ev(0))
    t(FINDING)
    t.close()
    lines = out.getvalue().splitlines()
    assert len(lines) == 4
    assert "flooder" in lines[1] and lines[2].strip() == "... repeated 4999 more times"
    assert "thief" in lines[3]
