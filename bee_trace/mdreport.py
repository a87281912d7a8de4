"""The Markdown report and GitHub step summary, written for people: the verdict and its reasons
first, then the findings as a process tree (from the job's shell down to the offending process),
then destinations with their domains, then coverage and loss. Long runs stay readable: counts
are exact and folded, lists show the top N and say how many more there are. Every string that
came from the monitored workload goes through escape.markdown."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from . import escape
from .classify import severity_rank
from .config import SEVERITIES
from .describe import ARROW

TOP_PROCESSES = 25          # offending processes shown in the tree
TOP_FINDINGS = 10           # findings listed under one process
TOP_DESTINATIONS = 20
# The runner's own processes above the job's shell: the tree starts below them.
RUNNER_PROCESSES = ("Runner.Worker", "Runner.Listener", "hosted-compute-agent", "provjobd")
_MARK = {"critical": "🔴", "high": "🟠", "medium": "🟡", "low": "⚪"}
md = escape.markdown


# ------------------------------------------------------------------------------ verdict

def verdict_reasons(verdict: str, loss: dict[str, Any], notes: list[str]) -> list[str]:
    """Why the verdict is what it is, in words, biggest first."""
    reasons: list[str] = []
    given = loss.get("reasons")
    if isinstance(given, list):
        reasons += [str(r) for r in given]
    if verdict == "interrupted":
        reasons.append("the monitor stopped before the job ended (signal, kill or crash): "
                       "what ran afterwards was not watched")
        if not loss:
            reasons.append("the event stream has no summary record, so no loss counters are known")
    dropped = loss.get("dropped", {}) if isinstance(loss.get("dropped"), dict) else {}
    lanes = loss.get("lanes", {}) if isinstance(loss.get("lanes"), dict) else {}

    def per_lane(cause: str) -> str:
        parts = [f"{lane} {c.get(cause, 0)}" for lane, c in lanes.items()
                 if isinstance(c, dict) and c.get(cause)]
        return f" ({', '.join(parts)})" if parts else ""

    for cause, text in (("ring_full", "records lost because a ring buffer was full"),
                        ("shed", "bulk records shed under backpressure"),
                        ("spill_full", "critical records lost because the spill map was full"),
                        ("first_lost", "first-of-key records lost"),
                        ("sink_overflow", "events an output could not take (writer queue, OTLP export)")):
        n = dropped.get(cause, 0)
        if isinstance(n, int) and n > 0:
            reasons.append(f"{n} {text}{per_lane(cause)}")
    for key, text in (("uncounted_gaps", "records missing from the sequence without a counted cause"),
                      ("aggregated_unreported", "folded counts evicted before they were read")):
        n = loss.get(key, 0)
        if isinstance(n, int) and n > 0:
            reasons.append(f"{n} {text}")
    if verdict == "complete" and not reasons:
        reasons.append("every record the kernel produced was read and delivered")
    elif verdict == "degraded" and not reasons:
        reasons.append("the monitor counted losses: see the loss counters below")
    policy = [f"{dropped[c]} {c.replace('_', ' ')}" for c in ("sampled", "rate_limited")
              if isinstance(dropped.get(c), int) and dropped[c] > 0]
    if policy:
        reasons.append("reduced by policy, counted, not lost: " + ", ".join(policy))
    return reasons


# ------------------------------------------------------------------------------ process tree

@dataclass
class Node:
    name: str
    pid: Any = None
    children: dict[tuple, Node] = field(default_factory=dict)
    findings: list[dict] = field(default_factory=list)
    exe: str = ""
    cmdline: str = ""

    def child(self, name: str, pid: Any) -> Node:
        key = (pid, name) if pid is not None else (None, name)
        node = self.children.get(key)
        if node is None:
            node = self.children[key] = Node(name, pid)
        return node

    def worst(self) -> int:
        ranks = [severity_rank(f["severity"]) for f in self.findings]
        ranks += [c.worst() for c in self.children.values()]
        return max(ranks, default=-1)

    def total(self) -> int:
        return sum(f["count"] for f in self.findings) + sum(c.total() for c in self.children.values())


def lineage(f: dict) -> list[tuple[str, Any]]:
    """(name, pid) from the oldest known ancestor down to the process itself."""
    names = [str(a) for a in f.get("ancestry") or []]
    pids = list(f.get("ancestry_pids") or [])
    comm, pid = str(f.get("comm") or ""), f.get("pid")
    if len(pids) != len(names):
        pids = [None] * len(names)
    if pids and pids[-1] == pid and pid is not None:
        pass                                    # the chain already ends with the process
    elif names and names[-1] == comm and pids[-1] is None:
        pids[-1] = pid                          # decoded chains include the process itself
    else:
        names.append(comm)
        pids.append(pid)
    chain = list(zip(names, pids))
    # Start at the job's shell: drop the runner's own processes and everything above them.
    for i in range(len(chain) - 1, -1, -1):
        if chain[i][0] in RUNNER_PROCESSES and i < len(chain) - 1:
            return chain[i + 1:]
    return chain


def build_tree(findings: list[dict]) -> Node:
    root = Node("")
    for f in findings:
        node = root
        for name, pid in lineage(f):
            node = node.child(name, pid)
        node.findings.append(f)
        node.exe = node.exe or str(f.get("exe") or "")
        node.cmdline = node.cmdline or str(f.get("cmdline") or "")
    return root


def _offenders(node: Node) -> int:
    return (1 if node.findings else 0) + sum(_offenders(c) for c in node.children.values())


def render_tree(root: Node, top_processes: int = TOP_PROCESSES,
                top_findings: int = TOP_FINDINGS) -> list[str]:
    out: list[str] = []
    shown = [0]
    hidden = [0, 0]                     # processes, findings' events not listed

    def proc_label(n: Node) -> str:
        pid = f" (pid {md(n.pid)})" if n.pid is not None else ""
        return f"{md(n.name) or '?'}{pid}"

    def walk(n: Node, depth: int) -> None:
        kids = sorted(n.children.values(), key=lambda c: (-c.worst(), -c.total(), str(c.name)))
        for c in kids:
            # A chain without findings or forks folds into one line: a → b → c.
            chain = [c]
            while not chain[-1].findings and len(chain[-1].children) == 1:
                chain.append(next(iter(chain[-1].children.values())))
            last = chain[-1]
            if last.findings and shown[0] >= top_processes:
                hidden[0] += _offenders(last)
                hidden[1] += last.total()
                continue
            label = f" {ARROW} ".join(proc_label(x) for x in chain)
            indent = "  " * depth
            if last.findings:
                shown[0] += 1
                worst = max(last.findings, key=lambda f: severity_rank(f["severity"]))["severity"]
                extra = []
                if last.exe:
                    extra.append(f"exe {md(last.exe)}")
                if last.cmdline:
                    extra.append(f"cmdline {md(last.cmdline[:200])}")
                out.append(f"{indent}- {_MARK.get(worst, '')} **{label}**"
                           + (f" — {'; '.join(extra)}" if extra else ""))
                fs = sorted(last.findings, key=lambda f: (-severity_rank(f["severity"]), -f["count"]))
                for f in fs[:top_findings]:
                    times = f" ×{f['count']}" if f["count"] > 1 else ""
                    out.append(f"{indent}  - {md(f['severity'])} · {md(f['rule'])} · "
                               f"{md(f['detail'])}{times} · first {md(f.get('first_ts') or '')}")
                if len(fs) > top_findings:
                    rest = fs[top_findings:]
                    out.append(f"{indent}  - … and {len(rest)} more findings "
                               f"({sum(f['count'] for f in rest)} events)")
            else:
                out.append(f"{indent}- {label}")
            walk(last, depth + 1)

    walk(root, 0)
    if hidden[0]:
        out.append(f"- … and {hidden[0]} more processes with findings ({hidden[1]} events)")
    return out


# ------------------------------------------------------------------------------ report

def render(report: Any) -> str:
    meta = report.full_metadata()
    verdict = report.verdict or "unknown"
    findings = report.sorted_findings()
    out: list[str] = ["## bee-trace security report", ""]

    icon = {"complete": "✅", "degraded": "⚠️", "interrupted": "⛔"}.get(verdict, "❔")
    out.append(f"### {icon} Verdict: {md(verdict)}")
    out.append("")
    for r in verdict_reasons(verdict, report.loss or {}, report.notes):
        out.append(f"- {md(r)}")
    out.append("")
    by_sev = ", ".join(f"{report.by_severity.get(s, 0)} {s}" for s in reversed(SEVERITIES)
                       if report.by_severity.get(s, 0))
    procs = len({(f.get("pid"), f.get("comm")) for f in findings})
    run = []
    if meta.get("start"):
        run.append(f"from {md(meta['start'])}")
    if meta.get("duration_s") is not None:
        run.append(f"for {md(meta['duration_s'])} s")
    if meta.get("host"):
        run.append(f"on {md(meta['host'])}")
    out.append(f"**{len(findings)} findings** in {procs} processes · **{report.total} events**"
               + (f" ({by_sev})" if by_sev else "") + (" · " + " ".join(run) if run else ""))
    out.append("")

    out += ["### Findings by process", ""]
    if not findings:
        out += ["No findings of medium severity or above.", ""]
    else:
        out += render_tree(build_tree(findings))
        more = sum(report.findings_overflow.values())
        if more:
            out.append(f"- … and {more} more events of further findings not kept "
                       f"(max {max(report.cap, 1)} findings per severity)")
        out.append("")

    dests = report.sorted_destinations()
    if dests:
        out += ["### Network destinations", "", "| Domain | Address | Port | Protocol | Action | Connections |",
                "|---|---|---:|---|---|---:|"]
        for d in dests[:TOP_DESTINATIONS]:
            out.append(f"| {md(d['domain'] or '—')} | {md(d['daddr'])} | {md(d['dport'])} "
                       f"| {md(d['protocol'])} | {md(d['action'])} | {d['count']} |")
        rest = dests[TOP_DESTINATIONS:]
        if rest or report.destinations_overflow:
            n = sum(d["count"] for d in rest) + report.destinations_overflow
            out.append("")
            out.append(f"… and {len(rest)} more destinations ({n} connections"
                       + (", some not kept" if report.destinations_overflow else "") + ").")
        out.append("")

    out += ["### Coverage and loss", ""]
    out += ["| Kind | " + " | ".join(SEVERITIES) + " | total |",
            "|---|" + "---:|" * (len(SEVERITIES) + 1)]
    for kind in sorted(report.by_kind):
        cells = [str(report.by_kind_severity.get((kind, s), 0)) for s in SEVERITIES]
        out.append(f"| {md(kind)} | " + " | ".join(cells) + f" | {report.by_kind[kind]} |")
    totals = [str(report.by_severity.get(s, 0)) for s in SEVERITIES]
    out.append("| **total** | " + " | ".join(totals) + f" | {report.total} |")
    out.append("")
    run_rows = []
    if meta.get("config") is None:
        meta["config"] = "(built-in defaults)"
    for key in ("start", "end", "duration_s", "host", "version", "probe_types", "config", "command"):
        if meta.get(key) not in (None, "", []):
            v = meta[key]
            v = ", ".join(str(x) for x in v) if isinstance(v, list) else v
            run_rows.append(f"| {md(key)} | {md(v)} |")
    if run_rows:
        out += ["| Run | |", "|---|---|"] + run_rows + [""]
    coverage = meta.get("coverage")
    if isinstance(coverage, dict) and coverage:
        attached = sorted(k for k, v in coverage.items() if v == "attached")
        missing = sorted((k, v) for k, v in coverage.items() if v not in ("attached", "not-needed"))
        out.append(f"Probes: {len(attached)} attached" + (
            "; **not attached**: " + ", ".join(f"{md(k)} ({md(v)})" for k, v in missing[:TOP_FINDINGS])
            + (f" and {len(missing) - TOP_FINDINGS} more" if len(missing) > TOP_FINDINGS else "")
            if missing else "; every probe this run needs is attached") + ".")
        out.append("")
    from .report import _flatten
    rows = _flatten(report.loss) if report.loss else []
    if rows:
        nonzero = [(k, v) for k, v in rows if v not in (0, None, "", [], False)]
        out += [f"<details><summary>Loss counters ({len(nonzero)} non-zero of {len(rows)})</summary>", "",
                "| Counter | Value |", "|---|---:|"]
        out += [f"| {md(k)} | {md(v)} |" for k, v in rows]
        out += ["", "</details>", ""]
    else:
        out += ["No loss counters were recorded.", ""]
    kept = sum(len(h) for h in report._kept.values())
    out.append(f"Report keeps {kept} of {report.records} event records "
               f"(max {report.cap} per kind); counts above are exact.")
    for note in report.notes:
        out += ["", md(note)]
    return "\n".join(out) + "\n"
