"""Egress acceptance tests: destinations from the cgroup hooks, DNS answers learned in the kernel
and the domain policy enforced there. Real sockets on loopback: a DNS server in this process on
127.0.0.153:53 (UDP and TCP), policies with allow_loopback false so enforcement is visible, and
the children in a cgroup of their own (the hooks attach there, so nothing else on the machine is
refused). Every pid asserted is the child's own, as it printed it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from egress_helpers import AAAA, CNAME, A, DnsServer, JobCgroup, Sink, run_client  # noqa: E402

from bee_trace import kernel as K  # noqa: E402
from bee_trace.config import parse_config  # noqa: E402

SERVER = "127.0.0.153"
ROGUE = "127.0.0.154"
V6 = "fd00:bee::1"
RECORDS = {
    "allowed.test": [(A, "127.0.1.1")],
    "api.wild.test": [(A, "127.0.1.2")],
    "wild.test": [(A, "127.0.1.3")],
    "cname.allowed.test": [(CNAME, "edge.othercdn.test")],
    "edge.othercdn.test": [(A, "127.0.1.4")],
    "evil.test": [(A, "127.0.1.5")],
    "blocked.allowed.test": [(A, "127.0.1.6")],
    "tcp.allowed.test": [(A, "127.0.1.7")],
    "v6.allowed.test": [(AAAA, V6)],
    "v6.evil.test": [(AAAA, "fd00:bee::2")],
    **{f"n{i}.allowed.test": [(A, f"127.0.3.{i}")] for i in range(1, 201)},
}
POLICY = f"""
network:
  mode: {{mode}}
  allowed_domains: ["allowed.test", "*.wild.test"]
  allowed_ips: ["127.0.2.0/24"]
  blocked_domains: ["blocked.allowed.test"]
  dns_servers: ["{SERVER}"]
  allow_loopback: false
"""


def _free(addr: str) -> bool:
    import socket
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind((addr, 53))
        return True
    except OSError:
        return False
    finally:
        s.close()


@pytest.fixture(scope="module")
def dns():
    for a in (SERVER, ROGUE):
        if not _free(a):
            pytest.fail(f"{a}:53 is taken: the egress tests need it for their DNS server")
    main = DnsServer(SERVER, RECORDS).start()
    rogue = DnsServer(ROGUE, {"evil.test": [(A, "127.0.1.5")], "allowed.test": [(A, "127.0.1.9")]}).start()
    yield main
    main.stop()
    rogue.stop()


@pytest.fixture(scope="module")
def v6addr():
    subprocess.run(["ip", "-6", "addr", "add", f"{V6}/128", "dev", "lo", "nodad"], check=True)
    subprocess.run(["ip", "-6", "addr", "add", "fd00:bee::2/128", "dev", "lo", "nodad"], check=True)
    try:
        yield V6
    finally:
        subprocess.run(["ip", "-6", "addr", "del", f"{V6}/128", "dev", "lo"])
        subprocess.run(["ip", "-6", "addr", "del", "fd00:bee::2/128", "dev", "lo"])


@pytest.fixture(scope="module")
def sink():
    s = Sink()
    yield s.port
    s.close()


@pytest.fixture
def job(monkeypatch):
    cg = JobCgroup(K.cgroup2_root())
    monkeypatch.setattr(K, "cgroup2_root", lambda: cg.path)
    try:
        yield cg
    finally:
        cg.remove()


def egress(monitor, mode: str = "block", text: str | None = None):
    cfg = parse_config(text or POLICY.format(mode=mode), "test")
    return monitor({"network_monitor"}, config=cfg, adaptive=False)


def net(m, pid: int, **want):
    def pred(e):
        return e["kind"] == "network" and e["pid"] == pid and all(e.get(k) == v for k, v in want.items())
    return m.wait_for(pred)


def refused(m, pid: int, daddr: str, dport: int, **extra):
    evs = net(m, pid, daddr=daddr, dport=dport, action="blocked", **extra)
    assert evs, f"no blocked event {extra} for {daddr}:{dport} from pid {pid}: " + repr(
        [e for e in m.events if e["kind"] == "network" and e["pid"] == pid])
    ev = evs[0]
    assert ev["lane"] == "critical" and ev["severity"] in ("high", "critical")
    assert ev["rule"] == "network.blocked"
    return ev


EPERM = f"errno {1}"


def test_connect_before_lookup_refused_then_allowed(monitor, job, dns, sink):
    m = egress(monitor)
    r = run_client([["connect", "127.0.1.1", sink],
                    ["resolve", "allowed.test", A, "udp", SERVER],
                    ["connect", "127.0.1.1", sink]], job)
    pid, (before, addrs, after) = r["pid"], r["results"]
    assert before == EPERM and addrs == ["127.0.1.1"] and after == "ok"
    ev = refused(m, pid, "127.0.1.1", sink, protocol="tcp", family="ipv4", domain=None,
                 policy="not_allowed", hook="connect")
    (ok,) = net(m, pid, daddr="127.0.1.1", dport=sink, action="allowed")
    assert ok["domain"] == "allowed.test" and ok["domain_source"] == "answer"
    assert ok["policy"] == "learned" and ok["protocol"] == "tcp"
    # the query itself: a dns_servers address on port 53
    (q,) = net(m, pid, daddr=SERVER, dport=53)
    assert q["action"] == "allowed" and q["policy"] == "dns_server" and q["protocol"] == "udp"
    assert ev["pid"] == pid and ev["comm"]


def test_lookup_then_connect_200_of_200(monitor, job, dns, sink):
    m = egress(monitor)
    r = run_client([["loop", 200, "n{}.allowed.test", SERVER, sink]], job)
    assert r["results"] == [200]
    m.settle(0.3)
    blocked = [e for e in m.events if e["kind"] == "network" and e["pid"] == r["pid"]
               and e["action"] == "blocked"]
    assert blocked == []
    s = m.pipeline.stop()
    assert s.egress["refused"] == 0 and s.egress["learned_new"] >= 200


def test_refusals_past_a_full_critical_ring_are_spilled_not_lost(monitor, job, dns, sink):
    """60 refused connects to distinct destinations while the reader does not read: the 4 KiB
    critical ring takes a dozen, the spill map the rest; each is reported once."""
    cfg = parse_config(POLICY.format(mode="block"), "test")
    m = monitor({"network_monitor"}, config=cfg, adaptive=False, ring_critical_bytes=4096)
    dests = [f"127.0.4.{i}" for i in range(1, 61)]
    r = run_client([["connect", d, sink] for d in dests], job)
    assert r["results"] == [EPERM] * len(dests)
    m.settle(0.5)
    blocked = [e for e in m.events if e["kind"] == "network" and e["pid"] == r["pid"]
               and e["action"] == "blocked"]
    assert sorted(e["daddr"] for e in blocked) == sorted(dests)
    assert all((e["dport"], e["lane"], e["policy"]) == (sink, "critical", "not_allowed") for e in blocked)
    late = [e for e in blocked if e.get("late")]
    crit = m.pipeline.loss_summary().to_json()["lanes"]["critical"]
    assert late and crit["spilled"] >= len(late)
    assert crit["ring_full"] == 0 and crit["spill_full"] == 0


def test_not_allowed_name_wildcard_and_cname(monitor, job, dns, sink):
    m = egress(monitor)
    r = run_client([["resolve", "evil.test", A, "udp", SERVER], ["connect", "127.0.1.5", sink],
                    ["resolve", "api.wild.test", A, "udp", SERVER], ["connect", "127.0.1.2", sink],
                    ["resolve", "wild.test", A, "udp", SERVER], ["connect", "127.0.1.3", sink],
                    ["resolve", "cname.allowed.test", A, "udp", SERVER], ["connect", "127.0.1.4", sink],
                    ["resolve", "blocked.allowed.test", A, "udp", SERVER], ["connect", "127.0.1.6", sink]],
                   job)
    pid, res = r["pid"], r["results"]
    assert res[0] == ["127.0.1.5"] and res[1] == EPERM
    assert res[2] == ["127.0.1.2"] and res[3] == "ok"           # *.wild.test: a subdomain
    assert res[4] == ["127.0.1.3"] and res[5] == EPERM          # ... not the apex
    assert res[6] == ["127.0.1.4"] and res[7] == "ok"           # CNAME chain from an allowed name
    assert res[8] == ["127.0.1.6"] and res[9] == EPERM          # blocked_domains under an allowed one
    refused(m, pid, "127.0.1.5", sink, policy="not_allowed")
    refused(m, pid, "127.0.1.3", sink, policy="not_allowed")
    refused(m, pid, "127.0.1.6", sink, policy="blocked_domain", domain="blocked.allowed.test")
    (wild,) = net(m, pid, daddr="127.0.1.2", action="allowed")
    assert wild["domain"] == "api.wild.test"
    (cn,) = net(m, pid, daddr="127.0.1.4", action="allowed")
    assert cn["domain"] == "cname.allowed.test" and cn["policy"] == "learned"


def test_dns_over_tcp_learned(monitor, job, dns, sink):
    m = egress(monitor)
    r = run_client([["resolve", "tcp.allowed.test", A, "tcp", SERVER], ["connect", "127.0.1.7", sink]], job)
    assert r["results"] == [["127.0.1.7"], "ok"]
    (ev,) = net(m, r["pid"], daddr="127.0.1.7", action="allowed")
    assert ev["domain"] == "tcp.allowed.test" and ev["policy"] == "learned"


def test_allowed_ips_and_unlisted_resolver(monitor, job, dns, sink):
    m = egress(monitor)
    r = run_client([["connect", "127.0.2.5", sink], ["resolve", "allowed.test", A, "udp", ROGUE],
                    ["sendto", ROGUE, 53], ["resolve", "allowed.test", A, "tcp", ROGUE]], job)
    pid, res = r["pid"], r["results"]
    assert res == ["ok", EPERM, EPERM, EPERM]
    (ok,) = net(m, pid, daddr="127.0.2.5", action="allowed")
    assert ok["policy"] == "allowed_ip" and ok["domain"] is None
    refused(m, pid, ROGUE, 53, protocol="udp", hook="sendmsg")
    refused(m, pid, ROGUE, 53, protocol="tcp", hook="connect")


def test_ipv6_aaaa_learned_and_enforced(monitor, job, dns, sink, v6addr):
    m = egress(monitor)
    r = run_client([["connect", V6, sink], ["resolve", "v6.allowed.test", AAAA, "udp", SERVER],
                    ["connect", V6, sink], ["resolve", "v6.evil.test", AAAA, "udp", SERVER],
                    ["connect", "fd00:bee::2", sink], ["connect", "::ffff:127.0.1.5", sink]], job)
    pid, res = r["pid"], r["results"]
    assert res == [EPERM, [V6], "ok", ["fd00:bee::2"], EPERM, EPERM]
    refused(m, pid, V6, sink, family="ipv6")
    (ok,) = net(m, pid, daddr=V6, action="allowed")
    assert ok["domain"] == "v6.allowed.test" and ok["family"] == "ipv6"
    refused(m, pid, "fd00:bee::2", sink, family="ipv6")
    refused(m, pid, "127.0.1.5", sink, family="ipv4")       # IPv4-mapped on an IPv6 socket


def test_evasions_sendmmsg_second_message_and_fast_open(monitor, job, dns, sink):
    m = egress(monitor)
    r = run_client([["resolve", "allowed.test", A, "udp", SERVER],
                    ["sendmmsg", [["127.0.1.1", 9999], ["127.0.1.5", 9998]]],
                    ["tfo", "127.0.1.5", sink]], job)
    pid, res = r["pid"], r["results"]
    assert res[0] == ["127.0.1.1"]
    assert res[1] == 1                      # the first message went, the second was refused
    assert res[2] == EPERM
    (first,) = net(m, pid, daddr="127.0.1.1", dport=9999)
    assert first["action"] == "allowed" and first["hook"] == "sendmsg" and first["protocol"] == "udp"
    refused(m, pid, "127.0.1.5", 9998, protocol="udp", hook="sendmsg")
    refused(m, pid, "127.0.1.5", sink, protocol="tcp", hook="connect")


def test_raw_and_packet_sockets_refused(monitor, job, dns):
    m = egress(monitor)
    r = run_client([["raw", "raw"], ["raw", "raw6"]], job)
    pid, res = r["pid"], r["results"]
    assert res == [EPERM, EPERM]
    evs = m.wait_for(lambda e: e["pid"] == pid and e.get("op") == "socket" and e["family"] == "ipv6")
    evs = [e for e in m.events if e["pid"] == pid and e.get("op") == "socket"]
    by_family = {e["family"]: e for e in evs}
    assert set(by_family) == {"ipv4", "ipv6"}
    assert by_family["ipv4"]["socket_type"] == "raw" and by_family["ipv4"]["protocol"] == "icmp"
    assert by_family["ipv6"]["protocol"] == "icmpv6"
    assert all(e["action"] == "blocked" and e["lane"] == "critical" and e["severity"] == "high"
               and e["rule"] == "network.bypass_socket" for e in evs)
    # AF_PACKET is created outside inet_create (no cgroup hook): killed at socket() entry.
    code = "import os, socket, sys; print(os.getpid(), flush=True); socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0); print('created')"  # noqa: E501
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, preexec_fn=job.enter)
    assert p.returncode == -9 and "created" not in p.stdout
    pid = int(p.stdout.split()[0])
    (ev,) = m.wait_for(lambda e: e["pid"] == pid and e.get("op") == "socket")
    assert ev["family"] == "packet" and ev["action"] == "blocked" and ev["enforcement"] == "killed"


def test_audit_mode_reports_without_refusing(monitor, job, dns, sink):
    m = egress(monitor, mode="audit")
    r = run_client([["connect", "127.0.1.5", sink], ["raw", "raw"]], job)
    assert r["results"] == ["ok", "ok"]
    (ev,) = net(m, r["pid"], daddr="127.0.1.5", dport=sink)
    assert ev["action"] == "allowed" and ev["not_allowed"] is True and ev["policy"] == "not_allowed"
    assert ev["severity"] == "high" and ev["lane"] == "bulk"
    (s,) = m.wait_for(lambda e: e["pid"] == r["pid"] and e.get("op") == "socket")
    assert s["action"] == "allowed" and s["severity"] == "high"


def _our_programs(path: str) -> list[str]:
    out = subprocess.run(["bpftool", "cgroup", "show", path], capture_output=True, text=True).stdout
    ours = ("net_connect4", "net_connect6", "net_sendmsg4", "net_sendmsg6", "dns_ingress", "sock_create")
    return [line for line in out.splitlines() if any(n in line for n in ours)]


def test_hooks_on_root_cgroup_and_detached_after_stop(monitor):
    """Audit mode (refuses nothing): the hooks sit on the cgroup v2 root while running, and none
    of ours remains after the agent stops."""
    root = K.cgroup2_root()
    assert _our_programs(root) == []
    m = monitor({"network_monitor"})
    attached = _our_programs(root)
    assert len(attached) == 6, attached
    m.pipeline.stop()
    assert _our_programs(root) == []


def test_root_hooks_see_processes_in_any_cgroup(monitor, sink):
    """Attached at the root, the hooks see every process: the destination and the process
    context of a plain connect come from the hook."""
    m = monitor({"network_monitor"}, config=parse_config("network:\n  report_loopback: true\n", "t"))
    code = textwrap.dedent(f"""
        import os, socket
        s = socket.socket(); s.connect(("127.0.0.1", {sink})); print(os.getpid())
    """)
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    pid = int(p.stdout)
    (ev,) = net(m, pid, daddr="127.0.0.1", dport=sink)
    assert ev["hook"] == "connect" and ev["uid"] == os.getuid() and ev["protocol"] == "tcp"
    assert ev["comm"] == os.path.basename(sys.executable)[:15]
    assert ev["cgroup_id"] and ev["domain"] is None and ev["loopback"] is True


@pytest.fixture(scope="module")
def evasion_helper(tmp_path_factory):
    src = os.path.join(os.path.dirname(__file__), "helpers", "connect_evasion.c")
    out = str(tmp_path_factory.mktemp("egress") / "connect_evasion")
    subprocess.run(["gcc", "-O1", "-Wall", "-o", out, src], check=True)
    return out


@pytest.mark.parametrize("path", ["uring", "compat"])
def test_evasions_io_uring_and_compat_connect_refused(monitor, job, dns, sink, evasion_helper, path):
    """IORING_OP_CONNECT and the ia32 connect (int $0x80) make no syscall-tracepoint event; the
    cgroup hook sees both, refuses them and reports the helper's pid."""
    m = egress(monitor)
    p = subprocess.run([evasion_helper, path, "127.0.1.5", str(sink)], capture_output=True, text=True,
                       timeout=30, preexec_fn=job.enter, check=True)
    lines = dict(line.split() for line in p.stdout.splitlines())
    assert lines["result"] == "-1"           # EPERM from the hook
    refused(m, int(lines["pid"]), "127.0.1.5", sink, protocol="tcp", hook="connect",
            policy="not_allowed", comm="connect_evasion")


def test_policy_learn_output_runs_the_workload_with_zero_refusals(monitor, job, dns, sink, v6addr,
                                                                 tmp_path):
    from bee_trace.egress.learn import learn, to_yaml

    workload = [["resolve", "allowed.test", A, "udp", SERVER], ["connect", "127.0.1.1", sink],
                ["resolve", "evil.test", A, "tcp", SERVER], ["connect", "127.0.1.5", sink],
                ["resolve", "v6.allowed.test", AAAA, "udp", SERVER], ["connect", V6, sink],
                ["connect", "fd00:bee::2", sink], ["sendto", "fd00:bee::2", 9999]]
    audit = egress(monitor, text=f'network:\n  dns_servers: ["{SERVER}"]\n')
    r = run_client(workload, job)
    assert r["results"] == [["127.0.1.1"], "ok", ["127.0.1.5"], "ok", [V6], "ok", "ok", "ok"]
    audit.wait_for(lambda e: e["pid"] == r["pid"] and e.get("daddr") == "fd00:bee::2" and e["dport"] == 9999)
    audit.pipeline.stop()
    jsonl = tmp_path / "audit.jsonl"
    jsonl.write_text("".join(json.dumps(e, default=str) + "\n" for e in audit.events))
    out = tmp_path / "policy.yml"
    from bee_trace.cli import main
    assert main(["policy", "learn", str(jsonl), "-o", str(out)]) == 0
    text = out.read_text()
    learned = parse_config(text, str(out)).network
    assert learned.mode == "block" and learned.allow_loopback is False
    # v6.allowed.test was reached too: "allowed.test" covers it
    assert set(learned.allowed_domains) == {"allowed.test", "evil.test"}
    assert learned.allowed_ips == ("fd00:bee::2/128",) and learned.dns_servers == (SERVER,)
    assert to_yaml(learn(audit.events), str(jsonl)) == text
    # fed back in block mode: the same workload, nothing refused
    m = egress(monitor, text=text)
    r = run_client(workload, job)
    assert r["results"] == [["127.0.1.1"], "ok", ["127.0.1.5"], "ok", [V6], "ok", "ok", "ok"]
    m.wait_for(lambda e: e["pid"] == r["pid"] and e.get("daddr") == "fd00:bee::2" and e["dport"] == 9999)
    assert [e for e in m.events if e["kind"] == "network" and e["action"] == "blocked"] == []
    assert m.pipeline.stop().egress["refused"] == 0
    # and a connect outside it is refused: the policy is not allow-all
    m = egress(monitor, text=text)
    r = run_client([["connect", "127.0.1.2", sink]], job)
    assert r["results"] == [EPERM]
    refused(m, r["pid"], "127.0.1.2", sink)


def test_fail_closed_survives_the_agent_until_unblock(monitor, job, dns, sink):
    """Pinned links keep refusing after the agent has stopped (its maps and fds are gone);
    `bee-trace unblock` removes them. Without fail_closed nothing stays attached."""
    from bee_trace.cli import main
    from bee_trace.egress import pins

    assert pins.pinned() == []
    text = POLICY.format(mode="block") + "  fail_closed: true\n"
    try:
        m = egress(monitor, text=text)
        assert sorted(pins.pinned()) == sorted(["dns_ingress", "net_connect4", "net_connect6", "net_sendmsg4",
                                                "net_sendmsg6", "sock_create", "sock_socket"])
        m.pipeline.stop()
        assert len(_our_programs(job.path)) == 6
        r = run_client([["connect", "127.0.1.5", sink], ["resolve", "allowed.test", A, "udp", SERVER],
                        ["connect", "127.0.1.1", sink], ["raw", "raw"]], job)
        assert r["results"] == [EPERM, ["127.0.1.1"], "ok", EPERM]     # still enforcing, still learning
    finally:
        assert main(["unblock"]) == 0
    assert pins.pinned() == [] and _our_programs(job.path) == []
    r = run_client([["connect", "127.0.1.5", sink]], job)
    assert r["results"] == ["ok"]
    with pytest.raises(Exception, match="fail_closed"):
        parse_config("network:\n  fail_closed: true\n", "t")
