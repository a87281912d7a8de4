import csv
import io
import json
from pathlib import Path

import pytest

from bee_trace.classify import classify
from bee_trace.config import Config, parse_config
from bee_trace.escape import terminal
from bee_trace.report import CSV_COLUMNS, Report, ReportError, load_events, rebuild_report

CFG = Config()
HOSTILE_PATH = "/tmp/x|y<script>alert(1)</script>\n\x1b[31mred/.ssh/id_rsa"
HOSTILE_COMM = "ev|l\x1b[31m<b>"
META = {"start": "2025-03-14T10:00:00+00:00", "start_ns": 1_000_000_000, "host": "runner|1",
        "probe_types": ["file_monitor", "network_monitor"]}


def file_ev(path: str, comm: str = "cat", access: str = "read", **kw) -> dict:
    e = {"ts": "2025-03-14T10:00:01+00:00", "ts_ns": 2_000_000_000, "kind": "file", "pid": 42,
         "tid": 42, "ppid": 1, "uid": 0, "comm": comm, "exe": "/usr/bin/cat", "cmdline": f"cat {path}",
         "ancestry": ["bash", "python3"], "cgroup_id": 1, "path": path, "access": access,
         "truncated": False}
    e.update(kw)
    classify(e, CFG)
    return e


def net_ev(daddr: str, dport: int = 443, domain: str | None = None, **kw) -> dict:
    e = {"ts": "2025-03-14T10:00:02+00:00", "kind": "network", "pid": 50, "tid": 50, "ppid": 1,
         "uid": 0, "comm": "curl", "exe": "/usr/bin/curl", "cmdline": "curl", "ancestry": ["bash"],
         "protocol": "tcp", "family": "ipv4", "daddr": daddr, "dport": dport,
         "action": "allowed", "domain": domain}
    e.update(kw)
    classify(e, CFG)
    return e


def proc_ev(**kw) -> dict:
    e = {"ts": "2025-03-14T10:00:03+00:00", "kind": "process", "pid": 60, "comm": "ls",
         "exe": "/bin/ls", "cmdline": "ls", "ancestry": []}
    e.update(kw)
    classify(e, CFG)
    return e


def mem_ev(**kw) -> dict:
    e = {"ts": "2025-03-14T10:00:04+00:00", "kind": "memory", "pid": 70, "comm": "python3",
         "exe": "/usr/bin/python3", "ancestry": ["bash"], "technique": "proc_mem",
         "target_pid": 900, "target_comm": "Runner.Worker"}
    e.update(kw)
    classify(e, CFG)
    return e


def sample_report(cfg: Config = CFG) -> Report:
    r = Report(cfg, dict(META))
    r.add(file_ev(HOSTILE_PATH, comm=HOSTILE_COMM))
    r.add(file_ev("/srv/.env", count=5))
    r.add(net_ev("140.82.112.3", domain="github.com"))
    r.add(net_ev("140.82.112.3", domain="github.com", count=3))
    r.add(net_ev("127.0.0.1", dport=8080))
    r.add(mem_ev())
    for _ in range(4):
        r.add(proc_ev())
    r.finish({"end": "2025-03-14T10:00:10+00:00", "end_ns": 11_000_000_000},
             {"ring_full": {"bulk": 2, "critical": 0}, "sampled": 7}, "degraded")
    return r


def test_counts_respect_count() -> None:
    r = sample_report()
    assert r.total == 1 + 5 + 1 + 3 + 1 + 1 + 4
    assert r.by_kind == {"file": 6, "network": 5, "process": 4, "memory": 1}
    assert r.by_severity["critical"] == 2  # hostile id_rsa read + Runner.Worker memory
    assert r.by_severity["high"] == 5  # .env x5
    assert r.count_at_least("high") == 7
    assert r.records == 10


def test_destinations_table() -> None:
    d = sample_report().sorted_destinations()
    assert d[0] == {"domain": "github.com", "daddr": "140.82.112.3", "dport": 443,
                    "protocol": "tcp", "action": "allowed", "count": 4}
    assert len(d) == 2


def test_findings_grouped_with_ancestry() -> None:
    f = sample_report().sorted_findings()
    assert [x["severity"] for x in f][:2] == ["critical", "critical"]
    env = next(x for x in f if x["rule"] == "file.credential.read")
    assert env["count"] == 5
    assert env["ancestry"] == ["bash", "python3", "cat"]
    assert all(x["severity"] != "low" for x in f)


def test_cap_keeps_most_severe_and_counts_overflow() -> None:
    cfg = parse_config("reporting:\n  max_events_per_type: 3\n", "x")
    r = Report(cfg, {})
    for i in range(10):
        r.add(file_ev(f"/x/{i}.crt"))  # medium
    r.add(file_ev("/h/.ssh/id_rsa"))  # critical arrives last
    for i in range(5):
        r.add(file_ev(f"/x/late{i}.crt"))
    kept = r.events
    assert len(kept) == 3
    assert any(e["severity"] == "critical" for e in kept)
    assert r.overflow["file"] == 16 - 3
    assert r.total == 16
    # Kept events stay in arrival order.
    assert [e["path"] for e in kept] == ["/x/0.crt", "/x/1.crt", "/h/.ssh/id_rsa"]


def test_json_is_valid_and_complete() -> None:
    r = sample_report()
    raw = b"/tmp/\xff/id_rsa".decode("utf-8", errors="surrogateescape")
    r.add(file_ev(raw))
    text = r.to_json()
    text.encode("utf-8")  # no lone surrogates
    doc = json.loads(text)
    md = doc["metadata"]
    assert md["duration_s"] == 10.0
    assert md["host"] == "runner|1" and md["version"] and "config" in md
    assert md["probe_types"] == ["file_monitor", "network_monitor"]
    assert doc["verdict"] == "degraded"
    assert doc["loss"]["ring_full"]["bulk"] == 2
    assert doc["summary"]["total"] == r.total
    assert doc["summary"]["by_severity"]["critical"] == 3
    paths = [e.get("path") for e in doc["events"]]
    assert HOSTILE_PATH in paths  # JSON keeps the exact (escaped-by-JSON) value
    assert "/tmp/\\xff/id_rsa" in paths


def test_markdown_escapes_hostile_names() -> None:
    md = sample_report().to_markdown()
    assert "<script>" not in md and "&lt;script&gt;" in md
    assert "\x1b" not in md
    assert "\\x1b" in md
    assert "x\\|y" in md
    assert "ev\\|l" in md
    # The hostile newline did not split a table row: every table line has the same
    # number of unescaped pipes as its header.
    lines = md.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("| Rule |"):
            cols = _pipes(line)
            j = i + 1
            while j < len(lines) and lines[j].startswith("|"):
                assert _pipes(lines[j]) == cols, lines[j]
                j += 1
    # Findings as a process tree: bash → python3 → cat, each level one list indent deeper.
    assert "\n- bash\n  - python3\n" in md and "\n    - 🟠 **cat (pid 42)**" in md
    assert "### Coverage and loss" in md and "ring\\_full.bulk" in md
    assert "### Network destinations" in md and "github.com" in md


def _pipes(line: str) -> int:
    return sum(1 for i, c in enumerate(line) if c == "|" and (i == 0 or line[i - 1] != "\\"))


def test_csv_round_trips() -> None:
    r = sample_report()
    text = r.to_csv()
    assert "\x1b" not in text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert list(rows[0].keys()) == list(CSV_COLUMNS)
    assert len(rows) == len(r.events)
    # One physical line per record (newlines inside names are escaped).
    assert len(text.splitlines()) == len(rows) + 1
    hostile = next(row for row in rows if "script" in row["path"])
    assert hostile["path"] == terminal(HOSTILE_PATH)
    assert hostile["comm"] == terminal(HOSTILE_COMM)
    assert hostile["ancestry"] == "bash>python3"
    env = next(row for row in rows if row["path"] == "/srv/.env")
    assert env["count"] == "5" and env["severity"] == "high"


def test_csv_formula_injection_guarded() -> None:
    r = Report(CFG, {})
    r.add(file_ev("/h/.ssh/id_rsa", comm="=HYPERLINK(\"x\")"))
    rows = list(csv.DictReader(io.StringIO(r.to_csv())))
    assert rows[0]["comm"].startswith("'=")


def _write_stream(path: Path, events: list[dict], trailer: dict | None) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for e in events:
            f.write(json.dumps(e) + "\n")
            f.write("\n")  # blank lines are skipped
        if trailer:
            f.write(json.dumps(trailer) + "\n")


def test_rebuild_reproduces_live_counts(tmp_path: Path) -> None:
    live = sample_report()
    events = [
        file_ev(HOSTILE_PATH, comm=HOSTILE_COMM), file_ev("/srv/.env", count=5),
        net_ev("140.82.112.3", domain="github.com"),
        net_ev("140.82.112.3", domain="github.com", count=3), net_ev("127.0.0.1", dport=8080),
        mem_ev(), proc_ev(), proc_ev(), proc_ev(), proc_ev(),
    ]
    p = tmp_path / "events.jsonl"
    _write_stream(p, events, live.summary_record())
    rebuilt = rebuild_report(str(p), CFG)
    assert rebuilt.total == live.total
    assert rebuilt.by_kind == live.by_kind
    assert rebuilt.by_severity == live.by_severity
    assert rebuilt.by_rule == live.by_rule
    assert rebuilt.sorted_destinations() == live.sorted_destinations()
    assert rebuilt.verdict == "degraded"
    assert rebuilt.loss == live.loss
    assert rebuilt.full_metadata()["duration_s"] == 10.0
    assert rebuilt.notes == []
    assert json.loads(rebuilt.to_json())["summary"]["total"] == live.total


def test_rebuild_without_summary_is_interrupted(tmp_path: Path) -> None:
    p = tmp_path / "e.jsonl"
    raw = {"ts": "2025-01-01T00:00:00+00:00", "kind": "file", "pid": 1, "comm": "cat",
           "path": "/h/.ssh/id_rsa", "access": "read"}  # unclassified: classified on load
    _write_stream(p, [raw], None)
    r = rebuild_report(str(p), CFG)
    assert r.verdict == "interrupted"
    assert r.by_severity["critical"] == 1
    assert r.notes


def test_rebuild_notes_filtered_stream(tmp_path: Path) -> None:
    live = sample_report()
    p = tmp_path / "e.jsonl"
    _write_stream(p, [mem_ev()], live.summary_record())
    r = rebuild_report(str(p), CFG)
    assert r.total == 1
    assert any("16" in n for n in r.notes)


def test_load_events_bad_line_has_line_number(tmp_path: Path) -> None:
    p = tmp_path / "bad.jsonl"
    p.write_text('{"kind": "file"}\n\n{not json\n')
    with pytest.raises(ReportError) as ei:
        list(load_events(str(p)))
    assert str(ei.value).startswith(f"{p}:3: ")
    p.write_text('{"kind": "file"}\n[1, 2]\n')
    with pytest.raises(ReportError) as ei:
        list(load_events(str(p)))
    assert ":2: " in str(ei.value)


def test_unknown_severity_counted_not_dropped() -> None:
    r = Report(CFG, {})
    r.add({"kind": "file", "severity": "bogus", "count": "many"})
    assert r.total == 1 and r.by_severity["low"] == 1
