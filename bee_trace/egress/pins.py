"""network.fail_closed: the egress programs' links pinned in bpffs, so the enforcement stays
attached if the agent dies; `bee-trace unblock` unlinks them (which detaches them)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence

BPFFS = "/sys/fs/bpf"
PIN_DIR = os.path.join(BPFFS, "bee-trace-egress")


def _is_bpffs(path: str) -> bool:
    try:
        with open("/proc/self/mounts") as f:
            return any(line.split()[1] == path and line.split()[2] == "bpf" for line in f)
    except OSError:
        return False


def ensure_bpffs() -> None:
    """Mount bpffs at /sys/fs/bpf when it is not mounted there."""
    if _is_bpffs(BPFFS):
        return
    rc = subprocess.run(["mount", "-t", "bpf", "bpf", BPFFS], capture_output=True, text=True)
    if rc.returncode != 0 or not _is_bpffs(BPFFS):
        raise OSError(f"bpffs is not mounted at {BPFFS} and mounting it failed "
                      f"({rc.stderr.strip() or 'unknown error'})")


def pinned() -> list[str]:
    try:
        return sorted(os.listdir(PIN_DIR))
    except OSError:
        return []


def unpin_all() -> int:
    """Remove every pin (detaching what only the pins kept attached); returns how many."""
    names = pinned()
    for n in names:
        os.unlink(os.path.join(PIN_DIR, n))
    if os.path.isdir(PIN_DIR):
        os.rmdir(PIN_DIR)
    return len(names)


def pin_links(links: Sequence[tuple[str, object]]) -> None:
    """Replace earlier pins with these links (the new ones are attached first: no gap)."""
    ensure_bpffs()
    unpin_all()
    os.makedirs(PIN_DIR, mode=0o700, exist_ok=True)
    for name, link in links:
        link.pin(os.path.join(PIN_DIR, name))  # type: ignore[attr-defined]
