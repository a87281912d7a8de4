"""The bench's rows, in report order: each module measures one thing (`measure(bench)` → a
JSON-able dict) and renders it (`render(result)` → Markdown blocks)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..harness import Bench
from . import (
    ci,
    connect,
    decode,
    distinct,
    flood,
    floods,
    instructions,
    latency,
    openat,
    probes,
    resources,
    soak,
    startup,
    throughput,
)


@dataclass(frozen=True)
class Row:
    name: str
    measure: Callable[[Bench], dict[str, Any]]
    render: Callable[[dict[str, Any]], list[str]]
    default: bool = True          # part of a plain `bee-trace bench`


def _row(name: str, module: Any, default: bool = True) -> Row:
    return Row(name, module.measure, module.render, default)


ROWS: dict[str, Row] = {r.name: r for r in (
    _row("openat", openat),
    _row("probes", probes),
    _row("connect", connect),
    _row("throughput", throughput),
    _row("distinct", distinct),
    _row("latency", latency),
    _row("resources", resources),
    _row("decode", decode),
    _row("instructions", instructions),
    _row("flood", flood),
    _row("floods", floods),
    _row("ci", ci),
    _row("startup", startup),
    _row("soak", soak, default=False),
)}
ALIASES = {"syscall": "probes"}     # the per-probe row grew out of the getppid-only one
DEFAULT_ROWS = tuple(n for n, r in ROWS.items() if r.default)
