"""Pipeline.drain hands control back to step() when its time budget is spent, even while the
critical ring never empties (a sustained critical flow faster than the handler): otherwise the
spill map, fold counts, sink flushes, backpressure and stop would wait for the flow to end."""

from __future__ import annotations

import numpy as np

from bee_trace import records as R
from bee_trace.pipeline import Pipeline, PipelineOptions


class _EndlessRing:
    """A ring that always has one more record; fails the test instead of looping forever."""

    def __init__(self, limit: int = 10_000) -> None:
        self.reads = 0
        self.limit = limit

    def read_batch(self, max_records: int = 1 << 16) -> np.ndarray:
        self.reads += 1
        assert self.reads < self.limit, "drain() never returned while the ring stayed non-empty"
        return np.zeros(1, dtype=R.event_dtype)


class _EmptyRing:
    def read_batch(self, max_records: int = 1 << 16) -> np.ndarray:
        return np.zeros(0, dtype=R.event_dtype)


class _Rings:
    def __init__(self, critical: object, bulk: object) -> None:
        self.rings = [critical, bulk]


def test_drain_returns_at_its_budget_while_the_critical_ring_never_empties() -> None:
    pl = Pipeline(PipelineOptions(probes={"file_monitor"}), [])
    critical = _EndlessRing()
    pl.rings = _Rings(critical, _EmptyRing())  # type: ignore[assignment]
    handled: list[int] = []
    pl.handle_batch = lambda batch: handled.append(len(batch))  # type: ignore[method-assign]
    n = pl.drain(budget_s=0.0)
    # the first batch is always handled; the spent budget then ends the drain
    assert n == len(handled) == critical.reads >= 1
    assert sum(handled) == n


def test_drain_without_budget_reads_both_rings_to_empty() -> None:
    pl = Pipeline(PipelineOptions(probes={"file_monitor"}), [])

    class _Finite:
        def __init__(self, records: int) -> None:
            self.left = records

        def read_batch(self, max_records: int = 1 << 16) -> np.ndarray:
            n = min(self.left, max_records, 3)
            self.left -= n
            return np.zeros(n, dtype=R.event_dtype)

    critical, bulk = _Finite(10), _Finite(300)
    pl.rings = _Rings(critical, bulk)  # type: ignore[assignment]
    pl.handle_batch = lambda batch: None  # type: ignore[method-assign]
    assert pl.drain(budget_s=None) == 310 and critical.left == bulk.left == 0
