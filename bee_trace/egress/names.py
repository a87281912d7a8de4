"""Names for destinations, from the DNS answers the kernel learned (EV_DNS records): a network
record of a learned address carries the hash of the question name that taught it, and this table
gives that hash's name for that address. No answer, no name: a destination is never named after
what a process queried or after /etc/hosts.

The table mirrors the kernel's learned table, which holds one name per address until the
answer's life ends: an entry is dropped (expire()) a grace period after its life ended or after
a newer answer gave its address another name (records already in a ring may still carry it)."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from .. import records as R
from ..addr import addr_text
from ..procinfo import decode
from ..record_view import RecordView
from .policy import DNS_V_ALLOWED, DNS_V_BLOCKED

NAME_GRACE_NS = 30 * 1_000_000_000   # records taught by an answer outlive it in the rings this long
_NS = 1_000_000_000


@dataclass(slots=True)
class Answer:
    name: str            # the question name (tail, "…"-prefixed when longer than the record)
    addr: str
    ttl: int             # the life the kernel gave it (s)
    verdict: int
    expires_ns: int = 0  # CLOCK_BOOTTIME: when the kernel stops naming its address with it


@dataclass
class DomainTable:
    capacity: int = 10000
    learned: int = 0                     # EV_DNS records seen
    evictions: int = 0                   # pushed out by the bound while still live
    expired: int = 0                     # dropped after their life or a newer name (expire())
    _names: OrderedDict[tuple[str, int], Answer] = field(default_factory=OrderedDict)
    _newest: dict[str, int] = field(default_factory=dict)    # address -> its name's hash

    def note(self, rec: RecordView) -> Answer:
        d = rec["u"]["dns"]
        n = int(d["name_len"])
        raw = bytes(d["name"])[:min(n, R.DNS_NAME_TAIL)]
        name = ("…" if n > R.DNS_NAME_TAIL else "") + decode(raw)
        now = int(rec["h"]["ts_ns"])
        ans = Answer(name, addr_text(int(d["family"]), bytes(d["addr"]))[1], int(d["ttl"]),
                     int(d["verdict"]), now + int(d["ttl"]) * _NS)
        name_hash = int(d["name_hash"])
        key = (ans.addr, name_hash)
        prev_hash = self._newest.get(ans.addr)
        prev = None if prev_hash is None else self._names.get((ans.addr, prev_hash))
        if prev is not None and prev.expires_ns > now:
            # An answer for a live address: the kernel keeps the longer life, and another name
            # relabels its entry (the old name is no longer put on new records).
            ans.expires_ns = max(ans.expires_ns, prev.expires_ns)
            if prev_hash != name_hash:
                prev.expires_ns = now
        self._newest[ans.addr] = name_hash
        self._names[key] = ans
        self._names.move_to_end(key)
        self.learned += 1
        while len(self._names) > self.capacity:
            (addr, h), _ = self._names.popitem(last=False)
            self._forget_newest(addr, h)
            self.evictions += 1
        return ans

    def _forget_newest(self, addr: str, name_hash: int) -> None:
        if self._newest.get(addr) == name_hash:
            del self._newest[addr]

    def expire(self, now_ns: int, grace_ns: int = NAME_GRACE_NS) -> int:
        """Drop the names the kernel stopped using more than grace_ns before now_ns
        (CLOCK_BOOTTIME); returns how many. Walks the whole table: call it rarely."""
        old = [k for k, a in self._names.items() if now_ns - a.expires_ns > grace_ns]
        for key in old:
            del self._names[key]
            self._forget_newest(*key)
        self.expired += len(old)
        return len(old)

    def name(self, daddr: str, name_hash: int) -> str | None:
        ans = self._names.get((daddr, name_hash))
        return ans.name if ans else None

    def __len__(self) -> int:
        return len(self._names)


def verdict_text(v: int) -> str:
    if v & DNS_V_BLOCKED:
        return "blocked"
    return "allowed" if v & DNS_V_ALLOWED else "not_allowed"
