"""The template fast path for repeated file opens must output exactly what the slow path does."""

from __future__ import annotations

import json
import os
import time

import numpy as np

from bee_trace import records as R
from bee_trace.confirm import Reject
from bee_trace.pipeline import Pipeline, PipelineOptions
from bee_trace.ringbuf import Batch
from bee_trace.sinks.jsonl import to_json_line


def _batch(paths: list[bytes], tgid: int) -> np.ndarray:
    b = np.zeros(len(paths), dtype=R.event_dtype)
    b["h"]["type"] = R.EV_FILE
    b["h"]["tgid"] = tgid
    b["h"]["tid"] = np.arange(len(paths)) + tgid
    b["h"]["comm"] = b"reader"
    b["h"]["seq"] = np.arange(1, len(paths) + 1)
    b["h"]["cpu"] = np.arange(len(paths)) % 2
    b["h"]["ts_ns"] = time.clock_gettime_ns(time.CLOCK_BOOTTIME) + np.arange(len(paths)) * 1000
    for i, p in enumerate(paths):
        b["u"]["file"]["path_len"][i] = len(p)
        b[i]["u"]["file"]["path"] = p.ljust(R.FILE_TAIL, b"\0")
    return b


def test_repeated_opens_match_slow_path_output() -> None:
    out: list[dict] = []
    pl = Pipeline(PipelineOptions(probes={"file_monitor"}), [out.append])
    paths = [b"/home/u/.ssh/id_rsa", b"/etc/hostname", b"/home/u/.ssh/id_rsa", b"/x/a.pem",
             b"/etc/hostname", b"/home/u/.ssh/id_rsa"]
    pl.handle_batch(Batch.of(_batch(paths, os.getpid())))
    assert [e["path"] for e in out] == ["/home/u/.ssh/id_rsa", "/home/u/.ssh/id_rsa", "/x/a.pem",
                                        "/home/u/.ssh/id_rsa"]
    assert pl.stats.rejected[Reject.UNCONFIRMED] == 2  # /etc/hostname twice: once decoded, once from the cache
    first, again = json.loads(to_json_line(out[0])), json.loads(to_json_line(out[1]))
    per_record = {"ts", "ts_ns", "tid", "cpu", "seq"}
    assert {k: v for k, v in first.items() if k not in per_record} == \
        {k: v for k, v in again.items() if k not in per_record}
    assert set(first) == set(again) and "_template" not in again and "boot_ns" not in again
    assert again["seq"] == 3 and again["tid"] == os.getpid() + 2 and again["ts"] != first["ts"]


def test_exec_forgets_the_process_templates() -> None:
    out: list[dict] = []
    pl = Pipeline(PipelineOptions(probes={"file_monitor"}), [out.append])
    pl.handle_batch(Batch.of(_batch([b"/k/id_rsa"], os.getpid())))
    assert len(pl.templates.templates) == 1
    pl.templates.forget(os.getpid())
    assert not pl.templates.templates


def _net_batch(n: int, tgid: int, dport: int = 443, name_hash: int = 0) -> np.ndarray:
    b = np.zeros(n, dtype=R.event_dtype)
    b["h"]["type"] = R.EV_NET
    b["h"]["lane"] = R.LANE_BULK
    b["h"]["tgid"] = tgid
    b["h"]["tid"] = tgid
    b["h"]["comm"] = b"curl"
    b["h"]["seq"] = np.arange(1, n + 1)
    b["h"]["ts_ns"] = time.clock_gettime_ns(time.CLOCK_BOOTTIME)
    net = b["u"]["net"]
    net["family"] = 2
    net["dport"] = dport
    net["protocol"] = 17 if dport == 53 else 6
    for i in range(n):
        b[i]["u"]["net"]["daddr"] = bytes([93, 184, 216, 34]).ljust(16, b"\0")
    if name_hash:
        b["h"]["flags"] = R.EVF_LEARNED
        net["name_hash"] = name_hash
    return b


def test_identical_connects_reuse_one_template_and_a_learned_name_is_another() -> None:
    out: list[dict] = []
    pl = Pipeline(PipelineOptions(probes={"network_monitor"}), [out.append])
    pl.handle_batch(Batch.of(_net_batch(3, os.getpid())))
    assert len(out) == 3 and len(pl.templates.templates) == 1
    lines = [json.loads(to_json_line(e)) for e in out]
    assert all(line["daddr"] == "93.184.216.34" and line["dport"] == 443 for line in lines)
    assert [line["seq"] for line in lines] == [1, 2, 3]
    assert all(line["domain"] is None for line in lines)
    # The same destination taught by an answer: the record differs (flag, name hash), so it
    # does not reuse the unnamed template.
    pl.handle_batch(Batch.of(_net_batch(1, os.getpid(), name_hash=5)))
    assert len(pl.templates.templates) == 2
