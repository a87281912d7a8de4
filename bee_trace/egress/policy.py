"""The egress policy as the kernel holds it: the keyed name hash (mirror of name_step/name_final
in bpf/egress.bpf.c), policy entries per name, the resolvers answers are learned from, allowed
CIDRs and the settings slot. Everything here is decided from the config; the kernel only looks up."""

from __future__ import annotations

import ipaddress
import os
import struct
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from .. import records as R
from ..addr import AF_INET, AF_INET6, parse_addr

if TYPE_CHECKING:
    from ..config import NetworkConfig

M64 = (1 << 64) - 1
POL_ALLOW, POL_ALLOW_SUB, POL_BLOCK = 1, 2, 4
DNS_V_ALLOWED, DNS_V_BLOCKED = 1, 2
TTL_FLOOR_S = 30        # learned addresses live at least this long (clients cache past a TTL of 0)
TTL_CAP_S = 3600        # and at most an hour (an address may change hands)
RESOLV_CONF = "/etc/resolv.conf"
RESOLVED_UPSTREAM = "/run/systemd/resolve/resolv.conf"
RESOLVED_STUB = "127.0.0.53"

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def _step(h: int, c: int) -> int:
    h = ((h ^ c) * 0x100000001B3) & M64
    return h ^ (h >> 29)


def _final(h: int) -> int:
    h ^= h >> 33
    h = (h * 0xFF51AFD7ED558CCD) & M64
    h ^= h >> 33
    h = (h * 0xC4CEB9FE1A85EC53) & M64
    return (h ^ (h >> 33)) | 1


def name_hash(key: int, name: str) -> int:
    """The kernel's hash of a name in text form (lower case, no trailing dot)."""
    h = key
    for c in reversed(name.encode("ascii", "replace")):
        h = _step(h, c)
    return _final(h)


def policy_entries(key: int, allowed: tuple[str, ...], blocked: tuple[str, ...]) -> dict[int, int]:
    """name hash -> POL_* flags. allowed "x": x and its subdomains; "*.x": subdomains only;
    blocked "x": x and its subdomains."""
    out: dict[int, int] = {}
    for p in allowed:
        if p.startswith("*."):
            h, f = name_hash(key, p[2:]), POL_ALLOW_SUB
        else:
            h, f = name_hash(key, p), POL_ALLOW
        out[h] = out.get(h, 0) | f
    for p in blocked:
        h = name_hash(key, p.removeprefix("*."))
        out[h] = out.get(h, 0) | POL_BLOCK
    return out


def _nameservers(path: str) -> list[str]:
    out = []
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 2 and parts[0] == "nameserver":
                    out.append(parts[1])
    except OSError:
        pass
    return out


def default_dns_servers(resolv_conf: str = RESOLV_CONF, upstream: str = RESOLVED_UPSTREAM) -> list[str]:
    """Nameservers of /etc/resolv.conf; behind the systemd-resolved stub also the upstreams it
    forwards to (its own queries go through the same hooks)."""
    servers = _nameservers(resolv_conf)
    if RESOLVED_STUB in servers:
        servers += [s for s in _nameservers(upstream) if s not in servers]
    return servers


def addr_key(a: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bytes:
    """struct addr_key: family, then the address (IPv4 in the first 4 of 16 bytes)."""
    fam = AF_INET if a.version == 4 else AF_INET6
    return struct.pack("<I", fam) + a.packed.ljust(16, b"\0")


@dataclass
class EgressPolicy:
    """What network.* asks of the kernel's egress hooks."""

    block: bool = False
    allowed_domains: tuple[str, ...] = ()
    blocked_domains: tuple[str, ...] = ()
    allowed_ips: tuple[IPNetwork, ...] = ()
    dns_servers: tuple[str, ...] = ()
    allow_loopback: bool = True
    ttl_floor_s: int = TTL_FLOOR_S
    ttl_cap_s: int = TTL_CAP_S
    hash_key: int = field(default_factory=lambda: int.from_bytes(os.urandom(8), "little"))

    @classmethod
    def from_config(cls, net: NetworkConfig) -> EgressPolicy:
        servers = tuple(net.dns_servers) if net.dns_servers else tuple(default_dns_servers())
        return cls(block=net.mode == "block", allowed_domains=tuple(net.allowed_domains),
                   blocked_domains=tuple(net.blocked_domains),
                   allowed_ips=tuple(ipaddress.ip_network(x, strict=False) for x in net.allowed_ips),
                   dns_servers=servers, allow_loopback=net.allow_loopback)

    @property
    def enforce(self) -> bool:
        """An allowlist is set: everything else is refused in block mode (flagged in audit)."""
        return bool(self.allowed_domains or self.allowed_ips)

    def server_addrs(self) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
        return [a for a in (parse_addr(s) for s in self.dns_servers) if a is not None]

    def settings(self) -> np.ndarray:
        s = np.zeros(1, dtype=R.egress_settings_dtype)
        s["hash_key"] = self.hash_key
        s["ttl_floor_ns"] = self.ttl_floor_s * 1_000_000_000
        s["ttl_cap_ns"] = self.ttl_cap_s * 1_000_000_000
        s["enforce"] = int(self.enforce)
        s["allow_loopback"] = int(self.allow_loopback)
        s["block_sockets"] = int(self.block)
        return s

    def apply(self, kernel: object) -> None:
        """Write the policy into the loaded object's maps (before the hooks attach)."""
        m = kernel.map  # type: ignore[attr-defined]
        pol = m("egress_policy")
        for h, flags in policy_entries(self.hash_key, self.allowed_domains, self.blocked_domains).items():
            pol.update(struct.pack("<Q", h), struct.pack("<I", flags))
        servers = m("dns_servers")
        for a in self.server_addrs():
            servers.update(addr_key(a), b"\x01")
        v4, v6 = m("allowed_v4"), m("allowed_v6")
        for net in self.allowed_ips:
            key = struct.pack("<I", net.prefixlen) + net.network_address.packed
            (v4 if net.version == 4 else v6).update(key, b"\x01")
        m("egress_settings").update(struct.pack("<I", 0), self.settings().tobytes())
