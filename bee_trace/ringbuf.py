"""BPF ring buffer reader over our own mmap: a whole pending region becomes one numpy array.

Layout of a BPF_MAP_TYPE_RINGBUF mapping: page 0 holds the consumer position (we write it),
page 1 the producer position, then the data pages mapped twice in a row so a region that wraps is
still contiguous. Every record here has the same size, so the region [consumer, producer) is an
array of (8-byte header, struct event) until the first record that is still being written.
Direct reads rely on x86-64's ordering of loads (arm64 would need acquire fences)."""

from __future__ import annotations

import mmap
import select
from dataclasses import dataclass, field

import numpy as np

from . import records as R

_BUSY = np.uint32(1 << 31)
_DISCARD = np.uint32(1 << 30)
_PAGE = mmap.PAGESIZE
_HEADER = R.RING_STRIDE - R.EVENT_SIZE  # the ring's own 8-byte record header


_EMPTY = np.empty(0, dtype=R.event_dtype)
_EMPTY.flags.writeable = False


class RingError(RuntimeError):
    pass


@dataclass
class SeqTracker:
    """Per-CPU sequence bookkeeping for one lane: max seq seen and records received, so
    `max_seq - received` is the number of records the kernel numbered but never delivered."""

    ncpus: int
    max_seq: np.ndarray = field(init=False)
    received: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.max_seq = np.zeros(self.ncpus, dtype=np.uint64)
        self.received = np.zeros(self.ncpus, dtype=np.uint64)

    def observe(self, events: np.ndarray) -> None:
        if not len(events):
            return
        cpu = events["h"]["cpu"].astype(np.intp)
        np.maximum.at(self.max_seq, cpu, events["h"]["seq"])
        np.add.at(self.received, cpu, np.uint64(1))

    def missing(self) -> int:
        return int((self.max_seq - self.received).sum())


class RingReader:
    """One ring map: batch reads of fixed-size records."""

    def __init__(self, map_fd: int, size: int, lane: int, ncpus: int) -> None:
        self.fd = map_fd
        self.size = size
        self.lane = lane
        self._mask = size - 1
        self._cons_mm = mmap.mmap(map_fd, _PAGE, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE, offset=0)
        self._prod_mm = mmap.mmap(map_fd, _PAGE + 2 * size, mmap.MAP_SHARED, mmap.PROT_READ, offset=_PAGE)
        self._cons = np.frombuffer(self._cons_mm, dtype="<u8", count=1)
        self._prod = np.frombuffer(self._prod_mm, dtype="<u8", count=1)
        self._data = np.frombuffer(self._prod_mm, dtype=np.uint8, offset=_PAGE)
        self.seq = SeqTracker(ncpus)
        self.records = 0
        self.batches = 0

    def lag_bytes(self) -> int:
        """Bytes produced but not yet consumed (the backpressure signal)."""
        return int(self._prod[0]) - int(self._cons[0])

    def read_batch(self, max_records: int = 1 << 16) -> np.ndarray:
        """Copy out every committed record up to the first busy one and release their space."""
        cons = int(self._cons[0])
        prod = int(self._prod[0])
        if prod == cons:
            return _EMPTY
        n = min((prod - cons) // R.RING_STRIDE, max_records)
        off = cons & self._mask
        view = self._data[off:off + n * R.RING_STRIDE].view(R.ring_record_dtype)
        lens = view["len"]
        busy = (lens & _BUSY) != 0
        if busy.any():
            n = int(np.argmax(busy))
            view, lens = view[:n], lens[:n]
        if not n:
            return _EMPTY
        if np.any((lens & ~(_BUSY | _DISCARD)) != R.EVENT_SIZE):
            raise RingError("ring record of unexpected size: the BPF object and records.py disagree")
        # A byte copy viewed as records: copying the structured field itself goes field by
        # field through every union member (~50 µs even for one record).
        rows = self._data[off:off + n * R.RING_STRIDE].reshape(n, R.RING_STRIDE)[:, _HEADER:]
        keep = (lens & _DISCARD) == 0
        if not keep.all():
            rows = rows[keep]
        events = np.frombuffer(rows.copy(), dtype=R.event_dtype)
        self._cons[0] = cons + n * R.RING_STRIDE
        self.seq.observe(events)
        self.records += len(events)
        self.batches += 1
        return events

    def close(self) -> None:
        del self._cons, self._prod, self._data
        self._cons_mm.close()
        self._prod_mm.close()


class RingSet:
    """The critical and bulk rings behind one epoll. Critical records wake us at once; bulk ones
    are read after a backlog wake-up or when the timeout (the bulk latency bound) passes.
    The reading order between them is the pipeline's (Pipeline.drain)."""

    def __init__(self, rings: list[RingReader]) -> None:
        self.rings = rings
        self._ep = select.epoll()
        for r in rings:
            self._ep.register(r.fd, select.EPOLLIN)

    def wait(self, timeout_s: float) -> None:
        self._ep.poll(timeout_s)

    def close(self) -> None:
        self._ep.close()
        for r in self.rings:
            r.close()
