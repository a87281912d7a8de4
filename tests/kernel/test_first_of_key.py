"""First-of-key on the bulk lane (issue 9.4): the first event of each new (process, destination)
passes sampling, rate limits and shedding, so a flood cannot hide a new destination; when the
ring cannot take one, the loss is counted (first_lost) and the verdict says degraded."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys

from bee_trace.config import default_config

BASE_PORT = 40000
N = 5000


def _config(eps: int = 0, sampling_rate: float = 1.0):
    cfg = default_config()
    perf = dataclasses.replace(cfg.performance, max_events_per_second=eps, sampling_rate=sampling_rate,
                               aggregation_window_ms=0)
    return dataclasses.replace(cfg, performance=perf)


def _flood_then_new(repeat: int = 0) -> str:
    """N connects to distinct loopback ports, `repeat` more to one old port, then one to a new
    destination (127.0.0.3:9)."""
    return ("import socket\n"
            f"for p in range({BASE_PORT}, {BASE_PORT + N}):\n"
            "    s = socket.socket(); s.connect_ex(('127.0.0.1', p)); s.close()\n"
            f"for _ in range({repeat}):\n"
            f"    s = socket.socket(); s.connect_ex(('127.0.0.1', {BASE_PORT})); s.close()\n"
            "s = socket.socket(); s.connect_ex(('127.0.0.3', 9)); s.close()\n")


def _run_reading(mon, code: str) -> int:
    child = subprocess.Popen([sys.executable, "-c", code])
    while child.poll() is None:
        mon.poll()
    mon.settle(0.3)
    assert child.returncode == 0
    return child.pid


def test_new_destination_after_flood_survives_a_low_rate_limit(monitor) -> None:
    mon = monitor({"network_monitor"}, config=_config(eps=5), adaptive=False)
    pid = _run_reading(mon, _flood_then_new(repeat=2000))
    mine = [e for e in mon.events if e["kind"] == "network" and e["pid"] == pid]
    new = [e for e in mine if e["daddr"] == "127.0.0.3"]
    assert len(new) == 1
    ev = new[0]
    assert (ev["dport"], ev["protocol"], ev["family"], ev["action"], ev["comm"]) == \
        (9, "tcp", "ipv4", "allowed", os.path.basename(sys.executable)[:15])
    assert ev["ppid"] > 0 and ev["lane"] == "bulk"
    # Every one of the N distinct ports was reported once, whatever the rate limit says.
    ports = [e["dport"] for e in mine if e["daddr"] == "127.0.0.1"]
    assert set(range(BASE_PORT, BASE_PORT + N)) <= set(ports)
    loss = mon.pipeline.loss_summary().to_json()
    bulk = loss["lanes"]["bulk"]
    # The evasion next to it: 2,000 repeats of an old destination are what the limit refuses —
    # policy, not loss.
    assert bulk["rate_limited"] >= 2000 - 5 * 10 and ports.count(BASE_PORT) < 100
    assert bulk["first_lost"] == 0 and bulk["ring_full"] == 0
    assert loss["verdict"] == "complete", loss["verdict_reasons"]


def test_sampling_and_shedding_never_take_a_first(monitor) -> None:
    mon = monitor({"network_monitor"}, config=_config(sampling_rate=0.01), adaptive=False)
    mon.pipeline.kernel.update_settings(shed_level=2)    # loopback is low priority: all shed
    pid = _run_reading(mon, _flood_then_new(repeat=1000))
    mine = [e for e in mon.events if e["kind"] == "network" and e["pid"] == pid]
    assert [e["dport"] for e in mine if e["daddr"] == "127.0.0.3"] == [9]
    assert len({e["dport"] for e in mine}) == N + 1
    loss = mon.pipeline.loss_summary().to_json()
    # The repeats are shed (loopback, level 2): a loss the verdict names, firsts untouched.
    assert loss["lanes"]["bulk"]["shed"] >= 1000 and loss["lanes"]["bulk"]["first_lost"] == 0
    assert loss["verdict"] == "degraded"
    assert [r["reason"] for r in loss["verdict_reasons"]] == ["shed"]


def test_first_of_key_lost_to_a_full_ring_is_counted_and_degrades(monitor) -> None:
    mon = monitor({"network_monitor"}, config=_config(eps=5), ring_bulk_bytes=4096, adaptive=False)
    # Not read during the flood: the 4 KiB ring (a dozen records) overflows with new keys.
    child = subprocess.run([sys.executable, "-c", _flood_then_new()], check=True)
    mon.settle(0.3)
    loss = mon.pipeline.stop().to_json()
    bulk = loss["lanes"]["bulk"]
    assert bulk["first_lost"] > N // 2
    assert bulk["first_lost"] <= bulk["ring_full"]
    assert bulk["attempted"] == bulk["emitted"] + bulk["ring_full"]
    assert loss["verdict"] == "degraded"
    assert {"reason": "first_lost", "lane": "bulk", "count": bulk["first_lost"]} in loss["verdict_reasons"]
    assert child.returncode == 0
