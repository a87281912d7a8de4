"""`bee-trace bench`: a reproducible benchmark of the agent on this machine (not a test).

One run measures every row (rows/, one module each: openat, probes, connect, throughput,
distinct, latency, resources, decode, instructions, flood, floods, ci, startup; soak only with
--soak) with medians over repeated trials, prints the tables (render.py) and writes the raw
results as JSON.
The load generator (loadgen.c) is compiled with `cc -O2` into a temp dir and pinned to CPU 1;
the agent runs as its own process pinned to CPU 0 (the driver too)."""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .harness import Bench
from .params import Params
from .render import render, write_png
from .rows import ALIASES, DEFAULT_ROWS, ROWS
from .runner import Unavailable, pin_self


def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="bee-trace bench", description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer/shorter trials (< 2 minutes)")
    ap.add_argument("--json", default="bench.json", metavar="PATH", help="results (default bench.json)")
    ap.add_argument("--png", metavar="PATH", help="throughput chart (needs matplotlib)")
    ap.add_argument("--rows", default=",".join(DEFAULT_ROWS),
                    help=f"comma-separated subset of {','.join(ROWS)} (default: all but soak; "
                         "decode also measures wake-ups)")
    ap.add_argument("--soak", action="store_true", help="also run the soak row (long: see --soak-seconds)")
    ap.add_argument("--soak-seconds", type=float, default=600.0, metavar="S",
                    help="length of the soak row (default 600)")
    args = ap.parse_args(argv)
    if args.soak_seconds <= 0:
        ap.error("--soak-seconds must be positive")
    rows = [ALIASES.get(r.strip(), r.strip()) for r in args.rows.split(",") if r.strip()]
    bad = [r for r in rows if r not in ROWS]
    if bad:
        ap.error(f"unknown row(s) {', '.join(bad)}; choose from {', '.join(ROWS)}")
    args.rows = list(dict.fromkeys(rows + (["soak"] if args.soak else [])))
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if os.geteuid() != 0:
        print("bee-trace bench must run as root (it loads BPF programs)", file=sys.stderr)
        return 2
    from ..kernel import SetupError, preflight
    try:
        preflight()
    except SetupError as e:
        print(f"bee-trace bench: {e}", file=sys.stderr)
        return 2
    if (os.cpu_count() or 1) < 2:
        print("bee-trace bench: note: 1 CPU, agent and load share it", file=sys.stderr)
    pin_self()
    t0 = time.monotonic()

    def log(msg: str) -> None:
        print(f"[{time.monotonic() - t0:6.1f}s] {msg}", file=sys.stderr, flush=True)

    results: dict[str, Any] = {"meta": {
        "host": platform.node(), "kernel": platform.release(), "cpus": os.cpu_count(),
        "python": platform.python_version(), "quick": args.quick, "rows": args.rows,
        "command": "bee-trace bench " + " ".join(argv),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }, "rows": {}}
    with tempfile.TemporaryDirectory(prefix="bee-bench-") as tmp:
        try:
            bench = Bench(Params(args.quick, args.soak_seconds), Path(tmp), log)
        except Unavailable as e:
            print(f"bee-trace bench: {e}", file=sys.stderr)
            return 2
        results["meta"]["network_monitor_built"] = bench.net_built
        for row in args.rows:
            try:
                results["rows"][row] = ROWS[row].measure(bench)
            except Exception as e:  # one broken row must not lose the others
                log(f"{row}: error: {type(e).__name__}: {e}")
                results["rows"][row] = {"error": f"{type(e).__name__}: {e}"}
    results["meta"]["seconds"] = time.monotonic() - t0
    text = render(results)
    print(text)
    with open(args.json, "w") as f:
        json.dump(results, f, indent=2, default=str)
    print(f"\nresults written to {args.json}")
    if args.png:
        print(write_png(results, args.png))
    return 0
