"""Outputs that fail cleanly: a write error (disk full, EIO, a closed pipe) on one output never
stops the monitor. The first error of an output prints one line naming it and the error; from
then on its events are counted as `failed` instead of written, findings (high and critical) go
to stderr, and the report is kept in memory as always. A pipe closed by its reader (EPIPE) is
not a failure: it asks the run to end, quietly."""

from __future__ import annotations

import errno
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO

from ..classify import meets
from ..escape import terminal
from . import Event, Run, Sink

EXIT_OUTPUT = 3   # the run's exit status when an output failed (README: exit statuses)
FALLBACK_MIN_SEVERITY = "high"


@dataclass
class OutputFailure:
    name: str
    errno: int
    strerror: str

    @property
    def reader_closed(self) -> bool:
        return self.errno == errno.EPIPE

    def code(self) -> str:
        return errno.errorcode.get(self.errno, str(self.errno))

    def line(self) -> str:
        if self.reader_closed:
            return f"bee-trace: {terminal(self.name)}: closed by its reader; ending the run"
        return (f"bee-trace: output {terminal(self.name)}: {self.strerror} ({self.code()}); "
                "monitoring goes on, findings go to stderr and the report")

    def as_dict(self) -> dict[str, str]:
        return {"output": self.name, "error": self.code(), "message": self.strerror}


@dataclass
class OutputHealth:
    """What went wrong with the outputs of one run (shared by every element of the chain)."""

    failures: list[OutputFailure] = field(default_factory=list)
    stderr: Callable[[], IO[str]] = lambda: sys.stderr

    def fail(self, name: str, exc: BaseException) -> OutputFailure:
        for f in self.failures:
            if f.name == name:
                return f
        code = getattr(exc, "errno", None) or errno.EIO
        f = OutputFailure(name, code, getattr(exc, "strerror", None) or str(exc) or "write failed")
        self.failures.append(f)
        try:
            print(f.line(), file=self.stderr(), flush=True)
        except OSError:
            pass
        return f

    @property
    def failed(self) -> list[OutputFailure]:
        """Failures that are errors (not a reader closing its pipe)."""
        return [f for f in self.failures if not f.reader_closed]

    @property
    def reader_closed(self) -> bool:
        return any(f.reader_closed for f in self.failures)

    def guard(self, name: str, write: Callable[[], object]) -> bool:
        """Run one final write (summary record, report); False when it failed."""
        if any(f.name == name for f in self.failures):
            return False
        try:
            write()
            return True
        except OSError as e:
            self.fail(name, e)
            return False


def stream_name(stream: object) -> str:
    name = getattr(stream, "name", None)
    if name in ("<stdout>", 1):
        return "stdout"
    if name in ("<stderr>", 2):
        return "stderr"
    return name if isinstance(name, str) else "output"


class FailSafe(Sink):
    """Guards a sink that writes in the reading thread (regular files)."""

    def __init__(self, sink: Sink, name: str, health: OutputHealth) -> None:
        self.sink = sink
        self.name = name
        self.health = health
        self.broken = False
        self._unflushed = 0   # events written into the stream's buffer since its last flush

    def _guard(self, write: Callable[[], None], n: int) -> None:
        if self.broken:
            self.failed += n
            return
        try:
            write()
        except OSError as e:
            self._broke(e, n)
            return
        self._unflushed = 0 if n == 0 else self._unflushed + n

    def _broke(self, e: OSError, n: int) -> None:
        self.broken = True
        if not self.health.fail(self.name, e).reader_closed:
            # What sat in the buffer may not have reached the file either.
            self.failed += n + self._unflushed

    def __call__(self, ev: Event) -> None:
        # _guard inlined: this runs once per event.
        if self.broken:
            self.failed += 1
            return
        try:
            self.sink(ev)
        except OSError as e:
            self._broke(e, 1)
            return
        self._unflushed += 1

    def emit_run(self, run: Run) -> None:
        self._guard(lambda: self.sink.emit_run(run), len(run))

    def emit_many(self, events: list[Event]) -> None:
        self._guard(lambda: self.sink.emit_many(events), len(events))

    def flush(self) -> None:
        self._guard(self.sink.flush, 0)

    def close(self) -> None:
        self._guard(self.sink.close, 0)


class FindingsToStderr(Sink):
    """Once an output has failed, findings still reach a person: one escaped line each on stderr
    (a run of identical records is one line with its count)."""

    def __init__(self, health: OutputHealth) -> None:
        self.health = health

    def _line(self, ev: Event, n: int) -> None:
        if not self.health.failures:   # nothing failed: the case of every event
            return
        if not self.health.failed or not meets(ev.get("severity", "low"), FALLBACK_MIN_SEVERITY):
            return
        from .table import details
        count = n * int(ev.get("count", 1) or 1)
        text = (f"bee-trace: finding: {ev.get('severity')} {terminal(ev.get('rule', ''))} "
                f"pid {ev.get('pid')} {terminal(ev.get('comm', ''))}: {details(ev)}"
                + (f" x{count}" if count > 1 else ""))
        try:
            print(text, file=self.health.stderr(), flush=True)
        except OSError:
            pass

    def __call__(self, ev: Event) -> None:
        self._line(ev, 1)

    def emit_many(self, events: list[Event]) -> None:
        if self.health.failures:
            for ev in events:
                self._line(ev, 1)

    def emit_run(self, run: Run) -> None:
        self._line(next(run.events()), len(run))
