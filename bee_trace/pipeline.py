"""Scheduling: reads both rings in turn (critical first), runs each batch through decode ->
confirm (confirm.py) -> classify -> filter -> sinks, replays what the kernel kept between batches
(replay.py), adapts wake-ups, shedding and sampling, and at stop builds the loss summary (loss.py)."""

from __future__ import annotations

import gc
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import patterns
from . import records as R
from .classify import classify, severity_rank
from .config import Config, default_config
from .confirm import Confirmer, Inodes, Reject
from .control import Backpressure, Governor, Tuning, WakeTuner, tuning_for
from .critical import REJECTED_KEYS, REMEMBERED
from .decode import CHUNKS_PENDING_MAX, DecodeContext, decode_record
from .egress.policy import EgressPolicy
from .event import Event
from .inodes import InodeTable, WatchedInode, watched_inodes
from .kernel import Kernel, check_min_kernel
from .loss import LossSummary, lane_losses, read_egress_counters, total_drops, uncounted_gaps
from .record_view import RecordView
from .replay import Replay
from .ringbuf import H_CPU, H_FLAGS, H_SEQ, H_TGID, H_TID, H_TS, H_TYPE, Batch, RingReader, RingSet
from .sinks import Run, Sink, as_sink
from .templates import TemplateCache, template_key
from .verdict import StallWatch, decide

# Spill map entries, allocated only as used (≈ 420 bytes each). First-of-key bulk records may
# fill a quarter (bpf/critical.h), so the critical lane keeps more room than the 65,536 entries
# it had alone.
SPILL_MIN = 131072
CRIT_FOLD_NS = 1_000_000_000  # identical critical events of a process: one record per second
# Housekeeping tick while no bulk records flow. Nothing waits for it: the kernel wakes the
# reader for every critical record and, while idle, for the first bulk one; drops are cumulative
# kernel counters. It only bounds how late folded counts and aggregates are flushed and what an
# idle agent costs (4 ticks/s were 0.4 % of a core, 1/s is a quarter of that).
IDLE_TIMEOUT_S = 1.0
TEMPLATE_CACHE = 4096   # decoded events kept for repeated identical records
DRAIN_BUDGET_S = 0.05   # longest stretch of reading before housekeeping runs again
BULK_CHUNK = 16         # bulk records handled between two looks at the critical ring (≈ 0.7 ms here)
# How often spilled, folded and aggregated records are looked for: the counters read that says
# whether any are there costs ≈ 140 µs right after a wake-up on this VM (≈ 5 µs warm).
REPLAY_EVERY_S = 0.02
HOUSEKEEPING_S = 5.0    # how often exited processes and names the kernel dropped are forgotten


GC_YOUNG_THRESHOLD = 20_000  # allocations between young collections (Python's default: 700)


def settle_gc() -> None:
    """Once probes are attached: what exists now (configuration, compiled globs, the libbpf
    binding, the seeded process cache) lives as long as the run, so it is frozen out of the
    collector's view, and young collections run less often (each event allocates a few dicts
    that die young). Full collections walked all of it and stalled the reader (bench row 9)."""
    gc.collect()
    gc.freeze()
    _, mid, old = gc.get_threshold()
    gc.set_threshold(max(GC_YOUNG_THRESHOLD, gc.get_threshold()[0]), mid, old)


@dataclass
class PipelineOptions:
    probes: set[str]
    config: Config = field(default_factory=default_config)
    command: str | None = None          # substring of the process name
    min_severity: str = "low"
    profile: str | None = None          # overrides performance.profile
    ring_critical_bytes: int | None = None
    ring_bulk_bytes: int | None = None
    adaptive: bool = True               # backpressure, wake-up tuning and the CPU governor
    stall_bound_s: float | None = None  # records waiting longer mean the reader stalled (verdict)


@dataclass
class Stats:
    """Userspace-side counts; the kernel's are read from the counters map."""

    received: int = 0                   # records read from the rings
    output: int = 0                     # events handed to sinks
    rejected: Counter[Reject] = field(default_factory=Counter)   # events not shown, by why
    by_kind: dict[str, int] = field(default_factory=dict)
    tamper: dict[str, int] = field(default_factory=dict)   # critical tamper events by rule


class Pipeline:
    def __init__(self, opts: PipelineOptions, sinks: Sequence[Sink | Callable[[Event], None]]) -> None:
        self.opts = opts
        self.cfg = opts.config
        self.sinks: list[Sink] = [as_sink(s) for s in sinks]
        self.stats = Stats()
        self.ctx = DecodeContext()
        self.ctx.procs.capacity = self.cfg.advanced.ebpf_params.max_entries_per_map
        self.ctx.names.capacity = self.cfg.advanced.ebpf_params.max_entries_per_map
        self.egress = EgressPolicy.from_config(self.cfg.network)
        self.tuning: Tuning = tuning_for(self.cfg, opts.profile)
        self.kernel = Kernel(
            probes=set(opts.probes),
            ring_critical_bytes=opts.ring_critical_bytes or self.tuning.ring_critical_bytes,
            ring_bulk_bytes=opts.ring_bulk_bytes or self.tuning.ring_bulk_bytes,
            bulk_wake_bytes=self.tuning.wake_min,
            block=self.cfg.network.mode == "block",
            table_entries=self.cfg.advanced.ebpf_params.max_entries_per_map,
            spill_entries=max(SPILL_MIN, self.cfg.advanced.ebpf_params.max_entries_per_map),
            fail_closed=self.cfg.network.fail_closed,
            compat_syscalls=self.tuning.compat_syscalls,
        )
        self.bulk_timeout_s = self.tuning.bulk_timeout_s
        self.backpressure = Backpressure()
        self.governor = Governor(self.cfg.performance.cpu_budget_percent, dict(self.tuning.sample_every))
        self.wake: WakeTuner | None = None
        self._next_agg_flush = 0.0
        self._next_replay = 0.0
        self._next_housekeeping = 0.0
        self._bulk_idle = True
        self._last_bulk = 0.0
        self.templates = TemplateCache(TEMPLATE_CACHE)
        self.inodes: Inodes = InodeTable()   # watched files by (dev, ino): seeded at start, learned since
        self._inodes_dropped_seen = 0        # the kernel's stale + reclaimed counts at the last sync
        self.confirmer = Confirmer(self.cfg, opts.command, self.inodes, self.watch_file,
                                   self.sync_inodes)
        self.replay = Replay(self.kernel, self.ctx, self.cfg, self.inodes, self.handle_event,
                             self.emit_many)
        self.stall = StallWatch(opts.stall_bound_s)
        self._min_rank = severity_rank(opts.min_severity)
        if self._min_rank < 0:
            raise ValueError(f"unknown severity {opts.min_severity!r}")
        self.rings: RingSet | None = None
        self.started_ns = 0
        self.stopped = False
        self._summary = LossSummary()
        self._egress_counts: dict[str, int] | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        check_min_kernel(self.cfg.advanced.min_kernel_version)
        files = self.cfg.files
        globs = list(files.watch_read) + list(files.watch_write)
        self.inodes.clear()
        seeded = self.kernel.start(patterns.build_filter(globs),
                                   high_filter=patterns.build_filter(patterns.high_tier(globs)),
                                   blocked=list(self.cfg.network.blocked_networks), bulk_idle=1,
                                   inodes=watched_inodes(globs, files.exclude_set),
                                   crit_fold_ns=CRIT_FOLD_NS, egress=self.egress,
                                   **self.tuning.kernel_settings())
        for w in seeded:
            self.inodes.add(w)
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
        settle_gc()
        self.wake = WakeTuner(self.tuning, self.kernel.ring_size("ring_bulk"), current=self.tuning.wake_min)

    def step(self, timeout_s: float | None = None) -> int:
        """Wait for records (at most the bulk latency bound), then drain; returns records read."""
        assert self.rings is not None
        self.rings.wait(self.poll_timeout() if timeout_s is None else timeout_s)
        bulk_before = self.rings.rings[R.LANE_BULK].records
        n = self.drain()
        now = time.monotonic()
        self._track_bulk_activity(self.rings.rings[R.LANE_BULK].records > bulk_before, now)
        if now >= self._next_replay:
            # What the kernel kept (spill, folds, aggregates) is looked at every REPLAY_EVERY_S,
            # not after every batch: one counters read tells whether anything is there.
            self._next_replay = now + REPLAY_EVERY_S
            drops = self.kernel.drop_totals()
            if self.tuning.agg_window_ns and now >= self._next_agg_flush:
                self._next_agg_flush = now + self.tuning.agg_window_ns / 1e9
                self.replay.flush_aggregates(drops)
            n += self.replay.drain_spill(drops)
            self.replay.flush_folds(drops)
        if n:
            self.flush()
        if self.opts.adaptive:
            self._adapt()
        if now >= self._next_housekeeping:
            self._next_housekeeping = now + HOUSEKEEPING_S
            self.housekeep()
        return n

    def housekeep(self) -> None:
        """Forget what no record can need any more: processes that exited a grace period ago
        and names the kernel no longer puts on records. Under a churn of short-lived processes
        and DNS names the caches then stay near what is alive, well under their bounds."""
        boot_ns = time.clock_gettime_ns(time.CLOCK_BOOTTIME)
        self.ctx.procs.expire(boot_ns)
        self.ctx.names.expire(boot_ns)
        self.sync_inodes()
        if self.kernel.loaded:
            self.replay.flush_folds(force=True)   # the kernel's fold table keeps live keys only

    def watch_file(self, w: WatchedInode, follow: bool = True) -> WatchedInode | None:
        """A watched file's new name (link/rename): into the kernel's watched_inodes, and opened
        once so the kernel records which inode it is."""
        if not self.kernel.watch_inode(w.dev, w.ino):
            return None
        return self.kernel.adopt(w, follow)

    def sync_inodes(self) -> None:
        """The watched-inode table follows the kernel's when that dropped entries (deleted
        files) since the last look: one counters read, a map walk only then."""
        if not self.kernel.loaded:
            return
        per_cpu = self.kernel.counters_per_cpu()
        dropped = int(per_cpu["inodes_stale"].sum() + per_cpu["inodes_reclaimed"].sum())
        if dropped == self._inodes_dropped_seen:
            return
        self._inodes_dropped_seen = dropped
        self.inodes.sync(self.kernel.inode_entries())

    def poll_timeout(self) -> float:
        """How long step() waits: the bulk latency bound while bulk records flow, else the slow
        housekeeping tick (the kernel then wakes us for the first bulk record)."""
        return IDLE_TIMEOUT_S if self._bulk_idle else self.bulk_timeout_s

    def _track_bulk_activity(self, active: bool, now: float) -> None:
        """Poll at the bulk latency bound while bulk records flow; after a quiet second poll
        slowly and let the kernel wake us for the first record instead (idle CPU ~0)."""
        if active:
            self._last_bulk = now
            if self._bulk_idle:
                self._bulk_idle = False
                self.kernel.update_settings(bulk_idle=0)
        elif not self._bulk_idle and now - self._last_bulk > 1.0:
            self._bulk_idle = True
            self.kernel.update_settings(bulk_idle=1)

    def _adapt(self) -> None:
        """Backpressure, wake-up threshold and CPU governor: each writes settings on change."""
        assert self.rings is not None and self.wake is not None
        bulk = self.rings.rings[R.LANE_BULK]
        changes: dict[str, object] = {}
        level = self.backpressure.update(bulk.lag_bytes() / bulk.size)
        if level is not None:
            changes["shed_level"] = level
        wake = self.wake.update(bulk.records)
        if wake is not None:
            changes["bulk_wake_bytes"] = wake
        # max-coverage promises every event: the governor never samples there.
        sampling = self.governor.update() if self.tuning.governed else None
        if sampling is not None:
            se = [0] * R.NR_KINDS
            for t, n in sampling.items():
                se[t] = n
            changes["sample_every"] = se
        if changes:
            self.kernel.update_settings(**changes)

    def flush(self) -> None:
        for sink in self.sinks:
            sink.flush()

    def drain(self, budget_s: float | None = DRAIN_BUDGET_S) -> int:
        """Read both rings: the critical one to empty, then one bounded bulk chunk, again and
        again. Small bulk chunks keep critical latency low under a bulk flood; the time budget
        hands control back to step() for housekeeping (backpressure, stop) even if the rings
        never empty. budget_s None: until both are empty."""
        assert self.rings is not None
        critical, bulk = self.rings.rings
        deadline = None if budget_s is None else time.monotonic() + budget_s
        total = 0
        while True:
            n = 0
            while True:
                batch = critical.read_batch()
                if not len(batch):
                    break
                n += len(batch)
                self.handle_batch(batch)
                # A critical flow faster than we handle it never empties the ring: the budget
                # still applies, or spill, fold and sink housekeeping would wait for it to end.
                if deadline is not None and time.monotonic() >= deadline:
                    return total + n
            batch = bulk.read_batch(BULK_CHUNK)
            if len(batch):
                # A DNS answer's record (critical lane) is committed before any connect to the
                # address it taught: read those first, so these connects are named.
                while True:
                    first = critical.read_batch()
                    if not len(first):
                        break
                    n += len(first)
                    self.handle_batch(first)
                n += len(batch)
                self.handle_batch(batch)
            total += n
            if not n or (deadline is not None and time.monotonic() >= deadline):
                return total

    def stop(self) -> LossSummary:
        """Detach the programs, read what they left in the rings, then the counters."""
        if self.stopped:
            return self._summary
        self.kernel.detach()
        if self.rings:
            self.drain(budget_s=None)
        self._egress_counts = read_egress_counters(self.kernel) if "network_monitor" in self.kernel.probes else {}
        self.replay.flush_aggregates()
        self.replay.drain_spill()
        self.replay.flush_folds()
        self.flush()
        self._summary = self.loss_summary()
        self.stopped = True
        if self.rings:
            self.rings.close()
        self.kernel.close()
        return self._summary

    # -- processing --------------------------------------------------------------------------
    def handle_batch(self, batch: Batch) -> None:
        """A record that reports the same thing as one already seen (same process, path or
        destination, flags) reuses that event's decoded, confirmed and classified template.
        Consecutive records of one template go to the sinks as one run, so a flood costs a few
        list operations per record; the others are decoded from views of the batch's bytes and
        go to the sinks together (one call down the chain), in record order with the runs."""
        if not batch.headers:
            return
        self.stats.received += len(batch)
        self.stall.observe(min(t[H_TS] for t in batch.headers),
                           time.clock_gettime_ns(time.CLOCK_BOOTTIME))
        raw = batch.raw
        templates, rejected = self.templates.templates, self.templates.rejected
        run_template: Event | None = None
        rows: list = []
        shown: list[Event] = []
        for t, off in zip(batch.headers, batch.offsets):
            kind = t[H_TYPE]
            key = template_key(raw, off, kind, t[H_FLAGS])
            if key is not None:
                template = templates.get(key)
                if template is not None:
                    if template is not run_template:
                        if rows:
                            self.emit_run(run_template, rows)  # type: ignore[arg-type]
                        elif shown:
                            self.emit_many(shown)
                            shown = []
                        run_template, rows = template, []
                    rows.append((t[H_TS], t[H_TID], t[H_CPU], t[H_SEQ]))
                    continue
                reason = rejected.get(key)
                if reason is not None:
                    self.stats.rejected[reason] += 1
                    continue
            if rows:  # keep the output in record order
                self.emit_run(run_template, rows)  # type: ignore[arg-type]
                run_template, rows = None, []
            ev = decode_record(RecordView(raw, off, t), self.ctx)
            if kind in (R.EV_EXEC, R.EV_EXIT):
                # New exe/ancestry.
                self.templates.forget(t[H_TGID])
            if ev is None:
                continue
            reason = self.handle_event(ev, shown)
            if key is not None:
                self.templates.remember(key, t[H_TGID], ev, reason)
        if rows:
            self.emit_run(run_template, rows)  # type: ignore[arg-type]
        elif shown:
            self.emit_many(shown)

    def emit_run(self, template: Event, rows: list) -> None:
        run = Run(template, rows, self.ctx.realtime_offset_ns)
        self.stats.output += len(rows)
        self.stats.by_kind[template["kind"]] = self.stats.by_kind.get(template["kind"], 0) + len(rows)
        if template["kind"] == "tamper":
            self._count_tamper(template, len(rows))
        for sink in self.sinks:
            sink.emit_run(run)

    def handle_event(self, ev: Event, shown: list[Event] | None = None) -> Reject | None:
        """Confirm, classify, filter, then emit (or, given `shown`, add it there for the
        caller to emit); None when shown, else why not."""
        reason = self.confirmer.confirm(ev)
        if reason is None:
            classify(ev, self.cfg)
            if self._min_rank and severity_rank(ev["severity"]) < self._min_rank:
                reason = Reject.BELOW_SEVERITY
        if reason is not None:
            self.replay.folds.remember(ev, shown=False)
            self.stats.rejected[reason] += 1
            return reason
        self.replay.folds.remember(ev)
        if shown is None:
            self.emit(ev)
        else:
            shown.append(ev)
        return None

    def emit(self, ev: Event) -> None:
        self.emit_many([ev])

    def emit_many(self, events: list[Event]) -> None:
        if not events:
            return
        stats = self.stats
        stats.output += len(events)
        by_kind = stats.by_kind
        for ev in events:
            kind = ev["kind"]
            by_kind[kind] = by_kind.get(kind, 0) + 1
            if kind == "tamper":
                self._count_tamper(ev, 1)
        for sink in self.sinks:
            sink.emit_many(events)

    def _count_tamper(self, ev: Event, n: int) -> None:
        if ev.get("severity") == "critical":
            n *= int(ev.get("count", 1) or 1)
            self.stats.tamper[ev["rule"]] = self.stats.tamper.get(ev["rule"], 0) + n

    def coverage_gaps(self) -> list[str]:
        """What this run chose not to watch (the verdict names it)."""
        gaps = []
        if not self.tuning.compat_syscalls and self.kernel.probes & {"file_monitor", "memory_monitor"}:
            gaps.append("compat_syscalls")
        return gaps

    # -- loss accounting (loss.py) -------------------------------------------------------------
    def loss_summary(self) -> LossSummary:
        self.sync_inodes()
        per_cpu = self.kernel.counters_per_cpu()
        lanes = lane_losses(per_cpu, self.rings.rings if self.rings else [])
        dropped = total_drops(lanes, self.sinks)
        folds = self.replay.folds
        summary = LossSummary(
            inspected=int(per_cpu["inspected"].sum()),
            candidates=int(per_cpu["candidates"].sum()),
            inodes_not_learned=int(per_cpu["inodes_full"].sum()) + self.kernel.inodes_full,
            inodes_stale=int(per_cpu["inodes_stale"].sum()),
            inodes_reclaimed=int(per_cpu["inodes_reclaimed"].sum()),
            received=self.stats.received,
            output=self.stats.output,
            unconfirmed=self.stats.rejected[Reject.UNCONFIRMED],
            excluded=self.stats.rejected[Reject.EXCLUDED],
            below_severity=self.stats.rejected[Reject.BELOW_SEVERITY],
            dropped=dropped,
            uncounted_gaps=uncounted_gaps(lanes),
            lanes=lanes,
            aggregated_reported=self.replay.agg_reported,
            aggregated_unreported=max(0, dropped.aggregated - self.replay.agg_reported),
            folded_reported=folds.reported,
            # Folded in the kernel but neither reported nor still in its table to be read: lost
            # counts (repeats of events policy did not show are not losses).
            folded_unreported=max(0, dropped.folded - folds.reported - folds.rejected
                                  - self.replay.folds_pending()),
            folded_unnamed_keys=[list(k) for k in folds.unnamed_keys],
            folds_full=int(per_cpu["folds_full"].sum()),
            spilled_reported=self.replay.spilled_reported,
            shed_raised=self.backpressure.raised,
            governor=self.governor.summary(),
            process_cache_evictions=self.ctx.procs.evictions,
            caches=self.caches(),
            egress=self.egress_summary(),
            tamper=dict(self.stats.tamper),
            stopped_by=list(self.confirmer.stopped_by),
            stalled_ms=self.stall.stalled_ms,
            coverage_gaps=self.coverage_gaps(),
        )
        # verdict.py says what is a loss.
        verdict = decide(summary, tamper=self.stats.tamper, stalled_ms=self.stall.stalled_ms)
        summary.verdict, summary.verdict_reasons = verdict.state, verdict.reasons
        return summary

    def caches(self) -> dict[str, dict[str, int]]:
        """Every userspace table that grows with what the run sees: its entries and bound, how
        many the bound pushed out (`evicted`) and, where entries expire, how many were no longer
        needed (`expired`)."""
        procs, names, folds, chunks = self.ctx.procs, self.ctx.names, self.replay.folds, self.ctx.chunks
        return {
            "processes": {"entries": len(procs), "bound": procs.capacity, "evicted": procs.evictions,
                          "expired": procs.expired},
            "dns_names": {"entries": len(names), "bound": names.capacity, "evicted": names.evictions,
                          "expired": names.expired},
            "templates": {"entries": len(self.templates), "bound": self.templates.capacity,
                          "evicted": self.templates.evictions},
            "fold_first_events": {"entries": len(folds.first), "bound": REMEMBERED,
                                  "evicted": folds.first_evictions},
            "fold_hidden_keys": {"entries": len(folds.hidden), "bound": REJECTED_KEYS,
                                 "evicted": folds.hidden_evictions},
            # Nothing that exists is pushed out (a full table refuses: inodes_not_learned);
            # expired: entries of files deleted since (the kernel dropped them).
            "watched_inodes": {"entries": len(self.inodes), "bound": self.inodes.bound, "evicted": 0,
                               "expired": self.inodes.expired},
            "path_chunks": {"entries": len(chunks), "bound": CHUNKS_PENDING_MAX,
                            "evicted": self.ctx.chunks_evicted},
        }

    def egress_summary(self) -> dict[str, Any]:
        if "network_monitor" not in self.kernel.probes:
            return {}
        out: dict[str, Any] = {"mode": self.cfg.network.mode, "enforce": self.egress.enforce,
                               "dns_servers": list(self.egress.dns_servers)}
        out.update(self._egress_counts or {})
        out["names_known"] = len(self.ctx.names)
        return out
