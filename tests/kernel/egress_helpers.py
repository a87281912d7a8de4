"""Helpers for the egress tests: a small DNS server (UDP and TCP, A/AAAA/CNAME) on a loopback
address, a cgroup of the unified hierarchy for the children (so block-mode policies refuse only
the test's own processes), a dual-stack TCP sink, and a child program that resolves, connects
and sends as told and reports every result with its own pid."""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import struct
import subprocess
import sys
import threading
from dataclasses import dataclass, field

A, AAAA, CNAME = 1, 28, 5


def encode_name(name: str) -> bytes:
    return b"".join(bytes([len(l)]) + l.encode() for l in name.split(".")) + b"\0"


def dns_query(name: str, qtype: int = A, qid: int = 0x1234) -> bytes:
    return struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0) + encode_name(name) + struct.pack(">HH", qtype, 1)


def parse_question(msg: bytes) -> tuple[int, str, int, int]:
    qid = struct.unpack(">H", msg[:2])[0]
    pos, labels = 12, []
    while msg[pos]:
        n = msg[pos]
        labels.append(msg[pos + 1:pos + 1 + n].decode())
        pos += 1 + n
    qtype = struct.unpack(">H", msg[pos + 1:pos + 3])[0]
    return qid, ".".join(labels), qtype, pos + 5


@dataclass
class DnsServer:
    """Answers from `records`: name -> list of (type, value); CNAMEs are followed."""

    address: str
    records: dict[str, list[tuple[int, str]]]
    ttl: int = 300
    queries: list[str] = field(default_factory=list)

    def answer(self, msg: bytes) -> bytes:
        qid, name, qtype, qend = parse_question(msg)
        self.queries.append(name)
        rrs = []
        cur, hops = name.lower(), 0
        while hops < 8:
            hops += 1
            recs = self.records.get(cur, [])
            cname = [v for t, v in recs if t == CNAME]
            for t, v in recs:
                if t == qtype:
                    data = ipaddress.ip_address(v).packed
                    rrs.append(encode_name(cur) + struct.pack(">HHIH", t, 1, self.ttl, len(data)) + data)
            if cname and qtype != CNAME:
                data = encode_name(cname[0])
                rrs.append(encode_name(cur) + struct.pack(">HHIH", CNAME, 1, self.ttl, len(data)) + data)
                cur = cname[0]
                continue
            break
        rcode = 0 if name.lower() in self.records else 3
        head = struct.pack(">HHHHHH", qid, 0x8180 | rcode, 1, len(rrs), 0, 0)
        return head + msg[12:qend] + b"".join(rrs)

    def start(self) -> DnsServer:
        self._stop = False
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind((self.address, 53))
        self.udp.settimeout(0.2)
        self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.tcp.bind((self.address, 53))
        self.tcp.listen(64)
        self.tcp.settimeout(0.2)
        self.threads = [threading.Thread(target=self._serve_udp, daemon=True),
                        threading.Thread(target=self._serve_tcp, daemon=True)]
        for t in self.threads:
            t.start()
        return self

    def _serve_udp(self) -> None:
        while not self._stop:
            try:
                msg, peer = self.udp.recvfrom(4096)
            except (TimeoutError, OSError):
                continue
            try:
                self.udp.sendto(self.answer(msg), peer)
            except Exception:  # noqa: BLE001 - a malformed query from a test gets no answer
                pass

    def _serve_tcp(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.tcp.accept()
            except (TimeoutError, OSError):
                continue
            with conn:
                conn.settimeout(2)
                try:
                    n = struct.unpack(">H", _recv_exact(conn, 2))[0]
                    reply = self.answer(_recv_exact(conn, n))
                    conn.sendall(struct.pack(">H", len(reply)) + reply)  # one segment on lo
                except (OSError, struct.error):
                    pass

    def stop(self) -> None:
        self._stop = True
        for t in self.threads:
            t.join(2)
        self.udp.close()
        self.tcp.close()


def _recv_exact(conn: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = conn.recv(n - len(buf))
        if not chunk:
            raise OSError("short read")
        buf += chunk
    return buf


class Sink:
    """A dual-stack TCP listener that accepts and closes, so connects complete."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        self.sock.bind(("::", 0))
        self.sock.listen(512)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self._stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self._stop:
            try:
                c, _ = self.sock.accept()
                c.close()
            except (TimeoutError, OSError):
                continue

    def close(self) -> None:
        self._stop = True
        self.thread.join(2)
        self.sock.close()


CLIENT = r'''
import ctypes, ipaddress, json, os, socket, struct, sys

def name(n):
    return b"".join(bytes([len(l)]) + l.encode() for l in n.split(".")) + b"\0"

def query(n, qtype):
    return struct.pack(">HHHHHH", 0x4242, 0x0100, 1, 0, 0, 0) + name(n) + struct.pack(">HH", qtype, 1)

def answers(msg):
    an = struct.unpack(">H", msg[6:8])[0]
    pos = 12
    while msg[pos]:
        pos += 1 + msg[pos]
    pos += 5
    out = []
    for _ in range(an):
        if msg[pos] & 0xC0 == 0xC0:
            pos += 2
        else:
            while msg[pos]:
                pos += 1 + msg[pos]
            pos += 1
        t, _, _, rdlen = struct.unpack(">HHIH", msg[pos:pos + 10])
        rd = msg[pos + 10:pos + 10 + rdlen]
        if t in (1, 28):
            out.append(str(ipaddress.ip_address(rd)))
        pos += 10 + rdlen
    return out

def resolve(n, qtype, proto, server):
    if proto == "udp":
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(3)
        s.sendto(query(n, qtype), (server, 53))
        return answers(s.recv(4096))
    s = socket.create_connection((server, 53), timeout=3)
    q = query(n, qtype)
    s.sendall(struct.pack(">H", len(q)) + q)
    ln = struct.unpack(">H", s.recv(2))[0]
    buf = b""
    while len(buf) < ln:
        buf += s.recv(ln - len(buf))
    return answers(buf)

def connect(addr, port):
    fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(3)
    try:
        s.connect((addr, port))
        return "ok"
    finally:
        s.close()

def sendto(addr, port):
    fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.sendto(b"x", (addr, port))
    return "ok"

class iovec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]

class msghdr(ctypes.Structure):
    _fields_ = [("name", ctypes.c_void_p), ("namelen", ctypes.c_uint32), ("iov", ctypes.POINTER(iovec)),
                ("iovlen", ctypes.c_size_t), ("control", ctypes.c_void_p), ("controllen", ctypes.c_size_t),
                ("flags", ctypes.c_int)]

class mmsghdr(ctypes.Structure):
    _fields_ = [("hdr", msghdr), ("len", ctypes.c_uint32)]

def sendmmsg(dests):
    libc = ctypes.CDLL(None, use_errno=True)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    keep, msgs = [], (mmsghdr * len(dests))()
    data = ctypes.create_string_buffer(b"x")
    for i, (addr, port) in enumerate(dests):
        sa = ctypes.create_string_buffer(struct.pack("<H", 2) + struct.pack(">H", port)
                                         + socket.inet_aton(addr) + bytes(8), 16)
        iov = iovec(ctypes.cast(data, ctypes.c_void_p), 1)
        keep += [sa, iov]
        msgs[i].hdr.name = ctypes.cast(sa, ctypes.c_void_p)
        msgs[i].hdr.namelen = 16
        msgs[i].hdr.iov = ctypes.pointer(iov)
        msgs[i].hdr.iovlen = 1
    n = libc.sendmmsg(s.fileno(), msgs, len(dests), 0)
    if n < 0:
        raise OSError(ctypes.get_errno(), "sendmmsg")
    return n

def tfo(addr, port):
    fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.sendto(b"GET", socket.MSG_FASTOPEN, (addr, port))
    return "ok"

def raw(kind):
    if kind == "raw":
        s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    elif kind == "raw6":
        s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
    elif kind == "packet":
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    s.close()
    return "ok"

def loop(n, fmt, server, port):
    ok = 0
    for i in range(1, n + 1):
        (addr,) = resolve(fmt.format(i), 1, "udp", server)
        connect(addr, port)
        ok += 1
    return ok

def run(op):
    try:
        return globals()[op[0]](*op[1:])
    except OSError as e:
        return "errno %d" % e.errno

ops = json.loads(sys.argv[1])
print(json.dumps({"pid": os.getpid(), "results": [run(op) for op in ops]}))
'''


class JobCgroup:
    """A cgroup of the unified hierarchy for the test's children; the monitor's hooks attach
    here instead of the root, so a block-mode policy refuses nothing else on the machine."""

    def __init__(self, root: str) -> None:
        self.path = os.path.join(root, f"bee-egress-test-{os.getpid()}")
        os.makedirs(self.path, exist_ok=True)

    def enter(self) -> None:  # preexec_fn of a child
        with open(os.path.join(self.path, "cgroup.procs"), "w") as f:
            f.write(str(os.getpid()))

    def remove(self) -> None:
        try:
            os.rmdir(self.path)
        except OSError:
            pass


def run_client(ops: list, cgroup: JobCgroup | None = None, timeout: float = 120) -> dict:
    p = subprocess.run([sys.executable, "-c", CLIENT, json.dumps(ops)], capture_output=True, text=True,
                       timeout=timeout, preexec_fn=cgroup.enter if cgroup else None)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)
