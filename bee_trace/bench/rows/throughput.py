"""Row 4: repeated events — one matching file opened at target rates; the template cache turns
each repeat into a copy, so this is the pipeline's best case (row 5 is the distinct-event one)."""

from __future__ import annotations

import os
from typing import Any

from ..harness import Bench
from ..stats import fmt_num, fmt_rate, median, text_table


def measure(b: Bench) -> dict[str, Any]:
    per_rate: list[dict[str, Any]] = []
    for rate in b.p.rates:
        b.log(f"repeated events: {rate} ev/s")
        trials = [b.rate_run(rate, b.p.rate_seconds,
                             {"patterns": "default", "probes": ["file_monitor"],
                              "sink": os.devnull, "latency_kinds": ["file"]})
                  for _ in range(b.p.rate_trials)]
        for t in trials:
            t.pop("summary")     # the per-rate columns below carry what the table needs
        per_rate.append({
            "target_rate": rate,
            "achieved_rate": median(t["achieved_rate"] for t in trials),
            "delivered_per_s": median(t["delivered"] / (t["generated"] / t["achieved_rate"])
                                      for t in trials),
            "delivered": median(t["delivered"] for t in trials),
            "dropped": median(t["dropped"] for t in trials),
            "foreign_events": median(t["foreign_events"] for t in trials),
            "loss_percent": median(t["loss_percent"] for t in trials),
            "agent_cpu_percent": median(t["agent"]["cpu_percent"] for t in trials),
            "latency_p99_ns": median(t["latency"].get("file", {}).get("p99_ns") for t in trials),
            "trials": trials,
        })
    zero = [r["achieved_rate"] for r in per_rate if r["dropped"] == 0]
    return {"sink": "JSON Lines to /dev/null (json.dumps per event)", "seconds": b.p.rate_seconds,
            "rates": per_rate, "max_zero_loss_rate": max(zero) if zero else None}


def render(r: dict[str, Any]) -> list[str]:
    t = [[fmt_rate(x["target_rate"]), fmt_rate(x["achieved_rate"]), fmt_rate(x["delivered_per_s"]),
          fmt_num(x["delivered"]), fmt_num(x["dropped"]), f"{x['loss_percent']:.2f}%",
          f"{x['agent_cpu_percent']:.0f}%",
          fmt_num(None if x["latency_p99_ns"] is None else x["latency_p99_ns"] / 1e6, digits=2),
          fmt_num(x["foreign_events"])]
         for x in r["rates"]]
    return [text_table(
        ["target ev/s", "generated ev/s", "delivered ev/s", "delivered", "lost (ring full)", "loss",
         "agent CPU", "p99 latency ms", "other procs' events"], t,
        title=f"4. repeated events (one file opened again and again: template cache) to "
              f"{r['sink']}, {r['seconds']:.0f} s per rate"),
        f"max sustained zero-loss rate measured (repeated events): "
        f"{fmt_rate(r['max_zero_loss_rate'])} ev/s"]
