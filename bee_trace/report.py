"""Run report: exact counts, a bounded sample of events, findings and destinations.

Counts are always exact (they honour aggregated ``count``); only the stored event
lists are capped, and when a kind's list is full a more severe event evicts the
least severe one, so a flood of low-severity events can never push a critical
finding out of the report.
"""

from __future__ import annotations

import csv
import heapq
import io
import json
import sys
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from . import escape
from .classify import classify, severity_rank
from .config import SEVERITIES, Config
from .describe import describe
from .loss import LossSummary

__all__ = [
    "Report",
    "ReportError",
    "CSV_COLUMNS",
    "load_events",
    "rebuild_report",
    "ancestry_chain",
]

CSV_COLUMNS = (
    "ts", "kind", "severity", "rule", "category", "risk", "count", "pid", "tid", "ppid", "uid",
    "comm", "exe", "cmdline", "ancestry", "path", "access", "truncated", "protocol", "family",
    "daddr", "dport", "action", "domain", "technique", "target_pid", "target_comm",
    "secret_env_names",
)
_NUMERIC = {"risk", "count", "pid", "tid", "ppid", "uid", "dport", "target_pid"}
# Spreadsheets execute cells starting with these; prefix a quote (OWASP CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_MAX_DESTINATIONS = 1000
_FINDING_MIN = "medium"
_FINDING_RANK = severity_rank(_FINDING_MIN)


class ReportError(ValueError):
    """Unreadable event stream; str is ``file:line: problem``."""


def _count(ev: dict) -> int:
    c = ev.get("count")
    if c is None:   # most events
        return 1
    return c if isinstance(c, int) and not isinstance(c, bool) and c > 0 else 1


def _str(v: Any) -> str:
    return v if isinstance(v, str) else ("" if v is None else str(v))


def ancestry_chain(ev: dict) -> list[str]:
    """Ancestors (oldest first) followed by the process itself."""
    anc = ev.get("ancestry")
    chain = [_str(a) for a in anc] if isinstance(anc, list) else []
    comm = _str(ev.get("comm"))
    pids = ev.get("ancestry_pids")
    # Decoded events' ancestry already ends with the process itself.
    includes_self = bool(pids) and isinstance(pids, list) and pids[-1] == ev.get("pid")
    if comm and not includes_self:
        chain.append(comm)
    return chain


def _parse_ts(v: Any) -> datetime | None:
    if not isinstance(v, str):
        return None
    try:
        return datetime.fromisoformat(v)
    except ValueError:
        return None


def _flatten(d: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if not isinstance(d, dict):
        return [(prefix or "value", d)]
    out: list[tuple[str, Any]] = []
    for k, v in d.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        out.extend(_flatten(v, key) if isinstance(v, dict) else [(key, v)])
    return out


class Report:
    def __init__(self, cfg: Config, metadata: dict | None = None) -> None:
        from . import __version__

        self.cfg = cfg
        self.metadata: dict[str, Any] = {"version": __version__, "config": cfg.source}
        self.metadata.update(metadata or {})
        self.cap = max(0, cfg.reporting.max_events_per_type)
        self.total = 0
        self.by_kind: Counter[str] = Counter()
        self.by_severity: Counter[str] = Counter()
        self.by_rule: Counter[str] = Counter()
        self.by_kind_severity: Counter[tuple[str, str]] = Counter()
        self.records = 0  # event records received (aggregated ones count once)
        self._seq = 0
        # kind -> min-heap of (severity rank, -seq, seq, event): the root is evicted first.
        self._kept: dict[str, list[tuple[int, int, int, dict]]] = {}
        self.overflow: Counter[str] = Counter()  # records not kept, per kind
        self.findings: dict[tuple, dict] = {}
        self.findings_overflow: Counter[str] = Counter()
        self._findings_per_sev: Counter[str] = Counter()
        self.destinations: Counter[tuple] = Counter()
        self.destinations_overflow = 0
        self.end: dict[str, Any] = {}
        self.loss: dict[str, Any] = {}
        self.verdict: str | None = None
        self.verdict_reasons: list[dict[str, Any]] = []
        self.notes: list[str] = []

    # ------------------------------------------------------------------ ingest

    def add(self, event: dict) -> None:
        n = _count(event)
        kind = _str(event.get("kind")) or "unknown"
        sev = _str(event.get("severity"))
        rank = severity_rank(sev)
        if rank < 0:
            sev, rank = "low", 0  # unknown severities are counted, never dropped
        self.records += 1
        self.total += n
        self.by_kind[kind] += n
        self.by_severity[sev] += n
        self.by_rule[_str(event.get("rule")) or "unknown"] += n
        self.by_kind_severity[(kind, sev)] += n
        self._seq += 1
        self._keep(kind, rank, event)
        if rank >= _FINDING_RANK:
            self._finding(event, sev, n)
        if kind == "network":
            self._destination(event, n)

    def _keep(self, kind: str, rank: int, ev: dict) -> None:
        heap = self._kept.setdefault(kind, [])
        if len(heap) >= self.cap and not (heap and rank > heap[0][0]):
            self.overflow[kind] += 1
            return
        # A copy without the pipeline's bookkeeping (made only for events kept).
        ev = {k: v for k, v in ev.items() if not k.startswith("_")}
        item = (rank, -self._seq, self._seq, ev)
        if len(heap) < self.cap:
            heapq.heappush(heap, item)
        elif heap and rank > heap[0][0]:
            heapq.heapreplace(heap, item)
            self.overflow[kind] += 1
        else:
            self.overflow[kind] += 1

    def _finding(self, ev: dict, sev: str, n: int) -> None:
        key = (sev, _str(ev.get("rule")), _str(ev.get("comm")), _str(ev.get("exe")), describe(ev))
        f = self.findings.get(key)
        if f is None:
            if self._findings_per_sev[sev] >= max(self.cap, 1):
                self.findings_overflow[sev] += n
                return
            self._findings_per_sev[sev] += 1
            f = self.findings[key] = {
                "severity": sev, "rule": key[1], "comm": key[2], "exe": key[3],
                "detail": key[4], "pid": ev.get("pid"), "ancestry": ancestry_chain(ev),
                "ancestry_pids": list(ev.get("ancestry_pids") or []), "ppid": ev.get("ppid"),
                "cmdline": _str(ev.get("cmdline")), "first_ts": ev.get("ts"),
                "last_ts": ev.get("ts"), "count": 0, "risk": ev.get("risk"),
            }
        f["count"] += n
        f["last_ts"] = ev.get("ts")

    def _destination(self, ev: dict, n: int) -> None:
        key = (
            _str(ev.get("domain")), _str(ev.get("daddr")), ev.get("dport"),
            _str(ev.get("protocol")), _str(ev.get("action")),
        )
        if key not in self.destinations and len(self.destinations) >= _MAX_DESTINATIONS:
            self.destinations_overflow += n
            return
        self.destinations[key] += n

    def finish(self, end_meta: dict | None, loss: LossSummary | dict | None, verdict: str,
               reasons: list[dict[str, Any]] | None = None) -> None:
        """The run's one verdict; the loss counters are kept without a verdict of their own, in
        their JSON form (a stream read back by `bee-trace report` may come from another version)."""
        self.end = dict(end_meta or {})
        if isinstance(loss, LossSummary):
            loss = loss.to_json()
        self.loss = {k: v for k, v in (loss or {}).items() if k not in ("verdict", "verdict_reasons")}
        self.verdict = verdict
        self.verdict_reasons = [r for r in (reasons or []) if isinstance(r, dict)]

    def verdict_text(self) -> str:
        from .verdict import Verdict
        return Verdict(self.verdict or "unknown", self.verdict_reasons).text()

    # ------------------------------------------------------------------ queries

    @property
    def events(self) -> list[dict]:
        """Kept events of all kinds in arrival order."""
        items = [it for heap in self._kept.values() for it in heap]
        return [it[3] for it in sorted(items, key=lambda it: it[2])]

    def count_at_least(self, severity: str) -> int:
        floor = severity_rank(severity)
        return sum(c for s, c in self.by_severity.items() if severity_rank(s) >= floor)

    def sorted_findings(self) -> list[dict]:
        return sorted(
            self.findings.values(),
            key=lambda f: (-severity_rank(f["severity"]), -f["count"], _str(f["first_ts"])),
        )

    def sorted_destinations(self) -> list[dict]:
        rows = [
            {"domain": k[0] or None, "daddr": k[1], "dport": k[2], "protocol": k[3],
             "action": k[4], "count": c}
            for k, c in self.destinations.items()
        ]
        rows.sort(key=lambda r: (-r["count"], r["daddr"], _str(r["dport"])))
        return rows

    def full_metadata(self) -> dict[str, Any]:
        meta = dict(self.metadata)
        meta.update(self.end)
        if "duration_s" not in meta:
            dur = None
            if isinstance(meta.get("start_ns"), int) and isinstance(meta.get("end_ns"), int):
                dur = (meta["end_ns"] - meta["start_ns"]) / 1e9
            else:
                a, b = _parse_ts(meta.get("start")), _parse_ts(meta.get("end"))
                if a is not None and b is not None:
                    try:
                        dur = (b - a).total_seconds()
                    except TypeError:  # naive vs aware timestamps
                        dur = None
            if dur is not None:
                meta["duration_s"] = round(dur, 3)
        return meta

    def summary(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "records": self.records,
            "by_kind": dict(self.by_kind),
            "by_severity": {s: self.by_severity.get(s, 0) for s in SEVERITIES},
            "by_rule": dict(self.by_rule.most_common()),
            "kept_events": sum(len(h) for h in self._kept.values()),
            "events_not_kept": dict(self.overflow),
            "findings_not_kept": dict(self.findings_overflow),
            "destinations_not_kept": self.destinations_overflow,
        }

    def summary_record(self) -> dict[str, Any]:
        """The trailing JSON Lines record a live run writes; rebuild_report reads it back."""
        return {
            "kind": "summary",
            "ts": self.end.get("end") or self.metadata.get("start"),
            "metadata": dict(self.metadata),
            "end": dict(self.end),
            "loss": self.loss,
            "verdict": self.verdict,
            "verdict_reasons": self.verdict_reasons,
            "counts": {
                "total": self.total,
                "by_kind": dict(self.by_kind),
                "by_severity": {s: self.by_severity.get(s, 0) for s in SEVERITIES},
            },
        }

    # ------------------------------------------------------------------ writers

    def to_json(self) -> str:
        doc = {
            "metadata": self.full_metadata(),
            "summary": self.summary(),
            "loss": self.loss,
            "verdict": self.verdict,
            "verdict_reasons": self.verdict_reasons,
            "notes": self.notes,
            "findings": self.sorted_findings(),
            "destinations": self.sorted_destinations(),
            "events": self.events,
        }
        # json_safe_obj removes lone surrogates, so ensure_ascii=False still yields valid UTF-8.
        return json.dumps(escape.json_safe_obj(doc), ensure_ascii=False, indent=2, default=str)

    def to_markdown(self) -> str:
        """Verdict and reasons, findings as a process tree, destinations, coverage and loss."""
        from .mdreport import render
        return render(self)

    def to_csv(self) -> str:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(CSV_COLUMNS)
        for ev in self.events:
            w.writerow([_csv_cell(col, ev.get(col, 1 if col == "count" else None))
                        for col in CSV_COLUMNS])
        return buf.getvalue()


def _csv_cell(col: str, v: Any) -> str:
    if v is None:
        return ""
    if col in _NUMERIC and isinstance(v, int) and not isinstance(v, bool):
        return str(v)
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, list):
        v = (">" if col == "ancestry" else ";").join(_str(x) for x in v)
    # terminal(): one physical line per row and no raw control characters for `cat`.
    s = escape.terminal(v)
    if s.startswith(_FORMULA_START):
        s = "'" + s
    return s


# --------------------------------------------------------------------------- streams


def load_events(path: str) -> Iterator[dict]:
    """Objects of a JSON Lines file ('-' = stdin); blank lines skipped, bad lines raise."""
    f = sys.stdin if path == "-" else open(path, encoding="utf-8", errors="surrogateescape")
    try:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise ReportError(f"{path}:{lineno}: invalid JSON: {e.msg} (column {e.colno})") from None
            if not isinstance(obj, dict):
                raise ReportError(f"{path}:{lineno}: expected a JSON object, got {type(obj).__name__}")
            yield obj
    finally:
        if f is not sys.stdin:
            f.close()


def rebuild_report(path: str, cfg: Config) -> Report:
    """Rebuild a live run's report from its JSON Lines stream (`bee-trace report`)."""
    report = Report(cfg, {})
    summary: dict | None = None
    first_ts = last_ts = None
    for ev in load_events(path):
        if ev.get("kind") == "summary":
            summary = ev
            continue
        if severity_rank(ev.get("severity")) < 0 or not ev.get("rule"):
            classify(ev, cfg)  # streams from other producers may lack classification
        if first_ts is None:
            first_ts = ev.get("ts")
        last_ts = ev.get("ts")
        report.add(ev)

    if summary is not None:
        meta = summary.get("metadata")
        if isinstance(meta, dict):
            report.metadata.update(meta)
        end = summary.get("end") if isinstance(summary.get("end"), dict) else {}
        loss = summary.get("loss") if isinstance(summary.get("loss"), dict) else {}
        verdict = summary.get("verdict")
        reasons = summary.get("verdict_reasons")
        report.finish(end, loss, verdict if isinstance(verdict, str) else "unknown",
                      reasons if isinstance(reasons, list) else None)
        counts = summary.get("counts")
        if isinstance(counts, dict) and isinstance(counts.get("total"), int) \
                and counts["total"] != report.total:
            report.notes.append(
                f"The live run counted {counts['total']} events; this stream holds {report.total} "
                "(it was filtered or truncated)."
            )
    else:
        report.metadata.setdefault("start", first_ts)
        # Without the trailer the run did not shut down cleanly: completeness is unproven.
        report.finish({"end": last_ts}, {}, "interrupted",
                      [{"reason": "interrupted", "detail": "no summary record (the agent was killed or crashed)"}])
        report.notes.append("The event stream has no summary record; the run was interrupted.")
    report.metadata["events_file"] = path
    return report
