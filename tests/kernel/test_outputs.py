"""Outputs that fail cleanly (issue 9.7) with the real agent: a full disk under --output and a
pipe closed by its reader. No traceback, one line naming the output and the error, the findings
still reach stderr, the documented exit status, and no bee-trace program left in the kernel."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bee_trace.kernel import OBJECT_PATH

EXIT_OUTPUT = 3


def our_program_ids() -> set[int]:
    """Ids of loaded BPF programs that carry one of our program names (bpftool shows at most
    15 characters of a name)."""
    from bee_trace._libbpf import Object
    with Object(str(OBJECT_PATH)) as obj:
        names = {p.name[:15] for p in obj.programs()}
    out = subprocess.run(["bpftool", "-j", "prog", "show"], capture_output=True, text=True, check=True)
    return {p["id"] for p in json.loads(out.stdout or "[]") if p.get("name", "")[:15] in names}


def start_agent(tmp_path: Path, args: list[str], **popen) -> subprocess.Popen:
    ready = tmp_path / "ready"
    cmd = [sys.executable, "-m", "bee_trace.cli", "run", "--probe-type", "file_monitor",
           "--ready-file", str(ready), *args]
    agent = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, **popen)
    deadline = time.monotonic() + 20
    while not ready.exists() and agent.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    if not ready.exists():
        agent.kill()
        pytest.fail(f"agent not ready: {agent.communicate()[1]}")
    return agent


@pytest.fixture
def small_tmpfs(tmp_path: Path):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)], check=True)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_full_disk_output_keeps_monitoring_and_says_so(tmp_path: Path, small_tmpfs: Path) -> None:
    key = tmp_path / "id_rsa"
    key.write_text("k")
    # Fill the file system: the agent can create its output file, never write a block of it.
    with open(small_tmpfs / "fill", "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError:
            pass
    before = our_program_ids()
    out = small_tmpfs / "events.jsonl"
    agent = start_agent(tmp_path, ["--format", "jsonl", "--output", str(out), "--duration", "3"],
                        stdout=subprocess.DEVNULL)
    # Enough events to overflow the stream's buffer while the agent runs, then a key read the
    # attacker hopes the full disk hides.
    readers = [subprocess.run(["cat", str(key)], capture_output=True, check=True) for _ in range(60)]
    last = subprocess.Popen(["cat", str(key)], stdout=subprocess.DEVNULL)
    last.wait()
    _, err = agent.communicate(timeout=30)
    assert len(readers) == 60
    assert "Traceback" not in err, err
    lines = err.splitlines()
    failure = [line for line in lines if line.startswith("bee-trace: output ")]
    assert failure == [f"bee-trace: output {out}: No space left on device (ENOSPC); "
                       "monitoring goes on, findings go to stderr and the report"]
    # The key read that came after the failure reached stderr, named.
    assert any(line.startswith(f"bee-trace: finding: critical file.ssh_key.read pid {last.pid} cat: "
                               f"read {key}") for line in lines), err
    summary = lines[-1]
    assert "verdict: degraded" in summary and "output_failed=0" not in summary
    assert agent.returncode == EXIT_OUTPUT
    assert out.stat().st_size == 0
    assert our_program_ids() == before, "bee-trace programs still loaded after exit"


def test_pipe_closed_by_reader_ends_the_run_quietly(tmp_path: Path) -> None:
    key = tmp_path / "id_rsa"
    key.write_text("k")
    before = our_program_ids()
    # `bee-trace run --format jsonl | head -1`: the reader takes one line and goes.
    agent = start_agent(tmp_path, ["--format", "jsonl", "--duration", "30"], stdout=subprocess.PIPE)
    assert agent.stdout is not None
    subprocess.run(["cat", str(key)], capture_output=True, check=True)
    first = json.loads(agent.stdout.readline())
    agent.stdout.close()
    assert first["kind"] == "file" and first["path"] == str(key)
    deadline = time.monotonic() + 15
    while agent.poll() is None and time.monotonic() < deadline:  # writes now meet EPIPE
        subprocess.run(["cat", str(key)], capture_output=True, check=True)
    assert agent.poll() is not None, "the agent kept running with its reader gone"
    err = agent.stderr.read()  # type: ignore[union-attr]
    assert "Traceback" not in err and "BrokenPipeError" not in err and "Exception" not in err, err
    lines = err.splitlines()
    assert lines[0] == "bee-trace: stdout: closed by its reader; ending the run"
    assert lines[-1].startswith("bee-trace: ") and "verdict: " in lines[-1]
    assert len(lines) == 2, err
    assert agent.returncode == 0
    assert our_program_ids() == before, "bee-trace programs still loaded after exit"


def test_unwritable_output_path_is_one_line_exit_2(tmp_path: Path) -> None:
    missing = tmp_path / "no" / "such" / "dir" / "ev.jsonl"
    r = subprocess.run([sys.executable, "-m", "bee_trace.cli", "run", "--output", str(missing),
                        "--duration", "1"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip() == f"bee-trace: --output {missing}: No such file or directory"
    assert os.path.exists(tmp_path / "no") is False


def test_kill_9_then_report_says_interrupted(tmp_path: Path) -> None:
    key = tmp_path / "id_rsa"
    key.write_text("k")
    out = tmp_path / "ev.jsonl"
    agent = start_agent(tmp_path, ["--format", "jsonl", "--output", str(out)], stdout=subprocess.DEVNULL)
    subprocess.run(["cat", str(key)], capture_output=True, check=True)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and str(key) not in out.read_text():
        subprocess.run(["cat", str(key)], capture_output=True, check=True)  # until a line is out
        time.sleep(0.05)
    agent.kill()
    agent.wait(10)
    md = tmp_path / "report.md"
    r = subprocess.run([sys.executable, "-m", "bee_trace.cli", "report", str(out), "--output", str(md)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert r.stderr.splitlines()[-1] == ("bee-trace: verdict: interrupted (interrupted: no summary "
                                         "record (the agent was killed or crashed))")
    assert "Verdict: interrupted" in md.read_text()
