"""The one run verdict and its reasons. `complete` only when nothing that matters was lost and
nothing tampered with the agent; `degraded` lists what went wrong; `interrupted` when the run was
cut short (and, from `bee-trace report`, when the stream has no summary record: kill -9).

Policy refusals (sampling, rate limits, exclusions, severity filter) are choices, not losses;
everything an attacker could cause is a loss: a full ring or spill map, shedding, a first-of-key
event that could not be sent, a writer that fell behind or failed, a gap in the sequence numbers,
tampering, a reader that stalled."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .escape import terminal

if TYPE_CHECKING:
    from .loss import LossSummary

COMPLETE, DEGRADED, INTERRUPTED = "complete", "degraded", "interrupted"
# Kernel drop causes that are losses, per lane (records.DROP_CAUSES names).
LOSS_CAUSES = ("ring_full", "shed", "spill_full", "first_lost")
STALL_BOUND_S = 2.0     # a record that waited longer than this in a ring means the reader stalled


@dataclass
class Verdict:
    state: str
    reasons: list[dict[str, Any]] = field(default_factory=list)

    def text(self) -> str:
        """`degraded (ring_full bulk 12, tamper.stop 1)` for the stderr line and the report."""
        if not self.reasons:
            return self.state
        return f"{self.state} ({', '.join(reason_text(r) for r in self.reasons)})"


def reason_text(r: dict[str, Any]) -> str:
    parts = [terminal(r.get("reason", "?"))]
    if r.get("lane"):
        parts.append(str(r["lane"]))
    if "count" in r:
        parts.append(str(r["count"]))
    if "longest_wait_ms" in r:
        parts.append(f"longest wait {r['longest_wait_ms']} ms")
    if r.get("detail"):
        parts[0] += ":"
        parts.append(terminal(r["detail"]))
    if r.get("output"):
        parts.append(f"{terminal(r['output'])}: {r.get('error', '')}")
    return " ".join(parts)


def decide(loss: LossSummary, *, tamper: dict[str, int] | None = None,
           stalled_ms: int | None = None, output_failures: list[dict[str, str]] | None = None,
           interrupted: str | None = None) -> Verdict:
    """The verdict of a loss summary (Pipeline.loss_summary) plus what the run knows besides."""
    reasons: list[dict[str, Any]] = []
    for lane, counts in loss.lanes.items():
        drops = counts.drops.counts()
        for cause in LOSS_CAUSES:
            if drops[cause]:
                reasons.append({"reason": cause, "lane": lane, "count": drops[cause]})
    for cause, n in (("sink_overflow", loss.dropped.sink_overflow),
                     ("output_failed", loss.dropped.output_failed),
                     ("uncounted_gaps", loss.uncounted_gaps),
                     ("aggregated_unreported", loss.aggregated_unreported),
                     ("folded_unreported", loss.folded_unreported),
                     # watched inodes the kernel could not learn (a table full of files that
                     # exist): their hard links and bind mounts go unseen, an attacker can cause it
                     ("inodes_not_learned", loss.inodes_not_learned)):
        if n:
            reasons.append({"reason": cause, "count": n})
    for f in output_failures or []:
        reasons.append({"reason": "output_error", **f})
    for rule, n in sorted((tamper or {}).items()):
        if n:
            reasons.append({"reason": rule, "count": n})
    if stalled_ms:
        reasons.append({"reason": "stalled", "longest_wait_ms": stalled_ms})
    for gap in loss.coverage_gaps:
        # not a loss, but a run that watched less must not read as complete
        reasons.append({"reason": "coverage", "unwatched": gap})
    if interrupted:
        reasons.append({"reason": "interrupted", "detail": interrupted})
        return Verdict(INTERRUPTED, reasons)
    return Verdict(DEGRADED if reasons else COMPLETE, reasons)


class StallWatch:
    """The reader noticing its own stall: the longest a record waited in a ring before it was
    read (record time vs. now at read time), the oldest record of each batch."""

    def __init__(self, bound_s: float | None = STALL_BOUND_S) -> None:
        self.bound_ns = None if bound_s is None else int(bound_s * 1e9)
        self.longest_ns = 0

    def observe(self, oldest_ns: int, now_ns: int) -> None:
        """oldest_ns: the earliest record time of a batch."""
        if self.bound_ns is None:
            return
        wait = now_ns - oldest_ns
        if wait > self.longest_ns:
            self.longest_ns = wait

    @property
    def stalled_ms(self) -> int | None:
        """The longest wait when it passed the bound, else None."""
        if self.bound_ns is None or self.longest_ns <= self.bound_ns:
            return None
        return self.longest_ns // 1_000_000
