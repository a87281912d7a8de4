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
