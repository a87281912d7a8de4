"""Row 7: agent CPU idle and under (repeated-event) load, RSS/USS, context switches/s, perf
cache misses."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from typing import Any

from .. import procstat
from ..harness import ALL_PROBES, Bench
from ..runner import Agent, run_loadgen
from ..stats import fmt_rate, text_table


class _PerfStat:
    """`perf stat -e cache-misses,cache-references -p PID` for a window, started now."""

    def __init__(self, pid: int, seconds: float) -> None:
        self.proc: subprocess.Popen | None = None
        self.reason = ""
        exe = shutil.which("perf")
        if not exe:
            self.reason = "unavailable: perf not installed (apt-get install -y linux-perf)"
            return
        self.proc = subprocess.Popen(
            [exe, "stat", "-x", ",", "-e", "cache-misses,cache-references", "-p", str(pid),
             "--", "sleep", str(seconds)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def result(self) -> dict[str, Any]:
        if self.proc is None:
            return {"unavailable": self.reason}
        _, err = self.proc.communicate(timeout=60)
        vals: dict[str, float | None] = {}
        for line in err.splitlines():
            parts = line.split(",")
            if len(parts) >= 3 and parts[2] in ("cache-misses", "cache-references"):
                try:
                    vals[parts[2]] = float(parts[0])
                except ValueError:
                    vals[parts[2]] = None
        misses, refs = vals.get("cache-misses"), vals.get("cache-references")
        if misses is None or refs is None:
            detail = "hardware cache events <not supported> (no PMU exposed to this VM)" \
                if "not supported" in err else err.strip()[-200:]
            return {"unavailable": f"unavailable: {detail}"}
        return {"cache_misses": misses, "cache_references": refs,
                "miss_rate_percent": 100 * misses / max(refs, 1)}


def measure(b: Bench) -> dict[str, Any]:
    out: dict[str, Any] = {"idle_seconds": b.p.idle_seconds, "load_seconds": b.p.load_seconds,
                           "load_rate": 100_000}
    with Agent({"patterns": "default", "probes": ALL_PROBES, "sink": os.devnull,
                "latency_kinds": []}) as agent:
        time.sleep(0.5)
        b.log(f"resources: idle {b.p.idle_seconds:.0f} s")
        s0 = procstat.sample(agent.pid)
        time.sleep(b.p.idle_seconds)
        s1 = procstat.sample(agent.pid)
        out["idle"] = {**procstat.rates(s0, s1), **procstat.memory(agent.pid)}
        b.log("resources: 100k ev/s")
        perf = _PerfStat(agent.pid, b.p.load_seconds)
        s0 = procstat.sample(agent.pid)
        gen = run_loadgen(b.loadgen, "rate", b.match_path, 100_000, b.p.load_seconds)
        s1 = procstat.sample(agent.pid)
        out["load"] = {**procstat.rates(s0, s1), **procstat.memory(agent.pid),
                       "achieved_rate": gen["ops"] / gen["seconds"]}
        out["perf"] = perf.result()
        res = agent.stop()
    summ = res.get("summary", {})
    out["load"]["delivered"] = summ.get("output")
    out["load"]["dropped"] = sum((summ.get("dropped") or {}).values())
    return out


def render(r: dict[str, Any]) -> list[str]:
    i, l = r["idle"], r["load"]
    perf = r["perf"]
    perf_txt = perf.get("unavailable") or f"{perf['miss_rate_percent']:.1f}% of cache refs"
    t = [
        [f"idle ({r['idle_seconds']:.0f} s)", f"{i['cpu_percent']:.2f}%", f"{i['rss_mib']:.1f}",
         f"{i['uss_mib']:.1f}", f"{i['ctxt_per_s']:.0f}", ""],
        [f"load ({fmt_rate(l['achieved_rate'])} repeated ev/s, {r['load_seconds']:.0f} s)",
         f"{l['cpu_percent']:.1f}%", f"{l['rss_mib']:.1f}", f"{l['uss_mib']:.1f}",
         f"{l['ctxt_per_s']:.0f}", perf_txt],
    ]
    return [text_table(["agent (all probes)", "CPU (1 core)", "RSS MiB", "USS MiB",
                        "ctx switches/s", "perf cache misses"], t, title="7. resources")]
