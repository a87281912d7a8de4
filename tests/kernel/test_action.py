"""The GitHub Action end to end, run as the runner runs it: start installs the wheel from the
action's dist/ (no compiler) and returns once probes are attached; stop reports, also with
`if: always()` after a failed step and after the monitor was killed with -9 (`interrupted`)."""

from __future__ import annotations

import os
import signal
import time

from actionrunner import Runner, release_checkout
from wheelenv import wheel_venv


def _wait(pred, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    return False


def _key(runner: Runner) -> str:
    key = runner.workspace / "deploy" / ".ssh" / "id_rsa"
    key.parent.mkdir(parents=True)
    key.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nsecret-bytes\n")
    return str(key)


def test_action_start_read_stop_fresh_install(tmp_path):
    runner = Runner(tmp_path, release_checkout(tmp_path))
    start = runner.uses(mode="start", **{"probe-type": "file_monitor"})
    assert start.returncode == 0, start.stdout
    assert "bee-trace is monitoring" in start.stdout and "building from source" not in start.stdout
    assert "dist/bee_trace-" in start.stdout
    line = next(x for x in start.stdout.splitlines() if "is monitoring" in x)
    print(f"start-to-ready (fresh venv, wheel from dist/): {start.seconds:.1f} s; {line}")
    key = _key(runner)
    step = runner.shell(f"cat {key} > /dev/null")
    assert step.returncode == 0
    jsonl = runner.temp / "bee-trace.jsonl"
    assert _wait(lambda: key in jsonl.read_text(errors="replace"), 10)
    stop = runner.uses(mode="stop", **{"fail-on": "high"})
    assert stop.returncode == 1, stop.stdout          # a high finding with fail-on: high
    assert "::warning title=bee-trace high" in stop.stdout or "::error title=bee-trace" in stop.stdout
    assert stop.outputs["verdict"] == "complete"
    assert int(stop.outputs["events-detected"]) >= 1 and int(stop.outputs["high-severity-events"]) >= 1
    assert os.path.exists(stop.outputs["report-path"])
    summary = runner.summary.read_text()
    assert "Verdict: complete" in summary.split("### Findings by process")[0]
    assert key in summary.replace("\\", "")
    assert "secret-bytes" not in summary


def test_stop_runs_after_a_failed_step(tmp_path):
    runner = Runner(tmp_path, release_checkout(tmp_path), {"BT_VENV": str(wheel_venv())})
    assert runner.uses(mode="start", **{"probe-type": "file_monitor"}).returncode == 0
    key = _key(runner)
    failed = runner.shell(f"cat {key} >/dev/null; echo tests failed; exit 1")
    assert failed.returncode == 1
    # `if: always()`: the runner runs the stop step although the job has failed.
    stop = runner.uses(mode="stop")
    assert stop.returncode == 0, stop.stdout          # fail-on: none
    assert stop.outputs["verdict"] == "complete"
    assert key in runner.summary.read_text().replace("\\", "")


def test_monitor_killed_with_9_is_interrupted(tmp_path):
    runner = Runner(tmp_path, release_checkout(tmp_path), {"BT_VENV": str(wheel_venv())})
    assert runner.uses(mode="start", **{"probe-type": "file_monitor"}).returncode == 0
    key = _key(runner)
    runner.shell(f"cat {key} >/dev/null")
    jsonl = runner.temp / "bee-trace.jsonl"
    assert _wait(lambda: key in jsonl.read_text(errors="replace"), 10)
    pid = int((runner.temp / "bee-trace.pid").read_text())
    os.kill(pid, signal.SIGKILL)
    assert _wait(lambda: not os.path.exists(f"/proc/{pid}") or
                 open(f"/proc/{pid}/stat").read().split()[2] == "Z", 10)
    stop = runner.uses(mode="stop", **{"fail-on": "critical"})
    assert "was no longer running" in stop.stdout
    assert "verdict: interrupted" in stop.stdout
    assert stop.outputs["verdict"] == "interrupted"
    summary = runner.summary.read_text()
    assert "Verdict: interrupted" in summary.split("### Findings by process")[0]
    assert key in summary.replace("\\", "")           # what was flushed before the kill is kept


def test_stop_when_start_never_ran(tmp_path):
    """`if: always()` after a failed start: stop says nothing was monitored, fails only with fail-on."""
    runner = Runner(tmp_path, release_checkout(tmp_path))
    stop = runner.uses(mode="stop")
    assert stop.returncode == 0 and "no monitor was started" in stop.stdout
    assert "not monitored" in runner.summary.read_text()
    assert runner.uses(mode="stop", **{"fail-on": "high"}).returncode == 1
