"""Bench row 8: the floods an attacker inside the job would use to make bee-trace lose the one
event that matters (issue 9), each run against the agent with the default policy, and what came
out: events offered, delivered (the sum of `count` over the output), folded and spilled in the
kernel, lost, and whether the event the flood was meant to hide was reported.

  one_file   one process opens one watched .pem 300,000 times; the agent is SIGSTOPped for 4 s in
             the middle, and another process reads an id_rsa meanwhile
  distinct   20,000 opens of distinct watched files, then one id_ed25519 read
  connects   5,000 connects to distinct closed loopback ports, then one to a new destination
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from .runner import Agent

ONE_FILE_OPENS = 300_000
DISTINCT_FILES = 20_000
DISTINCT_PORTS = 5_000
STOP_SECONDS = 4.0

_OPEN_LOOP = """
import os, sys
path, n, go, mark = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
for i in range(n):
    os.close(os.open(path, os.O_RDONLY))
    if i == mark:
        open(go, "w").close()
"""

_DISTINCT = """
import os, sys
d, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    os.close(os.open(f"{d}/f{i}.pem", os.O_RDONLY | os.O_CREAT, 0o600))
"""


def _run(argv: list[str]) -> int:
    """Run a child to its end; its pid (the events must come from it)."""
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    p.wait(timeout=300)
    return p.pid


def _events(path: Path) -> list[dict[str, Any]]:
    out = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


def _count(events: list[dict[str, Any]], **want: Any) -> int:
    return sum(int(e.get("count", 1) or 1) for e in events
               if all(e.get(k) == v for k, v in want.items()))


def _lane(summary: dict[str, Any], lane: str) -> dict[str, int]:
    return (summary.get("lanes") or {}).get(lane, {})


def one_file(tmp: Path) -> dict[str, Any]:
    key, secret = tmp / "flood.pem", tmp / ".ssh" / "id_rsa"
    secret.parent.mkdir(exist_ok=True)
    key.write_text("pem\n")
    secret.write_text("k\n")
    sink, go = tmp / "one_file.jsonl", tmp / "go"
    with Agent({"patterns": "default", "probes": ["file_monitor"], "sink": str(sink)}) as agent:
        flood = subprocess.Popen([sys.executable, "-c", _OPEN_LOOP, str(key), str(ONE_FILE_OPENS),
                                  str(go), str(ONE_FILE_OPENS // 3)])
        while not go.exists() and flood.poll() is None:
            time.sleep(0.01)
        os.kill(agent.pid, signal.SIGSTOP)
        try:
            reader = _run(["cat", str(secret)])
            time.sleep(STOP_SECONDS)      # the attack: the agent cannot read meanwhile
        finally:
            os.kill(agent.pid, signal.SIGCONT)
        flood.wait(timeout=300)
        res = agent.stop()
    events, summary = _events(sink), res.get("summary", {})
    crit = _lane(summary, "critical")
    delivered = _count(events, kind="file", path=str(key), pid=flood.pid)
    return {"offered": ONE_FILE_OPENS, "delivered": delivered,
            "records": sum(1 for e in events if e.get("path") == str(key)),
            "folded": crit.get("folded", 0), "spilled": crit.get("spilled", 0),
            "lost": ONE_FILE_OPENS - delivered,
            "hidden_event_reported": _count(events, kind="file", path=str(secret), pid=reader) == 1,
            "tamper_stop": _count(events, kind="tamper", rule="tamper.stop"),
            "verdict": summary.get("verdict")}


def distinct(tmp: Path) -> dict[str, Any]:
    d = tmp / "distinct"
    d.mkdir()
    secret = tmp / ".ssh" / "id_ed25519"
    secret.parent.mkdir(exist_ok=True)
    secret.write_text("k\n")
    sink = tmp / "distinct.jsonl"
    with Agent({"patterns": "default", "probes": ["file_monitor"], "sink": str(sink)}) as agent:
        subprocess.run([sys.executable, "-c", _DISTINCT, str(d), str(DISTINCT_FILES)], check=True,
                       timeout=300)
        reader = _run(["cat", str(secret)])
        time.sleep(0.5)
        res = agent.stop()
    events, summary = _events(sink), res.get("summary", {})
    crit = _lane(summary, "critical")
    paths = {e["path"] for e in events if e.get("kind") == "file" and e.get("path", "").startswith(f"{d}/")}
    return {"offered": DISTINCT_FILES, "delivered": len(paths),
            "late": sum(1 for e in events if e.get("late") and e.get("path", "").startswith(f"{d}/")),
            "folded": crit.get("folded", 0), "spilled": crit.get("spilled", 0),
            "lost": crit.get("ring_full", 0) + crit.get("spill_full", 0),
            "hidden_event_reported": _count(events, kind="file", path=str(secret), pid=reader) == 1,
            "verdict": summary.get("verdict")}


def connects(tmp: Path) -> dict[str, Any]:
    sink = tmp / "connects.jsonl"
    spec = {"patterns": "default", "probes": ["network_monitor"], "report_loopback": True,
            "sink": str(sink)}
    ports = []
    with Agent(spec) as agent:
        for _ in range(DISTINCT_PORTS):
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                ports.append(s.getsockname()[1])
        for port in ports:      # bound, then closed: refused, a distinct destination each
            with socket.socket() as s:
                try:
                    s.connect(("127.0.0.1", port))
                except OSError:
                    pass
        with socket.socket() as s:
            try:
                s.connect(("127.0.0.2", 9))
            except OSError:
                pass
        time.sleep(0.5)
        res = agent.stop()
    events, summary = _events(sink), res.get("summary", {})
    mine = [e for e in events if e.get("kind") == "network" and e.get("pid") == os.getpid()]
    seen = {e.get("dport") for e in mine if e.get("daddr") == "127.0.0.1"}
    bulk = _lane(summary, "bulk")
    return {"offered": DISTINCT_PORTS, "delivered": len(seen & set(ports)),
            "folded": bulk.get("aggregated", 0), "spilled": 0,
            "lost": bulk.get("ring_full", 0) + bulk.get("first_lost", 0),
            "hidden_event_reported": any(e.get("daddr") == "127.0.0.2" for e in mine),
            "verdict": summary.get("verdict")}


SCENARIOS = {"one_file": one_file, "distinct": distinct, "connects": connects}
