"""DNS attribution. The kernel copies the head (64 bytes) of every UDP payload sent to port 53;
this module decodes the query name from the wire format (every read bounds-checked: the bytes
are attacker-controlled and may be cut short) and remembers, per process, the names it queried
recently. Answers are not seen, so a destination address is attributed to a name only when the
evidence is unambiguous:

1. /etc/hosts maps the address to exactly that name, or
2. the process (else its parent) queried exactly one distinct name within the window.

Otherwise the domain is None (unknown), never a guess."""

from __future__ import annotations

import ipaddress
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field

HEADER_LEN = 12
MAX_NAME = 253          # text form, without the trailing dot
MAX_LABEL = 63


def _label_text(raw: bytes) -> str:
    """A label as text: LDH and '_' kept, anything else escaped (the name is untrusted)."""
    out = []
    for b in raw:
        c = chr(b)
        if c.isascii() and (c.isalnum() or c in "-_"):
            out.append(c.lower())
        else:
            out.append(f"\\{b:03d}")
    return "".join(out)


@dataclass
class Query:
    name: str
    qtype: int | None     # None when the head ended before the question's type


def parse_query(payload: bytes) -> Query | None:
    """The first question of a DNS query message, or None when this is not a well-formed
    query head (a response, a compression pointer, a label running past the data, ...)."""
    if not isinstance(payload, (bytes, bytearray, memoryview)):
        return None
    data = bytes(payload)
    if len(data) < HEADER_LEN + 1:
        return None
    flags = int.from_bytes(data[2:4], "big")
    qdcount = int.from_bytes(data[4:6], "big")
    if flags & 0x8000 or (flags >> 11) & 0xF != 0 or qdcount == 0:
        return None     # a response, or not a standard query
    pos = HEADER_LEN
    labels: list[str] = []
    length = 0
    while True:
        if pos >= len(data):
            return None             # cut short before the root label
        n = data[pos]
        pos += 1
        if n == 0:
            break
        if n > MAX_LABEL:
            return None             # compression pointers/extended labels: not in a question
        if pos + n > len(data):
            return None
        length += n + (1 if labels else 0)
        if length > MAX_NAME:
            return None
        labels.append(_label_text(data[pos:pos + n]))
        pos += n
    if not labels:
        return None                 # the root: nothing to attribute
    qtype = int.from_bytes(data[pos:pos + 2], "big") if pos + 2 <= len(data) else None
    return Query(".".join(labels), qtype)


def parse_qname(payload: bytes) -> str | None:
    q = parse_query(payload)
    return q.name if q else None


def _norm_ip(s: str) -> str | None:
    try:
        a = ipaddress.ip_address(s.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(a, ipaddress.IPv6Address) and a.ipv4_mapped is not None:
        a = a.ipv4_mapped
    return str(a)


def parse_hosts(text: str) -> dict[str, str]:
    """address -> first (canonical) name, from /etc/hosts syntax."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        words = line.split("#", 1)[0].split()
        if len(words) < 2:
            continue
        ip = _norm_ip(words[0])
        if ip is not None and ip not in out:
            out[ip] = words[1].lower().rstrip(".")
    return out


@dataclass
class DnsTracker:
    window_ns: int = 30 * 1_000_000_000
    per_pid: int = 8                     # names remembered per process
    capacity: int = 4096                 # processes remembered
    hosts_path: str = "/etc/hosts"
    hosts_reload_s: float = 30.0
    evictions: int = 0
    queries: int = 0
    _recent: OrderedDict[int, deque[tuple[int, str]]] = field(default_factory=OrderedDict)
    _hosts: dict[str, str] | None = None
    _hosts_loaded: float = 0.0

    # -- hosts -------------------------------------------------------------------------------
    def hosts(self) -> dict[str, str]:
        now = time.monotonic()
        if self._hosts is None or now - self._hosts_loaded > self.hosts_reload_s:
            try:
                with open(self.hosts_path, encoding="utf-8", errors="replace") as f:
                    self._hosts = parse_hosts(f.read(1 << 20))
            except OSError:
                self._hosts = {}
            self._hosts_loaded = now
        return self._hosts

    # -- queries -----------------------------------------------------------------------------
    def note_query(self, pid: int, name: str, ts_ns: int) -> None:
        self.queries += 1
        q = self._recent.get(pid)
        if q is None:
            q = self._recent[pid] = deque(maxlen=self.per_pid)
            while len(self._recent) > self.capacity:
                self._recent.popitem(last=False)
                self.evictions += 1
        else:
            self._recent.move_to_end(pid)
        q.append((ts_ns, name))

    def recent_names(self, pid: int, ts_ns: int) -> set[str]:
        q = self._recent.get(pid)
        if not q:
            return set()
        return {name for t, name in q if 0 <= ts_ns - t <= self.window_ns}

    def attribute(self, pid: int, ppid: int | None, daddr: str, ts_ns: int) -> str | None:
        """The name behind a destination, when the evidence is unambiguous; else None."""
        ip = _norm_ip(daddr) if daddr else None
        if ip is not None:
            name = self.hosts().get(ip)
            if name:
                return name
        for p in (pid, ppid):
            if not p:
                continue
            names = self.recent_names(p, ts_ns)
            if names:
                return next(iter(names)) if len(names) == 1 else None
        return None

    def __len__(self) -> int:
        return len(self._recent)
