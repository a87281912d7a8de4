"""Row 5: distinct events — what an attacker or a busy build produces, which the template cache
cannot turn into copies: creates of distinct watched files (`x<i>.pem`, on tmpfs) alternating
with connects to distinct loopback destinations (127.0.0.1 + i), at target rates; delivered,
lost by cause, folded and spilled per rate, and the agent's CPU and context switches."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from ..harness import ALL_PROBES, Bench, loss_by_cause
from ..runner import closed_port
from ..stats import fmt_num, fmt_rate, text_table

CPU_POINTS = (1_000, 10_000, 100_000)


def scratch_dir() -> str | None:
    """tmpfs when there is one: creating a file on this VM's ext4 costs ≈ 240 µs, on tmpfs ≈ 2 µs."""
    return "/dev/shm" if Path("/dev/shm").is_dir() else None


def distinct_accounting(gen: dict[str, float], by_comm_kind: dict[str, int],
                        summary: dict[str, Any]) -> dict[str, Any]:
    """One rate's numbers: offered events (half files, half connects), delivered per kind,
    lost by cause, folded, spilled; `complete` when everything offered was delivered."""
    offered = int(gen.get("ops", 0))
    files, conns = by_comm_kind.get("loadgen/file", 0), by_comm_kind.get("loadgen/network", 0)
    lanes = summary.get("lanes") or {}
    lost = loss_by_cause(summary)
    return {
        "offered": offered, "offered_files": (offered + 1) // 2, "offered_connects": offered // 2,
        "delivered_files": files, "delivered_connects": conns, "delivered": files + conns,
        "lost": sum(lost.values()), "lost_by_cause": lost,
        "policy": {k: sum(int(l.get(k, 0)) for l in lanes.values())
                   for k in ("sampled", "rate_limited", "aggregated")},
        "folded": sum(int(l.get("folded", 0)) for l in lanes.values()),
        "spilled": sum(int(l.get("spilled", 0)) for l in lanes.values()),
        "all_delivered": files + conns >= offered,
        "verdict": summary.get("verdict"),
    }


def measure(b: Bench) -> dict[str, Any]:
    port = closed_port()
    out: list[dict[str, Any]] = []
    for rate in b.p.distinct_rates:
        b.log(f"distinct events: {rate} ev/s")
        with tempfile.TemporaryDirectory(prefix="bee-distinct-", dir=scratch_dir()) as d:
            r = b.rate_run(rate, b.p.distinct_seconds,
                           {"patterns": "default", "probes": ALL_PROBES, "report_loopback": True,
                            "sink": os.devnull, "latency_kinds": ["file"], "count_by_comm_kind": True},
                           loadgen_args=("paced", "distinct", f"{d}:{port}", rate,
                                         b.p.distinct_seconds, "spin"))
        acc = distinct_accounting({"ops": r["generated"]}, r["by_comm_kind"], r["summary"])
        out.append({"target_rate": rate, "achieved_rate": r["achieved_rate"], **acc,
                    "agent": r["agent"], "latency_file": r["latency"].get("file", {}),
                    "foreign_events": r["foreign_events"]})
    zero = [x["achieved_rate"] for x in out if x["lost"] == 0 and x["all_delivered"]]
    return {"seconds": b.p.distinct_seconds, "port": port, "rates": out,
            "max_zero_loss_rate": max(zero) if zero else None}


def _causes(x: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v:,}" for k, v in x["lost_by_cause"].items()) or "—"


def render(r: dict[str, Any]) -> list[str]:
    t = []
    for x in r["rates"]:
        p99 = x["latency_file"].get("p99_ns")
        t.append([fmt_rate(x["target_rate"]), fmt_rate(x["achieved_rate"]),
                  f"{fmt_num(x['delivered_files'])} / {fmt_num(x['offered_files'])}",
                  f"{fmt_num(x['delivered_connects'])} / {fmt_num(x['offered_connects'])}",
                  fmt_num(x["lost"]), _causes(x), fmt_num(x["folded"]), fmt_num(x["spilled"]),
                  fmt_num(sum(x["policy"].values())),
                  "—" if p99 is None else f"{p99 / 1e6:.2f}",
                  f"{x['agent']['cpu_percent']:.0f}%", str(x["verdict"])])
    parts = [text_table(
        ["target ev/s", "generated ev/s", "files delivered / offered",
         "connects delivered / offered", "lost", "lost by cause", "folded", "spilled",
         "policy drops", "file p99 ms", "agent CPU", "verdict"], t,
        title=f"5. distinct events (distinct watched files + distinct loopback destinations, "
              f"all probes, default policy + report_loopback), {r['seconds']:.0f} s per rate"),
        f"max distinct-event rate with zero loss and everything delivered: "
        f"{fmt_rate(r['max_zero_loss_rate'])} ev/s"]
    pts = [x for x in r["rates"] if x["target_rate"] in CPU_POINTS]
    if pts:
        parts.append(text_table(
            ["distinct ev/s (generated)", "agent CPU (1 core)", "ctx switches/s", "RSS MiB", "USS MiB"],
            [[fmt_rate(x["achieved_rate"]), f"{x['agent']['cpu_percent']:.1f}%",
              f"{x['agent']['ctxt_per_s']:.0f}", f"{x['agent']['rss_mib']:.1f}",
              f"{x['agent']['uss_mib']:.1f}"] for x in pts],
            title="5b. agent CPU and context switches at 1k, 10k and 100k distinct events/s "
                  "(same runs)"))
    return parts
