"""Process context from /proc, kept in a bounded cache (evictions counted)."""

from __future__ import annotations

import os
from collections import OrderedDict
from dataclasses import dataclass, field

CMDLINE_MAX = 1024
ANCESTRY_MAX = 8


def decode(b: bytes) -> str:
    """Attacker-controlled bytes -> str that is always valid UTF-8 (bad bytes become \\xNN)."""
    return b.decode("utf-8", "backslashreplace")


@dataclass
class ProcInfo:
    pid: int
    comm: str = ""
    exe: str = ""
    cmdline: str = ""
    ppid: int = 0
    start_ticks: int = 0
    cwd: str | None = None


@dataclass
class ProcCache:
    capacity: int = 8192
    evictions: int = 0
    _items: "OrderedDict[int, ProcInfo]" = field(default_factory=OrderedDict)

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
        self._items[info.pid] = info
        self._items.move_to_end(info.pid)
        while len(self._items) > self.capacity:
            self._items.popitem(last=False)
            self.evictions += 1

    def forget(self, pid: int) -> None:
        self._items.pop(pid, None)

    def ancestry(self, pid: int, ppid: int | None = None) -> list[str]:
        """comm names from the oldest known ancestor down to `pid`."""
        chain: list[str] = []
        seen: set[int] = set()
        cur: int | None = pid
        while cur and cur not in seen and len(chain) < ANCESTRY_MAX:
            seen.add(cur)
            info = self.get(cur)
            if info is None:
                break
            chain.append(info.comm)
            cur = info.ppid if cur != pid or ppid is None else ppid
        return list(reversed(chain))

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


def resolve_path(pid: int, dirfd: int, path: bytes) -> tuple[bytes, bool]:
    """Make a relative open path absolute against the process's cwd (or dirfd) while it lives.
    Returns (path, resolved); the raw path when the process is gone."""
    if path.startswith(b"/"):
        return path, True
    link = f"/proc/{pid}/cwd" if dirfd == -100 else f"/proc/{pid}/fd/{dirfd}"
    try:
        base = os.fsencode(os.readlink(link))
    except OSError:
        return path, False
    return os.path.normpath(base + b"/" + path), True
