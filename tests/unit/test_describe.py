"""One description of an event for every text output: the table, the report and GitHub agree."""

from __future__ import annotations

from bee_trace.config import default_config
from bee_trace.describe import describe
from bee_trace.github import annotation
from bee_trace.report import Report
from bee_trace.sinks.table import details

MEM = {"kind": "memory", "severity": "critical", "rule": "memory.proc_mem", "comm": "python3", "pid": 7,
       "technique": "proc_mem", "target_comm": "Runner.Worker", "target_pid": 42,
       "secret_env_names": ["GITHUB_TOKEN"]}


def test_each_kind() -> None:
    assert describe({"kind": "file", "access": "read", "path": "/k/id_rsa"}) == "read /k/id_rsa"
    assert describe({"kind": "network", "protocol": "tcp", "family": "ipv6", "daddr": "::1", "dport": 22,
                     "action": "allowed"}) == "tcp [::1]:22 allowed"
    assert describe({"kind": "network", "protocol": "udp", "family": "ipv4", "daddr": "1.2.3.4", "dport": 53,
                     "action": "blocked", "domain": "x.example"}) == "udp x.example:53 (1.2.3.4) blocked"
    assert describe(MEM) == "proc_mem → Runner.Worker[42] secrets: GITHUB_TOKEN"
    assert describe({"kind": "tamper", "rule": "tamper.signal", "signal": "SIGKILL", "target_pid": 9}) \
        == "SIGKILL → agent 9"
    assert describe({"kind": "process", "exe": "/usr/bin/curl"}) == "/usr/bin/curl"


def test_outputs_agree_and_escape() -> None:
    hostile = {**MEM, "target_comm": "x\x1b[31m"}
    line = details(hostile)
    assert "\x1b" not in line and line == "proc_mem → x\\x1b[31m[42] secrets: GITHUB_TOKEN"
    a = annotation(hostile)
    assert a is not None and "\x1b" not in a and "proc_mem → x\\x1b[31m[42]" in a
    r = Report(default_config(), {})
    r.add(MEM)
    assert r.sorted_findings()[0]["detail"] == describe(MEM)
