"""Bulk-lane machinery on the real kernel: loss accounting with a tiny ring, sampling and
aggregation counts. Counts, never speed."""

from __future__ import annotations

import dataclasses
import os
import socket
import subprocess
import sys
from pathlib import Path

from bee_trace import records as R
from bee_trace.config import default_config
from bee_trace.kernel import per_cpu_slot


def _config(sampling_rate: float = 1.0, eps: int = 0, window_ms: int = 0):
    cfg = default_config()
    perf = dataclasses.replace(cfg.performance, sampling_rate=sampling_rate,
                               max_events_per_second=eps, aggregation_window_ms=window_ms)
    return dataclasses.replace(cfg, performance=perf)


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now: connects are refused at once
    return port


def _connect_flood(n: int, port: int, then: str = "") -> str:
    return ("import socket\n"
            f"for i in range({n}):\n"
            "    s = socket.socket()\n"
            f"    s.connect_ex(('127.0.0.1', {port}))\n"
            "    s.close()\n" + then)


def _net_events(mon, pid: int) -> list[dict]:
    return [e for e in mon.events if e["kind"] == "network" and e["pid"] == pid]


def test_tiny_bulk_ring_flood_counts_every_loss_and_keeps_critical(monitor, tmp_path: Path) -> None:
    key = tmp_path / "id_rsa"
    key.write_text("k")
    mon = monitor({"network_monitor", "file_monitor"}, config=_config(), ring_bulk_bytes=4096,
                  adaptive=False)
    n = 20000
    # The pipeline does not read during the flood: the 4 KiB bulk ring must overflow.
    code = _connect_flood(n // 2, _closed_port(), f"open({str(key)!r}).read()\n") + \
        _connect_flood(n // 2, _closed_port())
    child = subprocess.run([sys.executable, "-c", code], check=True)
    mon.settle(0.5)
    loss = mon.pipeline.stop().to_json()  # final drain, then the counters
    bulk, crit = loss["lanes"]["bulk"], loss["lanes"]["critical"]
    assert bulk["ring_full"] > 0, "the tiny ring never filled: the test proves nothing"
    # Every numbered bulk record was delivered, counted as ring-full, or (the first to each
    # destination) spilled and delivered late.
    assert bulk["attempted"] == bulk["emitted"] + bulk["ring_full"] + bulk["spilled"]
    assert bulk["spilled"] <= 2 and bulk["first_lost"] == 0
    assert bulk["received"] == bulk["emitted"]
    assert bulk["sequence_gaps"] <= bulk["ring_full"] and loss["uncounted_gaps"] == 0
    # The critical lane lost nothing and the secret read is there (other processes may still
    # have a record in flight between numbering and commit).
    assert crit["ring_full"] == 0 and 0 <= crit["attempted"] - crit["received"] <= 2
    assert [e for e in mon.events if e["kind"] == "file" and e["path"] == str(key)]
    assert loss["verdict"] == "degraded"
    assert child.returncode == 0


def test_sampling_one_in_ten_delivers_a_tenth_and_counts_the_rest(monitor) -> None:
    mon = monitor({"network_monitor"}, config=_config(sampling_rate=0.1), adaptive=False)
    n = 10000
    child = subprocess.Popen([sys.executable, "-c", _connect_flood(n, _closed_port())])
    while child.poll() is None:
        mon.poll()
    mon.settle(0.3)
    delivered = len(_net_events(mon, child.pid))
    loss = mon.pipeline.loss_summary().to_json()
    sampled = loss["dropped"]["sampled"]
    ncpus = os.cpu_count() or 1
    # Per-CPU 1-in-N counters: a tenth, give or take one per CPU.
    assert n // 10 - ncpus <= delivered <= n // 10 + ncpus
    others = sum(1 for e in mon.events if e["kind"] == "network") - delivered
    assert n - delivered <= sampled <= n - delivered + 10 * (others + ncpus)
    assert loss["dropped"]["ring_full"] == 0


def test_aggregation_of_identical_events_adds_up_exactly(monitor) -> None:
    mon = monitor({"network_monitor"}, config=_config(window_ms=600_000), adaptive=False)
    n = 100_000
    child = subprocess.Popen([sys.executable, "-c", _connect_flood(n, _closed_port())])
    while child.poll() is None:
        mon.poll()
    mon.settle(0.3)
    mon.pipeline.replay.flush_aggregates()
    events = _net_events(mon, child.pid)
    immediate = [e for e in events if not e.get("aggregated")]
    summaries = [e for e in events if e.get("aggregated")]
    # Per-CPU maps (no shared atomics): the first occurrence on each CPU is sent at once.
    assert 1 <= len(immediate) <= (os.cpu_count() or 1)
    assert summaries and all(e["dport"] == immediate[0]["dport"] for e in summaries)
    assert len(immediate) + sum(e["count"] for e in summaries) == n
    loss = mon.pipeline.loss_summary().to_json()
    assert loss["aggregated_unreported"] == 0
    assert loss["lanes"]["bulk"]["attempted"] < n / 10  # ring traffic cut by >= 10x


def test_batch_lookup_of_a_map_returns_what_a_key_walk_returns(monitor) -> None:
    """Map.items (BPF_MAP_LOOKUP_BATCH, the aggregation and fold tables' reader) against a
    get_next_key walk of the same per-CPU table, in one chunk and in chunks of one entry."""
    mon = monitor({"network_monitor"}, config=_config(window_ms=600_000), adaptive=False)
    ports = [_closed_port() for _ in range(20)]
    code = "".join(_connect_flood(20, p) for p in ports)
    subprocess.run([sys.executable, "-c", code], check=True)
    mon.settle(0.3)
    agg = mon.pipeline.kernel.map("agg")
    key_len = R.agg_key_dtype.itemsize
    value_len = per_cpu_slot(R.agg_value_dtype).itemsize * mon.pipeline.kernel.ncpus
    walked = set(agg.keys(key_len))
    assert len(walked) >= len(ports)
    for chunk in (4096, 1):
        keys, values, n = agg.items(key_len, value_len, chunk=chunk)
        assert len(keys) == n * key_len and len(values) == n * value_len
        assert {keys[i * key_len:(i + 1) * key_len] for i in range(n)} == walked
    counts = {int(k["key"]): c for k, c, _ in mon.pipeline.kernel.agg_counts()
              if int(k["tgid"]) != 0}
    assert len(counts) >= len(ports)


def _blocking_config(mode: str):
    cfg = _config()
    net = dataclasses.replace(cfg.network, blocked_ips=("127.0.0.2/32", "::ffff:7f00:3/128"), mode=mode)
    return dataclasses.replace(cfg, network=net)


CONNECT_CHILD = ("import socket, sys\n"
                 "s = socket.socket()\n"
                 "try:\n"
                 "    s.connect(('127.0.0.2', 9))\n"
                 "except OSError as e:\n"
                 "    sys.exit(e.errno)\n")


def test_block_mode_refuses_connect_in_kernel_and_reports_it(monitor) -> None:
    mon = monitor({"network_monitor"}, config=_blocking_config("block"), adaptive=False)
    child = subprocess.run([sys.executable, "-c", CONNECT_CHILD])
    assert child.returncode == 1, "connect was not refused with EPERM"  # errno 1 = EPERM
    events = mon.wait_for(lambda e: e["kind"] == "network" and e["daddr"] == "127.0.0.2")
    assert events and events[0]["action"] == "blocked" and events[0]["lane"] == "critical"
    assert events[0]["severity"] == "high"
    # Other destinations still connect normally (refused by the closed port, not by us).
    other = subprocess.run([sys.executable, "-c", CONNECT_CHILD.replace("127.0.0.2", "127.0.0.1")])
    assert other.returncode == 111  # ECONNREFUSED


def test_audit_mode_reports_blocked_destination_without_refusing(monitor) -> None:
    mon = monitor({"network_monitor"}, config=_blocking_config("audit"), adaptive=False)
    child = subprocess.run([sys.executable, "-c", CONNECT_CHILD])
    assert child.returncode == 111
    events = mon.wait_for(lambda e: e["kind"] == "network" and e["daddr"] == "127.0.0.2")
    assert events and events[0]["action"] == "allowed" and events[0]["blocklisted"] is True
    assert events[0]["severity"] == "high" and events[0]["lane"] == "critical"


def test_max_entries_per_map_sizes_the_tables(monitor) -> None:
    cfg = _config()
    adv = dataclasses.replace(cfg.advanced, ebpf_params=dataclasses.replace(
        cfg.advanced.ebpf_params, max_entries_per_map=512))
    mon = monitor({"network_monitor"}, config=dataclasses.replace(cfg, advanced=adv))
    k = mon.pipeline.kernel
    assert [k._obj.map(m).max_entries for m in ("agg", "rate_buckets", "learned")] == [512] * 3
    assert mon.pipeline.ctx.procs.capacity == 512
