"""The bench results as Markdown-compatible text (one block per row) and an optional chart."""

from __future__ import annotations

from typing import Any

from ..escape import markdown as md
from .rows import ROWS


def render(results: dict[str, Any]) -> str:
    meta = results["meta"]
    parts = [f"bee-trace bench — {md(meta['host'])} — kernel {md(meta['kernel'])} — {meta['cpus']} CPUs "
             f"— {'quick' if meta['quick'] else 'full'} run, {meta['seconds']:.0f} s"]
    for name, r in results["rows"].items():
        row = ROWS.get(name)
        if row is None:
            continue
        if "error" in r or "unavailable" in r:
            # A row that could not run says why, in place of its table.
            parts.append(f"### {name}\n\n{md(r.get('error') or r['unavailable'])}")
            continue
        parts.extend(row.render(r))
    return "\n\n".join(parts)


def write_png(results: dict[str, Any], path: str) -> str:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib not importable: no chart written"
    row = results["rows"].get("throughput") or {}
    tp = row.get("connect") if "rates" in (row.get("connect") or {}) else row.get("file")
    if not tp or "rates" not in tp:
        return "no throughput row: no chart written"
    xs = [r["achieved_rate"] for r in tp["rates"]]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(xs, [r["delivered_per_s"] for r in tp["rates"]], marker="o", label="delivered ev/s")
    ax2 = ax.twinx()
    ax2.plot(xs, [r["loss_percent"] for r in tp["rates"]], marker="x", color="red", label="loss %")
    ax.set_xlabel("generated ev/s")
    ax.set_ylabel("delivered ev/s")
    ax2.set_ylabel("loss %")
    fig.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path)
    return f"chart written to {path}"
