"""decode -> confirm -> enrich -> classify -> filter -> sinks, over batches from both rings."""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import patterns
from . import records as R
from .classify import classify, env_secret_names, meets
from .config import Config, default_config
from .control import Backpressure, Governor, Tuning, WakeTuner, tuning_for
from .critical import FoldTracker
from .decode import DecodeContext, Event, decode_record, iso_ts
from .egress.policy import EgressPolicy
from .identity import any_match
from .inodes import MAX_INODES, WatchedInode, kernel_dev, watched_inodes
from .kernel import Kernel, check_min_kernel
from .ringbuf import RingReader, RingSet
from .sinks import Run, Sink, as_sink
from .templates import TemplateCache, template_keys
from .verdict import StallWatch, decide

_DROP_AGGREGATED = R.DROP_CAUSES.index("aggregated")
_DROP_FOLDED = R.DROP_CAUSES.index("folded")
SPILL_MIN = 65536             # spill map entries (allocated only as used)
CRIT_FOLD_NS = 1_000_000_000  # identical critical events of a process: one record per second
IDLE_TIMEOUT_S = 0.25   # housekeeping tick while no bulk records flow
TEMPLATE_CACHE = 4096   # decoded events kept for repeated identical records
DRAIN_BUDGET_S = 0.05   # longest stretch of reading before housekeeping runs again
BULK_CHUNK = 128        # bulk records handled between two looks at the critical ring


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
    unconfirmed: int = 0                # kernel candidates that no glob matched (filter collisions)
    excluded: int = 0                   # exclude_paths / exclude_processes / --command
    below_severity: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    tamper: dict[str, int] = field(default_factory=dict)   # critical tamper events by rule
    stop_requests: int = 0              # SIGINT/SIGTERM to the agent: its senders go in the summary
    stopped_by: list[dict[str, Any]] = field(default_factory=list)


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
        self._agg_seen: dict[tuple[int, int, int], int] = {}
        self.agg_reported = 0
        self._agg_folded_seen = 0
        self._next_agg_flush = 0.0
        self._bulk_idle = True
        self._last_bulk = 0.0
        self.templates = TemplateCache(TEMPLATE_CACHE)
        self.inodes: dict[tuple[int, int], WatchedInode] = {}
        self.folds = FoldTracker()
        self._folded_seen = 0
        self.spilled_reported = 0
        self._spill_drained = 0
        self._last_reason = ""
        self.stall = StallWatch(opts.stall_bound_s)
        self.rings: RingSet | None = None
        self.started_ns = 0
        self.stopped = False
        self._summary: dict[str, Any] = {}
        self._egress_counts: dict[str, int] | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        check_min_kernel(self.cfg.advanced.min_kernel_version)
        files = self.cfg.files
        globs = list(files.watch_read) + list(files.watch_write)
        self.inodes = {(w.dev, w.ino): w for w in watched_inodes(globs, files.exclude_set)}
        self.kernel.start(patterns.build_filter(globs),
                          high_filter=patterns.build_filter(patterns.high_tier(globs)),
                          blocked=list(self.cfg.network.blocked_networks), bulk_idle=1,
                          inodes=list(self.inodes), crit_fold_ns=CRIT_FOLD_NS, egress=self.egress,
                          **self.tuning.kernel_settings())
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
        self.wake = WakeTuner(self.tuning, self.kernel.ring_size("ring_bulk"), current=self.tuning.wake_min)

    def step(self, timeout_s: float | None = None) -> int:
        """Wait for records (at most the bulk latency bound), then drain; returns records read."""
        assert self.rings is not None
        self.rings.wait(self.poll_timeout() if timeout_s is None else timeout_s)
        bulk_before = self.rings.rings[R.LANE_BULK].records
        n = self.drain()
        now = time.monotonic()
        self._track_bulk_activity(self.rings.rings[R.LANE_BULK].records > bulk_before, now)
        if self.tuning.agg_window_ns and now >= self._next_agg_flush:
            self._next_agg_flush = now + self.tuning.agg_window_ns / 1e9
            self.flush_aggregates()
        n += self.drain_spill()
        self.flush_folds()
        if n:
            self.flush()
        if self.opts.adaptive:
            self._adapt()
        return n

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

    def stop(self) -> dict[str, Any]:
        """Detach the programs, read what they left in the rings, then the counters."""
        if self.stopped:
            return self._summary
        self.kernel.detach()
        if self.rings:
            self.drain(budget_s=None)
        self._egress_counts = read_egress_counters(self.kernel) if "network_monitor" in self.kernel.probes else {}
        self.flush_aggregates()
        self.drain_spill()
        self.flush_folds()
        self.flush()
        self._summary = self.loss_summary()
        self.stopped = True
        if self.rings:
            self.rings.close()
        self.kernel.close()
        return self._summary

    # -- processing --------------------------------------------------------------------------
    def handle_batch(self, batch: np.ndarray) -> None:
        """Columns are pulled out once per batch; a record that reports the same thing as one
        already seen (same process, path or destination, flags) reuses that event's decoded,
        confirmed and classified template. Consecutive records of one template go to the sinks
        as one run, so a flood costs a few list operations per record."""
        self.stats.received += len(batch)
        h = batch["h"]
        self.stall.observe(h["ts_ns"], time.clock_gettime_ns(time.CLOCK_BOOTTIME))
        types = h["type"].tolist()
        keys, tgids = template_keys(batch, types)
        per_record = list(zip(h["ts_ns"].tolist(), h["tid"].tolist(), h["cpu"].tolist(),
                              h["seq"].tolist()))
        run_template: Event | None = None
        rows: list = []
        for i, kind in enumerate(types):
            key = keys[i]
            if key is not None:
                template = self.templates.templates.get(key)
                if template is not None:
                    if template is not run_template:
                        if rows:
                            self.emit_run(run_template, rows)  # type: ignore[arg-type]
                        run_template, rows = template, []
                    rows.append(per_record[i])
                    continue
                reason = self.templates.rejected.get(key)
                if reason is not None:
                    self._reject(reason)
                    continue
            if rows:  # keep the output in record order
                self.emit_run(run_template, rows)  # type: ignore[arg-type]
                run_template, rows = None, []
            rec = batch[i]
            ev = decode_record(rec, self.ctx)
            if kind in (R.EV_EXEC, R.EV_EXIT):
                # New exe/ancestry.
                self.templates.forget(tgids[i])
            if ev is None:
                continue
            reason = self.handle_event(ev)
            if key is not None:
                self.templates.remember(key, tgids[i], ev, reason)
        if rows:
            self.emit_run(run_template, rows)  # type: ignore[arg-type]

    def emit_run(self, template: Event, rows: list) -> None:
        run = Run(template, rows, self.ctx.realtime_offset_ns)
        self.stats.output += len(rows)
        self.stats.by_kind[template["kind"]] = self.stats.by_kind.get(template["kind"], 0) + len(rows)
        if template["kind"] == "tamper":
            self._count_tamper(template, len(rows))
        for sink in self.sinks:
            sink.emit_run(run)

    def flush_aggregates(self) -> None:
        """Summary events for identical bulk events folded in the kernel since the last flush:
        the growth of each entry's cumulative count, with the window's first event as sample."""
        # One counters read instead of a walk of the whole table when nothing was folded since.
        folded = int(self.kernel.counters_per_cpu()["drops"][:, R.LANE_BULK, _DROP_AGGREGATED].sum())
        if folded == self._agg_folded_seen:
            return
        self._agg_folded_seen = folded
        seen: dict[tuple[int, int, int], int] = {}
        for key, total, sample in self.kernel.agg_counts():
            ident = (int(key["tgid"]), int(key["type"]), int(key["key"]))
            seen[ident] = total
            delta = total - self._agg_seen.get(ident, 0)
            if delta <= 0:
                continue
            ev = decode_record(_summary_record(key, sample), self.ctx)
            if ev is None:
                continue
            self.agg_reported += delta
            ev["count"] = delta
            ev["aggregated"] = True
            self.handle_event(ev)
        self._agg_seen = seen

    def drain_spill(self) -> int:
        """Critical events the kernel kept while the ring was full: reported late, never lost."""
        n = 0
        spilled = self.kernel.pop_spilled()
        if spilled:
            self._spill_drained += len(spilled)
            self.kernel.update_settings(spill_drained=self._spill_drained)
        for count, rec in spilled:
            ev = decode_record(rec, self.ctx)
            if ev is None:
                continue
            ev["late"] = True
            if count > 1:
                ev["count"] = count
            self.spilled_reported += count
            self.handle_event(ev)
            n += 1
        return n

    def flush_folds(self) -> None:
        """Identical critical events counted in the kernel since the last look, as counts."""
        folded = int(self.kernel.counters_per_cpu()["drops"][:, R.LANE_CRITICAL, _DROP_FOLDED].sum())
        if folded == self._folded_seen:
            return
        self._folded_seen = folded
        for ev in self.folds.summaries(self.kernel.fold_counts(), self._rebuild_folded):
            self.emit(ev)

    def _rebuild_folded(self, key: tuple[int, int, int, int]) -> Event | None:
        """An event for a fold key whose first event is no longer remembered: files by the
        inode's known name, memory access by technique and target."""
        tgid, kind, a, b = key
        info = self.ctx.procs.get(tgid)
        ev: Event = {"ts": iso_ts(time.time_ns()), "pid": tgid, "comm": info.comm if info else "",
                     "exe": info.exe if info else "", "severity": "low", "rule": ""}
        if kind == R.EV_FILE:
            watched = self.inodes.get((b & 0xFFFFFFFF, a))
            if watched is None:
                return None
            ev.update(kind="file", path=watched.path, dev=b & 0xFFFFFFFF, ino=a, uid=b >> 33,
                      access="write" if b >> 32 & 1 else "read")
        elif kind == R.EV_MEM:
            ev.update(kind="memory", technique=R.TECHNIQUES.get(a & 0xFF, "unknown"),
                      target_pid=b, target_comm="", uid=a >> 32)
            if a >> 8 & 0xFFFFFF:
                ev["ptrace_request"] = a >> 8 & 0xFFFFFF
        else:
            return None
        classify(ev, self.cfg)
        return ev

    def handle_event(self, ev: Event) -> str | None:
        """Confirm, classify, filter, emit; None when shown, else why not (a Stats field)."""
        if not self.confirm(ev):
            self.folds.remember(ev, shown=False)
            return self._last_reason
        classify(ev, self.cfg)
        if not meets(ev["severity"], self.opts.min_severity):
            self.folds.remember(ev, shown=False)
            self._reject("below_severity")
            return "below_severity"
        self.folds.remember(ev)
        self.emit(ev)
        return None

    def _reject(self, reason: str) -> bool:
        setattr(self.stats, reason, getattr(self.stats, reason) + 1)
        self._last_reason = reason
        return False

    def emit(self, ev: Event) -> None:
        self.stats.output += 1
        self.stats.by_kind[ev["kind"]] = self.stats.by_kind.get(ev["kind"], 0) + 1
        if ev["kind"] == "tamper":
            self._count_tamper(ev, 1)
        for sink in self.sinks:
            sink(ev)

    def _count_tamper(self, ev: Event, n: int) -> None:
        if ev.get("severity") == "critical":
            n *= int(ev.get("count", 1) or 1)
            self.stats.tamper[ev["rule"]] = self.stats.tamper.get(ev["rule"], 0) + n

    def confirm(self, ev: Event) -> bool:
        """Exact policy checks the kernel's superset filter cannot make."""
        if ev["kind"] == "tamper":
            if ev["rule"] == "tamper.stop_request":  # the documented way to stop: not an event
                self.stats.stopped_by = (self.stats.stopped_by + [
                    {k: ev.get(k) for k in ("ts", "pid", "comm", "exe", "signal")}])[-5:]
                return self._reject("stop_requests")
            return True  # aimed at the agent: never filtered away
        if self.opts.command and self.opts.command not in ev["comm"]:
            return self._reject("excluded")
        kind = ev["kind"]
        if kind == "file":
            return self._confirm_file(ev)
        if kind == "memory":
            return self._confirm_memory(ev)
        return True

    def _confirm_file(self, ev: Event) -> bool:
        files = self.cfg.files
        path = ev["path"].removeprefix("…")
        watched = self.inodes.get((ev.get("dev", 0), ev.get("ino", 0)))
        if watched is not None and watched.path != path:
            # The inode of a watched file under another name (hard link, bind mount, rename):
            # decided on the identity, so no exclusion of the new name applies.
            ev["watched_path"] = watched.path
            path = watched.path
        elif ev["access"] in ("link", "rename"):
            return self._confirm_link(ev, path)
        elif files.exclude_set.match(path):
            return self._reject("excluded")
        pattern = files.read_set.match(path)
        if ev["access"] == "write":
            pattern = files.write_set.match(path) or pattern
        if not pattern:
            return self._reject("unconfirmed")
        ev["pattern"] = pattern
        self._learn_inode(ev.get("dev", 0), ev.get("ino", 0), path)
        return True

    def _confirm_link(self, ev: Event, new: str) -> bool:
        """A watched file under a new name (or a new watched name): reported, and the inode at
        the new name watched from now on (the kernel learns it too when it is opened)."""
        files = self.cfg.files
        old = ev.get("old_path") or ""
        pattern = files.read_set.match(new) or files.read_set.match(old)
        if not pattern:
            return self._reject("unconfirmed")
        ev["pattern"] = pattern
        watched = old if files.read_set.match(old) else new
        if watched != new:
            ev["watched_path"] = watched
        try:
            st = os.stat(new, follow_symlinks=ev["access"] != "link" or ev["syscall"] not in (88, 266))
        except OSError:
            return True
        if stat.S_ISREG(st.st_mode):
            dev = kernel_dev(st.st_dev)
            self._learn_inode(dev, st.st_ino, watched)
            self.kernel.watch_inode(dev, st.st_ino)
        return True

    def _learn_inode(self, dev: int, ino: int, path: str) -> None:
        if ino and (dev, ino) not in self.inodes and len(self.inodes) < MAX_INODES:
            self.inodes[(dev, ino)] = WatchedInode(dev, ino, path)

    def _confirm_memory(self, ev: Event) -> bool:
        mem = self.cfg.memory
        protected = ev.get("target_comm") in mem.protected_processes
        # Nothing excludes access to a protected process; exclusions match the executable.
        if not protected and (not mem.alert_on_memory_access
                              or any_match(mem.exclude_processes, ev["comm"], ev["exe"])):
            return self._reject("excluded")
        if ev.get("technique") == "proc_environ":
            try:
                with open(f"/proc/{ev['target_pid']}/environ", "rb") as f:
                    names = env_secret_names(f.read(), mem.secret_env_patterns)
            except OSError:
                names = []
            ev["secret_env_names"] = names
        return True

    def egress_summary(self) -> dict[str, Any]:
        if "network_monitor" not in self.kernel.probes:
            return {}
        out: dict[str, Any] = {"mode": self.cfg.network.mode, "enforce": self.egress.enforce,
                               "dns_servers": list(self.egress.dns_servers)}
        out.update(self._egress_counts or {})
        out["names_known"] = len(self.ctx.names)
        return out

    def coverage_gaps(self) -> list[str]:
        """What this run chose not to watch (the verdict names it)."""
        gaps = []
        if not self.tuning.compat_syscalls and self.kernel.probes & {"file_monitor", "memory_monitor"}:
            gaps.append("compat_syscalls")
        return gaps

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
        dropped["sink_overflow"] = sum(sink.overflow for sink in self.sinks)
        dropped["output_failed"] = sum(sink.failed for sink in self.sinks)
        # A gap the kernel did not count (ring-full, spilled, spill-full) would be a silent loss.
        uncounted = sum(max(0, lanes[n]["sequence_gaps"] - lanes[n]["ring_full"] - lanes[n]["spilled"]
                            - lanes[n]["spill_full"]) for n in R.LANE_NAMES)
        # Counts folded in the kernel but evicted before we read them are lost counts.
        # (repeats of events policy did not show are not losses)
        folded_unreported = max(0, dropped["folded"] - self.folds.reported - self.folds.rejected)
        summary = {
            "inspected": int(per_cpu["inspected"].sum()),
            "candidates": int(per_cpu["candidates"].sum()),
            # watched_inodes full (a flood of watched names): inodes not learned, names still match
            "inodes_not_learned": int(per_cpu["inodes_full"].sum()) + self.kernel.inodes_full,
            "received": self.stats.received,
            "output": self.stats.output,
            "unconfirmed": self.stats.unconfirmed,
            "excluded": self.stats.excluded,
            "below_severity": self.stats.below_severity,
            "dropped": dropped,
            "uncounted_gaps": uncounted,
            "lanes": lanes,
            "aggregated_reported": self.agg_reported,
            "aggregated_unreported": max(0, dropped["aggregated"] - self.agg_reported),
            "folded_reported": self.folds.reported,
            "folded_unreported": folded_unreported,
            "folded_unnamed_keys": [list(k) for k in self.folds.unnamed_keys],
            "spilled_reported": self.spilled_reported,
            "shed_raised": self.backpressure.raised,
            "governor": list(self.governor.actions),
            "process_cache_evictions": self.ctx.procs.evictions,
            "egress": self.egress_summary(),
            "tamper": dict(self.stats.tamper),
            "stopped_by": list(self.stats.stopped_by),
            "stalled_ms": self.stall.stalled_ms,
            "coverage_gaps": self.coverage_gaps(),
        }
        # verdict.py says what is a loss.
        verdict = decide(summary, tamper=self.stats.tamper, stalled_ms=self.stall.stalled_ms)
        summary["verdict"] = verdict.state
        summary["verdict_reasons"] = verdict.reasons
        return summary


def read_egress_counters(kernel: Kernel) -> dict[str, int]:
    """The egress counters summed over CPUs, and learned-table evictions (inserts that are no
    longer in the table: entries are never deleted, so the difference is what the LRU evicted)."""
    try:
        m = kernel.map("egress_counters")
    except Exception:  # noqa: BLE001 - network monitor off: no egress maps to read
        return {}
    stride = (R.egress_counters_dtype.itemsize + 7) & ~7
    raw = m.lookup(b"\0\0\0\0", stride * kernel.ncpus)  # type: ignore[attr-defined]
    if raw is None:
        return {}
    arr = np.frombuffer(raw, dtype=np.uint8).reshape(kernel.ncpus, stride)[:, :R.egress_counters_dtype.itemsize]
    per_cpu = np.ascontiguousarray(arr).view(R.egress_counters_dtype).reshape(-1)
    out = {n: int(per_cpu[n].sum()) for n in R.EGRESS_COUNTERS}
    present = len(kernel.map("learned").keys(R.addr_key_dtype.itemsize))  # type: ignore[attr-defined]
    out["learned_present"] = present
    out["learned_evicted"] = max(0, out["learned_new"] - present)
    return out


def _summary_record(key: np.void, value: np.void) -> np.void:
    """A kernel-shaped record for an aggregation entry, so the usual decoder names it."""
    rec = np.zeros(1, dtype=R.event_dtype)
    h = rec["h"]
    h["type"] = key["type"]
    h["lane"] = R.LANE_BULK
    h["tgid"] = key["tgid"]
    h["tid"] = key["tgid"]
    h["uid"] = value["uid"]
    h["ppid"] = value["ppid"]
    h["comm"] = value["comm"]
    h["ts_ns"] = time.clock_gettime_ns(time.CLOCK_BOOTTIME)
    raw = rec.view(np.uint8)
    off = R.header_dtype.itemsize
    raw[off:off + 96] = np.frombuffer(bytes(value["sample"]), dtype=np.uint8)
    return rec[0]
