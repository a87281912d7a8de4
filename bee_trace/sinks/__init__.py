"""Output sinks. A sink is a callable taking one event dict; it may also have flush() (called
after each drained batch) and emit_run(run) for a run of records that share one template
(same process, path or destination, flags): a sink that can write those in one go (JSON Lines)
avoids building a dict per event; for the others the run is expanded."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from ..decode import TEMPLATE_KEY, iso_ts

Event = dict[str, Any]
Row = tuple[int, int, int, int]   # boot_ns, tid, cpu, seq: what differs inside a run


@dataclass
class Run:
    template: Event
    rows: list[Row]
    realtime_offset_ns: int

    def __len__(self) -> int:
        return len(self.rows)

    def events(self) -> Iterator[Event]:
        off = self.realtime_offset_ns
        for boot_ns, tid, cpu, seq in self.rows:
            ev = dict(self.template)
            ev["ts"] = iso_ts(boot_ns + off)
            ev["ts_ns"] = boot_ns + off
            ev["boot_ns"] = boot_ns
            ev["tid"] = tid
            ev["cpu"] = cpu
            ev["seq"] = seq
            ev[TEMPLATE_KEY] = self.template
            yield ev


def emit_run(sink: Callable[[Event], None], run: Run) -> None:
    fn = getattr(sink, "emit_run", None)
    if fn is not None:
        fn(run)
    else:
        for ev in run.events():
            sink(ev)
