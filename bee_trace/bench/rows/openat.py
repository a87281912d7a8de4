"""Row 1: added ns per openat of a non-matching path, bee-trace (default policy, 30 and 1,000
patterns, all probes) against bpftrace and auditd doing the equivalent match."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from typing import Any

from ...escape import markdown as md
from .. import procstat
from ..harness import ALL_PROBES, Bench
from ..runner import Agent, Auditd, Bpftrace, Unavailable, concrete_watch_paths
from ..stats import fmt_num, fmt_ratio, median, ratio, spread, text_table


def _bpftrace_version() -> str:
    exe = shutil.which("bpftrace")
    if not exe:
        return ""
    try:
        return subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=10
                              ).stdout.strip().removeprefix("bpftrace ")
    except (OSError, subprocess.SubprocessError):
        return ""


def measure(b: Bench) -> dict[str, Any]:
    watch = concrete_watch_paths()
    bt_version = _bpftrace_version()
    configs: list[tuple[str, Callable[[], Any]]] = [
        ("bee-trace (default policy)", lambda: Agent({"patterns": "default", "probes": ["file_monitor"]})),
        ("bee-trace (30 patterns)", lambda: Agent({"patterns": 30, "probes": ["file_monitor"]})),
        ("bee-trace (1,000 patterns)", lambda: Agent({"patterns": 1000, "probes": ["file_monitor"]})),
        ("bee-trace (default policy, all probes)",
         lambda: Agent({"patterns": "default", "probes": ALL_PROBES})),
        (f"bpftrace {bt_version} (map lookup of {len(watch)} paths)",
         lambda: Bpftrace(watch, b.tmp, "map")),
        (f"bpftrace {bt_version} ({len(watch)} == compares)",
         lambda: Bpftrace(watch, b.tmp, "compare")),
        ("auditd (-w watches)", lambda: Auditd(watch)),
    ]
    out: dict[str, Any] = {"path": b.nonmatch_path, "ops_per_trial": b.p.ops,
                           "trials": b.p.trials, "configs": []}
    all_base: list[float] = []
    b.wait_left = b.p.clean_budget
    for name, make in configs:
        b.log(f"openat: {name}")
        b.own_pids = set()
        b0 = b.open_trials()
        entry: dict[str, Any] = {"name": name}
        sys0 = procstat.system_cpu()
        try:
            with make() as ctx:
                b.own(ctx)
                t = b.open_trials()
                entry["trials_ns"] = t["trials"]
                entry["used_ns"] = t["used"]
                entry["contaminated"] = t["contaminated"]
                foreign = set(t["foreign"])
                if isinstance(ctx, Auditd):
                    entry["watches"] = len(ctx.watched)
                if isinstance(ctx, Agent):
                    entry["programs_attached"] = sum(c["state"] == "attached" for c in ctx.coverage)
                stopped = ctx.stop() if isinstance(ctx, Agent) else None
            if stopped is not None:
                s = stopped.get("summary", {})
                entry["candidates"] = s.get("candidates")
                entry["inspected"] = s.get("inspected")
        except Unavailable as e:
            entry["unavailable"] = str(e)
            entry["baseline_trials_ns"] = b0["trials"]
            all_base += b0["used"]
            out["configs"].append(entry)
            continue
        entry["system_busy_percent"] = procstat.system_busy_percent(sys0, procstat.system_cpu())
        b.own_pids = set()
        b1 = b.open_trials()   # baseline before and after: drift shows in both sides
        base = b0["used"] + b1["used"]
        all_base += base
        entry["baseline_trials_ns"] = b0["trials"] + b1["trials"]
        entry["baseline_contaminated"] = b0["contaminated"] + b1["contaminated"]
        entry["foreign_tracers"] = sorted(foreign | set(b0["foreign"]) | set(b1["foreign"]))
        entry["baseline_ns"] = median(base)
        entry["median_ns"] = median(entry["used_ns"])
        entry["added_ns"] = entry["median_ns"] - entry["baseline_ns"]
        entry["added_min_ns"] = min(entry["used_ns"]) - min(base)
        entry["spread_ns"] = spread(entry["used_ns"])
        out["configs"].append(entry)
    out["baseline_ns"] = median(all_base)
    by = {c["name"]: c for c in out["configs"]}
    bee = by["bee-trace (default policy)"].get("added_ns")
    bt = next((c.get("added_ns") for c in out["configs"]
               if c["name"].startswith("bpftrace") and "added_ns" in c), None)
    au = by["auditd (-w watches)"].get("added_ns")
    out["ratio_bee_over_bpftrace"] = ratio(bee, bt)
    out["ratio_bee_over_auditd"] = ratio(bee, au)
    return out


def render(r: dict[str, Any]) -> list[str]:
    t = [["baseline (nothing attached)", fmt_num(r["baseline_ns"], digits=0), "—", "—", "—", ""]]
    for c in r["configs"]:
        if "unavailable" in c:
            t.append([md(c["name"]), "—", "—", "—", "—", md(c["unavailable"])])
            continue
        lo, hi = c["spread_ns"]
        note = []
        if "watches" in c:
            note.append(f"{c['watches']} watches")
        bad = c.get("contaminated", 0) + c.get("baseline_contaminated", 0)
        if bad:
            note.append(f"{bad} trials overlapped other tracers (excluded when ≥3 clean)")
        if c.get("candidates") is not None:
            note.append(f"{c['candidates']} kernel candidates")
        t.append([c["name"], fmt_num(c["median_ns"]), f"{c['added_ns']:+.0f}",
                  f"{c['added_min_ns']:+.0f}", f"{lo:.0f}–{hi:.0f}", ", ".join(note)])
    return [text_table(
        ["openat+close of a non-matching path", "ns/op (median)", "added ns (median)",
         "added ns (min)", "trial range", "notes"], t,
        title=f"1. openat cost ({md(r['path'])}, {r['trials']} trials × {r['ops_per_trial']:,} ops, "
              "loadgen CPU time per op, load on CPU 1, agent on CPU 0)"),
        f"ratio bee-trace/bpftrace (added ns): {fmt_ratio(r['ratio_bee_over_bpftrace'])}; "
        f"bee-trace/auditd: {fmt_ratio(r['ratio_bee_over_auditd'])}"]
