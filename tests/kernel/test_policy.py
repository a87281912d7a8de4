"""Policy file, reports and GitHub Actions integration through the real CLI and kernel."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bee_trace.config import default_config, parse_config

ORIGINAL = Path(__file__).resolve().parents[3] / "shared" / "compat" / "original-security.yml"


def _run_agent(tmp_path: Path, args: list[str], action, env: dict | None = None) -> subprocess.CompletedProcess:
    """Start `bee-trace run` with a ready file, do `action()`, then stop it with Ctrl+C: the
    agent detaches, drains what the action left in the rings, and writes its outputs (no wait
    for a --duration, no sleep for the event to arrive)."""
    ready = tmp_path / f"ready-{time.monotonic_ns()}"
    cmd = [sys.executable, "-m", "bee_trace.cli", "run", "--probe-type", "file_monitor",
           "--ready-file", str(ready), *args]
    agent = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env={**os.environ, **(env or {})}, cwd=tmp_path)
    deadline = time.monotonic() + 20
    while not ready.exists() and agent.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    if not ready.exists():
        out, err = agent.communicate(timeout=10)
        pytest.fail(f"agent did not start: {err}")
    action()
    agent.send_signal(signal.SIGINT)
    out, err = agent.communicate(timeout=30)
    return subprocess.CompletedProcess(cmd, agent.returncode, out, err)


def _policy(tmp_path: Path, extra_read: list[str], exclude: list[str]) -> Path:
    import yaml
    # The original bee-trace example when shared/ is beside the checkout, else our defaults.
    base = (yaml.safe_load(ORIGINAL.read_text()) if ORIGINAL.exists()
            else {"files": {"watch_read": list(default_config().files.watch_read)}})
    base["files"]["watch_read"] = list(base["files"].get("watch_read", [])) + extra_read
    base["files"]["exclude_paths"] = exclude
    path = tmp_path / "security.yml"
    path.write_text(yaml.safe_dump(base))
    parse_config(path.read_text(), str(path))  # must validate
    return path


def test_watch_read_glob_adds_detection_and_exclude_silences(tmp_path: Path) -> None:
    watched = tmp_path / "company-token.txt"
    silenced_dir = tmp_path / "vendor"
    silenced_dir.mkdir()
    silenced = silenced_dir / "id_rsa"
    reported = tmp_path / "id_rsa"
    for p in (watched, silenced, reported):
        p.write_text("x")
    policy = _policy(tmp_path, ["**/company-token.txt"], [f"{silenced_dir}/**"])
    out = tmp_path / "ev.jsonl"

    def act() -> None:
        subprocess.run(["/bin/cat", str(watched), str(silenced), str(reported)], check=True, capture_output=True)

    res = _run_agent(tmp_path, ["--config", str(policy), "--format", "jsonl", "--output", str(out)], act)
    assert res.returncode == 0, res.stderr
    paths = {json.loads(line).get("path") for line in out.read_text().splitlines()}
    assert str(watched) in paths, "the added watch_read glob did not take effect"
    assert str(reported) in paths
    assert str(silenced) not in paths, "exclude_paths did not silence the file"

    # Without the policy, the custom file is not watched.
    out2 = tmp_path / "ev2.jsonl"
    res = _run_agent(tmp_path, ["--format", "jsonl", "--output", str(out2)], act)
    paths2 = {json.loads(line).get("path") for line in out2.read_text().splitlines()}
    assert str(watched) not in paths2 and str(silenced) in paths2


def test_fail_on_high_and_github_outputs(tmp_path: Path) -> None:
    key = tmp_path / ".ssh" / "id_rsa"
    key.parent.mkdir()
    key.write_text("k")
    summary, outputs = tmp_path / "summary.md", tmp_path / "outputs.txt"
    env = {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary), "GITHUB_OUTPUT": str(outputs)}
    out = tmp_path / "ev.jsonl"

    # A uniquely named reader, so other activity on the machine cannot change the outcome.
    reader = tmp_path / "beereader"
    shutil.copy("/bin/cat", reader)

    def read_key() -> None:
        subprocess.run([str(reader), str(key)], check=True, capture_output=True)

    res = _run_agent(tmp_path, ["--format", "jsonl", "--output", str(out),
                                "--command", "beereader", "--fail-on", "high"], read_key, env)
    assert res.returncode == 1, res.stderr
    assert "::error" in res.stdout and "id_rsa" in res.stdout
    assert "id\\_rsa" in summary.read_text()  # Markdown-escaped
    text = outputs.read_text()
    assert "report-path" in text and "events-detected" in text and "high-severity-events" in text

    res = _run_agent(tmp_path, ["--format", "jsonl", "--output", str(tmp_path / "quiet.jsonl"),
                                "--command", "beereader", "--fail-on", "high"],
                     lambda: None, env)
    assert res.returncode == 0, res.stderr

    # `bee-trace report` rebuilt from the stream reproduces the live counts.
    live = json.loads(out.read_text().splitlines()[-1])
    rep = subprocess.run([sys.executable, "-m", "bee_trace.cli", "report", str(out), "--format", "json"],
                         capture_output=True, text=True, check=True)
    doc = json.loads(rep.stdout)
    assert doc["summary"]["total"] == live["counts"]["total"]
    assert doc["summary"]["by_severity"] == live["counts"]["by_severity"]


def test_hostile_name_escaped_in_every_format(tmp_path: Path) -> None:
    name = "x|<script>\n\x1b[31m.pem"
    target = tmp_path / name
    target.write_text("x")
    reader = tmp_path / "beehostile"
    shutil.copy("/bin/cat", reader)

    def act() -> None:
        subprocess.run([str(reader), str(target)], check=True, capture_output=True)

    stream = tmp_path / "ev.jsonl"
    res = _run_agent(tmp_path, ["--format", "jsonl", "--output", str(stream),
                                "--command", "beehostile"], act)
    assert res.returncode == 0, res.stderr
    assert "\x1b" not in res.stdout  # the live table on the terminal
    events = [json.loads(line) for line in stream.read_text().splitlines()]
    assert any(e.get("path") == str(target) for e in events)
    for fmt in ("markdown", "csv", "json"):
        rep = subprocess.run([sys.executable, "-m", "bee_trace.cli", "report", str(stream), "--format", fmt],
                             capture_output=True, text=True, check=True).stdout
        assert "\x1b" not in rep, f"raw ESC in {fmt}"
        if fmt == "markdown":
            assert "<script>" not in rep and "\\|" in rep
        if fmt == "csv":
            rows = list(csv.reader(io.StringIO(rep)))
            assert all("\n" not in cell for row in rows for cell in row)
        if fmt == "json":
            assert any(e.get("path") == str(target) for e in json.loads(rep)["events"])


def test_run_writes_markdown_and_json_reports(tmp_path: Path) -> None:
    key = tmp_path / "id_ed25519"
    key.write_text("k")
    reader = tmp_path / "beereport"
    shutil.copy("/bin/cat", reader)

    def act() -> None:
        subprocess.run([str(reader), str(key)], check=True, capture_output=True)

    md = tmp_path / "report.md"
    res = _run_agent(tmp_path, ["--format", "markdown", "--output", str(md),
                                "--command", "beereport"], act)
    assert res.returncode == 0, res.stderr
    text = md.read_text()
    assert "id\\_ed25519" in text and "Coverage and loss" in text
    js = tmp_path / "report.json"
    res = _run_agent(tmp_path, ["--format", "json", "--output", str(js),
                                "--command", "beereport"], act)
    doc = json.loads(js.read_text())
    assert doc["verdict"] == "complete" and doc["summary"]["by_kind"] == {"file": 1}
    assert doc["metadata"]["probe_types"] == ["file_monitor"] and doc["loss"]["dropped"]["ring_full"] == 0
