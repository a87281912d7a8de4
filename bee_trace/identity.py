"""Which program a process is, for policy: the executable the kernel mapped (mm->exe_file, from
the exec record or /proc/PID/exe), never `comm`, which any process sets with prctl. A policy
entry is an exe path glob ("/usr/bin/ssh"), a bare program name that counts only for a
root-owned binary in a system directory ("ssh"), or explicitly "comm:NAME"."""

from __future__ import annotations

import os
import stat
from fnmatch import fnmatchcase
from functools import lru_cache

SYSTEM_DIRS = ("/usr/bin/", "/bin/", "/usr/sbin/", "/sbin/", "/usr/local/bin/",
               "/usr/local/sbin/", "/usr/libexec/", "/usr/lib/")
# Process inspectors that read /proc/*/environ|maps of every process as their job.
INSPECTORS = frozenset({"ps", "top", "htop", "atop", "btop", "pgrep", "pkill", "pidof",
                        "pstree", "w", "lsof", "ss", "fuser", "pmap", "pwdx", "slabtop", "vmstat"})


@lru_cache(maxsize=1024)
def _root_owned(path: str) -> bool:
    try:
        st = os.stat(path)
    except OSError:
        return False
    return st.st_uid == 0 and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def system_program(exe: str) -> str | None:
    """The program name when `exe` is a root-owned binary in a system directory, else None."""
    if not exe.startswith(SYSTEM_DIRS) or "/../" in exe or not _root_owned(exe):
        return None
    return os.path.basename(exe)


def matches(entry: str, comm: str, exe: str) -> bool:
    if entry.startswith("comm:"):
        return comm == entry[5:]
    if "/" in entry:
        return bool(exe) and fnmatchcase(exe, entry)
    return system_program(exe) == entry


def any_match(entries: tuple[str, ...] | list[str], comm: str, exe: str) -> str | None:
    return next((e for e in entries if matches(e, comm, exe)), None)


def is_inspector(exe: str) -> bool:
    return system_program(exe) in INSPECTORS
