"""What every row shares: the compiled load generator, scratch paths, the contamination guard
for timing trials and one agent run at a paced rate."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import procstat
from .params import Params
from .runner import (
    Agent,
    Bpftrace,
    Unavailable,
    compile_loadgen,
    foreign_syscall_tracers,
    network_programs_built,
    run_loadgen,
)

ALL_PROBES = ["file_monitor", "network_monitor", "memory_monitor"]
FLOOD_COMM = "loadgen"           # the bulk flood's process name (the generator binary)
CRIT_COMM = "loadgen-crit"       # the same binary under another name: the critical generator
LOSS_CAUSES = ("ring_full", "shed", "spill_full", "first_lost", "read_fault")


def loss_by_cause(summary: dict[str, Any]) -> dict[str, int]:
    """Records the kernel or the reader wanted to deliver and could not, by cause (sampled,
    rate-limited, aggregated, folded and spilled are not losses: they are counted or delivered
    later), plus sequence gaps nobody counted."""
    causes = summary.get("dropped") or {}
    out = {c: int(causes.get(c, 0)) for c in LOSS_CAUSES if causes.get(c)}
    if summary.get("uncounted_gaps"):
        out["uncounted_gaps"] = int(summary["uncounted_gaps"])
    return out


class Bench:
    def __init__(self, params: Params, tmp: Path, log: Callable[[str], None]) -> None:
        self.p = params
        self.tmp = tmp
        self.log = log
        self.loadgen = compile_loadgen(tmp)
        self.secret_dir = tmp / "secrets"
        self.secret_dir.mkdir()
        self.match_path = self.secret_dir / "bench.pem"      # matches **/*.pem
        self.match_path.write_text("not a real key\n")
        self.nonmatch_path = self._nonmatching_path()
        self.net_built = network_programs_built()
        self.own_pids: set[int] = set()
        self.wait_left = params.clean_budget

    def _nonmatching_path(self) -> str:
        from ..config import default_config
        from ..patterns import build_filter, is_candidate
        from .agent import generated_patterns
        files = default_config().files
        filters = [build_filter(list(files.watch_read) + list(files.watch_write)),
                   build_filter(generated_patterns(1000) + ["**/*.pem"])]
        for cand in ("/etc/hostname", str(self.tmp / "bench-plain.txt")):
            if not Path(cand).exists():
                try:
                    Path(cand).write_text("x\n")
                except OSError:
                    continue
            if not any(is_candidate(f, cand.encode()) for f in filters):
                return cand
        raise Unavailable("no non-matching path found for the openat row")

    def guarded(self, fn: Callable[[], float]) -> dict[str, Any]:
        """Timing trials that skip moments when another process has BPF programs on syscall
        tracepoints (other bee-trace runs, tests, tracers on this shared machine): wait for them
        to go (bounded), and mark any trial that still overlapped one as contaminated."""
        values, clean, seen = [], [], set()
        for _ in range(self.p.trials):
            before = foreign_syscall_tracers(self.own_pids)
            deadline = time.monotonic() + min(self.p.clean_wait, max(self.wait_left, 0))
            while before and time.monotonic() < deadline:
                time.sleep(0.25)
                before = foreign_syscall_tracers(self.own_pids)
            self.wait_left -= self.p.clean_wait - max(0.0, deadline - time.monotonic())
            v = fn()
            after = foreign_syscall_tracers(self.own_pids)
            values.append(v)
            clean.append(not before and not after)
            seen.update(before + after)
        good = [v for v, c in zip(values, clean) if c]
        use = good if len(good) >= 3 else values
        return {"trials": values, "clean": clean, "used": use, "contaminated": clean.count(False),
                "foreign": sorted(seen)[:10]}

    def op_trials(self, mode: str, target: Any, ops: int) -> dict[str, Any]:
        """Trials of `loadgen MODE TARGET OPS`, each giving CPU ns per operation."""
        return self.guarded(lambda: run_loadgen(self.loadgen, mode, target, ops)["ns_per_op"])

    def open_trials(self, path: str | None = None) -> dict[str, Any]:
        return self.op_trials("open", path or self.nonmatch_path, self.p.ops)

    def connect_trials(self, port: int) -> dict[str, Any]:
        return self.op_trials("connect", port, self.p.connect_ops)

    def own(self, ctx: Any) -> None:
        """The processes whose tracers a trial may overlap: the one under test."""
        self.own_pids = set()
        if isinstance(ctx, Agent):
            self.own_pids.add(ctx.pid)
        elif isinstance(ctx, Bpftrace) and ctx.proc is not None:
            self.own_pids.add(ctx.proc.pid)

    def rate_run(self, rate: int, seconds: float, spec: dict[str, Any],
                 mode: str = "rate", target: str | None = None,
                 loadgen_args: tuple[Any, ...] | None = None) -> dict[str, Any]:
        """One agent run while the generator offers `rate` ev/s for `seconds` (by default
        `loadgen MODE TARGET RATE SECONDS`, or `loadgen *loadgen_args`)."""
        args = loadgen_args or (mode, target or str(self.match_path), rate, seconds)
        with Agent(spec) as agent:
            s0 = procstat.sample(agent.pid)
            gen = run_loadgen(self.loadgen, *args, timeout=seconds * 10 + 60)
            s1 = procstat.sample(agent.pid)
            mem = procstat.memory(agent.pid)
            time.sleep(0.2)
            res = agent.stop()
        summ = res.get("summary", {})
        causes = summ.get("dropped") or {}
        # Loss = records the kernel wanted to deliver and could not (ring full, shed, gaps);
        # sampled / rate-limited / aggregated are policy decisions, reported apart.
        dropped = causes.get("ring_full", 0) + causes.get("shed", 0) + summ.get("uncounted_gaps", 0)
        policy = sum(v for k, v in causes.items() if k not in ("ring_full", "shed"))
        attempted = sum(l["attempted"] for l in (summ.get("lanes") or {}).values())
        by_comm = res.get("by_comm", {})
        comm = self.loadgen.name        # the generator's process name
        return {
            "target_rate": rate,
            "generated": int(gen["ops"]),
            "achieved_rate": gen["ops"] / gen["seconds"],
            # Events (sum of `count`: a fold summary stands for `count` opens) of the generator.
            "delivered": by_comm.get(comm, 0),
            "records": res.get("records_by_comm", {}).get(comm, 0),
            "received": summ.get("received", 0),
            "dropped": dropped,
            "dropped_by_cause": causes,
            "policy_drops": policy,
            "foreign_events": res.get("delivered", 0) - by_comm.get(comm, 0),
            "by_comm": by_comm,
            "by_comm_kind": res.get("by_comm_kind", {}),
            "records_by_comm_kind": res.get("records_by_comm_kind", {}),
            "by_origin": res.get("by_origin", {}),
            "records_by_origin": res.get("records_by_origin", {}),
            "attempted": attempted,
            "loss_percent": 100.0 * dropped / attempted if attempted else 0.0,
            "verdict": summ.get("verdict"),
            "summary": summ,
            "agent": {**procstat.rates(s0, s1), **mem},
            "latency": res.get("latency", {}),
            "bulk_share": res.get("bulk_share", {}),
        }
