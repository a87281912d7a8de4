"""Process context, kept in a bounded cache (evictions counted): seeded from /proc at start, then
fed by the kernel's exec/fork/exit records, so a process that has already exited when its events
are decoded still has its exe, cmdline and ancestry. An exited process is dropped a grace period
after its exit (expire()), unless a process still known descends from it: churn of short-lived
processes then keeps the cache near the live processes, not at its bound."""

from __future__ import annotations

import os
from collections import OrderedDict
from dataclasses import dataclass, field

CMDLINE_MAX = 1024
ANCESTRY_MAX = 8
CLK_TCK = os.sysconf("SC_CLK_TCK")
# How long an exited process's context is kept: its records may still wait in a ring, or come
# back as fold counts, aggregation summaries or spilled records (each well under this).
EXITED_GRACE_NS = 30 * 1_000_000_000


def decode(b: bytes) -> str:
    """Attacker-controlled bytes -> str that is always valid UTF-8 (bad bytes become \\xNN)."""
    return b.decode("utf-8", "backslashreplace")


@dataclass(slots=True)
class ProcInfo:
    pid: int
    comm: str = ""
    exe: str = ""
    cmdline: str = ""
    ppid: int = 0
    start_ticks: int = 0
    cwd: str | None = None
    start_ns: int = 0            # CLOCK_BOOTTIME ns (from the kernel, or start_ticks)
    exited: bool = False
    source: str = "proc"         # proc | exec | fork
    exited_ns: int = 0           # CLOCK_BOOTTIME ns of the exit record


@dataclass
class ProcCache:
    capacity: int = 8192
    evictions: int = 0           # pushed out by the bound (possibly still running)
    expired: int = 0             # exited processes dropped after the grace period
    _items: OrderedDict[int, ProcInfo] = field(default_factory=OrderedDict)
    _gen: int = 0                # bumped on every change: lineages computed before are stale
    _lineage_gen: int = -1
    _lineages: dict[tuple[int, int | None], list[tuple[int, ProcInfo]]] = field(default_factory=dict)

    def get(self, pid: int, refresh: bool = False) -> ProcInfo | None:
        info = self._items.get(pid)
        if info is not None and not refresh:
            self._items.move_to_end(pid)
            return info
        fresh = read_proc(pid)
        if fresh is None:
            return info
        self.put(fresh)
        return fresh

    def put(self, info: ProcInfo) -> None:
        self._gen += 1
        self._items[info.pid] = info
        self._items.move_to_end(info.pid)
        while len(self._items) > self.capacity:
            self._items.popitem(last=False)
            self.evictions += 1

    def forget(self, pid: int) -> None:
        self._gen += 1
        self._items.pop(pid, None)

    @property
    def generation(self) -> int:
        """Changes whenever an entry is added, replaced or dropped."""
        return self._gen

    def peek(self, pid: int) -> ProcInfo | None:
        """The cached entry only (no /proc read, no LRU update)."""
        return self._items.get(pid)

    # -- lifecycle records -------------------------------------------------------------------
    def on_exec(self, pid: int, ppid: int, comm: str, filename: str, args: bytes,
                args_complete: bool, start_ns: int, exe_complete: bool = True) -> ProcInfo:
        """A new program in `pid`. The kernel's exe path (mm->exe_file) and argv head are kept;
        /proc (when the process still lives) fills in what the record could not carry."""
        info = ProcInfo(pid=pid, comm=comm, exe=filename, ppid=ppid, start_ns=start_ns,
                        source="exec")
        info.cmdline = decode(args.rstrip(b"\0").replace(b"\0", b" "))
        if not exe_complete:
            try:
                info.exe = decode(os.fsencode(os.readlink(f"/proc/{pid}/exe")))
            except OSError:
                info.exe = ""   # never match policy on a cut path
        if not args_complete:
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    raw = f.read(CMDLINE_MAX)
                if raw:
                    info.cmdline = decode(raw.rstrip(b"\0").replace(b"\0", b" "))
            except OSError:
                pass
        self.put(info)
        return info

    def on_fork(self, child: int, parent: int, start_ns: int, comm: str = "") -> ProcInfo:
        """A new process: it runs its parent's program until it execs."""
        p = self.peek(parent) or self.get(parent)
        info = ProcInfo(pid=child, comm=p.comm if p else comm, exe=p.exe if p else "",
                        cmdline=p.cmdline if p else "", ppid=parent, start_ns=start_ns,
                        source="fork")
        self.put(info)
        return info

    def on_exit(self, pid: int, ts_ns: int) -> None:
        """Kept (marked) so records still in flight for it decode with context; expire() drops
        it later. ts_ns: the exit's CLOCK_BOOTTIME."""
        info = self._items.get(pid)
        if info is not None:
            info.exited = True
            info.exited_ns = ts_ns

    def expire(self, now_ns: int, grace_ns: int = EXITED_GRACE_NS) -> int:
        """Drop the processes that exited more than grace_ns before now_ns (CLOCK_BOOTTIME),
        except the ancestors of those kept (running, or exited within the grace): their ancestry
        still names them. Returns how many were dropped. Walks the whole cache: call it rarely."""
        items = self._items
        kept: set[int] = set()
        old: list[int] = []
        for pid, info in items.items():
            if info.exited and now_ns - info.exited_ns > grace_ns:
                old.append(pid)
                continue
            cur, depth = info.ppid, 1
            while cur and depth < ANCESTRY_MAX and cur != pid:
                anc = items.get(cur)
                if anc is None:
                    break
                kept.add(cur)
                cur, depth = anc.ppid, depth + 1
        dropped = 0
        for pid in old:
            if pid not in kept:
                del items[pid]
                dropped += 1
        if dropped:
            self._gen += 1
            self.expired += dropped
        return dropped

    def _lineage(self, pid: int, ppid: int | None) -> list[tuple[int, ProcInfo]]:
        """(pid, info) from `pid` up to the oldest known ancestor (bounded, cycle-safe); walked
        again only after the cache changed (every event of a process asks)."""
        key = (pid, ppid)
        if self._lineage_gen == self._gen:
            hit = self._lineages.get(key)
            if hit is not None:
                return hit
        else:
            self._lineages.clear()
            self._lineage_gen = self._gen
        chain = self._walk(pid, ppid)
        if len(self._lineages) >= self.capacity:
            self._lineages.clear()
        self._lineages[key] = chain
        return chain

    def _walk(self, pid: int, ppid: int | None) -> list[tuple[int, ProcInfo]]:
        chain: list[tuple[int, ProcInfo]] = []
        seen: set[int] = set()
        cur: int | None = pid
        while cur and cur not in seen and len(chain) < ANCESTRY_MAX:
            seen.add(cur)
            info = self.get(cur, refresh=False)
            if info is None:
                break
            chain.append((cur, info))
            cur = info.ppid if cur != pid or ppid is None else ppid
        return chain

    def ancestry(self, pid: int, ppid: int | None = None) -> list[str]:
        """comm names from the oldest known ancestor down to `pid`."""
        return [info.comm for _, info in reversed(self._lineage(pid, ppid))]

    def ancestry_pids(self, pid: int, ppid: int | None = None) -> list[int]:
        """The pids of ancestry() (same walk, same order): tells two processes of one name apart."""
        return [p for p, _ in reversed(self._lineage(pid, ppid))]

    def seed(self) -> None:
        """Fill the cache from /proc at start."""
        for name in os.listdir("/proc"):
            if name.isdigit():
                info = read_proc(int(name))
                if info:
                    self.put(info)

    def __len__(self) -> int:
        return len(self._items)


def read_proc(pid: int) -> ProcInfo | None:
    base = f"/proc/{pid}"
    try:
        with open(f"{base}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    # comm is in parentheses and may itself contain ') ': split at the last one.
    lpar, rpar = stat.find(b"("), stat.rfind(b")")
    rest = stat[rpar + 2:].split()
    info = ProcInfo(pid=pid, comm=decode(stat[lpar + 1:rpar]))
    try:
        info.ppid = int(rest[1])
        info.start_ticks = int(rest[19])
        info.start_ns = info.start_ticks * 1_000_000_000 // CLK_TCK
    except (IndexError, ValueError):
        pass
    try:
        info.exe = decode(os.fsencode(os.readlink(f"{base}/exe")))
    except OSError:
        pass
    try:
        with open(f"{base}/cmdline", "rb") as f:
            raw = f.read(CMDLINE_MAX)
        info.cmdline = decode(raw.rstrip(b"\0").replace(b"\0", b" "))
    except OSError:
        pass
    return info
