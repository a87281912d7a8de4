"""JSON Lines stream: one object per event, valid UTF-8 whatever the event holds."""

from __future__ import annotations

import json
from typing import IO, Any

from ..escape import json_safe_obj

# Internal bookkeeping fields that are not part of the event contract.
_INTERNAL = ("boot_ns",)


def to_json_line(ev: dict[str, Any]) -> str:
    out = {k: v for k, v in ev.items() if k not in _INTERNAL}
    return json.dumps(json_safe_obj(out), ensure_ascii=False, separators=(",", ":")) + "\n"


class JsonLinesSink:
    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream

    def __call__(self, ev: dict[str, Any]) -> None:
        self.stream.write(to_json_line(ev))

    def write_record(self, record: dict[str, Any]) -> None:
        self.stream.write(to_json_line(record))

    def flush(self) -> None:
        self.stream.flush()
