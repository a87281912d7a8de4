"""A bounded queue and a writer thread in front of a slow sink (a file, a pipe, a terminal), so
sink I/O never stalls the ring draining. When the queue is full, bulk events are dropped and
counted (`sink_overflow`); critical-lane events wait for room: they are never dropped."""

from __future__ import annotations

import threading
from collections import deque
from typing import Callable

from . import Event, Run, emit_run


class BufferedSink:
    def __init__(self, sink: Callable[[Event], None], capacity: int = 65536) -> None:
        self.sink = sink
        self.capacity = capacity
        self.overflow = 0
        self._queue: deque[Event | Run] = deque()
        self._pending = 0  # events queued (a run counts as its length)
        self._cond = threading.Condition()
        self._closed = False
        self._flush_requested = False
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="bee-trace-sink", daemon=True)
        self._thread.start()

    def __call__(self, ev: Event) -> None:
        self._put(ev, 1, ev.get("lane") == "critical")

    def emit_run(self, run: Run) -> None:
        """A run is queued whole and counts as its number of events."""
        self._put(run, len(run), run.template.get("lane") == "critical")

    def _put(self, item: Event | Run, n: int, critical: bool) -> None:
        with self._cond:
            if self._error is not None:  # the writer died (e.g. disk full): count, never block
                self.overflow += n
                return
            if self._pending + n > self.capacity and self._pending:
                if not critical:
                    self.overflow += n
                    return
                self._cond.notify_all()
                while self._pending + n > self.capacity and self._pending and self._error is None:
                    self._cond.wait(0.1)
            self._queue.append(item)
            self._pending += n
            # The writer is woken by flush() (after each drained batch) or when the queue is half
            # full, not per event: a wake-up per event costs two context switches each.
            if self._pending * 2 >= self.capacity:
                self._cond.notify_all()

    def flush(self) -> None:
        """Ask the writer to flush the inner sink once the queued events are written."""
        with self._cond:
            self._flush_requested = True
            self._cond.notify_all()

    def close(self) -> None:
        """Write everything still queued, flush, and stop the thread."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join()
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closed and not self._flush_requested:
                    self._cond.wait()
                batch = list(self._queue)
                self._queue.clear()
                self._pending = 0
                want_flush, self._flush_requested = self._flush_requested, False
                closed = self._closed
                self._cond.notify_all()
            try:
                for item in batch:
                    if isinstance(item, Run):
                        emit_run(self.sink, item)
                    else:
                        self.sink(item)
                if want_flush or closed:
                    flush = getattr(self.sink, "flush", None)
                    if flush:
                        flush()
            except BaseException as e:  # e.g. disk full: surface it at close, keep draining
                self._error = e
                with self._cond:
                    self._queue.clear()
                    self._cond.notify_all()
                return
            if closed:
                return
