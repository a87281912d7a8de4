"""Processes the benchmark drives: the C load generator, the agent under test, bpftrace, auditd.
Every process started here is stopped here, by the pid we got when starting it."""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

LOADGEN_SRC = Path(__file__).with_name("loadgen.c")
AGENT_CPU = 0
LOAD_CPU = 1


class Unavailable(Exception):
    """A configuration that cannot run here; the message is the reason shown in the table."""


def pin_self(cpu: int = AGENT_CPU) -> None:
    try:
        os.sched_setaffinity(0, {cpu})
    except OSError:
        pass


def compile_loadgen(tmpdir: Path) -> Path:
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if not cc:
        raise Unavailable("no C compiler (cc) to build the load generator")
    out = tmpdir / "loadgen"
    rc = subprocess.run([cc, "-O2", "-Wall", "-o", str(out), str(LOADGEN_SRC)],
                        capture_output=True, text=True)
    if rc.returncode != 0:
        raise Unavailable(f"cc failed: {rc.stderr.strip()[-300:]}")
    return out


def _on_cpu(cpu: int) -> Callable[[], None]:  # preexec_fn
    def f() -> None:
        os.sched_setaffinity(0, {cpu})
    return f


def parse_kv(text: str) -> dict[str, float]:
    """The generator's `key=value key=value` output as numbers."""
    out: dict[str, float] = {}
    for tok in text.split():
        k, sep, v = tok.partition("=")
        if sep:
            out[k] = float(v)
    return out


def run_loadgen(binary: Path, *args: Any, cpu: int = LOAD_CPU, timeout: float = 120) -> dict[str, float]:
    """Run the generator pinned to `cpu`; returns its `key=value` output as numbers."""
    rc = subprocess.run([str(binary), *map(str, args)], capture_output=True, text=True,
                        timeout=timeout, preexec_fn=_on_cpu(cpu))
    if rc.returncode != 0:
        raise RuntimeError(f"loadgen {args}: {rc.stderr.strip()}")
    return parse_kv(rc.stdout)


class Loadgen:
    """The generator running in the background (pinned to `cpu`) while the caller does something
    else; `result()` waits for it and returns its output like run_loadgen. Stopped by its pid if
    the caller leaves early."""

    def __init__(self, binary: Path, *args: Any, cpu: int = LOAD_CPU) -> None:
        self.args = args
        self.proc: subprocess.Popen | None = subprocess.Popen(
            [str(binary), *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, preexec_fn=_on_cpu(cpu))

    def result(self, timeout: float = 180) -> dict[str, float]:
        proc = self.proc
        assert proc is not None
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired as e:
            self.close()
            raise RuntimeError(f"loadgen {self.args}: still running after {timeout:.0f} s") from e
        self.proc = None
        if proc.returncode != 0:
            raise RuntimeError(f"loadgen {self.args}: exit {proc.returncode}: {err.strip()}")
        return parse_kv(out)

    def close(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.communicate()
        self.proc = None

    def __enter__(self) -> Loadgen:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def closed_port() -> int:
    """A loopback TCP port nobody listens on (bound then released)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _readline(proc: subprocess.Popen, timeout: float) -> str | None:
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    buf = b""
    fd = proc.stdout.fileno()
    while time.monotonic() < deadline:
        r, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        if not r:
            break
        chunk = os.read(fd, 1)
        if not chunk:
            break
        if chunk == b"\n":
            return buf.decode(errors="replace")
        buf += chunk
    return None


class Agent:
    """bee-trace's Pipeline in a child process pinned to the agent CPU."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = {"cpu": AGENT_CPU, **spec}
        self.proc: subprocess.Popen | None = None
        self.pid = 0
        self.coverage: list[dict[str, Any]] = []
        self.result: dict[str, Any] = {}

    def __enter__(self) -> Agent:
        # The object may be rebuilt by `make bpf` while we run: retry a failed open a few times.
        for attempt in range(4):
            try:
                return self._start()
            except Unavailable as e:
                if attempt == 3 or "bpf.o" not in str(e):
                    raise
                time.sleep(2)
        raise AssertionError("unreachable")

    def _start(self) -> Agent:
        root = Path(__file__).resolve().parents[2]
        env = dict(os.environ)
        env["PYTHONPATH"] = str(root) + os.pathsep + env.get("PYTHONPATH", "")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bee_trace.bench.agent", json.dumps(self.spec)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        line = _readline(self.proc, 60)
        if not line:
            err = self._kill()
            raise Unavailable(f"agent did not start: {err[-400:]}")
        msg = json.loads(line)
        if not msg.get("ready"):
            self._kill()
            raise Unavailable(f"agent failed: {msg.get('error')}")
        self.pid = msg["pid"]
        self.coverage = msg.get("coverage", [])
        return self

    def attached(self, prefix: str) -> bool:
        return any(c["name"].startswith(prefix) and c["state"] == "attached" for c in self.coverage)

    def stop(self) -> dict[str, Any]:
        if self.proc is None:
            return self.result
        self.proc.send_signal(signal.SIGTERM)
        line = _readline(self.proc, 60)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self._kill()
        self.proc = None
        self.result = json.loads(line) if line else {"error": "agent gave no summary"}
        return self.result

    def _kill(self) -> str:
        if self.proc is None:
            return ""
        if self.proc.poll() is None:
            self.proc.kill()
        try:
            _, err = self.proc.communicate(timeout=10)
        except Exception:
            err = b""
        self.proc = None
        return (err or b"").decode(errors="replace")

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.stop()


_SYSCALL_TPS = ("sys_enter", "sys_exit")


def _perf_list() -> list[dict[str, Any]]:
    exe = shutil.which("bpftool")
    if not exe:
        return []
    try:
        rc = subprocess.run([exe, "perf", "list", "-j"], capture_output=True, text=True, timeout=10)
        return json.loads(rc.stdout or "[]")
    except (subprocess.SubprocessError, ValueError):
        return []


def attached_tracepoints(pid: int) -> set[str]:
    return {str(i.get("tracepoint")) for i in _perf_list() if i.get("pid") == pid}


def foreign_syscall_tracers(own_pids: set[int]) -> list[str]:
    """BPF programs of other processes attached to syscall tracepoints (they tax every
    openat/connect and would contaminate a timing trial). Empty when bpftool is missing."""
    items = _perf_list()
    return sorted({f"pid {i.get('pid')}: {i.get('tracepoint')}" for i in items
                   if i.get("pid") not in own_pids
                   and str(i.get("tracepoint", "")).startswith(_SYSCALL_TPS)})


def network_programs_built() -> bool:
    """True when the BPF object has net_* programs (the network monitor)."""
    from .._libbpf import Object
    from ..kernel import OBJECT_PATH
    obj = Object(str(OBJECT_PATH))
    try:
        return any(p.name.startswith("net_") for p in obj.programs())
    finally:
        obj.close()


# --------------------------------------------------------------------------- competitors

def concrete_watch_paths(home: str = "/root") -> list[str]:
    """The default policy's literal file names made concrete (bpftrace and auditd cannot match
    `**/name` anywhere in the tree; they get the files a CI job's home would hold)."""
    from ..config import DEFAULT_WATCH_READ
    out = []
    for pat in DEFAULT_WATCH_READ:
        rest = pat.removeprefix("**/")
        if any(c in rest for c in "*?["):
            continue
        if rest.startswith("/"):
            out.append(rest)
        else:
            out.append(f"{home}/{rest}")
            if rest.startswith("id_"):
                out.append(f"{home}/.ssh/{rest}")
    return sorted(set(out))


def bpftrace_script(paths: list[str], style: str = "map") -> str:
    """The equivalent bpftrace match on sys_enter_openat: read the path with str(), then either
    look it up in a map filled in BEGIN ("map", one hash lookup) or compare it with every path
    ("compare", an || chain of == tests)."""
    head = "tracepoint:syscalls:sys_enter_openat\n{\n  $f = str(args->filename);\n"
    report = '    printf("%d %s %s\\n", pid, comm, str(args->filename));\n'
    if style == "compare":
        cond = " ||\n      ".join(f'$f == "{p}"' for p in paths)
        return head + f"  if ({cond}) {{\n{report}  }}\n}}\n"
    begin = "BEGIN\n{\n" + "".join(f'  @watch["{p}"] = 1;\n' for p in paths) + "}\n"
    return (begin + head + f"  if (@watch[$f] == 1) {{\n{report}  }}\n}}\n"
            + "END\n{\n  clear(@watch);\n}\n")


class Bpftrace:
    def __init__(self, paths: list[str], tmpdir: Path, style: str = "map") -> None:
        self.paths = paths
        self.style = style
        self.script = tmpdir / f"bench-{style}.bt"
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> Bpftrace:
        exe = shutil.which("bpftrace")
        if not exe:
            raise Unavailable("bpftrace not installed (apt-get install -y bpftrace)")
        self.script.write_text(bpftrace_script(self.paths, self.style))
        self.proc = subprocess.Popen([exe, str(self.script)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, preexec_fn=_on_cpu(AGENT_CPU))
        # "Attaching 1 probe..." is printed before the verifier has run; the probe is live only
        # once bpftool shows bpftrace's program on the tracepoint.
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and self.proc.poll() is None:
            if attached_tracepoints(self.proc.pid) & {"sys_enter_openat"}:
                time.sleep(0.2)
                return self
            time.sleep(0.2)
        self.proc.kill()
        _, err = self.proc.communicate(timeout=10)
        self.proc = None
        errs = [l for l in err.decode(errors="replace").splitlines()
                if l.startswith("ERROR") and "RLIMIT_MEMLOCK" not in l]
        msg = " ".join(errs)[-200:] or "timeout"
        if self.style == "compare" and "Error loading program" in msg:
            msg += (" (the kernel verifier refuses it: with -v bpftrace 0.17 shows 'BPF program is"
                    " too large. Processed 1000001 insn' for this chain of string compares)")
        raise Unavailable("bpftrace did not attach: " + msg)

    def __exit__(self, *exc: object) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate()
        self.proc = None


def _auditctl(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["auditctl", *args], capture_output=True, text=True, timeout=30)


class Auditd:
    """auditd with `-w PATH -p r` watches; restores the audit state it found afterwards."""

    def __init__(self, paths: list[str]) -> None:
        self.paths = paths
        self.watched: list[str] = []
        self.started_pid = 0
        self.was_enabled: str | None = None

    def _status(self) -> dict[str, str]:
        rc = _auditctl("-s")
        if rc.returncode != 0:
            raise Unavailable(f"auditctl -s failed: {(rc.stderr or rc.stdout).strip()[-200:]}")
        return dict(line.split(" ", 1) for line in rc.stdout.splitlines() if " " in line)

    def __enter__(self) -> Auditd:
        if not shutil.which("auditctl") or not shutil.which("auditd"):
            raise Unavailable("auditd not installed (apt-get install -y auditd)")
        if _auditctl("-l").stdout.strip() not in ("No rules", ""):
            raise Unavailable("audit rules already loaded on this host: not touching them")
        st = self._status()
        self.was_enabled = st.get("enabled", "0").split()[0]
        if st.get("pid", "0").split()[0] == "0":
            proc = subprocess.Popen([shutil.which("auditd") or "auditd", "-f", "-n"], stdout=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE, preexec_fn=_on_cpu(AGENT_CPU))
            self.started_pid = proc.pid
            self._proc = proc
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and self._status().get("pid", "0").split()[0] == "0":
                if proc.poll() is not None:
                    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
                    self.started_pid = 0
                    raise Unavailable(f"auditd exited at start: {err.strip()[-200:]}")
                time.sleep(0.1)
        errors = []
        for p in self.paths:
            if not Path(p).parent.is_dir():
                continue
            rc = _auditctl("-w", p, "-p", "r", "-k", "bee-bench")
            if rc.returncode == 0:
                self.watched.append(p)
            else:
                errors.append(rc.stderr.strip())
        if not self.watched:
            self.__exit__()
            raise Unavailable(f"no audit watch could be added: {errors[:1]}")
        _auditctl("-e", "1")
        time.sleep(0.3)
        return self

    def __exit__(self, *exc: object) -> None:
        _auditctl("-D")
        if self.was_enabled is not None:
            _auditctl("-e", self.was_enabled)
        if self.started_pid:
            os.kill(self.started_pid, signal.SIGTERM)
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.started_pid, signal.SIGKILL)
                self._proc.wait()
            self.started_pid = 0


def _all_cpus() -> None:  # preexec_fn: undo the driver's pin (a CI job and its agent are not pinned)
    os.sched_setaffinity(0, range(os.cpu_count() or 1))


class CliAgent:
    """`bee-trace run --format jsonl --output FILE --ready-file R`, the command users run, unpinned.
    `startup_s` is the time from launching it to the ready file (probes attached); `stop()`
    interrupts it and returns the output's records (the last is the summary)."""

    def __init__(self, tmpdir: Path, probe_type: str = "all", tag: str = "run") -> None:
        self.out = tmpdir / f"{tag}.jsonl"
        self.ready = tmpdir / f"{tag}.ready"
        self.probe_type = probe_type
        self.proc: subprocess.Popen | None = None
        self.startup_s = 0.0

    def __enter__(self) -> CliAgent:
        self.ready.unlink(missing_ok=True)
        root = Path(__file__).resolve().parents[2]
        env = {**os.environ, "PYTHONPATH": str(root) + os.pathsep + os.environ.get("PYTHONPATH", "")}
        t0 = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bee_trace.cli", "run", "--probe-type", self.probe_type,
             "--format", "jsonl", "--output", str(self.out), "--ready-file", str(self.ready)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, preexec_fn=_all_cpus)
        deadline = t0 + 60
        while not self.ready.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.proc.kill()
                _, err = self.proc.communicate(timeout=10)
                self.proc = None
                raise Unavailable(f"bee-trace run did not get ready: {err.decode(errors='replace')[-300:]}")
            time.sleep(0.002)
        self.startup_s = time.monotonic() - t0
        return self

    @property
    def pid(self) -> int:
        return self.proc.pid if self.proc else 0

    def stop(self) -> list[dict[str, Any]]:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.communicate(timeout=120)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.communicate()
            self.proc = None
        out = []
        for line in self.out.read_text(errors="replace").splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
        return out

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.stop()


def run_all_cpus(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> None:
    """A job step on every CPU, output discarded; raises on failure."""
    subprocess.run(cmd, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE, preexec_fn=_all_cpus)
