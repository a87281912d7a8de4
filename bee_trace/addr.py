"""Addresses, one way everywhere: the kernel's (family, 16 bytes) as text and the text of events
and policy parsed back, IPv4-mapped IPv6 always shown and compared as the IPv4 address it maps
(design §5: `daddr` shows ::ffff:a.b.c.d as a.b.c.d)."""

from __future__ import annotations

import ipaddress
import socket

AF_INET, AF_INET6 = 2, 10     # the kernel's address families (sa_family)
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def unmapped(a: IPAddress) -> IPAddress:
    """::ffff:a.b.c.d -> a.b.c.d; any other address unchanged."""
    if isinstance(a, ipaddress.IPv6Address) and a.ipv4_mapped is not None:
        return a.ipv4_mapped
    return a


def parse_addr(text: object) -> IPAddress | None:
    """An address in an event or a policy (an IPv6 zone id is dropped); None if it is not one."""
    if not isinstance(text, str):
        return None
    if ":" not in text:
        # The common case, 10× faster than ipaddress's parser: a canonical dotted quad (the
        # text inet_ntop gives back for it); anything else goes the strict way below.
        try:
            packed = socket.inet_pton(socket.AF_INET, text)
        except OSError:
            packed = b""
        if packed and socket.inet_ntop(socket.AF_INET, packed) == text:
            return ipaddress.IPv4Address(packed)
    try:
        return unmapped(ipaddress.ip_address(text.split("%", 1)[0]))
    except ValueError:
        return None


def addr_text(family: int, raw: bytes) -> tuple[str, str]:
    """(family name, address text) of a kernel address: IPv6 compressed, IPv4-mapped as IPv4."""
    if family == AF_INET:
        return "ipv4", socket.inet_ntop(socket.AF_INET, raw[:4])  # ipaddress's text, 10× faster
    if family == AF_INET6:
        a = unmapped(ipaddress.IPv6Address(raw[:16]))
        return ("ipv4" if a.version == 4 else "ipv6"), str(a)
    return "unknown", ""
