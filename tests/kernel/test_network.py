"""Network monitor acceptance tests: real sockets in child processes (the pipeline runs in this
process and excludes its own pid, so every syscall that should be seen comes from a child)."""

from __future__ import annotations

import os
import socket
import struct
import subprocess
import sys
import textwrap
from dataclasses import dataclass

import pytest

PY = sys.executable


@dataclass
class Child:
    pid: int                # from the process we started, never from an event
    returncode: int
    stdout: str
    stderr: str


def run_child(code: str, *args: str, check: bool = True) -> Child:
    p = subprocess.Popen([PY, "-c", textwrap.dedent(code), *args], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    out, err = p.communicate(timeout=60)
    if check and p.returncode:
        raise subprocess.CalledProcessError(p.returncode, p.args, out, err)
    return Child(p.pid, p.returncode, out, err)


def dns_query(name: str, qtype: int = 1, qid: int = 0x1234) -> bytes:
    head = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    qname = b"".join(bytes([len(l)]) + l.encode() for l in name.split(".")) + b"\0"
    return head + qname + struct.pack(">HH", qtype, 1)


@pytest.fixture
def listener4():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    s.listen(16)
    yield s.getsockname()[1]
    s.close()


@pytest.fixture
def listener6():
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s.bind(("::1", 0))
    s.listen(16)
    yield s.getsockname()[1]
    s.close()


def closed_port(family=socket.AF_INET, host="127.0.0.1") -> int:
    s = socket.socket(family, socket.SOCK_STREAM)
    s.bind((host, 0))
    port = s.getsockname()[1]
    s.close()
    return port


def net_events(m, pid: int, **want):
    def pred(e):
        return (e["kind"] == "network" and e["pid"] == pid
                and all(e.get(k) == v for k, v in want.items()))
    return m.wait_for(pred)


CONNECT = """
import socket, sys
fam = socket.AF_INET6 if ':' in sys.argv[1] else socket.AF_INET
s = socket.socket(fam, socket.SOCK_STREAM)
try:
    s.connect((sys.argv[1], int(sys.argv[2])))
    print('connected')
except OSError as e:
    print('error', e.errno)
"""


def test_tcp_connect_ipv4(monitor, listener4):
    m = monitor({"network_monitor"})
    p = run_child(CONNECT, "127.0.0.1", str(listener4))
    assert "connected" in p.stdout
    (ev,) = net_events(m, p.pid, dport=listener4)
    assert ev["protocol"] == "tcp" and ev["family"] == "ipv4" and ev["daddr"] == "127.0.0.1"
    assert ev["action"] == "allowed" and ev["loopback"] is True
    assert ev["lane"] == "bulk"
    assert ev["pid"] == ev["tid"] == p.pid and ev["ppid"] == os.getpid() and ev["uid"] == os.getuid()
    assert ev["domain"] is None                 # no DNS answer named it (not even the hosts file)
    assert ev["hook"] == "connect"
    assert ev["severity"] == "low"              # loopback (classify.py)
    assert ev["exe"] and ev["ancestry"] and ev["ancestry"][-1] == ev["comm"]


def test_tcp_connect_ipv6(monitor, listener6):
    m = monitor({"network_monitor"})
    p = run_child(CONNECT, "::1", str(listener6))
    assert "connected" in p.stdout
    (ev,) = net_events(m, p.pid, dport=listener6)
    assert ev["protocol"] == "tcp" and ev["family"] == "ipv6" and ev["daddr"] == "::1"
    assert ev["uid"] == os.getuid()
    assert ev["loopback"] is True


def test_tcp_connect_ipv4_mapped(monitor, listener4):
    m = monitor({"network_monitor"})
    p = run_child(CONNECT, "::ffff:127.0.0.1", str(listener4))
    assert "connected" in p.stdout
    (ev,) = net_events(m, p.pid, dport=listener4)
    assert ev["family"] == "ipv4" and ev["daddr"] == "127.0.0.1" and ev["protocol"] == "tcp"


def test_connect_refused_still_reported(monitor):
    m = monitor({"network_monitor"})
    port = closed_port()
    p = run_child(CONNECT, "127.0.0.1", str(port))
    assert "error 111" in p.stdout      # ECONNREFUSED
    evs = m.wait_for(lambda e: e["kind"] == "network" and e["dport"] == port)
    assert len(evs) == 1 and evs[0]["daddr"] == "127.0.0.1" and evs[0]["protocol"] == "tcp"
    assert evs[0]["pid"] == p.pid


def test_udp_sendto_dns_and_no_attribution_from_queries(monitor):
    """A query is a UDP send to port 53 like any other; the connect that follows is not named
    after the name queried (only an answer the kernel learned names an address)."""
    m = monitor({"network_monitor"})
    port = closed_port()
    code = """
    import os, socket, sys
    print(os.getpid())
    q = bytes.fromhex(sys.argv[1])
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.sendto(q, ('127.0.0.1', 53))
    t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        t.connect(('127.0.0.9', int(sys.argv[2])))
    except OSError:
        pass
    """
    pid = int(run_child(code, dns_query("example.test").hex(), str(port)).stdout)
    (q,) = net_events(m, pid, dport=53)
    assert q["protocol"] == "udp" and q["family"] == "ipv4" and q["daddr"] == "127.0.0.1"
    assert q["hook"] == "sendmsg" and q["domain"] is None and "dns_query" not in q
    (conn,) = net_events(m, pid, dport=port)
    assert conn["daddr"] == "127.0.0.9" and conn["domain"] is None and conn["hook"] == "connect"


def test_udp_sendto_ipv6_and_connected_udp_socket(monitor):
    m = monitor({"network_monitor"})
    code = """
    import os, socket, sys
    print(os.getpid())
    u = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    u.sendto(b'hello', ('::1', 9999))
    # glibc's resolver style: connect, then send without an address. The kernel checks the
    # destination at connect; sends on the connected socket use it unchanged.
    c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    c.connect(('127.0.0.1', 53))
    for _ in range(2):
        try: c.send(b'q')
        except OSError: pass        # ECONNREFUSED from the first one's port unreachable
    """
    pid = int(run_child(code).stdout)
    (v6,) = net_events(m, pid, dport=9999)
    assert v6["protocol"] == "udp" and v6["family"] == "ipv6" and v6["daddr"] == "::1"
    assert v6["hook"] == "sendmsg"
    (conn,) = net_events(m, pid, dport=53)
    assert conn["protocol"] == "udp" and conn["hook"] == "connect" and conn["daddr"] == "127.0.0.1"


def test_kernel_copy_unix_unspecified_and_bad_input(monitor):
    """The hooks see what the kernel uses: AF_UNIX is not a destination; 0.0.0.0 reaches this
    host (reported as loopback); a malformed length or unreadable pointer is refused by the
    kernel before any destination exists (nothing to report)."""
    m = monitor({"network_monitor"})
    port = closed_port()
    code = """
    import ctypes, os, socket, struct, sys
    print(os.getpid())
    port = int(sys.argv[1])
    libc = ctypes.CDLL(None, use_errno=True)
    u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try: u.connect('/nonexistent/sock')
    except OSError: pass
    z = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try: z.connect(('0.0.0.0', port))
    except OSError: pass
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sa = struct.pack('<H', socket.AF_INET) + struct.pack('>H', port) + bytes([127, 0, 0, 7]) + bytes(8)
    buf = ctypes.create_string_buffer(sa, len(sa))
    print('short', libc.connect(s.fileno(), buf, 8), ctypes.get_errno())
    s2 = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    print('fault', libc.connect(s2.fileno(), ctypes.c_void_p(8), 16), ctypes.get_errno())
    s3 = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try: s3.connect(('127.0.0.1', port))
    except OSError: pass
    """
    p = run_child(code, str(port))
    assert "short -1 22" in p.stdout and "fault -1 14" in p.stdout
    pid = int(p.stdout.split()[0])
    m.wait_for(lambda e: e["kind"] == "network" and e["pid"] == pid and e["daddr"] == "127.0.0.1")
    evs = sorted((e["daddr"], e["dport"], e["loopback"]) for e in m.events
                 if e["kind"] == "network" and e["pid"] == pid)
    assert evs == [("0.0.0.0", port, True), ("127.0.0.1", port, True)]


def test_probe_type_selects_network(monitor, listener4):
    m = monitor({"memory_monitor"})
    target = subprocess.Popen(["/usr/bin/sleep", "60"])
    try:
        p = run_child(CONNECT + "open(f'/proc/{sys.argv[3]}/maps').read()\n", "127.0.0.1",
                      str(listener4), str(target.pid))
        assert "connected" in p.stdout
        # The memory event after the connect is the marker: once it is read, so would the
        # connect be.
        assert m.wait_for(lambda e: e["kind"] == "memory" and e["pid"] == p.pid
                          and e["target_pid"] == target.pid)
    finally:
        target.kill()
        target.wait()
    assert not [e for e in m.events if e["kind"] == "network"]
