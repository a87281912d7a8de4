"""Runs (records sharing one template) pass whole through the output chain, with exact counts."""

from __future__ import annotations

import io
import json
from typing import IO, cast

from bee_trace.config import default_config
from bee_trace.report import Report
from bee_trace.sinks import Run
from bee_trace.sinks.buffered import BufferedSink
from bee_trace.sinks.chain import build_chain

TEMPLATE = {"ts": "", "ts_ns": 0, "kind": "file", "severity": "high", "rule": "file.private_key.read",
            "category": "file_access", "risk": 80, "pid": 7, "tid": 7, "ppid": 1, "uid": 0,
            "comm": "loadgen", "exe": "", "cmdline": "", "ancestry": [], "cgroup_id": 1, "cpu": 0,
            "seq": 0, "lane": "critical", "boot_ns": 0, "path": "/k/a.pem", "access": "read"}


def _run(n: int) -> Run:
    return Run(dict(TEMPLATE), [(1_000 * i, 7, i % 2, i + 1) for i in range(n)], 1_800_000_000 * 10**9)


def test_chain_writes_every_event_of_a_run_and_reports_the_count() -> None:
    cfg = default_config()
    out = io.StringIO()
    report = Report(cfg, {})
    chain = build_chain(cfg, "jsonl", out, io.StringIO(), report, live_table=False)
    for sink in chain.sinks:
        sink.emit_run(_run(1000))
    chain.close()
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert len(lines) == 1000 and [e["seq"] for e in lines] == list(range(1, 1001))
    assert all(e["path"] == "/k/a.pem" and "_template" not in e for e in lines)
    assert report.total == 1000 and report.by_severity["high"] == 1000


def test_bulk_run_overflow_counts_events() -> None:
    import threading

    from bee_trace.sinks.buffered import Capture
    from bee_trace.sinks.jsonl import JsonLinesSink

    gate = threading.Event()

    class Stuck(io.StringIO):
        def write(self, text: str) -> int:
            gate.wait()
            return super().write(text)

    capture = Capture()
    sink = BufferedSink(JsonLinesSink(cast(IO[str], capture)), capture, Stuck(), capacity=10)
    sink.emit_run(_run(10))          # critical, fills the queue while the writer is stuck
    sink.flush()
    bulk = _run(5)
    bulk.template["lane"] = "bulk"
    sink.emit_run(bulk)
    sink.flush()
    assert sink.overflow == 5        # counted in events, not runs
    gate.set()
    sink.close()


def test_pipes_get_a_writer_thread_files_do_not(tmp_path) -> None:
    import os as _os
    cfg = default_config()
    r, w = _os.pipe()
    pipe = _os.fdopen(w, "w")
    try:
        chain = build_chain(cfg, "jsonl", pipe, io.StringIO(), Report(cfg, {}), live_table=False)
        assert len(chain.buffered) == 1 and not chain.direct
        chain.close()
    finally:
        pipe.close()
        _os.close(r)
    with open(tmp_path / "ev.jsonl", "w") as f:
        chain = build_chain(cfg, "jsonl", f, io.StringIO(), Report(cfg, {}), live_table=False)
        assert not chain.buffered and len(chain.direct) == 1
