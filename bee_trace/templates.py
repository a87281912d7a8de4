"""Templates for repeated records: an event already decoded, confirmed and classified for one
process and one path or destination stands for every later record that reports the same thing;
only the per-record fields (time, tid, cpu, seq) differ. Rejections are remembered the same way."""

from __future__ import annotations

import numpy as np

from . import records as R
from .confirm import Reject
from .event import Event


class TemplateCache:
    def __init__(self, capacity: int = 4096) -> None:
        self.capacity = capacity
        self.templates: dict[bytes, Event] = {}
        self.rejected: dict[bytes, Reject] = {}
        self._by_pid: dict[int, list[bytes]] = {}

    def remember(self, key: bytes, tgid: int, ev: Event, reason: Reject | None) -> None:
        """Keep the shown event, or why it was not shown."""
        if len(self.templates) + len(self.rejected) >= self.capacity:
            self.templates.clear()
            self.rejected.clear()
            self._by_pid.clear()
        if reason is None:
            self.templates[key] = ev
        else:
            self.rejected[key] = reason
        self._by_pid.setdefault(tgid, []).append(key)

    def forget(self, tgid: int) -> None:
        """exec/exit change what a pid's events say (exe, cmdline, ancestry); so can a DNS query
        (how its destinations are named)."""
        for key in self._by_pid.pop(tgid, ()):
            self.templates.pop(key, None)
            self.rejected.pop(key, None)


# Bytes of a record that differ between records reporting the same thing: lane, cpu, seq,
# ts_ns and tid in the header. They are zeroed before the rest is used as the key.
_PER_RECORD_BYTES = [R.field_span(R.header_dtype, "lane"), R.field_span(R.header_dtype, "cpu", "seq", "ts_ns"),
                     R.field_span(R.header_dtype, "tid")]
_HDR = R.header_dtype.itemsize
_NET_LEN = R.net_dtype.itemsize


def template_keys(batch: np.ndarray, types: list[int]) -> tuple[list[bytes | None], list[int]]:
    """Per record, the bytes that say what it reports (None where no template may be used:
    long paths and differing caller strings span several records, DNS sends depend on their payload, other record types
    are rare or change state), and its tgid. Built with whole-batch numpy operations."""
    n = len(types)
    h = batch["h"]
    typ = h["type"]
    use = np.zeros(n, dtype=bool)
    raw = batch.view(np.uint8).reshape(n, -1)
    is_file = typ == R.EV_FILE
    if is_file.any():
        # Records with continuations carry only the tail here: decode those one by one.
        use |= is_file & ((h["flags"] & R.EVF_CHAINED) == 0)
    is_net = typ == R.EV_NET
    if is_net.any():
        use |= is_net & (batch["u"]["net"]["dport"] != R.DNS_PORT)
    tgids = h["tgid"].tolist()
    if not use.any():
        return [None] * n, tgids
    raw = raw.copy()
    for lo, hi in _PER_RECORD_BYTES:
        raw[:, lo:hi] = 0
    raw[is_net, _HDR + _NET_LEN:] = 0  # unused union bytes of network records are stale memory
    keys = raw.view(f"V{raw.shape[1]}").ravel().tolist()
    return [k if u else None for k, u in zip(keys, use.tolist())], tgids
