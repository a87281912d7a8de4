"""Secret-file monitor on the real kernel: real opens by child processes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

FILE_ONLY = {"file_monitor"}


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A temporary HOME with the usual secrets."""
    (tmp_path / ".ssh").mkdir()
    (tmp_path / ".ssh" / "id_rsa").write_text("-----BEGIN OPENSSH PRIVATE KEY-----\n")
    (tmp_path / ".aws").mkdir()
    (tmp_path / ".aws" / "credentials").write_text("[default]\n")
    (tmp_path / "server.pem").write_text("pem\n")
    return tmp_path


def _file_events(mon, path: str, timeout: float = 3.0) -> list[dict]:
    return mon.wait_for(lambda e: e["kind"] == "file" and e["path"] == path, timeout)


def test_cat_of_secrets_reported_with_process_context(monitor, home: Path) -> None:
    mon = monitor(FILE_ONLY)
    targets = [home / ".ssh" / "id_rsa", home / "server.pem", home / ".aws" / "credentials"]
    for target in targets:
        proc = subprocess.run(["cat", str(target)], capture_output=True)
        assert proc.returncode == 0
        events = _file_events(mon, str(target))
        assert events, f"no event for {target}"
        ev = events[0]
        assert ev["comm"] == "cat"
        assert ev["access"] == "read"
        assert ev["pid"] != os.getpid() and ev["pid"] > 0
        assert ev["severity"] in ("high", "critical")
    ids = {e["path"]: e["pid"] for e in mon.events if e["kind"] == "file"}
    assert len({ids[str(t)] for t in targets}) == 3  # three different cat processes


def test_tgid_and_tid_are_the_opening_process(monitor, home: Path) -> None:
    mon = monitor(FILE_ONLY)
    key = home / ".ssh" / "id_rsa"
    child = subprocess.Popen([sys.executable, "-c", f"open({str(key)!r}).read(); import time; time.sleep(0.5)"])
    try:
        events = _file_events(mon, str(key))
    finally:
        child.wait()
    assert events and events[0]["pid"] == child.pid and events[0]["tid"] == child.pid
    assert events[0]["ppid"] == os.getpid()


def test_ordinary_file_is_not_reported(monitor) -> None:
    mon = monitor(FILE_ONLY)
    subprocess.run(["cat", "/etc/hostname"], capture_output=True, check=True)
    mon.settle(0.5)
    assert not [e for e in mon.events if e.get("path") == "/etc/hostname"]
    assert mon.pipeline.loss_summary().inspected > 0  # the probe did see opens


def test_write_of_key_file_is_write_access(monitor, tmp_path: Path) -> None:
    mon = monitor(FILE_ONLY)
    target = tmp_path / "deploy.key"
    subprocess.run(["sh", "-c", f"echo secret > '{target}'"], check=True)
    events = _file_events(mon, str(target))
    assert events and events[0]["access"] == "write"
    assert events[0]["severity"] == "high"


def test_agent_own_opens_never_appear(monitor, home: Path) -> None:
    mon = monitor(FILE_ONLY)
    key = home / ".ssh" / "id_rsa"
    for _ in range(5):
        key.read_text()  # opened by the agent's own process
    subprocess.run(["cat", str(key)], capture_output=True, check=True)  # the marker
    events = _file_events(mon, str(key))
    assert [e["comm"] for e in events] == ["cat"]
    assert all(e["pid"] != os.getpid() for e in mon.events)


def test_relative_path_resolved_against_cwd(monitor, home: Path) -> None:
    mon = monitor(FILE_ONLY)
    code = "import os,time; os.chdir('.ssh'); open('id_rsa').read(); time.sleep(1)"
    child = subprocess.Popen([sys.executable, "-c", code], cwd=home)
    try:
        events = _file_events(mon, str(home / ".ssh" / "id_rsa"))
    finally:
        child.wait()
    assert events and events[0]["pid"] == child.pid


@pytest.mark.parametrize("length", [300, 1500, 4000])
def test_long_path_reported_whole(monitor, tmp_path: Path, length: int) -> None:
    """Paths up to PATH_MAX arrive whole (continuation records joined by the decoder)."""
    mon = monitor(FILE_ONLY)
    deep = tmp_path
    while len(str(deep)) < length - 60:
        deep = deep / ("d" * 40)
    deep.mkdir(parents=True)
    key = deep / "id_rsa"
    key.write_text("k")
    assert len(str(key)) > length - 60
    child = subprocess.run(["cat", str(key)], capture_output=True, check=True)
    assert child.returncode == 0
    events = mon.wait_for(lambda e: e["kind"] == "file" and e["path"].endswith("/id_rsa"))
    assert events, "a secret at the end of a long path was missed"
    ev = events[0]
    assert ev["truncated"] is False and ev["path"] == str(key) and ev["path_len"] == len(str(key))
    assert "requested_path" not in ev  # cat was given exactly that path


def test_flood_of_non_matching_opens_then_secret(monitor, home: Path) -> None:
    mon = monitor(FILE_ONLY)
    key = home / ".ssh" / "id_rsa"
    code = ("import os\n"
            "for _ in range(200000):\n"
            "    os.close(os.open('/etc/hostname', os.O_RDONLY))\n"
            f"open({str(key)!r}).read()\n")
    subprocess.run([sys.executable, "-c", code], check=True)
    events = _file_events(mon, str(key), timeout=5)
    assert len(events) == 1
    loss = mon.pipeline.loss_summary().to_json()
    assert loss["inspected"] >= 200000
    assert loss["dropped"]["ring_full"] == 0 and loss["verdict"] == "complete"


def test_hostile_file_name_escaped_in_table_and_valid_in_json(monitor, tmp_path: Path) -> None:
    import io

    from bee_trace.sinks.jsonl import to_json_line
    from bee_trace.sinks.table import TableSink

    mon = monitor(FILE_ONLY)
    name = "evil|<script>\n\x1b[31mred.pem"
    target = tmp_path / name
    target.write_text("x")
    subprocess.run(["cat", str(target)], capture_output=True, check=True)
    events = _file_events(mon, str(target))
    assert events
    line = to_json_line(events[0])
    assert json.loads(line)["path"] == str(target)
    buf = io.StringIO()
    TableSink(buf, header=False, color=False)(events[0])
    text = buf.getvalue()
    assert text.count("\n") == 1 and "\x1b" not in text


def test_cli_run_writes_jsonl_event(tmp_path: Path, home: Path) -> None:
    """The README's command: run with --format jsonl --output while another process reads a key."""
    out, ready = tmp_path / "ev.jsonl", tmp_path / "ready"
    cmd = [sys.executable, "-m", "bee_trace.cli", "run", "--probe-type", "file_monitor",
           "--format", "jsonl", "--output", str(out), "--duration", "5", "--ready-file", str(ready)]
    agent = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 20
    while not ready.exists() and agent.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert ready.exists(), agent.communicate()[1] if agent.poll() is not None else "agent not ready"
    key = home / ".ssh" / "id_rsa"
    subprocess.run(["cat", str(key)], capture_output=True, check=True)
    _, err = agent.communicate(timeout=30)
    assert agent.returncode == 0, err
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    hits = [e for e in lines if e.get("path") == str(key)]
    assert hits and hits[0]["comm"] == "cat" and hits[0]["kind"] == "file"
    assert lines[-1]["kind"] == "summary" and lines[-1]["verdict"] == "complete"
    assert "verdict: complete" in err



def test_invalid_utf8_name_is_valid_json_and_escaped(monitor, tmp_path: Path) -> None:
    from bee_trace.sinks.jsonl import to_json_line

    mon = monitor(FILE_ONLY)
    raw = os.fsencode(str(tmp_path)) + b"/bad\xff\xfe.pem"
    with open(raw, "wb") as f:
        f.write(b"x")
    subprocess.run([b"cat", raw], capture_output=True, check=True)
    events = mon.wait_for(lambda e: e["kind"] == "file" and e["path"].endswith(".pem")
                          and "bad" in e["path"])
    assert events
    line = to_json_line(events[0])
    line.encode("utf-8")  # strict: no lone surrogates
    assert json.loads(line)["path"].endswith("bad\\xff\\xfe.pem")


def test_relative_open_of_exited_process_made_absolute_in_kernel(monitor, home: Path, tmp_path: Path) -> None:
    """`cd ~/.ssh && cat id_rsa` from a process that is gone before we read: the kernel walked the
    cwd (across mounts, e.g. /dev/shm) so the path is still absolute; dirfd-relative too."""
    mon = monitor(FILE_ONLY)
    subprocess.run(["sh", "-c", "cd .ssh && cat id_rsa ../.ssh/./id_rsa"], cwd=home, check=True,
                   capture_output=True)
    key = str(home / ".ssh" / "id_rsa")
    events = mon.wait_for(lambda e: e["kind"] == "file" and e["comm"] == "cat" and e["path"] == key)
    # one cat opened it twice: the second is folded in the kernel into a count
    mon.wait_for(lambda e: e["kind"] == "file" and e.get("aggregated") and e["path"] == key, 2)
    events = [e for e in mon.events if e["kind"] == "file" and e["comm"] == "cat" and e["path"] == key]
    assert sum(e.get("count", 1) for e in events) == 2 and all("path_resolved" not in e for e in events)
    code = ("import os; fd = os.open('.ssh', os.O_RDONLY)\n"
            "os.close(os.open('id_rsa', os.O_RDONLY, dir_fd=fd))\n")
    child = subprocess.run([sys.executable, "-c", code], cwd=home, check=True)
    assert child.returncode == 0
    assert mon.wait_for(lambda e: e["kind"] == "file" and e["comm"].startswith("python") and e["path"] == key)
    shm = Path(tempfile.mkdtemp(dir="/dev/shm"))
    try:
        (shm / "id_ecdsa").write_text("k")
        subprocess.run(["sh", "-c", "cat id_ecdsa"], cwd=shm, check=True, capture_output=True)
        assert mon.wait_for(lambda e: e["kind"] == "file" and e["path"] == str(shm / "id_ecdsa"))
    finally:
        shutil.rmtree(shm)
