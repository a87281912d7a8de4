"""The output chain of `bee-trace run` (also what the benchmark measures): visibility filter,
bounded writer queues, the end-of-run report, outputs that fail cleanly (failsafe.py). Every
element passes runs on whole."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any

from ..config import Config
from . import Event, Run, Sink, as_sink
from .buffered import BufferedSink, Capture
from .failsafe import FailSafe, FindingsToStderr, OutputHealth, stream_name
from .jsonl import JsonLinesSink
from .table import TableSink


class Visible(Sink):
    """Hides process lifecycle and loopback noise unless --verbose or the policy asks for it."""

    def __init__(self, sink: Sink | Callable[[Event], None], verbose: bool, cfg: Config) -> None:
        self.sink = as_sink(sink)
        self.verbose = verbose
        self.loopback = verbose or cfg.network.report_loopback

    def shown(self, ev: Event) -> bool:
        if not self.verbose and ev.get("kind") == "process":
            return False
        return not (not self.loopback and ev.get("kind") == "network"
                    and ev.get("rule") == "network.loopback")

    def __call__(self, ev: Event) -> None:
        if self.shown(ev):
            self.sink(ev)

    def emit_run(self, run: Run) -> None:
        if self.shown(run.template):
            self.sink.emit_run(run)

    def emit_many(self, events: list[Event]) -> None:
        if not (self.verbose and self.loopback):
            events = [ev for ev in events if self.shown(ev)]
        if events:
            self.sink.emit_many(events)

    def flush(self) -> None:
        self.sink.flush()

    def close(self) -> None:
        self.sink.close()


class ReportSink(Sink):
    """Feeds the end-of-run report; a run is added once with its count (exact totals)."""

    def __init__(self, report: Any) -> None:
        self.report = report

    def __call__(self, ev: Event) -> None:
        self.report.add(ev)

    def emit_many(self, events: list[Event]) -> None:
        add = self.report.add
        for ev in events:
            add(ev)

    def emit_run(self, run: Run) -> None:
        first = next(run.events())
        first["count"] = len(run) * int(run.template.get("count", 1) or 1)
        self.report.add(first)


@dataclass
class OutputChain:
    sinks: list[Sink] = field(default_factory=list)     # what the pipeline feeds
    buffered: list[BufferedSink] = field(default_factory=list)
    direct: list[Sink] = field(default_factory=list)     # sinks writing in the reading thread
    jsonl_stream: IO[str] | None = None                  # where the JSON Lines go
    health: OutputHealth = field(default_factory=OutputHealth)

    def close(self) -> None:
        for buffered in self.buffered:
            buffered.close()
        for direct in self.direct:
            direct.close()

    def write_final(self, stream: IO[str], write: Callable[[], object]) -> bool:
        """A write after the run (summary record, report) to `stream`; a failure is reported
        like any other output failure. False when it did not happen."""
        return self.health.guard(stream_name(stream), write)


def _blocks(stream: IO[str]) -> bool:
    """Whether writing may block for long: pipes, terminals, sockets. Regular files (and
    /dev/null) are written in the reading thread: a writer thread on the same core costs more
    (GIL hand-offs) than it saves there."""
    try:
        st = os.fstat(stream.fileno())
    except (AttributeError, OSError, ValueError):
        return False  # in-memory streams
    if stat.S_ISREG(st.st_mode):
        return False
    return not (stat.S_ISCHR(st.st_mode) and st.st_rdev == os.stat("/dev/null").st_rdev)


def _output(sink_for: Any, stream: IO[str], verbose: bool, cfg: Config, chain: OutputChain) -> None:
    if _blocks(stream):
        capture = Capture()
        buffered = BufferedSink(Visible(sink_for(capture), verbose, cfg), capture, stream,
                                health=chain.health)
        chain.buffered.append(buffered)
        chain.sinks.append(buffered)
    else:
        # The guard outside the filter: the pipeline reads its failed count.
        direct = FailSafe(Visible(sink_for(stream), verbose, cfg), stream_name(stream), chain.health)
        chain.direct.append(direct)
        chain.sinks.append(direct)


def build_chain(cfg: Config, fmt: str, out_file: IO[str] | None, stdout: IO[str], report: Any,
                verbose: bool = False, header: bool = True, timestamp_format: str = "iso8601",
                start_ns: int = 0, live_table: bool = True) -> OutputChain:
    """Pipes and terminals are written by a writer thread with a bounded queue (BufferedSink):
    a slow reader of our output never stalls the ring draining."""
    chain = OutputChain(sinks=[Visible(ReportSink(report), verbose, cfg)])
    chain.sinks.append(FindingsToStderr(chain.health))
    if fmt == "jsonl":
        chain.jsonl_stream = out_file or stdout
        _output(JsonLinesSink, chain.jsonl_stream, verbose, cfg, chain)
    # The live table goes to --output for `--format table`, else to the terminal whenever the
    # chosen format is written to a file.
    table_stream = (out_file or stdout) if fmt == "table" else (stdout if out_file and live_table else None)
    if table_stream is not None:
        color = table_stream.isatty()
        try:
            width = os.get_terminal_size(table_stream.fileno()).columns if color else 0
        except (AttributeError, OSError, ValueError):
            width = 0
        _output(lambda s: TableSink(s, verbose=verbose, header=header, timestamp_format=timestamp_format,
                                    start_ns=start_ns, color=color, live=color, width=width),
                table_stream, verbose, cfg, chain)
    return chain
