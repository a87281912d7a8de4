"""Live table: timestamp formats, header switch, escaping of hostile strings."""

from __future__ import annotations

import io
from typing import Any

from bee_trace.sinks.table import TableSink, format_time

EV: dict[str, Any] = {"ts_ns": 1_800_000_000_123_456_789, "pid": 42, "uid": 1000, "comm": "cat\x1b[2J",
      "severity": "high", "rule": "file.private_key.read", "kind": "file", "access": "read",
      "path": "/tmp/a\nb.pem"}


def test_timestamp_formats() -> None:
    assert format_time(EV, "unix", 0) == "1800000000.123457"
    assert format_time(EV, "relative", EV["ts_ns"] - 2_500_000_000) == "+2.500s"
    assert format_time(EV, "iso8601", 0).count(":") == 2


def test_header_switch_and_verbose_uid_column() -> None:
    buf = io.StringIO()
    TableSink(buf, header=False, color=False)(EV)
    assert "TIME" not in buf.getvalue() and "1000" not in buf.getvalue()
    buf = io.StringIO()
    TableSink(buf, header=True, verbose=True, color=False)(EV)
    lines = buf.getvalue().splitlines()
    assert lines[0].startswith("TIME") and "UID" in lines[0] and "1000" in lines[1]


def test_hostile_strings_stay_on_one_visible_line() -> None:
    buf = io.StringIO()
    TableSink(buf, header=False, color=False)(EV)
    out = buf.getvalue()
    assert out.count("\n") == 1 and "\x1b" not in out
    assert "\\n" in out and "\\x1b" in out
