"""Row 8c: CPU instructions per distinct event through the userspace pipeline (no kernel),
counted by cachegrind (bench/instructions.py): steady where wall time is not."""

from __future__ import annotations

from typing import Any

from ..harness import Bench
from ..runner import Unavailable
from ..stats import fmt_num, text_table

LABELS = {"files": "distinct watched-file opens (critical lane)",
          "connects": "distinct loopback connects (bulk lane)"}


def measure(b: Bench) -> dict[str, Any]:
    # Imported here: `python -m bee_trace.bench.instructions` (the program counted) imports
    # this package first, and runpy warns about a module imported before it runs.
    from .. import instructions
    try:
        instructions.valgrind_path()
        out: dict[str, Any] = {"sizes": list(instructions.SIZES)}
        for kind in instructions.KINDS:
            b.log(f"instructions: {kind}, {' and '.join(map(str, instructions.SIZES))} events "
                  "under cachegrind")
            out[kind] = instructions.per_event(kind)
    except Unavailable as e:
        return {"unavailable": str(e)}
    return out


def _notes(runs: list[dict[str, int]]) -> str:
    if all(r["output"] == r["events"] and not r["rejected"] for r in runs):
        return "every event output, none rejected"
    return "; ".join(f"{r['events']}: output {r['output']}, rejected {r['rejected']}" for r in runs)


def render(r: dict[str, Any]) -> list[str]:
    small, large = r["sizes"]
    t = [[LABELS[kind], fmt_num(x["per_event"]), f"{small:,}, {large:,}", _notes(x["runs"])]
         for kind, x in r.items() if kind in LABELS]
    return [text_table(["kind", "instructions per event", "events measured (N small, N large)",
                        "notes"], t,
                       title="8c. instructions per distinct event through the userspace pipeline "
                             "(cachegrind I refs: difference of the two runs / difference of N)")]
