import pytest

from bee_trace.classify import (
    classify,
    domain_matches,
    env_secret_names,
    is_loopback,
    meets,
    severity_rank,
)
from bee_trace.config import Config, parse_config

CFG = Config()
BANDS = {"low": (10, 30), "medium": (40, 60), "high": (70, 85), "critical": (90, 100)}


def ev(kind: str, **kw) -> dict:
    base = {"kind": kind, "pid": 100, "tid": 100, "ppid": 1, "uid": 0, "comm": "cat",
            "exe": "/usr/bin/cat", "cmdline": "", "ancestry": ["bash"]}
    base.update(kw)
    return base


def run(e: dict, cfg: Config = CFG) -> dict:
    classify(e, cfg)
    lo, hi = BANDS[e["severity"]]
    assert lo <= e["risk"] <= hi, e
    assert isinstance(e["rule"], str) and isinstance(e["category"], str)
    return e


@pytest.mark.parametrize(
    "path,severity,rule",
    [
        ("/home/u/.ssh/id_rsa", "critical", "file.ssh_key.read"),
        ("/root/.ssh/id_ed25519", "critical", "file.ssh_key.read"),
        ("/tmp/t/id_rsa", "critical", "file.ssh_key.read"),
        ("/etc/ssh/ssh_host_rsa_key", "critical", "file.ssh_key.read"),
        ("/home/u/.aws/credentials", "critical", "file.cloud_credential.read"),
        ("/home/u/.kube/config", "critical", "file.cloud_credential.read"),
        ("/home/u/.config/gcloud/application_default_credentials.json", "critical",
         "file.cloud_credential.read"),
        ("/home/u/.azure/accessTokens.json", "critical", "file.cloud_credential.read"),
        ("/srv/app/.env", "high", "file.credential.read"),
        ("/srv/app/.env.production", "high", "file.credential.read"),
        ("/home/u/.docker/config.json", "high", "file.credential.read"),
        ("/etc/shadow", "high", "file.credential.read"),
        ("/home/u/.git-credentials", "high", "file.credential.read"),
        ("/etc/ssl/private/server.key", "high", "file.private_key.read"),
        ("/x/cert.pem", "high", "file.private_key.read"),
        ("/x/cert.crt", "medium", "file.watched.read"),  # public certificate: file_access level
        ("/home/u/.ssh/id_rsa.pub", "medium", "file.watched.read"),
        ("/home/u/notes.txt", "low", "file.unwatched.read"),
        ("/repo/.git/id_rsa", "low", "file.excluded.read"),
        ("/repo/node_modules/x/server.key", "low", "file.excluded.read"),
    ],
)
def test_file_reads(path: str, severity: str, rule: str) -> None:
    e = run(ev("file", path=path, access="read"))
    assert (e["severity"], e["rule"]) == (severity, rule)
    assert e["category"] == "file_access"


def test_ssh_key_riskier_than_env() -> None:
    a = run(ev("file", path="/h/.ssh/id_rsa", access="read"))
    b = run(ev("file", path="/h/.env", access="read"))
    assert a["risk"] > b["risk"]


def test_key_write_is_high() -> None:
    e = run(ev("file", path="/home/u/.ssh/authorized_keys", access="write"))
    assert (e["severity"], e["rule"]) == ("high", "file.key.write")
    e = run(ev("file", path="/home/u/.ssh/id_rsa", access="write"))
    assert e["rule"] == "file.key.write"


def test_write_to_read_only_watched_file_keeps_read_class() -> None:
    e = run(ev("file", path="/srv/.env", access="write"))
    assert (e["severity"], e["rule"]) == ("high", "file.credential.write")


def test_allowed_process_is_not_high() -> None:
    cfg = parse_config("files:\n  allowed_processes: [env, /opt/tool/bin/*, 'comm:ssh']\n", "x")
    for exe, comm in (("/usr/bin/env", "x"), ("/opt/tool/bin/sync", "x"), ("", "ssh")):
        e = run(ev("file", path="/h/.ssh/id_rsa", access="read", comm=comm, exe=exe), cfg)
        assert (e["severity"], e["rule"]) == ("low", "file.ssh_key.read.allowed"), exe
    # a process that names itself (comm) or its binary like an allowed one gains nothing
    for exe, comm in (("/tmp/env", "env"), ("/usr/bin/python3", "env"), ("/tmp/bin/env", "python3")):
        e = run(ev("file", path="/h/.ssh/id_rsa", access="read", comm=comm, exe=exe), cfg)
        assert e["severity"] == "critical", exe


def test_file_access_level_from_config() -> None:
    cfg = parse_config("reporting:\n  severity_levels:\n    file_access: low\n", "x")
    assert run(ev("file", path="/x/a.crt", access="read"), cfg)["severity"] == "low"
    cfg = parse_config("reporting:\n  severity_levels:\n    file_access: critical\n", "x")
    assert run(ev("file", path="/x/.env", access="read"), cfg)["severity"] == "critical"


def test_truncated_unmatched_path_is_not_dropped() -> None:
    e = run(ev("file", path="/very/long/prefix", access="read", truncated=True))
    assert e["rule"] == "file.unconfirmed.read"
    assert e["severity"] == "medium"


def test_user_watch_glob() -> None:
    cfg = parse_config("files:\n  watch_read: ['/opt/secret/**']\n", "x")
    e = run(ev("file", path="/opt/secret/a/b", access="read"), cfg)
    assert (e["severity"], e["rule"]) == ("medium", "file.watched.read")
    # Not in the user's list any more: the built-in list is replaced, not merged.
    assert run(ev("file", path="/h/.ssh/id_rsa", access="read"), cfg)["rule"] == "file.unwatched.read"


# ------------------------------------------------------------------ memory


def test_memory_access_to_other_process_is_high() -> None:
    e = run(ev("memory", technique="ptrace", target_pid=200, target_comm="sleep"))
    assert (e["severity"], e["rule"], e["category"]) == ("high", "memory.ptrace", "memory_access")


@pytest.mark.parametrize("technique", ["proc_mem", "proc_maps", "process_vm_readv", "ptrace"])
def test_memory_access_to_protected_process_is_critical(technique: str) -> None:
    e = run(ev("memory", technique=technique, target_pid=200, target_comm="Runner.Worker"))
    assert e["severity"] == "critical"
    assert e["rule"] == f"memory.protected.{technique}"


def test_protected_beats_exclusion() -> None:
    cfg = parse_config("memory:\n  exclude_processes: ['comm:python3']\n", "x")
    e = run(ev("memory", comm="python3", technique="proc_mem", target_pid=2, target_comm="sshd"), cfg)
    assert e["severity"] == "critical"
    e = run(ev("memory", comm="python3", technique="proc_mem", target_pid=2, target_comm="sleep"), cfg)
    assert e["severity"] == "low"


def test_self_access_is_low() -> None:
    e = run(ev("memory", technique="proc_maps", target_pid=100, target_comm="cat"))
    assert e["severity"] == "low"


def test_alert_on_memory_access_false_lowers() -> None:
    cfg = parse_config("memory:\n  alert_on_memory_access: false\n", "x")
    assert run(ev("memory", technique="ptrace", target_pid=5, target_comm="x"), cfg)["severity"] == "low"


def test_environ_with_secrets_is_at_least_secret_env_level() -> None:
    cfg = parse_config("memory:\n  alert_on_memory_access: false\n"
                       "reporting:\n  severity_levels:\n    secret_env_access: medium\n", "x")
    e = run(ev("memory", technique="proc_environ", target_pid=5, target_comm="node",
               secret_env_names=["GITHUB_TOKEN"]), cfg)
    assert (e["severity"], e["rule"], e["category"]) == ("medium", "memory.secret_env", "secret_env_access")
    # Without secret names the floor does not apply.
    e = run(ev("memory", technique="proc_environ", target_pid=5, target_comm="node"), cfg)
    assert e["severity"] == "low"
    # The floor never lowers a higher severity.
    e = run(ev("memory", technique="proc_environ", target_pid=5, target_comm="node",
               secret_env_names=["X_TOKEN"]))
    assert e["severity"] == "high" and e["rule"] == "memory.secret_env"
    cfg = parse_config("reporting:\n  severity_levels:\n    secret_env_access: critical\n", "x")
    e = run(ev("memory", technique="proc_environ", target_pid=5, target_comm="node",
               secret_env_names=["X_TOKEN"]), cfg)
    assert e["severity"] == "critical"


# ------------------------------------------------------------------ network

NET = parse_config(
    "network:\n  blocked_ips: ['1.2.3.4', '10.9.0.0/16', '2001:db8::/32']\n"
    "  blocked_domains: ['evil.com']\n", "x")


@pytest.mark.parametrize(
    "fields,severity,rule",
    [
        ({"daddr": "1.2.3.4"}, "high", "network.blocked_ip"),
        ({"daddr": "10.9.3.3"}, "high", "network.blocked_ip"),
        ({"daddr": "::ffff:1.2.3.4", "family": "ipv6"}, "high", "network.blocked_ip"),
        ({"daddr": "2001:db8::5", "family": "ipv6"}, "high", "network.blocked_ip"),
        ({"daddr": "5.5.5.5", "domain": "x.EVIL.com"}, "high", "network.blocked_domain"),
        ({"daddr": "5.5.5.5", "domain": "notevil.com"}, "medium", "network.external"),
        ({"daddr": "5.5.5.5", "action": "blocked"}, "high", "network.blocked"),
        ({"daddr": "127.0.0.1"}, "low", "network.loopback"),
        ({"daddr": "127.8.0.1"}, "low", "network.loopback"),
        ({"daddr": "::1", "family": "ipv6"}, "low", "network.loopback"),
        ({"daddr": "140.82.112.3", "domain": "github.com"}, "medium", "network.external"),
    ],
)
def test_network(fields: dict, severity: str, rule: str) -> None:
    e = ev("network", protocol="tcp", family="ipv4", dport=443, action="allowed", domain=None)
    e.update(fields)
    run(e, NET)
    assert (e["severity"], e["rule"]) == (severity, rule)
    assert e["category"] == ("blocked_connection" if rule.startswith("network.blocked") else "network_connection")


def test_allowed_domains() -> None:
    cfg = parse_config("network:\n  allowed_domains: [github.com]\n", "x")
    base = dict(protocol="tcp", family="ipv4", dport=443, action="allowed")
    assert run(ev("network", daddr="1.1.1.1", domain="api.github.com", **base), cfg)["rule"] == "network.external"
    e = run(ev("network", daddr="1.1.1.1", domain="pastebin.com", **base), cfg)
    assert (e["severity"], e["rule"]) == ("high", "network.not_allowed")
    assert run(ev("network", daddr="1.1.1.1", domain=None, **base), cfg)["rule"] == "network.not_allowed"
    assert run(ev("network", daddr="127.0.0.1", domain=None, **base), cfg)["rule"] == "network.loopback"


def test_alert_on_any_connection_and_ports() -> None:
    cfg = parse_config("network:\n  alert_on_any_connection: true\n  monitored_ports: [443]\n", "x")
    base = dict(protocol="tcp", family="ipv4", action="allowed", domain=None, daddr="8.8.8.8")
    assert run(ev("network", dport=443, **base), cfg)["severity"] == "high"
    assert run(ev("network", dport=80, **base), cfg)["rule"] == "network.unmonitored_port"


def test_blocked_connection_level_from_config() -> None:
    cfg = parse_config("network:\n  blocked_ips: [1.2.3.4]\n"
                       "reporting:\n  severity_levels:\n    blocked_connection: critical\n", "x")
    e = run(ev("network", daddr="1.2.3.4", dport=1, protocol="udp", family="ipv4", action="allowed"), cfg)
    assert e["severity"] == "critical"


# ------------------------------------------------------------------ process / misc


def test_process_events_low() -> None:
    assert run(ev("process"))["rule"] == "process.exec"
    assert run(ev("process", op="exit"))["rule"] == "process.exit"
    assert run(ev("process"))["severity"] == "low"


def test_unknown_kind_does_not_raise() -> None:
    e = run({"kind": "weird"})
    assert e["rule"] == "unknown"


def test_hostile_fields_do_not_raise() -> None:
    e = ev("file", path=None, access=5, comm=None)
    run(e)
    e = ev("network", daddr="not-an-ip\x1b[31m", dport="x", domain=7)
    run(e)


def test_severity_rank_and_meets() -> None:
    assert [severity_rank(s) for s in ("low", "medium", "high", "critical")] == [0, 1, 2, 3]
    assert severity_rank("bogus") == -1 and severity_rank(None) == -1
    assert meets("critical", "high") and meets("high", "high") and not meets("medium", "high")
    assert not meets("bogus", "low")
    with pytest.raises(ValueError):
        meets("high", "urgent")


def test_helpers() -> None:
    assert is_loopback("127.0.0.53") and is_loopback("::ffff:127.0.0.1") and not is_loopback("8.8.8.8")
    assert domain_matches("a.b.evil.com", ["evil.com"]) == "evil.com"
    assert domain_matches("evil.com.", ["evil.com"]) == "evil.com"
    assert domain_matches("notevil.com", ["evil.com"]) is None


def test_env_secret_names_returns_names_only() -> None:
    environ = (b"PATH=/usr/bin\0GITHUB_TOKEN=ghp_supersecret\0MY_API_TOKEN=abc\0"
               b"HOME=/root\0github_token=lower\0NOEQUALS\0=novalue\0"
               b"DB_PASSWORD=x=y\0GITHUB_TOKEN=dup\0\xffBAD_KEY=v\0")
    names = env_secret_names(environ, CFG.memory.secret_env_patterns)
    assert names == ["GITHUB_TOKEN", "MY_API_TOKEN", "DB_PASSWORD", "\\xffBAD_KEY"]
    joined = "".join(names)
    for value in ("ghp_supersecret", "abc", "x=y", "lower"):
        assert value not in joined


def test_env_secret_names_empty() -> None:
    assert env_secret_names(b"", ["*"]) == []
    assert env_secret_names(b"A=1\0", []) == []
