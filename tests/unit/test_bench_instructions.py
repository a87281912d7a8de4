"""The program the instructions row counts: every distinct synthetic event goes through the
pipeline and out as one JSON line; counts only, never instructions or speed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bee_trace.bench import instructions, parse_args
from bee_trace.bench.render import render
from bee_trace.bench.runner import Unavailable, parse_kv

N = 512


def _run(capsys: pytest.CaptureFixture[str], tmp_path: Path, *argv: str) -> tuple[dict, list[dict]]:
    out = tmp_path / "out.jsonl"
    with out.open("w", encoding="utf-8") as f:
        assert instructions.main(list(argv), out=f) == 0
    lines = out.read_text(encoding="utf-8").splitlines()
    return parse_kv(capsys.readouterr().out), [json.loads(line) for line in lines]


def test_every_distinct_file_open_is_output_once(capsys, tmp_path):
    counts, events = _run(capsys, tmp_path, "files", str(N))
    assert counts == {"events": N, "output": N, "rejected": 0}
    assert len(events) == N
    assert len({e["path"] for e in events}) == N and len({e["ino"] for e in events}) == N
    assert {(e["kind"], e["pattern"], e["lane"]) for e in events} == {("file", "**/*.pem", "critical")}
    assert events[-1]["path"] == instructions.WATCHED % (N - 1)


def test_every_distinct_connect_is_output_once(capsys, tmp_path):
    counts, events = _run(capsys, tmp_path, "connects", str(N))
    assert counts == {"events": N, "output": N, "rejected": 0}
    assert len(events) == N and len({e["daddr"] for e in events}) == N
    assert {(e["kind"], e["rule"], e["dport"], e["hook"]) for e in events} == {
        ("network", "network.loopback", 9, "connect")}
    assert events[255]["daddr"] == "127.0.1.0" and events[-1]["daddr"] == "127.0.2.0"


def test_records_built_beyond_n_are_not_handled(capsys, tmp_path):
    counts, events = _run(capsys, tmp_path, "connects", str(N), str(3 * N))
    assert counts == {"events": N, "output": N, "rejected": 0} and len(events) == N


def test_push_counts_every_event_as_output(tmp_path):
    with (tmp_path / "out.jsonl").open("w", encoding="utf-8") as f:
        pl = instructions.push("files", N, f)
    assert pl.stats.output == pl.stats.received == N and not pl.stats.rejected


def test_without_valgrind_the_row_is_unavailable_with_the_reason():
    with pytest.raises(Unavailable, match="no-such-valgrind not installed"):
        instructions.per_event("files", valgrind="no-such-valgrind")


def test_render_instructions_row():
    run = [{"events": 4096, "output": 4096, "rejected": 0}, {"events": 8192, "output": 8190, "rejected": 2}]
    results = {"meta": {"host": "h", "kernel": "k", "cpus": 2, "quick": False, "seconds": 1.0},
               "rows": {"instructions": {"sizes": [4096, 8192],
                                         "files": {"runs": run[:1] * 2, "per_event": 218124.2},
                                         "connects": {"runs": run, "per_event": 9000.0}}}}
    cells = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]]
             for line in render(results).splitlines() if line.startswith("| distinct")}
    assert cells == {
        "distinct watched-file opens (critical lane)":
            ["218,124", "4,096, 8,192", "every event output, none rejected"],
        "distinct loopback connects (bulk lane)":
            ["9000", "4,096, 8,192", "4096: output 4096, rejected 0; 8192: output 8190, rejected 2"]}
    assert "instructions" in parse_args([]).rows
