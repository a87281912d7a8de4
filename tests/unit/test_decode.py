from __future__ import annotations

import socket

import numpy as np

from bee_trace import records as R
from bee_trace.decode import DecodeContext, decode_record
from bee_trace.procinfo import ProcCache

FAKE = 3_999_999  # a pid that does not exist: nothing comes from /proc


def ctx(tmp_path) -> DecodeContext:
    return DecodeContext(procs=ProcCache(capacity=16))


def rec(type_: int, pid: int = FAKE, ppid: int = FAKE - 1, comm: bytes = b"evil", flags: int = 0):
    r = np.zeros(1, dtype=R.event_dtype)
    r["h"]["type"] = type_
    r["h"]["flags"] = flags
    r["h"]["tgid"] = pid
    r["h"]["tid"] = pid
    r["h"]["ppid"] = ppid
    r["h"]["comm"] = comm
    r["h"]["ts_ns"] = 10**9
    return r


def net(r, family, addr: bytes, port, proto=6, name_hash=0):
    n = r["u"]["net"]
    n["family"] = family
    n["dport"] = port
    n["protocol"] = proto
    n["daddr"] = np.void(addr.ljust(16, b"\0"))
    n["name_hash"] = name_hash
    n["hook"] = 1
    return r[0]


def dns(family, addr: bytes, name: bytes, name_hash: int, ttl=60, verdict=1):
    r = rec(R.EV_DNS, pid=0, ppid=0, comm=b"")
    d = r["u"]["dns"]
    d["family"] = family
    d["addr"] = np.void(addr.ljust(16, b"\0"))
    d["name_hash"] = name_hash
    d["ttl"] = ttl
    d["verdict"] = verdict
    d["name_len"] = len(name)
    d["name"] = np.void(name[-R.DNS_NAME_TAIL:].ljust(R.DNS_NAME_TAIL, b"\0"))
    return r[0]


def test_net_ipv4_ipv6_mapped(tmp_path):
    c = ctx(tmp_path)
    ev = decode_record(net(rec(R.EV_NET, flags=R.EVF_LOOPBACK), 2, socket.inet_aton("127.0.0.1"), 8080), c)
    assert (ev["kind"], ev["protocol"], ev["family"], ev["daddr"], ev["dport"], ev["action"]) == (
        "network", "tcp", "ipv4", "127.0.0.1", 8080, "allowed")
    assert ev["loopback"] and ev["domain"] is None and ev["hook"] == "connect"  # no answer: no name
    ev = decode_record(net(rec(R.EV_NET), 10, socket.inet_pton(socket.AF_INET6, "2001:db8::1"), 443), c)
    assert ev["family"] == "ipv6" and ev["daddr"] == "2001:db8::1" and ev["domain"] is None
    mapped = socket.inet_pton(socket.AF_INET6, "::ffff:10.1.2.3")
    ev = decode_record(net(rec(R.EV_NET), 10, mapped, 22), c)
    assert ev["family"] == "ipv4" and ev["daddr"] == "10.1.2.3"


def test_net_blocklisted_and_policy_fields(tmp_path):
    c = ctx(tmp_path)
    # EVF_BLOCKED: on the block list; action says whether the kernel refused it (block mode).
    ev = decode_record(net(rec(R.EV_NET, flags=R.EVF_BLOCKED), 2, b"\x01\x02\x03\x04", 80), c)
    assert ev["action"] == "allowed" and ev["blocklisted"] is True and "policy" not in ev
    r = net(rec(R.EV_NET, flags=R.EVF_BLOCKED | R.EVF_WOULD_BLOCK), 2, b"\x01\x02\x03\x04", 80)
    r["u"]["net"]["action"] = 1
    r["u"]["net"]["reason"] = 5
    ev = decode_record(r, c)
    assert ev["action"] == "blocked" and ev["policy"] == "not_allowed" and ev["not_allowed"] is True
    ev = decode_record(net(rec(R.EV_NET), 0, b"", 0), c)
    assert ev["family"] == "unknown" and ev["daddr"] == ""


def test_domain_only_from_an_answer_for_that_address(tmp_path):
    c = ctx(tmp_path)
    ip = socket.inet_aton("93.184.216.34")
    assert decode_record(dns(2, ip, b"example.test", 77), c) is None   # feeds the table only
    ev = decode_record(net(rec(R.EV_NET, flags=R.EVF_LEARNED), 2, ip, 443, name_hash=77), c)
    assert ev["domain"] == "example.test" and ev["domain_source"] == "answer"
    # the same name's hash for another address, or no learned flag: no name
    other = socket.inet_aton("10.1.1.1")
    assert decode_record(net(rec(R.EV_NET, flags=R.EVF_LEARNED), 2, other, 443, name_hash=77), c)["domain"] is None
    ev = decode_record(net(rec(R.EV_NET), 2, ip, 443, name_hash=77), c)
    assert ev["domain"] is None and ev["domain_source"] is None
    # IPv6, and a name longer than the record keeps its tail
    v6 = socket.inet_pton(socket.AF_INET6, "2001:db8::7")
    long = (b"a" * 60 + b".") * 4 + b"test"
    decode_record(dns(10, v6, long, 99), c)
    ev = decode_record(net(rec(R.EV_NET, flags=R.EVF_LEARNED), 10, v6, 443, name_hash=99), c)
    assert ev["domain"] == "…" + long[-R.DNS_NAME_TAIL:].decode()


def test_socket_record(tmp_path):
    c = ctx(tmp_path)
    r = rec(R.EV_SOCK, flags=R.EVF_BLOCKED)
    s = r["u"]["sock"]
    s["family"], s["type"], s["protocol"], s["action"] = 17, 3, 0, 2
    ev = decode_record(r[0], c)
    assert (ev["kind"], ev["op"], ev["family"], ev["socket_type"], ev["action"], ev["enforcement"]) == (
        "network", "socket", "packet", "raw", "blocked", "killed")


def test_mem_record(tmp_path):
    c = ctx(tmp_path)
    r = rec(R.EV_MEM)
    m = r["u"]["mem"]
    m["technique"] = 1
    m["target_pid"] = FAKE + 5
    m["request"] = 16
    m["target_comm"] = b"Runner.Worker"
    ev = decode_record(r[0], c)
    assert (ev["kind"], ev["technique"], ev["target_pid"], ev["target_comm"], ev["ptrace_request"]) == (
        "memory", "ptrace", FAKE + 5, "Runner.Worker", 16)
    m["target_comm"] = b""                  # target gone, not in the cache: empty, no crash
    assert decode_record(r[0], c)["target_comm"] == ""


def test_lifecycle_feeds_cache_and_ancestry(tmp_path):
    c = ctx(tmp_path)
    # bash (FAKE-1) execs; forks FAKE; FAKE execs python3; FAKE's events get the context even
    # though none of these pids exists in /proc.
    r = rec(R.EV_EXEC, pid=FAKE - 1, ppid=FAKE - 2, comm=b"bash")
    p = r["u"]["proc"]
    p["filename"] = np.void(b"/usr/bin/bash".ljust(128, b"\0"))
    p["filename_len"] = 13
    p["start_ns"] = 5
    ev = decode_record(r[0], c)
    assert ev["kind"] == "process" and ev["op"] == "exec" and ev["filename"] == "/usr/bin/bash"
    r = rec(R.EV_FORK, pid=FAKE - 1, ppid=FAKE - 2, comm=b"bash")
    r["u"]["proc"]["child_tgid"] = FAKE
    r["u"]["proc"]["parent_tgid"] = FAKE - 1
    assert decode_record(r[0], c) is None
    assert c.procs.peek(FAKE).exe == "/usr/bin/bash"
    r = rec(R.EV_EXEC, pid=FAKE, ppid=FAKE - 1, comm=b"python3")
    p = r["u"]["proc"]
    p["filename"] = np.void(b"/usr/bin/python3".ljust(128, b"\0"))
    p["filename_len"] = 16
    p["args"] = np.void(b"python3\0memdump.py\0".ljust(120, b"\0"))
    p["args_len"] = 19
    p["start_ns"] = 10**9
    decode_record(r[0], c)
    r = rec(R.EV_EXIT, pid=FAKE, ppid=FAKE - 1, comm=b"python3")
    assert decode_record(r[0], c) is None
    r = rec(R.EV_MEM, pid=FAKE, ppid=FAKE - 1, comm=b"python3")
    r["u"]["mem"]["technique"] = 4
    r["u"]["mem"]["target_pid"] = FAKE + 1
    ev = decode_record(r[0], c)
    assert ev["exe"] == "/usr/bin/python3" and ev["cmdline"] == "python3 memdump.py"
    assert ev["ancestry"] == ["bash", "python3"]
    assert ev["start_time"]


def test_cache_bounded_with_evictions():
    pc = ProcCache(capacity=4)
    for i in range(10):
        pc.on_fork(FAKE + 10 + i, FAKE, 0, "x")
    assert len(pc) == 4 and pc.evictions == 6


def test_unknown_type_is_ignored(tmp_path):
    assert decode_record(rec(99)[0], ctx(tmp_path)) is None
