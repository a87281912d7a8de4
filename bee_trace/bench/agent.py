"""The agent under test, run as its own process (`python -m bee_trace.bench.agent SPEC_JSON`).

A separate process keeps the measurement honest: its CPU time, RSS and context switches are its
own (/proc/PID), and it is pinned to its CPU like a real agent would compete with the job.
It runs the real Pipeline with a JSON Lines sink, prints one JSON line when it is ready and one
with its loss summary and latency samples when it gets SIGTERM/SIGINT."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import sys
import time
from typing import Any

from .tally import Tally


def generated_patterns(n: int) -> list[str]:
    """n distinct globs that never match the bench's non-matching path (/etc/hostname): half
    literal basenames (`**/secret-N.key`), half wildcard basenames (`**/token-N-*.json`)."""
    out = []
    for i in range(n):
        out.append(f"**/secret-{i}.key" if i % 2 == 0 else f"**/token-{i}-*.json")
    return out


def build_config(spec: dict[str, Any]) -> Any:
    from ..config import FilesConfig, default_config
    cfg = default_config()
    pats = spec.get("patterns", "default")
    if pats != "default":
        gen = generated_patterns(int(pats))
        # Keep one matching pattern so the throughput/latency generators still produce events.
        cfg = dataclasses.replace(cfg, files=FilesConfig(watch_read=tuple(gen) + ("**/*.pem",),
                                                         watch_write=()))
    if spec.get("report_loopback"):
        net = cfg.network
        loopback: dict[str, Any] = {k: True for k in ("report_loopback", "alert_on_any_connection")
                                    if hasattr(net, k)}
        cfg = dataclasses.replace(cfg, network=dataclasses.replace(net, **loopback))
    if spec.get("dns_servers"):
        cfg = dataclasses.replace(cfg, network=dataclasses.replace(
            cfg.network, dns_servers=tuple(spec["dns_servers"])))
    if spec.get("unlimited"):
        # Measure the mechanism, not the policy: no bulk-lane rate limit or sampling.
        perf = cfg.performance
        changes: dict[str, Any] = {"max_events_per_second": 0, "sampling_rate": 1.0, "per_kind": {}}
        if hasattr(perf, "aggregation_window_ms"):
            changes["aggregation_window_ms"] = 0
        cfg = dataclasses.replace(cfg, performance=dataclasses.replace(perf, **changes))
    return cfg


def run(spec: dict[str, Any]) -> int:
    cpu = spec.get("cpu")
    if cpu is not None:
        os.sched_setaffinity(0, {int(cpu)})
    from ..pipeline import Pipeline, PipelineOptions
    from ..report import Report
    from ..sinks import Run, Sink
    from ..sinks.chain import build_chain

    stop = False

    def on_signal(signum: int, frame: Any) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    # Counts (sum of `count`) and latency on ring first occurrences only: tally.py says why.
    tally = Tally(spec.get("latency_kinds", ["file", "network"]),
                  spec.get("latency_comm", "loadgen"),       # only the generator's events are timed
                  by_comm_kind=bool(spec.get("count_by_comm_kind")),
                  max_samples=int(spec.get("max_latency_samples", 1_000_000)))
    sink_path = spec.get("sink", os.devnull)
    out = open(sink_path, "w", buffering=1 << 20)
    boottime = time.CLOCK_BOOTTIME
    clock = time.clock_gettime_ns

    class Probe(Sink):
        """Counts and latency at emission, per event and per run (the output itself is the
        product's chain)."""

        def __call__(self, ev: dict[str, Any]) -> None:
            tally.event(ev, clock(boottime))

        def emit_run(self, run: Run) -> None:
            tally.run(run.template, [row[0] for row in run.rows], clock(boottime))

    config = build_config(spec)
    # The same output chain as `bee-trace run --format jsonl --output FILE` (visibility filter,
    # end-of-run report, bounded writer queue, JSON Lines encoder), without the live table:
    # stdout carries the driver protocol here.
    chain = build_chain(config, "jsonl", out, out, Report(config, {}), verbose=True, live_table=False)

    # A pinned wake-up threshold means the adaptive tuner must not move it.
    opts = PipelineOptions(probes=set(spec.get("probes", ["file_monitor"])),
                           config=config, profile=spec.get("profile"),
                           adaptive=spec.get("bulk_wake_bytes") is None,
                           ring_critical_bytes=spec.get("ring_critical_bytes"),
                           ring_bulk_bytes=spec.get("ring_bulk_bytes"))
    pipeline = Pipeline(opts, sinks=[*chain.sinks, Probe()])
    if spec.get("bulk_wake_bytes") is not None:
        pipeline.kernel.bulk_wake_bytes = int(spec["bulk_wake_bytes"])
    try:
        pipeline.start()
    except Exception as e:  # report why, the driver records it
        print(json.dumps({"ready": False, "error": f"{type(e).__name__}: {e}"}), flush=True)
        return 1
    coverage = [dataclasses.asdict(c) for c in pipeline.kernel.coverage]
    rings = {"critical": pipeline.kernel.ring_size("ring_critical"),
             "bulk": pipeline.kernel.ring_size("ring_bulk")}
    assert pipeline.rings is not None
    signal.set_wakeup_fd(pipeline.rings.wake_fd(), warn_on_full_buffer=False)  # as cmd_run
    print(json.dumps({"ready": True, "pid": os.getpid(), "coverage": coverage}), flush=True)
    # The userspace caches' sizes every `cache_every_s` (the soak row: which fill and when).
    cache_every = float(spec.get("cache_every_s") or 0)
    cache_samples: list[tuple[float, dict[str, Any]]] = []
    t0 = next_cache = time.monotonic()
    while not stop:
        pipeline.step()
        if cache_every and (now := time.monotonic()) >= next_cache:
            next_cache = now + cache_every
            cache_samples.append((now - t0, pipeline.caches()))
    signal.set_wakeup_fd(-1)
    maps = map_occupancy(pipeline.kernel.maps()) if spec.get("map_occupancy") else {}
    summary = pipeline.stop()
    chain.close()
    out.close()
    result = {
        "summary": summary.to_json(),
        **tally.result(),
        "rings": rings,
        "maps": maps,
        "cache_samples": cache_samples,
    }
    print(json.dumps(result, default=str), flush=True)
    return 0


def map_occupancy(maps: list[Any]) -> dict[str, dict[str, Any]]:
    """Entries in each hash-like map against its size, read through our own fds (bpftool would
    open them by id, which the tamper probe rightly reports as another process touching them)."""
    from .._libbpf import HASH_MAP_TYPES, map_info
    out: dict[str, dict[str, Any]] = {}
    for m in maps:
        info = map_info(m.fd)
        if info is None or info[0] not in HASH_MAP_TYPES:
            continue
        typ, key_size, max_entries = info
        out[m.name] = {"type": HASH_MAP_TYPES[typ], "entries": len(m.keys(key_size)),
                       "max_entries": max_entries}
    return out


if __name__ == "__main__":
    sys.exit(run(json.loads(sys.argv[1])))
