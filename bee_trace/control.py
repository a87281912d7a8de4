"""Run-time trade-offs: the profile's starting point, backpressure (shed level from ring lag),
adaptive wake-up threshold, and the CPU-budget governor. Only the bulk lane is ever touched."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import Any

from . import records as R
from .config import Config

MAX_SAMPLE_EVERY = 64
GOVERNOR_KEPT = 20       # governor changes named in the summary (a long run may make many)


@dataclass
class Tuning:
    """Kernel and reader settings derived from the policy and the --profile."""

    sample_every: dict[int, int]
    rate_per_sec: dict[int, int]
    agg_window_ns: int
    ring_critical_bytes: int
    ring_bulk_bytes: int
    bulk_timeout_s: float
    governed: bool = True        # the CPU governor may raise bulk sampling
    wake_min: int = 4 << 10      # wake-up threshold at low rates (latency)
    wake_max: int = 256 << 10    # under load (fewer context switches)
    compat_syscalls: bool = True  # watch 32-bit syscalls (one raw_tp on every syscall exit)

    def kernel_settings(self) -> dict[str, Any]:
        se = [0] * R.NR_KINDS
        rl = [0] * R.NR_KINDS
        for t, n in self.sample_every.items():
            se[t] = n
        for t, n in self.rate_per_sec.items():
            rl[t] = n
        return {"sample_every": se, "rate_per_sec": rl, "agg_window_ns": self.agg_window_ns}


def tuning_for(cfg: Config, profile: str | None = None) -> Tuning:
    perf = cfg.performance
    profile = profile or perf.profile
    ring = max(perf.event_buffer_size, 256) << 10
    sample, rate = {}, {}
    for kind, t in R.BULK_KINDS.items():
        fraction, eps = perf.limits_for(kind)
        sample[t] = max(1, round(1 / fraction))
        rate[t] = eps
    window_ns = perf.aggregation_window_ms * 1_000_000
    timeout = 0.02
    if profile == "max-coverage":
        # Every event individually: no folding, no sampling, no limits; bigger rings instead.
        sample = {t: 1 for t in sample}
        rate = {t: 0 for t in rate}
        window_ns = 0
        ring *= 4
    elif profile == "max-performance":
        sample = {t: max(n, 2) for t, n in sample.items()}
        rate = {t: min(n, 1000) if n else 1000 for t, n in rate.items()}
        window_ns = max(window_ns, 5_000_000_000)
        timeout = 0.05
    # max-performance trades the 32-bit syscall probe for per-syscall tracepoints (a coverage
    # gap the verdict and `check` name).
    return Tuning(sample, rate, window_ns, ring, 4 * ring, timeout, governed=profile != "max-coverage",
                  compat_syscalls=profile != "max-performance")


@dataclass
class Backpressure:
    """Shed level from bulk-ring fill: up past the high watermark, down below the low one."""

    high: float = 0.5
    low: float = 0.1
    level: int = 0
    raised: int = 0               # times the level went up

    def update(self, fill: float) -> int | None:
        """Returns the new level when it changes."""
        if fill >= self.high and self.level < 2:
            self.level += 1
            self.raised += 1
            return self.level
        if fill <= self.low and self.level > 0:
            self.level -= 1
            return self.level
        return None


@dataclass
class WakeTuner:
    """Bulk wake-up threshold: small at low rates (latency), large under load (fewer switches)."""

    tuning: Tuning
    ring_bytes: int
    current: int = 0
    _last_records: int = 0
    _last_t: float = field(default_factory=time.monotonic)

    def update(self, bulk_records: int) -> int | None:
        now = time.monotonic()
        dt = now - self._last_t
        if dt < 1.0:
            return None
        rate = (bulk_records - self._last_records) / dt
        self._last_records, self._last_t = bulk_records, now
        # About one wake-up per bulk timeout at the observed rate, within [min, max].
        want = int(rate * self.tuning.bulk_timeout_s * R.RING_STRIDE)
        want = max(self.tuning.wake_min, min(self.tuning.wake_max, want, self.ring_bytes // 4))
        if abs(want - self.current) * 2 > self.current:  # change only by a factor of 1.5+
            self.current = want
            return want
        return None


@dataclass
class Governor:
    """Keeps the agent within performance.cpu_budget_percent: past the budget for a sustained
    period it doubles bulk sampling; well under it, it relaxes back to the policy."""

    budget_percent: float
    base: dict[int, int]
    sustain_s: int = 3
    factor: int = 1
    over: int = 0
    under: int = 0
    actions: list[str] = field(default_factory=list)   # the last GOVERNOR_KEPT changes
    changes: int = 0                                     # every change, kept or not
    _last_cpu: float = field(default_factory=time.process_time)
    _last_t: float = field(default_factory=time.monotonic)
    last_percent: float = 0.0

    def summary(self) -> list[str]:
        """The changes for the summary: the last GOVERNOR_KEPT, after a line counting those
        left out."""
        left_out = self.changes - len(self.actions)
        return ([f"governor: {left_out} earlier changes not listed"] if left_out else []) + self.actions

    def update(self) -> dict[int, int] | None:
        """Once a second; returns new sample_every values when they change."""
        now = time.monotonic()
        if now - self._last_t < 1.0:
            return None
        cpu = time.process_time()
        self.last_percent = 100.0 * (cpu - self._last_cpu) / (now - self._last_t)
        self._last_cpu, self._last_t = cpu, now
        if self.last_percent > self.budget_percent:
            self.over, self.under = self.over + 1, 0
        elif self.last_percent < self.budget_percent / 2:
            self.under, self.over = self.under + 1, 0
        else:
            self.over = self.under = 0
        new = self.factor
        if self.over >= self.sustain_s and self.factor < MAX_SAMPLE_EVERY:
            new, self.over = self.factor * 2, 0
        elif self.under >= 2 * self.sustain_s and self.factor > 1:
            new, self.under = self.factor // 2, 0
        if new == self.factor:
            return None
        self.factor = new
        msg = (f"governor: agent CPU {self.last_percent:.1f}% vs budget {self.budget_percent:g}%: "
               f"bulk sampling x{new}")
        self.changes += 1
        self.actions = (self.actions + [msg])[-GOVERNOR_KEPT:]
        print(f"bee-trace: {msg}", file=sys.stderr)
        return {t: min(MAX_SAMPLE_EVERY, max(1, n) * new) for t, n in self.base.items()}
