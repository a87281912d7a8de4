"""Output I/O off the reading thread. The inner sink formats each event (or run) in the caller's
thread into a capture buffer, one per lane; flush() (after each drained batch) hands the text to
a writer thread, which only writes, so a slow disk, pipe or terminal never stalls the ring
draining and the writer barely holds the GIL. When the writer is behind by `capacity` events,
bulk text is dropped and its events counted (`sink_overflow`); critical text waits for room:
it is never dropped. A write error ends the writer: it is reported once (OutputHealth) and the
events formatted after it are counted as `failed`, never raised at the caller."""

from __future__ import annotations

import errno
import os
import threading
from collections import deque
from collections.abc import Callable
from typing import IO

from . import Event, Run, Sink
from .failsafe import OutputHealth, stream_name


class Capture:
    """A stream stand-in for the inner sink: collects the text it writes."""

    def __init__(self) -> None:
        self.parts: list[str] = []

    def write(self, text: str) -> int:
        self.parts.append(text)
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False


class BufferedSink(Sink):
    def __init__(self, sink: Sink, capture: Capture, stream: IO[str],
                 capacity: int = 65536, health: OutputHealth | None = None) -> None:
        self.sink = sink
        self.health = health or OutputHealth()
        self.name = stream_name(stream)
        self._reported = False
        self.capture = capture
        self.stream = stream
        self.capacity = capacity
        self.overflow = 0
        # Text formatted since the last flush, by lane, with its number of events (what the
        # inner sink wrote before, e.g. a table header, goes out first).
        self._critical: list[str] = capture.parts
        self._critical_n = 0
        self._bulk: list[str] = []
        self._bulk_n = 0
        self._queue: deque[tuple[str | bytes, int]] = deque()
        # Raw writes release the GIL for the whole syscall; the text is encoded by the caller.
        try:
            self._fd: int | None = stream.fileno()
            stream.flush()
        except (AttributeError, OSError, ValueError):
            self._fd = None
        self._pending = 0  # events handed to the writer and not yet written
        self._cond = threading.Condition()
        self._closed = False
        self._flush_requested = False
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="bee-trace-writer", daemon=True)
        self._thread.start()

    def __call__(self, ev: Event) -> None:
        self._format(lambda: self.sink(ev), 1, ev.get("lane") == "critical")

    def emit_run(self, run: Run) -> None:
        self._format(lambda: self.sink.emit_run(run), len(run), run.template.get("lane") == "critical")

    def _format(self, write: Callable[[], None], n: int, critical: bool) -> None:
        self.capture.parts = self._critical if critical else self._bulk
        write()
        if critical:
            self._critical_n += n
        else:
            self._bulk_n += n

    def flush(self) -> None:
        """Hand what was formatted to the writer, then have it flush the stream. What the inner
        sink writes when flushed (the live table's view) is never dropped."""
        self.capture.parts = self._critical
        self.sink.flush()
        critical = (self._encode("".join(self._critical)), self._critical_n)
        bulk = (self._encode("".join(self._bulk)), self._bulk_n)
        self._critical, self._critical_n, self._bulk, self._bulk_n = [], 0, [], 0
        with self._cond:
            for (text, n), is_critical in ((critical, True), (bulk, False)):
                if not n and not text:
                    continue
                if self._error is not None:  # the writer died (e.g. disk full): count, never block
                    if not self._failure().reader_closed:
                        self.failed += n
                    continue
                if self._pending + n > self.capacity and self._pending:
                    if not is_critical:
                        self.overflow += n
                        continue
                    self._cond.notify_all()
                    while self._pending + n > self.capacity and self._pending and self._error is None:
                        self._cond.wait(0.1)
                self._queue.append((text, n))
                self._pending += n
            self._flush_requested = True
            self._cond.notify_all()

    def _failure(self):  # type: ignore[no-untyped-def]
        """Report the writer's error once (from the reading thread)."""
        assert self._error is not None
        return self.health.fail(self.name, self._error)

    def _encode(self, text: str) -> str | bytes:
        return text if self._fd is None else text.encode("utf-8", "backslashreplace")

    def close(self) -> None:
        """Write everything still formatted or queued, flush, and stop the thread."""
        self.capture.parts = self._critical
        self.sink.close()
        self.flush()
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join()
        if self._error is not None:
            if not isinstance(self._error, OSError):
                raise self._error
            self._failure()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closed and not self._flush_requested:
                    self._cond.wait()
                batch = list(self._queue)
                self._queue.clear()
                want_flush, self._flush_requested = self._flush_requested, False
                closed = self._closed
            try:
                for data, _ in batch:
                    if self._fd is None:
                        self.stream.write(data)  # type: ignore[arg-type]
                    else:
                        view = memoryview(data)  # type: ignore[arg-type]
                        while view:
                            view = view[os.write(self._fd, view):]
                if (want_flush or closed) and self._fd is None:
                    self.stream.flush()
            except BaseException as e:  # e.g. disk full: reported by the reading thread
                with self._cond:
                    self._error = e
                    if isinstance(e, OSError) and e.errno != errno.EPIPE:
                        self.failed += sum(n for _, n in batch)
                    self._queue.clear()
                    self._pending = 0
                    self._cond.notify_all()
                return
            with self._cond:
                self._pending -= sum(n for _, n in batch)
                self._cond.notify_all()
            if closed:
                return
