"""bee-trace command line: run (default), check, report, config generate|validate, bench."""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .event import SEVERITIES
from .records import PROBE_TYPES

if TYPE_CHECKING:
    from .loss import LossSummary

EXIT_SETUP = 2
SUBCOMMANDS = ("run", "check", "report", "config", "bench", "policy", "unblock")
PROBE_CHOICES = (*PROBE_TYPES, "all")


def _fail(msg: str, code: int = EXIT_SETUP) -> int:
    print(f"bee-trace: {msg}", file=sys.stderr)
    return code


def _run_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--probe-type", choices=PROBE_CHOICES, default="all",
                   help="what to monitor (default: all)")
    p.add_argument("--duration", type=float, help="stop after this many seconds (default: until Ctrl+C)")
    p.add_argument("--command", help="only events whose process name contains this text")
    p.add_argument("--verbose", "-v", action="store_true",
                   help="show UID, loopback traffic and process lifecycle events")
    p.add_argument("--config", help="policy file (default: .github/security.yml if present)")
    p.add_argument("--output", "-o", help="write the event stream / report here")
    p.add_argument("--format", choices=("table", "jsonl", "json", "markdown", "csv", "ocsf"), default="table")
    p.add_argument("--filter-severity", choices=SEVERITIES, default="low", help="minimum severity shown")
    p.add_argument("--no-header", action="store_true", help="no table header")
    p.add_argument("--timestamp-format", choices=("iso8601", "unix", "relative"), default="iso8601")
    p.add_argument("--fail-on", choices=SEVERITIES + ("none",),
                   help="exit 1 when a finding of this severity or above occurred")
    p.add_argument("--ready-file", help="create this file once the probes are attached")
    p.add_argument("--profile", choices=("max-coverage", "balanced", "max-performance"),
                   help="coverage/cost trade-off (default: performance.profile of the policy)")
    from .fleet import add_run_args
    add_run_args(p)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bee-trace", description="eBPF runtime security monitor")
    sub = parser.add_subparsers(dest="cmd")
    _run_parser(sub.add_parser("run", help="monitor (the default command)"))
    chk = sub.add_parser("check", help="what this machine supports; non-zero if monitoring cannot work")
    chk.add_argument("--profile", choices=("max-coverage", "balanced", "max-performance"),
                     help="report the coverage a run with this profile would have")
    rp = sub.add_parser("report", help="rebuild a report from a saved JSON Lines stream")
    rp.add_argument("events", help="JSON Lines file written by `run --format jsonl`")
    rp.add_argument("--format", choices=("markdown", "json", "csv"), default="markdown")
    rp.add_argument("--output", "-o")
    rp.add_argument("--config")
    rp.add_argument("--fail-on", choices=SEVERITIES + ("none", "new-destination"),
                    help="exit 1 on an event at/above a severity, or on a destination the "
                         "--baseline policy does not allow")
    rp.add_argument("--baseline", metavar="POLICY",
                    help="list destinations this network policy does not allow (drift)")
    pp = sub.add_parser("policy", help="egress allowlists: learn one from an audit run")
    psub = pp.add_subparsers(dest="policy_cmd", required=True)
    lp = psub.add_parser("learn", help="write the network policy an audit run's events need")
    lp.add_argument("events", help="JSON Lines file written by `run --format jsonl`")
    lp.add_argument("--output", "-o", metavar="POLICY")
    sub.add_parser("unblock", help="remove the egress enforcement network.fail_closed left pinned")
    cp = sub.add_parser("config", help="generate or validate a policy file")
    csub = cp.add_subparsers(dest="config_cmd", required=True)
    gp = csub.add_parser("generate", help="print the commented default policy")
    gp.add_argument("--output", "-o")
    vp = csub.add_parser("validate", help="check a policy file")
    vp.add_argument("path")
    sub.add_parser("bench", help="benchmark (see BENCHMARKS.md)", add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    # The original CLI had no subcommand: `bee-trace --probe-type ...` means run.
    if not args_list or args_list[0] not in SUBCOMMANDS + ("-h", "--help"):
        args_list.insert(0, "run")
    if args_list[0] == "bench":
        from .bench import main as bench_main
        return bench_main(args_list[1:])
    args = build_parser().parse_args(args_list)
    try:
        if args.cmd == "run":
            return cmd_run(args)
        if args.cmd == "check":
            from .check import run_check
            return run_check(args.profile)
        if args.cmd == "report":
            return cmd_report(args)
        if args.cmd == "config":
            return cmd_config(args)
        if args.cmd == "policy":
            return cmd_policy(args)
        if args.cmd == "unblock":
            return cmd_unblock()
    except ImportError as e:
        return _fail(str(e))
    except KeyboardInterrupt:
        return 130
    return 0


def _load_config(path: str | None) -> Any:
    from .config import load_config
    return load_config(path)


def cmd_config(args: argparse.Namespace) -> int:
    from .config import ConfigError, generate_default_config
    if args.config_cmd == "generate":
        text = generate_default_config()
        if args.output:
            with open(args.output, "w", encoding="utf-8") as f:
                f.write(text)
        else:
            sys.stdout.write(text)
        return 0
    try:
        _load_config(args.path)
    except ConfigError as e:
        return _fail(str(e))
    print(f"{args.path}: valid")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from .config import ConfigError
    from .github import fail_on_exit_code
    from .report import ReportError, rebuild_report
    if args.fail_on == "new-destination" and not args.baseline:
        return _fail("--fail-on new-destination needs --baseline POLICY")
    try:
        cfg = _load_config(args.config)
        report = rebuild_report(args.events, cfg)
        drift = _drift(args.events, args.baseline) if args.baseline else None
    except (ConfigError, ReportError) as e:
        return _fail(str(e))
    except OSError as e:
        return _fail(f"{e.filename or args.events}: {e.strerror or e}")
    text = {"markdown": report.to_markdown, "json": report.to_json, "csv": report.to_csv}[args.format]()
    if drift is not None:
        from .egress.learn import drift_text
        text = drift_text(text, args.format, drift, args.baseline)
    _write_text(args.output, text)
    print(f"bee-trace: verdict: {report.verdict_text()}", file=sys.stderr)
    _github_finish(report, args.output)
    if args.fail_on == "new-destination":
        return 1 if drift else 0
    return fail_on_exit_code(report, args.fail_on)


def _drift(events: str, baseline: str) -> list[dict]:
    from .egress.learn import new_destinations
    from .report import load_events
    return new_destinations(load_events(events), _load_config(baseline).network)


def cmd_unblock() -> int:
    from .egress.pins import PIN_DIR, unpin_all
    if os.geteuid() != 0:
        return _fail("must run as root to remove pinned BPF links: run it with sudo")
    try:
        n = unpin_all()
    except OSError as e:
        return _fail(f"{PIN_DIR}: {e.strerror or e}")
    print(f"bee-trace: removed {n} pinned egress program{'s' if n != 1 else ''}", file=sys.stderr)
    return 0


def cmd_policy(args: argparse.Namespace) -> int:
    from .egress.learn import learn, to_yaml
    from .report import ReportError, load_events
    try:
        text = to_yaml(learn(load_events(args.events)), args.events)
    except ReportError as e:
        return _fail(str(e))
    except OSError as e:
        return _fail(f"{args.events}: {e.strerror or e}")
    _write_text(args.output, text)
    return 0


def _write_text(path: str | None, text: str) -> None:
    if path:
        with open(path, "w", encoding="utf-8", errors="backslashreplace") as f:
            f.write(text)
    else:
        sys.stdout.write(text)


def _github_finish(report: Any, report_path: str | None) -> None:
    from . import github
    if not github.in_github_actions():
        return
    for line in github.annotations(report.sorted_findings()):
        print(line)
    github.write_step_summary(report.to_markdown())
    github.write_outputs(report_path or "", report.total, report.count_at_least("high"))


def _probes(probe_type: str) -> set[str]:
    if probe_type == "all":
        return set(PROBE_TYPES)
    return {probe_type}


class _Stop:
    """SIGINT/SIGTERM end the run cleanly (final drain, summary, report)."""

    def __init__(self) -> None:
        self.signal: int | None = None
        signal.signal(signal.SIGINT, self._handler)
        signal.signal(signal.SIGTERM, self._handler)

    def _handler(self, signum: int, frame: object) -> None:
        self.signal = signum


def cmd_run(args: argparse.Namespace) -> int:
    from .config import ConfigError
    from .github import fail_on_exit_code
    from .kernel import SetupError
    from .pipeline import Pipeline, PipelineOptions
    from .report import Report
    from .sinks.chain import build_chain
    from .sinks.failsafe import EXIT_OUTPUT
    from .sinks.jsonl import to_json_line
    from .verdict import STALL_BOUND_S, decide

    if os.geteuid() != 0:
        return _fail("must run as root (BPF needs CAP_BPF and CAP_PERFMON): run it with sudo")
    try:
        cfg = _load_config(args.config)
    except ConfigError as e:
        return _fail(str(e))

    probes = _probes(args.probe_type)
    start_ns = time.time_ns()
    report = Report(cfg, {
        "start": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "start_ns": start_ns,
        "host": socket.gethostname(), "probe_types": sorted(probes),
        "command_filter": args.command,
    })
    try:
        out_file = open(args.output, "w", encoding="utf-8") if args.output else None
    except OSError as e:
        return _fail(f"--output {args.output}: {e.strerror or e}")
    chain = build_chain(cfg, args.format, out_file, sys.stdout, report, verbose=args.verbose,
                        header=not args.no_header, timestamp_format=args.timestamp_format,
                        start_ns=start_ns)
    sinks = chain.sinks
    from .fleet import FleetOutputs
    try:
        fleet = FleetOutputs.start(args, cfg, chain, out_file, args.verbose,
                                   _build_info() if args.metrics_address else {})
    except (ValueError, OSError) as e:
        return _fail(str(e))

    pipeline = Pipeline(PipelineOptions(probes=probes, config=cfg, command=args.command,
                                        min_severity=args.filter_severity, profile=args.profile,
                                        stall_bound_s=STALL_BOUND_S), sinks)
    stop = _Stop()
    try:
        pipeline.start()
    except SetupError as e:
        fleet.close()
        return _fail(str(e))
    assert pipeline.rings is not None
    # A signal ends the idle wait at once (the stop flag is seen now, not at the next tick).
    signal.set_wakeup_fd(pipeline.rings.wake_fd(), warn_on_full_buffer=False)
    if args.ready_file:
        open(args.ready_file, "w").close()
    failed = [s for s in pipeline.kernel.coverage if s.state.startswith("failed")]
    report.metadata["coverage"] = {s.section: s.state for s in pipeline.kernel.coverage}
    for s in failed:
        print(f"bee-trace: warning: {s.section} not attached ({s.state})", file=sys.stderr)
    deadline = time.monotonic() + args.duration if args.duration else None
    next_status = time.monotonic() + STATUS_INTERVAL_S
    try:
        while stop.signal is None and (deadline is None or time.monotonic() < deadline) \
                and not chain.health.reader_closed:
            timeout = None
            if deadline is not None:
                timeout = max(0.0, min(pipeline.poll_timeout(), deadline - time.monotonic()))
            pipeline.step(timeout)
            fleet.tick(pipeline)
            if args.verbose and time.monotonic() >= next_status:
                next_status = time.monotonic() + STATUS_INTERVAL_S
                print(status_line(pipeline.loss_summary()), file=sys.stderr)
    finally:
        signal.set_wakeup_fd(-1)    # before stop() closes it
        loss = pipeline.stop()
        chain.close()
        loss = fleet.finish(loss)
    interrupted = stop.signal is not None and deadline is not None
    final = decide(loss, tamper=loss.tamper, stalled_ms=loss.stalled_ms,
                   output_failures=[f.as_dict() for f in chain.health.failed],
                   interrupted=f"{signal.Signals(stop.signal).name} before --duration ended"
                   if interrupted and stop.signal else None)
    loss.verdict, loss.verdict_reasons = final.state, final.reasons
    end_ns = time.time_ns()
    report.finish({"end": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "end_ns": end_ns,
                   "duration_s": round((end_ns - start_ns) / 1e9, 3)}, loss, final.state,
                  final.reasons)
    fleet.report_end(loss, final.state)
    fleet.close()
    jsonl = chain.jsonl_stream
    if jsonl is not None:
        chain.write_final(jsonl, lambda: (jsonl.write(to_json_line(report.summary_record())),
                                          jsonl.flush()))
    if args.format in ("json", "markdown", "csv"):
        text = {"markdown": report.to_markdown, "json": report.to_json, "csv": report.to_csv}[args.format]()
        target = out_file or sys.stdout
        chain.write_final(target, lambda: (target.write(text), target.flush()))
    if out_file:
        chain.write_final(out_file, out_file.close)
        if not out_file.closed:  # the buffered tail could not be written: drop it
            try:
                out_file.close()
            except OSError:
                pass
    if chain.health.reader_closed:
        _quiet_stdout()
    print(summary_line(report, loss, final.state, final.reasons), file=sys.stderr)
    _github_finish(report, args.output)
    if chain.health.failed:
        return EXIT_OUTPUT
    return fail_on_exit_code(report, args.fail_on)


def _quiet_stdout() -> None:
    """Our stdout's reader has gone: later writes (and the interpreter's final flush) go
    nowhere instead of raising BrokenPipeError."""
    try:
        fd = os.open(os.devnull, os.O_WRONLY)
        os.dup2(fd, sys.stdout.fileno())
        os.close(fd)
    except (OSError, ValueError):
        pass


STATUS_INTERVAL_S = 10.0


def _build_info() -> dict[str, str]:
    import platform

    from . import __version__
    from .buildinfo import object_info
    from .kernel import OBJECT_PATH
    obj = object_info(OBJECT_PATH)
    return {"version": __version__, "object_sha256": obj.get("sha256", ""), "kernel": platform.release()}


def status_line(loss: LossSummary) -> str:
    """The live view of loss (with --verbose): what was read, dropped by cause, shed level."""
    dropped = " ".join(f"{k}={v}" for k, v in loss.dropped.counts().items() if v)
    return (f"bee-trace: status: {loss.output} events shown, {loss.received} records read, "
            f"dropped: {dropped or 'none'}, verdict so far: {loss.verdict}")


def summary_line(report: Any, loss: LossSummary, verdict: str,
                 reasons: list[dict[str, Any]] | None = None) -> str:
    """The stderr line; the verdict comes last, after its reasons."""
    from .verdict import reason_text
    dropped = " ".join(f"{k}={v}" for k, v in loss.dropped.counts().items())
    high = report.count_at_least("high")
    why = f"reasons: {', '.join(reason_text(r) for r in reasons)}; " if reasons else ""
    return (f"bee-trace: {report.total} events ({high} high or critical), "
            f"{loss.inspected} opens inspected, {loss.received} records read; "
            f"dropped: {dropped}; {why}verdict: {verdict}")


if __name__ == "__main__":
    sys.exit(main())
