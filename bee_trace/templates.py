"""Templates for repeated records: an event already decoded, confirmed and classified for one
process and one path or destination stands for every later record that reports the same thing;
only the per-record fields (time, tid, cpu, seq) differ. Rejections are remembered the same way."""

from __future__ import annotations

import numpy as np

from . import records as R
from .decode import Event

DNS_PORT = 53


class TemplateCache:
    def __init__(self, capacity: int = 4096) -> None:
        self.capacity = capacity
        self.templates: dict[tuple, Event] = {}
        self.rejected: dict[tuple, str] = {}
        self._by_pid: dict[int, list[tuple]] = {}

    def remember(self, key: tuple, ev: Event, reason: str | None) -> None:
        """Keep the shown event, or why it was not shown (a Stats field name)."""
        if len(self.templates) + len(self.rejected) >= self.capacity:
            self.templates.clear()
            self.rejected.clear()
            self._by_pid.clear()
        if reason is None:
            self.templates[key] = ev
        else:
            self.rejected[key] = reason
        self._by_pid.setdefault(key[1], []).append(key)

    def forget(self, tgid: int) -> None:
        """exec/exit change what a pid's events say (exe, cmdline, ancestry); so can a DNS query
        (how its destinations are named)."""
        for key in self._by_pid.pop(tgid, ()):
            self.templates.pop(key, None)
            self.rejected.pop(key, None)


def template_keys(batch: np.ndarray, types: list[int]) -> list[tuple | None]:
    """Per record, what makes two records report the same thing (type and tgid first); None
    where no template may be used: relative paths depend on the cwd at the time, DNS sends on
    their payload, and other record types are rare or change state."""
    keys: list[tuple | None] = [None] * len(types)
    has_file, has_net = R.EV_FILE in types, R.EV_NET in types
    if not (has_file or has_net):
        return keys
    h = batch["h"]
    ident = list(zip(types, h["tgid"].tolist(), h["uid"].tolist(), h["ppid"].tolist(),
                     h["cgroup_id"].tolist(), h["comm"].tolist(), h["flags"].tolist()))
    if has_file:
        f = batch["u"]["file"]
        for i, (plen, path) in enumerate(zip(f["path_len"].tolist(), f["path"].view("S256").tolist())):
            if types[i] == R.EV_FILE and path.startswith(b"/"):
                keys[i] = ident[i] + (plen, path)
    if has_net:
        n = batch["u"]["net"]
        cols = zip(n["family"].tolist(), n["dport"].tolist(), n["protocol"].tolist(),
                   n["action"].tolist(), n["syscall"].tolist(), n["daddr"].view("S16").tolist())
        for i, (fam, dport, proto, action, nr, daddr) in enumerate(cols):
            if types[i] == R.EV_NET and dport != DNS_PORT:
                keys[i] = ident[i] + (fam, dport, proto, action, nr, daddr)
    return keys
