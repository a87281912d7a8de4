"""Loss accounting: the typed summary of what was inspected, received, shown and dropped (by cause
and lane), built from the kernel's counters and userspace's counts; `to_json()` is the `loss`
object of the run's summary record (its field names are part of the JSON contract)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from . import records as R

if TYPE_CHECKING:
    from .kernel import Kernel


@dataclass
class Drops:
    """Records the kernel did not send, by cause (records.DROP_CAUSES, in that order)."""

    ring_full: int = 0
    sampled: int = 0
    rate_limited: int = 0
    aggregated: int = 0
    shed: int = 0
    folded: int = 0
    spilled: int = 0
    spill_full: int = 0
    first_lost: int = 0
    read_fault: int = 0

    def counts(self) -> dict[str, int]:
        """Cause -> count, in declaration order (the JSON shape)."""
        return dataclasses.asdict(self)


assert tuple(f.name for f in dataclasses.fields(Drops)) == R.DROP_CAUSES, "Drops must mirror DROP_CAUSES"


@dataclass
class Dropped(Drops):
    """All lanes' kernel drops plus what our outputs could not take."""

    sink_overflow: int = 0      # the writer queue was full (bulk text outputs)
    output_failed: int = 0      # the output failed (disk full, EIO...)


_D = TypeVar("_D", bound=Drops)


@dataclass
class LaneLoss:
    attempted: int = 0          # records the kernel meant to send (its sequence numbers)
    emitted: int = 0            # records committed to the ring
    received: int = 0           # records read from the ring
    sequence_gaps: int = 0      # sequence numbers never read
    drops: Drops = field(default_factory=Drops)

    def to_json(self) -> dict[str, int]:
        return {"attempted": self.attempted, "emitted": self.emitted, "received": self.received,
                "sequence_gaps": self.sequence_gaps, **self.drops.counts()}


@dataclass
class LossSummary:
    inspected: int = 0                  # file opens inspected in the kernel
    candidates: int = 0                 # of those, passed the kernel's superset filter
    inodes_not_learned: int = 0         # watched_inodes full of existing files: not learned (names still match)
    inodes_stale: int = 0               # watched (dev, ino) whose number another file got: dropped at its open
    inodes_reclaimed: int = 0           # entries of deleted files dropped to make room
    received: int = 0                   # records read from both rings
    output: int = 0                     # events handed to sinks
    unconfirmed: int = 0                # kernel candidates that no glob matched
    excluded: int = 0
    below_severity: int = 0
    dropped: Dropped = field(default_factory=Dropped)
    uncounted_gaps: int = 0             # gaps the kernel did not count: silent loss
    lanes: dict[str, LaneLoss] = field(default_factory=dict)
    aggregated_reported: int = 0
    aggregated_unreported: int = 0
    folded_reported: int = 0
    folded_unreported: int = 0
    folded_unnamed_keys: list[list[int]] = field(default_factory=list)   # the last few, to debug
    folds_full: int = 0                 # repeats sent as records because fold_counts was full
    spilled_reported: int = 0
    shed_raised: int = 0                # times backpressure raised the shed level
    governor: list[Any] = field(default_factory=list)
    process_cache_evictions: int = 0
    # userspace tables by name: entries, bound, evicted (by the bound), expired (no longer needed)
    caches: dict[str, dict[str, int]] = field(default_factory=dict)
    egress: dict[str, Any] = field(default_factory=dict)   # egress_summary(); {} without network
    tamper: dict[str, int] = field(default_factory=dict)   # critical tamper events by rule
    stopped_by: list[dict[str, Any]] = field(default_factory=list)
    stalled_ms: int | None = None
    coverage_gaps: list[str] = field(default_factory=list)   # chosen by the profile: "compat_syscalls"
    verdict: str = "complete"
    verdict_reasons: list[dict[str, Any]] = field(default_factory=list)
    otlp: dict[str, Any] | None = None  # the OTLP output's delivery counts (fleet.py), when used

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if f.name == "dropped":
                v = v.counts()
            elif f.name == "lanes":
                v = {name: lane.to_json() for name, lane in v.items()}
            elif f.name == "otlp" and v is None:
                continue
            elif isinstance(v, (list, dict)):
                v = type(v)(v)
            out[f.name] = v
        return out

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> LossSummary:
        """The inverse of to_json (missing counts are 0): a summary read back from a stream."""
        names = {f.name for f in dataclasses.fields(cls)} - {"dropped", "lanes"}
        loss = cls(**{k: v for k, v in d.items() if k in names})
        loss.dropped = _drops(Dropped, d.get("dropped") or {})
        loss.lanes = {name: LaneLoss(drops=_drops(Drops, c),
                                     **{k: int(c.get(k, 0) or 0)
                                        for k in ("attempted", "emitted", "received", "sequence_gaps")})
                      for name, c in (d.get("lanes") or {}).items()}
        return loss

    def with_overflow(self, n: int) -> LossSummary:
        """This summary with n more events an output could not deliver (and the verdict that follows)."""
        loss = dataclasses.replace(self, dropped=dataclasses.replace(
            self.dropped, sink_overflow=self.dropped.sink_overflow + n))
        if n:
            loss.verdict = "degraded"
        return loss


def _drops(cls: type[_D], d: dict[str, Any]) -> _D:
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: int(v or 0) for k, v in d.items() if k in names})


def lane_losses(per_cpu: np.ndarray, readers: list[Any]) -> dict[str, LaneLoss]:
    """Per lane: the kernel's counters (summed over CPUs) and what its reader saw."""
    drops = per_cpu["drops"].sum(axis=0)
    lanes: dict[str, LaneLoss] = {}
    for lane, name in enumerate(R.LANE_NAMES):
        reader = readers[lane] if lane < len(readers) else None
        lanes[name] = LaneLoss(
            attempted=int(per_cpu["seq"][:, lane].sum()),
            emitted=int(per_cpu["emitted"][:, lane].sum()),
            received=reader.records if reader else 0,
            sequence_gaps=reader.seq.missing() if reader else 0,
            drops=Drops(*(int(drops[lane][i]) for i in range(R.NR_DROP_CAUSES))),
        )
    return lanes


def total_drops(lanes: dict[str, LaneLoss], sinks: list[Any]) -> Dropped:
    """Both lanes' drops by cause, plus the events the outputs could not write."""
    per_lane = [lane.drops.counts() for lane in lanes.values()]
    return Dropped(**{cause: sum(d[cause] for d in per_lane) for cause in R.DROP_CAUSES},
                   sink_overflow=sum(s.overflow for s in sinks),
                   output_failed=sum(s.failed for s in sinks))


def uncounted_gaps(lanes: dict[str, LaneLoss]) -> int:
    """A gap the kernel did not count (ring-full, spilled, spill-full) would be a silent loss."""
    return sum(max(0, lane.sequence_gaps - lane.drops.ring_full - lane.drops.spilled - lane.drops.spill_full)
               for lane in lanes.values())


def read_egress_counters(kernel: Kernel) -> dict[str, int]:
    """The egress counters summed over CPUs, and learned-table evictions (inserts that are no
    longer in the table: entries are never deleted, so the difference is what the LRU evicted)."""
    try:
        per_cpu = kernel.per_cpu_slot0("egress_counters", R.egress_counters_dtype)
    except Exception:  # noqa: BLE001 - network monitor off: no egress maps to read
        return {}
    if per_cpu is None:
        return {}
    out = {n: int(per_cpu[n].sum()) for n in R.EGRESS_COUNTERS}
    present = len(kernel.map("learned").keys(R.addr_key_dtype.itemsize))
    out["learned_present"] = present
    out["learned_evicted"] = max(0, out["learned_new"] - present)
    return out
