"""Row 11: a CI job on this machine — compile a generated C project with make -j2,
byte-compile a copy of part of the standard library, tar/untar and grep it, git init/add/commit
it — alternated with and without `bee-trace run --probe-type all` (default policy, unpinned, as
in a real job), in ABBA order so drift cancels; median slowdown and its spread. Wall time on a
shared VM moves by tens of percent between runs of the same job, so CPU time is measured too:
the job's (user + system of its processes, which includes the probes that run inside its
syscalls) and, with the agent, the agent's own."""

from __future__ import annotations

import os
import resource
import shutil
import sys
import sysconfig
import time
from pathlib import Path
from typing import Any

from .. import procstat
from ..harness import Bench
from ..runner import CliAgent, run_all_cpus
from ..stats import median, spread, text_table

STDLIB_PARTS = ("email", "json", "http", "xml", "asyncio", "unittest", "logging", "concurrent",
                "urllib", "importlib")
GIT_ENV = {"GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.invalid",
           "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@example.invalid",
           "GIT_CONFIG_NOSYSTEM": "1", "HOME": "/nonexistent"}


def c_source(i: int, functions: int = 40) -> str:
    """One generated translation unit: enough arithmetic that -O2 has work to do."""
    body = []
    for f in range(functions):
        body.append(f"int f{i}_{f}(int x) {{\n  int s = 0;\n  for (int k = 0; k < x; k++)\n"
                    f"    s += (k * {f + 3}) ^ (s >> {f % 7 + 1});\n  return s + {i};\n}}\n")
    return "".join(body) + f"int unit{i}(int x) {{ return f{i}_0(x) + f{i}_{functions - 1}(x); }}\n"


def prepare(root: Path, sources: int) -> None:
    proj = root / "proj"
    proj.mkdir(parents=True)
    for i in range(sources):
        (proj / f"u{i}.c").write_text(c_source(i))
    calls = " + ".join(f"unit{i}(argc)" for i in range(sources))
    decls = "".join(f"int unit{i}(int);\n" for i in range(sources))
    (proj / "main.c").write_text(f"{decls}int main(int argc, char **argv) {{ (void)argv; "
                                 f"return ({calls}) & 1; }}\n")
    objs = " ".join(f"u{i}.o" for i in range(sources)) + " main.o"
    (proj / "Makefile").write_text(f"app: {objs}\n\tcc -o $@ $^\n%.o: %.c\n\tcc -O2 -c -o $@ $<\n"
                                   f"clean:\n\trm -f app *.o\n")
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    for part in STDLIB_PARTS:
        if (stdlib / part).is_dir():
            shutil.copytree(stdlib / part, root / "pytree" / part,
                            ignore=shutil.ignore_patterns("__pycache__", "test", "tests"))


def _children_cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def job(root: Path) -> tuple[float, float]:
    """One run of the job: (wall seconds, CPU seconds of its processes)."""
    env = {**os.environ, **GIT_ENV}
    for d in ("unpack", "repo"):
        shutil.rmtree(root / d, ignore_errors=True)
    cpu0 = _children_cpu_s()
    t0 = time.monotonic()
    run_all_cpus(["make", "-s", "clean"], root / "proj")
    run_all_cpus(["make", "-s", "-j2"], root / "proj")
    run_all_cpus([sys.executable, "-m", "compileall", "-q", "-f", "pytree"], root)
    run_all_cpus(["tar", "cf", "tree.tar", "proj", "pytree"], root)
    (root / "unpack").mkdir()
    run_all_cpus(["tar", "xf", "../tree.tar"], root / "unpack")
    run_all_cpus(["grep", "-rc", "import", "."], root / "unpack")
    run_all_cpus(["git", "init", "-q", str(root / "repo")], root)
    run_all_cpus(["cp", "-r", "unpack/.", "repo/"], root)
    run_all_cpus(["git", "add", "-A"], root / "repo", env)
    run_all_cpus(["git", "commit", "-qm", "bench"], root / "repo", env)
    return time.monotonic() - t0, _children_cpu_s() - cpu0


def pair_slowdowns(without: list[float], with_agent: list[float]) -> list[float]:
    """Per round: 100 × (with / without − 1)."""
    return [100.0 * (w / o - 1.0) for o, w in zip(without, with_agent) if o > 0]


def measure(b: Bench) -> dict[str, Any]:
    root = b.tmp / "ci"
    prepare(root, b.p.ci_sources)
    job(root)                                   # warm the page cache and ccache-free compiler
    without: list[float] = []
    with_agent: list[float] = []
    cpu_without: list[float] = []
    cpu_with: list[float] = []
    agent_cpu: list[float] = []
    events: list[int] = []
    verdicts: list[str] = []
    for i in range(b.p.ci_rounds):
        order = (False, True) if i % 2 == 0 else (True, False)
        for on in order:
            b.log(f"ci: round {i + 1}/{b.p.ci_rounds}, agent {'on' if on else 'off'}")
            if not on:
                wall, cpu = job(root)
                without.append(wall)
                cpu_without.append(cpu)
                continue
            with CliAgent(b.tmp, "all", "ci") as agent:
                before = procstat.sample(agent.pid)
                wall, cpu = job(root)
                after = procstat.sample(agent.pid)
                out = agent.stop()
            with_agent.append(wall)
            cpu_with.append(cpu)
            agent_cpu.append((after.cpu_ticks - before.cpu_ticks) / procstat.CLK_TCK)
            events.append(sum(1 for e in out if e.get("kind") != "summary"))
            verdicts.append(str(out[-1].get("verdict")) if out else "no output")
    slow = pair_slowdowns(without, with_agent)
    cpu_slow = pair_slowdowns(cpu_without, cpu_with)
    total_slow = pair_slowdowns(cpu_without, [c + a for c, a in zip(cpu_with, agent_cpu)])
    return {"rounds": b.p.ci_rounds, "sources": b.p.ci_sources, "stdlib_parts": list(STDLIB_PARTS),
            "without_s": without, "with_s": with_agent,
            "median_without_s": median(without), "median_with_s": median(with_agent),
            "slowdown_percent": slow, "median_slowdown_percent": median(slow),
            "slowdown_spread": spread(slow),
            "cpu_without_s": cpu_without, "cpu_with_s": cpu_with, "agent_cpu_s": agent_cpu,
            "cpu_slowdown_percent": cpu_slow, "median_cpu_slowdown_percent": median(cpu_slow),
            "cpu_slowdown_spread": spread(cpu_slow),
            "total_cpu_percent": total_slow, "median_total_cpu_percent": median(total_slow),
            "total_cpu_spread": spread(total_slow),
            "events_per_run": events, "verdicts": verdicts}


def render(r: dict[str, Any]) -> list[str]:
    lo, hi = r["slowdown_spread"] or (0.0, 0.0)
    w0, w1 = spread(r["without_s"]) or (0.0, 0.0), spread(r["with_s"]) or (0.0, 0.0)
    rows = [["without agent", f"{r['median_without_s']:.2f}", f"{w0[0]:.2f}–{w0[1]:.2f}", ""],
            ["with bee-trace run --probe-type all", f"{r['median_with_s']:.2f}",
             f"{w1[0]:.2f}–{w1[1]:.2f}",
             f"{median(r['events_per_run']) or 0:.0f} events per run (median), verdicts "
             f"{', '.join(sorted(set(r['verdicts'])))}"],
            ["slowdown per round (median)", f"{r['median_slowdown_percent']:+.2f}%",
             f"{lo:+.2f}% … {hi:+.2f}%", f"{r['rounds']} ABBA rounds, wall time"]]
    if r.get("cpu_without_s"):   # runs before CPU time was measured have wall time only
        c0, c1 = spread(r["cpu_without_s"]) or (0.0, 0.0), spread(r["cpu_with_s"]) or (0.0, 0.0)
        clo, chi = r["cpu_slowdown_spread"] or (0.0, 0.0)
        tlo, thi = r["total_cpu_spread"] or (0.0, 0.0)
        rows += [["job CPU s without agent", f"{median(r['cpu_without_s']):.2f}", f"{c0[0]:.2f}–{c0[1]:.2f}",
                  "user + system of the job's processes"],
                 ["job CPU s with agent", f"{median(r['cpu_with_s']):.2f}", f"{c1[0]:.2f}–{c1[1]:.2f}",
                  "includes the probes run inside its syscalls"],
                 ["job CPU increase per round (median)", f"{r['median_cpu_slowdown_percent']:+.2f}%",
                  f"{clo:+.2f}% … {chi:+.2f}%", ""],
                 ["job + agent CPU over job CPU alone (median)", f"{r['median_total_cpu_percent']:+.2f}%",
                  f"{tlo:+.2f}% … {thi:+.2f}%",
                  f"agent {median(r['agent_cpu_s']) or 0:.2f} s CPU per job (median)"]]
    return [text_table(
        ["CI job", "median", "range", "notes"], rows,
        title=f"11. CI workload: make -j2 of {r['sources']} generated C files, compileall of "
              f"{len(r['stdlib_parts'])} stdlib packages, tar/untar + grep, git init/add/commit")]
