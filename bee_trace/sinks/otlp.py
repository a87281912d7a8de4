"""OpenTelemetry logs export (`--otlp-endpoint URL`): each event one log record whose attributes
are the event's fields, sent by the OpenTelemetry SDK's batch processor and OTLP/HTTP exporter
(batched, retried with backoff by the exporter) from the SDK's worker thread. The reading thread
only appends to a bounded queue: past the bound events are counted as overflow, never waited for,
and so are events whose export finally failed or that were still queued when the run ended."""

from __future__ import annotations

import socket
import threading
from collections.abc import Sequence
from typing import Any

from ..escape import json_safe
from . import Run, Sink

MAX_QUEUE = 20_000          # events waiting for export
MAX_BATCH = 512             # events per OTLP request
SCHEDULE_DELAY_MS = 500     # longest wait before a partial batch is sent
EXPORT_TIMEOUT_S = 10.0     # per request, retries included
SHUTDOWN_TIMEOUT_S = 5.0  # final export at the end of a run, at most
_INTERNAL = ("boot_ns", "ts_ns")
_SEVERITY_NUMBERS = {"low": 9, "medium": 13, "high": 17, "critical": 21}  # INFO, WARN, ERROR, FATAL


def _text(v: str) -> str:
    try:
        v.encode("utf-8")
        return v
    except UnicodeEncodeError:  # a lone surrogate: protobuf would refuse the whole batch
        return json_safe(v)


def attributes(ev: dict[str, Any]) -> dict[str, Any]:
    """Event fields as OTel attribute values: primitives, homogeneous lists, dicts flattened with
    dots; None dropped; strings made valid UTF-8 (protobuf refuses lone surrogates)."""
    out: dict[str, Any] = {}

    def put(key: str, v: Any) -> None:
        if isinstance(v, str):
            out[key] = _text(v)
        elif isinstance(v, (bool, int, float)):
            out[key] = v
        elif v is None:
            return
        elif isinstance(v, dict):
            for k, sub in v.items():
                put(f"{key}.{k}", sub)
        elif isinstance(v, (list, tuple)):
            items = [x for x in v if x is not None]
            if all(isinstance(x, str) for x in items):
                out[key] = [_text(x) for x in items]
            elif all(isinstance(x, bool) for x in items) or \
                    all(isinstance(x, int) and not isinstance(x, bool) for x in items):
                out[key] = list(items)
            else:
                out[key] = [_text(str(x)) for x in items]
        else:
            out[key] = _text(str(v))

    for k, v in ev.items():
        if k not in _INTERNAL and not k.startswith("_"):
            put(k, v)
    return out


def body(ev: dict[str, Any]) -> str:
    kind = ev.get("kind")
    who = f"{ev.get('comm', '')}[{ev.get('pid', '')}]"
    if kind == "file":
        what = f"{ev.get('access', 'open')} {ev.get('path', '')}"
    elif kind == "network":
        dest = ev.get("domain") or ev.get("daddr", "")
        what = f"{ev.get('action', '')} {ev.get('protocol', '')} {dest}:{ev.get('dport', '')}"
    elif kind == "memory":
        what = f"{ev.get('technique', '')} on {ev.get('target_comm', '')}[{ev.get('target_pid', '')}]"
    else:
        what = str(ev.get("exe") or ev.get("op") or "")
    return _text(f"{ev.get('rule', '')}: {who} {what}")


class _CountingExporter:
    """Wraps the OTLP exporter to count what was handed to it and what it delivered."""

    def __init__(self, exporter: Any) -> None:
        self.exporter = exporter
        self.attempted = 0
        self.delivered = 0
        self.failed = 0
        self.failed_batches = 0

    def export(self, batch: Sequence[Any]) -> Any:
        from opentelemetry.sdk._logs.export import LogRecordExportResult
        n = len(batch)
        self.attempted += n
        try:
            result = self.exporter.export(batch)
        except Exception:
            result = LogRecordExportResult.FAILURE
        if result == LogRecordExportResult.SUCCESS:
            self.delivered += n
        else:
            self.failed += n
            self.failed_batches += 1
        return result

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True

    def shutdown(self) -> None:
        self.exporter.shutdown()


class OtlpLogSink(Sink):
    """Every event as an OpenTelemetry log record; `overflow` counts what was not delivered."""

    def __init__(self, endpoint: str, resource: dict[str, Any] | None = None,
                 max_queue: int = MAX_QUEUE, max_batch: int = MAX_BATCH,
                 schedule_delay_ms: int = SCHEDULE_DELAY_MS, timeout_s: float = EXPORT_TIMEOUT_S,
                 exporter: Any = None, shutdown_timeout_s: float = SHUTDOWN_TIMEOUT_S) -> None:
        from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
        from opentelemetry.sdk._logs import LoggerProvider
        from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
        from opentelemetry.sdk.resources import Resource

        from .. import __version__
        self.endpoint = endpoint
        self.max_queue = max_queue
        self.shutdown_timeout_s = shutdown_timeout_s
        self.exporter = _CountingExporter(exporter or OTLPLogExporter(endpoint=endpoint, timeout=timeout_s))
        attrs = {"service.name": "bee-trace", "service.version": __version__,
                 "host.name": socket.gethostname()}
        attrs.update(resource or {})
        self.provider = LoggerProvider(resource=Resource.create(attrs))
        # The processor's own queue is as large as ours and we never let more than max_queue
        # events be pending, so the SDK never drops silently: every loss is counted here.
        self.processor = BatchLogRecordProcessor(self.exporter,  # type: ignore[arg-type]
                                                 schedule_delay_millis=schedule_delay_ms,
                                                 max_export_batch_size=min(max_batch, max_queue),
                                                 max_queue_size=max_queue)
        self.provider.add_log_record_processor(self.processor)
        self.logger = self.provider.get_logger("bee_trace")
        self.submitted = 0      # handed to the SDK
        self.refused = 0        # queue full: never handed over
        self.undelivered = 0    # still queued when the run ended
        self.closed = False

    @property
    def pending(self) -> int:
        return self.submitted - self.exporter.attempted

    @property  # computed from the exporter's counts, never assigned
    def overflow(self) -> int:  # type: ignore[override]
        return self.refused + self.exporter.failed + self.undelivered

    def __call__(self, ev: dict[str, Any]) -> None:
        if self.closed:
            return
        if self.pending >= self.max_queue:
            self.refused += 1
            return
        self.submitted += 1
        sev = ev.get("severity", "low")
        self.logger.emit(timestamp=ev.get("ts_ns") or None, severity_text=sev,
                         severity_number=_severity_number(sev), body=body(ev),
                         attributes=attributes(ev), event_name=f"bee_trace.{ev.get('kind', 'event')}")

    def emit_run(self, run: Run) -> None:
        for ev in run.events():
            self(ev)

    def flush(self) -> None:
        pass  # the SDK's worker sends on its own schedule; flushing here would block the reader

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        # The SDK's shutdown exports what is queued (bounded by its own 30 s); a run's end waits
        # SHUTDOWN_TIMEOUT_S at most and counts whatever has not been delivered by then.
        t = threading.Thread(target=self.provider.shutdown, name="bee-trace-otlp-shutdown", daemon=True)
        t.start()
        t.join(self.shutdown_timeout_s)
        self.undelivered = max(0, self.submitted - self.exporter.delivered - self.exporter.failed)

    def stats(self) -> dict[str, int]:
        return {"submitted": self.submitted, "delivered": self.exporter.delivered,
                "failed": self.exporter.failed, "failed_batches": self.exporter.failed_batches,
                "refused_queue_full": self.refused, "undelivered_at_exit": self.undelivered}


def _severity_number(sev: str) -> Any:
    from opentelemetry._logs import SeverityNumber
    return SeverityNumber(_SEVERITY_NUMBERS.get(sev, 9))
