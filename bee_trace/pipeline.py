"""decode -> confirm -> enrich -> classify -> filter -> sinks, over batches from both rings."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from . import patterns
from . import records as R
from .classify import classify, env_secret_names, meets
from .config import Config, default_config
from .decode import DecodeContext, Event, decode_record
from .kernel import Kernel
from .ringbuf import RingReader, RingSet

Sink = Callable[[Event], None]


@dataclass
class PipelineOptions:
    probes: set[str]
    config: Config = field(default_factory=default_config)
    command: str | None = None          # substring of the process name
    min_severity: str = "low"
    bulk_timeout_s: float = 0.02        # latency bound for bulk records (no wake-up per record)
    ring_critical_bytes: int | None = None
    ring_bulk_bytes: int | None = None


@dataclass
class Stats:
    """Userspace-side counts; the kernel's are read from the counters map."""

    received: int = 0                   # records read from the rings
    output: int = 0                     # events handed to sinks
    unconfirmed: int = 0                # kernel candidates that no glob matched (filter collisions)
    excluded: int = 0                   # exclude_paths / exclude_processes / --command
    below_severity: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)


class Pipeline:
    def __init__(self, opts: PipelineOptions, sinks: list[Sink]) -> None:
        self.opts = opts
        self.cfg = opts.config
        self.sinks = sinks
        self.stats = Stats()
        self.ctx = DecodeContext()
        ring_bytes = max(self.cfg.performance.event_buffer_size, 256) << 10
        self.kernel = Kernel(
            probes=set(opts.probes),
            ring_critical_bytes=opts.ring_critical_bytes or ring_bytes,
            ring_bulk_bytes=opts.ring_bulk_bytes or 4 * ring_bytes,
        )
        self.rings: RingSet | None = None
        self.started_ns = 0
        self.stopped = False

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        files = self.cfg.files
        self.kernel.start(patterns.build_filter(list(files.watch_read) + list(files.watch_write)))
        try:
            self.ctx.procs.seed()
            self.rings = RingSet([
                RingReader(self.kernel.map_fd("ring_critical"), self.kernel.ring_size("ring_critical"),
                           R.LANE_CRITICAL, self.kernel.ncpus),
                RingReader(self.kernel.map_fd("ring_bulk"), self.kernel.ring_size("ring_bulk"),
                           R.LANE_BULK, self.kernel.ncpus),
            ])
        except BaseException:
            self.kernel.close()
            raise
        self.started_ns = time.time_ns()

    def step(self, timeout_s: float | None = None) -> int:
        """Wait for records (at most the bulk latency bound), then drain; returns records read."""
        assert self.rings is not None
        self.rings.wait(self.opts.bulk_timeout_s if timeout_s is None else timeout_s)
        n = self.drain()
        if n:
            self.flush()
        return n

    def flush(self) -> None:
        for sink in self.sinks:
            flush = getattr(sink, "flush", None)
            if flush:
                flush()

    def drain(self) -> int:
        assert self.rings is not None
        total = 0
        while True:
            batches = self.rings.drain()
            if not batches:
                return total
            for batch in batches:
                total += len(batch)
                self.handle_batch(batch)

    def stop(self) -> dict[str, Any]:
        """Final drain, then detach; returns the loss summary."""
        if self.stopped:
            return self._summary
        self.drain()
        self.flush()
        self._summary = self.loss_summary()
        self.stopped = True
        if self.rings:
            self.rings.close()
        self.kernel.close()
        return self._summary

    # -- processing --------------------------------------------------------------------------
    def handle_batch(self, batch: np.ndarray) -> None:
        self.stats.received += len(batch)
        for rec in batch:
            ev = decode_record(rec, self.ctx)
            if ev is not None:
                self.handle_event(ev)

    def handle_event(self, ev: Event) -> None:
        if not self.confirm(ev):
            return
        classify(ev, self.cfg)
        if not meets(ev["severity"], self.opts.min_severity):
            self.stats.below_severity += 1
            return
        self.emit(ev)

    def emit(self, ev: Event) -> None:
        self.stats.output += 1
        self.stats.by_kind[ev["kind"]] = self.stats.by_kind.get(ev["kind"], 0) + 1
        for sink in self.sinks:
            sink(ev)

    def confirm(self, ev: Event) -> bool:
        """Exact policy checks the kernel's superset filter cannot make."""
        if self.opts.command and self.opts.command not in ev["comm"]:
            self.stats.excluded += 1
            return False
        kind = ev["kind"]
        if kind == "file":
            return self._confirm_file(ev)
        if kind == "memory":
            return self._confirm_memory(ev)
        return True

    def _confirm_file(self, ev: Event) -> bool:
        files = self.cfg.files
        path = ev["path"].removeprefix("…")
        if files.exclude_set.match(path):
            self.stats.excluded += 1
            return False
        pattern = files.read_set.match(path)
        if ev["access"] == "write":
            pattern = files.write_set.match(path) or pattern
        if not pattern:
            self.stats.unconfirmed += 1
            return False
        ev["pattern"] = pattern
        return True

    def _confirm_memory(self, ev: Event) -> bool:
        mem = self.cfg.memory
        if not mem.alert_on_memory_access or ev["comm"] in mem.exclude_processes:
            self.stats.excluded += 1
            return False
        if ev.get("technique") == "proc_environ":
            try:
                with open(f"/proc/{ev['target_pid']}/environ", "rb") as f:
                    names = env_secret_names(f.read(), mem.secret_env_patterns)
            except OSError:
                names = []
            ev["secret_env_names"] = names
        return True

    # -- loss accounting ---------------------------------------------------------------------
    def loss_summary(self) -> dict[str, Any]:
        per_cpu = self.kernel.counters_per_cpu()
        drops = per_cpu["drops"].sum(axis=0)
        lanes: dict[str, Any] = {}
        readers = self.rings.rings if self.rings else []
        for lane, name in enumerate(R.LANE_NAMES):
            reader = readers[lane] if lane < len(readers) else None
            lanes[name] = {
                "attempted": int(per_cpu["seq"][:, lane].sum()),
                "emitted": int(per_cpu["emitted"][:, lane].sum()),
                "received": reader.records if reader else 0,
                "sequence_gaps": reader.seq.missing() if reader else 0,
                **{cause: int(drops[lane][i]) for i, cause in enumerate(R.DROP_CAUSES)},
            }
        dropped = {cause: sum(lanes[n][cause] for n in R.LANE_NAMES) for cause in R.DROP_CAUSES}
        # A gap the kernel did not count as ring-full would be a silent loss: treat it as one.
        uncounted = sum(max(0, lanes[n]["sequence_gaps"] - lanes[n]["ring_full"]) for n in R.LANE_NAMES)
        lost = dropped["ring_full"] + dropped["shed"] + uncounted
        return {
            "inspected": int(per_cpu["inspected"].sum()),
            "candidates": int(per_cpu["candidates"].sum()),
            "received": self.stats.received,
            "output": self.stats.output,
            "unconfirmed": self.stats.unconfirmed,
            "excluded": self.stats.excluded,
            "below_severity": self.stats.below_severity,
            "dropped": dropped,
            "uncounted_gaps": uncounted,
            "lanes": lanes,
            "process_cache_evictions": self.ctx.procs.evictions,
            "verdict": "complete" if lost == 0 else "degraded",
        }
