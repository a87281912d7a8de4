"""Output sinks. Every sink derives from `Sink`: it is called with one event dict, may write a
whole run of records that share one template (same process, path or destination, flags) at once
(`emit_run`: JSON Lines avoids building a dict per event; the default expands the run), takes the
other events of one batch as a list (`emit_many`: one call down the chain, not one per event), is
flushed after each drained batch, counts the events it could not write (`overflow`: the writer
queue was full; `failed`: the output failed), and is closed at the end. Callers never probe for
these with getattr."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from ..decode import TEMPLATE_KEY, iso_ts
from ..event import Event

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


class Sink:
    """Base of every output element (a chain element passes everything on to `self.sink`)."""

    overflow: int = 0      # events dropped because the writer was behind (bulk text only)
    failed: int = 0        # events not written because the output failed (disk full, EIO...)

    def __call__(self, ev: Event) -> None:
        raise NotImplementedError

    def emit_run(self, run: Run) -> None:
        for ev in run.events():
            self(ev)

    def emit_many(self, events: list[Event]) -> None:
        """Events in record order (none of them a run's)."""
        for ev in events:
            self(ev)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.flush()


class CallableSink(Sink):
    """A plain callable (e.g. `list.append` in tests) as a Sink."""

    def __init__(self, fn: Callable[[Event], None]) -> None:
        self.fn = fn

    def __call__(self, ev: Event) -> None:
        self.fn(ev)


def as_sink(obj: Sink | Callable[[Event], None]) -> Sink:
    return obj if isinstance(obj, Sink) else CallableSink(obj)


def emit_run(sink: Sink | Callable[[Event], None], run: Run) -> None:
    """Kept for callers holding a plain callable."""
    as_sink(sink).emit_run(run)
