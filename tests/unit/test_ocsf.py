"""OCSF output validated against the OCSF 1.5.0 schema (pydantic-ocsf builds its models from the
schema's export: required fields, enum captions, sibling consistency) and, for Detection
Finding, py-ocsf-models too. Every top-level attribute must belong to the class or to a profile
the event declares."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from ocsf.v1_5_0.events import DetectionFinding, FileActivity, NetworkActivity, ProcessActivity
from py_ocsf_models.events.findings.detection_finding import (  # type: ignore[import-untyped]
    DetectionFinding as PyDetectionFinding,
)

from bee_trace.sinks import Run
from bee_trace.sinks.ocsf import OcsfSink, to_ocsf

CLASSES = {1001: FileActivity, 4001: NetworkActivity, 1007: ProcessActivity, 2004: DetectionFinding}
PROFILE_FIELDS = {"host": {"device", "actor"},
                  "security_control": {"action", "action_id", "disposition", "disposition_id"}}

BASE = {"ts": "2026-12-02T05:00:00.000000+00:00", "ts_ns": 1_764_651_600_123_456_789, "pid": 4242,
        "tid": 4243, "ppid": 4200, "uid": 1001, "comm": "cat", "exe": "/usr/bin/cat",
        "cmdline": "cat /home/runner/.ssh/id_rsa", "ancestry": ["Runner.Worker", "bash", "cat"],
        "lane": "critical", "seq": 17, "cpu": 1}
EVENTS = {
    "file": dict(BASE, kind="file", severity="critical", rule="file.ssh_key.read",
                 path="/home/runner/.ssh/id_rsa", access="read", category="ssh_key"),
    "file-write": dict(BASE, kind="file", severity="medium", rule="file.env.write",
                       path="/w/.env", access="write"),
    "network": dict(BASE, kind="network", severity="low", rule="network.connect", protocol="tcp",
                    family="ipv4", daddr="140.82.112.3", dport=443, action="allowed",
                    domain="github.com", lane="bulk"),
    "network-blocked": dict(BASE, kind="network", severity="high", rule="network.blocked",
                            protocol="udp", family="ipv6", daddr="2001:db8::1", dport=53,
                            action="blocked", count=3),
    "memory": dict(BASE, kind="memory", severity="critical", rule="memory.proc_mem",
                   technique="proc_mem", target_pid=1500, target_comm="Runner.Worker"),
    "memory-write": dict(BASE, kind="memory", severity="critical", rule="memory.process_vm_writev",
                         technique="process_vm_writev", target_pid=1500, target_comm="node"),
    "exec": dict(BASE, kind="process", severity="low", rule="process.exec", op="exec",
                 filename="/usr/bin/cat", lane="bulk"),
    "exit": dict(BASE, kind="process", severity="low", rule="process.exit", op="exit", exit_code=1),
}


def _validate(doc: dict) -> None:
    cls: Any = CLASSES[doc["class_uid"]]
    cls.model_validate(doc)
    allowed = set(cls.model_fields)
    for profile in doc["metadata"].get("profiles", []):
        allowed |= PROFILE_FIELDS[profile]
    assert set(doc) <= allowed, set(doc) - allowed
    assert doc["type_uid"] == doc["class_uid"] * 100 + doc["activity_id"]
    json.dumps(doc)


@pytest.mark.parametrize("name", sorted(EVENTS))
def test_each_kind_maps_to_a_valid_ocsf_class(name):
    docs = to_ocsf(EVENTS[name])
    for doc in docs:
        _validate(doc)
    severe = EVENTS[name]["severity"] in ("high", "critical")
    assert [d["class_uid"] for d in docs][1:] == ([2004] if severe else [])
    if severe:
        PyDetectionFinding.model_validate(docs[1])


def test_field_mapping():
    act, fnd = to_ocsf(EVENTS["file"])
    assert act["class_name"] == "File System Activity" and act["activity_name"] == "Read"
    assert act["file"]["path"] == "/home/runner/.ssh/id_rsa" and act["file"]["name"] == "id_rsa"
    p = act["actor"]["process"]
    assert p["pid"] == 4242 and p["name"] == "cat" and p["file"]["path"] == "/usr/bin/cat"
    assert p["parent_process"]["pid"] == 4200 and p["lineage"] == ["Runner.Worker", "bash", "cat"]
    assert act["time"] == 1_764_651_600_123 and act["severity_id"] == 5
    assert act["unmapped"]["rule"] == "file.ssh_key.read" and act["unmapped"]["seq"] == 17
    assert fnd["finding_info"]["title"] == "file.ssh_key.read"
    assert fnd["finding_info"]["related_events"][0]["uid"] == act["metadata"]["uid"]
    assert fnd["evidences"][0]["file"]["path"] == act["file"]["path"]
    net = to_ocsf(EVENTS["network-blocked"])[0]
    assert net["activity_name"] == "Refuse" and net["action"] == "Denied" and net["count"] == 3
    assert net["dst_endpoint"] == {"ip": "2001:db8::1", "port": 53}
    assert net["connection_info"]["protocol_num"] == 17 and net["connection_info"]["protocol_ver_id"] == 6
    assert to_ocsf(EVENTS["network"])[0]["dst_endpoint"]["hostname"] == "github.com"
    mem = to_ocsf(EVENTS["memory"])[0]
    assert mem["process"] == {"pid": 1500, "name": "Runner.Worker"} and mem["activity_name"] == "Open"
    assert to_ocsf(EVENTS["memory-write"])[0]["activity_name"] == "Inject"


def test_kind_without_activity_class_is_a_finding():
    docs = to_ocsf(dict(BASE, kind="tamper", severity="high", rule="tamper.bpf_detach"))
    assert [d["class_uid"] for d in docs] == [2004]
    _validate(docs[0])


def test_sink_writes_one_object_per_line_and_expands_runs():
    buf = io.StringIO()
    sink = OcsfSink(buf)
    sink(EVENTS["network"])
    sink.emit_run(Run(dict(EVENTS["exec"]), [(1, 5, 0, 1), (2, 6, 0, 2)], 1_000))
    sink.close()
    lines = [json.loads(x) for x in buf.getvalue().splitlines()]
    assert [d["class_uid"] for d in lines] == [4001, 1007, 1007]
    assert [d["actor"]["process"]["tid"] for d in lines[1:]] == [5, 6]
    for d in lines:
        _validate(d)


def test_hostile_strings_stay_valid_json():
    ev = dict(EVENTS["file"], path="/tmp/\udcff\n\x1b[31mx/id_rsa", comm="a\u202eb")
    buf = io.StringIO()
    OcsfSink(buf)(ev)
    for line in buf.getvalue().splitlines():
        doc = json.loads(line)
        line.encode("utf-8")
        _validate(doc)
