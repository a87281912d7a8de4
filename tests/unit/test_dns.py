from __future__ import annotations

import struct

import pytest

from bee_trace.dns import DnsTracker, parse_hosts, parse_qname, parse_query

S = 1_000_000_000


def query(name: str, qtype: int = 1, flags: int = 0x0100) -> bytes:
    head = struct.pack(">HHHHHH", 0xBEEF, flags, 1, 0, 0, 0)
    qname = b"".join(bytes([len(l)]) + l.encode() for l in name.split(".")) + b"\0"
    return head + qname + struct.pack(">HH", qtype, 1)


def test_parse_query():
    q = parse_query(query("Example.TEST", 28))
    assert q.name == "example.test" and q.qtype == 28
    assert parse_qname(query("a.b.c")) == "a.b.c"


@pytest.mark.parametrize("payload", [
    b"", b"\0" * 12, query("x.y")[:-6],                     # cut before the root label
    query("x.y", flags=0x8180),                            # a response
    query("x.y", flags=0x2800 | 0x0100),                   # opcode UPDATE
    struct.pack(">HHHHHH", 1, 0x100, 0, 0, 0, 0) + b"\x01a\x00",   # no question
    struct.pack(">HHHHHH", 1, 0x100, 1, 0, 0, 0) + b"\xc0\x0c",    # compression pointer
    struct.pack(">HHHHHH", 1, 0x100, 1, 0, 0, 0) + b"\x3fabc",     # label past the end
    struct.pack(">HHHHHH", 1, 0x100, 1, 0, 0, 0) + b"\x00",        # root only
    None, "text",
])
def test_parse_rejects_malformed(payload):
    assert parse_query(payload) is None


def test_head_cut_after_name_keeps_name_without_type():
    q = parse_query(query("abc.de")[:-4])
    assert q.name == "abc.de" and q.qtype is None


def test_long_name_over_limit_rejected():
    labels = ["a" * 63] * 5
    data = struct.pack(">HHHHHH", 1, 0x100, 1, 0, 0, 0) + b"".join(
        bytes([63]) + l.encode() for l in labels) + b"\0\0\1\0\1"
    assert parse_query(data) is None


def test_hostile_label_bytes_are_escaped():
    data = struct.pack(">HHHHHH", 1, 0x100, 1, 0, 0, 0) + b"\x03a\x1b.\x02ok\x00\x00\x01\x00\x01"
    assert parse_qname(data) == "a\\027\\046.ok"


def test_parse_hosts():
    h = parse_hosts("# c\n127.0.0.1 localhost vm\n::1 ip6-localhost\n10.0.0.5 Build.Local # x\n"
                    "bogus line\n::ffff:10.0.0.6 mapped\n127.0.0.1 second\n")
    assert h == {"127.0.0.1": "localhost", "::1": "ip6-localhost", "10.0.0.5": "build.local",
                 "10.0.0.6": "mapped"}


def tracker(tmp_path, hosts="10.9.9.9 pinned.example\n") -> DnsTracker:
    p = tmp_path / "hosts"
    p.write_text(hosts)
    return DnsTracker(hosts_path=str(p), window_ns=10 * S, capacity=3)


def test_attribution(tmp_path):
    t = tracker(tmp_path)
    assert t.attribute(100, 1, "10.9.9.9", 0) == "pinned.example"
    assert t.attribute(100, 1, "::ffff:10.9.9.9", 0) == "pinned.example"
    assert t.attribute(100, 1, "1.2.3.4", 0) is None
    t.note_query(100, "api.example", 1 * S)
    t.note_query(100, "api.example", 1 * S)           # A and AAAA of the same name
    assert t.attribute(100, 1, "1.2.3.4", 2 * S) == "api.example"
    assert t.attribute(100, 1, "1.2.3.4", 20 * S) is None     # outside the window
    t.note_query(100, "other.example", 3 * S)
    assert t.attribute(100, 1, "1.2.3.4", 4 * S) is None      # ambiguous: never a guess
    # the parent's query, when the process itself queried nothing
    t.note_query(200, "parent.example", 5 * S)
    assert t.attribute(201, 200, "5.6.7.8", 6 * S) == "parent.example"


def test_tracker_is_bounded(tmp_path):
    t = tracker(tmp_path)
    for pid in range(10):
        t.note_query(pid, f"n{pid}.example", 0)
    assert len(t) == 3 and t.evictions == 7
    for i in range(50):
        t.note_query(9, f"x{i}.example", 0)
    assert len(t._recent[9]) == t.per_pid
