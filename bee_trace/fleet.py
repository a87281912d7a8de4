"""Outputs for fleets of machines, added to `bee-trace run` by its flags: Prometheus metrics
(--metrics-address), OpenTelemetry logs (--otlp-endpoint) and the OCSF stream (--format ocsf).
Each is a plain sink in the run's output chain; what they cannot deliver is counted in the
run's loss accounting (sink_overflow) and turns the verdict degraded."""

from __future__ import annotations

import argparse
import sys
from typing import IO, Any

from .loss import LossSummary
from .sinks.chain import OutputChain, Visible, _output


def add_run_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--metrics-address", metavar="HOST:PORT",
                   help="serve Prometheus metrics here (e.g. 127.0.0.1:9464)")
    p.add_argument("--otlp-endpoint", metavar="URL",
                   help="export every event as an OpenTelemetry log record over OTLP/HTTP "
                        "(e.g. http://collector:4318/v1/logs)")


class FleetOutputs:
    def __init__(self) -> None:
        self.metrics: Any = None
        self.server: Any = None
        self.otlp: Any = None
        self.ocsf: Any = None
        self._counted_overflow = 0

    @classmethod
    def start(cls, args: argparse.Namespace, cfg: Any, chain: OutputChain, out_file: IO[str] | None,
              verbose: bool, info: dict[str, str]) -> FleetOutputs:
        """Adds the sinks to chain.sinks (before the pipeline takes the list). ValueError or
        OSError: a flag that cannot work (bad address, port taken, missing package)."""
        self = cls()
        try:
            if args.format == "ocsf":
                _output(self._ocsf_sink, out_file or sys.stdout, verbose, cfg, chain)
            if args.otlp_endpoint:
                try:
                    from .sinks.otlp import OtlpLogSink
                except ImportError as e:
                    raise ValueError(f"--otlp-endpoint needs the OpenTelemetry SDK: "
                                     f"pip install 'bee-trace[otlp]' ({e})") from None
                self.otlp = OtlpLogSink(args.otlp_endpoint)
                # Visible hides its overflow from the pipeline's sum: the OTLP count is only final
                # after close() and is added here, live in tick() and in full in finish().
                chain.sinks.append(Visible(self.otlp, verbose, cfg))
            if args.metrics_address:
                from .metrics import EventCounter, Metrics, MetricsServer
                self.metrics = Metrics(info)
                chain.sinks.append(Visible(EventCounter(self.metrics), verbose, cfg))
                try:
                    self.server = MetricsServer(args.metrics_address, self.metrics)
                except OSError as e:
                    raise ValueError(f"--metrics-address {args.metrics_address}: "
                                     f"{e.strerror or e}") from None
                host = self.server.server.server_address[0]
                host = f"[{host}]" if ":" in host else host
                print(f"bee-trace: metrics at http://{host}:{self.server.port}/metrics", file=sys.stderr)
        except BaseException:
            self.close()
            raise
        return self

    def _ocsf_sink(self, stream: IO[str]) -> Any:
        from .sinks.ocsf import OcsfSink
        self.ocsf = OcsfSink(stream)
        return self.ocsf

    def tick(self, pipeline: Any) -> None:
        if self.metrics is not None:
            self.metrics.update(pipeline, self.otlp.overflow if self.otlp is not None else 0)

    def finish(self, loss: LossSummary) -> LossSummary:
        """Closes the outputs that send on their own thread (OTLP: the final export) and adds
        what they could not deliver to the pipeline's summary."""
        if self.otlp is not None:
            self.otlp.close()
            loss = loss.with_overflow(self.otlp.overflow)
            loss.otlp = self.otlp.stats()
        if self.ocsf is not None:
            self.ocsf.flush()
        return loss

    def report_end(self, loss: LossSummary, verdict: str) -> None:
        if self.metrics is not None:
            self.metrics.finish(loss, verdict)

    def close(self) -> None:
        if self.otlp is not None:
            self.otlp.close()
        if self.server is not None:
            self.server.close()
            self.server = None
