"""An attacker cannot choose what bee-trace loses: floods of one critical event fold into exact
counts in the kernel, distinct events past the ring go to the spill map, and a stopped agent
still gets every distinct event afterwards."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from bee_trace.inodes import MAX_INODES

FILE_ONLY = {"file_monitor"}


def _agent(tmp_path: Path) -> tuple[subprocess.Popen, Path]:
    out, ready = tmp_path / "ev.jsonl", tmp_path / "ready"
    cmd = [sys.executable, "-m", "bee_trace.cli", "run", "--probe-type", "file_monitor",
           "--format", "jsonl", "--output", str(out), "--ready-file", str(ready)]
    agent = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while not ready.exists() and agent.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    err = agent.stderr.read() if agent.stderr and agent.poll() is not None else "agent not ready"
    assert ready.exists(), err
    return agent, out


def test_flood_of_one_file_folds_to_exact_count_while_agent_stopped(tmp_path: Path) -> None:
    key = tmp_path / "flood.pem"
    key.write_text("pem\n")
    (tmp_path / ".ssh").mkdir()
    idrsa = tmp_path / ".ssh" / "id_rsa"
    idrsa.write_text("k\n")
    agent, out = _agent(tmp_path)
    try:
        go = tmp_path / "go"
        code = ("import os, sys, time\n"
                "key, go = sys.argv[1], sys.argv[2]\n"
                "for i in range(300_000):\n"
                "    os.close(os.open(key, os.O_RDONLY))\n"
                "    if i == 100_000: open(go, 'w').close()\n")
        flood = subprocess.Popen([sys.executable, "-c", code, str(key), str(go)])
        while not go.exists():
            assert flood.poll() is None
            time.sleep(0.01)
        os.kill(agent.pid, signal.SIGSTOP)
        try:
            reader = subprocess.run(["cat", str(idrsa)], capture_output=True, check=True)
            assert reader.returncode == 0
            time.sleep(4)      # the agent stays stopped: this is the attack, not synchronisation
        finally:
            os.kill(agent.pid, signal.SIGCONT)
        assert flood.wait(timeout=120) == 0
    finally:
        agent.send_signal(signal.SIGINT)
        _, err = agent.communicate(timeout=60)
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    flood_events = [e for e in lines if e.get("kind") == "file" and e.get("path") == str(key)
                    and e["pid"] == flood.pid]
    assert sum(e.get("count", 1) for e in flood_events) == 300_000, err
    assert len(flood_events) < 100          # folded: a few records per window, not 300,000
    hits = [e for e in lines if e.get("kind") == "file" and e.get("path") == str(idrsa)]
    assert hits and hits[0]["comm"] == "cat" and hits[0]["severity"] == "critical"
    summary = lines[-1]
    assert summary["kind"] == "summary"
    crit = summary["loss"]["lanes"]["critical"]
    assert crit["spill_full"] == 0 and summary["loss"]["uncounted_gaps"] == 0
    assert crit["folded"] >= 299_000
    # the stop itself is evidence, recorded by the kernel while the agent could not read: it
    # names this process as the sender, and the run cannot call itself complete
    stops = [e for e in lines if e.get("kind") == "tamper" and e.get("rule") == "tamper.stop"]
    assert [(e["pid"], e["signal"], e["target_pid"], e["severity"]) for e in stops] == \
        [(os.getpid(), "SIGSTOP", agent.pid, "critical")], stops
    assert stops[0]["exe"] == os.path.realpath(sys.executable)
    assert summary["verdict"] == "degraded"
    assert {"reason": "tamper.stop", "count": 1} in summary["verdict_reasons"]


@pytest.mark.parametrize("ext", ["crt", "key"])   # a lower tier (certificates), the highest tier
def test_distinct_flood_then_key_read_nothing_lost(monitor, tmp_path: Path, ext: str) -> None:
    """20,000 distinct watched files opened while the reader is not reading (the ring takes a few
    thousand), then one key read by another process: the overflow goes to the spill map and
    every event is delivered, the key read too. The watched-inode map cannot learn them all
    (they all exist): the verdict says so, and that is its only reason."""
    mon = monitor(FILE_ONLY)
    seeded = len(mon.pipeline.inodes)
    d = tmp_path / "many"
    d.mkdir()
    code = ("import os, sys\n"
            "d, ext = sys.argv[1], sys.argv[2]\n"
            "for i in range(20_000):\n"
            "    p = os.path.join(d, f'k{i}.{ext}')\n"
            "    os.close(os.open(p, os.O_WRONLY | os.O_CREAT, 0o600))\n")
    (tmp_path / ".ssh").mkdir()
    key = tmp_path / ".ssh" / "id_ed25519"
    key.write_text("k\n")
    p = subprocess.run([sys.executable, "-c", code, str(d), ext], check=True)
    assert p.returncode == 0
    reader = subprocess.run(["cat", str(key)], capture_output=True, check=True)
    assert reader.returncode == 0
    assert mon.wait_for(lambda e: e["kind"] == "file" and e["path"] == str(key), timeout=20)
    mon.wait_for(lambda e: len([x for x in mon.events if x["kind"] == "file"]) >= 20_001, 20)
    paths = {e["path"] for e in mon.events if e["kind"] == "file" and e["path"].startswith(str(d))}
    summary = mon.pipeline.loss_summary().to_json()
    crit = summary["lanes"]["critical"]
    assert len(paths) == 20_000, summary
    assert crit["spilled"] > 0 and crit["spill_full"] == 0 and summary["uncounted_gaps"] == 0
    late = [e for e in mon.events if e.get("late") and e["kind"] == "file"]
    assert late and all(e["path"].startswith(str(d)) or e["path"] == str(key) for e in late)
    # Lifecycle records (the exec of cat) spill like the rest: nothing is lost.
    assert summary["dropped"]["ring_full"] == 0 and summary["dropped"]["spill_full"] == 0, summary["dropped"]
    # (another BPF user on this machine may show up as tamper.bpf: not a loss)
    losses = [r for r in summary["verdict_reasons"] if not r["reason"].startswith("tamper.")]
    # 20,000 files and the key learned at their opens, into a map of 16,384 with the seeds in
    # it (and whatever else opened a watched name meanwhile: CA certificates, say)
    assert summary["inodes_not_learned"] >= 20_001 - (MAX_INODES - seeded)
    assert losses == [{"reason": "inodes_not_learned", "count": summary["inodes_not_learned"]}] \
        and summary["folded_unreported"] == 0, \
        (losses, summary["folded_unnamed_keys"], summary["dropped"]["folded"])
    (hit,) = [e for e in mon.events if e["kind"] == "file" and e["path"] == str(key)]
    assert hit["comm"] == "cat" and hit["severity"] == "critical"


REPEATS = 50
FLOOD_KEYS = 12_000   # more than crit_fold and fold_counts hold (max_entries_per_map, 10,000)


def _read_key_then_flood(key: Path, d: Path, repeats: int, distinct: int) -> None:
    """One process reads `key` `repeats` times (folded into a count in the kernel), then opens
    `distinct` new watched files twice each (each a count of its own), while the test's reader
    is not reading."""
    code = ("import os, sys\n"
            "key, d, n, m = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])\n"
            "for _ in range(n):\n"
            "    os.close(os.open(key, os.O_RDONLY))\n"
            "for i in range(m):\n"
            "    p = os.path.join(d, f'k{i}.crt')\n"
            "    os.close(os.open(p, os.O_WRONLY | os.O_CREAT, 0o600))\n"
            "    os.close(os.open(p, os.O_WRONLY))\n")
    subprocess.run([sys.executable, "-c", code, str(key), str(d), str(repeats), str(distinct)],
                   check=True)


def test_fold_counts_survive_a_flood_of_distinct_keys(monitor, tmp_path: Path) -> None:
    """Repeated reads of a key fold into a count; a flood of distinct watched files opened twice
    each by the same process then pushes the key's fold window out of the kernel's LRU and fills
    the count table, but no count is lost: the key's reads add up to exactly REPEATS, and each
    flood file to exactly 2 (the repeats the full table could not count were sent as records).
    Once idle the counts' entries are deleted (reported), and a second burst of reads is counted
    from one again, exactly."""
    mon = monitor(FILE_ONLY)
    (tmp_path / ".ssh").mkdir()
    key = tmp_path / ".ssh" / "id_ed25519"
    key.write_text("k\n")
    d = tmp_path / "many"
    d.mkdir()
    assert mon.pipeline.kernel.table_entries < FLOOD_KEYS
    _read_key_then_flood(key, d, REPEATS, FLOOD_KEYS)

    def reads(path: str) -> int:
        return sum(e.get("count", 1) for e in mon.events if e["kind"] == "file" and e["path"] == path)

    def flood_total() -> int:
        return sum(e.get("count", 1) for e in mon.events
                   if e["kind"] == "file" and e["path"].startswith(str(d)))

    deadline = time.monotonic() + 60
    while (flood_total() < 2 * FLOOD_KEYS or reads(str(key)) < REPEATS) and time.monotonic() < deadline:
        mon.poll()
    mon.settle(0.5)
    assert reads(str(key)) == REPEATS
    per_file: Counter[str] = Counter()
    for e in mon.events:
        if e["kind"] == "file" and e["path"].startswith(str(d)):
            per_file[e["path"]] += e.get("count", 1)
    assert len(per_file) == FLOOD_KEYS and set(per_file.values()) == {2}
    summary = mon.pipeline.loss_summary()
    assert summary.folded_unreported == 0 and summary.folds_full > 0
    assert summary.folded_reported == REPEATS - 1 + FLOOD_KEYS - summary.folds_full

    # idle: housekeeping deletes the counts' entries (FOLD_IDLE_NS after their last fold)
    deadline = time.monotonic() + 15
    while mon.pipeline.kernel.fold_counts() and time.monotonic() < deadline:
        mon.poll(0.2)
    assert mon.pipeline.kernel.fold_counts() == {}
    _read_key_then_flood(key, d, 30, 0)
    deadline = time.monotonic() + 10
    while reads(str(key)) < REPEATS + 30 and time.monotonic() < deadline:
        mon.poll()
    mon.settle(1.5)
    assert reads(str(key)) == REPEATS + 30
    assert mon.pipeline.loss_summary().folded_unreported == 0
