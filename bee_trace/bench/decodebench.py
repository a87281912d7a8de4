"""Per-record decode (the pipeline's record views -> dict path) vs a column-wise numpy batch decode,
on a synthetic batch of file records (no kernel needed)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from .. import records as R


def records(n: int, ev_type: int, lane: int, pid: int | None = None, comm: bytes = b"bench") -> np.ndarray:
    """n records of one type from one process, headers filled as the kernel would (own pid by
    default, so /proc lookups hit the cache); the payloads are left zero."""
    pid = os.getpid() if pid is None else pid
    a = np.zeros(n, dtype=R.event_dtype)
    h = a["h"]
    h["type"] = ev_type
    h["lane"] = lane
    h["cpu"] = np.arange(n) % 2
    h["seq"] = np.arange(1, n + 1)
    h["ts_ns"] = time.clock_gettime_ns(time.CLOCK_BOOTTIME) + np.arange(n) * 1000
    h["tgid"] = pid
    h["tid"] = pid
    h["ppid"] = os.getppid()
    h["comm"] = comm
    return a


def set_paths(a: np.ndarray, paths: list[bytes]) -> None:
    """The file payloads' paths (each shorter than FILE_TAIL: complete, as the kernel sends them)."""
    f = a["u"]["file"]
    f["path_len"] = [len(p) for p in paths]
    # One join and one copy: a numpy call per path costs microseconds a record (bench row 8c).
    f["path"] = np.frombuffer(b"".join(p.ljust(R.FILE_TAIL, b"\0") for p in paths),
                              dtype=f"V{R.FILE_TAIL}")


def synthetic_batch(n: int, pid: int | None = None) -> np.ndarray:
    """n file records (1000 distinct paths) as the kernel would write them."""
    a = records(n, R.EV_FILE, R.LANE_CRITICAL, pid)
    set_paths(a, [f"/home/runner/work/repo/certs/key-{i % 1000}.pem".encode() for i in range(n)])
    return a


def per_record(batch: np.ndarray) -> list[dict[str, Any] | None]:
    """What Pipeline.handle_batch does for first occurrences: a view of each record of a ring
    batch (its header tuple from the ring scan, the payload unpacked by struct) decoded."""
    from ..decode import DecodeContext, decode_record
    from ..record_view import RecordView
    from ..ringbuf import Batch
    ctx = DecodeContext()
    b = Batch.of(batch)
    return [decode_record(RecordView(b.raw, off, t), ctx) for t, off in zip(b.headers, b.offsets)]


def columnar(batch: np.ndarray) -> list[dict[str, Any]]:
    """The same header fields and path, extracted per column with numpy, then zipped into dicts
    (paths are cut with one bytes() per record; process context is looked up once per tgid)."""
    from ..decode import DecodeContext, iso_ts
    from ..procinfo import decode
    ctx = DecodeContext()
    h = batch["h"]
    f = batch["u"]["file"]
    tgid = h["tgid"].tolist()
    ts = (h["ts_ns"].astype(np.int64) + ctx.realtime_offset_ns).tolist()
    boot = h["ts_ns"].tolist()
    tid, ppid, uid = h["tid"].tolist(), h["ppid"].tolist(), h["uid"].tolist()
    cpu, seq = h["cpu"].tolist(), h["seq"].tolist()
    cg = h["cgroup_id"].tolist()
    comms = [decode(c) for c in h["comm"].tolist()]
    write = ((h["flags"] & R.EVF_WRITE) != 0).tolist()
    lens = np.minimum(f["path_len"], R.FILE_TAIL).tolist()
    off = R.header_dtype.itemsize + R.field_offset(R.file_dtype, "path")
    raw = np.ascontiguousarray(batch).view(np.uint8).reshape(len(batch), R.EVENT_SIZE)
    raw = raw[:, off:off + R.FILE_TAIL]
    flen = f["path_len"].tolist()
    oflags = f["open_flags"].tolist()
    infos = {p: ctx.procs.get(p) for p in set(tgid)}
    anc = {(p, pp): ctx.procs.ancestry(p, pp) if infos[p] else [] for p, pp in set(zip(tgid, ppid))}
    out = []
    for i in range(len(batch)):
        info = infos[tgid[i]]
        out.append({
            "ts": iso_ts(ts[i]), "ts_ns": ts[i], "kind": "file", "severity": "low", "rule": "",
            "pid": tgid[i], "tid": tid[i], "ppid": ppid[i], "uid": uid[i], "comm": comms[i],
            "exe": info.exe if info else "", "cmdline": info.cmdline if info else "",
            "ancestry": anc[(tgid[i], ppid[i])], "cgroup_id": cg[i], "cpu": cpu[i], "seq": seq[i], "lane": "critical",
            "boot_ns": boot[i], "path": decode(raw[i, :lens[i]].tobytes()),
            "access": "write" if write[i] else "read", "truncated": False,
            "path_len": flen[i], "open_flags": oflags[i],
        })
    return out


def numpy_only(batch: np.ndarray) -> int:
    """Vectorised filtering/classification work on the whole batch without building objects
    (e.g. select write opens by uid): the floor the batch design aims at."""
    h = batch["h"]
    sel = ((h["flags"] & R.EVF_WRITE) == 0) & (h["uid"] == 0)
    return int(np.count_nonzero(sel))


def _time(fn: Callable[[np.ndarray], Any], batch: np.ndarray, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(batch)
        out.append(len(batch) / (time.perf_counter() - t0))
    return out


def run(n: int, repeats: int) -> dict[str, Any]:
    batch = synthetic_batch(n)
    from ..sinks.jsonl import to_json_line
    evs = [e for e in per_record(batch[:10]) if e is not None]
    t0 = time.perf_counter()
    for e in evs * (2000 // len(evs)):
        to_json_line(e)
    dumps_ns = (time.perf_counter() - t0) / 2000 * 1e9
    return {
        "records": n,
        "per_record_ev_s": _time(per_record, batch, repeats),
        "columnar_ev_s": _time(columnar, batch, repeats),
        "numpy_only_ev_s": _time(numpy_only, batch, repeats),
        "json_dumps_ns": dumps_ns,
    }
