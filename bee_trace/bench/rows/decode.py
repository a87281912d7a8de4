"""Row 8: per-record vs column-wise batch decode (no kernel), and the wake-up policies' cost."""

from __future__ import annotations

from typing import Any

from .. import decodebench
from ..harness import ALL_PROBES, Bench
from ..runner import Unavailable, closed_port
from ..stats import fmt_rate, fmt_ratio, loss_notes, median, ratio, text_table


def measure(b: Bench) -> dict[str, Any]:
    b.log("decode: per-record vs batch")
    d = decodebench.run(b.p.decode_records, b.p.decode_repeats)
    out: dict[str, Any] = {
        "records": d["records"],
        "per_record_ev_s": median(d["per_record_ev_s"]),
        "columnar_ev_s": median(d["columnar_ev_s"]),
        "numpy_only_ev_s": median(d["numpy_only_ev_s"]),
        "json_dumps_ns": d["json_dumps_ns"],
        "raw": d,
    }
    out["columnar_speedup"] = ratio(out["columnar_ev_s"], out["per_record_ev_s"])
    out["wakeups"] = _wakeups(b)
    return out


def _wakeups(b: Bench) -> dict[str, Any]:
    rate, secs = b.p.wake_rate, b.p.wake_seconds
    out: dict[str, Any] = {"rate": rate, "seconds": secs}
    b.log(f"wake-ups: critical lane at {rate} ev/s")
    r = b.rate_run(rate, secs, {"patterns": "default", "probes": ["file_monitor"],
                                "latency_kinds": []})
    out["critical_eager"] = {"ctxt_per_s": r["agent"]["ctxt_per_s"],
                             "cpu_percent": r["agent"]["cpu_percent"], "dropped": r["dropped"],
                             "foreign_events": r["foreign_events"]}
    if not b.net_built:
        out["bulk"] = {"unavailable": "not measured: no bulk-lane producer in this build "
                                      "(network monitor not built)"}
        return out
    port = str(closed_port())
    for label, wake in (("bulk_eager", 0), ("bulk_batched", 64 << 10)):
        b.log(f"wake-ups: bulk lane, bulk_wake_bytes={wake}")
        try:
            r = b.rate_run(rate, secs, {"patterns": "default", "probes": ALL_PROBES,
                                        "profile": "max-coverage", "report_loopback": True,
                                        "bulk_wake_bytes": wake, "unlimited": True,
                                        "latency_kinds": ["network"]},
                           mode="crate", target=port)
        except Unavailable as e:
            out[label] = {"unavailable": str(e)}
            continue
        out[label] = {"bulk_wake_bytes": wake, "ctxt_per_s": r["agent"]["ctxt_per_s"],
                      "cpu_percent": r["agent"]["cpu_percent"], "dropped": r["dropped"],
                      "policy_drops": r["policy_drops"], "foreign_events": r["foreign_events"],
                      "received": r["received"], "bulk_share": r["bulk_share"].get("network")}
    return out


def render(r: dict[str, Any]) -> list[str]:
    t = [["per-record (struct view → dict: the pipeline's path for a first occurrence)",
          fmt_rate(r["per_record_ev_s"]), "1.00×"],
         ["column-wise numpy batch → dicts", fmt_rate(r["columnar_ev_s"]),
          fmt_ratio(r["columnar_speedup"])],
         ["numpy-only batch filter (no objects)", fmt_rate(r["numpy_only_ev_s"]),
          fmt_ratio(ratio(r["numpy_only_ev_s"], r["per_record_ev_s"]))],
         ["JSON line of one decoded event (orjson, the sink's encoder)",
          f"{r['json_dumps_ns'] / 1e3:.1f} µs/event", ""]]
    parts = [text_table(["decode of a synthetic batch", "events/s (median)", "vs per-record"],
                        t, title=f"8a. decode, {r['records']:,} file records")]
    w = r["wakeups"]
    t = []
    for key, label in (("critical_eager", "critical lane (wake per record)"),
                       ("bulk_eager", "bulk lane, bulk_wake_bytes=0"),
                       ("bulk_batched", "bulk lane, bulk_wake_bytes=64 KiB"), ("bulk", "bulk lane")):
        x = w.get(key)
        if x is None:
            continue
        if "unavailable" in x:
            t.append([label, "—", "—", x["unavailable"]])
        else:
            t.append([label, f"{x['ctxt_per_s']:.0f}", f"{x['cpu_percent']:.1f}%", loss_notes(x)])
    parts.append(text_table(["wake-up policy", "agent ctx switches/s", "agent CPU", "notes"], t,
                            title=f"8b. wake-ups at {fmt_rate(w['rate'])} ev/s"))
    return parts
