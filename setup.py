"""Wheel build: the wheel carries the prebuilt CO-RE object (bee_trace/bpf/bee_trace.bpf.o), so
installing it needs no compiler. The object is (re)built with `make bpf` when the toolchain is
here; without it a prebuilt object is used, and with neither the build fails saying so."""

import os
import platform
import shutil
import subprocess
from pathlib import Path

from setuptools import setup
from setuptools.command.bdist_wheel import bdist_wheel
from setuptools.command.build_py import build_py
from setuptools.errors import SetupError

ROOT = Path(__file__).resolve().parent
OBJECT = ROOT / "bee_trace" / "bpf" / "bee_trace.bpf.o"


def ensure_object() -> None:
    toolchain = (ROOT / "Makefile").exists() and shutil.which("make") and shutil.which(
        os.environ.get("CLANG", "clang-19")) and shutil.which("bpftool")
    if toolchain:
        # make rebuilds only what is stale, so a prebuilt up-to-date object is kept.
        rc = subprocess.run(["make", "-C", str(ROOT), "bpf"])
        if rc.returncode != 0:
            raise SetupError("`make bpf` failed: the wheel needs bee_trace/bpf/bee_trace.bpf.o")
    elif not OBJECT.exists():
        raise SetupError(
            f"{OBJECT.relative_to(ROOT)} is missing and cannot be built here: `make bpf` needs "
            "clang-19, bpftool and libbpf-dev (on Debian/Ubuntu: `make deps bpf`); or put a "
            "prebuilt object there")


class BuildPy(build_py):
    def run(self) -> None:
        if not getattr(self, "editable_mode", False):  # `pip install -e .` reads the tree itself
            ensure_object()
        super().run()


class BdistWheel(bdist_wheel):
    """Pure Python, but the object is BPF bytecode built for one target architecture (x86 here,
    and the ring reader's memory ordering assumes x86-64): tag the wheel for that platform."""

    def finalize_options(self) -> None:
        super().finalize_options()
        self.root_is_pure = False

    def get_tag(self) -> tuple[str, str, str]:
        machine = platform.machine()
        if machine != "x86_64":
            raise SetupError(f"the BPF object is built for x86_64, not {machine}")
        return "py3", "none", "manylinux2014_x86_64"


setup(cmdclass={"build_py": BuildPy, "bdist_wheel": BdistWheel})
