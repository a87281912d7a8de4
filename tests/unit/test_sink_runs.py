"""Runs (records sharing one template) pass whole through the output chain, with exact counts;
a batch's other events pass as one list, in record order with the runs."""

from __future__ import annotations

import io
import json
import os
import time
from typing import IO, cast

import numpy as np

from bee_trace import records as R
from bee_trace.config import default_config
from bee_trace.pipeline import Pipeline, PipelineOptions
from bee_trace.report import Report
from bee_trace.ringbuf import Batch
from bee_trace.sinks import Run
from bee_trace.sinks.buffered import BufferedSink
from bee_trace.sinks.chain import build_chain
from bee_trace.sinks.failsafe import FailSafe, OutputHealth
from bee_trace.sinks.jsonl import JsonLinesSink

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


def test_batch_of_single_events_keeps_record_order_with_runs_and_filters_per_event() -> None:
    """A batch's decoded events go down the chain as one list, its repeats as runs: the JSON
    Lines keep record order, the visibility filter still judges each event."""
    cfg = default_config()
    out = io.StringIO()
    report = Report(cfg, {})
    chain = build_chain(cfg, "jsonl", out, io.StringIO(), report, live_table=False)
    pl = Pipeline(PipelineOptions(probes={"file_monitor", "network_monitor"}, config=cfg), chain.sinks)
    kinds = ["f:/k/a.pem", "f:/k/a.pem", "f:/k/b.pem", "n:127.0.0.1", "n:10.0.0.9", "f:/k/c.pem",
             "f:/k/c.pem", "f:/k/c.pem", "f:/k/d.pem"]
    b = np.zeros(len(kinds), dtype=R.event_dtype)
    b["h"]["tgid"] = b["h"]["tid"] = os.getpid()
    b["h"]["comm"] = b"reader"
    b["h"]["seq"] = np.arange(1, len(kinds) + 1)
    b["h"]["ts_ns"] = time.clock_gettime_ns(time.CLOCK_BOOTTIME)
    for i, k in enumerate(kinds):
        what, arg = k.split(":")
        if what == "f":
            b["h"]["type"][i], b["h"]["lane"][i] = R.EV_FILE, R.LANE_CRITICAL
            b["u"]["file"]["path_len"][i] = len(arg)
            b[i]["u"]["file"]["path"] = arg.encode().ljust(R.FILE_TAIL, b"\0")
        else:
            b["h"]["type"][i], b["h"]["lane"][i] = R.EV_NET, R.LANE_BULK
            net = b[i]["u"]["net"]
            net["family"], net["dport"], net["protocol"] = 2, 443, 6
            net["daddr"] = bytes(map(int, arg.split("."))).ljust(16, b"\0")
            if arg.startswith("127."):
                b["h"]["flags"][i] = R.EVF_LOOPBACK
    pl.handle_batch(Batch.of(b))
    chain.close()
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    # loopback is hidden (report_loopback off), everything else in record order
    assert [(e["seq"], e.get("path") or e.get("daddr")) for e in lines] == [
        (1, "/k/a.pem"), (2, "/k/a.pem"), (3, "/k/b.pem"), (5, "10.0.0.9"), (6, "/k/c.pem"),
        (7, "/k/c.pem"), (8, "/k/c.pem"), (9, "/k/d.pem")]
    assert pl.stats.output == 9 and pl.stats.by_kind == {"file": 7, "network": 2}
    assert report.by_kind == {"file": 7, "network": 1}


def test_failsafe_counts_a_failed_batch_whole() -> None:
    class Broken(io.StringIO):
        def write(self, s: str) -> int:
            raise OSError(5, "Input/output error")

    err = io.StringIO()
    sink = FailSafe(JsonLinesSink(Broken()), "/x/ev.jsonl", OutputHealth(stderr=lambda: err))
    sink.emit_many([dict(TEMPLATE), dict(TEMPLATE), dict(TEMPLATE)])
    sink.emit_many([dict(TEMPLATE)])
    assert sink.failed == 4 and "Input/output error" in err.getvalue()
