"""Prometheus metrics of a run (`--metrics-address HOST:PORT`): events by kind/severity/rule,
drops by cause and lane, folded/spilled counts, ring fill, tamper events, agent CPU and RSS,
verdict. Exposed with prometheus_client from a custom collector over counters the run feeds: the
event counter is a sink (a run of records costs one dict update), the kernel's counters are read
by the run loop once a second, never by the scrape thread (the maps close at shutdown)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from typing import Any

from prometheus_client import CollectorRegistry, ProcessCollector, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily

from . import records as R
from .loss import LaneLoss, LossSummary
from .sinks import Run, Sink

VERDICTS = ("complete", "degraded", "interrupted")
# Kernel drop causes that mean "not delivered" (loss or a deliberate reduction by policy); the
# others say how identical records were compacted without losing their count.
COMPACTED = ("folded", "aggregated")
SPILLED = ("spilled",)
DROPPED = tuple(c for c in R.DROP_CAUSES if c not in COMPACTED + SPILLED)
UPDATE_INTERVAL_S = 1.0


def parse_address(text: str) -> tuple[str, int]:
    """HOST:PORT, [IPv6]:PORT or :PORT (all addresses); port 0 picks a free one."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ValueError(f"--metrics-address {text!r}: expected HOST:PORT")
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port)


def _count(ev: dict[str, Any]) -> int:
    c = ev.get("count", 1)
    return c if isinstance(c, int) and c > 0 else 1


class Metrics:
    """State behind the collector; fed by EventCounter and update()."""

    def __init__(self, info: dict[str, str] | None = None) -> None:
        self.info = dict(info or {})
        self.events: dict[tuple[str, str, str], int] = {}
        self.loss = LossSummary()
        self.ring_fill: dict[str, float] = {}
        self.verdict = "complete"
        self._lock = threading.Lock()
        self._next_update = 0.0

    # -- feeding ---------------------------------------------------------------------------
    def count(self, kind: str, severity: str, rule: str, n: int) -> None:
        key = (kind, severity, rule)
        self.events[key] = self.events.get(key, 0) + n

    def update(self, pipeline: Any, extra_overflow: int = 0, force: bool = False) -> None:
        """From the run loop: the loss summary and ring fill, at most once a second;
        extra_overflow: events outputs outside the pipeline's sum could not deliver (OTLP)."""
        now = time.monotonic()
        if not force and now < self._next_update:
            return
        self._next_update = now + UPDATE_INTERVAL_S
        loss: LossSummary = pipeline.loss_summary()
        if extra_overflow:
            loss = loss.with_overflow(extra_overflow)
        fill = {}
        if pipeline.rings is not None:
            for lane, reader in zip(R.LANE_NAMES, pipeline.rings.rings):
                fill[lane] = reader.lag_bytes() / reader.size if reader.size else 0.0
        with self._lock:
            self.loss, self.ring_fill = loss, fill
            self.verdict = loss.verdict

    def finish(self, loss: LossSummary, verdict: str) -> None:
        with self._lock:
            self.loss, self.verdict = loss, verdict
            self.ring_fill = {lane: 0.0 for lane in R.LANE_NAMES}

    # -- exposition ------------------------------------------------------------------------
    def collect(self) -> Iterable[Any]:
        with self._lock:
            events = dict(self.events)
            loss, fill, verdict = self.loss, dict(self.ring_fill), self.verdict
        ev = CounterMetricFamily("bee_trace_events", "Events output, by kind, severity and rule "
                                 "(aggregated events counted in full).",
                                 labels=["kind", "severity", "rule"])
        tamper = CounterMetricFamily("bee_trace_tamper_events", "Tampering events (kind tamper), by rule.",
                                     labels=["rule"])
        tamper_rules: dict[str, int] = {}
        for (kind, sev, rule), n in sorted(events.items()):
            ev.add_metric([kind, sev, rule], n)
            if kind == "tamper":
                tamper_rules[rule] = tamper_rules.get(rule, 0) + n
        yield ev
        for rule, n in sorted(tamper_rules.items()):
            tamper.add_metric([rule], n)
        yield tamper

        lanes = loss.lanes
        dropped = CounterMetricFamily("bee_trace_dropped", "Records not delivered, by cause and lane "
                                      "(kernel counters; lane output: events our outputs could not "
                                      "take).", labels=["cause", "lane"])
        folded = CounterMetricFamily("bee_trace_folded", "Identical records folded into a count "
                                     "(not lost), by lane and how.", labels=["lane", "cause"])
        spilled = CounterMetricFamily("bee_trace_spilled", "Critical records parked in the spill map "
                                      "while the ring was full (delivered late).", labels=["lane"])
        received = CounterMetricFamily("bee_trace_records_received", "Records read from the rings.",
                                       labels=["lane"])
        gaps = CounterMetricFamily("bee_trace_sequence_gaps", "Records missing from the per-lane "
                                   "sequence.", labels=["lane"])
        for lane in R.LANE_NAMES:
            c = lanes.get(lane) or LaneLoss()
            drops = c.drops.counts()
            for cause in DROPPED:
                dropped.add_metric([cause, lane], drops[cause])
            for cause in COMPACTED:
                folded.add_metric([lane, cause], drops[cause])
            spilled.add_metric([lane], c.drops.spilled)
            received.add_metric([lane], c.received)
            gaps.add_metric([lane], c.sequence_gaps)
        dropped.add_metric(["sink_overflow", "output"], loss.dropped.sink_overflow)
        yield from (dropped, folded, spilled, received, gaps)

        inspected = CounterMetricFamily("bee_trace_opens_inspected", "File opens inspected in the kernel.")
        inspected.add_metric([], loss.inspected)
        yield inspected
        ring = GaugeMetricFamily("bee_trace_ring_fill_ratio", "Unread share of each ring buffer (0-1).",
                                 labels=["lane"])
        for lane in R.LANE_NAMES:
            ring.add_metric([lane], fill.get(lane, 0.0))
        yield ring
        v = GaugeMetricFamily("bee_trace_verdict", "The run's verdict so far: 1 for the current state.",
                              labels=["state"])
        for state in VERDICTS:
            v.add_metric([state], 1.0 if state == verdict else 0.0)
        yield v
        if self.info:
            info = InfoMetricFamily("bee_trace_build", "The running bee-trace and its BPF object.")
            info.add_metric([], self.info)
            yield info


class EventCounter(Sink):
    """Sink feeding Metrics; a run of identical records is one update."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def __call__(self, ev: dict[str, Any]) -> None:
        self.metrics.count(ev.get("kind", ""), ev.get("severity", ""), ev.get("rule", ""), _count(ev))

    def emit_run(self, run: Run) -> None:
        t = run.template
        self.metrics.count(t.get("kind", ""), t.get("severity", ""), t.get("rule", ""),
                           len(run) * _count(t))


class MetricsServer:
    """The HTTP endpoint: process_* (agent CPU seconds, RSS) from prometheus_client's
    ProcessCollector plus the bee_trace_* families."""

    def __init__(self, address: str, metrics: Metrics) -> None:
        host, port = parse_address(address)
        self.registry = CollectorRegistry(auto_describe=True)
        ProcessCollector(registry=self.registry)
        self.registry.register(metrics)
        self.server, self.thread = start_http_server(port, host, registry=self.registry)
        self.port = self.server.server_port

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
