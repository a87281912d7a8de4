"""First-of-key on the bulk lane (issue 9.4): the first event of each new (process, destination)
passes sampling, rate limits and shedding, so a flood cannot hide a new destination; when the
ring cannot take one it waits in the spill map and is reported late; only past the bulk share of
that map is it lost, counted (first_lost) with verdict degraded, and its key is a first again."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

from bee_trace.config import default_config
from bee_trace.pipeline import Pipeline, PipelineOptions

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


def _net_events(events: list, pid: int) -> list:
    return [e for e in events if e["kind"] == "network" and e["pid"] == pid]


def test_first_of_key_past_a_full_ring_is_spilled_and_reported_late(monitor) -> None:
    mon = monitor({"network_monitor"}, config=_config(eps=5), ring_bulk_bytes=4096, adaptive=False)
    # Not read during the flood: the 4 KiB ring (a dozen records) overflows with new keys.
    child = subprocess.Popen([sys.executable, "-c", _flood_then_new()])
    assert child.wait() == 0
    mon.settle(0.5)
    loss = mon.pipeline.stop().to_json()
    mine = _net_events(mon.events, child.pid)
    # Every destination exactly once, the last new one too: spilled, not lost.
    assert sorted(e["dport"] for e in mine if e["daddr"] == "127.0.0.1") == list(range(BASE_PORT, BASE_PORT + N))
    (new,) = [e for e in mine if e["daddr"] == "127.0.0.3"]
    assert (new["dport"], new["action"], new["lane"], new.get("late")) == (9, "allowed", "bulk", True)
    bulk = loss["lanes"]["bulk"]
    late = [e for e in mon.events if e["kind"] == "network" and e.get("late")]
    assert bulk["spilled"] > N // 2 and bulk["spilled"] == len(late)
    assert all(e["lane"] == "bulk" and "count" not in e for e in late)
    assert bulk["first_lost"] == 0 and bulk["ring_full"] == 0
    assert bulk["attempted"] == bulk["emitted"] + bulk["spilled"]
    assert loss["uncounted_gaps"] == 0 and loss["spilled_reported"] >= len(late)
    assert loss["verdict"] == "complete", loss["verdict_reasons"]


def _small_spill_pipeline(events: list, spill_entries: int) -> Pipeline:
    """Both rings 4 KiB and a small spill map (the kernel's tiers are quarters of it)."""
    opts = PipelineOptions(probes={"network_monitor", "file_monitor"}, config=_config(eps=5),
                           ring_bulk_bytes=4096, ring_critical_bytes=4096, adaptive=False)
    pl = Pipeline(opts, sinks=[events.append])
    pl.kernel.spill_entries = spill_entries
    pl.start()
    return pl


def test_new_destinations_past_their_spill_share_are_lost_counted_and_leave_room_for_keys(tmp_path: Path) -> None:
    """The flood's first-of-key records fill only their quarter of the spill map: the rest are
    counted lost (a key lost is a first again later), and key reads that also find the
    critical ring full still spill into the room the flood could not take."""
    spill = 1024
    events: list = []
    pl = _small_spill_pipeline(events, spill)
    # After the flood the child connects again to each port it is sent (one line each).
    code = _flood_then_new() + ("import sys\nprint('flooded', flush=True)\nfor line in sys.stdin:\n"
                                "    s = socket.socket(); s.connect_ex(('127.0.0.1', int(line))); s.close()\n"
                                "    print('done', flush=True)\n")
    child = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout and child.stdin and child.stdout.readline() == "flooded\n"
        keys = []
        for i in range(40):   # more than the 4 KiB critical ring holds
            (tmp_path / f"k{i}").mkdir()
            keys.append(tmp_path / f"k{i}" / "id_rsa")
            keys[-1].write_text("k\n")
        subprocess.run(["cat", *map(str, keys)], capture_output=True, check=True)
        for _ in range(20):
            pl.step(0.05)
        mine = _net_events(events, child.pid)
        reported = {(e["daddr"], e["dport"]) for e in mine}
        lost = [p for p in range(BASE_PORT, BASE_PORT + N) if ("127.0.0.1", p) not in reported]
        loss = pl.loss_summary().to_json()
        bulk, crit = loss["lanes"]["bulk"], loss["lanes"]["critical"]
        assert bulk["spilled"] == spill // 4 == len([e for e in mine if e.get("late")])
        assert bulk["first_lost"] == bulk["ring_full"] == N + 1 - len(mine) > 0
        assert len(lost) in (bulk["first_lost"], bulk["first_lost"] - 1)   # 127.0.0.3 may be lost too
        assert bulk["attempted"] == bulk["emitted"] + bulk["spilled"] + bulk["ring_full"]
        assert loss["verdict"] == "degraded"
        assert {"reason": "first_lost", "lane": "bulk", "count": bulk["first_lost"]} in loss["verdict_reasons"]
        # The key reads: every one, those past the ring from the room the flood could not take.
        reads = [e for e in events if e["kind"] == "file" and e["comm"] == "cat"]
        assert sorted(e["path"] for e in reads) == sorted(map(str, keys))
        assert crit["spilled"] > 0 and crit["spill_full"] == 0 and crit["ring_full"] == 0
        # A lost destination's key was forgotten: the process's next connect there is a first.
        child.stdin.write(f"{lost[-1]}\n")
        child.stdin.flush()
        assert child.stdout.readline() == "done\n"
        for _ in range(10):
            pl.step(0.05)
        again = [e for e in _net_events(events, child.pid) if e["dport"] == lost[-1]]
        assert [(e["daddr"], e.get("late")) for e in again] == [("127.0.0.1", None)]
    finally:
        if child.stdin:
            child.stdin.close()
        child.wait()
        pl.stop()
