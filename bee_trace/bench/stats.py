"""Pure helpers: statistics over trials, number formatting and the text table."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any


def median(values: Iterable[float]) -> float | None:
    v = sorted(x for x in values if x is not None and not math.isnan(x))
    if not v:
        return None
    n = len(v)
    mid = n // 2
    return v[mid] if n % 2 else (v[mid - 1] + v[mid]) / 2


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolated percentile (q in 0..100), as numpy's default."""
    v = sorted(values)
    if not v:
        return None
    if len(v) == 1:
        return float(v[0])
    pos = (len(v) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (pos - lo)


def spread(values: Iterable[float]) -> tuple[float, float] | None:
    """(min, max) of the trials, shown next to a median so noise is visible."""
    v = [x for x in values if x is not None]
    return (min(v), max(v)) if v else None


def ratio(a: float | None, b: float | None) -> float | None:
    """a / b, None when either is missing or b is not positive."""
    if a is None or b is None or b <= 0:
        return None
    return a / b


def fmt_num(x: Any, unit: str = "", digits: int = 0) -> str:
    if x is None:
        return "—"
    if isinstance(x, str):
        return x
    if isinstance(x, float) and math.isnan(x):
        return "—"
    if abs(x) >= 10_000 and digits == 0:
        s = f"{x:,.0f}"
    else:
        s = f"{x:.{digits}f}"
    return f"{s} {unit}".rstrip() if unit else s


def fmt_ratio(x: float | None) -> str:
    return "—" if x is None else f"{x:.2f}×"


def fmt_rate(x: float | None) -> str:
    """Events/s compactly: 950, 12.3k, 1.25M."""
    if x is None:
        return "—"
    if x >= 1e6:
        return f"{x / 1e6:.2f}M"
    if x >= 1e5:
        return f"{x / 1e3:.0f}k"
    if x >= 1e3:
        return f"{x / 1e3:.1f}k"
    return f"{x:.0f}"


def text_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], title: str = "") -> str:
    """A plain, aligned table (numbers right-aligned, text left-aligned), Markdown-compatible."""
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    ncols = max(len(r) for r in cells)
    for r in cells:
        r.extend([""] * (ncols - len(r)))
    widths = [max(len(r[i]) for r in cells) for i in range(ncols)]

    def numeric(s: str) -> bool:
        t = s.replace(",", "").replace("×", "").replace("%", "").replace("+", "").replace("−", "-")
        t = t.split(" ")[0]
        try:
            float(t.rstrip("kM"))
            return True
        except ValueError:
            return False

    def line(r: list[str]) -> str:
        out = []
        for i, c in enumerate(r):
            out.append(c.rjust(widths[i]) if numeric(c) else c.ljust(widths[i]))
        return "| " + " | ".join(out) + " |"

    lines = []
    if title:
        lines.append(f"### {title}")
        lines.append("")
    lines.append(line(cells[0]))
    lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    lines.extend(line(r) for r in cells[1:])
    return "\n".join(lines)


def yes(ok: bool) -> str:
    return "yes" if ok else "NO"


def loss_notes(x: dict[str, Any]) -> str:
    """The notes cell of a rate run: lost, policy drops, other processes' events."""
    out = [f"lost {x.get('dropped', 0)}"]
    if x.get("policy_drops"):
        out.append(f"policy drops {x['policy_drops']}")
    if x.get("foreign_events"):
        out.append(f"{x['foreign_events']} events from other processes")
    return ", ".join(out)


def slope_per_minute(ts: Sequence[float], ys: Sequence[float]) -> float | None:
    """Least-squares slope of ys over ts (seconds), per minute; None under two distinct times."""
    n = len(ts)
    if n < 2 or n != len(ys):
        return None
    mt, my = sum(ts) / n, sum(ys) / n
    var = sum((t - mt) ** 2 for t in ts)
    if var == 0:
        return None
    return 60.0 * sum((t - mt) * (y - my) for t, y in zip(ts, ys)) / var
