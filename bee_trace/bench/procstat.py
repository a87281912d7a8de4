"""Per-process resource readings from /proc (no psutil): CPU time, RSS/USS, context switches."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

CLK_TCK = os.sysconf("SC_CLK_TCK")


def parse_stat_cpu_ticks(stat_text: str) -> int:
    """utime + stime (clock ticks) from the text of /proc/PID/stat. The comm field may hold
    spaces and parentheses, so split after the last ')'."""
    rest = stat_text[stat_text.rindex(")") + 2:].split()
    # rest[0] is field 3 (state); utime and stime are fields 14 and 15.
    return int(rest[11]) + int(rest[12])


def parse_kv_kb(text: str) -> dict[str, int]:
    """`Key:   123 kB` lines (status, smaps_rollup) -> {key: value}; kB values stay in kB and
    plain counters (e.g. voluntary_ctxt_switches) are returned as they are."""
    out: dict[str, int] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            continue
        parts = value.split()
        if parts and parts[0].isdigit():
            out[key.strip()] = int(parts[0])
    return out


@dataclass
class Sample:
    t: float            # monotonic seconds
    cpu_ticks: int
    ctxt: int           # voluntary + involuntary context switches


def sample(pid: int) -> Sample:
    with open(f"/proc/{pid}/stat") as f:
        ticks = parse_stat_cpu_ticks(f.read())
    with open(f"/proc/{pid}/status") as f:
        st = parse_kv_kb(f.read())
    return Sample(time.monotonic(), ticks,
                  st.get("voluntary_ctxt_switches", 0) + st.get("nonvoluntary_ctxt_switches", 0))


def rates(a: Sample, b: Sample) -> dict[str, float]:
    """CPU % of one core and context switches per second between two samples."""
    dt = max(b.t - a.t, 1e-9)
    return {
        "cpu_percent": 100.0 * (b.cpu_ticks - a.cpu_ticks) / CLK_TCK / dt,
        "ctxt_per_s": (b.ctxt - a.ctxt) / dt,
        "seconds": dt,
    }


def memory(pid: int) -> dict[str, float]:
    """RSS and USS (Private_Clean + Private_Dirty) in MiB."""
    with open(f"/proc/{pid}/smaps_rollup") as f:
        kv = parse_kv_kb(f.read())
    return {
        "rss_mib": kv.get("Rss", 0) / 1024,
        "uss_mib": (kv.get("Private_Clean", 0) + kv.get("Private_Dirty", 0)) / 1024,
        "pss_mib": kv.get("Pss", 0) / 1024,
    }


def system_cpu() -> tuple[float, float]:
    """(busy, total) jiffies over all CPUs from /proc/stat."""
    with open("/proc/stat") as f:
        vals = [int(x) for x in f.readline().split()[1:]]
    idle = vals[3] + (vals[4] if len(vals) > 4 else 0)
    total = sum(vals[:8])
    return total - idle, total


def system_busy_percent(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Busy share of all CPUs between two system_cpu() readings (100 = every CPU busy)."""
    dt = b[1] - a[1]
    return 100.0 * (b[0] - a[0]) / dt if dt > 0 else 0.0
