"""Row 6: detection latency, kernel timestamp → sink, p50/p95/p99 on both lanes."""

from __future__ import annotations

from typing import Any

from ..harness import ALL_PROBES, Bench
from ..runner import Unavailable, closed_port
from ..stats import fmt_num, loss_notes, text_table


def measure(b: Bench) -> dict[str, Any]:
    b.log("latency: critical (file opens)")
    out: dict[str, Any] = {"rate": b.p.latency_rate, "seconds": b.p.latency_seconds}
    r = b.rate_run(b.p.latency_rate, b.p.latency_seconds,
                   {"patterns": "default", "probes": ALL_PROBES, "profile": "max-coverage",
                    "sink": str(b.tmp / "latency.jsonl"), "latency_kinds": ["file"]})
    out["critical"] = {**r["latency"].get("file", {"n": 0}), "dropped": r["dropped"],
                       "foreign_events": r["foreign_events"]}
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


def render(r: dict[str, Any]) -> list[str]:
    t = []
    for lane in ("critical", "bulk"):
        x = r.get(lane, {})
        if "unavailable" in x:
            t.append([lane, "—", "—", "—", "—", x["unavailable"]])
        elif x.get("n"):
            t.append([lane, fmt_num(x["n"]), f"{x['p50_ns'] / 1e3:.0f}", f"{x['p95_ns'] / 1e3:.0f}",
                      f"{x['p99_ns'] / 1e3:.0f}", loss_notes(x)])
        elif x:
            t.append([lane, "0", "—", "—", "—", "no samples"])
    return [text_table(["lane", "events", "p50 µs", "p95 µs", "p99 µs", "notes"], t,
                       title=f"6. detection latency, kernel boot_ns → sink "
                             f"({r.get('rate')} ev/s for {r.get('seconds', 0):.0f} s)")]
