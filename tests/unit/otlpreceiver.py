"""Test helper: an OTLP/HTTP logs receiver on loopback that decodes each request with
opentelemetry-proto (ExportLogsServiceRequest) and keeps every log record."""

from __future__ import annotations

import gzip
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)


def any_value(v: Any) -> Any:
    kind = v.WhichOneof("value")
    if kind == "array_value":
        return [any_value(x) for x in v.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: any_value(kv.value) for kv in v.kvlist_value.values}
    return getattr(v, kind) if kind else None


class Receiver:
    def __init__(self, fail_first: int = 0) -> None:
        self.records: list[dict[str, Any]] = []
        self.resources: list[dict[str, Any]] = []
        self.requests = 0
        self.refused = 0
        self.fail_first = fail_first
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                data = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.headers.get("Content-Encoding") == "gzip":
                    data = gzip.decompress(data)
                with receiver.lock:
                    receiver.requests += 1
                    if receiver.refused < receiver.fail_first:
                        receiver.refused += 1
                        self.send_response(503)
                        self.end_headers()
                        return
                    req = ExportLogsServiceRequest.FromString(data)
                    for rl in req.resource_logs:
                        res = {kv.key: any_value(kv.value) for kv in rl.resource.attributes}
                        receiver.resources.append(res)
                        for sl in rl.scope_logs:
                            for lr in sl.log_records:
                                receiver.records.append({
                                    "time_unix_nano": lr.time_unix_nano,
                                    "severity_text": lr.severity_text,
                                    "severity_number": lr.severity_number,
                                    "body": any_value(lr.body),
                                    "event_name": lr.event_name,
                                    "attributes": {kv.key: any_value(kv.value) for kv in lr.attributes},
                                })
                body = ExportLogsServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/v1/logs"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
