"""What the bench's agent counts at its sink: events delivered (the sum of `count`, 1 when
absent) and records by process and kind, records by where they came from, and latency samples
taken only on first occurrences that came through a ring.

Why the split: the kernel folds identical critical events of a process into one record per
window, and the reader later reports the rest as a copy of the window's first event with
`count` (bee_trace/replay.py flush_folds). That copy carries the first event's time and is
emitted up to a window later by design, so timing it measures the fold window, not delivery;
counting it as one event undercounts by `count - 1`. Spilled records (`late: true`) and bulk
aggregation summaries are likewise counted with their `count` and not timed."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

ORIGINS = ("ring", "folded", "aggregated", "late")


def origin(ev: dict[str, Any]) -> str:
    """Where an output event came from: `ring` (a record read from a ring: the first
    occurrence of its fold window), `late` (the spill map), `folded` (a critical fold count) or
    `aggregated` (a bulk aggregation summary)."""
    if ev.get("late"):
        return "late"
    if ev.get("aggregated"):
        # a fold key rebuilt from the kernel's map carries no lane: only bulk ones say "bulk"
        return "aggregated" if ev.get("lane") == "bulk" else "folded"
    return "ring"


def count_of(ev: dict[str, Any]) -> int:
    """How many events an output record stands for."""
    return int(ev.get("count") or 1)


class Tally:
    """Counts and latency at the sink. `latency_kinds`: event kinds to time; `latency_comm`:
    only this process's events are timed (None: every process); `by_comm_kind`: also count per
    (comm, kind)."""

    def __init__(self, latency_kinds: Iterable[str], latency_comm: str | None = "loadgen",
                 by_comm_kind: bool = False, max_samples: int = 1_000_000) -> None:
        self.latency_comm = latency_comm
        self.max_samples = max_samples
        self.latencies: dict[str, list[int]] = {k: [] for k in latency_kinds}
        self.lanes: dict[str, list[bool]] = {}
        self.delivered = 0                      # sum of count, every process
        self.records = 0                        # output records, every process
        self.by_comm: dict[str, int] = {}       # sum of count
        self.records_by_comm: dict[str, int] = {}
        self.by_comm_kind: dict[tuple[str, str], int] | None = {} if by_comm_kind else None
        self.records_by_comm_kind: dict[tuple[str, str], int] | None = {} if by_comm_kind else None
        # the timed process's (latency_comm) events and records by where they came from
        self.by_origin: dict[str, int] = dict.fromkeys(ORIGINS, 0)          # sum of count
        self.records_by_origin: dict[str, int] = dict.fromkeys(ORIGINS, 0)

    def _count(self, comm: str, kind: str, where: str, records: int, events: int) -> None:
        self.delivered += events
        self.records += records
        self.by_comm[comm] = self.by_comm.get(comm, 0) + events
        self.records_by_comm[comm] = self.records_by_comm.get(comm, 0) + records
        if self.by_comm_kind is not None and self.records_by_comm_kind is not None:
            ck = (comm, kind)
            self.by_comm_kind[ck] = self.by_comm_kind.get(ck, 0) + events
            self.records_by_comm_kind[ck] = self.records_by_comm_kind.get(ck, 0) + records
        if self.latency_comm is None or comm == self.latency_comm:
            self.by_origin[where] += events
            self.records_by_origin[where] += records

    def _timed(self, comm: str, kind: str) -> list[int] | None:
        lst = self.latencies.get(kind)
        if lst is None or (self.latency_comm is not None and comm != self.latency_comm):
            return None
        return lst if len(lst) < self.max_samples else None

    def event(self, ev: dict[str, Any], now_ns: int) -> None:
        """One output event (`now_ns`: CLOCK_BOOTTIME when the sink got it)."""
        where = origin(ev)
        self._count(ev["comm"], ev["kind"], where, 1, count_of(ev))
        if where != "ring":
            return
        lst = self._timed(ev["comm"], ev["kind"])
        if lst is not None:
            lst.append(now_ns - ev["boot_ns"])
            self.lanes.setdefault(ev["kind"], []).append(ev.get("lane") == "bulk")

    def run(self, template: dict[str, Any], boot_ns: Sequence[int], now_ns: int) -> None:
        """A run of ring records that share one template (sinks.Run): `boot_ns` of each."""
        n = len(boot_ns)
        where = origin(template)
        self._count(template["comm"], template["kind"], where, n, n * count_of(template))
        if where != "ring":
            return
        lst = self._timed(template["comm"], template["kind"])
        if lst is not None:
            take = boot_ns[:self.max_samples - len(lst)]
            lst.extend(now_ns - t for t in take)
            self.lanes.setdefault(template["kind"], []).extend(
                [template.get("lane") == "bulk"] * len(take))

    def result(self) -> dict[str, Any]:
        def top(d: dict[Any, int], n: int) -> dict[Any, int]:
            return dict(sorted(d.items(), key=lambda kv: -kv[1])[:n])

        def ck(d: dict[tuple[str, str], int] | None) -> dict[str, int]:
            return {f"{c}/{k}": v for (c, k), v in top(d or {}, 40).items()}

        return {
            "latency": {k: percentiles(v) for k, v in self.latencies.items()},
            "bulk_share": {k: (float(np.mean(v)) if v else None) for k, v in self.lanes.items()},
            "delivered": self.delivered,
            "records": self.records,
            "by_comm": top(self.by_comm, 20),
            "records_by_comm": top(self.records_by_comm, 20),
            "by_comm_kind": ck(self.by_comm_kind),
            "records_by_comm_kind": ck(self.records_by_comm_kind),
            "by_origin": dict(self.by_origin),
            "records_by_origin": dict(self.records_by_origin),
        }


def percentiles(samples: Sequence[int]) -> dict[str, Any]:
    if not samples:
        return {"n": 0}
    a = np.asarray(samples, dtype=np.float64)
    p50, p95, p99 = np.percentile(a, [50, 95, 99])
    return {"n": len(samples), "p50_ns": float(p50), "p95_ns": float(p95), "p99_ns": float(p99),
            "max_ns": float(a.max())}
