"""BPF ring buffer reader over our own mmap: a whole pending region is copied out at once and its
record headers unpacked in one struct call.

Layout of a BPF_MAP_TYPE_RINGBUF mapping: page 0 holds the consumer position (we write it),
page 1 the producer position, then the data pages mapped twice in a row so a region that wraps is
still contiguous. Every record here has the same size, so the region [consumer, producer) is an
array of (8-byte header, struct event) until the first record that is still being written.
Direct reads rely on x86-64's ordering of loads (arm64 would need acquire fences)."""

from __future__ import annotations

import mmap
import os
import select
import struct
from dataclasses import dataclass, field

import numpy as np

from . import records as R
from .record_view import H_CPU, H_FLAGS, H_SEQ, H_TGID, H_TID, H_TS, H_TYPE, HEADER

_BUSY = 1 << 31
_DISCARD = 1 << 30
_PAGE = mmap.PAGESIZE
_HEADER = R.RING_STRIDE - R.EVENT_SIZE  # the ring's own 8-byte record header
# One struct per record slot: the ring's len word, then the event header (record_view.HEADER),
# the rest skipped. struct.iter_unpack turns a whole region into header tuples in one C call.
_SCAN = struct.Struct(f"<I{_HEADER - 4}x" + HEADER.struct.format.lstrip("<")
                      + f"{R.RING_STRIDE - _HEADER - HEADER.struct.size}x")
assert _SCAN.size == R.RING_STRIDE
_LEN = struct.Struct("<I")
# Header tuple positions (tuple[0] is the ring's len word): record_view.H.
__all__ = ["H_CPU", "H_FLAGS", "H_SEQ", "H_TGID", "H_TID", "H_TS", "H_TYPE", "Batch", "RingError",
           "RingReader", "RingSet", "SeqTracker"]


class RingError(RuntimeError):
    pass


@dataclass(slots=True)
class Batch:
    """Records read in one go: the ring region's bytes and, per record kept, its header tuple
    (positions H_*) and where the record starts in `raw`."""

    raw: bytes
    headers: list[tuple] = field(default_factory=list)
    offsets: list[int] = field(default_factory=list)

    @classmethod
    def of(cls, events: np.ndarray) -> Batch:
        """A batch of records given as a numpy array (tests, tools), as a ring read gives it."""
        stride = R.RING_STRIDE
        slots = np.zeros(len(events), dtype=R.ring_record_dtype)
        slots["len"] = R.EVENT_SIZE
        slots["ev"] = events
        raw = slots.tobytes()
        return cls(raw, list(_SCAN.iter_unpack(raw)), list(range(_HEADER, len(raw), stride)))

    def __len__(self) -> int:
        return len(self.headers)

    @property
    def events(self) -> np.ndarray:
        """The records as a numpy array (tests, tools; the pipeline reads views)."""
        if not self.headers:
            return np.empty(0, dtype=R.event_dtype)
        return np.frombuffer(b"".join(self.raw[o:o + R.EVENT_SIZE] for o in self.offsets),
                             dtype=R.event_dtype)

    def __getitem__(self, part: str) -> np.ndarray:
        return self.events[part]


_EMPTY = Batch(b"")


@dataclass
class SeqTracker:
    """Per-CPU sequence bookkeeping for one lane: max seq seen and records received, so
    `max_seq - received` is the number of records the kernel numbered but never delivered."""

    ncpus: int
    max_seq: list[int] = field(init=False)
    received: list[int] = field(init=False)

    def __post_init__(self) -> None:
        self.max_seq = [0] * self.ncpus
        self.received = [0] * self.ncpus

    def observe(self, headers: list[tuple]) -> None:
        max_seq, received = self.max_seq, self.received
        for t in headers:
            cpu, seq = t[H_CPU], t[H_SEQ]
            if seq > max_seq[cpu]:
                max_seq[cpu] = seq
            received[cpu] += 1

    def missing(self) -> int:
        return sum(self.max_seq) - sum(self.received)


class RingReader:
    """One ring map: batch reads of fixed-size records."""

    def __init__(self, map_fd: int, size: int, lane: int, ncpus: int) -> None:
        self.fd = map_fd
        self.size = size
        self.lane = lane
        self._mask = size - 1
        self._cons_mm = mmap.mmap(map_fd, _PAGE, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE, offset=0)
        self._prod_mm = mmap.mmap(map_fd, _PAGE + 2 * size, mmap.MAP_SHARED, mmap.PROT_READ, offset=_PAGE)
        # The positions as plain 8-byte words: read after every wake-up, where numpy's scalar
        # indexing cost more than the read itself.
        self._cons = memoryview(self._cons_mm)[:8].cast("Q")
        self._prod = memoryview(self._prod_mm)[:8].cast("Q")
        self.seq = SeqTracker(ncpus)
        self.records = 0
        self.batches = 0

    def lag_bytes(self) -> int:
        """Bytes produced but not yet consumed (the backpressure signal)."""
        return self._prod[0] - self._cons[0]

    def read_batch(self, max_records: int = 1 << 16) -> Batch:
        """Copy out every committed record up to the first busy one and release their space."""
        cons = self._cons[0]
        prod = self._prod[0]
        if prod == cons:
            return _EMPTY
        n = min((prod - cons) // R.RING_STRIDE, max_records)
        start = _PAGE + (cons & self._mask)   # contiguous to the end: the data is mapped twice
        mm, stride = self._prod_mm, R.RING_STRIDE
        # The len words first, the records after: a committed len (the kernel's release store)
        # then guarantees a whole record on x86-64; one memcpy of the region could read a
        # record's tail before its len.
        keep = []
        taken = 0
        while taken < n:
            length = _LEN.unpack_from(mm, start + taken * stride)[0]
            if length & _BUSY:
                break
            if length & ~_DISCARD != R.EVENT_SIZE:
                raise RingError("ring record of unexpected size: the BPF object and records.py disagree")
            keep.append(not length & _DISCARD)
            taken += 1
        if not taken:
            return _EMPTY
        raw = mm[start:start + taken * stride]
        self._cons[0] = cons + taken * stride
        headers = _SCAN.iter_unpack(raw)
        if all(keep):
            batch = Batch(raw, list(headers), list(range(_HEADER, taken * stride, stride)))
        else:
            batch = Batch(raw, [t for t, k in zip(headers, keep) if k],
                          [i * stride + _HEADER for i, k in enumerate(keep) if k])
        self.seq.observe(batch.headers)
        self.records += len(batch)
        self.batches += 1
        return batch

    def close(self) -> None:
        self._cons.release()
        self._prod.release()
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
        self._wake_r = self._wake_w = -1

    def wake_fd(self) -> int:
        """A non-blocking fd whose writes end wait() at once (signal.set_wakeup_fd: a signal then
        ends the slow idle wait instead of waiting out its timeout). Created on first call."""
        if self._wake_w < 0:
            self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
            self._ep.register(self._wake_r, select.EPOLLIN)
        return self._wake_w

    def wait(self, timeout_s: float) -> None:
        for fd, _ in self._ep.poll(timeout_s):
            if fd == self._wake_r:
                try:
                    os.read(fd, 4096)   # emptied, so the next wait sleeps again
                except BlockingIOError:
                    pass

    def close(self) -> None:
        self._ep.close()
        for fd in (self._wake_r, self._wake_w):
            if fd >= 0:
                os.close(fd)
        self._wake_r = self._wake_w = -1
        for r in self.rings:
            r.close()
