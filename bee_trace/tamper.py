"""Tamper evidence (kind `tamper`, rules `tamper.*`): the agent tells the kernel which objects
and threads are its own, and names the records the kernel sends when something is aimed at it
(bpf/tamper.bpf.c, bpf/tamper.h)."""

from __future__ import annotations

import os
import signal
import struct
from typing import TYPE_CHECKING

from . import records as R
from ._libbpf import LibbpfError, Link, Object, object_id
from .event import Event
from .procinfo import decode
from .record_view import RecordView

if TYPE_CHECKING:
    from .decode import DecodeContext


RULES = {R.TAMPER_SIGNAL: "tamper.signal", R.TAMPER_STOP: "tamper.stop",
         R.TAMPER_BPF: "tamper.bpf", R.TAMPER_MEMORY: "tamper.memory"}
TARGETS = {R.TAMPER_T_PROCESS: "process", R.TAMPER_T_PROG: "prog", R.TAMPER_T_MAP: "map",
           R.TAMPER_T_LINK: "link"}
BPF_CMDS = {13: "BPF_PROG_GET_FD_BY_ID", 14: "BPF_MAP_GET_FD_BY_ID", 30: "BPF_LINK_GET_FD_BY_ID"}
# The documented ways to stop the agent (Ctrl+C, the action's stop step, systemd): recorded with
# their sender, severity low, not counted against the verdict. Any other signal is tampering.
STOP_REQUESTS = {signal.SIGINT, signal.SIGTERM}


def register_agent(obj: Object, links: list[Link], pid: int | None = None) -> int:
    """Write the ids of our programs, maps and links, and our thread ids, into agent_ids.
    Returns how many were written."""
    m = obj.map("agent_ids")
    entries: set[tuple[int, int]] = set()
    for kind, fds in ((R.TAMPER_T_PROG, [p.fd for p in obj.programs()]),
                      (R.TAMPER_T_MAP, [mp.fd for mp in obj.maps()]),
                      (R.TAMPER_T_LINK, [ln.fd for ln in links])):
        for fd in fds:
            oid = object_id(fd)
            if oid:
                entries.add((kind, oid))
    try:
        tids = [int(t) for t in os.listdir(f"/proc/{pid or os.getpid()}/task")]
    except OSError:
        tids = []
    entries.update((R.TAMPER_T_PROCESS, t) for t in tids)
    n = 0
    for kind, oid in sorted(entries)[:m.max_entries]:
        try:
            m.update(struct.pack("<II", kind, oid), b"\x01")
            n += 1
        except LibbpfError:
            break
    return n


def _signal_name(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return f"SIG{sig}"


def decode_tamper(rec: RecordView, ctx: DecodeContext) -> Event:
    from .decode import header_fields  # decode.py registers this decoder: import at call time
    ev = header_fields(rec, ctx)
    t = rec["u"]["tamper"]
    rule = RULES.get(int(t["rule"]), "tamper.unknown")
    ev.update({
        "kind": "tamper",
        "rule": rule,
        "target": TARGETS.get(int(t["target_kind"]), "unknown"),
        "target_pid": int(t["target_pid"]),
        "target_comm": "bee-trace",
    })
    sig = int(t["signal"])
    if rule in ("tamper.signal", "tamper.stop"):
        ev["signal"] = _signal_name(sig)
        ev["signal_number"] = sig
        ev["si_code"] = int(t["code"])
        if sig in STOP_REQUESTS:
            ev["rule"] = "tamper.stop_request"
    elif rule == "tamper.bpf":
        ev["bpf_cmd"] = BPF_CMDS.get(int(t["cmd"]), str(int(t["cmd"])))
        ev["object_id"] = int(t["detail"])
    elif rule == "tamper.memory":
        ev["technique"] = R.TECHNIQUES.get(int(t["cmd"]), "unknown")
        if int(t["detail"]):
            ev["ptrace_request"] = int(t["detail"])
    n = min(int(t["path_len"]), R.TAMPER_PATH_LEN)
    if n:
        ev["path"] = decode(bytes(t["path"])[:n])
    return ev


def classify_tamper(ev: Event) -> tuple[str, str]:
    """(severity, rule): critical, except the documented stop requests."""
    rule = ev.get("rule") or "tamper.unknown"
    return ("low" if rule == "tamper.stop_request" else "critical"), rule
