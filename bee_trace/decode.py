"""Kernel records -> event dicts (the JSON contract of design §5), one decoder per record type.
Only records that will be output get here: filtering is done on the numpy batch first."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from . import records as R
from .addr import addr_text
from .egress.names import DomainTable
from .event import Event
from .inodes import kernel_dev
from .procinfo import ProcCache, decode
from .record_view import (
    H_CGROUP,
    H_COMM,
    H_CPU,
    H_FLAGS,
    H_LANE,
    H_PPID,
    H_SEQ,
    H_TGID,
    H_TID,
    H_TS,
    H_TYPE,
    H_UID,
    MEMBER_POS,
    RecordView,
)

PROTOCOLS = {6: "tcp", 17: "udp"}
# Lifecycle records always feed the process cache; these operations are also output as events.
OUTPUT_LIFECYCLE = {"exec"}


def _boot_to_realtime_ns() -> int:
    return time.time_ns() - time.clock_gettime_ns(time.CLOCK_BOOTTIME)


CHUNKS_PENDING_MAX = 4096  # chains whose record was lost never complete: bound what waits
EVENT_STARTS_MAX = 4096    # per-process event starts kept between process-cache changes


@dataclass
class DecodeContext:
    procs: ProcCache = field(default_factory=ProcCache)
    names: DomainTable = field(default_factory=DomainTable)
    realtime_offset_ns: int = field(default_factory=_boot_to_realtime_ns)
    # EV_PATH continuations by (tid, chain): {what: {index: bytes}} until their record arrives.
    chunks: dict[tuple[int, int], dict[int, dict[int, bytes]]] = field(default_factory=dict)
    # header_fields' event start by the header fields one process's records share, valid for
    # one process-cache generation: each record copies it.
    headers: dict[tuple, Event] = field(default_factory=dict)
    headers_gen: int = -1
    chunks_evicted: int = 0     # chains dropped unfinished to keep the bound

    def add_chunk(self, tid: int, chain: int, what: int, index: int, data: bytes) -> None:
        if len(self.chunks) >= CHUNKS_PENDING_MAX and (tid, chain) not in self.chunks:
            self.chunks.pop(next(iter(self.chunks)))
            self.chunks_evicted += 1
        self.chunks.setdefault((tid, chain), {}).setdefault(what, {})[index] = data

    def take_chunks(self, tid: int, chain: int) -> dict[int, dict[int, bytes]]:
        return self.chunks.pop((tid, chain), {})


Decoder = Callable[[RecordView, DecodeContext], Event | None]

# Positions in the unpacked file and net members (RecordView.u.row) the frequent decoders read.
_FP, _NP = MEMBER_POS["file"], MEMBER_POS["net"]
F_PATH, F_PATH_LEN, F_NCHUNKS, F_REQ_LEN, F_NREQ, F_MATCH, F_OPEN_FLAGS, F_DEV, F_INO, F_GEN, \
    F_ORIGIN, F_SYSCALL = (_FP[n] for n in ("path", "path_len", "nchunks", "req_len", "nreq",
                                            "match", "open_flags", "dev", "ino", "gen", "origin",
                                            "syscall"))
N_FAMILY, N_DADDR, N_PROTOCOL, N_NAME_HASH, N_DPORT, N_ACTION, N_HOOK, N_REASON = (
    _NP[n] for n in ("family", "daddr", "protocol", "name_hash", "dport", "action", "hook", "reason"))


# Fields that differ between two records of the same process opening the same path: the
# pipeline's template fast path copies everything else.
PER_RECORD_FIELDS = ("ts", "ts_ns", "tid", "cpu", "seq", "lane", "boot_ns")
# An event copied from a template carries it here (sinks may cache work on it); not output.
TEMPLATE_KEY = "_template"

# second -> its date-time part; event and start times alternate. Small: a long run sees a new
# second every second, and a miss costs one strftime.
_TS_PREFIXES: dict[int, str] = {}
TS_PREFIXES_MAX = 64


def iso_ts(ns: int) -> str:
    """ISO-8601 UTC with microseconds; the date-time part is formatted once per second."""
    sec, rem = divmod(ns, 1_000_000_000)
    prefix = _TS_PREFIXES.get(sec)
    if prefix is None:
        if len(_TS_PREFIXES) >= TS_PREFIXES_MAX:
            _TS_PREFIXES.clear()
        prefix = _TS_PREFIXES[sec] = datetime.fromtimestamp(sec, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{prefix}.{rem // 1000:06d}+00:00"


def _event_start(ctx: DecodeContext, t: tuple) -> Event:
    """The fields every record of one process shares, in the contract's order, with
    placeholders for the per-record ones (header_fields sets them on a copy). t: the header's
    values (record_view.H positions)."""
    tgid, ppid = t[H_TGID], t[H_PPID]
    info = ctx.procs.get(tgid)
    return {
        "ts": "",
        "ts_ns": 0,
        "kind": "",
        "severity": "low",
        "rule": "",
        "pid": tgid,
        "tid": 0,
        "ppid": ppid,
        "uid": t[H_UID],
        "comm": decode(t[H_COMM].rstrip(b"\0")),
        "exe": info.exe if info else "",
        "cmdline": info.cmdline if info else "",
        # Lists shared by the events of one process: never modified after decoding.
        "ancestry": ctx.procs.ancestry(tgid, ppid) if info else [],
        "ancestry_pids": ctx.procs.ancestry_pids(tgid, ppid) if info else [],
        "start_time": iso_ts(info.start_ns + ctx.realtime_offset_ns) if info and info.start_ns else None,
        "cgroup_id": t[H_CGROUP],
        "cpu": 0,
        "seq": 0,
        "lane": R.LANE_NAMES[t[H_LANE] & 1],
        "boot_ns": 0,
    }


def _current_starts(ctx: DecodeContext) -> dict[tuple, Event]:
    """The event starts, emptied when the process cache changed since they were built."""
    if ctx.headers_gen != ctx.procs.generation:
        ctx.headers.clear()
        ctx.headers_gen = ctx.procs.generation
    return ctx.headers


def header_fields(rec: RecordView, ctx: DecodeContext) -> Event:
    t = rec.t
    key = (t[H_TGID], t[H_PPID], t[H_UID], t[H_CGROUP], t[H_COMM], t[H_LANE])
    start = _current_starts(ctx).get(key)
    if start is None:
        start = _event_start(ctx, t)
        # ctx.procs.get may have read /proc (a new generation): key the start to the current one.
        starts = _current_starts(ctx)
        if len(starts) >= EVENT_STARTS_MAX:
            starts.clear()
        starts[key] = start
    ev = start.copy()   # a C-level copy keeps the key order; the per-record values replace
    boot_ns = t[H_TS]
    ev["ts_ns"] = ts_ns = boot_ns + ctx.realtime_offset_ns
    ev["ts"] = iso_ts(ts_ns)
    ev["tid"] = t[H_TID]
    ev["cpu"] = t[H_CPU]
    ev["seq"] = t[H_SEQ]
    ev["boot_ns"] = boot_ns
    return ev


def _joined(parts: dict[int, bytes], count: int) -> tuple[bytes, bool]:
    """Chunks 0..count-1 in order; False when one is missing."""
    out = [parts.get(i) for i in range(count)]
    if any(p is None for p in out):
        return b"".join(p for p in out if p is not None), False
    return b"".join(out), True  # type: ignore[arg-type]


def file_path(rec: RecordView, ctx: DecodeContext) -> tuple[bytes, bytes | None, bool]:
    """(resolved path, the caller's string when it differs, complete): the record's tail joined
    with the EV_PATH records that preceded it."""
    t, f = rec.t, rec.u.row("file")
    total, flags = f[F_PATH_LEN], t[H_FLAGS]
    tail = f[F_PATH].rstrip(b"\0")[:min(total, R.FILE_TAIL)]
    complete = not flags & (R.EVF_TRUNCATED | R.EVF_CHUNK_LOST)
    requested: bytes | None = None
    if flags & R.EVF_CHAINED:
        chunks = ctx.take_chunks(t[H_TID], t[H_TS])
        head, ok = _joined(chunks.get(R.CHUNK_PATH, {}), f[F_NCHUNKS])
        if ok and len(head) + len(tail) == total:
            tail = head + tail
        else:
            complete = False
        if f[F_REQ_LEN]:
            what = R.CHUNK_OLD if flags & R.EVF_LINK_OP else R.CHUNK_REQUESTED
            req, ok = _joined(chunks.get(what, {}), f[F_NREQ])
            requested = req[:f[F_REQ_LEN]]
    elif total > R.FILE_TAIL:
        complete = False
    return tail, requested, complete


def decode_chunk(rec: RecordView, ctx: DecodeContext) -> None:
    c = rec["u"]["chunk"]
    n = min(int(c["len"]), R.CHUNK_LEN)
    ctx.add_chunk(int(rec["h"]["tid"]), int(c["chain"]), int(c["what"]), int(c["index"]),
                  bytes(c["data"])[:n])
    return None


RENAME_SYSCALLS = {82, 264, 316}   # rename, renameat, renameat2 (x86-64)
SYMLINK_SYSCALLS = {88, 266}       # symlink, symlinkat: the old name is the link's text, not a path


def decode_link(rec: RecordView, ctx: DecodeContext) -> Event:
    """link/symlink/rename of a watched name: the new name (absolute, composed in the kernel
    from the caller's string and its dirfd/cwd) and the old one."""
    ev = header_fields(rec, ctx)
    f = rec["u"]["file"]
    raw, old, complete = file_path(rec, ctx)
    syscall = int(f["syscall"])
    ev.update({
        "kind": "file",
        "path": ("…" if not complete else "") + decode(os.path.normpath(raw)),
        "access": "rename" if syscall in RENAME_SYSCALLS else "link",
        "truncated": not complete,
        "path_len": int(f["path_len"]),
        "syscall": syscall,
        "old_path": decode(old if old is None or syscall in SYMLINK_SYSCALLS
                           else os.path.normpath(old)) if old is not None else None,
        "match": "old" if int(f["match"]) & R.MATCH_OLD and not int(f["match"]) & R.MATCH_NAME
        else "name",
        "origin": "syscall",
    })
    return ev


_PROC_FD_LINK = re.compile(rb"/proc/(\d+)/(?:task/\d+/)?fd/(\d+)")


def proc_fd_target(requested: bytes | None, dev: int, ino: int) -> int:
    """The process whose /proc/PID/fd/N link the caller named, if that link still leads to the
    very file the kernel opened (the caller's string alone proves nothing); 0 when unknown."""
    m = _PROC_FD_LINK.fullmatch(os.path.normpath(requested)) if requested else None
    if m is None:
        return 0
    try:
        st = os.stat(f"/proc/{int(m[1])}/fd/{int(m[2])}")
    except (OSError, ValueError):
        return 0
    if (kernel_dev(st.st_dev), st.st_ino) != (dev, ino):
        return 0
    try:
        with open(f"/proc/{int(m[1])}/status") as f:
            return int(f.read().split("\nTgid:", 1)[1].split()[0])
    except (OSError, IndexError, ValueError):
        return 0


def decode_proc_fd(rec: RecordView, ctx: DecodeContext, requested: bytes | None) -> Event:
    """A pipe, memfd, anon inode or unlinked file the opener did not hold: it can only have come
    through another process's /proc/PID/fd/N (or map_files) link."""
    ev = header_fields(rec, ctx)
    f = rec["u"]["file"]
    dev, ino = int(f["dev"]), int(f["ino"])
    target = proc_fd_target(requested, dev, ino)
    info = ctx.procs.get(target, refresh=True) if target else None
    ev.update({
        "kind": "memory",
        "technique": "proc_fd",
        "target_pid": target,
        "target_comm": info.comm if info else "",
        "access": "write" if int(rec["h"]["flags"]) & R.EVF_WRITE else "read",
        "dev": dev,
        "ino": ino,
        "origin": R.ORIGINS.get(int(f["origin"]), "syscall"),
        "syscall": int(f["syscall"]),
    })
    if requested is not None:
        ev["path"] = decode(requested)
    return ev


def decode_file(rec: RecordView, ctx: DecodeContext) -> Event:
    flags, f = rec.t[H_FLAGS], rec.u.row("file")
    if flags & R.EVF_LINK_OP:
        return decode_link(rec, ctx)
    match = f[F_MATCH]
    if match & R.MATCH_PROC_FD:
        return decode_proc_fd(rec, ctx, file_path(rec, ctx)[1])
    ev = header_fields(rec, ctx)
    raw, requested, complete = file_path(rec, ctx)
    ev.update({
        "kind": "file",
        "path": ("…" if not complete else "") + decode(raw),
        "access": "write" if flags & R.EVF_WRITE else "read",
        "truncated": not complete,
        "path_len": f[F_PATH_LEN],
        "open_flags": f[F_OPEN_FLAGS],
        "dev": f[F_DEV],
        "ino": f[F_INO],
        "generation": f[F_GEN],
        "match": "inode" if match & R.MATCH_INODE else "name",
        "origin": R.ORIGINS.get(f[F_ORIGIN], "syscall"),
        "syscall": f[F_SYSCALL],
    })
    if requested is not None and requested != raw:
        ev["requested_path"] = decode(requested)
    if flags & R.EVF_UNRESOLVED:
        ev["path_resolved"] = False
    if flags & R.EVF_READ_FAULT:
        ev["read_fault"] = True
    return ev


def decode_mem(rec: RecordView, ctx: DecodeContext) -> Event:
    ev = header_fields(rec, ctx)
    m = rec["u"]["mem"]
    target = int(m["target_pid"])
    # The kernel names the target (bpf_task_from_pid) at the moment of access; the /proc opens
    # do not, so read the current name while the target lives (a cached name may predate a
    # prctl(PR_SET_NAME)), falling back to the cache when it is gone.
    target_comm = decode(bytes(m["target_comm"]).split(b"\0", 1)[0])
    if not target_comm and target:
        info = ctx.procs.get(target, refresh=True)
        target_comm = info.comm if info else ""
    ev.update({
        "kind": "memory",
        "technique": R.TECHNIQUES.get(int(m["technique"]), "unknown"),
        "target_pid": target,
        "target_comm": target_comm,
    })
    if int(m["request"]):
        ev["ptrace_request"] = int(m["request"])
    n = min(int(m["path_len"]), R.MEM_PATH_LEN)
    if n:
        ev["path"] = decode(bytes(m["path"])[:n])
    if int(m["path_len"]) or int(m["origin"]):
        ev["origin"] = R.ORIGINS.get(int(m["origin"]), "syscall")
    return ev


def decode_net(rec: RecordView, ctx: DecodeContext) -> Event:
    ev = header_fields(rec, ctx)
    n = rec.u.row("net")
    flags = rec.t[H_FLAGS]
    family, daddr = addr_text(n[N_FAMILY], n[N_DADDR])
    proto_num = n[N_PROTOCOL]
    # Named only when a DNS answer the kernel learned mapped a name to this very address.
    domain = ctx.names.name(daddr, n[N_NAME_HASH]) if flags & R.EVF_LEARNED else None
    ev.update({
        "kind": "network",
        "protocol": PROTOCOLS.get(proto_num, str(proto_num)),
        "family": family,
        "daddr": daddr,
        "dport": n[N_DPORT],
        "action": "blocked" if n[N_ACTION] else "allowed",
        "blocklisted": bool(flags & R.EVF_BLOCKED),
        "domain": domain,
        "domain_source": "answer" if domain else None,
        "loopback": bool(flags & R.EVF_LOOPBACK),
        "hook": R.NET_HOOKS.get(n[N_HOOK], "unknown"),
    })
    reason = R.EGRESS_REASONS.get(n[N_REASON])
    if reason:
        ev["policy"] = reason
    if flags & R.EVF_WOULD_BLOCK:
        ev["not_allowed"] = True
    return ev


def decode_dns(rec: RecordView, ctx: DecodeContext) -> Event | None:
    """A DNS answer learned in the kernel: feeds the name table, not output by itself."""
    ctx.names.note(rec)
    return None


SOCKET_FAMILIES = {2: "ipv4", 10: "ipv6", 17: "packet", 40: "vsock"}
SOCKET_TYPES = {1: "stream", 2: "dgram", 3: "raw", 5: "seqpacket", 10: "packet"}


def decode_sock(rec: RecordView, ctx: DecodeContext) -> Event:
    ev = header_fields(rec, ctx)
    s = rec["u"]["sock"]
    fam, typ, proto = int(s["family"]), int(s["type"]), int(s["protocol"])
    ev.update({
        "kind": "network",
        "op": "socket",
        "family": SOCKET_FAMILIES.get(fam, str(fam)),
        "socket_type": SOCKET_TYPES.get(typ & 0xf, str(typ)),
        "protocol": {1: "icmp", 58: "icmpv6", 6: "tcp", 17: "udp"}.get(proto, str(proto)),
        "daddr": None,
        "dport": None,
        "domain": None,
        "action": "blocked" if int(s["action"]) else "allowed",
    })
    if int(s["action"]) == 2:
        ev["enforcement"] = "killed"      # no hook can refuse this family: the process was killed
    return ev


def _proc_filename(p: dict[str, Any]) -> tuple[bytes, bool]:
    n = int(p["filename_len"])
    raw = bytes(p["filename"]).split(b"\0", 1)[0]
    return raw, n > len(raw)


def decode_exec(rec: RecordView, ctx: DecodeContext) -> Event | None:
    h, p = rec["h"], rec["u"]["proc"]
    tgid = int(h["tgid"])
    filename, truncated = _proc_filename(p)
    args_len = min(int(p["args_len"]), R.PROC_ARGS_LEN)
    args = bytes(p["args"])[:args_len]
    ctx.procs.on_exec(tgid, int(h["ppid"]), decode(bytes(h["comm"]).split(b"\0", 1)[0]),
                      decode(filename), args, args_len < R.PROC_ARGS_LEN, int(p["start_ns"]),
                      exe_complete=not truncated)
    if "exec" not in OUTPUT_LIFECYCLE:
        return None
    ev = header_fields(rec, ctx)
    ev.update({"kind": "process", "op": "exec", "filename": decode(filename)})
    if truncated:
        ev["filename_truncated"] = True
    return ev


def decode_fork(rec: RecordView, ctx: DecodeContext) -> Event | None:
    h, p = rec["h"], rec["u"]["proc"]
    child = int(p["child_tgid"])
    ctx.procs.on_fork(child, int(p["parent_tgid"]), int(p["start_ns"]),
                      decode(bytes(h["comm"]).split(b"\0", 1)[0]))
    if "fork" not in OUTPUT_LIFECYCLE:
        return None
    ev = header_fields(rec, ctx)
    ev.update({"kind": "process", "op": "fork", "child_pid": child})
    return ev


def decode_exit(rec: RecordView, ctx: DecodeContext) -> Event | None:
    tgid = int(rec["h"]["tgid"])
    ev = header_fields(rec, ctx) if "exit" in OUTPUT_LIFECYCLE else None
    ctx.procs.on_exit(tgid, int(rec["h"]["ts_ns"]))
    if ev is None:
        return None
    code = int(rec["u"]["proc"]["exit_code"])
    ev.update({"kind": "process", "op": "exit", "exit_code": code >> 8 & 0xff,
               "exit_signal": code & 0x7f})
    return ev


def decode_uring(rec: RecordView, ctx: DecodeContext) -> Event:
    ev = header_fields(rec, ctx)
    u = rec["u"]["uring"]
    ev.update({"kind": "process", "op": "io_uring_setup", "sq_entries": int(u["sq_entries"]),
               "ring_flags": int(u["flags"])})
    return ev


DECODERS: dict[int, Decoder] = {
    R.EV_URING: decode_uring,
    R.EV_FILE: decode_file,
    R.EV_PATH: decode_chunk,
    R.EV_MEM: decode_mem,
    R.EV_NET: decode_net,
    R.EV_DNS: decode_dns,
    R.EV_SOCK: decode_sock,
    R.EV_EXEC: decode_exec,
    R.EV_FORK: decode_fork,
    R.EV_EXIT: decode_exit,
}


def decode_record(rec: RecordView | np.void, ctx: DecodeContext) -> Event | None:
    """A record from a ring batch (a view), or a numpy one (spill map, aggregation summary)."""
    if not isinstance(rec, RecordView):
        rec = RecordView.of(rec)
    fn = DECODERS.get(rec.t[H_TYPE])
    return fn(rec, ctx) if fn else None


# Tamper records are named in their own module (it builds on header_fields above).
from .tamper import decode_tamper  # noqa: E402

DECODERS[R.EV_TAMPER] = decode_tamper
