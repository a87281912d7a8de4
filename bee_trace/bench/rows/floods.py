"""Row 10: issue 9's critical floods, as an attacker inside the job would send them, default
policy, all probes: one process opening one watched .pem 300,000 times, and 20,000 creates of
distinct watched files followed by one id_ed25519 read by another process. Offered, delivered
(sum of `count` in the output), folded, spilled (`late: true`), lost by cause, and whether the
key read that follows arrived."""

from __future__ import annotations

import json
import subprocess
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ...escape import markdown as md
from ..harness import ALL_PROBES, Bench, loss_by_cause
from ..runner import Agent, run_loadgen
from ..stats import fmt_num, text_table, yes
from .distinct import scratch_dir


def flood_counts(events: Iterable[dict[str, Any]], summary: dict[str, Any], offered: int,
                 match: Any, key_path: str | None = None) -> dict[str, Any]:
    """Accounting of one flood from the output's events: delivered = sum of `count` (1 when
    absent) over the flood's events (`match(event)`), spilled = the part of it that came late
    from the spill map; folded and lost from the summary; the key read delivered or not."""
    delivered = spilled = records = 0
    paths: set[str] = set()
    key = False
    for e in events:
        if e.get("kind") != "file":
            continue
        if key_path is not None and e.get("path") == key_path:
            key = True
        if not match(e):
            continue
        n = int(e.get("count", 1))
        records += 1
        delivered += n
        paths.add(str(e.get("path")))
        if e.get("late"):
            spilled += n
    crit = (summary.get("lanes") or {}).get("critical", {})
    lost = loss_by_cause(summary)
    return {"offered": offered, "delivered": delivered, "records": records,
            "distinct_paths": len(paths), "folded": int(crit.get("folded", 0)),
            "spilled": spilled, "spilled_kernel": int(crit.get("spilled", 0)),
            "lost": sum(lost.values()), "lost_by_cause": lost,
            "exact": delivered == offered, "key_read_delivered": key if key_path else None,
            "verdict": summary.get("verdict")}


def _run(b: Bench, sink: Path, act: Any) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    spec = {"patterns": "default", "probes": ALL_PROBES, "sink": str(sink), "latency_kinds": []}
    with Agent(spec) as agent:
        act()
        time.sleep(1.0)        # the tail (fold windows, spill map) reaches the reader
        res = agent.stop()
    events = [json.loads(line) for line in sink.read_text(errors="replace").splitlines() if line]
    return events, res.get("summary", {})


def measure(b: Bench) -> dict[str, Any]:
    n_same, n_distinct = b.p.same_file_opens, b.p.distinct_file_opens
    pem = b.secret_dir / "flood.pem"
    pem.write_text("pem\n")
    b.log(f"floods: {n_same:,} opens of one .pem")
    gen: dict[str, float] = {}

    def same() -> None:
        gen.update(run_loadgen(b.loadgen, "nopen", pem, n_same))

    events, summ = _run(b, b.tmp / "flood-same.jsonl", same)
    one = flood_counts(events, summ, int(gen.get("ops", 0)),
                       lambda e: e.get("path") == str(pem) and e.get("comm") == "loadgen")
    one["seconds"] = gen.get("seconds")

    home = b.tmp / "home"
    (home / ".ssh").mkdir(parents=True, exist_ok=True)
    key = home / ".ssh" / "id_ed25519"
    key.write_text("not a real key\n")
    b.log(f"floods: {n_distinct:,} distinct watched files, then one id_ed25519 read")
    with tempfile.TemporaryDirectory(prefix="bee-floods-", dir=scratch_dir()) as d:
        def distinct() -> None:
            gen.clear()
            gen.update(run_loadgen(b.loadgen, "dopen", d, n_distinct))
            subprocess.run(["cat", str(key)], check=True, stdout=subprocess.DEVNULL)

        events, summ = _run(b, b.tmp / "flood-distinct.jsonl", distinct)
        many = flood_counts(events, summ, int(gen.get("ops", 0)),
                            lambda e: str(e.get("path", "")).startswith(d + "/"), str(key))
    many["seconds"] = gen.get("seconds")
    return {"same_file": {**one, "path": str(pem)}, "distinct_files": {**many, "key": str(key)}}


def _causes(x: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v:,}" for k, v in x["lost_by_cause"].items()) or "none"


def render(r: dict[str, Any]) -> list[str]:
    a, c = r["same_file"], r["distinct_files"]

    def rate(x: dict[str, Any]) -> str:
        return f"{x['offered'] / x['seconds']:,.0f}/s" if x.get("seconds") else "—"

    t = [
        ["offered (opens)", fmt_num(a["offered"]), fmt_num(c["offered"])],
        ["offered at", rate(a), rate(c)],
        ["delivered (sum of count)", fmt_num(a["delivered"]), fmt_num(c["delivered"])],
        ["records in the output", fmt_num(a["records"]), fmt_num(c["records"])],
        ["distinct paths delivered", fmt_num(a["distinct_paths"]), fmt_num(c["distinct_paths"])],
        ["folded in the kernel", fmt_num(a["folded"]), fmt_num(c["folded"])],
        ["spilled (late: true)", fmt_num(a["spilled"]), fmt_num(c["spilled"])],
        ["lost (by cause)", f"{fmt_num(a['lost'])} ({_causes(a)})", f"{fmt_num(c['lost'])} ({_causes(c)})"],
        ["delivered == offered", yes(a["exact"]), yes(c["exact"])],
        ["following id_ed25519 read delivered", "—", yes(bool(c["key_read_delivered"]))],
        ["verdict", str(a["verdict"]), str(c["verdict"])],
    ]
    return [text_table(
        ["critical flood (issue 9)", f"one .pem × {a['offered']:,}",
         f"{c['offered']:,} distinct watched files + key read"], t,
        title=f"10. critical floods by one process (all probes, default policy; {md(a['path'])}; "
              "distinct files on tmpfs)")]
