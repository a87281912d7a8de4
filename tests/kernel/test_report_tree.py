"""The report shows a finding three processes deep as its process tree, with real pids: the test
(the job's shell here) → sh → sh → cat reading a key."""

from __future__ import annotations

import os
import subprocess

from bee_trace.config import default_config
from bee_trace.report import Report


def test_finding_three_processes_deep_shows_the_tree(monitor, tmp_path):
    key = tmp_path / ".ssh" / "id_rsa"
    key.parent.mkdir()
    key.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nnot-shown\n")
    m = monitor({"file_monitor"})
    # `; true` keeps each shell alive (dash execs a lone last command in place).
    outer = subprocess.Popen(["sh", "-c", f'sh -c "cat {key} >/dev/null; true"; true'])
    assert outer.wait(timeout=10) == 0
    evs = m.wait_for(lambda e: e["kind"] == "file" and e["path"] == str(key) and e["comm"] == "cat")
    assert len(evs) == 1
    ev = evs[0]
    assert ev["ancestry_pids"][-4:] == [os.getpid(), outer.pid, ev["ppid"], ev["pid"]]
    assert ev["ancestry"][-3:] == ["sh", "sh", "cat"]
    report = Report(default_config(), {"host": "test"})
    for e in m.events:
        report.add(e)
    report.finish({}, m.pipeline.loss_summary(), "complete")
    md = report.to_markdown()
    assert md.index("Verdict: complete") < md.index("### Findings by process") < md.index("### Coverage and loss")
    tree = md.split("### Findings by process\n\n")[1].split("\n\n")[0].splitlines()
    line = next(x for x in tree if f"cat (pid {ev['pid']})" in x)
    assert f"(pid {os.getpid()}) → sh (pid {outer.pid}) → sh (pid {ev['ppid']}) → cat (pid {ev['pid']})**" in line
    finding = tree[tree.index(line) + 1]
    assert "critical · file.ssh\\_key.read · read " in finding and "id\\_rsa" in finding
    assert "not-shown" not in md
