"""Kernel acceptance tests: real BPF programs, real syscalls. Skipped (with the reason shown)
when not root or the BPF object is not built."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from bee_trace.kernel import OBJECT_PATH

Event = dict[str, Any]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = None
    if os.geteuid() != 0:
        reason = "kernel tests need root"
    elif not OBJECT_PATH.exists():
        reason = f"{OBJECT_PATH} not built (run `make bpf`)"
    for item in items:
        if "tests/kernel" in str(item.fspath):
            item.add_marker(pytest.mark.kernel)
            if reason:
                item.add_marker(pytest.mark.skip(reason=reason))


class Monitor:
    """A running pipeline in this process; collects every event it would output."""

    def __init__(self, probes: set[str], **options: Any) -> None:
        from bee_trace.pipeline import Pipeline, PipelineOptions
        self.events: list[Event] = []
        self.pipeline = Pipeline(PipelineOptions(probes=probes, **options), sinks=[self.events.append])
        self.pipeline.start()

    def poll(self, timeout: float = 0.05) -> None:
        self.pipeline.step(timeout)

    def wait_for(self, pred: Callable[[Event], bool], timeout: float = 3.0) -> list[Event]:
        """Drain until an event matches `pred` (or timeout); returns all matching events."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.poll()
            found = [e for e in self.events if pred(e)]
            if found:
                self.poll()  # pick up stragglers of the same burst
                return [e for e in self.events if pred(e)]
        return []

    def settle(self, seconds: float = 0.3) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.poll()

    def close(self) -> None:
        self.pipeline.stop()


@pytest.fixture
def monitor() -> Iterator[Callable[..., Monitor]]:
    started: list[Monitor] = []

    def start(probes: set[str] | None = None, **options: Any) -> Monitor:
        m = Monitor(probes or {"file_monitor", "network_monitor", "memory_monitor"}, **options)
        started.append(m)
        return m

    yield start
    for m in started:
        m.close()
