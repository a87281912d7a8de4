"""Row 6: detection latency, kernel timestamp → sink, p50/p95/p99. Critical lane: creates of
distinct watched files (`loadgen paced files`: every event a first occurrence, never folded) at
a few rates, timed on the records that came through the ring; bulk lane: loopback connects."""

from __future__ import annotations

import tempfile
from typing import Any

from ..harness import ALL_PROBES, Bench, loss_by_cause
from ..runner import Unavailable, closed_port
from ..stats import fmt_num, fmt_rate, loss_notes, text_table
from .distinct import scratch_dir


def critical_point(r: dict[str, Any]) -> dict[str, Any]:
    """One critical rate from a rate run: latency over ring records, and the accounting that
    says what was not timed (spilled `late`, fold counts) or not delivered."""
    summ = r.get("summary") or {}
    kind = "loadgen/file"
    lost = loss_by_cause(summ)
    return {**(r.get("latency") or {}).get("file", {"n": 0}),
            "target_rate": r["target_rate"], "achieved_rate": r["achieved_rate"],
            "offered": r["generated"], "delivered": (r.get("by_comm_kind") or {}).get(kind, 0),
            "late": (r.get("by_origin") or {}).get("late", 0),
            "folded": (r.get("by_origin") or {}).get("folded", 0),
            "lost": sum(lost.values()), "lost_by_cause": lost,
            "dropped": r["dropped"], "policy_drops": r.get("policy_drops", 0),
            "foreign_events": r["foreign_events"], "agent_cpu_percent": r["agent"].get("cpu_percent"),
            "verdict": summ.get("verdict")}


def measure(b: Bench) -> dict[str, Any]:
    out: dict[str, Any] = {"rate": b.p.latency_rate, "seconds": b.p.latency_seconds,
                           "critical_rates": []}
    for rate in b.p.latency_crit_rates:
        b.log(f"latency: critical (distinct watched files) at {rate}/s")
        with tempfile.TemporaryDirectory(prefix="bee-latency-", dir=scratch_dir()) as d:
            r = b.rate_run(rate, b.p.latency_seconds,
                           {"patterns": "default", "probes": ALL_PROBES, "profile": "max-coverage",
                            "sink": str(b.tmp / f"latency-{rate}.jsonl"), "latency_kinds": ["file"],
                            "count_by_comm_kind": True},
                           loadgen_args=("paced", "files", d, rate, b.p.latency_seconds, "spin"))
        out["critical_rates"].append(critical_point(r))
    if not b.net_built:
        out["bulk"] = {"unavailable": "no bulk-lane events in this build (network monitor not built)"}
        return out
    b.log("latency: bulk (loopback connects)")
    try:
        r = b.rate_run(b.p.latency_rate, b.p.latency_seconds,
                       {"patterns": "default", "probes": ALL_PROBES, "profile": "max-coverage",
                        "report_loopback": True,
                        "unlimited": True, "sink": str(b.tmp / "latency-net.jsonl"),
                        "latency_kinds": ["network"]},
                       mode="crate", target=str(closed_port()))
        lat = r["latency"].get("network", {"n": 0})
        if not lat.get("n"):
            out["bulk"] = {"unavailable": "no network events reached the sink for loopback connects"}
        else:
            out["bulk"] = {**lat, "dropped": r["dropped"], "foreign_events": r["foreign_events"],
                           "bulk_lane_share": r["bulk_share"].get("network")}
    except Unavailable as e:
        out["bulk"] = {"unavailable": str(e)}
    return out


def _us(x: dict[str, Any], k: str) -> str:
    return f"{x[k] / 1e3:,.0f}" if x.get("n") else "—"


def _crit_notes(x: dict[str, Any]) -> str:
    out = [f"delivered {fmt_num(x['delivered'])} of {fmt_num(x['offered'])}"]
    if x.get("late"):
        out.append(f"{fmt_num(x['late'])} spilled (late, not timed)")
    if x.get("folded"):
        out.append(f"{fmt_num(x['folded'])} in fold counts (not timed)")
    causes = ", ".join(f"{k} {v:,}" for k, v in x.get("lost_by_cause", {}).items())
    out.append(f"lost {fmt_num(x.get('lost', 0))}" + (f" ({causes})" if causes else ""))
    if x.get("foreign_events"):
        out.append(f"{x['foreign_events']} events from other processes")
    if x.get("agent_cpu_percent") is not None:
        out.append(f"agent CPU {x['agent_cpu_percent']:.0f}%")
    return ", ".join(out)


def render(r: dict[str, Any]) -> list[str]:
    t = []
    for x in r.get("critical_rates", []):
        t.append([f"critical, {fmt_rate(x['target_rate'])}/s", fmt_num(x.get("n", 0)),
                  _us(x, "p50_ns"), _us(x, "p95_ns"), _us(x, "p99_ns"), _us(x, "max_ns"),
                  _crit_notes(x)])
    x = r.get("bulk", {})
    if "unavailable" in x:
        t.append([f"bulk, {r.get('rate')}/s", "—", "—", "—", "—", "—", x["unavailable"]])
    elif x.get("n"):
        t.append([f"bulk, {r.get('rate')}/s", fmt_num(x["n"]), _us(x, "p50_ns"), _us(x, "p95_ns"),
                  _us(x, "p99_ns"), _us(x, "max_ns"), loss_notes(x)])
    elif x:
        t.append([f"bulk, {r.get('rate')}/s", "0", "—", "—", "—", "—", "no samples"])
    return [text_table(["lane, rate", "timed events", "p50 µs", "p95 µs", "p99 µs", "max µs", "notes"], t,
                       title=f"6. detection latency, kernel boot_ns → sink, {r.get('seconds', 0):.0f} s "
                             "per rate (critical: creates of distinct watched .pem files on tmpfs, "
                             "every one a first occurrence, timed on ring records; bulk: refused "
                             "loopback connects)")]
