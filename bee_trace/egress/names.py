"""Names for destinations, from the DNS answers the kernel learned (EV_DNS records): a network
record of a learned address carries the hash of the question name that taught it, and this table
gives that hash's name for that address. No answer, no name: a destination is never named after
what a process queried or after /etc/hosts."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from .. import records as R
from ..addr import addr_text
from ..procinfo import decode
from ..record_view import RecordView
from .policy import DNS_V_ALLOWED, DNS_V_BLOCKED


@dataclass
class Answer:
    name: str            # the question name (tail, "…"-prefixed when longer than the record)
    addr: str
    ttl: int
    verdict: int


@dataclass
class DomainTable:
    capacity: int = 10000
    learned: int = 0                     # EV_DNS records seen
    evictions: int = 0
    _names: OrderedDict[tuple[str, int], Answer] = field(default_factory=OrderedDict)

    def note(self, rec: RecordView) -> Answer:
        d = rec["u"]["dns"]
        n = int(d["name_len"])
        raw = bytes(d["name"])[:min(n, R.DNS_NAME_TAIL)]
        name = ("…" if n > R.DNS_NAME_TAIL else "") + decode(raw)
        ans = Answer(name, addr_text(int(d["family"]), bytes(d["addr"]))[1], int(d["ttl"]),
                     int(d["verdict"]))
        key = (ans.addr, int(d["name_hash"]))
        self._names[key] = ans
        self._names.move_to_end(key)
        self.learned += 1
        while len(self._names) > self.capacity:
            self._names.popitem(last=False)
            self.evictions += 1
        return ans

    def name(self, daddr: str, name_hash: int) -> str | None:
        ans = self._names.get((daddr, name_hash))
        return ans.name if ans else None

    def __len__(self) -> int:
        return len(self._names)


def verdict_text(v: int) -> str:
    if v & DNS_V_BLOCKED:
        return "blocked"
    return "allowed" if v & DNS_V_ALLOWED else "not_allowed"
