"""CLI behaviour that needs no kernel: errors are one clear line with exit 2."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bee_trace import cli


def test_not_root_is_one_line_exit_2(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert cli.main(["run", "--duration", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "root" in err[0]


def test_original_flags_without_subcommand_mean_run(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert cli.main(["--probe-type", "file_monitor", "--duration", "1"]) == 2
    assert "root" in capsys.readouterr().err


def test_broken_config_is_one_line_with_file_and_line(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "security.yml"
    bad.write_text("files:\n  watch_read: [unclosed\n")
    assert cli.main(["config", "validate", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(bad) in err[0]


def test_wrong_type_in_config_names_key(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "security.yml"
    bad.write_text("performance:\n  sampling_rate: fast\n")
    assert cli.main(["config", "validate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "sampling_rate" in err and ":2:" in err


def test_generate_round_trips_through_validate(tmp_path: Path, capsys) -> None:
    out = tmp_path / "gen.yml"
    assert cli.main(["config", "generate", "-o", str(out)]) == 0
    assert cli.main(["config", "validate", str(out)]) == 0


def test_min_kernel_version_is_enforced() -> None:
    from bee_trace.kernel import SetupError, check_min_kernel
    check_min_kernel("4.18", "6.18.44-fc")
    with pytest.raises(SetupError, match="older than"):
        check_min_kernel("7.1", "6.18.44-fc")


def test_unsupported_original_switches_are_refused(tmp_path: Path, capsys) -> None:
    for text in ("reporting:\n  include_stack_traces: true\n", "advanced:\n  enable_core: false\n",
                 "advanced:\n  experimental:\n    uprobe_monitoring: true\n"):
        bad = tmp_path / "s.yml"
        bad.write_text(text)
        assert cli.main(["config", "validate", str(bad)]) == 2
        assert "must be" in capsys.readouterr().err


def test_report_fail_on_none_and_high(tmp_path: Path) -> None:
    stream = tmp_path / "ev.jsonl"
    stream.write_text('{"ts": "2026-01-01T00:00:00+00:00", "kind": "file", "severity": "critical", '
                      '"rule": "file.ssh_key.read", "pid": 5, "comm": "cat", "path": "/h/.ssh/id_rsa", '
                      '"access": "read"}\n')
    assert cli.main(["report", str(stream), "--format", "json", "-o", str(tmp_path / "r.json"),
                     "--fail-on", "none"]) == 0
    assert cli.main(["report", str(stream), "--format", "json", "-o", str(tmp_path / "r.json"),
                     "--fail-on", "high"]) == 1
