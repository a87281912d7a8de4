"""Row 2: the cost of each attached probe family per monitored syscall, all probes on, default
policy: added CPU ns per call of a syscall that family watches (nothing in it matches the
policy, so this is the price every job pays), measured with baselines before and after."""

from __future__ import annotations

from typing import Any

from ...escape import markdown as md
from ..harness import ALL_PROBES, Bench
from ..runner import Agent, Unavailable, closed_port
from ..stats import fmt_num, median, spread, text_table


def _cases(b: Bench) -> list[tuple[str, str, str, Any, int]]:
    """(probe, syscall, loadgen mode, argument, ops per trial)."""
    p = b.p
    out: list[tuple[str, str, str, Any, int]] = [
        ("file: raw_tp/sys_exit (exit-time, resolves the opened file)",
         f"openat+close of {b.nonmatch_path}", "open", b.nonmatch_path, p.ops),
        ("file+compat+links: raw_tp/sys_exit on a syscall it does not watch (one number test)",
         "getppid", "getppid", "-", p.ops * 4),
        ("links: raw_tp/sys_exit (rename*, link*, symlink*)", "rename", "rename", str(b.tmp), p.ops),
        ("memory: tp/syscalls/sys_enter_process_vm_readv", "process_vm_readv of itself", "vmread",
         "-", p.ops),
        ("tamper: tp/signal/signal_generate", "kill(self, blocked SIGUSR1)", "signal", "-", p.ops),
        ("process: sched_process_fork/exec/exit", "fork + exec /bin/true + wait", "spawn",
         "/bin/true", p.spawn_ops),
    ]
    if b.net_built:
        out.insert(2, ("network: cgroup/connect4 + tp/syscalls/sys_enter_socket",
                       "connect to a closed 127.0.0.1 port", "connect", closed_port(), p.connect_ops))
    return out


def measure(b: Bench) -> dict[str, Any]:
    cases = _cases(b)
    b.wait_left = b.p.clean_budget

    def block(tag: str) -> list[dict[str, Any]]:
        out = []
        for _, _, mode, arg, ops in cases:
            b.log(f"probes ({tag}): {mode}")
            out.append(b.op_trials(mode, arg, ops))
        return out

    b.own_pids = set()
    before = block("baseline")
    try:
        with Agent({"patterns": "default", "probes": ALL_PROBES}) as agent:
            b.own(agent)
            attached = [c["name"] for c in agent.coverage if c["state"] == "attached"]
            during = block("agent")
            agent.stop()
    except Unavailable as e:
        return {"unavailable": str(e)}
    b.own_pids = set()
    after = block("baseline")
    rows = []
    for (probe, syscall, mode, _, ops), b0, t, b1 in zip(cases, before, during, after):
        base = median(b0["used"] + b1["used"])
        used = median(t["used"])
        rows.append({"probe": probe, "syscall": syscall, "mode": mode, "ops_per_trial": ops,
                     "baseline_ns": base, "median_ns": used,
                     "added_ns": None if base is None or used is None else used - base,
                     "spread_ns": spread(t["used"]),
                     "contaminated": t["contaminated"] + b0["contaminated"] + b1["contaminated"],
                     "trials_ns": t["trials"], "baseline_trials_ns": b0["trials"] + b1["trials"]})
    return {"trials": b.p.trials, "programs_attached": attached, "cases": rows}


def render(r: dict[str, Any]) -> list[str]:
    t = []
    for c in r["cases"]:
        lo_hi = "–".join(f"{x:.0f}" for x in c["spread_ns"]) if c["spread_ns"] else ""
        note = f"{c['contaminated']} trials overlapped other tracers" if c["contaminated"] else ""
        t.append([c["probe"], md(c["syscall"]), fmt_num(c["baseline_ns"]), fmt_num(c["median_ns"]),
                  "—" if c["added_ns"] is None else f"{c['added_ns']:+.0f}", lo_hi, note])
    return [text_table(
        ["probe family", "syscall", "baseline ns", "with agent ns", "added ns (median)",
         "trial range", "notes"], t,
        title=f"2. cost per monitored syscall of each probe family (all probes, default policy, "
              f"{r['trials']} trials per side, loadgen CPU time per call; fork+exec counts the "
              f"children's CPU)")]
