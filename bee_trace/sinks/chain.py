"""The output chain of `bee-trace run` (also what the benchmark measures): visibility filter,
bounded writer queues, the end-of-run report. Every element passes runs on whole."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import IO, Any

from ..config import Config
from . import Event, Run, emit_run
from .buffered import BufferedSink, Capture
from .jsonl import JsonLinesSink
from .table import TableSink


class Visible:
    """Hides process lifecycle and loopback noise unless --verbose or the policy asks for it."""

    def __init__(self, sink: Any, verbose: bool, cfg: Config) -> None:
        self.sink = sink
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
            emit_run(self.sink, run)

    def flush(self) -> None:
        flush = getattr(self.sink, "flush", None)
        if flush:
            flush()


class ReportSink:
    """Feeds the end-of-run report; a run is added once with its count (exact totals)."""

    def __init__(self, report: Any) -> None:
        self.report = report

    def __call__(self, ev: Event) -> None:
        self.report.add(ev)

    def emit_run(self, run: Run) -> None:
        first = next(run.events())
        first["count"] = len(run) * int(run.template.get("count", 1) or 1)
        self.report.add(first)


@dataclass
class OutputChain:
    sinks: list[Any] = field(default_factory=list)      # what the pipeline feeds
    buffered: list[BufferedSink] = field(default_factory=list)
    jsonl_stream: IO[str] | None = None                  # where the JSON Lines go

    def close(self) -> None:
        for sink in self.buffered:
            sink.close()


def build_chain(cfg: Config, fmt: str, out_file: IO[str] | None, stdout: IO[str], report: Any,
                verbose: bool = False, header: bool = True, timestamp_format: str = "iso8601",
                start_ns: int = 0, live_table: bool = True) -> OutputChain:
    """Formatting happens in the reading thread, writing in a writer thread per stream (see
    BufferedSink): a slow disk or terminal never stalls the ring draining."""
    chain = OutputChain(sinks=[Visible(ReportSink(report), verbose, cfg)])
    if fmt == "jsonl":
        capture = Capture()
        chain.jsonl_stream = out_file or stdout
        chain.buffered.append(BufferedSink(Visible(JsonLinesSink(capture), verbose, cfg), capture,
                                           chain.jsonl_stream))
    # The live table goes to --output for `--format table`, else to the terminal whenever the
    # chosen format is written to a file.
    table_stream = (out_file or stdout) if fmt == "table" else (stdout if out_file and live_table else None)
    if table_stream is not None:
        capture = Capture()
        table = TableSink(capture, verbose=verbose, header=header, timestamp_format=timestamp_format,
                          start_ns=start_ns, color=table_stream.isatty())
        chain.buffered.append(BufferedSink(Visible(table, verbose, cfg), capture, table_stream))
    chain.sinks.extend(chain.buffered)
    return chain
