"""GitHub Actions integration: step summary, annotations, step outputs, exit code.

Everything is a no-op outside Actions (``GITHUB_ACTIONS`` != "true") so the same CLI
code runs on a developer machine. All hostile text is escaped twice over: terminal()
so it stays on one visible line, then the workflow-command encoding.
"""

import os
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from .classify import meets, severity_rank
from .describe import ARROW, describe
from .escape import gh_data, gh_property, terminal
from .report import Report, ancestry_chain

__all__ = [
    "in_github_actions",
    "write_step_summary",
    "annotation",
    "annotations",
    "write_outputs",
    "fail_on_exit_code",
    "EXIT_FINDINGS",
    "STEP_SUMMARY_LIMIT",
]

EXIT_FINDINGS = 1
# GitHub rejects step summaries above 1 MiB; stay under it with room for the notice.
STEP_SUMMARY_LIMIT = 1024 * 1024 - 4096


def in_github_actions(env: Mapping[str, str] | None = None) -> bool:
    return (env if env is not None else os.environ).get("GITHUB_ACTIONS") == "true"


def _append(path: str, text: str) -> None:
    with open(path, "a", encoding="utf-8", errors="backslashreplace") as f:
        f.write(text)


def write_step_summary(markdown: str, env: Mapping[str, str] | None = None) -> bool:
    """Append Markdown to $GITHUB_STEP_SUMMARY; False if not in Actions or unset."""
    env = env if env is not None else os.environ
    path = env.get("GITHUB_STEP_SUMMARY")
    if not in_github_actions(env) or not path:
        return False
    data = markdown.encode("utf-8", errors="backslashreplace")
    if len(data) > STEP_SUMMARY_LIMIT:
        cut = data[:STEP_SUMMARY_LIMIT].rsplit(b"\n", 1)[0]
        markdown = cut.decode("utf-8", errors="ignore") + (
            "\n\n_Summary truncated to GitHub's 1 MiB limit; see the full report artifact._\n"
        )
    if not markdown.endswith("\n"):
        markdown += "\n"
    _append(path, markdown)
    return True


def _message(ev: Mapping[str, Any]) -> str:
    who = f"{ev.get('comm', '')}[{ev.get('pid', '')}]"
    what = describe(dict(ev))
    chain = f" {ARROW} ".join(ancestry_chain(dict(ev)))
    return f"{who} {what} (process tree: {chain})"


def annotation(event: Mapping[str, Any]) -> str | None:
    """`::error` for critical, `::warning` for high events; None for lower severities."""
    sev = event.get("severity")
    if sev == "critical":
        cmd = "error"
    elif sev == "high":
        cmd = "warning"
    else:
        return None
    count = event.get("count")
    suffix = f" (x{count})" if isinstance(count, int) and count > 1 else ""
    title = f"bee-trace {sev}: {event.get('rule', '')}"
    return (
        f"::{cmd} title={gh_property(terminal(title))}::"
        f"{gh_data(terminal(_message(event) + suffix))}"
    )


def annotations(events: Iterable[Mapping[str, Any]], limit: int = 10) -> list[str]:
    """Annotation lines, most severe first; GitHub shows only ~10 of each type per step."""
    ranked = sorted(
        (e for e in events if severity_rank(e.get("severity")) >= severity_rank("high")),
        key=lambda e: -severity_rank(e.get("severity")),
    )
    out = [a for a in (annotation(e) for e in ranked[:limit]) if a]
    if len(ranked) > limit:
        out.append(f"::notice title=bee-trace::{len(ranked) - limit} more high/critical "
                   "events are listed in the report")
    return out


def _output_line(key: str, value: str) -> str:
    if "\n" not in value and "\r" not in value:
        return f"{key}={value}\n"
    # Multi-line form; a random delimiter that cannot occur in the value.
    delim = f"ghadelimiter_{uuid.uuid4().hex}"
    while delim in value:
        delim = f"ghadelimiter_{uuid.uuid4().hex}"
    return f"{key}<<{delim}\n{value}\n{delim}\n"


def write_outputs(
    report_path: str,
    events_detected: int,
    high_severity_events: int,
    env: Mapping[str, str] | None = None,
) -> bool:
    """Append step outputs report-path, events-detected, high-severity-events to $GITHUB_OUTPUT."""
    env = env if env is not None else os.environ
    path = env.get("GITHUB_OUTPUT")
    if not in_github_actions(env) or not path:
        return False
    _append(
        path,
        _output_line("report-path", str(report_path))
        + _output_line("events-detected", str(int(events_detected)))
        + _output_line("high-severity-events", str(int(high_severity_events))),
    )
    return True


def fail_on_exit_code(report: Report, severity: str | None) -> int:
    """EXIT_FINDINGS if the report holds an event at or above ``severity``, else 0.

    ``None``, "" or "none" disables failing. An unknown severity raises ValueError.
    """
    if severity is None or severity.strip().lower() in ("", "none", "never", "off"):
        return 0
    sev = severity.strip().lower()
    meets("low", sev)  # validates the name: raises ValueError if unknown
    return EXIT_FINDINGS if report.count_at_least(sev) > 0 else 0
