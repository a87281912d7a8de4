"""The fleet flags are parsed and refuse what cannot work before any BPF is loaded."""

from __future__ import annotations

import os
import socket

import pytest

from bee_trace import cli


def test_flags_parse():
    args = cli.build_parser().parse_args(["run", "--format", "ocsf", "--metrics-address", "127.0.0.1:9464",
                                          "--otlp-endpoint", "http://127.0.0.1:4318/v1/logs"])
    assert args.format == "ocsf" and args.metrics_address == "127.0.0.1:9464"
    assert args.otlp_endpoint.endswith("/v1/logs")


@pytest.fixture
def as_root(monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 0)

    class NoPipeline:
        def __init__(self, *a, **k):
            raise AssertionError("the pipeline must not be built when a flag cannot work")
    monkeypatch.setattr("bee_trace.pipeline.Pipeline", NoPipeline)


def test_bad_metrics_address_fails_before_loading(as_root, capsys):
    assert cli.main(["run", "--metrics-address", "nowhere"]) == cli.EXIT_SETUP
    assert "--metrics-address 'nowhere': expected HOST:PORT" in capsys.readouterr().err


def test_metrics_port_in_use_fails_before_loading(as_root, capsys):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    try:
        rc = cli.main(["run", "--metrics-address", f"127.0.0.1:{s.getsockname()[1]}"])
    finally:
        s.close()
    assert rc == cli.EXIT_SETUP
    assert "Address already in use" in capsys.readouterr().err
