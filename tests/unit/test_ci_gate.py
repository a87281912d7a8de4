"""The CI gate of tests/kernel/conftest.py: without root the kernel tests skip with the reason
shown, and under CI=true (or BEE_TRACE_REQUIRE_KERNEL=1) that skip is a failure. Runs pytest on
one kernel test file as a non-root user (a user namespace without a mapping: euid 65534)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _pytest_as_nobody(extra_env: dict[str, str]) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "BEE_TRACE_REQUIRE_KERNEL")}
    env.update(extra_env)
    prefix = [] if os.geteuid() != 0 else ["unshare", "-U"]
    return subprocess.run([*prefix, sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "tests/kernel/test_process.py"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)


@pytest.fixture(autouse=True)
def _needs_unshare() -> None:
    if os.geteuid() == 0 and not shutil.which("unshare"):
        pytest.skip("unshare (util-linux) is needed to run pytest as a non-root user")


def test_without_root_kernel_tests_skip_with_the_reason() -> None:
    res = _pytest_as_nobody({})
    assert res.returncode == 0, res.stdout + res.stderr
    assert "kernel tests need root" in res.stdout                 # -rs shows why
    assert res.stdout.strip().splitlines()[-1].startswith("2 skipped")


@pytest.mark.parametrize("env", [{"CI": "true"}, {"BEE_TRACE_REQUIRE_KERNEL": "1"}])
def test_in_ci_a_skipped_kernel_test_fails(env: dict[str, str]) -> None:
    res = _pytest_as_nobody(env)
    assert res.returncode == 1, res.stdout + res.stderr
    assert res.stdout.count("kernel test skipped in CI (Skipped: kernel tests need root)") == 2
    assert "skipped" not in res.stdout.strip().splitlines()[-1]
