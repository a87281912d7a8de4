"""Prometheus metrics: families, labels and values from the sink and the loss summary."""

from __future__ import annotations

import urllib.request

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from bee_trace import records as R
from bee_trace.loss import LossSummary
from bee_trace.metrics import EventCounter, Metrics, MetricsServer, parse_address
from bee_trace.sinks import Run


def _samples(metrics: Metrics) -> dict[tuple[str, tuple], float]:
    reg = CollectorRegistry()
    reg.register(metrics)
    out = {}
    for fam in text_string_to_metric_families(generate_latest(reg).decode()):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def _loss(**over):
    lanes = {lane: {"received": 0, "sequence_gaps": 0, **{c: 0 for c in R.DROP_CAUSES}}
             for lane in R.LANE_NAMES}
    lanes["bulk"]["ring_full"] = 7
    lanes["bulk"]["aggregated"] = 40
    lanes["critical"]["folded"] = 3
    lanes["critical"]["spilled"] = 2
    lanes["critical"]["received"] = 11
    return LossSummary.from_json({"lanes": lanes, "dropped": {"sink_overflow": 5}, "inspected": 99,
                                  "verdict": "degraded", **over})


class _Pipe:
    class _Reader:
        size = 1000

        def __init__(self, lag):
            self.lag = lag

        def lag_bytes(self):
            return self.lag

    def __init__(self):
        self.rings = type("RS", (), {"rings": [self._Reader(250), self._Reader(0)]})()

    def loss_summary(self):
        return _loss()


def test_events_drops_folds_fill_verdict():
    m = Metrics({"version": "0.1.0", "object_sha256": "ab", "kernel": "6.18"})
    sink = EventCounter(m)
    sink({"kind": "file", "severity": "critical", "rule": "file.ssh_key.read"})
    sink({"kind": "network", "severity": "low", "rule": "network.connect", "count": 10})
    sink.emit_run(Run({"kind": "tamper", "severity": "high", "rule": "tamper.ptrace_self"},
                      [(1, 1, 0, 1), (2, 1, 0, 2)], 0))
    m.update(_Pipe(), force=True)
    s = _samples(m)
    ev = "bee_trace_events_total"
    assert s[(ev, (("kind", "file"), ("rule", "file.ssh_key.read"), ("severity", "critical")))] == 1
    assert s[(ev, (("kind", "network"), ("rule", "network.connect"), ("severity", "low")))] == 10
    assert s[(ev, (("kind", "tamper"), ("rule", "tamper.ptrace_self"), ("severity", "high")))] == 2
    assert s[("bee_trace_tamper_events_total", (("rule", "tamper.ptrace_self"),))] == 2
    assert s[("bee_trace_dropped_total", (("cause", "ring_full"), ("lane", "bulk")))] == 7
    assert s[("bee_trace_dropped_total", (("cause", "sink_overflow"), ("lane", "output")))] == 5
    assert ("bee_trace_dropped_total", (("cause", "aggregated"), ("lane", "bulk"))) not in s
    assert s[("bee_trace_folded_total", (("cause", "aggregated"), ("lane", "bulk")))] == 40
    assert s[("bee_trace_folded_total", (("cause", "folded"), ("lane", "critical")))] == 3
    assert s[("bee_trace_spilled_total", (("lane", "critical"),))] == 2
    assert s[("bee_trace_records_received_total", (("lane", "critical"),))] == 11
    assert s[("bee_trace_opens_inspected_total", ())] == 99
    assert s[("bee_trace_ring_fill_ratio", (("lane", "critical"),))] == 0.25
    assert s[("bee_trace_verdict", (("state", "degraded"),))] == 1
    assert s[("bee_trace_verdict", (("state", "complete"),))] == 0
    assert s[("bee_trace_build_info", (("kernel", "6.18"), ("object_sha256", "ab"), ("version", "0.1.0")))] == 1
    m.finish(_loss(), "interrupted")
    assert _samples(m)[("bee_trace_verdict", (("state", "interrupted"),))] == 1


def test_server_exposes_process_cpu_and_rss():
    m = Metrics()
    srv = MetricsServer("127.0.0.1:0", m)
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{srv.port}/metrics", timeout=5).read().decode()
    finally:
        srv.close()
    assert "process_cpu_seconds_total" in text and "process_resident_memory_bytes" in text
    assert "bee_trace_verdict" in text


@pytest.mark.parametrize("text,want", [("127.0.0.1:9464", ("127.0.0.1", 9464)),
                                       ("[::1]:9464", ("::1", 9464)), (":9464", ("0.0.0.0", 9464))])
def test_parse_address(text, want):
    assert parse_address(text) == want


@pytest.mark.parametrize("bad", ["9464", "host:", "host:99999", "host:x"])
def test_parse_address_refuses(bad):
    with pytest.raises(ValueError):
        parse_address(bad)
