"""Templates for repeated records: an event already decoded, confirmed and classified for one
process and one path or destination stands for every later record that reports the same thing;
only the per-record fields (time, tid, cpu, seq) differ. Rejections are remembered the same way."""

from __future__ import annotations

from . import records as R
from .confirm import Reject
from .event import Event


class TemplateCache:
    def __init__(self, capacity: int = 4096) -> None:
        self.capacity = capacity
        self.templates: dict[bytes, Event] = {}
        self.rejected: dict[bytes, Reject] = {}
        self._by_pid: dict[int, list[bytes]] = {}
        self.evictions = 0      # entries dropped because the cache was full

    def __len__(self) -> int:
        return len(self.templates) + len(self.rejected)

    def remember(self, key: bytes, tgid: int, ev: Event, reason: Reject | None) -> None:
        """Keep the shown event, or why it was not shown (a full cache starts over: cheaper
        than an LRU on the hot path, and a flood of distinct records refills it in seconds)."""
        if len(self.templates) + len(self.rejected) >= self.capacity:
            self.evictions += len(self.templates) + len(self.rejected)
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
# ts_ns and tid in the header. The key is the record without them.
_PER_RECORD_BYTES = sorted([R.field_span(R.header_dtype, "lane"),
                            R.field_span(R.header_dtype, "cpu", "seq", "ts_ns"),
                            R.field_span(R.header_dtype, "tid")])
_HDR = R.header_dtype.itemsize
_NET_END = _HDR + R.net_dtype.itemsize   # the rest of a network record's union is stale memory
_DPORT = _HDR + R.field_offset(R.net_dtype, "dport")
_DNS_PORT = R.DNS_PORT.to_bytes(2, "little")


def _kept_spans(end: int) -> list[tuple[int, int]]:
    spans, pos = [], 0
    for lo, hi in _PER_RECORD_BYTES:
        spans.append((pos, lo))
        pos = hi
    spans.append((pos, end))
    return [(lo, hi) for lo, hi in spans if hi > lo]


_FILE_SPANS = _kept_spans(R.EVENT_SIZE)
_NET_SPANS = _kept_spans(_NET_END)


def template_key(raw: bytes, off: int, kind: int, flags: int) -> bytes | None:
    """The bytes that say what the record at raw[off:] reports; None where no template may be
    used: long paths and differing caller strings span several records, DNS sends depend on
    their payload, other record types are rare or change state."""
    if kind == R.EV_FILE:
        if flags & R.EVF_CHAINED:   # only the tail is here: decode these one by one
            return None
        spans = _FILE_SPANS
    elif kind == R.EV_NET:
        if raw[off + _DPORT:off + _DPORT + 2] == _DNS_PORT:
            return None
        spans = _NET_SPANS
    else:
        return None
    return b"".join([raw[off + lo:off + hi] for lo, hi in spans])
