"""Userspace side of the critical lane's flood defences (bpf/critical.h): the counts the kernel
folded are reported as copies of the first event with `count` (exact sums), and the events it
spilled while the ring was full are read back from the spill map and reported `late: true`."""

from __future__ import annotations

import copy
from collections import OrderedDict
from collections.abc import Callable

from . import records as R
from .event import Event

FoldKey = tuple[int, int, int, int]
REMEMBERED = 8192          # first events kept to name later counts
REJECTED_KEYS = 65536      # keys whose first event policy did not show (compact: keys only)


def fold_key(ev: Event) -> FoldKey | None:
    """The kernel's fold key (struct fold_key) of a decoded event, or None if it is not folded."""
    if ev.get("aggregated"):
        return None
    # proc_fd of a pipe/memfd is folded by the file it reached, like a file open
    by_file = ev["kind"] == "file" or ev.get("technique") == "proc_fd"
    if by_file and ev.get("access") in ("read", "write") and ev.get("ino"):
        write = 1 if ev["access"] == "write" else 0
        uid = ev.get("uid", 0) & 0x7FFFFFFF
        return (ev["pid"], R.EV_FILE, ev["ino"], ev["dev"] | write << 32 | uid << 33)
    if ev["kind"] == "memory":
        tech = next((k for k, v in R.TECHNIQUES.items() if v == ev.get("technique")), 0)
        request = ev.get("ptrace_request", 0) & 0xFFFFFF
        return (ev["pid"], R.EV_MEM, tech | request << 8 | ev.get("uid", 0) << 32, ev["target_pid"])
    return None


class FoldTracker:
    """Remembers the first event of every fold key and turns the growth of the kernel's
    cumulative counts into summary events."""

    def __init__(self) -> None:
        # the first event of each key, or None when policy did not show it (its repeats are not
        # shown either: counted as `rejected`)
        self.first: OrderedDict[FoldKey, Event | None] = OrderedDict()
        self.hidden: OrderedDict[FoldKey, None] = OrderedDict()
        self.seen: dict[FoldKey, int] = {}
        self.reported = 0          # folded events reported as counts
        self.rejected = 0          # folded repeats of events policy did not show
        self.unnamed = 0           # folded events whose first event was forgotten: not reported
        self.unnamed_keys: list[FoldKey] = []    # the last few of them (the summary shows them)
        self.first_evictions = 0   # first events forgotten (a later count is rebuilt from its key)
        self.hidden_evictions = 0  # hidden keys forgotten (a later count of one is then shown)

    def remember(self, ev: Event, shown: bool = True) -> None:
        key = fold_key(ev)
        if key is None:
            return
        if not shown:
            self.hidden[key] = None
            self.hidden.move_to_end(key)
            while len(self.hidden) > REJECTED_KEYS:
                self.hidden.popitem(last=False)
                self.hidden_evictions += 1
            return
        self.first[key] = ev
        self.first.move_to_end(key)
        while len(self.first) > REMEMBERED:
            self.first.popitem(last=False)
            self.first_evictions += 1

    def forget_counts(self, keys: list[FoldKey]) -> None:
        """Keys whose kernel counts were deleted (reported up to then)."""
        for key in keys:
            self.seen.pop(key, None)

    def summaries(self, counts: dict[FoldKey, int],
                  rebuild: Callable[[FoldKey], Event | None] | None = None) -> list[Event]:
        """Summary events for the growth of each count; a key whose first event was forgotten
        (a flood of distinct events pushed it out) is rebuilt from what the key names."""
        out = []
        seen, self.seen = self.seen, dict(counts)   # only live entries: the map is bounded
        for key, total in counts.items():
            delta = total - seen.get(key, 0)
            if delta <= 0:
                continue
            if key in self.hidden:
                self.rejected += delta
                continue
            if key not in self.first:
                rebuilt = rebuild(key) if rebuild else None
                if rebuilt is None:
                    self.unnamed += delta
                    self.unnamed_keys = (self.unnamed_keys + [key])[-5:]
                    continue
                self.first[key] = rebuilt
            first = self.first[key]
            if first is None:
                self.rejected += delta
                continue
            ev = copy.copy(first)
            ev.pop("_template", None)
            ev["count"] = delta
            ev["aggregated"] = True
            self.reported += delta
            out.append(ev)
        return out
