"""Policy switches that act in the pipeline or the CLI's sinks, on synthetic kernel records."""

from __future__ import annotations

import dataclasses
import os
import time

import numpy as np

from bee_trace import records as R
from bee_trace.config import default_config
from bee_trace.confirm import Reject
from bee_trace.pipeline import Pipeline, PipelineOptions
from bee_trace.ringbuf import Batch
from bee_trace.sinks.chain import Visible as _Visible


def _file(path: bytes, comm: bytes = b"cat") -> np.ndarray:
    b = np.zeros(1, dtype=R.event_dtype)
    b["h"]["type"] = R.EV_FILE
    b["h"]["tgid"] = os.getpid()
    b["h"]["comm"] = comm
    b["h"]["ts_ns"] = time.clock_gettime_ns(time.CLOCK_BOOTTIME)
    b["u"]["file"]["path_len"] = len(path)
    b[0]["u"]["file"]["path"] = path.ljust(R.FILE_TAIL, b"\0")
    return b


def _mem(target: int, comm: bytes = b"dd", target_comm: bytes = b"sleep") -> np.ndarray:
    b = np.zeros(1, dtype=R.event_dtype)
    b["h"]["type"] = R.EV_MEM
    b["h"]["tgid"] = os.getpid()
    b["h"]["comm"] = comm
    b["u"]["mem"]["technique"] = 4
    b["u"]["mem"]["target_pid"] = target
    b["u"]["mem"]["target_comm"] = target_comm
    return b


def _run(batch: np.ndarray, cfg=None, **opts) -> tuple[list[dict], Pipeline]:
    out: list[dict] = []
    pl = Pipeline(PipelineOptions(probes={"file_monitor", "memory_monitor"},
                                  config=cfg or default_config(), **opts), [out.append])
    pl.handle_batch(Batch.of(batch))
    return out, pl


def test_filter_severity_hides_lower_events() -> None:
    crt = _file(b"/x/server.crt")  # a certificate: the file_access level (medium)
    out, _ = _run(crt)
    assert out and out[0]["severity"] == "medium"
    out, pl = _run(crt, min_severity="high")
    assert not out and pl.stats.rejected[Reject.BELOW_SEVERITY] == 1
    out, _ = _run(_file(b"/h/.ssh/id_rsa"), min_severity="high")
    assert out and out[0]["severity"] == "critical"


def test_command_filter_is_a_substring_of_the_process_name() -> None:
    assert _run(_file(b"/h/.ssh/id_rsa", b"python3"), command="pyth")[0]
    out, pl = _run(_file(b"/h/.ssh/id_rsa", b"cat"), command="pyth")
    assert not out and pl.stats.rejected[Reject.EXCLUDED] == 1


def test_memory_switches() -> None:
    cfg = default_config()
    assert _run(_mem(1))[0]
    off = dataclasses.replace(cfg, memory=dataclasses.replace(cfg.memory, alert_on_memory_access=False))
    assert not _run(_mem(1), off)[0]
    excl = dataclasses.replace(cfg, memory=dataclasses.replace(cfg.memory, exclude_processes=("comm:dd",)))
    assert not _run(_mem(1), excl)[0]
    assert _run(_mem(1, b"gdb"), excl)[0]
    # a bare name is an executable, not a comm: this dd has no system binary behind it
    bare = dataclasses.replace(cfg, memory=dataclasses.replace(cfg.memory, exclude_processes=("dd",)))
    assert _run(_mem(1), bare)[0]
    # nothing excludes access to a protected process, not even turning memory alerts off
    for c in (off, excl):
        out = _run(_mem(1, target_comm=b"Runner.Worker"), c)[0]
        assert out and out[0]["severity"] == "critical"


def test_visible_hides_lifecycle_and_loopback_unless_asked() -> None:
    cfg = default_config()
    proc = {"kind": "process", "rule": "process.exec"}
    loop = {"kind": "network", "rule": "network.loopback"}
    ext = {"kind": "network", "rule": "network.external"}
    seen: list[dict] = []
    quiet = _Visible(seen.append, verbose=False, cfg=cfg)
    for ev in (proc, loop, ext):
        quiet(ev)
    assert seen == [ext]
    seen.clear()
    for ev in (proc, loop, ext):
        _Visible(seen.append, verbose=True, cfg=cfg)(ev)
    assert seen == [proc, loop, ext]
    seen.clear()
    show_loop = dataclasses.replace(cfg, network=dataclasses.replace(cfg.network, report_loopback=True))
    for ev in (proc, loop):
        _Visible(seen.append, verbose=False, cfg=show_loop)(ev)
    assert seen == [loop]
