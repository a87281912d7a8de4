"""Profiles, backpressure hysteresis and the CPU governor (no kernel needed)."""

from __future__ import annotations

import dataclasses

from bee_trace import records as R
from bee_trace.config import default_config
from bee_trace.control import Backpressure, Governor, tuning_for


def _cfg(**perf):
    cfg = default_config()
    return dataclasses.replace(cfg, performance=dataclasses.replace(cfg.performance, **perf))


def test_policy_sampling_and_rate_reach_the_kernel_settings() -> None:
    t = tuning_for(_cfg(sampling_rate=0.1, max_events_per_second=250, aggregation_window_ms=2000))
    ks = t.kernel_settings()
    assert ks["sample_every"][R.EV_NET] == 10
    assert ks["rate_per_sec"][R.EV_NET] == 250
    assert ks["agg_window_ns"] == 2_000_000_000
    # Critical kinds are never sampled or limited.
    for kind in (R.EV_FILE, R.EV_MEM, R.EV_EXEC, R.EV_EXIT):
        assert ks["sample_every"][kind] == 0 and ks["rate_per_sec"][kind] == 0


def test_event_buffer_size_sizes_the_rings() -> None:
    small, big = tuning_for(_cfg(event_buffer_size=512)), tuning_for(_cfg(event_buffer_size=8192))
    assert small.ring_critical_bytes == 512 << 10 and big.ring_critical_bytes == 8192 << 10
    assert big.ring_bulk_bytes == 4 * big.ring_critical_bytes


def test_profiles_set_trade_offs_together() -> None:
    cov = tuning_for(_cfg(sampling_rate=0.5, max_events_per_second=100), "max-coverage")
    assert cov.sample_every[R.EV_NET] == 1 and cov.rate_per_sec[R.EV_NET] == 0 and cov.agg_window_ns == 0
    perf = tuning_for(_cfg(), "max-performance")
    assert perf.sample_every[R.EV_NET] >= 2 and perf.agg_window_ns >= 5_000_000_000
    assert perf.ring_critical_bytes < cov.ring_critical_bytes


def test_backpressure_has_hysteresis() -> None:
    bp = Backpressure(high=0.5, low=0.1)
    assert bp.update(0.3) is None
    assert bp.update(0.6) == 1 and bp.update(0.7) == 2 and bp.update(0.9) is None
    assert bp.update(0.3) is None  # between the watermarks: stays
    assert bp.update(0.05) == 1 and bp.update(0.0) == 0 and bp.raised == 2


def test_governor_raises_sampling_when_over_budget_and_relaxes() -> None:
    g = Governor(budget_percent=5.0, base={R.EV_NET: 1}, sustain_s=2)
    clock = {"t": 0.0, "cpu": 0.0}
    g._last_t, g._last_cpu = 0.0, 0.0
    import bee_trace.control as control
    orig_mono, orig_cpu = control.time.monotonic, control.time.process_time
    control.time.monotonic = lambda: clock["t"]
    control.time.process_time = lambda: clock["cpu"]
    try:
        results = []
        for _ in range(2):  # two seconds at 50 % CPU
            clock["t"] += 1.0
            clock["cpu"] += 0.5
            results.append(g.update())
        assert results[-1] == {R.EV_NET: 2} and g.actions
        for _ in range(4):  # idle long enough to relax
            clock["t"] += 1.0
            results.append(g.update())
        assert results[-1] == {R.EV_NET: 1}
    finally:
        control.time.monotonic, control.time.process_time = orig_mono, orig_cpu


def test_governor_keeps_the_last_changes_and_counts_all(monkeypatch, capsys) -> None:
    import bee_trace.control as control
    g = Governor(budget_percent=5.0, base={R.EV_NET: 1}, sustain_s=1)
    clock = {"t": 0.0, "cpu": 0.0}
    g._last_t, g._last_cpu = 0.0, 0.0
    monkeypatch.setattr(control.time, "monotonic", lambda: clock["t"])
    monkeypatch.setattr(control.time, "process_time", lambda: clock["cpu"])
    changes = 0
    for i in range(300):   # busy one second, idle two: the factor goes up and down
        clock["t"] += 1.0
        clock["cpu"] += 0.5 if i % 3 == 0 else 0.0
        changes += g.update() is not None
    assert changes > control.GOVERNOR_KEPT and g.changes == changes
    assert len(g.actions) == control.GOVERNOR_KEPT
    summary = g.summary()
    assert summary[0] == f"governor: {changes - control.GOVERNOR_KEPT} earlier changes not listed"
    assert summary[1:] == g.actions
