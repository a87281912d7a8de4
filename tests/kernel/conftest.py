"""Kernel acceptance tests: real BPF programs, real syscalls. Skipped (with the reason shown)
when not root or the BPF object is not built; in CI (`CI=true`, or `BEE_TRACE_REQUIRE_KERNEL=1`)
a kernel test that would skip fails instead, so a green run always means they ran."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Generator, Iterator
from typing import Any

import pytest

from bee_trace.kernel import OBJECT_PATH

Event = dict[str, Any]


def kernel_tests_required() -> bool:
    """CI must run the kernel tests: there a skip is a failure."""
    return (os.environ.get("CI", "").lower() in ("true", "1", "yes")
            or os.environ.get("BEE_TRACE_REQUIRE_KERNEL", "") not in ("", "0"))


def _is_kernel_test(item: pytest.Item) -> bool:
    return "tests/kernel" in str(item.fspath)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = None
    if os.geteuid() != 0:
        reason = "kernel tests need root"
    elif not OBJECT_PATH.exists():
        reason = f"{OBJECT_PATH} not built (run `make bpf`)"
    for item in items:
        if _is_kernel_test(item):
            item.add_marker(pytest.mark.kernel)
            if reason:
                item.add_marker(pytest.mark.skip(reason=reason))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[Any, Any, None]:
    """In CI a skipped kernel test (marker or pytest.skip() inside it) is reported as failed."""
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    if report.skipped and _is_kernel_test(item) and kernel_tests_required() and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = (f"kernel test skipped in CI ({reason}): CI must run the kernel tests "
                           "as root with the BPF object built (unset CI / BEE_TRACE_REQUIRE_KERNEL "
                           "to allow skipping)")


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

    def wait_for_n(self, pred: Callable[[Event], bool], n: int, timeout: float = 3.0) -> list[Event]:
        """Drain until at least `n` events match `pred` (or timeout); returns all matching."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.poll()
            if sum(1 for e in self.events if pred(e)) >= n:
                self.poll()
                break
        return [e for e in self.events if pred(e)]

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


@pytest.fixture
def home(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A temporary HOME (seeded into the inode map at start) with a key."""
    (tmp_path / ".ssh").mkdir()
    (tmp_path / ".ssh" / "id_rsa").write_text("-----BEGIN OPENSSH PRIVATE KEY-----\n")
    monkeypatch.setenv("HOME", str(tmp_path))
    return tmp_path
