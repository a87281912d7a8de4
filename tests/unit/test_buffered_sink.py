"""A slow sink must not stall the caller: bulk overflow is counted, critical events never dropped."""

from __future__ import annotations

import threading

from bee_trace.sinks.buffered import BufferedSink


class SlowSink:
    def __init__(self) -> None:
        self.gate = threading.Event()
        self.got: list[dict] = []
        self.flushed = 0

    def __call__(self, ev: dict) -> None:
        self.gate.wait()
        self.got.append(ev)

    def flush(self) -> None:
        self.flushed += 1


def test_bulk_overflow_counted_critical_kept() -> None:
    inner = SlowSink()
    sink = BufferedSink(inner, capacity=10)
    sink({"lane": "bulk", "i": -1})
    sink.flush()  # wakes the writer (it is not woken per event)
    while sink._queue:  # the writer took it and is now stuck in the slow sink
        threading.Event().wait(0.01)
    for i in range(50):
        sink({"lane": "bulk", "i": i})
    assert sink.overflow == 40  # the queue holds 10; the caller was never blocked
    done = threading.Event()

    def critical() -> None:
        sink({"lane": "critical", "i": "c"})
        done.set()

    t = threading.Thread(target=critical)
    t.start()
    assert not done.wait(0.3), "a critical event must wait for room, not be dropped"
    inner.gate.set()
    t.join(5)
    sink.close()
    assert done.is_set()
    assert [e["i"] for e in inner.got if e["lane"] == "critical"] == ["c"]
    assert len(inner.got) + sink.overflow == 52
    assert inner.flushed >= 1


def test_writer_error_counts_instead_of_blocking() -> None:
    def broken(ev: dict) -> None:
        raise OSError(28, "No space left on device")

    sink = BufferedSink(broken, capacity=2)
    sink({"lane": "critical"})
    sink._thread.join(2)
    for _ in range(5):
        sink({"lane": "critical"})
    assert sink.overflow == 5
    try:
        sink.close()
    except OSError as e:
        assert e.errno == 28
    else:
        raise AssertionError("the writer's error must surface at close")
