"""Kernel records -> event dicts (the JSON contract of design §5), one decoder per record type.
Only records that will be output get here: filtering is done on the numpy batch first."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable

import numpy as np

from . import records as R
from .procinfo import ProcCache, decode, resolve_path


def _boot_to_realtime_ns() -> int:
    return time.time_ns() - time.clock_gettime_ns(time.CLOCK_BOOTTIME)


@dataclass
class DecodeContext:
    procs: ProcCache = field(default_factory=ProcCache)
    realtime_offset_ns: int = field(default_factory=_boot_to_realtime_ns)


Event = dict[str, Any]
Decoder = Callable[[np.void, DecodeContext], Event | None]


def iso_ts(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, tz=timezone.utc).isoformat(timespec="microseconds")


def header_fields(rec: np.void, ctx: DecodeContext) -> Event:
    h = rec["h"]
    tgid = int(h["tgid"])
    ts_ns = int(h["ts_ns"]) + ctx.realtime_offset_ns
    info = ctx.procs.get(tgid)
    return {
        "ts": iso_ts(ts_ns),
        "ts_ns": ts_ns,
        "kind": "",
        "severity": "low",
        "rule": "",
        "pid": tgid,
        "tid": int(h["tid"]),
        "ppid": int(h["ppid"]),
        "uid": int(h["uid"]),
        "comm": decode(bytes(h["comm"])),
        "exe": info.exe if info else "",
        "cmdline": info.cmdline if info else "",
        "ancestry": ctx.procs.ancestry(tgid, int(h["ppid"])) if info else [],
        "cgroup_id": int(h["cgroup_id"]),
        "cpu": int(h["cpu"]),
        "seq": int(h["seq"]),
        "lane": R.LANE_NAMES[int(h["lane"]) & 1],
        "boot_ns": int(h["ts_ns"]),
    }


def file_path(rec: np.void) -> tuple[bytes, bool]:
    """The path bytes carried by a file record and whether it is only the tail."""
    f = rec["u"]["file"]
    n = min(int(f["path_len"]), R.PATH_LEN)
    return bytes(f["path"])[:n], bool(int(rec["h"]["flags"]) & R.EVF_TRUNCATED)


def decode_file(rec: np.void, ctx: DecodeContext) -> Event:
    ev = header_fields(rec, ctx)
    raw, truncated = file_path(rec)
    if truncated:
        resolved = False
    else:
        raw, resolved = resolve_path(ev["pid"], int(rec["u"]["file"]["dirfd"]), raw)
    ev.update({
        "kind": "file",
        "path": ("…" if truncated else "") + decode(raw),
        "access": "write" if int(rec["h"]["flags"]) & R.EVF_WRITE else "read",
        "truncated": truncated,
        "path_len": int(rec["u"]["file"]["path_len"]),
        "open_flags": int(rec["u"]["file"]["open_flags"]),
    })
    if not resolved and not raw.startswith(b"/"):
        ev["path_resolved"] = False
    return ev


def decode_mem(rec: np.void, ctx: DecodeContext) -> Event:
    ev = header_fields(rec, ctx)
    m = rec["u"]["mem"]
    target = int(m["target_pid"])
    target_comm = decode(bytes(m["target_comm"]))
    if not target_comm:
        info = ctx.procs.get(target)
        target_comm = info.comm if info else ""
    ev.update({
        "kind": "memory",
        "technique": R.TECHNIQUES.get(int(m["technique"]), "unknown"),
        "target_pid": target,
        "target_comm": target_comm,
    })
    if int(m["request"]):
        ev["ptrace_request"] = int(m["request"])
    n = min(int(m["path_len"]), 128)
    if n:
        ev["path"] = decode(bytes(m["path"])[:n])
    return ev


DECODERS: dict[int, Decoder] = {
    R.EV_FILE: decode_file,
    R.EV_MEM: decode_mem,
}


def decode_record(rec: np.void, ctx: DecodeContext) -> Event | None:
    fn = DECODERS.get(int(rec["h"]["type"]))
    return fn(rec, ctx) if fn else None
