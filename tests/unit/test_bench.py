"""Pure parts of `bee-trace bench`: statistics, formatting, /proc parsing, generated inputs."""

from __future__ import annotations

import numpy as np
import pytest

from bee_trace import records as R
from bee_trace.bench import parse_args, render
from bee_trace.bench import procstat, stats
from bee_trace.bench.agent import generated_patterns
from bee_trace.bench.decodebench import columnar, numpy_only, per_record, synthetic_batch
from bee_trace.bench.runner import bpftrace_script, concrete_watch_paths
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
                        "critical": {"n": 3, "p50_ns": 1e5, "p95_ns": 2e5, "p99_ns": 3e5, "dropped": 0},
                        "bulk": {"unavailable": "no bulk-lane events"}},
        },
    }
    text = render(results)
    assert "network monitor not built" in text
    assert "| critical |      3 |    100 |    200 |    300 |" in text
    assert "no bulk-lane events" in text
