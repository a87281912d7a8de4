"""Fleet outputs of a real run: a real Prometheus server (Debian's `prometheus`) scrapes
--metrics-address; an OTLP/HTTP receiver decodes every event of a run; --format ocsf validates."""

from __future__ import annotations

import collections
import json
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))
from otlpreceiver import Receiver  # noqa: E402

BT = [sys.executable, "-m", "bee_trace.cli"]


def _free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _wait(pred, timeout: float, step: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = pred()
        if got:
            return got
        time.sleep(step)
    return None


class Run:
    """`bee-trace run` as a subprocess, ready once probes are attached; stop() = SIGINT."""

    def __init__(self, tmp: Path, *args: str) -> None:
        self.ready = tmp / "ready"
        self.proc = subprocess.Popen(BT + ["run", "--ready-file", str(self.ready), *args], cwd=tmp,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if not _wait(lambda: self.ready.exists() or self.proc.poll() is not None, 60) \
                or self.proc.poll() is not None:
            raise AssertionError(f"monitor did not start: {self.proc.communicate()[1]}")

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        _, err = self.proc.communicate(timeout=60)
        assert self.proc.returncode == 0, err
        return err


def _key(tmp: Path) -> Path:
    key = tmp / ".ssh" / "id_rsa"
    key.parent.mkdir()
    key.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nxyz\n")
    return key


@pytest.fixture
def prometheus(tmp_path):
    binary = shutil.which("prometheus")
    assert binary, "Debian's prometheus package is needed (make test installs it)"
    started = []

    def start(target_port: int) -> str:
        port = _free_port()
        cfg = tmp_path / "prometheus.yml"
        cfg.write_text("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                       "scrape_configs:\n  - job_name: bee-trace\n    static_configs:\n"
                       f"      - targets: ['127.0.0.1:{target_port}']\n")
        p = subprocess.Popen([binary, f"--config.file={cfg}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                              f"--web.listen-address=127.0.0.1:{port}"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        started.append(p)
        url = f"http://127.0.0.1:{port}"

        def up():
            try:
                return urllib.request.urlopen(f"{url}/-/ready", timeout=1).status == 200
            except OSError:
                return False
        assert _wait(up, 30, 0.1), "prometheus did not become ready"
        return url

    yield start
    for p in started:
        p.terminate()
        p.wait(timeout=20)


def _query(url: str, q: str) -> list[dict]:
    with urllib.request.urlopen(f"{url}/api/v1/query?{urllib.parse.urlencode({'query': q})}", timeout=5) as r:
        body = json.load(r)
    assert body["status"] == "success", body
    return body["data"]["result"]


def test_prometheus_scrapes_metrics(tmp_path, prometheus):
    port = _free_port()
    run = Run(tmp_path, "--probe-type", "file_monitor", "--metrics-address", f"127.0.0.1:{port}",
              "--format", "jsonl", "--output", str(tmp_path / "events.jsonl"))
    try:
        url = prometheus(port)
        key = _key(tmp_path)
        for _ in range(3):
            subprocess.run(["cat", str(key)], stdout=subprocess.DEVNULL, check=True)
        q = 'bee_trace_events_total{kind="file",rule="file.ssh_key.read",severity="critical"}'
        got = _wait(lambda: [r for r in _query(url, q) if float(r["value"][1]) >= 3], 30, 0.5)
        assert got and float(got[0]["value"][1]) == 3, _query(url, q)
        assert got[0]["metric"]["job"] == "bee-trace"
        drops = _query(url, "bee_trace_dropped_total")
        assert {(r["metric"]["cause"], r["metric"]["lane"]) for r in drops} >= {
            ("ring_full", "critical"), ("ring_full", "bulk"), ("sink_overflow", "output")}
        assert all(float(r["value"][1]) == 0 for r in drops if r["metric"]["cause"] == "ring_full")
        verdict = _query(url, "bee_trace_verdict == 1")
        assert [r["metric"]["state"] for r in verdict] == ["complete"]
        assert float(_query(url, "bee_trace_opens_inspected_total")[0]["value"][1]) > 0
        assert float(_query(url, "process_resident_memory_bytes")[0]["value"][1]) > 10e6
        assert _query(url, "process_cpu_seconds_total")
        assert {r["metric"]["lane"] for r in _query(url, "bee_trace_ring_fill_ratio")} == {"critical", "bulk"}
        assert {r["metric"]["lane"] for r in _query(url, "bee_trace_spilled_total")} == {"critical", "bulk"}
        assert _query(url, "bee_trace_folded_total") and _query(url, "bee_trace_build_info")
    finally:
        err = run.stop()
    assert f"metrics at http://127.0.0.1:{port}/metrics" in err


def test_otlp_receiver_gets_every_event_of_a_run(tmp_path):
    receiver = Receiver()
    out = tmp_path / "events.jsonl"
    try:
        run = Run(tmp_path, "--probe-type", "all", "--verbose", "--otlp-endpoint", receiver.endpoint,
                  "--format", "jsonl", "--output", str(out))
        key = _key(tmp_path)
        for _ in range(20):
            subprocess.run(["cat", str(key)], stdout=subprocess.DEVNULL, check=True)
        subprocess.run(["sh", "-c", "for i in 1 2 3 4 5; do true; done"], check=True)
        _wait(lambda: out.read_text().count(str(key)) >= 20, 10)
        run.stop()
        lines = [json.loads(x) for x in out.read_text().splitlines()]
        summary = lines[-1]
        events = lines[:-1]
        assert summary["kind"] == "summary" and len(events) >= 40
        want = collections.Counter((e["lane"], e["seq"], e["kind"], e["pid"], e["ts_ns"] // 1000) for e in events)
        got = collections.Counter((r["attributes"]["lane"], r["attributes"]["seq"], r["attributes"]["kind"],
                                   r["attributes"]["pid"], r["time_unix_nano"] // 1000)
                                  for r in receiver.records)
        assert got == want
        keyed = [r for r in receiver.records if r["attributes"].get("path") == str(key)
                 and r["attributes"]["comm"] == "cat"]
        assert len(keyed) == 20 and keyed[0]["attributes"]["access"] == "read"
        assert keyed[0]["severity_text"] == "critical"
        otlp = summary["loss"]["otlp"]
        assert otlp["delivered"] == len(events) and otlp["failed"] == 0
        assert summary["loss"]["dropped"]["sink_overflow"] == 0 and summary["verdict"] == "complete"
    finally:
        receiver.close()


def test_otlp_collector_down_degrades_the_verdict(tmp_path):
    out = tmp_path / "events.jsonl"
    run = Run(tmp_path, "--probe-type", "file_monitor", "--otlp-endpoint",
              f"http://127.0.0.1:{_free_port()}/v1/logs", "--format", "jsonl", "--output", str(out))
    key = _key(tmp_path)
    subprocess.run(["cat", str(key)], stdout=subprocess.DEVNULL, check=True)
    _wait(lambda: str(key) in out.read_text(), 10)
    t0 = time.monotonic()
    run.stop()
    assert time.monotonic() - t0 < 20
    summary = json.loads(out.read_text().splitlines()[-1])
    assert summary["loss"]["otlp"]["delivered"] == 0
    assert summary["loss"]["dropped"]["sink_overflow"] == summary["loss"]["otlp"]["submitted"] >= 1
    assert summary["verdict"] == "degraded"


def test_format_ocsf_run_validates(tmp_path):
    from ocsf.v1_5_0.events import DetectionFinding, FileActivity, ProcessActivity
    out = tmp_path / "events.ocsf.jsonl"
    run = Run(tmp_path, "--probe-type", "file_monitor", "--verbose", "--format", "ocsf",
              "--output", str(out))
    key = _key(tmp_path)
    subprocess.run(["cat", str(key)], stdout=subprocess.DEVNULL, check=True)
    _wait(lambda: out.exists() and str(key) in out.read_text(), 10)
    run.stop()
    docs = [json.loads(x) for x in out.read_text().splitlines()]
    classes = {1001: FileActivity, 1007: ProcessActivity, 2004: DetectionFinding}
    for d in docs:
        classes[d["class_uid"]].model_validate(d)
    reads = [d for d in docs if d["class_uid"] == 1001 and d["file"]["path"] == str(key)
             and d["actor"]["process"]["name"] == "cat"]
    assert len(reads) == 1 and reads[0]["activity_name"] == "Read"
    findings = [d for d in docs if d["class_uid"] == 2004 and d["evidences"][0].get("file", {}).get("path") == str(key)
                and d["actor"]["process"]["name"] == "cat"]
    assert len(findings) == 1 and findings[0]["severity_id"] == 5
    assert any(d["class_uid"] == 1007 and d["activity_name"] == "Launch" for d in docs)
