"""OCSF events (`--format ocsf`), one JSON object per line, schema 1.5.0: file opens as File
System Activity (1001), connections as Network Activity (4001), memory access and the process
lifecycle as Process Activity (1007); every high or critical event also as a Detection Finding
(2004). bee-trace's own fields the schema has no place for go to `unmapped`."""

from __future__ import annotations

import os
import socket
from typing import IO, Any

from . import Sink
from .jsonl import compact_json

OCSF_VERSION = "1.5.0"
SEVERITY_ID = {"low": 2, "medium": 3, "high": 4, "critical": 5}
_FILE_ACTIVITY = {"read": (2, "Read"), "write": (3, "Update"), "rename": (5, "Rename"),
                  "link": (1, "Create")}
_PROTO_NUM = {"tcp": 6, "udp": 17}
_PROCESS_OP = {"exec": (1, "Launch"), "fork": (1, "Launch"), "exit": (2, "Terminate")}
_INJECT = {"process_vm_writev"}
_UNMAPPED = ("rule", "category", "risk", "pattern", "lane", "seq", "cpu", "tid", "cgroup_id",
             "requested_path", "late", "aggregated", "domain_source", "technique", "secret_env_names",
             "truncated", "op", "filename", "exit_code")


def _product() -> dict[str, Any]:
    from .. import __version__
    return {"name": "bee-trace", "vendor_name": "bee-trace", "version": __version__}


def _device() -> dict[str, Any]:
    return {"hostname": socket.gethostname(), "type_id": 0, "type": "Unknown",
            "os": {"name": "Linux", "type_id": 200, "type": "Linux"}}


def _process(ev: dict[str, Any]) -> dict[str, Any]:
    p: dict[str, Any] = {"pid": ev.get("pid"), "name": ev.get("comm", "")}
    exe = ev.get("exe")
    if exe:
        p["file"] = {"path": exe, "name": os.path.basename(exe), "type_id": 1, "type": "Regular File"}
    if ev.get("cmdline"):
        p["cmd_line"] = ev["cmdline"]
    if ev.get("tid") is not None:
        p["tid"] = ev["tid"]
    if ev.get("uid") is not None:
        p["user"] = {"uid": str(ev["uid"])}
    if ev.get("ppid"):
        p["parent_process"] = {"pid": ev["ppid"]}
    anc = ev.get("ancestry")
    if isinstance(anc, list) and anc:
        p["lineage"] = [str(a) for a in anc]
    return p


def _base(ev: dict[str, Any], class_uid: int, class_name: str, category_uid: int,
          category_name: str, activity: tuple[int, str]) -> dict[str, Any]:
    sev = ev.get("severity", "low")
    ts_ns = ev.get("ts_ns")
    doc: dict[str, Any] = {
        "class_uid": class_uid, "class_name": class_name,
        "category_uid": category_uid, "category_name": category_name,
        "activity_id": activity[0], "activity_name": activity[1],
        "type_uid": class_uid * 100 + activity[0], "type_name": f"{class_name}: {activity[1]}",
        "time": ts_ns // 1_000_000 if isinstance(ts_ns, int) else 0,
        "severity_id": SEVERITY_ID.get(sev, 0), "severity": sev.capitalize(),
        "status_id": 1, "status": "Success",
        # host profile: device and actor on every class; security_control: action, disposition.
        "metadata": {"version": OCSF_VERSION, "product": _product(), "profiles": ["host"],
                     "uid": f"{ev.get('lane', '')}-{ev.get('seq', '')}-{ts_ns}"},
        "device": _device(),
        "actor": {"process": _process(ev)},
        "message": _message(ev),
    }
    count = ev.get("count")
    if isinstance(count, int) and count > 1:
        doc["count"] = count
    unmapped = {k: ev[k] for k in _UNMAPPED if ev.get(k) not in (None, "", [])}
    if unmapped:
        doc["unmapped"] = unmapped
    return doc


def _message(ev: dict[str, Any]) -> str:
    kind = ev.get("kind")
    who = f"{ev.get('comm', '')}[{ev.get('pid', '')}]"
    if kind == "file":
        return f"{who} {ev.get('access', 'open')} {ev.get('path', '')}"
    if kind == "network":
        return (f"{who} {ev.get('action', '')} {ev.get('protocol', '')} to "
                f"{ev.get('domain') or ev.get('daddr', '')}:{ev.get('dport', '')}")
    if kind == "memory":
        return f"{who} {ev.get('technique', '')} on {ev.get('target_comm', '')}[{ev.get('target_pid', '')}]"
    return f"{who} {ev.get('op', '') or ev.get('rule', '')} {ev.get('exe', '')}".rstrip()


def _file(ev: dict[str, Any]) -> dict[str, Any]:
    path = ev.get("path", "")
    f = {"path": path, "name": os.path.basename(path.rstrip("/")) or path, "type_id": 1,
         "type": "Regular File"}
    return f


def _endpoint(ev: dict[str, Any]) -> dict[str, Any]:
    e: dict[str, Any] = {"ip": ev.get("daddr"), "port": ev.get("dport")}
    if ev.get("domain"):
        e["hostname"] = ev["domain"]
    return e


def activity(ev: dict[str, Any]) -> dict[str, Any] | None:
    """The activity event for one bee-trace event (None for kinds with no activity class)."""
    kind = ev.get("kind")
    if kind == "file":
        act = _FILE_ACTIVITY.get(ev.get("access", ""), (99, str(ev.get("access") or "Other")))
        doc = _base(ev, 1001, "File System Activity", 1, "System Activity", act)
        doc["file"] = _file(ev)
        return doc
    if kind == "network":
        blocked = ev.get("action") == "blocked"
        proto = str(ev.get("protocol", "")).lower()
        act = (5, "Refuse") if blocked else ((1, "Open") if proto == "tcp" else (6, "Traffic"))
        doc = _base(ev, 4001, "Network Activity", 4, "Network Activity", act)
        doc["dst_endpoint"] = _endpoint(ev)
        info: dict[str, Any] = {"direction_id": 2, "direction": "Outbound", "protocol_name": proto}
        if proto in _PROTO_NUM:
            info["protocol_num"] = _PROTO_NUM[proto]
        fam = str(ev.get("family", ""))
        if fam in ("ipv4", "ipv6", "inet", "inet6"):
            info["protocol_ver_id"] = 6 if fam in ("ipv6", "inet6") else 4
        doc["connection_info"] = info
        doc["action_id"], doc["action"] = (2, "Denied") if blocked else (1, "Allowed")
        doc["disposition_id"], doc["disposition"] = (2, "Blocked") if blocked else (1, "Allowed")
        doc["metadata"]["profiles"].append("security_control")
        return doc
    if kind == "memory":
        act = (4, "Inject") if ev.get("technique") in _INJECT else (3, "Open")
        doc = _base(ev, 1007, "Process Activity", 1, "System Activity", act)
        doc["process"] = {"pid": ev.get("target_pid"), "name": ev.get("target_comm", "")}
        return doc
    if kind == "process":
        act = _PROCESS_OP.get(ev.get("op", ""), (99, str(ev.get("op") or "Other")))
        doc = _base(ev, 1007, "Process Activity", 1, "System Activity", act)
        doc["process"] = _process(ev)
        if ev.get("filename"):
            doc["process"]["file"] = {"path": ev["filename"], "name": os.path.basename(ev["filename"]),
                                      "type_id": 1, "type": "Regular File"}
        if ev.get("op") == "exit" and isinstance(ev.get("exit_code"), int):
            doc["exit_code"] = ev["exit_code"]
        return doc
    return None


def finding(ev: dict[str, Any], act: dict[str, Any] | None) -> dict[str, Any]:
    """A Detection Finding for a high or critical event; the activity is its evidence."""
    doc = _base(ev, 2004, "Detection Finding", 2, "Findings", (1, "Create"))
    doc["status_id"], doc["status"] = 1, "New"   # the finding's workflow state
    rule = str(ev.get("rule", ""))
    doc["finding_info"] = {
        "uid": f"{rule}:{doc['metadata']['uid']}", "title": rule, "desc": doc["message"],
        "analytic": {"uid": rule, "name": rule, "type_id": 1, "type": "Rule"},
    }
    if ev.get("category"):
        doc["finding_info"]["types"] = [str(ev["category"])]
    evidence: dict[str, Any] = {"process": doc["actor"]["process"]}
    if act is not None:
        for key in ("file", "dst_endpoint", "connection_info"):
            if key in act:
                evidence[key] = act[key]
        if ev.get("kind") == "memory":
            evidence["process"] = act["process"]
            evidence["actor"] = act["actor"]
    doc["evidences"] = [evidence]
    if act is not None:
        doc["finding_info"]["related_events"] = [
            {"uid": act["metadata"]["uid"], "type_uid": act["type_uid"], "type_name": act["type_name"]}]
    return doc


def to_ocsf(ev: dict[str, Any]) -> list[dict[str, Any]]:
    act = activity(ev)
    out = [act] if act is not None else []
    if ev.get("severity") in ("high", "critical") or act is None:
        out.append(finding(ev, act))
    return out


class OcsfSink(Sink):
    """OCSF documents of each event, one JSON object a line."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream

    def __call__(self, ev: dict[str, Any]) -> None:
        self.stream.write("".join(
            compact_json(doc) + "\n"
            for doc in to_ocsf(ev)))

    def flush(self) -> None:
        self.stream.flush()
