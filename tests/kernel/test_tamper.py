"""Tamper evidence (issue 9.5) against the real agent: a SIGSTOP/SIGCONT pair sent to it (also
to one of its other threads with tgkill), bpftool getting fds of its programs, maps and links,
ptrace aimed at it. Each names the sender; the verdict is not complete; the reader reports its
own stall."""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

SYS_TGKILL = 234   # x86-64


def _start_agent(tmp_path: Path, out: Path) -> subprocess.Popen:
    ready = tmp_path / "ready"
    cmd = [sys.executable, "-m", "bee_trace.cli", "run", "--format", "jsonl", "--output", str(out),
           "--ready-file", str(ready)]
    agent = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 20
    while not ready.exists() and agent.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    if not ready.exists():
        agent.kill()
        pytest.fail(f"agent not ready: {agent.communicate()[1]}")
    return agent


def _events(out: Path) -> list[dict]:
    """Complete lines only: the agent may be in the middle of writing the last one."""
    text = out.read_text()
    lines = text.split("\n")[:-1]
    return [json.loads(line) for line in lines if line.strip()]


def _wait_for(out: Path, pred, timeout: float = 10.0) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [e for e in _events(out) if pred(e)]
        if found:
            return found
        time.sleep(0.05)
    return []


def _tgkill(tgid: int, tid: int, sig: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    assert libc.syscall(SYS_TGKILL, tgid, tid, sig) == 0, os.strerror(ctypes.get_errno())


def test_stop_signals_bpf_access_and_stall_are_reported(tmp_path: Path) -> None:
    key = tmp_path / "id_rsa"
    key.write_text("k")
    stopper = tmp_path / "stopper"
    shutil.copy(shutil.which("kill") or "/bin/kill", stopper)
    out = tmp_path / "events.jsonl"
    agent = _start_agent(tmp_path, out)
    try:
        # Stopped for longer than the stall bound (2 s) while a key is read: the read waits in
        # the ring and is reported after the resume; the stop and its sender are named.
        stop = subprocess.Popen([str(stopper), "-STOP", str(agent.pid)])
        assert stop.wait() == 0
        reader = subprocess.Popen(["cat", str(key)], stdout=subprocess.DEVNULL)
        assert reader.wait() == 0
        time.sleep(2.5)  # the stop itself is the scenario, not synchronisation
        resume = subprocess.Popen([str(stopper), "-CONT", str(agent.pid)])
        resume.wait()
        assert _wait_for(out, lambda e: e.get("rule") == "tamper.signal" and e.get("pid") == resume.pid)
        # The evasion next to it: stop a thread other than the main one (tgkill), SIGTSTP.
        threads = sorted(int(t) for t in os.listdir(f"/proc/{agent.pid}/task") if int(t) != agent.pid)
        if threads:
            _tgkill(agent.pid, threads[0], signal.SIGTSTP)
            _tgkill(agent.pid, threads[0], signal.SIGCONT)
        # Another process taking fds of our programs, maps and links by id (what a detach or a
        # map write starts with).
        tools = [subprocess.Popen(["bpftool", obj, "show"], stdout=subprocess.DEVNULL)
                 for obj in ("prog", "map", "link")]
        for t in tools:
            t.wait()
        assert _wait_for(out, lambda e: e.get("rule") == "tamper.bpf" and e.get("bpf_cmd") ==
                         "BPF_LINK_GET_FD_BY_ID")
    finally:
        agent.send_signal(signal.SIGINT)
        _, err = agent.communicate(timeout=30)
    assert agent.returncode == 0, err
    events = _events(out)
    summary = events[-1]
    assert summary["kind"] == "summary"
    tamper = [e for e in events if e.get("kind") == "tamper"]

    stops = [e for e in tamper if e["rule"] == "tamper.stop" and e["pid"] == stop.pid]
    assert len(stops) == 1
    ev = stops[0]
    assert (ev["comm"], ev["exe"], ev["signal"], ev["target_pid"], ev["severity"], ev["lane"]) == \
        ("stopper", str(stopper), "SIGSTOP", agent.pid, "critical", "critical")
    assert ev["si_code"] == 0 and ev["target"] == "process"
    cont = [e for e in tamper if e["rule"] == "tamper.signal" and e["pid"] == resume.pid]
    assert [(e["comm"], e["signal"]) for e in cont] == [("stopper", "SIGCONT")]
    if threads:
        tstp = [e for e in tamper if e["rule"] == "tamper.stop" and e.get("signal") == "SIGTSTP"]
        assert [e["target_pid"] for e in tstp] == [threads[0]]
        assert tstp[0]["si_code"] == -6  # SI_TKILL
    # The key read during the stop is there.
    assert [e["pid"] for e in events if e.get("kind") == "file" and e.get("path") == str(key)] == [reader.pid]
    # bpftool: one event per object it opened, all three kinds.
    bpf = [e for e in tamper if e["rule"] == "tamper.bpf"]
    assert {e["comm"] for e in bpf} == {"bpftool"}
    assert {e["target"] for e in bpf} == {"prog", "map", "link"}
    assert {e["bpf_cmd"] for e in bpf} == {"BPF_PROG_GET_FD_BY_ID", "BPF_MAP_GET_FD_BY_ID",
                                           "BPF_LINK_GET_FD_BY_ID"}
    assert all(e["object_id"] > 0 and e["severity"] == "critical" for e in bpf)
    # The stop step's SIGINT is no event (counts stay those of the job): its sender is in the
    # summary, and it is not held against the run.
    assert not [e for e in tamper if e["rule"] == "tamper.stop_request"]
    assert [(e["signal"], e["pid"]) for e in summary["loss"]["stopped_by"]] == [("SIGINT", os.getpid())]
    # One verdict, with the reasons.
    assert summary["verdict"] == "degraded"
    reasons = {r["reason"]: r for r in summary["verdict_reasons"]}
    assert reasons["tamper.stop"]["count"] == 1 + bool(threads)
    assert reasons["tamper.bpf"]["count"] == len(bpf)
    assert reasons["stalled"]["longest_wait_ms"] >= 2000
    assert "tamper.stop_request" not in reasons
    assert "verdict" not in summary["loss"]
    assert err.splitlines()[-1].endswith(summary_text(summary))
    assert "reasons: " in err.splitlines()[-1]


def summary_text(summary: dict) -> str:
    from bee_trace.verdict import reason_text
    return "reasons: " + ", ".join(reason_text(r) for r in summary["verdict_reasons"]) + \
        "; verdict: " + summary["verdict"]


def test_ptrace_of_the_agent_is_tamper_not_memory(tmp_path: Path) -> None:
    out = tmp_path / "events.jsonl"
    agent = _start_agent(tmp_path, out)
    tracer_code = ("import ctypes, os, sys\n"
                   "libc = ctypes.CDLL(None, use_errno=True)\n"
                   f"r = libc.ptrace(0x4206, {agent.pid}, 0, 0)\n"   # PTRACE_SEIZE: no stop
                   "sys.exit(0 if r == 0 else ctypes.get_errno())\n")
    try:
        tracer = subprocess.Popen([sys.executable, "-c", tracer_code])
        tracer.wait()
        assert tracer.returncode == 0
        found = _wait_for(out, lambda e: e.get("rule") == "tamper.memory" and e.get("pid") == tracer.pid)
    finally:
        agent.send_signal(signal.SIGINT)
        agent.communicate(timeout=30)
    assert len(found) == 1
    ev = found[0]
    assert (ev["technique"], ev["target_pid"], ev["ptrace_request"], ev["severity"]) == \
        ("ptrace", agent.pid, 0x4206, "critical")
    events = _events(out)
    assert not [e for e in events if e.get("kind") == "memory" and e.get("target_pid") == agent.pid]
    assert events[-1]["verdict"] == "degraded"
    assert [r["reason"] for r in events[-1]["verdict_reasons"]] == ["tamper.memory"]
