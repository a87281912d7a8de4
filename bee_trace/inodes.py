"""The inodes of watched files that exist at start: every home directory (from /etc/passwd,
$HOME and /root) and every absolute pattern is expanded once, and each regular file's
(dev, ino) goes into the kernel's watched_inodes map. An open of one of these inodes is then
reported whatever name reaches it: a hard link, a bind mount, a rename."""

from __future__ import annotations

import glob
import os
import pwd
import stat
from dataclasses import dataclass

from .globs import GlobSet

MAX_INODES = 16384           # watched_inodes max_entries in bpf/open_exit.h
MAX_PER_PATTERN = 512        # a pattern that names a huge tree is left to the name filter


INODE_SLOTS_LOG2 = 15        # watched_inode_slots in bpf/open_exit.h, inode_slot() in bpf/file_match.h
_M64 = (1 << 64) - 1


def inode_slot(dev: int, ino: int) -> int:
    """The watched_inode_slots byte the kernel tests before its watched_inodes lookup (must agree
    with inode_slot() in bpf/file_match.h)."""
    x = ((ino ^ ((dev * 0xff51afd7ed558ccd) & _M64)) * 0x9E3779B97F4A7C15) & _M64
    return x >> (64 - INODE_SLOTS_LOG2)


def kernel_dev(st_dev: int) -> int:
    """userspace dev_t -> the kernel's internal s_dev encoding (MAJOR << 20 | MINOR)."""
    return (os.major(st_dev) << 20) | os.minor(st_dev)


@dataclass(frozen=True)
class WatchedInode:
    dev: int          # kernel encoding
    ino: int
    path: str


def home_directories() -> list[str]:
    homes = {"/root"}
    if os.environ.get("HOME"):
        homes.add(os.environ["HOME"])
    try:
        homes.update(p.pw_dir for p in pwd.getpwall() if p.pw_dir and p.pw_dir != "/")
    except OSError:
        pass
    return sorted(h for h in homes if os.path.isdir(h))


def _expansions(pattern: str, homes: list[str]) -> list[str]:
    """Concrete glob spellings of one pattern: '**/rest' under each home, absolute as is."""
    if pattern.startswith("**/"):
        rest = pattern[3:]
        if "**" in rest:
            return []
        return [os.path.join(h, rest) for h in homes]
    if pattern.startswith("/") and "**" not in pattern:
        return [pattern]
    return []


def watched_inodes(patterns: list[str], exclude: GlobSet, homes: list[str] | None = None,
                   limit: int = MAX_INODES) -> list[WatchedInode]:
    homes = home_directories() if homes is None else homes
    seen: dict[tuple[int, int], WatchedInode] = {}
    for pattern in patterns:
        for spelled in _expansions(pattern, homes):
            for path in glob.glob(spelled, include_hidden=True)[:MAX_PER_PATTERN]:
                if exclude.match(path):
                    continue
                try:
                    st = os.stat(path)
                except OSError:
                    continue
                if not stat.S_ISREG(st.st_mode):
                    continue
                key = (kernel_dev(st.st_dev), st.st_ino)
                seen.setdefault(key, WatchedInode(key[0], key[1], path))
                if len(seen) >= limit:
                    return list(seen.values())
    return list(seen.values())
