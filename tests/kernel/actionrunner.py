"""Test helper: runs the composite action's steps the way the GitHub runner does (`if:` on the
inputs, `${{ inputs.* }}` in env, `bash --noprofile --norc -eo pipefail` on the step's script,
a fresh $GITHUB_OUTPUT file per step) with the runner's environment variables set."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from wheelenv import REPO, built_wheel

_EXPR = re.compile(r"\$\{\{\s*inputs\.([\w-]+)\s*\}\}")
_IF = re.compile(r"^inputs\.([\w-]+)\s*==\s*'([^']*)'$")


def release_checkout(root: Path) -> Path:
    """What `uses: OWNER/bee-trace@TAG` checks out: the action and its dist/ wheel."""
    action = root / "action-checkout"
    action.mkdir()
    shutil.copy(REPO / "action.yml", action / "action.yml")
    shutil.copy(REPO / "pyproject.toml", action / "pyproject.toml")
    shutil.copytree(REPO / "action", action / "action")
    (action / "dist").mkdir()
    shutil.copy(built_wheel(), action / "dist")
    return action


@dataclass
class StepResult:
    returncode: int
    stdout: str
    outputs: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0


@dataclass
class Runner:
    root: Path
    action_path: Path
    extra_env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.temp = self.root / "runner-temp"
        self.workspace = self.root / "workspace"
        self.temp.mkdir(exist_ok=True)
        self.workspace.mkdir(exist_ok=True)
        self.summary = self.root / "step-summary.md"
        self.summary.touch()

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
        env["PATH"] = ":".join(p for p in env.get("PATH", "").split(":") if ".venv" not in p)
        env.update({
            "GITHUB_ACTIONS": "true", "CI": "true", "RUNNER_TEMP": str(self.temp),
            "GITHUB_WORKSPACE": str(self.workspace), "GITHUB_ACTION_PATH": str(self.action_path),
            "GITHUB_STEP_SUMMARY": str(self.summary),
        })
        env.update(self.extra_env)
        return env

    def shell(self, script: str) -> StepResult:
        """A workflow's own `run:` step (shell: bash)."""
        return self._bash(script, {})

    def uses(self, **inputs: str) -> StepResult:
        """`uses: ./` with `with: inputs`: every step of the composite action whose `if:` holds."""
        spec = yaml.safe_load((self.action_path / "action.yml").read_text())
        values = {k: str(v.get("default", "")) for k, v in spec["inputs"].items()}
        values.update(inputs)
        result = StepResult(0, "")
        for step in spec["runs"]["steps"]:
            cond = step.get("if")
            if cond:
                m = _IF.match(cond.strip())
                assert m, f"unsupported if: {cond}"
                if values.get(m.group(1)) != m.group(2):
                    continue
            assert step.get("shell") == "bash"
            env = {k: _EXPR.sub(lambda m: values.get(m.group(1), ""), str(v))
                   for k, v in (step.get("env") or {}).items()}
            r = self._bash(_EXPR.sub(lambda m: values.get(m.group(1), ""), step["run"]), env)
            result = StepResult(r.returncode, result.stdout + r.stdout, {**result.outputs, **r.outputs},
                                result.seconds + r.seconds)
            if r.returncode != 0:
                break
        return result

    def _bash(self, script: str, step_env: dict[str, str]) -> StepResult:
        f = self.temp / f"step-{time.monotonic_ns()}.sh"
        f.write_text(script + "\n")
        out_file = self.temp / f"output-{time.monotonic_ns()}"
        out_file.touch()
        env = {**self.env(), **step_env, "GITHUB_OUTPUT": str(out_file)}
        t0 = time.monotonic()
        p = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", str(f)], env=env,
                           cwd=self.workspace, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, timeout=600, stdin=subprocess.DEVNULL)
        return StepResult(p.returncode, p.stdout, _parse_outputs(out_file.read_text()),
                          time.monotonic() - t0)


def _parse_outputs(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    lines = iter(text.splitlines())
    for line in lines:
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            key, delim = line.split("<<", 1)
            value = []
            for v in lines:
                if v == delim:
                    break
                value.append(v)
            out[key] = "\n".join(value)
        elif "=" in line:
            k, v = line.split("=", 1)
            out[k] = v
    return out
