"""Row 12: start-up time, from launching `bee-trace run --probe-type all` to its ready file (the
CLI creates it once every probe is attached)."""

from __future__ import annotations

from typing import Any

from ..harness import Bench
from ..runner import CliAgent
from ..stats import median, spread, text_table


def measure(b: Bench) -> dict[str, Any]:
    out: dict[str, Any] = {"trials": b.p.startup_trials}
    for probe in ("all", "file_monitor"):
        times = []
        for i in range(b.p.startup_trials):
            b.log(f"startup: --probe-type {probe}, trial {i + 1}")
            with CliAgent(b.tmp, probe, "startup") as agent:
                times.append(agent.startup_s)
        out[probe] = {"seconds": times, "median_s": median(times), "spread_s": spread(times)}
    return out


def render(r: dict[str, Any]) -> list[str]:
    t = []
    for probe in ("all", "file_monitor"):
        x = r[probe]
        lo, hi = x["spread_s"]
        t.append([f"bee-trace run --probe-type {probe}", f"{x['median_s'] * 1e3:.0f}",
                  f"{lo * 1e3:.0f}–{hi * 1e3:.0f}"])
    return [text_table(["launch → probes attached (--ready-file)", "median ms", "range ms"], t,
                       title=f"12. start-up time ({r['trials']} trials each, unpinned, includes "
                             "Python start-up and imports)")]
