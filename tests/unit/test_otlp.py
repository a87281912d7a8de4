"""OTLP logs sink: each event one log record with its fields as attributes, sent by the SDK's
batch processor and OTLP/HTTP exporter; what cannot be delivered is counted, never waited for."""

from __future__ import annotations

import socket
import time

import pytest
from otlpreceiver import Receiver

from bee_trace.sinks import Run
from bee_trace.sinks.otlp import OtlpLogSink, attributes


def _ev(i: int, **kw):
    ev = {"ts": "2026-12-02T05:00:00.000000+00:00", "ts_ns": 1_764_651_600_000_000_000 + i,
          "kind": "file", "severity": "critical", "rule": "file.ssh_key.read", "pid": 100 + i,
          "tid": 100 + i, "ppid": 1, "uid": 0, "comm": "cat", "exe": "/usr/bin/cat",
          "ancestry": ["bash", "cat"], "path": f"/root/.ssh/id_rsa{i}", "access": "read",
          "lane": "critical", "seq": i, "start_time": None, "boot_ns": 5, "_template": {}}
    ev.update(kw)
    return ev


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def test_every_event_arrives_as_a_log_record(receiver):
    sink = OtlpLogSink(receiver.endpoint, schedule_delay_ms=50, max_batch=16)
    for i in range(100):
        sink(_ev(i))
    sink.close()
    assert sink.overflow == 0 and sink.stats()["delivered"] == 100
    assert receiver.requests >= 100 // 16
    recs = sorted(receiver.records, key=lambda r: r["attributes"]["seq"])
    assert [r["attributes"]["seq"] for r in recs] == list(range(100))
    r = recs[7]
    assert r["attributes"]["path"] == "/root/.ssh/id_rsa7" and r["attributes"]["ancestry"] == ["bash", "cat"]
    assert r["severity_text"] == "critical" and r["severity_number"] == 21
    assert r["time_unix_nano"] == 1_764_651_600_000_000_007 and r["event_name"] == "bee_trace.file"
    assert "boot_ns" not in r["attributes"] and "_template" not in r["attributes"]
    assert "start_time" not in r["attributes"]
    assert receiver.resources[0]["service.name"] == "bee-trace"


def test_runs_expand_to_one_record_per_event(receiver):
    sink = OtlpLogSink(receiver.endpoint, schedule_delay_ms=50)
    template = _ev(0)
    sink.emit_run(Run(template, [(10, 1, 0, 1), (20, 2, 0, 2), (30, 3, 1, 3)], 0))
    sink.close()
    assert sorted(r["attributes"]["seq"] for r in receiver.records) == [1, 2, 3]


def test_retried_after_503():
    r = Receiver(fail_first=1)
    try:
        sink = OtlpLogSink(r.endpoint, schedule_delay_ms=50, timeout_s=10)
        for i in range(5):
            sink(_ev(i))
        sink.close()
        assert r.refused == 1 and len(r.records) == 5 and sink.overflow == 0
    finally:
        r.close()


def test_unreachable_collector_is_counted_not_waited_for():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()   # nothing listens there
    sink = OtlpLogSink(f"http://127.0.0.1:{port}/v1/logs", schedule_delay_ms=20, timeout_s=0.5,
                       max_queue=50)
    t0 = time.monotonic()
    for i in range(500):
        sink(_ev(i))
    assert time.monotonic() - t0 < 1.0      # the reader never waits for the network
    sink.close()
    st = sink.stats()
    assert st["delivered"] == 0
    assert sink.overflow == 500 == st["refused_queue_full"] + st["failed"] + st["undelivered_at_exit"]
    assert st["refused_queue_full"] > 0


def test_attributes_are_valid_otel_values():
    a = attributes({"path": "/tmp/\udcff", "names": ["A", "B"], "n": None, "d": {"x": 1},
                    "mixed": [1, "a"], "flag": True})
    assert a["path"].encode("utf-8") and "\udcff" not in a["path"]
    assert a["names"] == ["A", "B"] and "n" not in a and a["d.x"] == 1 and a["mixed"] == ["1", "a"]


def test_end_of_run_waits_a_bounded_time_for_a_dead_collector():
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Hang(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_POST(self):
            time.sleep(5)

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Hang)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        sink = OtlpLogSink(f"http://127.0.0.1:{srv.server_port}/v1/logs", schedule_delay_ms=20,
                           timeout_s=3, shutdown_timeout_s=0.5)
        for i in range(10):
            sink(_ev(i))
        t0 = time.monotonic()
        sink.close()
        assert time.monotonic() - t0 < 1.5
        assert sink.overflow == 10 and sink.stats()["undelivered_at_exit"] + sink.stats()["failed"] == 10
    finally:
        srv.shutdown()
        srv.server_close()
