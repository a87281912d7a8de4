"""Row 4: repeated events at target rates, two ways. (a) Connects to one closed loopback port on
the bulk lane with aggregation, rate limits and sampling off: every record crosses the ring and
the template cache turns each repeat into a copy — the pipeline's best case (row 5 is the
distinct-event one). (b) Opens of one watched file on the critical lane: the kernel folds them
into one ring record per process and second plus a count (bpf/critical.h), so the pipeline sees
almost nothing; delivered is the sum of `count`. Latency is timed on ring records only (a fold
summary carries its window's first time and comes up to a second later by design)."""

from __future__ import annotations

import os
from typing import Any

from ..harness import Bench
from ..runner import closed_port
from ..stats import fmt_num, fmt_rate, median, text_table

SERIES = ("connect", "file")


def rate_point(rate: int, trials: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    """One rate's medians over its trials. delivered = the generator's events of `kind` at the
    sink as the sum of `count` (1 when absent); records = its output records (ring records +
    fold or aggregation summaries); latency = p99 over its ring records only (`n` of them)."""
    def m(f: Any) -> Any:
        return median(f(t) for t in trials)

    def delivered(t: dict[str, Any]) -> int:
        return int((t.get("by_comm_kind") or {}).get(f"loadgen/{kind}", 0))

    def records(t: dict[str, Any]) -> int:
        return int((t.get("records_by_comm_kind") or {}).get(f"loadgen/{kind}", 0))

    def summaries(t: dict[str, Any]) -> int:    # fold / aggregation summaries and spilled records
        return sum(v for k, v in (t.get("records_by_origin") or {}).items() if k != "ring")

    def lat(t: dict[str, Any], k: str) -> Any:
        return (t.get("latency") or {}).get(kind, {}).get(k)

    return {
        "target_rate": rate,
        "achieved_rate": m(lambda t: t["achieved_rate"]),
        "generated": m(lambda t: t["generated"]),
        "delivered_per_s": m(lambda t: delivered(t) / (t["generated"] / t["achieved_rate"])),
        "delivered": m(delivered),
        "records": m(records),
        "ring_records": m(lambda t: records(t) - summaries(t)),
        "summary_records": m(summaries),
        "all_delivered": all(delivered(t) == t["generated"] for t in trials),
        "dropped": m(lambda t: t["dropped"]),
        "policy_drops": m(lambda t: t.get("policy_drops", 0)),
        "foreign_events": m(lambda t: t["foreign_events"]),
        "loss_percent": m(lambda t: t["loss_percent"]),
        "agent_cpu_percent": m(lambda t: t["agent"]["cpu_percent"]),
        "latency_n": m(lambda t: lat(t, "n")),
        "latency_p99_ns": m(lambda t: lat(t, "p99_ns")),
        "trials": trials,
    }


def _series(b: Bench, name: str, rates: list[int], spec: dict[str, Any], kind: str,
            mode: str, target: str | None) -> dict[str, Any]:
    per_rate = []
    for rate in rates:
        b.log(f"repeated events ({name}): {rate} ev/s")
        trials = [b.rate_run(rate, b.p.rate_seconds, spec, mode=mode, target=target)
                  for _ in range(b.p.rate_trials)]
        for t in trials:
            t.pop("summary")     # the per-rate columns below carry what the table needs
        per_rate.append(rate_point(rate, trials, kind))
    zero = [r["achieved_rate"] for r in per_rate if r["dropped"] == 0 and r["all_delivered"]]
    return {"rates": per_rate, "max_zero_loss_rate": max(zero) if zero else None}


def measure(b: Bench) -> dict[str, Any]:
    out: dict[str, Any] = {"sink": "JSON Lines to /dev/null", "seconds": b.p.rate_seconds}
    if b.net_built:
        out["connect"] = _series(
            b, "connects", b.p.repeat_connect_rates,
            {"patterns": "default", "probes": ["network_monitor"], "profile": "max-coverage",
             "report_loopback": True, "unlimited": True, "sink": os.devnull,
             "latency_kinds": ["network"], "count_by_comm_kind": True},
            "network", "crate", str(closed_port()))
    else:
        out["connect"] = {"unavailable": "network monitor not built"}
    out["file"] = _series(
        b, "file opens", b.p.rates,
        {"patterns": "default", "probes": ["file_monitor"], "sink": os.devnull,
         "latency_kinds": ["file"], "count_by_comm_kind": True},
        "file", "rate", None)
    return out


def _table(s: dict[str, Any]) -> list[list[str]]:
    def ms(x: Any) -> str:
        return fmt_num(None if x is None else x / 1e6, digits=2)

    return [[fmt_rate(x["target_rate"]), fmt_rate(x["achieved_rate"]), fmt_rate(x["delivered_per_s"]),
             fmt_num(x["delivered"]), "yes" if x["all_delivered"] else "NO",
             f"{fmt_num(x['ring_records'])} + {fmt_num(x['summary_records'])}",
             fmt_num(x["dropped"]), f"{x['loss_percent']:.2f}%", f"{x['agent_cpu_percent']:.0f}%",
             f"{ms(x['latency_p99_ns'])} (n={fmt_num(x['latency_n'])})", fmt_num(x["foreign_events"])]
            for x in s["rates"]]


HEADERS = ["target ev/s", "generated ev/s", "delivered ev/s", "delivered (sum of count)",
           "delivered == generated", "records: ring + summaries", "lost (ring full, shed)", "loss",
           "agent CPU", "p99 latency ms, ring records (n)", "other procs' events"]


def render(r: dict[str, Any]) -> list[str]:
    out = []
    c, f = r.get("connect", {}), r["file"]
    if "unavailable" in c:
        out.append(f"### 4a. repeated connects\n\n{c['unavailable']}")
    elif c:
        out.append(text_table(HEADERS, _table(c), title=(
            "4a. repeated events through the template cache: connects to one closed 127.0.0.1 "
            "port (bulk lane; max-coverage, report_loopback, aggregation/rate limit/sampling off, "
            f"network probes) to {r['sink']}, {r['seconds']:.0f} s per rate")))
        out.append(f"max sustained zero-loss rate measured (repeated connects): "
                   f"{fmt_rate(c['max_zero_loss_rate'])} ev/s (the generator's ceiling is one core "
                   "of refused loopback connects)")
    out.append(text_table(HEADERS, _table(f), title=(
        "4b. repeated events folded in the kernel: one watched file opened again and again "
        "(critical lane, default policy, file probes; one ring record per second, the rest "
        f"reported as fold counts) to {r['sink']}, {r['seconds']:.0f} s per rate")))
    out.append(f"max sustained zero-loss rate measured (repeated file opens, delivered == "
               f"generated): {fmt_rate(f['max_zero_loss_rate'])} ev/s")
    return out
