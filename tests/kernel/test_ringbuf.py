"""bee_trace/ringbuf.py over a real BPF ring buffer: records written by a test-only
BPF_PROG_TYPE_SYSCALL program (tests/bpf/ringfeed.bpf.c, run with BPF_PROG_TEST_RUN) and read
back by RingReader from its own mmap: order, wrap-around, partial batches, busy and discard
bits, a record of the wrong size, and per-CPU sequence tracking of gaps."""

from __future__ import annotations

import mmap
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bee_trace import records as R
from bee_trace._libbpf import Object, Program
from bee_trace.ringbuf import RingError, RingReader

FEED_OBJECT = Path(__file__).resolve().parents[2] / "build" / "tests" / "ringfeed.bpf.o"
RING = 1 << 14                     # 16 KiB: 47 records fit
FITS = RING // R.RING_STRIDE
NCPUS = 4
# struct feed_args: count, cpu, first_seq, discard_every, hold_first, short_record, tag,
# then out: reserved, failed, discarded, released.
ARGS = struct.Struct("<IIQIIIIIIII")
OUT = ("reserved", "failed", "discarded", "released")


def run_feed(prog: Program, count: int, *, cpu: int = 0, first_seq: int = 1, discard_every: int = 0,
             hold_first: bool = False, short_record: bool = False, tag: int = 0) -> dict[str, int]:
    ctx = bytearray(ARGS.pack(count, cpu, first_seq, discard_every, int(hold_first),
                              int(short_record), tag, 0, 0, 0, 0))
    assert prog.test_run(ctx) == 0
    return dict(zip(OUT, ARGS.unpack(bytes(ctx))[7:]))


class Feed:
    """The ringfeed program and its ring, with a RingReader over that ring."""

    def __init__(self) -> None:
        self.obj = Object(str(FEED_OBJECT))
        self.obj.map("ring").set_max_entries(RING)
        self.obj.load()
        (self.prog,) = self.obj.programs()
        self.reader = RingReader(self.obj.map("ring").fd, RING, R.LANE_BULK, NCPUS)

    def __call__(self, count: int, **kw: Any) -> dict[str, int]:
        return run_feed(self.prog, count, **kw)

    def release(self) -> None:
        self.obj.map("release").update(struct.pack("<I", 0), struct.pack("<I", 1))

    def consumer(self) -> int:
        return int(self.reader._cons[0])

    def close(self) -> None:
        self.reader.close()
        self.obj.close()


@pytest.fixture
def feed() -> Iterator[Feed]:
    if not FEED_OBJECT.exists():
        pytest.skip(f"{FEED_OBJECT} not built (run `make bpf`)")
    f = Feed()
    yield f
    f.close()


def test_committed_records_come_back_in_order_and_their_space_is_released(feed: Feed) -> None:
    assert feed(10, first_seq=1, tag=7) == {"reserved": 10, "failed": 0, "discarded": 0, "released": 0}
    assert feed.reader.lag_bytes() == 10 * R.RING_STRIDE
    batch = feed.reader.read_batch()
    assert batch.events.dtype == R.event_dtype and len(batch) == 10
    assert batch["h"]["tgid"].tolist() == list(range(10))
    assert batch["h"]["seq"].tolist() == list(range(1, 11))
    assert set(batch["h"]["tid"].tolist()) == {7} and set(batch["h"]["type"].tolist()) == {R.EV_NET}
    assert feed.consumer() == 10 * R.RING_STRIDE and feed.reader.lag_bytes() == 0
    assert len(feed.reader.read_batch()) == 0
    assert feed.reader.records == 10 and feed.reader.batches == 1
    assert feed.reader.seq.missing() == 0


def test_wrap_around_reads_records_that_straddle_the_end_of_the_ring(feed: Feed) -> None:
    per_round = 40                          # < FITS, so consecutive rounds cross the end
    seen: list[int] = []
    wrapped = 0
    for r in range(6):
        start = feed.consumer() & (RING - 1)
        out = feed(per_round, first_seq=1 + r * per_round, tag=r)
        assert out["reserved"] == per_round and out["failed"] == 0
        wrapped += start + per_round * R.RING_STRIDE > RING
        batch = feed.reader.read_batch()
        assert batch["h"]["tid"].tolist() == [r] * per_round
        assert batch["h"]["tgid"].tolist() == list(range(per_round))   # no torn record
        seen += batch["h"]["seq"].tolist()
    assert wrapped >= 4, "the rounds never crossed the end of the ring: the test proves nothing"
    assert seen == list(range(1, 6 * per_round + 1))
    assert feed.consumer() == 6 * per_round * R.RING_STRIDE     # positions grow, never wrap
    assert feed.reader.seq.missing() == 0


def test_max_records_reads_part_and_leaves_the_rest(feed: Feed) -> None:
    feed(30)
    first = feed.reader.read_batch(max_records=8)
    assert first["h"]["tgid"].tolist() == list(range(8))
    assert feed.reader.lag_bytes() == 22 * R.RING_STRIDE
    rest = feed.reader.read_batch()
    assert rest["h"]["tgid"].tolist() == list(range(8, 30))
    assert feed.reader.lag_bytes() == 0


def test_discarded_records_are_skipped_their_space_freed_and_their_numbers_missing(feed: Feed) -> None:
    out = feed(20, discard_every=4)
    assert out == {"reserved": 20, "failed": 0, "discarded": 5, "released": 0}
    batch = feed.reader.read_batch()
    assert batch["h"]["tgid"].tolist() == [i for i in range(20) if (i + 1) % 4]
    assert feed.consumer() == 20 * R.RING_STRIDE        # discarded space is released too
    assert feed.reader.records == 15
    # Delivered numbers 1..19 minus the discarded: the tracker reports exactly those as missing.
    assert feed.reader.seq.missing() == 4    # 4, 8, 12, 16 (20 is the last: max_seq is 19)


def test_busy_record_ends_the_batch_until_it_is_committed(feed: Feed) -> None:
    feed(3, tag=1)                                # committed before the busy one
    result: dict[str, int] = {}
    t = threading.Thread(target=lambda: result.update(feed(5, hold_first=True, first_seq=4, tag=2)))
    t.start()
    try:
        # The producer position moves at reservation: wait for the held record and the 5 after it.
        deadline = time.monotonic() + 10
        while feed.reader.lag_bytes() < 9 * R.RING_STRIDE and time.monotonic() < deadline:
            pass
        assert feed.reader.lag_bytes() == 9 * R.RING_STRIDE
        before = feed.reader.read_batch()
        assert before["h"]["tid"].tolist() == [1, 1, 1]     # up to the busy record, not past it
        assert feed.consumer() == 3 * R.RING_STRIDE
        # The 5 committed records behind the busy one stay unread.
        assert len(feed.reader.read_batch()) == 0 and feed.consumer() == 3 * R.RING_STRIDE
    finally:
        feed.release()
        t.join(timeout=30)
    assert result["released"] == 1, "the program's spin timed out before the test looked"
    after = feed.reader.read_batch()
    assert after["h"]["tgid"].tolist() == [0xffff, 0, 1, 2, 3, 4]
    assert after["h"]["tid"].tolist() == [2] * 6


def test_full_ring_refuses_records_and_the_sequence_gap_shows_them(feed: Feed) -> None:
    out = feed(FITS + 13, first_seq=1)
    assert out["reserved"] == FITS and out["failed"] == 13
    assert len(feed.reader.read_batch()) == FITS
    assert feed.reader.seq.missing() == 0       # nothing after the refused ones yet
    # Like the emit path, every attempt took a number: the next delivered record shows the gap.
    feed(5, first_seq=FITS + 14)
    assert feed.reader.read_batch()["h"]["seq"].tolist() == list(range(FITS + 14, FITS + 19))
    assert feed.reader.seq.missing() == 13


def test_sequence_tracking_is_per_cpu(feed: Feed) -> None:
    feed(10, cpu=0, first_seq=1)
    feed(6, cpu=2, first_seq=1, discard_every=3)   # cpu 2 loses attempts 3 and 6 -> 1 gap seen
    feed(4, cpu=3, first_seq=1)
    feed.reader.read_batch()
    assert feed.reader.seq.max_seq == [10, 0, 5, 4]
    assert feed.reader.seq.received == [10, 0, 4, 4]
    assert feed.reader.seq.missing() == 1


def test_record_of_another_size_is_an_error_not_garbage(feed: Feed) -> None:
    feed(2, short_record=True)
    with pytest.raises(RingError, match="unexpected size"):
        feed.reader.read_batch()
    assert feed.consumer() == 0                # nothing consumed


def test_reader_sees_the_kernel_layout_of_a_record(feed: Feed) -> None:
    """The 8-byte ring header (length, page offset) the reader relies on, read raw."""
    feed(1, first_seq=99)
    page = mmap.PAGESIZE   # the data pages follow the producer page of this mapping
    raw = np.frombuffer(feed.reader._prod_mm[page:page + R.RING_STRIDE], dtype=R.ring_record_dtype)[0]
    assert int(raw["len"]) == R.EVENT_SIZE       # committed: no busy or discard bit
    assert int(raw["ev"]["h"]["seq"]) == 99


def test_gap_the_kernel_did_not_count_makes_the_run_degraded(monitor) -> None:
    """A record numbered past what the reader has seen, with no ring-full drop counted: the
    pipeline reports the difference as uncounted_gaps and the verdict degraded."""
    if not FEED_OBJECT.exists():
        pytest.skip(f"{FEED_OBJECT} not built (run `make bpf`)")
    mon = monitor({"network_monitor"}, adaptive=False)
    p = mon.pipeline
    p.drain(budget_s=None)
    before = p.loss_summary().to_json()
    assert before["uncounted_gaps"] == 0 and before["verdict"] == "complete"
    bulk = p.rings.rings[R.LANE_BULK]
    cpu = 0
    seen = int(bulk.seq.max_seq[cpu])
    with Object(str(FEED_OBJECT)) as obj:
        obj.map("ring").reuse_fd(p.kernel.map_fd("ring_bulk"))    # bee-trace's own bulk ring
        obj.load()
        (prog,) = obj.programs()
        assert run_feed(prog, 1, cpu=cpu, first_seq=seen + 1 + 7)["reserved"] == 1
    p.drain(budget_s=None)
    assert int(bulk.seq.max_seq[cpu]) == seen + 8
    after = p.loss_summary().to_json()
    # 7 numbers never delivered and not counted as ring-full (real records of other processes
    # numbered in between may still fill some of them in).
    assert 0 < after["uncounted_gaps"] <= 7, after
    assert after["dropped"]["ring_full"] == 0
    assert after["verdict"] == "degraded"
