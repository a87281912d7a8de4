"""Row 13 (only with --soak): memory over a long mixed load — short-lived processes (fork/exec
/bin/true), creates of distinct watched files, connects to distinct loopback destinations and
DNS queries for distinct names to a loopback resolver — with the agent's RSS/USS sampled every
second; RSS after warm-up, final, least-squares slope, kernel map occupancy and evictions, and
every userspace cache's size at the end of warm-up and at the end (a cache still filling after
warm-up would show as growth the row must explain)."""

from __future__ import annotations

import os
import socket
import statistics
import struct
import tempfile
import threading
import time
from typing import Any

from .. import procstat
from ..harness import ALL_PROBES, Bench, loss_by_cause
from ..runner import Agent, Loadgen, closed_port
from ..stats import fmt_num, slope_per_minute, text_table
from .distinct import scratch_dir

DNS_PORT = 53
CACHE_EVERY_S = 5.0      # how often the agent reports its userspace caches' sizes
ENDPOINT_WINDOW_S = 10.0  # RSS at warm-up and at the end: the median of this many seconds


class Resolver:
    """A loopback DNS server that answers every A query with 127.0.0.2 (so the agent sees real
    answers to learn names from)."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", DNS_PORT))      # OSError when taken: the row says so
        self.sock.settimeout(0.2)
        self.answered = 0
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.done.is_set():
            try:
                q, addr = self.sock.recvfrom(512)
            except TimeoutError:
                continue
            if len(q) < 17:
                continue
            end = q.index(0, 12) + 5                  # the question: name, type, class
            answer = struct.pack(">HHHHHH", int.from_bytes(q[:2], "big"), 0x8180, 1, 1, 0, 0)
            answer += q[12:end] + struct.pack(">HHHIH4B", 0xC00C, 1, 1, 60, 4, 127, 0, 0, 2)
            self.sock.sendto(answer, addr)
            self.answered += 1

    def close(self) -> None:
        self.done.set()
        self.thread.join(2)
        self.sock.close()


def memory_trend(samples: list[tuple[float, float, float]], warmup: float,
                 window: float = ENDPOINT_WINDOW_S) -> dict[str, Any]:
    """From (t, rss_mib, uss_mib) samples: RSS at the end of warm-up and final RSS (each the
    median of the samples in the `window` seconds after warm-up / before the last sample: one
    sample moves by an allocator's page or two), final minus warm-up, the least-squares slope of
    RSS and USS after warm-up (MiB/min), and the most RSS after warm-up."""
    after = [s for s in samples if s[0] >= warmup]
    if not after:
        return {}
    first = [s for s in after if s[0] < after[0][0] + window]
    last = [s for s in after if s[0] > after[-1][0] - window]

    def med(rows: list[tuple[float, float, float]], i: int) -> float:
        return float(statistics.median(r[i] for r in rows))

    return {"rss_warm_mib": med(first, 1), "rss_final_mib": med(last, 1),
            "rss_growth_mib": med(last, 1) - med(first, 1),
            "uss_warm_mib": med(first, 2), "uss_final_mib": med(last, 2),
            "rss_slope_mib_per_min": slope_per_minute([s[0] for s in after], [s[1] for s in after]),
            "uss_slope_mib_per_min": slope_per_minute([s[0] for s in after], [s[2] for s in after]),
            "rss_max_mib": max(s[1] for s in after)}


def measure(b: Bench) -> dict[str, Any]:
    p = b.p
    secs = p.soak_seconds
    try:
        resolver: Resolver | None = Resolver()
        dns_note = ""
    except OSError as e:
        resolver, dns_note = None, f"DNS skipped: 127.0.0.1:{DNS_PORT} not available ({e.strerror})"
    spec = {"patterns": "default", "probes": ALL_PROBES, "report_loopback": True,
            "sink": os.devnull, "latency_kinds": [], "map_occupancy": True,
            "dns_servers": ["127.0.0.1"], "cache_every_s": CACHE_EVERY_S}
    samples: list[tuple[float, float, float]] = []
    port = closed_port()
    b.log(f"soak: {secs:.0f} s of mixed load")
    try:
        with tempfile.TemporaryDirectory(prefix="bee-soak-", dir=scratch_dir()) as d, \
                Agent(spec) as agent:
            s0 = procstat.sample(agent.pid)
            gens = [Loadgen(b.loadgen, "paced", "distinct", f"{d}:{port}", p.soak_distinct_rate,
                            secs, "sleep"),
                    Loadgen(b.loadgen, "paced", "spawn", "/bin/true", p.soak_spawn_rate, secs, "sleep")]
            if resolver is not None:
                gens.append(Loadgen(b.loadgen, "paced", "dns", DNS_PORT, p.soak_dns_rate, secs, "sleep"))
            t0 = time.monotonic()
            try:
                while time.monotonic() - t0 < secs:
                    m = procstat.memory(agent.pid)
                    samples.append((time.monotonic() - t0, m["rss_mib"], m["uss_mib"]))
                    if len(samples) % 60 == 0:
                        b.log(f"soak: {samples[-1][0]:.0f} s, RSS {m['rss_mib']:.1f} MiB")
                    time.sleep(max(0.0, len(samples) - (time.monotonic() - t0)))
                outs = [g.result(timeout=secs + 120) for g in gens]
            finally:
                for g in gens:
                    g.close()
            s1 = procstat.sample(agent.pid)
            time.sleep(0.5)
            res = agent.stop()
    finally:
        if resolver is not None:
            resolver.close()
    summ = res.get("summary", {})
    egress = summ.get("egress") or {}
    return {"seconds": secs, "warmup_s": p.soak_warmup,
            "load": {"distinct_per_s": p.soak_distinct_rate, "spawn_per_s": p.soak_spawn_rate,
                     "dns_per_s": p.soak_dns_rate if resolver else 0,
                     "generated": [int(o.get("ops", 0)) for o in outs],
                     "dns_answered": resolver.answered if resolver else 0},
            "dns_note": dns_note, "samples": samples,
            **memory_trend(samples, p.soak_warmup),
            "agent": procstat.rates(s0, s1), "maps": res.get("maps", {}),
            "output": summ.get("output"), "lost_by_cause": loss_by_cause(summ),
            "process_cache_evictions": summ.get("process_cache_evictions"),
            "learned_evicted": egress.get("learned_evicted"),
            "caches": cache_trend(res.get("cache_samples") or [], summ.get("caches") or {},
                                  p.soak_warmup),
            "verdict": summ.get("verdict"), "verdict_reasons": summ.get("verdict_reasons") or []}


def cache_trend(samples: list[Any], final: dict[str, dict[str, int]],
                warmup: float) -> dict[str, dict[str, Any]]:
    """Per userspace cache: its bound, entries at the end of warm-up, the most after it, at the
    end, and what left it (evicted by the bound, expired as no longer needed)."""
    warm = next((c for t, c in samples if t >= warmup), None)
    out: dict[str, dict[str, Any]] = {}
    for name, end in final.items():
        after = [c[name]["entries"] for t, c in samples if t >= warmup and name in c]
        out[name] = {"bound": end.get("bound"), "end": end.get("entries"),
                     "warm": warm[name]["entries"] if warm and name in warm else None,
                     "max_after_warmup": max(after) if after else None,
                     "evicted": end.get("evicted", 0), "expired": end.get("expired")}
    return out


def render(r: dict[str, Any]) -> list[str]:
    load = r["load"]

    def mib(k: str) -> str:
        return "—" if r.get(k) is None else f"{r[k]:+.2f}" if "growth" in k or "slope" in k \
            else f"{r[k]:.1f}"

    t = [
        ["load", f"{load['distinct_per_s']:,}/s distinct files + destinations, "
                 f"{load['spawn_per_s']}/s fork+exec, {load['dns_per_s']}/s DNS"
                 + (f" ({r['dns_note']})" if r.get("dns_note") else
                    f" ({fmt_num(load['dns_answered'])} answered)")],
        [f"RSS after warm-up (median of {r['warmup_s']:.0f}–{r['warmup_s'] + ENDPOINT_WINDOW_S:.0f} s), MiB",
         mib("rss_warm_mib")],
        [f"RSS final (median of the last {ENDPOINT_WINDOW_S:.0f} s), MiB", mib("rss_final_mib")],
        ["RSS most after warm-up, MiB", mib("rss_max_mib")],
        ["RSS final − warm-up, MiB", mib("rss_growth_mib")],
        ["RSS slope after warm-up, MiB/min", mib("rss_slope_mib_per_min")],
        ["USS warm-up → final, MiB", f"{mib('uss_warm_mib')} → {mib('uss_final_mib')}"],
        ["USS slope after warm-up, MiB/min", mib("uss_slope_mib_per_min")],
        ["agent CPU", f"{r['agent']['cpu_percent']:.1f}%"],
        ["events output / lost", f"{fmt_num(r['output'])} / "
                                 f"{sum(r['lost_by_cause'].values()):,} {r['lost_by_cause'] or ''}"],
        ["process cache evictions", fmt_num(r["process_cache_evictions"])],
        ["learned-destination evictions (kernel LRU)", fmt_num(r["learned_evicted"])],
        ["verdict", str(r["verdict"]) + (f" ({verdict_text(r)})" if r.get("verdict_reasons") else "")],
    ]
    parts = [text_table(["soak", "value"], t, title=f"13. soak, {r['seconds']:.0f} s of mixed load, "
                                                     "all probes, RSS/USS sampled every second")]
    if r["maps"]:
        parts.append(text_table(
            ["kernel map (at the end)", "type", "entries", "max entries", "full"],
            [[k, v["type"], fmt_num(v["entries"]), fmt_num(v["max_entries"]),
              f"{100 * v['entries'] / max(v['max_entries'], 1):.0f}%"]
             for k, v in sorted(r["maps"].items())], title="13b. kernel map occupancy after the soak"))
    if r.get("caches"):
        def n(v: Any) -> str:
            return "—" if v is None else fmt_num(v)
        parts.append(text_table(
            ["userspace cache", "bound", f"entries at warm-up ({r['warmup_s']:.0f} s)",
             "most after warm-up", "at the end", "evicted (bound)", "expired"],
            [[k, n(v["bound"]), n(v["warm"]), n(v["max_after_warmup"]), n(v["end"]), n(v["evicted"]),
              n(v["expired"])] for k, v in r["caches"].items()],
            title="13c. userspace caches during the soak (sampled every "
                  f"{CACHE_EVERY_S:.0f} s by the agent)"))
    return parts


def verdict_text(r: dict[str, Any]) -> str:
    from ...verdict import reason_text
    return ", ".join(reason_text(x) for x in r["verdict_reasons"])
