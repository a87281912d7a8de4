"""One address normalisation: IPv4-mapped IPv6 is IPv4 in events, policy and the learned names."""

from __future__ import annotations

import ipaddress

from bee_trace.addr import AF_INET, AF_INET6, addr_text, parse_addr


def test_kernel_addresses_as_text() -> None:
    mapped = ipaddress.IPv6Address("::ffff:1.2.3.4").packed
    assert addr_text(AF_INET6, mapped) == ("ipv4", "1.2.3.4")
    assert addr_text(AF_INET6, ipaddress.IPv6Address("2001:db8::1").packed) == ("ipv6", "2001:db8::1")
    assert addr_text(AF_INET, bytes([10, 0, 0, 1]) + bytes(12)) == ("ipv4", "10.0.0.1")
    assert addr_text(99, bytes(16)) == ("unknown", "")


def test_text_parsed_back() -> None:
    assert parse_addr("::ffff:10.1.2.3") == ipaddress.IPv4Address("10.1.2.3")
    assert parse_addr("fe80::1%eth0") == ipaddress.IPv6Address("fe80::1")
    assert parse_addr("example.com") is None and parse_addr(None) is None
