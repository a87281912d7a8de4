"""README claims about the command line, through the real CLI in a subprocess on the real kernel:
`bee-trace check`, exit status 2 with one clear line for each set-up error, `run --format csv`,
`--profile`, and the `interrupted` verdict (SIGTERM during --duration; SIGKILL → report)."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from bee_trace._libbpf import Object
from bee_trace.kernel import OBJECT_PATH

PY = sys.executable
CLI = [PY, "-m", "bee_trace.cli"]


def wait_until(cond: Callable[[], bool], timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None,
        prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    return subprocess.run([*prefix, *CLI, *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})}, cwd=cwd)


def start_agent(tmp_path: Path, *args: str) -> subprocess.Popen:
    ready = tmp_path / f"ready-{time.monotonic_ns()}"
    agent = subprocess.Popen([*CLI, "run", "--ready-file", str(ready), *args], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    if not wait_until(lambda: ready.exists() or agent.poll() is not None) or not ready.exists():
        agent.kill()
        pytest.fail(f"agent did not start: {agent.communicate()[1]}")
    return agent


def stop_agent(agent: subprocess.Popen, sig: int = signal.SIGINT) -> tuple[int, str, str]:
    """Ctrl+C (by default): the agent detaches, drains what is left in the rings and reports."""
    agent.send_signal(sig)
    out, err = agent.communicate(timeout=60)
    return agent.returncode, out, err


def read_key(tmp_path: Path, name: str) -> int:
    """A renamed `cat` (so --command can pick it out) reads a private key; returns its pid."""
    key = tmp_path / "id_ed25519"
    key.write_text("k")
    reader = tmp_path / name
    shutil.copy("/bin/cat", reader)
    child = subprocess.Popen([str(reader), str(key)], stdout=subprocess.DEVNULL)
    assert child.wait(timeout=30) == 0
    return child.pid


# -- check --------------------------------------------------------------------------------------

def test_check_reports_every_capability_and_attached_probes() -> None:
    res = cli("check")
    assert res.returncode == 0, res.stdout + res.stderr
    rows = {m.group(2): (m.group(1), m.group(3))
            for m in re.finditer(r"^(ok |NO ) (\S.*?)\s{2,}(.*)$", res.stdout, re.M)}
    for name in ("root", "kernel", "BTF", "libbpf", "BPF object", "tracefs", "ring buffer"):
        assert rows[name][0] == "ok ", (name, rows.get(name))
    assert rows["BPF object"][1] == str(OBJECT_PATH)
    probes = {name: state for name, (_, state) in rows.items() if name.startswith("probe ")}
    # Every program of the object is listed; on this kernel all of them attach (the cgroup egress
    # hooks too: they are the network monitor's source of destinations in every mode).
    with Object(str(OBJECT_PATH)) as obj:
        sections = {f"probe {p.section}" for p in obj.programs()}
    assert set(probes) == sections
    # opens and links are seen at every syscall exit (raw_tp, 32-bit syscalls too), which
    # replaces their own exit tracepoints (the max-performance profile's way)
    replaced = {n for n, st in probes.items() if st == "replaced by raw_tp/sys_exit"}
    assert replaced == {f"probe tp/syscalls/sys_exit_{n}" for n in
                        ("open", "creat", "openat", "openat2", "open_tree", "open_by_handle_at",
                         "link", "linkat", "symlink", "symlinkat", "rename", "renameat",
                         "renameat2")}
    assert {st for n, st in probes.items() if n not in replaced} == {"attached"}, probes
    assert rows["coverage 32-bit syscalls"] == ("ok ", "watched (raw_tp/sys_exit)")
    assert res.stderr.strip() == "monitoring: possible"


def test_check_names_the_coverage_max_performance_gives_up() -> None:
    res = cli("check", "--profile", "max-performance")
    assert res.returncode == 0, res.stdout + res.stderr
    rows = {m.group(2): (m.group(1), m.group(3))
            for m in re.finditer(r"^(ok |NO ) (\S.*?)\s{2,}(.*)$", res.stdout, re.M)}
    assert rows["probe raw_tp/sys_exit"][1].startswith("off: max-performance profile")
    assert rows["probe tp/syscalls/sys_exit_openat"] == ("ok ", "attached")
    assert rows["coverage 32-bit syscalls"][0] == "NO "
    assert res.stderr.strip() == "monitoring: possible"


def test_check_says_not_possible_and_exits_2_without_the_object(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.bpf.o"
    res = cli("check", env={"BEE_TRACE_OBJECT": str(missing)})
    assert res.returncode == 2
    assert re.search(r"^NO  BPF object\s+not built: run `make bpf`$", res.stdout, re.M), res.stdout
    assert res.stderr.strip() == "monitoring: NOT possible"


# -- set-up errors: exit 2, one line ------------------------------------------------------------

def _one_line_error(res: subprocess.CompletedProcess) -> str:
    assert res.returncode == 2, (res.returncode, res.stderr)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("bee-trace: "), res.stderr
    return lines[0]


@pytest.mark.parametrize("var,value,says", [
    ("BEE_TRACE_BTF", "/nonexistent/btf/vmlinux", "/nonexistent/btf/vmlinux is missing: this kernel has no BTF"),
    ("BEE_TRACE_TRACEFS", "/nonexistent/tracing", "tracefs is not mounted at /nonexistent/tracing"),
    ("BEE_TRACE_OBJECT", "/nonexistent/bee_trace.bpf.o", "/nonexistent/bee_trace.bpf.o is not built: run `make bpf`"),
])
def test_setup_errors_exit_2_with_one_line(tmp_path: Path, var: str, value: str, says: str) -> None:
    line = _one_line_error(cli("run", "--duration", "1", env={var: value}, cwd=tmp_path))
    assert says in line, line
    if var == "BEE_TRACE_TRACEFS":
        assert "run `mount -t tracefs nodev /nonexistent/tracing` as root" in line
    assert not Path(value).exists()


def test_not_root_exits_2_with_one_line(tmp_path: Path) -> None:
    # A user namespace without a mapping: the same binary, euid 65534.
    line = _one_line_error(cli("run", "--duration", "1", cwd=tmp_path, prefix=("unshare", "-U")))
    assert "must run as root" in line and "sudo" in line


def test_bad_config_exits_2_naming_file_line_and_key(tmp_path: Path) -> None:
    cfg = tmp_path / "security.yml"
    cfg.write_text("network:\n  report_loopback: true\n  no_such_key: 1\n")
    line = _one_line_error(cli("run", "--duration", "1", "--config", str(cfg), cwd=tmp_path))
    assert re.fullmatch(rf"bee-trace: {re.escape(str(cfg))}:3: network\.no_such_key: .+", line), line
    wrong_type = tmp_path / "type.yml"
    wrong_type.write_text("performance:\n  sampling_rate: lots\n")
    line = _one_line_error(cli("run", "--duration", "1", "--config", str(wrong_type), cwd=tmp_path))
    assert re.fullmatch(rf"bee-trace: {re.escape(str(wrong_type))}:2: performance\.sampling_rate: .+", line)


# -- output formats -----------------------------------------------------------------------------

def test_run_format_csv_writes_the_report_rows(tmp_path: Path) -> None:
    out = tmp_path / "report.csv"
    agent = start_agent(tmp_path, "--probe-type", "file_monitor", "--format", "csv", "--output", str(out),
                        "--command", "beecsv")
    pid = read_key(tmp_path, "beecsv")
    rc, stdout, err = stop_agent(agent)
    assert rc == 0, err
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert len(rows) == 1, rows
    row = rows[0]
    assert row["kind"] == "file" and row["path"] == str(tmp_path / "id_ed25519")
    assert row["access"] == "read" and row["comm"] == "beecsv" and row["exe"] == str(tmp_path / "beecsv")
    assert row["pid"] == row["tid"] == str(pid)
    assert row["uid"] == str(os.getuid()) and row["ppid"] == str(os.getpid())
    assert row["severity"] == "critical" and row["rule"] == "file.ssh_key.read"
    assert "verdict: complete" in err
    # The report went to the file; the terminal had the live table.
    assert "beecsv" in stdout and "kind,severity" not in stdout


# -- profiles -----------------------------------------------------------------------------------

FLOOD = ("import os, socket, sys\n"
         "s = socket.socket(); s.bind(('127.0.0.1', 0)); port = s.getsockname()[1]; s.close()\n"
         "for i in range(int(sys.argv[1])):\n"
         "    c = socket.socket(); c.connect_ex(('127.0.0.1', port)); c.close()\n")


def _profile_run(tmp_path: Path, profile: str, n: int) -> tuple[int, dict]:
    """Flood n refused loopback connects under --profile; returns the flood's events and the
    run summary."""
    policy = tmp_path / f"{profile}.yml"
    policy.write_text("network:\n  report_loopback: true\n"
                      "performance:\n  sampling_rate: 0.5\n  max_events_per_second: 0\n"
                      "  aggregation_window_ms: 0\n")
    out = tmp_path / f"{profile}.jsonl"
    agent = start_agent(tmp_path, "--probe-type", "network_monitor", "--format", "jsonl",
                        "--output", str(out), "--config", str(policy), "--profile", profile, "--verbose")
    child = subprocess.Popen([PY, "-c", FLOOD, str(n)])
    assert child.wait(timeout=60) == 0
    rc, _, err = stop_agent(agent)
    assert rc == 0, err
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    flood = [e for e in lines if e.get("kind") == "network" and e["pid"] == child.pid]
    assert all(e["daddr"] == "127.0.0.1" and e["protocol"] == "tcp" for e in flood)
    return len(flood), lines[-1]


def test_profile_max_coverage_overrides_policy_sampling(tmp_path: Path) -> None:
    """The policy samples 1 in 2; --profile max-coverage delivers every event, balanced does not."""
    n = 2000
    ncpus = os.cpu_count() or 1
    flood, summary = _profile_run(tmp_path, "max-coverage", n)
    assert flood == n
    dropped = summary["loss"]["dropped"]
    assert dropped["sampled"] == 0 and dropped["rate_limited"] == 0 and dropped["aggregated"] == 0
    assert summary["verdict"] == "complete"

    flood, summary = _profile_run(tmp_path, "balanced", n)
    assert n // 2 - ncpus <= flood <= n // 2 + ncpus, flood       # the policy's 1-in-2, per CPU
    assert summary["loss"]["dropped"]["sampled"] >= n - flood
    assert summary["verdict"] == "complete"                      # sampling is asked for, not loss


def test_profiles_reach_the_kernel_settings(monitor) -> None:
    import numpy as np

    from bee_trace import records as R

    def kernel_settings(mon) -> np.void:
        k = mon.pipeline.kernel
        raw = k._obj.map("settings").lookup(bytes(4), R.settings_dtype.itemsize)
        return np.frombuffer(raw, dtype=R.settings_dtype)[0]

    perf = kernel_settings(monitor({"network_monitor"}, profile="max-performance", adaptive=False))
    assert perf["sample_every"][R.EV_NET] == 2 and perf["rate_per_sec"][R.EV_NET] == 1000
    assert perf["agg_window_ns"] == 5_000_000_000
    cov_mon = monitor({"network_monitor"}, profile="max-coverage", adaptive=False)
    cov = kernel_settings(cov_mon)
    assert cov["sample_every"][R.EV_NET] == 1 and cov["rate_per_sec"][R.EV_NET] == 0
    assert cov["agg_window_ns"] == 0
    bal_mon = monitor({"network_monitor"}, profile="balanced", adaptive=False)
    k_cov, k_bal = cov_mon.pipeline.kernel, bal_mon.pipeline.kernel
    for ring in ("ring_critical", "ring_bulk"):
        assert k_cov.ring_size(ring) == 4 * k_bal.ring_size(ring)


# -- interrupted --------------------------------------------------------------------------------

def test_signal_during_duration_run_gives_interrupted_verdict(tmp_path: Path) -> None:
    out = tmp_path / "ev.jsonl"
    agent = start_agent(tmp_path, "--probe-type", "file_monitor", "--format", "jsonl", "--output", str(out),
                        "--duration", "120", "--command", "beeterm")
    pid = read_key(tmp_path, "beeterm")
    rc, _, err = stop_agent(agent, signal.SIGTERM)
    assert rc == 0, err
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(e["comm"], e["pid"]) for e in lines if e.get("kind") == "file"] == [("beeterm", pid)]
    assert lines[-1]["kind"] == "summary" and lines[-1]["verdict"] == "interrupted"
    assert err.strip().splitlines()[-1].endswith("verdict: interrupted")


def test_killed_agent_stream_is_reported_as_interrupted(tmp_path: Path) -> None:
    out = tmp_path / "ev.jsonl"
    agent = start_agent(tmp_path, "--probe-type", "file_monitor", "--format", "jsonl", "--output", str(out),
                        "--duration", "120", "--command", "beekill")
    read_key(tmp_path, "beekill")
    # The event reaches the file (regular files are written in the reading thread, per batch).
    assert wait_until(lambda: '"beekill"' in out.read_text()), out.read_text()
    agent.kill()                                    # SIGKILL: no summary record is written
    agent.communicate(timeout=30)
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert not [e for e in lines if e.get("kind") == "summary"]
    res = cli("report", str(out), "--format", "json", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["verdict"] == "interrupted"
    assert doc["summary"]["by_kind"] == {"file": 1}
    md = cli("report", str(out), cwd=tmp_path)
    assert "Verdict: interrupted" in md.stdout
