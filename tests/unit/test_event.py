"""Every field the decoders, policy and classification set is named in the event model."""

from __future__ import annotations

import os
import time
import typing

import numpy as np

from bee_trace import records as R
from bee_trace.event import EventFields
from bee_trace.pipeline import Pipeline, PipelineOptions
from bee_trace.ringbuf import Batch

FIELDS = set(typing.get_type_hints(EventFields))


def _records() -> np.ndarray:
    b = np.zeros(3, dtype=R.event_dtype)
    b["h"]["tgid"] = os.getpid()
    b["h"]["comm"] = b"cat"
    b["h"]["ts_ns"] = time.clock_gettime_ns(time.CLOCK_BOOTTIME)
    b["h"]["type"] = [R.EV_FILE, R.EV_MEM, R.EV_NET]
    path = b"/h/.ssh/id_rsa"
    b["u"]["file"]["path_len"][0] = len(path)
    b[0]["u"]["file"]["path"] = path.ljust(R.FILE_TAIL, b"\0")
    b["h"]["flags"][0] = R.EVF_WRITE
    b[1]["u"]["mem"]["technique"] = 5
    b[1]["u"]["mem"]["target_pid"] = os.getpid()
    b[1]["u"]["mem"]["request"] = 16
    b[2]["u"]["net"]["family"] = 2
    b[2]["u"]["net"]["dport"] = 443
    b[2]["u"]["net"]["protocol"] = 6
    b[2]["u"]["net"]["reason"] = 5
    b["h"]["flags"][2] = R.EVF_WOULD_BLOCK
    return b


def test_decoded_fields_are_declared() -> None:
    out: list[dict] = []
    pl = Pipeline(PipelineOptions(probes={"file_monitor", "memory_monitor", "network_monitor"}), [out.append])
    pl.handle_batch(Batch.of(_records()))
    assert {e["kind"] for e in out} == {"file", "memory", "network"}
    for ev in out:
        assert set(ev) <= FIELDS, set(ev) - FIELDS
