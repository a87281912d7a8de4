"""One verdict per run, with its reasons; the reader's own stall; outputs that fail cleanly."""

from __future__ import annotations

import errno
import io
import json
from pathlib import Path

from bee_trace.config import default_config
from bee_trace.loss import LossSummary
from bee_trace.report import Report, rebuild_report
from bee_trace.sinks import Sink
from bee_trace.sinks.failsafe import FailSafe, FindingsToStderr, OutputHealth
from bee_trace.sinks.jsonl import JsonLinesSink
from bee_trace.verdict import StallWatch, decide


def _loss(**lanes: dict) -> LossSummary:
    base = {c: 0 for c in ("ring_full", "sampled", "rate_limited", "shed", "spill_full", "first_lost")}
    return LossSummary.from_json({"lanes": {"critical": {**base, **lanes.get("critical", {})},
                                            "bulk": {**base, **lanes.get("bulk", {})}},
                                  "dropped": {"sink_overflow": 0, "output_failed": 0}, "uncounted_gaps": 0,
                                  "aggregated_unreported": 0})


def test_policy_refusals_are_not_losses() -> None:
    v = decide(_loss(bulk={"sampled": 900, "rate_limited": 50}))
    assert (v.state, v.reasons, v.text()) == ("complete", [], "complete")


def test_each_loss_is_a_reason() -> None:
    v = decide(_loss(bulk={"first_lost": 2, "ring_full": 7}, critical={"spill_full": 1}),
               tamper={"tamper.stop": 1}, stalled_ms=4100)
    assert v.state == "degraded"
    assert v.reasons == [
        {"reason": "spill_full", "lane": "critical", "count": 1},
        {"reason": "ring_full", "lane": "bulk", "count": 7},
        {"reason": "first_lost", "lane": "bulk", "count": 2},
        {"reason": "tamper.stop", "count": 1},
        {"reason": "stalled", "longest_wait_ms": 4100},
    ]
    assert v.text() == ("degraded (spill_full critical 1, ring_full bulk 7, first_lost bulk 2, "
                        "tamper.stop 1, stalled longest wait 4100 ms)")


def test_watched_inodes_not_learned_is_a_loss_and_reclaimed_ones_are_not() -> None:
    """A table full of files that exist refused to learn a watched file (its hard links go
    unseen): degraded. Entries of deleted files dropped to make room lose nothing."""
    loss = _loss()
    loss.inodes_stale, loss.inodes_reclaimed = 1, 16384
    assert decide(loss).state == "complete"
    loss.inodes_not_learned = 3
    v = decide(loss)
    assert (v.state, v.reasons) == ("degraded", [{"reason": "inodes_not_learned", "count": 3}])
    assert v.text() == "degraded (inodes_not_learned 3)"


def test_interrupted_wins_and_keeps_reasons() -> None:
    v = decide(_loss(critical={"ring_full": 1}), interrupted="SIGTERM before --duration ended")
    assert v.state == "interrupted" and [r["reason"] for r in v.reasons] == ["ring_full", "interrupted"]


def test_stall_watch() -> None:
    w = StallWatch(2.0)
    now = 10_000_000_000
    w.observe(now - 1_000_000_000, now)
    assert w.stalled_ms is None
    w.observe(now - 3_500_000_000, now)
    assert w.stalled_ms == 3500
    assert StallWatch(None).stalled_ms is None


def test_summary_record_has_one_verdict(tmp_path: Path) -> None:
    r = Report(default_config(), {})
    loss = _loss(bulk={"first_lost": 1})
    loss.verdict = "complete"   # a stale inner verdict
    v = decide(loss)
    loss.verdict, loss.verdict_reasons = v.state, v.reasons
    r.finish({}, loss, v.state, v.reasons)
    rec = r.summary_record()
    assert rec["verdict"] == "degraded" and rec["verdict_reasons"] == v.reasons
    assert "verdict" not in rec["loss"] and "verdict" not in json.dumps(rec["loss"])
    p = tmp_path / "e.jsonl"
    p.write_text(json.dumps(rec) + "\n")
    back = rebuild_report(str(p), default_config())
    assert (back.verdict, back.verdict_reasons) == ("degraded", v.reasons)
    assert "first\\_lost" in back.to_markdown()


def test_no_summary_record_means_interrupted(tmp_path: Path) -> None:
    p = tmp_path / "e.jsonl"
    p.write_text(json.dumps({"kind": "file", "severity": "critical", "rule": "file.ssh_key.read",
                             "path": "/h/.ssh/id_rsa", "access": "read"}) + "\n")
    r = rebuild_report(str(p), default_config())
    assert r.verdict == "interrupted"
    assert r.verdict_reasons == [{"reason": "interrupted",
                                  "detail": "no summary record (the agent was killed or crashed)"}]
    assert r.to_markdown().count("interrupted") >= 2


class Full(io.StringIO):
    name = "/mnt/full/ev.jsonl"

    def flush(self) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")


def test_failsafe_counts_buffered_events_and_findings_go_to_stderr() -> None:
    err = io.StringIO()
    health = OutputHealth(stderr=lambda: err)
    sink = FailSafe(JsonLinesSink(Full()), "/mnt/full/ev.jsonl", health)
    fallback = FindingsToStderr(health)
    ev = {"kind": "file", "severity": "critical", "rule": "file.ssh_key.read", "pid": 7,
          "comm": "c\x1bat", "path": "/k/id_rsa", "access": "read"}
    for _ in range(3):
        sink(ev)
        fallback(ev)           # nothing failed yet: nothing on stderr
    sink.flush()               # the buffered three never reached the disk
    sink(ev)
    fallback(ev)
    assert isinstance(sink, Sink) and sink.failed == 4 and sink.overflow == 0
    lines = err.getvalue().splitlines()
    assert lines[0] == ("bee-trace: output /mnt/full/ev.jsonl: No space left on device (ENOSPC); "
                        "monitoring goes on, findings go to stderr and the report")
    assert lines[1:] == ["bee-trace: finding: critical file.ssh_key.read pid 7 c\\x1bat: read /k/id_rsa"]


def test_reader_closed_is_not_a_failure() -> None:
    class Closed(io.StringIO):
        def write(self, s: str) -> int:
            raise BrokenPipeError(errno.EPIPE, "Broken pipe")

    err = io.StringIO()
    health = OutputHealth(stderr=lambda: err)
    sink = FailSafe(JsonLinesSink(Closed()), "stdout", health)
    sink({"kind": "file"})
    sink({"kind": "file"})
    assert health.reader_closed and not health.failed
    assert err.getvalue() == "bee-trace: stdout: closed by its reader; ending the run\n"
