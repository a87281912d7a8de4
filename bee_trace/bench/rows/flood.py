"""Row 9: the critical lane under a bulk flood: refused loopback connects as fast as one core
can (max-coverage profile, a deliberately small bulk ring) while a paced generator creates
distinct watched .pem files at 200/s (every one a first occurrence: nothing for the kernel to
fold, so each crosses the critical ring and is timed); bulk drops counted exactly, critical
events all kept (delivered = the sum of `count`, latency on ring records only)."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from typing import Any

from .. import procstat
from ..harness import ALL_PROBES, CRIT_COMM, FLOOD_COMM, Bench
from ..runner import Agent, Loadgen, closed_port, run_loadgen
from ..stats import fmt_num, fmt_rate, text_table, yes
from .distinct import scratch_dir


def measure(b: Bench, crit: str = "files") -> dict[str, Any]:
    """crit "files": distinct watched files (the row); "same": one watched file opened again and
    again, which the kernel folds into one ring record per second (kept to check fold counts)."""
    if not b.net_built:
        return {"unavailable": "no bulk-lane producer in this build (network monitor not built)"}
    secs, lead, rate = b.p.flood_seconds, b.p.flood_lead, b.p.flood_crit_rate
    crit_bin = b.tmp / CRIT_COMM
    if not crit_bin.exists():
        shutil.copy2(b.loadgen, crit_bin)
    port = closed_port()
    spec = {"patterns": "default", "probes": ALL_PROBES, "profile": "max-coverage",
            "report_loopback": True, "unlimited": True,
            "ring_bulk_bytes": b.p.flood_ring_bulk, "sink": os.devnull,
            "latency_kinds": ["file"], "latency_comm": CRIT_COMM, "count_by_comm_kind": True}
    b.log(f"flood: connects to 127.0.0.1:{port} for {secs:.0f} s, critical "
          f"{'creates of distinct files' if crit == 'files' else 'opens of one file'} at {rate}/s "
          "meanwhile")
    with tempfile.TemporaryDirectory(prefix="bee-flood-", dir=scratch_dir()) as d, \
            Agent(spec) as agent:
        # Paced by sleeping, on the flood's CPU: it takes ~nothing from the flood.
        crit_args: tuple[Any, ...] = (
            ("paced", "files", d, rate, secs - 2 * lead, "sleep") if crit == "files" else
            ("srate", b.match_path, rate, secs - 2 * lead))
        s0 = procstat.sample(agent.pid)
        with Loadgen(b.loadgen, "flood", port, secs) as flood:
            time.sleep(lead)
            crit_gen = run_loadgen(crit_bin, *crit_args, timeout=secs + 60)
            gen = flood.result(timeout=secs + 60)
        s1 = procstat.sample(agent.pid)
        time.sleep(1.2)       # fold counts of the last window reach the reader
        res = agent.stop()
    out = flood_accounting(res.get("summary", {}), res.get("by_comm_kind", {}), gen, crit_gen,
                           records_by_comm_kind=res.get("records_by_comm_kind", {}))
    out.update({"port": port, "crit_rate": rate, "crit_mode": crit,
                "crit_late_max_ns": crit_gen.get("late_max_ns"),
                "rings": res.get("rings", {}), "agent": procstat.rates(s0, s1),
                "latency": res.get("latency", {}).get("file", {"n": 0}),
                "by_comm_kind": res.get("by_comm_kind", {}),
                "by_origin": res.get("by_origin", {}),
                "records_by_origin": res.get("records_by_origin", {})})
    return out


def flood_accounting(summary: dict[str, Any], by_comm_kind: dict[str, int],
                     flood: dict[str, float], crit: dict[str, float],
                     flood_comm: str = FLOOD_COMM, crit_comm: str = CRIT_COMM,
                     records_by_comm_kind: dict[str, int] | None = None) -> dict[str, Any]:
    """The flood row's numbers and checks from the agent's loss summary, its per-(comm, kind)
    event counts (`by_comm_kind`: the sum of `count`, 1 when absent; `records_by_comm_kind`:
    output records) and the two generators' outputs (`ops`, `seconds`).

    Shed and policy-dropped records are refused before they take a sequence number; every other
    attempt is numbered, so on the bulk lane attempted == emitted + ring_full must hold exactly,
    the reader must have received every emitted record, and a sequence gap the kernel did not
    count (uncounted_gaps) must never appear."""
    lanes = summary.get("lanes") or {}
    bulk, critl = lanes.get("bulk", {}), lanes.get("critical", {})
    policy = sum(bulk.get(k, 0) for k in ("sampled", "rate_limited", "aggregated"))
    offered = int(flood.get("ops", 0))
    seconds = float(flood.get("seconds", 0.0))
    attempted, emitted = bulk.get("attempted", 0), bulk.get("emitted", 0)
    ring_full, shed = bulk.get("ring_full", 0), bulk.get("shed", 0)
    issued = int(crit.get("ops", 0))
    delivered_crit = by_comm_kind.get(f"{crit_comm}/file", 0)
    return {
        "seconds": seconds,
        "crit_seconds": float(crit.get("seconds", 0.0)),
        "offered_bulk": offered,
        "offered_rate": offered / seconds if seconds else None,
        "flood_cpu_ns_per_connect": flood.get("ns_per_op"),
        "bulk": {"attempted": attempted, "emitted": emitted, "ring_full": ring_full, "shed": shed,
                 "policy_drops": policy, "received": bulk.get("received", 0),
                 "sequence_gaps": bulk.get("sequence_gaps", 0),
                 "delivered": by_comm_kind.get(f"{flood_comm}/network", 0)},
        "uncounted_gaps": summary.get("uncounted_gaps"),
        "attempted_eq_emitted_plus_ring_full": attempted == emitted + ring_full,
        "received_eq_emitted": bulk.get("received", 0) == emitted,
        # Records numbered then dropped after the last one the reader saw on that CPU are counted
        # as ring_full but cannot show as gaps: ring_full - sequence_gaps of them.
        "ring_full_after_last_read": ring_full - bulk.get("sequence_gaps", 0),
        # > 0: bulk records of other processes; < 0: flood connects the kernel never saw.
        "accounted_minus_offered": attempted + shed + policy - offered,
        "critical": {"issued": issued, "delivered": delivered_crit,
                     "records": (records_by_comm_kind or {}).get(f"{crit_comm}/file"),
                     "lost": issued - delivered_crit, "ring_full": critl.get("ring_full", 0),
                     "sequence_gaps": critl.get("sequence_gaps", 0),
                     "attempted": critl.get("attempted", 0), "emitted": critl.get("emitted", 0)},
        "critical_zero_loss": delivered_crit == issued and critl.get("ring_full", 0) == 0,
        "verdict": summary.get("verdict"),
        "shed_raised": summary.get("shed_raised", 0),     # times backpressure raised the shed level
    }


def flood_table(r: dict[str, Any]) -> list[list[str]]:
    """Rows (measure, value, notes) of the flood table from row_flood's result."""
    b, c = r["bulk"], r["critical"]
    ring = (r.get("rings") or {}).get("bulk")
    lat = r.get("latency") or {}
    p = (lambda k: "—" if not lat.get("n") else f"{lat[k] / 1e6:.2f}")
    extra = r["accounted_minus_offered"]
    ro = r.get("records_by_origin") or {}
    what = ("opens of one secret file (folded: one ring record per second)"
            if r.get("crit_mode") == "same" else "creates of distinct watched .pem files")
    return [
        ["duration", f"{r['seconds']:.1f} s",
         f"critical generator {r['crit_seconds']:.1f} s inside the flood"],
        ["offered bulk ev/s", fmt_rate(r["offered_rate"]),
         f"{fmt_num(r['offered_bulk'])} refused connects to 127.0.0.1, 1 process on CPU 1, "
         f"{fmt_num(r['flood_cpu_ns_per_connect'])} ns CPU each"],
        ["bulk ring", f"{ring >> 10} KiB" if ring else "—", "deliberately small, to overflow"],
        ["bulk attempted (numbered)", fmt_num(b["attempted"]), "kernel per-CPU sequence numbers"],
        ["bulk emitted", fmt_num(b["emitted"]), ""],
        ["bulk delivered", fmt_num(b["delivered"]),
         f"flood's events at the sink; reader received {fmt_num(b['received'])}"],
        ["bulk ring_full", fmt_num(b["ring_full"]), ""],
        ["bulk shed", fmt_num(b["shed"]),
         f"backpressure, refused before numbering; shed level raised {r.get('shed_raised', 0)}×"],
        ["bulk policy drops", fmt_num(b["policy_drops"]), "sampled + rate-limited + aggregated"],
        ["bulk sequence gaps", fmt_num(b["sequence_gaps"]),
         f"{fmt_num(r['ring_full_after_last_read'])} ring_full after the last record read"],
        ["uncounted_gaps", fmt_num(r["uncounted_gaps"]), "must be 0"],
        ["attempted == emitted + ring_full", yes(r["attempted_eq_emitted_plus_ring_full"]),
         f"{fmt_num(b['attempted'])} = {fmt_num(b['emitted'])} + {fmt_num(b['ring_full'])}"],
        ["received == emitted", yes(r["received_eq_emitted"]), ""],
        ["attempted + shed + policy − offered", f"{extra:+,}",
         "> 0: other processes' bulk records; < 0: connects never seen"],
        ["critical issued / delivered (sum of count)",
         f"{fmt_num(c['issued'])} / {fmt_num(c['delivered'])}",
         f"{r['crit_rate']}/s {what} by {CRIT_COMM}; lost {fmt_num(c['lost'])}"],
        ["critical output records: ring + late + fold counts",
         f"{fmt_num(ro.get('ring'))} + {fmt_num(ro.get('late'))} + {fmt_num(ro.get('folded'))}",
         f"{CRIT_COMM}'s, all kinds (its exec is one); late = spilled while the ring was full"],
        ["critical ring_full", fmt_num(c["ring_full"]), ""],
        ["critical latency p50 / p99 ms", f"{p('p50_ns')} / {p('p99_ns')}",
         f"{fmt_num(lat.get('n'))} ring records timed (late and fold counts are not), "
         f"max {p('max_ns')} ms" if lat.get("n") else "no ring record timed"],
        ["agent CPU", f"{r['agent'].get('cpu_percent', 0):.0f}%", "one core"],
        ["verdict", str(r.get("verdict")), "degraded = bulk records were dropped (counted)"],
    ]


def flood_statement(r: dict[str, Any]) -> str:
    rate = r.get("offered_rate") or 0
    counted = r["uncounted_gaps"] == 0 and r["attempted_eq_emitted_plus_ring_full"]
    out = (f"critical lane: {'zero loss' if r['critical_zero_loss'] else 'LOSS'}; bulk drops "
           f"{'all counted' if counted else 'NOT all counted'}")
    if rate < 1_000_000:
        per = r.get("flood_cpu_ns_per_connect")
        out += (f". 1,000,000 ev/s was not offered: one core of refused loopback connects reaches "
                f"{fmt_rate(rate)} connects/s here" + (f" (≈ {per / 1e3:.1f} µs CPU each)" if per else ""))
    return out


def render(r: dict[str, Any]) -> list[str]:
    return [text_table(["critical lane under a bulk flood", "value", "notes"], flood_table(r),
                       title=f"9. critical lane under a bulk flood "
                             f"({r['seconds']:.0f} s, profile max-coverage, all probes)"),
            flood_statement(r)]
