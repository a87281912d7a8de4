"""A slow output stream must not stall the reader: bulk text is dropped and counted when the
writer is behind, critical text waits for room and is never dropped."""

from __future__ import annotations

import threading
from typing import IO, cast

from bee_trace.sinks.buffered import BufferedSink, Capture
from bee_trace.sinks.jsonl import JsonLinesSink


class SlowStream:
    def __init__(self) -> None:
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.text: list[str] = []
        self.flushes = 0

    def write(self, text: str) -> int:
        self.entered.set()
        self.gate.wait()
        self.text.append(text)
        return len(text)

    def flush(self) -> None:
        self.flushes += 1


def _sink(stream, capacity: int) -> BufferedSink:
    capture = Capture()
    return BufferedSink(JsonLinesSink(cast(IO[str], capture)), capture, stream, capacity=capacity)


def test_bulk_overflow_counted_critical_kept() -> None:
    stream = SlowStream()
    sink = _sink(stream, capacity=10)
    for i in range(10):
        sink({"lane": "bulk", "i": -1 - i})
    sink.flush()
    assert stream.entered.wait(2)  # the writer is now stuck in write() with 10 events
    for i in range(50):
        sink({"lane": "bulk", "i": i})
    sink.flush()  # the caller is not blocked: the bulk text is dropped and counted
    assert sink.overflow == 50
    done = threading.Event()

    def critical() -> None:
        sink({"lane": "critical", "i": "c"})
        sink.flush()
        done.set()

    t = threading.Thread(target=critical)
    t.start()
    assert not done.wait(0.3), "critical text must wait for room, not be dropped"
    stream.gate.set()
    t.join(5)
    sink.close()
    written = "".join(stream.text)
    assert '"i":-1' in written and '"i":"c"' in written and '"i":3' not in written
    assert stream.flushes >= 1


def test_writer_error_counts_instead_of_blocking(capsys) -> None:
    class Broken:
        name = "/full/out.jsonl"

        def write(self, text: str) -> int:
            raise OSError(28, "No space left on device")

        def flush(self) -> None:
            pass

    sink = _sink(Broken(), capacity=2)
    sink({"lane": "critical"})
    sink.flush()
    sink._thread.join(2)
    for _ in range(5):
        sink({"lane": "critical"})
    sink.flush()
    # The event being written and every later one are counted as failed; none is an overflow.
    assert (sink.failed, sink.overflow) == (6, 0)
    sink.close()  # the error was reported, not raised
    err = capsys.readouterr().err.splitlines()
    assert err == ["bee-trace: output /full/out.jsonl: No space left on device (ENOSPC); "
                   "monitoring goes on, findings go to stderr and the report"]
    assert [f.code() for f in sink.health.failures] == ["ENOSPC"]


def test_header_written_before_events() -> None:
    import io

    from bee_trace.sinks.table import TableSink
    out = io.StringIO()
    capture = Capture()
    sink = BufferedSink(TableSink(cast(IO[str], capture), color=False), capture, out)
    sink({"kind": "file", "lane": "critical", "comm": "cat", "severity": "high", "rule": "r",
          "access": "read", "path": "/x", "ts_ns": 0, "pid": 1})
    sink.close()
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("TIME") and "/x" in lines[1]
