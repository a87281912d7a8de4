"""The inodes of watched files: those that exist at start (every home directory, from
/etc/passwd, $HOME and /root, and every absolute pattern expanded once; each regular file's
(dev, ino) goes into the kernel's watched_inodes map) and those learned since, and
`InodeTable`, userspace's copy of that map with the name the policy gave each file. An open of
one of these inodes is reported whatever name reaches it: a hard link, a bind mount, a rename.
A (dev, ino) names a file only while the file exists: the kernel records each one's
i_generation and drops the entries of deleted files, and the table follows it."""

from __future__ import annotations

import glob
import os
import pwd
import stat
from collections.abc import Iterator, Mapping
from typing import NamedTuple

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


class WatchedInode(NamedTuple):
    """A watched file (a tuple: one is built for every watched open; a frozen dataclass cost
    twice as much)."""

    dev: int          # kernel encoding
    ino: int
    path: str
    gen: int | None = None    # the i_generation the kernel recorded; None: not known yet


InodeKey = tuple[int, int]    # (dev, ino)


class InodeTable:
    """The watched files by (dev, ino), with their watched names: what confirm.py names as
    `watched_path` and replay.py gives a fold whose first event is forgotten. An entry speaks
    for one incarnation of its number: an event carrying another i_generation means that file
    was deleted and the number given to another, and `sync` drops what the kernel dropped
    (files it found deleted). Bounded like the kernel's map; `expired` counts the entries of
    files that no longer exist, `refused` the names not kept because the table was full."""

    def __init__(self, bound: int = MAX_INODES) -> None:
        self.bound = bound
        self._by_key: dict[InodeKey, WatchedInode] = {}
        self.expired = 0
        self.refused = 0

    def __len__(self) -> int:
        return len(self._by_key)

    def __iter__(self) -> Iterator[WatchedInode]:
        return iter(list(self._by_key.values()))

    def __contains__(self, key: object) -> bool:
        return key in self._by_key

    @property
    def full(self) -> bool:
        return len(self._by_key) >= self.bound

    def clear(self) -> None:
        self._by_key.clear()

    def get(self, dev: int, ino: int, gen: int | None = None) -> WatchedInode | None:
        """The watched file at (dev, ino); None when there is none, or when `gen` (the opened
        inode's i_generation) says the number belongs to another file now (the entry goes)."""
        w = self._by_key.get((dev, ino))
        if w is not None and gen is not None and w.gen is not None and w.gen != gen:
            del self._by_key[(dev, ino)]
            self.expired += 1
            return None
        return w

    def add(self, w: WatchedInode) -> bool:
        """Keep w's name for its inode. The first name of one incarnation stays (a hard link
        does not rename the file); another incarnation replaces the old one. False when full."""
        key = (w.dev, w.ino)
        old = self._by_key.get(key)
        if old is not None:
            if w.gen is None or old.gen == w.gen:
                return True
            if old.gen is None:     # not known yet: the kernel knows this number as this file
                self._by_key[key] = old._replace(gen=w.gen)
                return True
            self.expired += 1
        elif len(self._by_key) >= self.bound:
            self.refused += 1
            return False
        self._by_key[key] = w
        return True

    def sync(self, kernel: Mapping[InodeKey, int | None]) -> int:
        """Follow the kernel's map ((dev, ino) -> recorded i_generation, None while unknown):
        drop the entries it no longer has or has for another file. Returns how many went."""
        gone = 0
        for key, w in list(self._by_key.items()):
            if key not in kernel:
                gone += 1
                del self._by_key[key]
                continue
            gen = kernel[key]
            if gen is not None and w.gen is not None and gen != w.gen:
                gone += 1
                del self._by_key[key]
            elif gen is not None and w.gen is None:
                self._by_key[key] = w._replace(gen=gen)
        self.expired += gone
        return gone


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
