"""Egress policy without a kernel: the name hash mirror, policy entries, config keys, learned
allowlists and drift."""

from __future__ import annotations

import json

import pytest

from bee_trace.classify import classify, domain_matches
from bee_trace.config import ConfigError, default_config, parse_config
from bee_trace.egress import learn as L
from bee_trace.egress import policy as P


def test_suffix_hash_is_the_hash_of_the_suffix():
    # The kernel walks backwards: the value at a label boundary equals the suffix's own hash.
    k = 0x1234
    assert P.name_hash(k, "github.com") != P.name_hash(k, "api.github.com")
    assert P.name_hash(k, "github.com") != P.name_hash(k + 1, "github.com")   # keyed
    h = k
    for c in reversed(b"api.github.com"[4:]):
        h = P._step(h, c)
    assert P._final(h) == P.name_hash(k, "github.com")


def test_policy_entries_flags():
    e = P.policy_entries(7, ("github.com", "*.githubusercontent.com"), ("evil.example", "*.bad.org"))
    assert e[P.name_hash(7, "github.com")] == P.POL_ALLOW
    assert e[P.name_hash(7, "githubusercontent.com")] == P.POL_ALLOW_SUB
    assert e[P.name_hash(7, "evil.example")] == P.POL_BLOCK
    assert e[P.name_hash(7, "bad.org")] == P.POL_BLOCK


def test_config_keys_and_wildcards():
    cfg = parse_config("""
network:
  mode: block
  allowed_domains: ["GitHub.com.", "*.githubusercontent.com"]
  allowed_ips: ["140.82.112.0/20", "2001:db8::1"]
  dns_servers: ["127.0.0.53", "fe80::1%eth0"]
  allow_loopback: false
""", "t")
    n = cfg.network
    assert n.allowed_domains == ("github.com", "*.githubusercontent.com")
    assert n.allowed_ips == ("140.82.112.0/20", "2001:db8::1") and n.allow_loopback is False
    pol = P.EgressPolicy.from_config(n)
    assert pol.enforce and pol.block and [str(a) for a in pol.server_addrs()] == ["127.0.0.53", "fe80::1"]
    for bad in ("allowed_ips: ['nope']", "dns_servers: ['1.2.3.0/24']", "allowed_domains: ['a..b']",
                "allow_loopback: maybe"):
        with pytest.raises(ConfigError):
            parse_config(f"network:\n  {bad}\n", "t")
    assert default_config().network.allow_loopback is True and not P.EgressPolicy().enforce


def test_original_schema_still_parses():
    with open("/work/shared/compat/original-security.yml") as f:
        cfg = parse_config(f.read(), "original")
    assert cfg.network.blocked_domains and cfg.network.allowed_ips == ()


def test_domain_matches_wildcard_is_subdomains_only():
    assert domain_matches("a.x.com", ["*.x.com"]) == "*.x.com"
    assert domain_matches("x.com", ["*.x.com"]) is None
    assert domain_matches("evilx.com", ["*.x.com"]) is None
    assert domain_matches("x.com", ["x.com"]) == "x.com"


def test_default_dns_servers(tmp_path):
    rc = tmp_path / "resolv.conf"
    rc.write_text("# c\nnameserver 127.0.0.53\noptions edns0\n")
    up = tmp_path / "up.conf"
    up.write_text("nameserver 10.0.0.2\nnameserver 127.0.0.53\n")
    assert P.default_dns_servers(str(rc), str(up)) == ["127.0.0.53", "10.0.0.2"]
    rc.write_text("nameserver 10.1.1.1\n")
    assert P.default_dns_servers(str(rc), str(up)) == ["10.1.1.1"]


def ev(daddr, dport=443, domain=None, action="allowed", proto="tcp"):
    return {"kind": "network", "daddr": daddr, "dport": dport, "domain": domain, "protocol": proto,
            "domain_source": "answer" if domain else None, "action": action, "pid": 5, "comm": "curl"}


WORKLOAD = [
    ev("10.0.0.2", 53, proto="udp"), ev("140.82.112.3", domain="github.com"),
    ev("1.1.1.1", domain="a.cdn.example"), ev("1.1.1.2", domain="b.cdn.example"),
    ev("1.1.1.3", domain="c.cdn.example"), ev("9.9.9.9"), ev("127.0.0.1", 8080),
    ev("6.6.6.6", domain="bad\nname"), ev("7.7.7.7", action="blocked"),
    {"kind": "network", "op": "socket", "daddr": None}, {"kind": "summary"},
]


def test_fold_leaves_out_covered_names():
    assert L.fold_domains({"v6.a.test", "a.test", "b.test"}) == ["a.test", "b.test"]
    assert L.fold_domains({"x.p.test", "y.p.test", "z.p.test", "p.test", "w.x.p.test"}) == ["p.test"]


def test_learn_folds_and_writes_a_policy_that_parses():
    got = L.learn(WORKLOAD)
    assert got.domains == ["github.com", "*.cdn.example"]     # grouped by TLD, then name
    assert got.ips == ["6.6.6.6", "9.9.9.9"] and got.dns_servers == ["10.0.0.2"]
    assert got.skipped_blocked == 1 and got.skipped_names == 1
    text = L.to_yaml(got, "ev\n.jsonl")
    cfg = parse_config(text, "learned")
    assert cfg.network.mode == "block" and cfg.network.allowed_domains == ("github.com", "*.cdn.example")
    assert cfg.network.allowed_ips == ("6.6.6.6/32", "9.9.9.9/32")
    assert "\nev\n" not in text                       # the source name is quoted
    # fed back: the same workload has no new destination but the attempt it was refused
    assert [(d["daddr"], d["action"]) for d in L.new_destinations(WORKLOAD, cfg.network)] == [
        ("7.7.7.7", "blocked")]


def test_drift_lists_new_destinations_once():
    cfg = parse_config(L.to_yaml(L.learn(WORKLOAD[:3]), "x"), "t")
    drift = L.new_destinations(WORKLOAD + [ev("9.9.9.9")], cfg.network)
    assert [(d["domain"], d["daddr"]) for d in drift] == [
        ("b.cdn.example", "1.1.1.2"), ("c.cdn.example", "1.1.1.3"),
        (None, "9.9.9.9"), (None, "127.0.0.1"), ("bad\nname", "6.6.6.6"), (None, "7.7.7.7")]
    md = L.drift_text("# r\n", "markdown", drift, "p|.yml")
    assert "bad\nname" not in md and "New destinations" in md
    js = json.loads(L.drift_text('{"a": 1}', "json", drift, "p.yml"))
    assert len(js["new_destinations"]["destinations"]) == 6


def test_classify_socket_and_not_allowed():
    cfg = default_config()
    s = {"kind": "network", "op": "socket", "action": "blocked", "daddr": None}
    classify(s, cfg)
    assert s["rule"] == "network.bypass_socket" and s["severity"] == "high"
    n = {"kind": "network", "daddr": "127.0.0.5", "dport": 80, "not_allowed": True, "action": "allowed"}
    classify(n, cfg)
    assert n["rule"] == "network.not_allowed" and n["severity"] == "high"
