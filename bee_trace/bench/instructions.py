"""CPU instructions per distinct event through the userspace pipeline (decode, confirm, classify,
the output chain of `bee-trace run --format jsonl` to /dev/null), counted by valgrind's
cachegrind: wall time on a shared VM moves by more than the 10 % this has to show, the count of
instructions of a run does not. Two sizes are run and the difference of their counts divided by
the difference of sizes, so interpreter start-up, imports and set-up cancel.

`python -m bee_trace.bench.instructions KIND N [BUILT]` is the program counted: N distinct
synthetic records of KIND (files, connects) through Pipeline.handle_batch, no kernel. Both runs
build BUILT records, so building them cancels too."""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np

from .. import records as R
from ..pipeline import TEMPLATE_CACHE, Pipeline, PipelineOptions, settle_gc
from ..report import Report
from ..ringbuf import Batch
from ..sinks.chain import build_chain
from .agent import build_config
from .decodebench import records, set_paths
from .runner import Unavailable, parse_kv

BATCH = 256                                # records per handle_batch, as a ring read hands them over
WATCHED = "/dev/shm/bee-bench/x%d.pem"     # matches **/*.pem; only named, never opened
DEV = 0x1A                                 # any device: with the inode number, one watched file
# The template cache starts over when full: from one multiple of its size to the next, every
# run has refilled (and freed) it the same number of times per event, as in a long run.
SIZES = (TEMPLATE_CACHE, 2 * TEMPLATE_CACHE)


def file_batch(base: int, n: int, pid: int) -> np.ndarray:
    """Opens of n distinct watched files (distinct paths and inodes), numbered from base."""
    a = records(n, R.EV_FILE, R.LANE_CRITICAL, pid, comm=b"loadgen")
    set_paths(a, [(WATCHED % k).encode() for k in range(base, base + n)])
    f = a["u"]["file"]
    f["ino"] = np.arange(base, base + n) + 1
    f["dev"] = DEV
    f["gen"] = 1
    return a


def connect_batch(base: int, n: int, pid: int) -> np.ndarray:
    """TCP connects to n distinct loopback destinations 127.x.y.z:9, numbered from base."""
    a = records(n, R.EV_NET, R.LANE_BULK, pid, comm=b"loadgen")
    a["h"]["flags"] = R.EVF_LOOPBACK          # the kernel's mark for 127/8
    net = a["u"]["net"]
    net["family"] = 2                         # AF_INET
    net["dport"] = 9
    net["protocol"] = 6                       # TCP
    net["hook"] = 1                           # R.NET_HOOKS: connect
    k = np.arange(base, base + n) + 1         # from 127.0.0.1
    addr = np.zeros((n, 16), dtype=np.uint8)
    addr[:, 0] = 127
    addr[:, 1], addr[:, 2], addr[:, 3] = (k >> 16) & 255, (k >> 8) & 255, k & 255
    net["daddr"] = addr.view("V16").reshape(n)
    return a


BUILDERS: dict[str, Callable[[int, int, int], np.ndarray]] = {
    "files": file_batch, "connects": connect_batch}
KINDS = tuple(BUILDERS)


def push(kind: str, n: int, out: IO[str], built: int = 0) -> Pipeline:
    """n distinct events of `kind` through the pipeline and the output chain `bee-trace run`
    builds (JSON Lines to `out`, the report, verbose), in batches of BATCH; returns the pipeline
    (its stats count what was output). Records up to `built` are built too and not handled: two
    runs given the same `built` spend the same on building, so it cancels in their difference."""
    cfg = build_config({"report_loopback": True, "unlimited": True})
    chain = build_chain(cfg, "jsonl", out, out, Report(cfg, {}), verbose=True, live_table=False)
    pl = Pipeline(PipelineOptions(probes={"file_monitor", "network_monitor"}, config=cfg), chain.sinks)
    build, pid = BUILDERS[kind], os.getpid()
    batches = [Batch.of(build(base, min(BATCH, n - base), pid)) for base in range(0, n, BATCH)]
    unused = [Batch.of(build(base, min(BATCH, built - base), pid)) for base in range(n, built, BATCH)]
    settle_gc()                               # as `bee-trace run` does once probes are attached
    for batch in batches:
        pl.handle_batch(batch)
        pl.flush()
    chain.close()
    del unused                                # freed here in every run, whatever n
    return pl


def main(argv: Sequence[str] | None = None, out: IO[str] | None = None) -> int:
    """`KIND N [BUILT]`: prints `events=N output=… rejected=…`; the JSON Lines go to `out`
    (default /dev/null)."""
    ap = argparse.ArgumentParser(prog="python -m bee_trace.bench.instructions",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("kind", choices=KINDS)
    ap.add_argument("n", type=int, help="events handled")
    ap.add_argument("built", type=int, nargs="?", default=0, help="records built (default N)")
    args = ap.parse_args(argv)
    stream = out or open(os.devnull, "w", encoding="utf-8")   # as `bee-trace run --output` opens it
    try:
        pl = push(args.kind, args.n, stream, args.built)
    finally:
        if out is None:
            stream.close()
    print(f"events={args.n} output={pl.stats.output} rejected={sum(pl.stats.rejected.values())}")
    return 0


_IREFS = re.compile(r"I\s+refs:\s+([\d,]+)")


def valgrind_path(valgrind: str = "valgrind") -> str:
    exe = shutil.which(valgrind)
    if not exe:
        raise Unavailable(f"{valgrind} not installed (apt-get install -y valgrind)")
    return exe


def count(kind: str, n: int, built: int, valgrind: str = "valgrind") -> dict[str, int]:
    """One run of main under cachegrind: the instructions of the whole process (`irefs`) and
    the counts it printed."""
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root) + os.pathsep + os.environ.get("PYTHONPATH", ""),
           # A fixed hash seed: dict probing, and so the count, is the same from run to run.
           "PYTHONHASHSEED": "0",
           # BLAS worker threads spin while idle, and cachegrind counts every thread.
           "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    rc = subprocess.run([valgrind_path(valgrind), "--tool=cachegrind", "--cache-sim=no",
                         "--cachegrind-out-file=/dev/null", sys.executable, "-m",
                         "bee_trace.bench.instructions", kind, str(n), str(built)],
                        capture_output=True, text=True, env=env, timeout=900)
    m = _IREFS.search(rc.stderr)
    if m is None:
        raise Unavailable(f"valgrind gave no instruction count: {rc.stderr.strip()[-300:]}")
    if rc.returncode != 0:
        raise RuntimeError(f"{kind} {n} under valgrind: exit {rc.returncode}: "
                           f"{rc.stderr.strip()[-500:]}")
    return {**{k: int(v) for k, v in parse_kv(rc.stdout).items()},
            "irefs": int(m.group(1).replace(",", ""))}


def per_event(kind: str, sizes: tuple[int, int] = SIZES, valgrind: str = "valgrind") -> dict[str, Any]:
    """Instructions per event of `kind`: a run at each size (both building records for the
    larger), and the difference of their counts per event."""
    small, large = (count(kind, n, max(sizes), valgrind) for n in sizes)
    return {"runs": [small, large],
            "per_event": (large["irefs"] - small["irefs"]) / (large["events"] - small["events"])}


if __name__ == "__main__":
    sys.exit(main())
