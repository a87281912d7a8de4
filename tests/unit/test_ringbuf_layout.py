"""RingReader over a memory region laid out as the kernel lays out a BPF ring buffer mapping
(consumer page, producer page, data pages twice in a row), so the reader is exercised without
root; tests/kernel/test_ringbuf.py does the same against a real ring written by BPF."""

from __future__ import annotations

import mmap
import os
import struct
from collections.abc import Iterator

import numpy as np
import pytest

from bee_trace import records as R
from bee_trace.ringbuf import RingError, RingReader

PAGE = mmap.PAGESIZE
SIZE = 4 * PAGE
BUSY, DISCARD = 1 << 31, 1 << 30


class KernelLayout:
    """A memfd holding what the kernel maps: writes go to a data offset and its mirror."""

    def __init__(self) -> None:
        self.fd = os.memfd_create("ringbuf-layout")
        os.ftruncate(self.fd, 2 * PAGE + 2 * SIZE)
        self.prod = 0

    def put(self, seq: int, cpu: int = 0, flags: int = 0, length: int = R.EVENT_SIZE) -> int:
        """Append one record at the producer position; returns its position."""
        pos = self.prod
        ev = np.zeros(1, dtype=R.event_dtype)
        ev["h"]["seq"], ev["h"]["cpu"], ev["h"]["tgid"], ev["h"]["type"] = seq, cpu, seq, R.EV_NET
        rec = struct.pack("<II", length | flags, 0) + ev.tobytes()
        off = pos & (SIZE - 1)
        for base in (2 * PAGE + off, 2 * PAGE + SIZE + off):       # the double mapping
            os.pwrite(self.fd, rec[:2 * SIZE - (base - 2 * PAGE)], base)
        if off + len(rec) > SIZE:                                   # wrapped: head of the data
            os.pwrite(self.fd, rec[SIZE - off:], 2 * PAGE)
        self.prod = pos + R.RING_STRIDE
        os.pwrite(self.fd, struct.pack("<Q", self.prod), PAGE)
        return pos

    def set_len(self, pos: int, value: int) -> None:
        off = pos & (SIZE - 1)
        for base in (2 * PAGE + off, 2 * PAGE + SIZE + off):
            os.pwrite(self.fd, struct.pack("<I", value), base)


@pytest.fixture
def ring() -> Iterator[tuple[KernelLayout, RingReader]]:
    k = KernelLayout()
    reader = RingReader(k.fd, SIZE, R.LANE_BULK, 2)
    yield k, reader
    reader.close()
    os.close(k.fd)


def test_wrapped_records_read_whole_from_the_double_mapping(ring) -> None:
    k, reader = ring
    fits = SIZE // R.RING_STRIDE
    seq = 1
    for _ in range(5):                                      # 5 rounds cross the end 3+ times
        for _ in range(fits - 3):
            k.put(seq)
            seq += 1
        batch = reader.read_batch()
        assert batch["h"]["tgid"].tolist() == batch["h"]["seq"].tolist()   # no torn record
        assert len(batch) == fits - 3
    assert reader.records == seq - 1 and reader.seq.missing() == 0
    assert int(reader._cons[0]) == (seq - 1) * R.RING_STRIDE


def test_busy_record_stops_the_batch_and_discarded_ones_are_skipped(ring) -> None:
    k, reader = ring
    k.put(1)
    skip = k.put(2)
    busy = k.put(3)
    k.put(4)
    k.set_len(skip, R.EVENT_SIZE | DISCARD)
    k.set_len(busy, R.EVENT_SIZE | BUSY)
    assert reader.read_batch()["h"]["seq"].tolist() == [1]      # 2 discarded, stop at 3
    assert int(reader._cons[0]) == 2 * R.RING_STRIDE            # the discarded space is freed
    assert len(reader.read_batch()) == 0
    k.set_len(busy, R.EVENT_SIZE)                                # committed
    assert reader.read_batch()["h"]["seq"].tolist() == [3, 4]
    assert reader.seq.missing() == 1                             # seq 2 never delivered


def test_wrong_size_is_an_error(ring) -> None:
    k, reader = ring
    k.put(1, length=R.EVENT_SIZE - 8)
    with pytest.raises(RingError):
        reader.read_batch()


def test_sequence_gaps_are_per_cpu(ring) -> None:
    k, reader = ring
    for seq in (1, 2, 5):
        k.put(seq, cpu=0)
    for seq in (1, 2, 3):
        k.put(seq, cpu=1)
    reader.read_batch()
    assert reader.seq.max_seq == [5, 3] and reader.seq.received == [3, 3]
    assert reader.seq.missing() == 2
