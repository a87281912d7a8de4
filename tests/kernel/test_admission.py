"""Bulk-lane admission and wake-ups on the real kernel, with exact accounting: shedding under
backpressure (and the `degraded` verdict it causes), the per-session token bucket, wake-ups only
when a record crosses the threshold and the threshold adapting to the rate, and sink overflow
counted through the real output chain. Counts, never speed."""

from __future__ import annotations

import dataclasses
import os
import select
import socket
import subprocess
import sys
import threading
import time
from typing import Any

import numpy as np

from bee_trace import records as R
from bee_trace.config import default_config

PY = sys.executable
DROP = {cause: i for i, cause in enumerate(R.DROP_CAUSES)}


def _config(eps: int = 0, blocked: tuple[str, ...] = ()) -> Any:
    cfg = default_config()
    perf = dataclasses.replace(cfg.performance, sampling_rate=1.0, max_events_per_second=eps,
                               aggregation_window_ms=0)
    net = dataclasses.replace(cfg.network, blocked_ips=blocked, report_loopback=True)
    return dataclasses.replace(cfg, performance=perf, network=net)


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _flood(n: int, port: int, host: str = "127.0.0.1", **popen: Any) -> subprocess.Popen:
    """n refused TCP connects; the child is returned once it has exited."""
    code = ("import socket, sys\n"
            f"for i in range({n}):\n"
            "    s = socket.socket()\n"
            f"    s.connect_ex(({host!r}, {port}))\n"
            "    s.close()\n")
    child = subprocess.Popen([PY, "-c", code], **popen)
    assert child.wait(timeout=120) == 0
    return child


def _bulk_drops(pipeline: Any, cause: str) -> int:
    return int(pipeline.kernel.counters_per_cpu()["drops"][:, R.LANE_BULK, DROP[cause]].sum())


def _kernel_settings(pipeline: Any) -> np.void:
    raw = pipeline.kernel._obj.map("settings").lookup(bytes(4), R.settings_dtype.itemsize)
    return np.frombuffer(raw, dtype=R.settings_dtype)[0]


def _net(events: list[dict], pid: int) -> list[dict]:
    return [e for e in events if e["kind"] == "network" and e["pid"] == pid]


def test_backpressure_sheds_loopback_never_critical_and_makes_the_run_degraded(monitor) -> None:
    mon = monitor({"network_monitor"}, config=_config(blocked=("127.0.0.2/32",)),
                  ring_bulk_bytes=64 << 10)
    p = mon.pipeline
    bulk = p.rings.rings[R.LANE_BULK]
    p.drain(budget_s=None)
    port = _closed_port()
    # Fill the 64 KiB bulk ring past the 50 % watermark (120 of 190 records) without reading.
    _flood(120, port)
    fill = bulk.lag_bytes() / bulk.size
    assert 0.5 <= fill < 1.0, fill
    p._adapt()                                     # the reader's look at the fill
    assert p.backpressure.level == 1 and _kernel_settings(p)["shed_level"] == 1
    p.drain(budget_s=None)
    assert p.loss_summary().verdict == "complete"     # nothing lost yet

    shed_before = _bulk_drops(p, "shed")
    loop = _flood(500, port)                      # loopback: low priority, shed at the source
    blocked = _flood(1, port, host="127.0.0.2")   # blocklisted: critical lane, never shed
    p.drain(budget_s=None)
    shed = _bulk_drops(p, "shed") - shed_before
    # The first connect of the new (process, destination) key bypasses shedding (first-of-key);
    # the other 499 were counted as shed (other processes' loopback traffic in the same moment is
    # shed and counted too: a handful at most on a test machine).
    assert len(_net(mon.events, loop.pid)) == 1
    assert 499 <= shed <= 520, shed
    (crit,) = _net(mon.events, blocked.pid)
    assert crit["lane"] == "critical" and crit["daddr"] == "127.0.0.2" and crit["blocklisted"] is True
    assert crit["uid"] == os.getuid() and crit["dport"] == port

    p._adapt()                                     # ring empty again: below 10 %, level down
    assert p.backpressure.level == 0 and _kernel_settings(p)["shed_level"] == 0
    after = _flood(50, port)
    p.drain(budget_s=None)
    assert len(_net(mon.events, after.pid)) == 50

    loss = p.loss_summary().to_json()
    assert loss["dropped"]["ring_full"] == 0 and loss["uncounted_gaps"] == 0
    assert loss["dropped"]["shed"] >= 499 and loss["shed_raised"] == 1
    assert loss["verdict"] == "degraded"           # shed records are lost records
    lane = loss["lanes"]["bulk"]
    assert lane["attempted"] == lane["emitted"] == lane["received"]


FORKING_FLOOD = """
import os, socket, sys, time
port, n, workers = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
t0 = time.monotonic()
pids = []
for w in range(workers):          # a forking loop: every worker is in this session
    pid = os.fork()
    if pid == 0:
        for i in range(n // workers):
            s = socket.socket(); s.connect_ex(('127.0.0.1', port)); s.close()
        os._exit(0)
    pids.append(pid)
for pid in pids:
    os.waitpid(pid, 0)
print(time.monotonic() - t0, *pids, flush=True)
"""


def test_token_bucket_is_per_session_and_every_refusal_is_counted(monitor) -> None:
    eps, n = 100, 4000
    mon = monitor({"network_monitor"}, config=_config(eps=eps), adaptive=False)
    p = mon.pipeline
    limited_before = _bulk_drops(p, "rate_limited")
    # Its own session, on one CPU: one bucket (type, session id) on that CPU for all workers.
    child = subprocess.Popen([PY, "-c", FORKING_FLOOD, str(_closed_port()), str(n), "4"],
                             stdout=subprocess.PIPE, text=True, start_new_session=True,
                             preexec_fn=lambda: os.sched_setaffinity(0, {0}))
    out, _ = child.communicate(timeout=120)
    assert child.returncode == 0
    elapsed, *workers = out.split()
    pids = {int(w) for w in workers}
    mon.settle(0.3)
    delivered = [e for e in mon.events if e["kind"] == "network" and e["pid"] in pids]
    limited = _bulk_drops(p, "rate_limited") - limited_before
    # Exact: each of the n connects was either delivered or refused by the bucket.
    assert len(delivered) + limited == n, (len(delivered), limited)
    # The bucket starts full (eps tokens) and refills at eps per second for the whole session,
    # however many processes it forks.
    # (+ the first event of each new (process, destination) key, which bypasses the bucket)
    assert eps <= len(delivered) <= eps + eps * float(elapsed) + 1 + len(pids), (len(delivered), elapsed)
    assert {e["uid"] for e in delivered} == {os.getuid()} and {e["cpu"] for e in delivered} == {0}
    loss = p.loss_summary().to_json()
    assert loss["verdict"] == "complete"           # limits are asked for: counted, not lost


def test_bulk_wake_up_only_when_a_record_crosses_the_threshold(monitor) -> None:
    mon = monitor({"network_monitor"}, config=_config(), adaptive=False)
    p = mon.pipeline
    threshold = 64 << 10
    p.kernel.update_settings(bulk_wake_bytes=threshold, bulk_idle=0)
    bulk = p.rings.rings[R.LANE_BULK]
    n = 3 * threshold // R.RING_STRIDE              # three thresholds' worth, never read
    for _attempt in range(3):                      # another process's stray record: try again
        p.drain(budget_s=None)
        ep = select.epoll()
        ep.register(bulk.fd, select.EPOLLIN | select.EPOLLET)
        wakes: list[int] = []                      # ring backlog seen at each wake-up
        done = threading.Event()

        def watch(ep: select.epoll, done: threading.Event, wakes: list[int]) -> None:
            while not done.is_set():
                if ep.poll(0.05):
                    wakes.append(bulk.lag_bytes())
        t = threading.Thread(target=watch, args=(ep, done, wakes))
        t.start()
        _flood(n, _closed_port())
        assert bulk.lag_bytes() >= n * R.RING_STRIDE
        ep_events = ep.poll(0)                     # edge-triggered: nothing new pending
        done.set()
        t.join()
        ep.close()
        if not wakes or wakes[0] >= threshold:
            break
    # One wake-up for the whole backlog: when it crossed the threshold, not per record.
    assert len(wakes) == 1 and not ep_events, wakes
    assert wakes[0] >= threshold


def test_wake_threshold_adapts_to_the_rate_and_relaxes_when_idle(monitor) -> None:
    mon = monitor({"network_monitor"}, config=_config())
    p = mon.pipeline
    low = p.tuning.wake_min
    assert p.kernel.bulk_wake_bytes == low and _kernel_settings(p)["bulk_wake_bytes"] == low
    child = subprocess.Popen([PY, "-c", ("import socket, time, sys\n"
                                         "port = int(sys.argv[1]); end = time.monotonic() + 1.5\n"
                                         "while time.monotonic() < end:\n"
                                         "    s = socket.socket(); s.connect_ex(('127.0.0.1', port)); s.close()\n"),
                              str(_closed_port())])
    raised = 0
    while child.poll() is None:
        mon.poll()
        raised = max(raised, int(_kernel_settings(p)["bulk_wake_bytes"]))
    assert child.returncode == 0
    # Under load the threshold rose (about one wake-up per 20 ms at the observed rate).
    assert raised > low, raised
    assert raised <= p.tuning.wake_max
    deadline = time.monotonic() + 6
    while _kernel_settings(p)["bulk_wake_bytes"] != low and time.monotonic() < deadline:
        mon.poll()
    assert _kernel_settings(p)["bulk_wake_bytes"] == low    # idle again: back to latency


def test_sink_overflow_is_counted_exactly_and_critical_output_is_complete(tmp_path) -> None:
    """A slow reader of our stdout pipe: bulk output beyond the writer queue is dropped and
    counted (`sink_overflow`), critical output all arrives, the verdict says degraded."""
    from bee_trace.pipeline import Pipeline, PipelineOptions
    from bee_trace.report import Report
    from bee_trace.sinks.chain import build_chain

    cfg = _config()
    r, w = os.pipe()
    stream = os.fdopen(w, "w")
    chain = build_chain(cfg, "jsonl", None, stream, Report(cfg, {}), verbose=True)
    (buffered,) = chain.buffered
    buffered.capacity = 200                        # events the writer queue may hold
    received = bytearray()

    def slow_reader() -> None:                     # ~400 KB/s: far slower than the pipeline
        while chunk := os.read(r, 4096):
            received.extend(chunk)
            time.sleep(0.01)
    reader = threading.Thread(target=slow_reader)
    reader.start()
    p = Pipeline(PipelineOptions(probes={"network_monitor"}, config=cfg), chain.sinks)
    p.start()
    try:
        flood = subprocess.Popen([PY, "-c", "import socket, sys\nport = int(sys.argv[1])\n"
                                  "for i in range(5000):\n"
                                  "    s = socket.socket(); s.connect_ex(('127.0.0.1', port)); s.close()\n",
                                  str(_closed_port())])
        while flood.poll() is None:
            p.step(0.02)
        loss = p.stop().to_json()
    finally:
        p.stop()
        chain.close()
        stream.close()
        reader.join(timeout=120)
        os.close(r)
    import json
    lines = [json.loads(line) for line in received.decode().splitlines()]
    by_kind: dict[str, int] = {}
    for ev in lines:
        by_kind[ev["kind"]] = by_kind.get(ev["kind"], 0) + 1
    assert buffered.overflow > 0, "the writer queue never overflowed: the test proves nothing"
    assert loss["dropped"]["sink_overflow"] == buffered.overflow
    # Exact: every bulk (network) event handed to the output was written or counted.
    assert by_kind["network"] + buffered.overflow == p.stats.by_kind["network"]
    # Critical output (process lifecycle here) waits for room: all of it was written.
    assert by_kind.get("process", 0) == p.stats.by_kind.get("process", 0) > 0
    assert len([e for e in lines if e["kind"] == "network" and e["pid"] == flood.pid]) < 5000
    assert loss["verdict"] == "degraded"
