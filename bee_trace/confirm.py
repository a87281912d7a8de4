"""Exact policy checks the kernel's superset filter cannot make: globs and exclusions on the
resolved path (or the watched inode's name), memory-access switches and exclusions, --command,
and the agent's stop requests. `Confirmer.confirm` says why an event is not shown (a `Reject`),
or None; it may add what it learned to the event (pattern, watched_path, secret_env_names)."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from enum import StrEnum
from typing import Any

from .classify import env_secret_names, file_patterns
from .config import Config
from .decode import SYMLINK_SYSCALLS
from .event import Event
from .identity import any_match
from .inodes import InodeTable, WatchedInode, kernel_dev

STOPPED_BY_KEPT = 5      # the last senders of stop requests named in the summary


class Reject(StrEnum):
    """Why an event is not shown; the value names the loss summary's count."""

    UNCONFIRMED = "unconfirmed"        # a kernel candidate that no glob matched (filter collision)
    EXCLUDED = "excluded"              # exclude_paths / exclude_processes / --command
    BELOW_SEVERITY = "below_severity"  # --filter-severity
    STOP_REQUEST = "stop_requests"     # SIGINT/SIGTERM to the agent: its sender goes in the summary


Inodes = InodeTable


class Confirmer:
    def __init__(self, cfg: Config, command: str | None, inodes: InodeTable,
                 watch_file: Callable[[WatchedInode, bool], WatchedInode | None],
                 sync_inodes: Callable[[], object] = lambda: None) -> None:
        self.cfg = cfg
        self.command = command
        self.inodes = inodes              # (dev, ino) of watched files, shared with replay
        # tells the kernel about a watched file's new name (follow symlinks?); returns it with
        # the i_generation the kernel recorded
        self.watch_file = watch_file
        self.sync_inodes = sync_inodes    # drop what the kernel dropped (when the table is full)
        self.stopped_by: list[dict[str, Any]] = []

    def confirm(self, ev: Event) -> Reject | None:
        if ev["kind"] == "tamper":
            if ev["rule"] == "tamper.stop_request":  # the documented way to stop: not an event
                sender = {k: ev.get(k) for k in ("ts", "pid", "comm", "exe", "signal")}
                self.stopped_by = (self.stopped_by + [sender])[-STOPPED_BY_KEPT:]
                return Reject.STOP_REQUEST
            return None  # aimed at the agent: never filtered away
        if self.command and self.command not in ev["comm"]:
            return Reject.EXCLUDED
        kind = ev["kind"]
        if kind == "file":
            return self._file(ev)
        if kind == "memory":
            return self._memory(ev)
        return None

    def _file(self, ev: Event) -> Reject | None:
        files = self.cfg.files
        path = ev["path"].removeprefix("…")
        # Not the watched file if its number now belongs to another (generation differs).
        watched = self.inodes.get(ev.get("dev", 0), ev.get("ino", 0), ev.get("generation"))
        by_inode = watched is not None and watched.path != path
        if by_inode:
            # The inode of a watched file under another name (hard link, bind mount, rename):
            # decided on the identity, so no exclusion of the new name applies.
            ev["watched_path"] = path = watched.path  # type: ignore[union-attr]
        elif ev["access"] in ("link", "rename"):
            return self._link(ev, path)
        excluded, pattern, write, *_ = file_patterns(files).match(path)
        if excluded and not by_inode:
            return Reject.EXCLUDED
        if ev["access"] == "write":
            pattern = write or pattern
        if not pattern:
            return Reject.UNCONFIRMED
        ev["pattern"] = pattern
        self.learn_inode(WatchedInode(ev.get("dev", 0), ev.get("ino", 0), path, ev.get("generation")))
        return None

    def _link(self, ev: Event, new: str) -> Reject | None:
        """A watched file under a new name (or a new watched name): reported, and the inode at
        the new name watched from now on (the kernel learns it too when it is opened)."""
        files = self.cfg.files
        old = ev.get("old_path") or ""
        pattern = files.read_set.match(new) or files.read_set.match(old)
        if not pattern:
            return Reject.UNCONFIRMED
        ev["pattern"] = pattern
        watched = old if files.read_set.match(old) else new
        if watched != new:
            ev["watched_path"] = watched
        follow = ev["access"] != "link" or ev["syscall"] not in SYMLINK_SYSCALLS
        try:
            st = os.stat(new, follow_symlinks=follow)
        except OSError:
            return None
        if stat.S_ISREG(st.st_mode):
            w = WatchedInode(kernel_dev(st.st_dev), st.st_ino, watched)
            # The kernel's entry first: its open by the agent records the generation.
            self.learn_inode(self.watch_file(w._replace(path=new), follow) or w, name=watched)
        return None

    def learn_inode(self, w: WatchedInode, name: str | None = None) -> None:
        """Keep the watched name of w's inode (`name` instead of w.path when given). A full
        table first follows the kernel, which drops the entries of deleted files."""
        if not w.ino:
            return
        if name is not None:
            w = w._replace(path=name)
        if (w.dev, w.ino) not in self.inodes and self.inodes.full:
            self.sync_inodes()
        self.inodes.add(w)

    def _memory(self, ev: Event) -> Reject | None:
        mem = self.cfg.memory
        protected = ev.get("target_comm") in mem.protected_processes
        # Nothing excludes access to a protected process; exclusions match the executable.
        if not protected and (not mem.alert_on_memory_access
                              or any_match(mem.exclude_processes, ev["comm"], ev["exe"])):
            return Reject.EXCLUDED
        if ev.get("technique") == "proc_environ":
            ev["secret_env_names"] = read_secret_env_names(ev["target_pid"], mem.secret_env_patterns)
        return None


def read_secret_env_names(pid: int, patterns: Any) -> list[str]:
    """Names (never values) of the secret-looking variables in /proc/PID/environ; [] if gone."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            return env_secret_names(f.read(), patterns)
    except OSError:
        return []
