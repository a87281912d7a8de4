import re
from pathlib import Path

import pytest

from bee_trace.classify import classify
from bee_trace.config import Config
from bee_trace.github import (
    EXIT_FINDINGS,
    annotation,
    annotations,
    fail_on_exit_code,
    in_github_actions,
    write_outputs,
    write_step_summary,
)
from bee_trace.report import Report

CFG = Config()
HOSTILE = "/tmp/a|b<script>\n::set-output name=x::pwned\r\x1b[31m%0A,x:y/.ssh/id_rsa"


def ev(path: str, comm: str = "cat", **kw) -> dict:
    e = {"ts": "2025-01-01T00:00:00+00:00", "kind": "file", "pid": 7, "comm": comm,
         "exe": "/bin/cat", "ancestry": ["bash"], "path": path, "access": "read"}
    e.update(kw)
    classify(e, CFG)
    return e


def gha_env(tmp_path: Path) -> dict:
    return {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"),
            "GITHUB_OUTPUT": str(tmp_path / "output")}


def _decode_gh(s: str) -> str:
    return s.replace("%0D", "\r").replace("%0A", "\n").replace("%3A", ":").replace("%2C", ",") \
        .replace("%25", "%")


def test_annotation_critical_is_error_and_escaped() -> None:
    a = annotation(ev(HOSTILE, comm="x\x1b[0m,y:z"))
    assert a is not None
    assert a.startswith("::error title=")
    assert "\n" not in a and "\r" not in a and "\x1b" not in a
    m = re.fullmatch(r"::error title=([^:]*)::(.*)", a)
    assert m, a  # exactly one '::' separator: the title has no raw ':' or ','
    title, msg = m.groups()
    assert "," not in title
    assert _decode_gh(title) == "bee-trace critical: file.ssh_key.read"
    decoded = _decode_gh(msg)
    assert "\\x1b[31m" in decoded and "\\n::set-output" in decoded
    assert "%0A,x:y" in decoded  # the literal text "%0A" survived as text
    assert "bash → x\\x1b[0m,y:z" in decoded


def test_annotation_high_is_warning_and_low_none() -> None:
    a = annotation(ev("/srv/.env", count=3))
    assert a is not None and a.startswith("::warning title=")
    assert "(x3)" in a
    assert annotation(ev("/x/a.crt")) is None  # medium
    assert annotation(ev("/x/notes.txt")) is None  # low


def test_annotation_network_and_memory() -> None:
    n = {"kind": "network", "severity": "high", "rule": "network.blocked_ip", "comm": "curl",
         "pid": 1, "protocol": "tcp", "daddr": "1.2.3.4", "dport": 443, "action": "blocked",
         "domain": "evil.com"}
    a = annotation(n)
    assert a and "evil.com%3A443" not in a and "evil.com:443" in a  # ':' is fine in the message
    m = {"kind": "memory", "severity": "critical", "rule": "memory.protected.proc_mem",
         "comm": "python3", "pid": 2, "technique": "proc_mem", "target_pid": 9,
         "target_comm": "Runner.Worker", "secret_env_names": ["GITHUB_TOKEN"]}
    a = annotation(m)
    assert a and "Runner.Worker[9]" in a and "GITHUB_TOKEN" in a


def test_annotations_limit() -> None:
    evs = [ev("/srv/.env") for _ in range(12)] + [ev("/h/.ssh/id_rsa")]
    out = annotations(evs, limit=5)
    assert len(out) == 6
    assert out[0].startswith("::error")  # most severe first
    assert out[-1].startswith("::notice") and "8 more" in out[-1]


def test_not_in_actions_is_noop(tmp_path: Path) -> None:
    env = gha_env(tmp_path)
    env["GITHUB_ACTIONS"] = "false"
    assert not in_github_actions(env)
    assert write_step_summary("# x", env) is False
    assert write_outputs("r.md", 1, 0, env) is False
    assert not (tmp_path / "summary.md").exists()
    assert not (tmp_path / "output").exists()


def test_step_summary_appends(tmp_path: Path) -> None:
    env = gha_env(tmp_path)
    (tmp_path / "summary.md").write_text("before\n")
    assert write_step_summary("## report", env)
    assert write_step_summary("more\n", env)
    assert (tmp_path / "summary.md").read_text() == "before\n## report\nmore\n"


def test_step_summary_truncated(tmp_path: Path) -> None:
    env = gha_env(tmp_path)
    write_step_summary("| row |\n" * 300_000, env)
    data = (tmp_path / "summary.md").read_bytes()
    assert len(data) < 1024 * 1024
    assert b"truncated" in data


def _parse_outputs(text: str) -> dict:
    out, lines, i = {}, text.split("\n"), 0
    while i < len(lines):
        line = lines[i]
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            key, delim = line.split("<<", 1)
            j = lines.index(delim, i + 1)
            out[key] = "\n".join(lines[i + 1:j])
            i = j + 1
        elif "=" in line:
            k, v = line.split("=", 1)
            out[k] = v
            i += 1
        else:
            i += 1
    return out


def test_write_outputs(tmp_path: Path) -> None:
    env = gha_env(tmp_path)
    assert write_outputs("/tmp/r.md", 16, 7, env)
    assert write_outputs("/tmp/we\nird=name.md", 1, 0, env)
    text = (tmp_path / "output").read_text()
    assert text.startswith("report-path=/tmp/r.md\nevents-detected=16\nhigh-severity-events=7\n")
    parsed = _parse_outputs(text)
    assert parsed["report-path"] == "/tmp/we\nird=name.md"
    assert parsed["events-detected"] == "1"
    assert "ghadelimiter_" in text


def test_fail_on_exit_code() -> None:
    r = Report(CFG, {})
    r.add(ev("/srv/.env"))  # high
    assert fail_on_exit_code(r, "critical") == 0
    assert fail_on_exit_code(r, "high") == EXIT_FINDINGS
    assert fail_on_exit_code(r, "LOW") == EXIT_FINDINGS
    assert fail_on_exit_code(r, None) == 0
    assert fail_on_exit_code(r, "none") == 0
    r.add(ev("/h/.ssh/id_rsa"))
    assert fail_on_exit_code(r, "critical") == EXIT_FINDINGS
    with pytest.raises(ValueError):
        fail_on_exit_code(r, "severe")


def test_summary_markdown_from_report_with_hostile_name(tmp_path: Path) -> None:
    env = gha_env(tmp_path)
    r = Report(CFG, {})
    r.add(ev(HOSTILE))
    write_step_summary(r.to_markdown(), env)
    text = (tmp_path / "summary.md").read_text()
    assert "<script>" not in text and "\x1b" not in text
    assert not any(line.startswith("::") for line in text.splitlines())
