"""The wheel carries the prebuilt CO-RE object: a fresh venv that installed it detects a key read
on a machine view without clang, llvm, bpftool, libbpf-dev headers or vmlinux.h."""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import time
import zipfile

from wheelenv import REPO, built_wheel, toolchain_free_env, wheel_venv, without_toolchain


def _wait(pred, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    return False


def test_wheel_carries_object_and_build_info():
    whl = built_wheel()
    assert whl.name.endswith("-py3-none-manylinux2014_x86_64.whl")
    with zipfile.ZipFile(whl) as z:
        names = z.namelist()
        obj = next(n for n in names if n.endswith("bee_trace/bpf/bee_trace.bpf.o"))
        info = json.loads(z.read(next(n for n in names if n.endswith("bee_trace/bpf/build-info.json"))))
        assert info["sha256"] == hashlib.sha256(z.read(obj)).hexdigest()
    # Nothing a compiler would need travels in the wheel (bench's load generator aside).
    assert not [n for n in names if n.endswith((".h", "vmlinux.h"))]


def test_installed_wheel_detects_id_rsa_without_toolchain(tmp_path):
    venv = wheel_venv()
    bt = str(venv / "bin" / "bee-trace")
    env = toolchain_free_env(tmp_path, venv)
    probe = subprocess.run(without_toolchain(
        ["/bin/sh", "-c", "for t in clang clang-19 llc-19 bpftool cc; do command -v $t; done; "
                          "ls -A /usr/include /usr/lib/llvm-19 | grep -v : ; true"]),
        env=env, capture_output=True, text=True, timeout=30)
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.strip() == "", f"toolchain still visible: {probe.stdout}"

    check = subprocess.run(without_toolchain([bt, "check"]), env=env, cwd=tmp_path,
                           capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    installed = next(venv.glob("lib/python3*/site-packages/bee_trace/bpf/bee_trace.bpf.o"))
    digest = hashlib.sha256(installed.read_bytes()).hexdigest()
    assert "BPF object" in check.stdout and str(installed) in check.stdout
    assert digest in check.stdout and "object build" in check.stdout and "built " in check.stdout
    assert "kernel BTF" in check.stdout and "/sys/kernel/btf/vmlinux" in check.stdout

    key = tmp_path / "home" / ".ssh" / "id_rsa"
    key.parent.mkdir(parents=True)
    key.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nnot-a-real-key\n-----END OPENSSH PRIVATE KEY-----\n")
    out, ready = tmp_path / "events.jsonl", tmp_path / "ready"
    mon = subprocess.Popen(without_toolchain(
        [bt, "run", "--probe-type", "file_monitor", "--format", "jsonl", "--output", str(out),
         "--ready-file", str(ready)]), env=env, cwd=tmp_path,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        assert _wait(ready.exists, 60), "monitor did not become ready"
        reader = subprocess.run(["cat", str(key)], stdout=subprocess.DEVNULL, timeout=10)
        assert reader.returncode == 0
        assert _wait(lambda: out.exists() and str(key) in out.read_text(errors="replace"), 10)
    finally:
        mon.send_signal(signal.SIGINT)
        _, err = mon.communicate(timeout=60)
    assert mon.returncode == 0, err
    events = [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
    hits = [e for e in events if e.get("kind") == "file" and e.get("path") == str(key)]
    assert len(hits) == 1, hits
    ev = hits[0]
    assert ev["access"] == "read" and ev["comm"] == "cat" and ev["severity"] in ("high", "critical")
    assert ev["exe"].endswith("/cat")
    assert events[-1]["kind"] == "summary" and events[-1]["verdict"] == "complete"
    # The secret's content never reaches the stream.
    assert "not-a-real-key" not in out.read_text()
    assert str(REPO) not in ev.get("exe", "")
