"""What the kernel kept instead of sending, turned back into events: bulk aggregation counts
(summaries with `count`), critical folds (copies of the first event with `count`) and the spill
map's records: critical events and first-of-key bulk ones the rings could not take (reported
`late: true`). The pipeline calls these between batches and at stop."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from . import records as R
from .classify import classify
from .config import Config
from .confirm import Inodes
from .critical import FoldKey, FoldTracker
from .decode import DecodeContext, decode_record, iso_ts
from .event import Event
from .kernel import Kernel

_DROP_AGGREGATED = R.DROP_CAUSES.index("aggregated")
_DROP_FOLDED = R.DROP_CAUSES.index("folded")
_DROP_SPILLED = R.DROP_CAUSES.index("spilled")
# A fold key without a new count for this long is deleted from the kernel's table (its counts
# reported): twice the fold window, so a key still folding keeps its entry.
FOLD_IDLE_NS = 2_000_000_000


class Replay:
    def __init__(self, kernel: Kernel, ctx: DecodeContext, cfg: Config, inodes: Inodes,
                 handle: Callable[[Event, list[Event]], object],
                 emit_many: Callable[[list[Event]], None]) -> None:
        self.kernel = kernel
        self.ctx = ctx
        self.cfg = cfg
        self.inodes = inodes      # watched files by (dev, ino): names fold keys of forgotten events
        # confirm, classify, filter, then add to the list if shown (the pipeline's handle_event)
        self.handle = handle
        self.emit_many = emit_many   # down the output chain as one batch
        self.folds = FoldTracker()
        self._agg_seen: dict[tuple[int, int, int], int] = {}
        self.agg_reported = 0
        self._agg_folded_seen = 0
        self._folded_seen = 0
        self.spilled_reported = 0
        self._spill_drained = 0
        self._spills_seen = -1

    def _drops(self, drops: np.ndarray | None) -> np.ndarray:
        """Kernel drop counts by (lane, cause), all CPUs: one map read tells whether a table
        walk is needed at all. The pipeline reads them once per step for all three."""
        return self.kernel.drop_totals() if drops is None else drops

    def flush_aggregates(self, drops: np.ndarray | None = None) -> None:
        """Summary events for identical bulk events folded in the kernel since the last flush:
        the growth of each entry's cumulative count, with the window's first event as sample."""
        # One counters read instead of a walk of the whole table when nothing was folded since.
        folded = int(self._drops(drops)[R.LANE_BULK, _DROP_AGGREGATED])
        if folded == self._agg_folded_seen:
            return
        self._agg_folded_seen = folded
        seen: dict[tuple[int, int, int], int] = {}
        shown: list[Event] = []
        for key, total, sample in self.kernel.agg_counts():
            ident = (int(key["tgid"]), int(key["type"]), int(key["key"]))
            seen[ident] = total
            delta = total - self._agg_seen.get(ident, 0)
            if delta <= 0:
                continue
            ev = decode_record(summary_record(key, sample), self.ctx)
            if ev is None:
                continue
            self.agg_reported += delta
            ev["count"] = delta
            ev["aggregated"] = True
            self.handle(ev, shown)
        self._agg_seen = seen
        self.emit_many(shown)

    def drain_spill(self, drops: np.ndarray | None = None) -> int:
        """Events the kernel kept while a ring was full (critical ones, and the first of each new
        bulk key): reported late, never lost."""
        n = 0
        # The kernel counts a spill after it stored it: an unchanged count means nothing new.
        spills = int(self._drops(drops)[:, _DROP_SPILLED].sum())
        if spills == self._spills_seen:
            return 0
        self._spills_seen = spills
        spilled = self.kernel.pop_spilled()
        if spilled:
            self._spill_drained += len(spilled)
            self.kernel.update_settings(spill_drained=self._spill_drained)
        shown: list[Event] = []
        for count, rec in spilled:
            ev = decode_record(rec, self.ctx)
            if ev is None:
                continue
            ev["late"] = True
            if count > 1:
                ev["count"] = count
            self.spilled_reported += count
            self.handle(ev, shown)
            n += 1
        self.emit_many(shown)
        return n

    def flush_folds(self, drops: np.ndarray | None = None, force: bool = False) -> None:
        """Identical critical events counted in the kernel since the last look, as counts. Each
        look also deletes the keys idle for FOLD_IDLE_NS from the kernel's table, with what they
        counted until then, so the table holds live keys only and a full one (repeats then sent
        as records) empties again. `force` (housekeeping): look even with no new folds."""
        folded = int(self._drops(drops)[R.LANE_CRITICAL, _DROP_FOLDED])
        if folded == self._folded_seen and not force:
            return
        self._folded_seen = folded
        counts = self.kernel.fold_counts()
        now = time.clock_gettime_ns(time.CLOCK_BOOTTIME)
        idle = [k for k, (_, last) in counts.items() if now - last > FOLD_IDLE_NS]
        totals = {k: c for k, (c, _) in counts.items()}
        totals.update(self.kernel.pop_fold_counts(idle) if idle else {})
        self.emit_many(self.folds.summaries(totals, self.rebuild_folded))
        self.folds.forget_counts(idle)   # deleted: the kernel counts them from 1 again

    def folds_pending(self) -> int:
        """Folded events the kernel's table holds that were not read yet (read after the drop
        counters, so it may include a few folds they do not: the caller clamps at 0)."""
        if not self.kernel.loaded:
            return 0
        seen = self.folds.seen
        return sum(max(0, c - seen.get(k, 0)) for k, (c, _) in self.kernel.fold_counts().items())

    def rebuild_folded(self, key: FoldKey) -> Event | None:
        """An event for a fold key whose first event is no longer remembered: files by the
        inode's known name, memory access by technique and target."""
        tgid, kind, a, b = key
        info = self.ctx.procs.get(tgid)
        ev: Event = {"ts": iso_ts(time.time_ns()), "pid": tgid, "comm": info.comm if info else "",
                     "exe": info.exe if info else "", "severity": "low", "rule": ""}
        if kind == R.EV_FILE:
            # (the fold key has no generation: the table holds the number's current file)
            watched = self.inodes.get(b & 0xFFFFFFFF, a)
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


def summary_record(key: np.void, value: np.void) -> np.void:
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
    raw[off:off + R.AGG_SAMPLE_LEN] = np.frombuffer(bytes(value["sample"]), dtype=np.uint8)
    return rec[0]
