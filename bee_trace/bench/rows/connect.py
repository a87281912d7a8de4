"""Row 3: added ns per connect to a closed loopback port (network monitor, all probes)."""

from __future__ import annotations

from typing import Any

from ..harness import ALL_PROBES, Bench
from ..runner import Agent, Unavailable, closed_port
from ..stats import fmt_num, median, spread, text_table


def measure(b: Bench) -> dict[str, Any]:
    if not b.net_built:
        return {"unavailable": "network monitor not built (no net_* programs in the BPF object)"}
    port = closed_port()
    b.wait_left = b.p.clean_budget
    b.own_pids = set()
    b0 = b.connect_trials(port)
    out: dict[str, Any] = {"port": port}
    try:
        with Agent({"patterns": "default", "probes": ALL_PROBES}) as agent:
            b.own(agent)
            out["attached_net_programs"] = [c["name"] for c in agent.coverage
                                            if c["name"].startswith("net_") and c["state"] == "attached"]
            t = b.connect_trials(port)
            res = agent.stop()
    except Unavailable as e:
        return {"unavailable": str(e)}
    b.own_pids = set()
    b1 = b.connect_trials(port)
    base = b0["used"] + b1["used"]
    out["baseline_trials_ns"] = b0["trials"] + b1["trials"]
    out["trials_ns"] = t["trials"]
    out["contaminated"] = t["contaminated"] + b0["contaminated"] + b1["contaminated"]
    out["baseline_ns"] = median(base)
    out["median_ns"] = median(t["used"])
    out["added_ns"] = out["median_ns"] - out["baseline_ns"]
    out["spread_ns"] = spread(t["used"])
    out["added_min_ns"] = min(t["used"]) - min(base)
    out["events_output"] = res.get("summary", {}).get("output")
    return out


def render(r: dict[str, Any]) -> list[str]:
    lo, hi = r["spread_ns"]
    note = f"{r.get('events_output')} events output"
    if r.get("contaminated"):
        note += f", {r['contaminated']} trials overlapped other tracers"
    return [text_table(
        ["connect to a closed 127.0.0.1 port", "ns/op (median)", "added ns (median)",
         "added ns (min)", "trial range", "notes"],
        [["baseline", fmt_num(r["baseline_ns"]), "—", "—", "", ""],
         ["bee-trace (all probes)", fmt_num(r["median_ns"]), f"{r['added_ns']:+.0f}",
          f"{r['added_min_ns']:+.0f}", f"{lo:.0f}–{hi:.0f}", note]], title="3. connect cost")]
