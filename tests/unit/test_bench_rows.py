"""Pure helpers of the bench's newer rows: slope, soak trend, flood and distinct accounting,
CI slowdowns, loss by cause, the row registry and flags (no kernel, no timing)."""

from __future__ import annotations

import pytest

from bee_trace.bench import parse_args
from bee_trace.bench.harness import loss_by_cause
from bee_trace.bench.render import render
from bee_trace.bench.rows import DEFAULT_ROWS, ROWS
from bee_trace.bench.rows.ci import c_source, pair_slowdowns
from bee_trace.bench.rows.distinct import distinct_accounting
from bee_trace.bench.rows.floods import flood_counts
from bee_trace.bench.rows.soak import cache_trend, memory_trend
from bee_trace.bench.stats import slope_per_minute


def test_slope_per_minute_is_least_squares():
    ts = [0.0, 60.0, 120.0, 180.0]
    assert slope_per_minute(ts, [10.0, 11.0, 12.0, 13.0]) == pytest.approx(1.0)
    assert slope_per_minute(ts, [5.0, 5.0, 5.0, 5.0]) == pytest.approx(0.0)
    # noise around a flat line: the fit, not the end points
    assert slope_per_minute(ts, [10.0, 12.0, 10.0, 12.0]) == pytest.approx(0.4)
    assert slope_per_minute([1.0], [1.0]) is None
    assert slope_per_minute([2.0, 2.0], [1.0, 3.0]) is None
    assert slope_per_minute([0.0, 1.0], [1.0]) is None


def test_memory_trend_starts_after_warmup():
    samples = [(float(t), 40.0 + (t if t < 60 else 60) / 10, 20.0) for t in range(0, 300)]
    m = memory_trend(samples, 60.0)
    assert m["rss_warm_mib"] == 46.0 and m["rss_final_mib"] == 46.0
    assert m["rss_growth_mib"] == 0.0 and m["rss_slope_mib_per_min"] == pytest.approx(0.0)
    assert m["rss_max_mib"] == 46.0
    assert memory_trend(samples, 1e9) == {}
    # the end points are medians of 10 s: one high sample does not move them, a step does
    spiky = [(float(t), 50.0 + (3.0 if t == 60 else 0.0) + (1.0 if t >= 200 else 0.0), 20.0)
             for t in range(0, 300)]
    m = memory_trend(spiky, 60.0)
    assert m["rss_warm_mib"] == 50.0 and m["rss_final_mib"] == 51.0 and m["rss_growth_mib"] == 1.0
    assert m["rss_max_mib"] == 53.0


def test_cache_trend_shows_what_fills_after_warmup():
    def caches(procs: int, names: int) -> dict:
        return {"processes": {"entries": procs, "bound": 100, "evicted": 0, "expired": 3},
                "dns_names": {"entries": names, "bound": 50, "evicted": 0}}
    samples = [(0.0, caches(1, 0)), (30.0, caches(40, 10)), (60.0, caches(42, 20)),
               (90.0, caches(45, 50)), (120.0, caches(41, 50))]
    final = caches(41, 50)
    final["dns_names"]["evicted"] = 7
    t = cache_trend(samples, final, 60.0)
    assert t["processes"] == {"bound": 100, "warm": 42, "max_after_warmup": 45, "end": 41,
                              "evicted": 0, "expired": 3}
    # still filling after warm-up, then at its bound and evicting: the row shows both
    assert t["dns_names"] == {"bound": 50, "warm": 20, "max_after_warmup": 50, "end": 50,
                              "evicted": 7, "expired": None}
    assert cache_trend([], final, 60.0)["processes"]["warm"] is None


def _summary(**lane: int) -> dict:
    crit = {"folded": 0, "spilled": 0, **lane}
    return {"dropped": {"ring_full": lane.get("ring_full", 0), "sampled": 7, "folded": crit["folded"],
                        "spilled": crit["spilled"], "first_lost": 0},
            "uncounted_gaps": 0, "lanes": {"critical": crit, "bulk": {"sampled": 7}},
            "verdict": "complete"}


def test_loss_by_cause_leaves_out_policy_folding_and_spilling():
    s = _summary(ring_full=3, folded=10, spilled=5)
    s["uncounted_gaps"] = 2
    assert loss_by_cause(s) == {"ring_full": 3, "uncounted_gaps": 2}
    assert loss_by_cause({}) == {}


def test_flood_counts_sums_count_fields_and_late_events():
    key = "/h/.ssh/id_ed25519"
    events = [{"kind": "file", "path": "/d/a.pem", "count": 299_990},
              {"kind": "file", "path": "/d/a.pem", "count": 7, "late": True},
              {"kind": "file", "path": "/d/a.pem"},
              {"kind": "file", "path": "/other.pem", "count": 5},
              {"kind": "network", "path": "/d/a.pem", "count": 100},
              {"kind": "file", "path": key}]
    r = flood_counts(events, _summary(folded=299_997, spilled=1), 299_998,
                     lambda e: e["path"] == "/d/a.pem", key)
    assert r["delivered"] == 299_998 and r["records"] == 3 and r["exact"]
    assert r["spilled"] == 7 and r["spilled_kernel"] == 1 and r["folded"] == 299_997
    assert r["lost"] == 0 and r["key_read_delivered"] is True and r["distinct_paths"] == 1
    r = flood_counts(events[:1], _summary(ring_full=2), 300_000, lambda e: True, key)
    assert not r["exact"] and r["lost"] == 2 and r["key_read_delivered"] is False
    assert flood_counts([], {}, 0, lambda e: True)["key_read_delivered"] is None


def test_distinct_accounting_splits_files_and_connects():
    s = _summary(ring_full=4, spilled=6)
    r = distinct_accounting({"ops": 11}, {"loadgen/file": 6, "loadgen/network": 1, "cat/file": 9}, s)
    assert (r["offered_files"], r["offered_connects"]) == (6, 5)
    assert r["delivered"] == 7 and not r["all_delivered"]
    assert r["lost"] == 4 and r["lost_by_cause"] == {"ring_full": 4}
    assert r["spilled"] == 6 and r["policy"]["sampled"] == 7


def test_pair_slowdowns_per_round():
    assert pair_slowdowns([10.0, 20.0], [11.0, 19.0]) == pytest.approx([10.0, -5.0])
    assert pair_slowdowns([0.0], [1.0]) == []


def test_generated_c_source_defines_its_unit():
    src = c_source(3, functions=2)
    assert "int f3_0(int x)" in src and "int unit3(int x)" in src


def test_soak_only_on_request_and_syscall_alias():
    assert "soak" in ROWS and "soak" not in DEFAULT_ROWS and "soak" not in parse_args([]).rows
    args = parse_args(["--soak", "--soak-seconds", "300", "--rows", "startup"])
    assert args.rows == ["startup", "soak"] and args.soak_seconds == 300.0
    assert parse_args(["--rows", "syscall,probes"]).rows == ["probes"]
    with pytest.raises(SystemExit):
        parse_args(["--soak-seconds", "0"])


def test_render_escapes_errors():
    text = render({"meta": {"host": "h", "kernel": "k", "cpus": 2, "quick": True, "seconds": 1.0},
                   "rows": {"ci": {"error": "RuntimeError: bad | name\n<b>"}}})
    assert "bad \\| name\\\\n&lt;b&gt;" in text   # markdown: shown as \n, no HTML


def test_soak_row_renders_caches_and_verdict_reasons():
    from bee_trace.bench.rows.soak import render as soak_render
    r = {"seconds": 600.0, "warmup_s": 60.0, "dns_note": "",
         "load": {"distinct_per_s": 2000, "spawn_per_s": 50, "dns_per_s": 50, "generated": [1, 2, 3],
                  "dns_answered": 30000},
         "rss_warm_mib": 85.0, "rss_final_mib": 85.5, "rss_growth_mib": 0.5, "uss_warm_mib": 60.0,
         "uss_final_mib": 60.4, "rss_slope_mib_per_min": 0.05, "uss_slope_mib_per_min": 0.04,
         "agent": {"cpu_percent": 28.0}, "output": 1000, "lost_by_cause": {},
         "process_cache_evictions": 0, "learned_evicted": 0, "maps": {},
         "caches": {"processes": {"bound": 10000, "warm": 1700, "max_after_warmup": 1800, "end": 1600,
                                  "evicted": 0, "expired": 28000}},
         "verdict": "degraded", "verdict_reasons": [{"reason": "folded_unreported", "count": 9}]}
    text = "\n".join(soak_render(r))
    assert "13c. userspace caches" in text and "28,000" in text and "1700" in text
    assert "degraded (folded_unreported 9)" in text
