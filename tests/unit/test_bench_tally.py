"""The bench's sink accounting: delivered is the sum of `count`, and latency is timed only on
records that came through a ring (never on fold counts, aggregation summaries or spilled events),
plus the per-rate accounting of rows 4 and 6 built on it."""

from __future__ import annotations

from bee_trace.bench.rows.latency import critical_point
from bee_trace.bench.rows.throughput import rate_point
from bee_trace.bench.tally import Tally, count_of, origin

NOW = 10_000_000_000


def _ev(**kw):
    return {"comm": "loadgen", "kind": "file", "lane": "critical", "boot_ns": NOW - 1_000, **kw}


def test_origin_tells_ring_records_from_summaries_and_spills():
    assert origin(_ev()) == "ring"
    assert origin(_ev(count=40, aggregated=True)) == "folded"
    # a fold rebuilt from the kernel's key has no lane
    assert origin({"kind": "file", "count": 3, "aggregated": True}) == "folded"
    assert origin(_ev(kind="network", lane="bulk", count=9, aggregated=True)) == "aggregated"
    assert origin(_ev(late=True, count=5)) == "late"
    assert (count_of(_ev()), count_of(_ev(count=7)), count_of(_ev(count=None))) == (1, 7, 1)


def test_fold_summaries_count_their_count_and_are_not_timed():
    t = Tally(["file"], "loadgen")
    t.event(_ev(), NOW)                                            # first of its window: timed
    # the fold count of that window: the first event's time, a second later
    t.event(_ev(count=1999, aggregated=True, boot_ns=NOW - 1_000), NOW + 1_000_000_000)
    t.event(_ev(late=True, count=3), NOW)                          # spilled: counted, not timed
    t.run(_ev(), [NOW - 2_000, NOW - 3_000], NOW)                  # ring records of one template
    r = t.result()
    assert r["delivered"] == 1 + 1999 + 3 + 2 and r["records"] == 5
    assert r["by_comm"] == {"loadgen": 2005} and r["records_by_comm"] == {"loadgen": 5}
    assert r["by_origin"] == {"ring": 3, "folded": 1999, "aggregated": 0, "late": 3}
    assert r["records_by_origin"] == {"ring": 3, "folded": 1, "aggregated": 0, "late": 1}
    lat = r["latency"]["file"]
    assert lat["n"] == 3 and lat["max_ns"] == 3_000          # the 1 s fold age is not a sample
    assert r["by_comm_kind"] == {}                             # only when asked


def test_only_the_named_process_and_kinds_are_timed_but_all_are_counted():
    t = Tally(["file"], "loadgen-crit", by_comm_kind=True, max_samples=2)
    t.event(_ev(), NOW)                                            # other comm: not timed
    t.event(_ev(comm="loadgen-crit"), NOW)
    t.event(_ev(comm="loadgen-crit", kind="network", lane="bulk"), NOW)   # kind not timed
    t.run(_ev(comm="loadgen-crit"), [NOW - 5, NOW - 6, NOW - 7], NOW)    # capped at 2 samples
    t.run(_ev(comm="loadgen-crit", count=4), [NOW], NOW)           # a run's template with count
    r = t.result()
    assert r["latency"]["file"]["n"] == 2 and r["bulk_share"] == {"file": 0.0}
    assert r["by_comm_kind"] == {"loadgen-crit/file": 8, "loadgen/file": 1,
                                 "loadgen-crit/network": 1}
    assert r["records_by_comm_kind"]["loadgen-crit/file"] == 5
    assert r["records_by_origin"]["ring"] == 6 and r["by_origin"]["ring"] == 9   # loadgen-crit only
    assert Tally([], None).result()["latency"] == {}


def _trial(delivered, generated=3000, ring=3, summaries=3, p99=5e4, n=3, dropped=0):
    # the generator's process event (exec) is not one of the opens it offered
    return {"achieved_rate": 1000.0, "generated": generated, "delivered": delivered + 1,
            "by_comm_kind": {"loadgen/file": delivered, "loadgen/process": 1},
            "records_by_comm_kind": {"loadgen/file": ring + summaries},
            "records_by_origin": {"ring": ring, "folded": summaries},
            "dropped": dropped, "policy_drops": 0, "foreign_events": 0, "loss_percent": 0.0,
            "agent": {"cpu_percent": 1.0}, "latency": {"file": {"n": n, "p99_ns": p99}}}


def test_rate_point_uses_the_sum_of_count_and_ring_latency():
    p = rate_point(1000, [_trial(3000), _trial(3000, p99=7e4), _trial(3000, p99=6e4)], "file")
    assert p["delivered"] == 3000 and p["all_delivered"] and p["delivered_per_s"] == 1000.0
    assert (p["ring_records"], p["summary_records"], p["latency_n"], p["records"]) == (3, 3, 3, 6)
    assert p["latency_p99_ns"] == 6e4
    assert not rate_point(1000, [_trial(3000), _trial(2999)], "file")["all_delivered"]
    assert rate_point(1000, [_trial(3000)], "network")["latency_p99_ns"] is None


def test_critical_point_counts_late_and_lost_apart_from_timed():
    r = {"target_rate": 1000, "achieved_rate": 999.0, "generated": 5000, "dropped": 2,
         "foreign_events": 0, "agent": {"cpu_percent": 50.0},
         "latency": {"file": {"n": 4900, "p99_ns": 8e5}},
         "by_comm_kind": {"loadgen/file": 4998, "cat/file": 1},
         "by_origin": {"ring": 4900, "late": 98, "folded": 0},
         "summary": {"dropped": {"spill_full": 2}, "verdict": "degraded"}}
    p = critical_point(r)
    assert (p["offered"], p["delivered"], p["late"], p["n"]) == (5000, 4998, 98, 4900)
    assert p["lost"] == 2 and p["lost_by_cause"] == {"spill_full": 2}
    assert p["verdict"] == "degraded" and p["p99_ns"] == 8e5
