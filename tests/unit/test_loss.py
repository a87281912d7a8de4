"""The typed loss summary keeps the summary record's JSON contract: the same fields, in order."""

from __future__ import annotations

import json

from bee_trace import records as R
from bee_trace.loss import Drops, LaneLoss, LossSummary, total_drops, uncounted_gaps

# The `loss` object of the summary record, as users' tooling reads it.
TOP = ["inspected", "candidates", "inodes_not_learned", "inodes_stale", "inodes_reclaimed", "received",
       "output", "unconfirmed", "excluded", "below_severity",
       "dropped", "uncounted_gaps", "lanes", "aggregated_reported", "aggregated_unreported",
       "folded_reported", "folded_unreported", "folded_unnamed_keys", "folds_full", "spilled_reported", "shed_raised",
       "governor",
       "process_cache_evictions", "caches", "egress", "tamper", "stopped_by", "stalled_ms", "coverage_gaps", "verdict",
       "verdict_reasons"]
LANE = ["attempted", "emitted", "received", "sequence_gaps", *R.DROP_CAUSES]


class _Sink:
    overflow, failed = 3, 1


def _lanes() -> dict[str, LaneLoss]:
    return {"critical": LaneLoss(attempted=10, emitted=9, received=8, sequence_gaps=2,
                                 drops=Drops(ring_full=1, spilled=1)),
            "bulk": LaneLoss(attempted=5, sequence_gaps=4, drops=Drops(ring_full=1, sampled=7))}


def test_json_fields_are_the_contract() -> None:
    lanes = _lanes()
    loss = LossSummary(lanes=lanes, dropped=total_drops(lanes, [_Sink()]), uncounted_gaps=uncounted_gaps(lanes))
    doc = loss.to_json()
    assert list(doc) == TOP
    assert list(doc["dropped"]) == [*R.DROP_CAUSES, "sink_overflow", "output_failed"]
    assert all(list(lane) == LANE for lane in doc["lanes"].values())
    assert doc["dropped"]["ring_full"] == 2 and doc["dropped"]["sampled"] == 7
    assert doc["dropped"]["sink_overflow"] == 3 and doc["dropped"]["output_failed"] == 1
    assert doc["uncounted_gaps"] == 3          # bulk: 4 gaps, 1 ring-full; critical: all counted
    json.dumps(doc)


def test_round_trip_and_overflow() -> None:
    lanes = _lanes()
    loss = LossSummary(inspected=4, lanes=lanes, dropped=total_drops(lanes, []))
    assert LossSummary.from_json(json.loads(json.dumps(loss.to_json()))) == loss
    more = loss.with_overflow(2)
    assert more.dropped.sink_overflow == 2 and more.verdict == "degraded"
    assert loss.dropped.sink_overflow == 0 and loss.verdict == "complete"   # a copy
    more.otlp = {"submitted": 1}
    assert list(more.to_json())[-1] == "otlp"
