"""Pure parts of `bee-trace bench`: statistics, formatting, /proc parsing, generated inputs."""

from __future__ import annotations

import numpy as np
import pytest

from bee_trace import records as R
from bee_trace.bench import parse_args, procstat, stats
from bee_trace.bench.agent import generated_patterns
from bee_trace.bench.decodebench import columnar, numpy_only, per_record, synthetic_batch
from bee_trace.bench.render import render
from bee_trace.bench.rows.flood import flood_accounting, flood_statement, flood_table
from bee_trace.bench.runner import bpftrace_script, concrete_watch_paths, parse_kv
from bee_trace.patterns import build_filter, is_candidate


def test_median_odd_even_and_missing():
    assert stats.median([3, 1, 2]) == 2
    assert stats.median([4, 1, 3, 2]) == 2.5
    assert stats.median([None, 5.0, float("nan")]) == 5.0
    assert stats.median([]) is None


def test_percentile_matches_numpy():
    data = [5, 1, 9, 3, 7, 2, 8]
    for q in (0, 50, 95, 99, 100):
        assert stats.percentile(data, q) == pytest.approx(np.percentile(data, q))
    assert stats.percentile([], 50) is None
    assert stats.percentile([4], 99) == 4


def test_ratio_and_spread():
    assert stats.ratio(10, 4) == 2.5
    assert stats.ratio(None, 4) is None
    assert stats.ratio(3, 0) is None
    assert stats.spread([3, None, 1, 2]) == (1, 3)
    assert stats.spread([]) is None


def test_formatting():
    assert stats.fmt_num(None) == "—"
    assert stats.fmt_num(12345.6) == "12,346"
    assert stats.fmt_num(1.234, "µs", 2) == "1.23 µs"
    assert stats.fmt_ratio(2.0) == "2.00×"
    assert stats.fmt_ratio(None) == "—"
    assert stats.fmt_rate(950) == "950"
    assert stats.fmt_rate(12_345) == "12.3k"
    assert stats.fmt_rate(123_456) == "123k"
    assert stats.fmt_rate(1_250_000) == "1.25M"


def test_text_table_aligns_numbers_right_and_text_left():
    out = stats.text_table(["name", "value"], [["a", "1"], ["longer", "1,000"]], title="T")
    lines = out.splitlines()
    assert lines[0] == "### T"
    assert lines[2] == "| name   | value |"
    assert lines[3] == "|--------|-------|"
    assert lines[4] == "| a      |     1 |"
    assert lines[5] == "| longer | 1,000 |"


def test_parse_stat_handles_spaces_and_parens_in_comm():
    fields = ["S"] + [str(i) for i in range(4, 53)]
    fields[11], fields[12] = "120", "30"   # utime (14), stime (15)
    text = "1234 (we ird) (name)) " + " ".join(fields)
    assert procstat.parse_stat_cpu_ticks(text) == 150


def test_parse_kv_kb():
    text = "Rss:     2048 kB\nPrivate_Clean:  10 kB\nPrivate_Dirty: 20 kB\nName:\tpython\n" \
           "voluntary_ctxt_switches:\t7\n"
    kv = procstat.parse_kv_kb(text)
    assert kv == {"Rss": 2048, "Private_Clean": 10, "Private_Dirty": 20, "voluntary_ctxt_switches": 7}


def test_rates_between_samples():
    a = procstat.Sample(t=10.0, cpu_ticks=0, ctxt=100)
    b = procstat.Sample(t=12.0, cpu_ticks=procstat.CLK_TCK, ctxt=300)
    r = procstat.rates(a, b)
    assert r["cpu_percent"] == pytest.approx(50.0)
    assert r["ctxt_per_s"] == pytest.approx(100.0)


def test_system_busy_percent():
    assert procstat.system_busy_percent((10, 100), (60, 200)) == 50.0
    assert procstat.system_busy_percent((10, 100), (10, 100)) == 0.0


def test_generated_patterns_are_distinct_and_do_not_match_the_openat_path():
    pats = generated_patterns(1000)
    assert len(set(pats)) == 1000
    assert not is_candidate(build_filter(pats), b"/etc/hostname")


def test_concrete_watch_paths_and_bpftrace_script():
    paths = concrete_watch_paths("/home/u")
    assert "/etc/shadow" in paths and "/home/u/.ssh/id_rsa" in paths
    assert not any("*" in p for p in paths)
    script = bpftrace_script(paths[:2], "compare")
    assert script.startswith("tracepoint:syscalls:sys_enter_openat")
    assert f'$f == "{paths[0]}" ||' in script
    script = bpftrace_script(paths[:2], "map")
    assert script.startswith("BEGIN") and f'@watch["{paths[1]}"] = 1;' in script
    assert "if (@watch[$f] == 1)" in script


def test_decoders_agree_on_a_synthetic_batch():
    batch = synthetic_batch(50)
    assert batch.dtype == R.event_dtype
    a, b = per_record(batch), columnar(batch)
    assert len(a) == len(b) == 50
    for x, y in zip(a, b):
        # decode.py may add fields; the columnar decoder must agree on every field it builds.
        for k in y:
            if k not in ("ts", "ts_ns"):       # realtime offset is sampled per call
                assert x[k] == y[k], k
    assert numpy_only(batch) == 50


def test_parse_args_rows():
    args = parse_args(["--quick", "--rows", "openat,latency"])
    assert args.quick and args.rows == ["openat", "latency"] and args.json == "bench.json"
    with pytest.raises(SystemExit):
        parse_args(["--rows", "nope"])


def test_render_reports_unavailable_rows():
    results = {
        "meta": {"host": "h", "kernel": "k", "cpus": 2, "quick": True, "seconds": 1.0},
        "rows": {
            "connect": {"unavailable": "network monitor not built"},
            "latency": {"rate": 200, "seconds": 2.0,
                        "critical_rates": [{"target_rate": 1000, "n": 3, "p50_ns": 1e5, "p95_ns": 2e5,
                                            "p99_ns": 3e5, "max_ns": 4e5, "offered": 4,
                                            "delivered": 4, "late": 1, "lost": 0,
                                            "lost_by_cause": {}}],
                        "bulk": {"unavailable": "no bulk-lane events"}},
        },
    }
    text = render(results)
    assert "network monitor not built" in text
    assert "| critical, 1.0k/s |            3 |    100 |    200 |    300 |    400 |" in text
    assert "delivered 4 of 4, 1 spilled (late, not timed), lost 0" in text
    assert "no bulk-lane events" in text


def test_parse_kv_reads_generator_output():
    assert parse_kv("ops=3420544 seconds=10.000120 ns_per_op=2884.015\n") == {
        "ops": 3420544.0, "seconds": 10.00012, "ns_per_op": 2884.015}
    assert parse_kv("") == {} and parse_kv("noise ops=1") == {"ops": 1.0}


def test_parse_args_accepts_the_flood_row_and_runs_it_by_default():
    assert parse_args(["--rows", "flood"]).rows == ["flood"]
    assert "flood" in parse_args([]).rows


def _flood_summary(ring_full=900, gaps=850, emitted=100, crit_ring_full=0, uncounted=0, shed=0):
    lane = {"sampled": 0, "rate_limited": 0, "aggregated": 0}
    return {
        "uncounted_gaps": uncounted, "verdict": "degraded", "shed_raised": 0,
        "lanes": {
            "bulk": {**lane, "attempted": emitted + ring_full, "emitted": emitted, "received": emitted,
                     "ring_full": ring_full, "shed": shed, "sequence_gaps": gaps},
            "critical": {**lane, "attempted": 402, "emitted": 402 - crit_ring_full, "received": 402,
                         "ring_full": crit_ring_full, "shed": 0, "sequence_gaps": crit_ring_full},
        },
    }


def test_flood_accounting_checks_every_bulk_drop_and_critical_delivery():
    r = flood_accounting(_flood_summary(shed=30),
                         {"loadgen/network": 100, "loadgen-crit/file": 400, "loadgen-crit/process": 1},
                         {"ops": 1030, "seconds": 2.0, "ns_per_op": 2700.0}, {"ops": 400, "seconds": 1.9})
    assert r["offered_rate"] == 515.0
    assert r["bulk"]["delivered"] == 100 and r["bulk"]["shed"] == 30
    assert r["attempted_eq_emitted_plus_ring_full"] and r["received_eq_emitted"]
    assert r["ring_full_after_last_read"] == 50
    assert r["accounted_minus_offered"] == 0            # 1000 numbered + 30 shed = 1030 connects
    assert r["critical"] == {"issued": 400, "delivered": 400, "records": None, "lost": 0,
                             "ring_full": 0, "sequence_gaps": 0, "attempted": 402, "emitted": 402}
    assert r["critical_zero_loss"]
    assert "zero loss; bulk drops all counted" in flood_statement(r)
    assert "1,000,000 ev/s was not offered" in flood_statement(r)


def test_flood_accounting_flags_critical_loss_and_broken_bulk_arithmetic():
    s = _flood_summary(crit_ring_full=2, uncounted=3)
    s["lanes"]["bulk"]["emitted"] -= 1                    # a record neither emitted nor counted
    r = flood_accounting(s, {"loadgen-crit/file": 398}, {"ops": 1000, "seconds": 1.0},
                         {"ops": 400, "seconds": 1.0})
    assert not r["attempted_eq_emitted_plus_ring_full"]
    assert not r["critical_zero_loss"] and r["critical"]["lost"] == 2
    text = flood_statement(r)
    assert "LOSS" in text and "NOT all counted" in text


def test_render_flood_row():
    r = flood_accounting(_flood_summary(), {"loadgen/network": 100, "loadgen-crit/file": 400},
                         {"ops": 1000, "seconds": 2.0, "ns_per_op": 2700.0}, {"ops": 400, "seconds": 1.9})
    r.update({"crit_rate": 200, "rings": {"bulk": 1 << 20}, "agent": {"cpu_percent": 99.0},
              "latency": {"n": 400, "p50_ns": 7e6, "p99_ns": 1.4e7, "max_ns": 1.5e7}})
    r["records_by_origin"] = {"ring": 390, "late": 10, "folded": 0}
    rows = {row[0]: row for row in flood_table(r)}
    assert rows["uncounted_gaps"][1] == "0"
    assert rows["attempted == emitted + ring_full"][1:] == ["yes", "1000 = 100 + 900"]
    assert rows["critical issued / delivered (sum of count)"][1] == "400 / 400"
    assert "distinct watched .pem files" in rows["critical issued / delivered (sum of count)"][2]
    assert rows["critical output records: ring + late + fold counts"][1] == "390 + 10 + 0"
    assert rows["critical latency p50 / p99 ms"][1] == "7.00 / 14.00"
    assert rows["critical latency p50 / p99 ms"][2].startswith("400 ring records timed")
    assert rows["bulk ring"][1] == "1024 KiB"
    text = render({"meta": {"host": "h", "kernel": "k", "cpus": 2, "quick": True, "seconds": 1.0},
                   "rows": {"flood": r}})
    assert "### 9. critical lane under a bulk flood (2 s" in text
    text = render({"meta": {"host": "h", "kernel": "k", "cpus": 2, "quick": True, "seconds": 1.0},
                   "rows": {"flood": {"unavailable": "network monitor not built"}}})
    assert "network monitor not built" in text
