"""The report people read: verdict and reasons first, findings as a process tree, destinations,
coverage and loss; long runs folded to the top N with "and M more"."""

from __future__ import annotations

import re

from bee_trace.config import default_config
from bee_trace.mdreport import lineage, verdict_reasons
from bee_trace.report import Report


def _file(pid, comm, path, anc, pids, sev="critical", rule="file.ssh_key.read", **kw):
    ev = {"ts": "2026-12-02T05:00:00+00:00", "kind": "file", "severity": sev, "rule": rule,
          "pid": pid, "ppid": pids[-2] if len(pids) > 1 else 1, "comm": comm, "exe": f"/usr/bin/{comm}",
          "cmdline": f"{comm} {path}", "ancestry": anc, "ancestry_pids": pids, "path": path,
          "access": "read"}
    ev.update(kw)
    return ev


def _report(events, loss=None, verdict="complete"):
    r = Report(default_config(), {"start": "2026-12-02T05:00:00+00:00", "host": "runner"})
    for e in events:
        r.add(e)
    r.finish({"end": "2026-12-02T05:01:00+00:00"}, loss or {}, verdict)
    return r


def test_verdict_and_reasons_lead():
    loss = {"dropped": {"ring_full": 12, "sampled": 3, "sink_overflow": 0},
            "lanes": {"critical": {"ring_full": 0}, "bulk": {"ring_full": 12}}}
    md = _report([], loss, "degraded").to_markdown()
    head = md.split("### Findings by process")[0]
    assert "Verdict: degraded" in head.splitlines()[2]
    assert "12 records lost because a ring buffer was full (bulk 12)" in head
    assert "reduced by policy, counted, not lost: 3 sampled" in head
    assert md.index("### Findings by process") < md.index("### Coverage and loss")


def test_interrupted_reasons():
    reasons = verdict_reasons("interrupted", {}, [])
    assert any("stopped before the job ended" in r for r in reasons)
    assert any("no summary record" in r for r in reasons)


def test_tree_three_deep_with_pids_and_runner_trimmed():
    anc = ["systemd", "Runner.Listener", "Runner.Worker", "bash", "sh", "sh", "cat"]
    pids = [1, 10, 20, 30, 40, 41, 42]
    md = _report([_file(42, "cat", "/home/runner/.ssh/id_rsa", anc, pids)]).to_markdown()
    tree = md.split("### Findings by process\n\n")[1].split("\n\n")[0].splitlines()
    # The chain without forks folds into one line down to the offender; runner processes dropped.
    assert tree[0] == ("- 🔴 **bash (pid 30) → sh (pid 40) → sh (pid 41) → cat (pid 42)** — "
                       "exe /usr/bin/cat; cmdline cat /home/runner/.ssh/id\\_rsa")
    assert tree[1].startswith("  - critical · file.ssh\\_key.read · read /home/runner/.ssh/id\\_rsa")
    assert "Runner.Worker" not in md.split("### Network destinations")[0].split("### Coverage")[0]


def test_tree_forks_where_processes_differ():
    evs = [_file(42, "cat", "/k1/id_rsa", ["bash", "sh", "cat"], [30, 40, 42]),
           _file(43, "cp", "/k2/.env", ["bash", "sh", "cp"], [30, 40, 43], sev="high",
                 rule="file.credential.read"),
           _file(50, "python3", "/k3/id_ed25519", ["bash", "python3"], [30, 50])]
    tree = _report(evs).to_markdown().split("### Findings by process\n\n")[1].split("\n\n")[0]
    lines = tree.splitlines()
    assert lines[0] == "- bash (pid 30)"
    assert lines[1] == "  - sh (pid 40)"
    assert lines[2].startswith("    - 🔴 **cat (pid 42)**")
    assert any(line.startswith("    - 🟠 **cp (pid 43)**") for line in lines)
    assert any(line.startswith("  - 🔴 **python3 (pid 50)**") for line in lines)


def test_same_name_different_pids_are_different_nodes():
    evs = [_file(42, "cat", "/a/id_rsa", ["sh", "cat"], [40, 42]),
           _file(52, "cat", "/b/id_rsa", ["sh", "cat"], [50, 52])]
    tree = _report(evs).to_markdown().split("### Findings by process\n\n")[1].split("\n\n")[0]
    assert "sh (pid 40) → cat (pid 42)" in tree and "sh (pid 50) → cat (pid 52)" in tree


def test_long_run_top_n_and_more():
    evs = [_file(1000 + i, f"p{i}", f"/k/{i}/id_rsa", ["bash", f"p{i}"], [30, 1000 + i]) for i in range(40)]
    evs += [_file(77, "cat", f"/many/{i}/id_rsa", ["bash", "cat"], [30, 77], count=5) for i in range(15)]
    dests = [{"ts": "t", "kind": "network", "severity": "low", "rule": "network.connect", "pid": 5,
              "comm": "curl", "daddr": f"10.0.0.{i}", "dport": 443, "protocol": "tcp",
              "action": "allowed", "domain": f"h{i}.example", "count": 2} for i in range(30)]
    md = _report(evs + dests).to_markdown()
    assert "… and 5 more findings (25 events)" in md          # 15 findings of cat, 10 listed
    assert "more processes with findings" in md
    assert "… and 10 more destinations (20 connections)." in md
    assert len(re.findall(r"^\| h\d+\.example \|", md, re.M)) == 20


def test_hostile_names_escaped_in_tree():
    evs = [_file(42, "x\n- fake", "/t/<img src=x>/id_rsa", ["b`ash|", "x\n- fake"], [30, 42])]
    md = _report(evs).to_markdown()
    assert "<img" not in md and "\n- fake" not in md
    assert "b\\`ash\\|" in md


def test_lineage_without_pids_appends_the_process():
    assert lineage({"ancestry": ["bash", "python3"], "comm": "cat", "pid": 9}) == [
        ("bash", None), ("python3", None), ("cat", 9)]
    assert lineage({"ancestry": ["bash", "cat"], "ancestry_pids": [1, 9], "comm": "cat", "pid": 9}) == [
        ("bash", 1), ("cat", 9)]


def test_coverage_line_names_probes_not_attached():
    r = _report([])
    r.metadata["coverage"] = {"tp/syscalls/sys_exit_openat": "attached", "cgroup/connect4": "not-needed",
                              "tp/io_uring/io_uring_submit_req": "missing-tracepoint"}
    md = r.to_markdown().split("### Coverage and loss")[1]
    assert "Probes: 1 attached; **not attached**: tp/io\\_uring/io\\_uring\\_submit\\_req (missing-tracepoint)." in md
    r.metadata["coverage"] = {"tp/syscalls/sys_exit_openat": "attached"}
    assert "every probe this run needs is attached" in r.to_markdown()
