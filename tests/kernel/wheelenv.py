"""Test helper: the wheel built from this tree, a fresh venv that installed it, and a machine
view without the BPF toolchain (clang, llvm, bpftool, libbpf-dev headers, vmlinux.h hidden)."""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BASE_PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
# What a machine without the toolchain lacks: hidden by empty tmpfs mounts in a private mount
# namespace of the child only (the host keeps its packages; others use them).
HIDDEN_DIRS = ["/usr/include", "/usr/lib/llvm-19", str(REPO / "build")]
_TOOL_PREFIXES = ("clang", "llvm", "bpftool", "ld.lld", "lld", "gcc", "cc", "c++", "g++", "cpp")
_cache: dict[str, Path] = {}


def _tmpdir(name: str) -> Path:
    d = Path(tempfile.mkdtemp(prefix=f"bee-trace-{name}-"))
    atexit.register(shutil.rmtree, d, True)
    return d


def built_wheel() -> Path:
    """`pip wheel .` of this tree, once per test session."""
    if "wheel" not in _cache:
        out = _tmpdir("wheel")
        subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out),
                        str(REPO)], check=True, capture_output=True, timeout=300)
        (whl,) = out.glob("bee_trace-*.whl")
        _cache["wheel"] = whl
    return _cache["wheel"]


def wheel_venv() -> Path:
    """A fresh venv (no system site-packages) with only the wheel and its dependencies."""
    if "venv" not in _cache:
        venv = _tmpdir("venv") / "venv"
        subprocess.run([BASE_PYTHON, "-m", "venv", str(venv)], check=True, timeout=120)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", str(built_wheel())],
                       check=True, capture_output=True, timeout=600)
        _cache["venv"] = venv
    return _cache["venv"]


def toolchain_free_path(tmp: Path, venv: Path | None = None) -> str:
    """A PATH of the system's binaries minus compilers and bpftool."""
    bindir = tmp / "bin-no-toolchain"
    bindir.mkdir(exist_ok=True)
    for d in ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"):
        if not os.path.isdir(d):
            continue
        for name in os.listdir(d):
            if name.startswith(_TOOL_PREFIXES) or (bindir / name).exists():
                continue
            (bindir / name).symlink_to(os.path.join(d, name))
    return (f"{venv / 'bin'}:" if venv else "") + str(bindir)


def toolchain_free_env(tmp: Path, venv: Path | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env["PATH"] = toolchain_free_path(tmp, venv)
    return env


def without_toolchain(cmd: list[str]) -> list[str]:
    """cmd run in a private mount namespace where the toolchain's files are empty directories."""
    mounts = " && ".join(f"mount -t tmpfs none {d}" for d in HIDDEN_DIRS if os.path.isdir(d))
    return ["unshare", "--mount", "--propagation", "private", "/bin/sh", "-c",
            f'{mounts} && exec "$@"', "sh", *cmd]
