"""Process context from the lifecycle records: a process that is gone by the time its events are
decoded still gets exe, cmdline and ancestry; exec events carry the file name."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

PY = sys.executable


def test_short_lived_attacker_keeps_context(monitor, tmp_path):
    m = monitor({"memory_monitor"})
    # A copy of sleep renamed Runner.Worker (exec'd: its comm is the new name).
    exe = tmp_path / "Runner.Worker"
    shutil.copy("/usr/bin/sleep", exe)
    target = subprocess.Popen([str(exe), "60"])
    try:
        # Wait for the exec to have happened (the comm changes with it), not for a fixed time.
        comm = Path(f"/proc/{target.pid}/comm")
        deadline = time.monotonic() + 10
        while comm.read_text().strip() != "Runner.Worker" and time.monotonic() < deadline:
            time.sleep(0.005)
        attacker = (f"import os,sys; sys.stderr.write('PID=%d\\\\n' % os.getpid()); "
                    f"open('/proc/{target.pid}/maps').read()")
        p = subprocess.run(["bash", "-c", f"{PY} -c \"{attacker}\" marker-arg; true"],
                           capture_output=True, timeout=30)
        pid = int(p.stderr.split(b"PID=", 1)[1].split()[0])
        # The attacker has exited: everything below comes from the exec/fork records.
        evs = m.wait_for(lambda e: e["kind"] == "memory" and e["pid"] == pid)
        assert len(evs) == 1
        ev = evs[0]
        assert ev["technique"] == "proc_maps" and ev["target_comm"] == "Runner.Worker"
        assert ev["target_pid"] == target.pid
        assert os.path.basename(ev["exe"]).startswith("python")
        # argv head from the exec record (120 bytes: the process is gone, /proc cannot help)
        assert ev["cmdline"].startswith(PY + " -c import os,sys")
        assert ev["ancestry"][-2:] == ["bash", ev["comm"]], ev["ancestry"]
        assert ev["start_time"] and ev["cgroup_id"] and ev["ppid"]
        assert ev["severity"] == "critical"
        execs = [e for e in m.events if e["kind"] == "process" and e["pid"] == pid]
        assert execs and execs[0]["op"] == "exec"
        assert execs[0]["filename"] in (PY, os.path.realpath(PY))     # as exec'd, or the resolved exe
    finally:
        target.kill()
        target.wait()


def test_exec_event_and_cache_bounds(monitor):
    m = monitor({"network_monitor"})
    m.pipeline.ctx.procs.capacity = 64
    procs = [subprocess.Popen(["/usr/bin/true"]) for _ in range(100)]
    for p in procs:
        p.wait()
    pids = {p.pid for p in procs}
    evs = m.wait_for(lambda e: e["kind"] == "process" and e["pid"] in pids
                     and len({x["pid"] for x in m.events if x["kind"] == "process"} & pids) == 100,
                     timeout=5)
    got = {e["pid"] for e in m.events if e["kind"] == "process" and e["pid"] in pids}
    assert got == pids
    assert all(e["filename"] == "/usr/bin/true" and e["op"] == "exec" for e in evs)
    assert len(m.pipeline.ctx.procs) <= 64
    assert m.pipeline.loss_summary().process_cache_evictions > 0
