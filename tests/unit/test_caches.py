"""Userspace caches stay bounded and say what left them: exited processes and DNS names the kernel
no longer uses expire after a grace period; the bounds count their evictions."""

from __future__ import annotations

import socket

import numpy as np

from bee_trace import records as R
from bee_trace.critical import REMEMBERED, FoldTracker
from bee_trace.decode import CHUNKS_PENDING_MAX, DecodeContext, decode_record
from bee_trace.egress.names import NAME_GRACE_NS, DomainTable
from bee_trace.procinfo import EXITED_GRACE_NS, ProcCache
from bee_trace.templates import TemplateCache

FAKE = 3_999_000   # pids that do not exist: nothing comes from /proc
S = 1_000_000_000


def test_exited_processes_expire_after_the_grace() -> None:
    pc = ProcCache(capacity=100)
    for i in range(10):
        pc.on_exec(FAKE + i, FAKE - 1, "true", "/usr/bin/true", b"true", True, 0)
        pc.on_exit(FAKE + i, ts_ns=i * S)
    pc.on_fork(FAKE + 50, FAKE - 1, 0, "sh")          # running
    assert pc.expire(now_ns=EXITED_GRACE_NS) == 0     # none is past its grace yet
    # those that exited at 0..4 s are past it at grace + 4.5 s
    assert pc.expire(now_ns=EXITED_GRACE_NS + 4 * S + S // 2) == 5
    assert len(pc) == 6 and pc.expired == 5 and pc.evictions == 0
    assert pc.peek(FAKE + 4) is None and pc.peek(FAKE + 5) is not None
    assert pc.peek(FAKE + 50) is not None


def test_ancestors_of_kept_processes_do_not_expire() -> None:
    pc = ProcCache(capacity=100)
    root, parent, child, other = FAKE, FAKE + 1, FAKE + 2, FAKE + 3
    pc.on_fork(root, FAKE - 1, 0, "bash")
    pc.on_fork(parent, root, 0, "bash")
    pc.on_exec(child, parent, "curl", "/usr/bin/curl", b"curl", True, 0)   # still running
    pc.on_fork(other, root, 0, "true")
    for pid in (root, parent, other):
        pc.on_exit(pid, ts_ns=0)
    gen = pc.generation
    assert pc.expire(now_ns=EXITED_GRACE_NS + S) == 1   # only `other`: nothing descends from it
    assert pc.peek(other) is None and pc.generation != gen
    assert pc.ancestry(child) == ["bash", "bash", "curl"]
    pc.on_exit(child, ts_ns=2 * S)
    # the child is kept for its own grace, and with it its ancestors
    assert pc.expire(now_ns=EXITED_GRACE_NS + S) == 0
    assert pc.expire(now_ns=EXITED_GRACE_NS + 3 * S) == 3 and len(pc) == 0 and pc.expired == 4


def test_process_cache_bound_counts_evictions_apart_from_expiry() -> None:
    pc = ProcCache(capacity=8)
    for i in range(20):
        pc.on_fork(FAKE + i, FAKE - 1, 0, "x")
    assert len(pc) == 8 and pc.evictions == 12 and pc.expired == 0


def dns(addr: str, name: bytes, name_hash: int, ttl: int, ts_ns: int) -> np.void:
    r = np.zeros(1, dtype=R.event_dtype)
    r["h"]["type"] = R.EV_DNS
    r["h"]["ts_ns"] = ts_ns
    d = r["u"]["dns"]
    d["family"] = 2
    d["addr"] = np.void(socket.inet_aton(addr).ljust(16, b"\0"))
    d["name_hash"] = name_hash
    d["ttl"] = ttl
    d["verdict"] = 1
    d["name_len"] = len(name)
    d["name"] = np.void(name.ljust(R.DNS_NAME_TAIL, b"\0"))
    return r[0]


def test_names_expire_after_their_life() -> None:
    c = DecodeContext(procs=ProcCache(capacity=4))
    decode_record(dns("10.0.0.1", b"a.example", 1, ttl=60, ts_ns=0), c)
    decode_record(dns("10.0.0.2", b"b.example", 2, ttl=30, ts_ns=0), c)
    t = c.names
    assert t.expire(now_ns=30 * S + NAME_GRACE_NS) == 0          # b's life + grace not passed
    assert t.expire(now_ns=30 * S + NAME_GRACE_NS + 1) == 1
    assert t.name("10.0.0.2", 2) is None and t.name("10.0.0.1", 1) == "a.example"
    assert t.expire(now_ns=60 * S + NAME_GRACE_NS + 1) == 1
    assert len(t) == 0 and t.expired == 2 and t.evictions == 0 and t.learned == 2


def test_a_newer_name_for_an_address_retires_the_old_one() -> None:
    c = DecodeContext(procs=ProcCache(capacity=4))
    decode_record(dns("10.0.0.1", b"old.example", 1, ttl=600, ts_ns=0), c)
    decode_record(dns("10.0.0.1", b"new.example", 2, ttl=60, ts_ns=10 * S), c)
    t = c.names
    # records already in a ring may still carry the old name: kept for the grace
    assert t.name("10.0.0.1", 1) == "old.example"
    assert t.expire(now_ns=10 * S + NAME_GRACE_NS + 1) == 1
    assert t.name("10.0.0.1", 1) is None and t.name("10.0.0.1", 2) == "new.example"
    # the kernel kept the longer life for the address: so does the new name
    assert t.expire(now_ns=70 * S + NAME_GRACE_NS + 1) == 0
    assert t.expire(now_ns=600 * S + NAME_GRACE_NS + 1) == 1 and len(t) == 0


def test_a_repeated_answer_keeps_the_longer_life() -> None:
    c = DecodeContext(procs=ProcCache(capacity=4))
    decode_record(dns("10.0.0.1", b"a.example", 1, ttl=600, ts_ns=0), c)
    decode_record(dns("10.0.0.1", b"a.example", 1, ttl=30, ts_ns=S), c)
    assert len(c.names) == 1
    assert c.names.expire(now_ns=31 * S + NAME_GRACE_NS + 1) == 0
    assert c.names.name("10.0.0.1", 1) == "a.example"


def test_names_bound_counts_evictions() -> None:
    t = DomainTable(capacity=5)
    c = DecodeContext(procs=ProcCache(capacity=4), names=t)
    for i in range(12):
        decode_record(dns(f"10.0.1.{i}", b"n%d.example" % i, i, ttl=60, ts_ns=0), c)
    assert len(t) == 5 and t.evictions == 7 and t.expired == 0
    assert t.name("10.0.1.11", 11) == "n11.example" and t.name("10.0.1.0", 0) is None
    assert t.expire(now_ns=60 * S + NAME_GRACE_NS + 1) == 5 and not t._newest


def test_template_cache_counts_what_a_full_cache_drops() -> None:
    tc = TemplateCache(capacity=4)
    for i in range(10):
        tc.remember(b"k%d" % i, 100, {"kind": "file"}, None)
    # full at 4: cleared twice (4 + 4), two left
    assert len(tc) == 2 and tc.evictions == 8


def test_fold_tracker_counts_forgotten_first_events() -> None:
    ft = FoldTracker()
    for i in range(REMEMBERED + 3):
        ft.remember({"kind": "file", "access": "read", "ino": i + 1, "dev": 1, "uid": 0, "pid": 7})
    assert len(ft.first) == REMEMBERED and ft.first_evictions == 3


def test_path_chunks_bound_counts_dropped_chains() -> None:
    c = DecodeContext(procs=ProcCache(capacity=4))
    for i in range(CHUNKS_PENDING_MAX + 2):
        c.add_chunk(i, 0, 0, 0, b"x")
    c.add_chunk(CHUNKS_PENDING_MAX + 1, 0, 0, 1, b"y")   # a chain already waiting: nothing dropped
    assert len(c.chunks) == CHUNKS_PENDING_MAX and c.chunks_evicted == 2


def test_timestamp_prefixes_stay_small() -> None:
    from datetime import UTC, datetime

    from bee_trace import decode as D
    for sec in range(1_700_000_000, 1_700_000_000 + 3 * D.TS_PREFIXES_MAX):
        ts = D.iso_ts(sec * S + 123_456_789)
        assert ts == datetime.fromtimestamp(sec + 0.123456, tz=UTC).isoformat(timespec="microseconds")
        assert len(D._TS_PREFIXES) <= D.TS_PREFIXES_MAX
