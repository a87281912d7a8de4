"""Which BPF object this install runs (path, sha256, how it was built) and against which kernel
BTF; `python -m bee_trace.buildinfo OBJECT` writes the build record next to a freshly built object."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BUILD_INFO_NAME = "build-info.json"
BTF_PATH = Path("/sys/kernel/btf/vmlinux")


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def object_info(obj: Path) -> dict[str, Any]:
    """path, sha256 and the build record (None when the object was not built by `make bpf`)."""
    info: dict[str, Any] = {"path": str(obj), "exists": obj.exists()}
    if not obj.exists():
        return info
    info["sha256"] = sha256_file(obj)
    info["size"] = obj.stat().st_size
    build = None
    try:
        build = json.loads((obj.parent / BUILD_INFO_NAME).read_text())
    except (OSError, ValueError):
        pass
    if isinstance(build, dict):
        # A record written for another object (rebuilt without it) says nothing about this one.
        info["build"] = build if build.get("sha256") == info["sha256"] else None
    else:
        info["build"] = None
    return info


def kernel_btf_info(path: Path = BTF_PATH) -> dict[str, Any]:
    info: dict[str, Any] = {"path": str(path), "kernel": platform.release(), "exists": path.exists()}
    if path.exists():
        data = path.read_bytes()
        info["size"] = len(data)
        info["sha256"] = hashlib.sha256(data).hexdigest()
    return info


def describe_build(build: dict[str, Any] | None) -> str:
    if not build:
        return "no build record (object not built by `make bpf`)"
    parts = [f"built {build.get('built_at', '?')}", f"target {build.get('target_arch', '?')}"]
    if build.get("compiler"):
        parts.append(build["compiler"])
    if build.get("git_commit"):
        parts.append(f"commit {build['git_commit'][:12]}{'+dirty' if build.get('git_dirty') else ''}")
    return ", ".join(parts)


def _first_line(cmd: list[str]) -> str | None:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    lines = (out.stdout or out.stderr).strip().splitlines()
    return lines[0].strip() if out.returncode == 0 and lines else None


def build_record(obj: Path, clang: str, sources: list[Path]) -> dict[str, Any]:
    src = hashlib.sha256()
    for p in sorted(sources):
        src.update(p.name.encode() + b"\0" + p.read_bytes())
    commit = _first_line(["git", "rev-parse", "HEAD"])
    dirty = None
    if commit:
        st = subprocess.run(["git", "status", "--porcelain", "--", "bpf"], capture_output=True, text=True)
        dirty = bool(st.stdout.strip()) if st.returncode == 0 else None
    return {
        "object": obj.name,
        "sha256": sha256_file(obj),
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "target_arch": "x86",
        "compiler": _first_line([clang, "--version"]),
        "bpftool": _first_line(["bpftool", "version"]),
        "sources_sha256": src.hexdigest(),
        "git_commit": commit,
        "git_dirty": dirty,
        "built_on_kernel": platform.release(),
    }


def main(argv: list[str]) -> int:
    if len(argv) < 1:
        print("usage: python -m bee_trace.buildinfo OBJECT [CLANG] [SOURCES...]", file=sys.stderr)
        return 2
    obj = Path(argv[0])
    clang = argv[1] if len(argv) > 1 else "clang"
    sources = [Path(s) for s in argv[2:]]
    record = build_record(obj, clang, sources)
    tmp = obj.parent / (BUILD_INFO_NAME + ".tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    os.replace(tmp, obj.parent / BUILD_INFO_NAME)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
