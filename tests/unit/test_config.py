import dataclasses
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from bee_trace.config import (
    Config,
    ConfigError,
    KindLimits,
    generate_default_config,
    load_config,
    parse_config,
)

# The original bee-trace example, embedded so the test runs anywhere (trailing spaces kept).
ORIGINAL_YAML = """# eBPF Security Monitor Configuration
# This file configures the security monitoring behavior for your GitHub Actions workflows

# Network monitoring configuration
network:
  # Block connections to these IP addresses
  blocked_ips:
    - "1.2.3.4"           # Example malicious IP
    - "192.168.1.100"     # Example internal IP to block
    - "10.0.0.5"          # Another example IP

  # Block connections to these domains
  blocked_domains:
    - "evil-domain.com"
    - "malicious-site.org"
    - "suspicious-cdn.net"

  # Allowed domains (if specified, only these domains are permitted)
  # allowed_domains:
  #   - "github.com"
  #   - "api.github.com"
  #   - "registry.npmjs.org"

  # Monitor specific ports (empty means monitor all)
  monitored_ports: []

  # Alert on any outbound connections (useful for air-gapped environments)
  alert_on_any_connection: false

# File access monitoring configuration
files:
  # Patterns for sensitive files to monitor for read access
  watch_read:
    - "**/credentials.json"
    - "**/.env"
    - "**/.env.*"
    - "**/id_rsa"
    - "**/id_dsa"
    - "**/id_ecdsa"
    - "**/id_ed25519"
    - "**/*.pem"
    - "**/*.key"
    - "**/*.p12"
    - "**/*.pfx"
    - "**/*.crt"
    - "**/*.cer"
    - "**/*.der"
    - "**/config.json"
    - "**/secrets.yaml"
    - "**/secrets.yml"
    - "**/private.key"
    - "**/.ssh/id_*"
    - "**/.aws/credentials"
    - "**/.docker/config.json"
    - "**/kubeconfig"
    - "**/service-account.json"

  # Patterns for sensitive files to monitor for write access
  watch_write:
    - "**/id_rsa"
    - "**/id_dsa"
    - "**/id_ecdsa"
    - "**/id_ed25519"
    - "**/.ssh/id_*"
    - "**/*.pem"
    - "**/*.key"
    - "**/private.key"

  # Directories to exclude from monitoring (performance optimization)
  exclude_paths:
    - "/tmp/**"
    - "/var/tmp/**"
    - "**/.git/**"
    - "**/node_modules/**"
    - "**/target/**"
    - "**/.cargo/**"

# Memory and process monitoring configuration
memory:
  # Environment variables that contain secrets (monitor access)
  secret_env_patterns:
    - "SECRET_*"
    - "PASSWORD*"
    - "PASSWD*"
    - "TOKEN*"
    - "KEY*"
    - "API_KEY*"
    - "*_SECRET"
    - "*_PASSWORD"
    - "*_TOKEN"
    - "*_KEY"
    - "GITHUB_TOKEN"
    - "NPM_TOKEN"
    - "DOCKER_PASSWORD"
    - "AWS_SECRET_ACCESS_KEY"
    - "AZURE_CLIENT_SECRET"

  # Alert on any inter-process memory reading attempts
  alert_on_memory_access: true

  # Processes to exclude from memory monitoring
  exclude_processes:
    - "systemd"
    - "kernel"
    - "kthread"

# Reporting configuration
reporting:
  # Include stack traces for high-severity events
  include_stack_traces: false

  # Maximum number of events to include in reports
  max_events_per_type: 100

  # Severity levels: low, medium, high, critical
  severity_levels:
    file_access: "medium"
    network_connection: "medium"
    blocked_connection: "high"
    memory_access: "high"
    secret_env_access: "medium"

# Performance tuning
performance:
  # Buffer size for event collection (higher = more memory, less CPU)
  event_buffer_size: 1024

  # Event sampling rate (1.0 = all events, 0.1 = 10% of events)
  sampling_rate: 1.0

  # Maximum events per second (rate limiting)
  max_events_per_second: 1000

# Advanced configuration
advanced:
  # Enable CO-RE (Compile Once Run Everywhere) mode
  enable_core: true

  # Custom eBPF program parameters
  ebpf_params:
    stack_trace_depth: 10
    max_entries_per_map: 10000

  # Kernel version compatibility
  min_kernel_version: "4.18"

  # Enable experimental features
  experimental:
    uprobe_monitoring: false
    network_packet_inspection: false"""
# shared/ sits beside the repository (developer work trees and CI's clone alike).
SHARED_ORIGINAL = Path(__file__).resolve().parents[3] / "shared" / "compat" / "original-security.yml"
ONE_LINE = re.compile(r"^[^\n]+:\d+: [^\n]+$")


def original_text() -> str:
    return ORIGINAL_YAML


def test_shared_copy_of_original_also_parses() -> None:
    if not SHARED_ORIGINAL.exists():
        pytest.skip("shared copy of the original example is not present on this machine")
    cfg = parse_config(SHARED_ORIGINAL.read_text(), str(SHARED_ORIGINAL))
    assert cfg == parse_config(ORIGINAL_YAML, "embedded")


def _leaf_paths(obj, prefix=""):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _leaf_paths(v, f"{prefix}.{k}" if prefix else k)
    else:
        yield prefix, obj


def test_original_example_parses_and_every_key_is_represented() -> None:
    text = original_text()
    cfg = parse_config(text, "security.yml")
    data = yaml.safe_load(text)
    for path, value in _leaf_paths(data):
        obj: Any = cfg
        for part in path.split("."):
            obj = obj[part] if isinstance(obj, dict) else getattr(obj, part)
        if isinstance(value, list):
            assert list(obj) == [x.lower() if "domain" in path else x for x in value], path
        else:
            assert obj == value, path


def test_original_values_take_effect() -> None:
    cfg = parse_config(original_text(), "security.yml")
    assert cfg.source == "security.yml"
    assert "1.2.3.4" in cfg.network.blocked_ips
    assert "evil-domain.com" in cfg.network.blocked_domains
    assert "**/config.json" in cfg.files.watch_read
    assert "/tmp/**" in cfg.files.exclude_paths
    assert cfg.files.exclude_set.match("/tmp/x/id_rsa") == "/tmp/**"
    assert cfg.memory.exclude_processes == ("systemd", "kernel", "kthread")
    assert cfg.advanced.min_kernel_version == "4.18"
    assert cfg.advanced.ebpf_params.max_entries_per_map == 10000
    assert cfg.performance.max_events_per_second == 1000
    # Additive keys keep their defaults.
    assert cfg.network.mode == "audit"
    assert "Runner.Worker" in cfg.memory.protected_processes


def test_defaults() -> None:
    cfg = Config()
    assert cfg.source is None
    assert "**/id_rsa" in cfg.files.watch_read
    assert "/etc/shadow" in cfg.files.watch_read
    assert "**/.ssh/id_*" in cfg.files.watch_write
    assert cfg.files.exclude_paths[:2] == ("**/.git/**", "**/node_modules/**")
    assert cfg.files.exclude_set.match("/etc/ssl/certs/ca-certificates.crt")
    assert not cfg.files.exclude_set.match("/tmp/pytest-1/id_rsa")
    assert cfg.files.read_set.match("/home/u/.kube/config")
    assert cfg.network.mode == "audit" and cfg.network.report_loopback is False
    assert cfg.performance.profile == "balanced"
    assert cfg.performance.cpu_budget_percent == 5.0
    assert "GITHUB_TOKEN" in cfg.memory.secret_env_patterns
    assert cfg.reporting.severity_levels["blocked_connection"] == "high"


def test_empty_file_gives_defaults() -> None:
    assert parse_config("", "x.yml") == Config()
    assert parse_config("# only a comment\n", "x.yml") == Config()


def test_generate_round_trips() -> None:
    text = generate_default_config()
    assert "#" in text  # commented
    assert parse_config(text, "gen.yml") == Config()


def test_generate_round_trips_non_default_config() -> None:
    cfg = parse_config(
        "network:\n  blocked_ips: ['10.0.0.0/8']\n  mode: block\n"
        "performance:\n  per_kind:\n    network: {sampling_rate: 0.5}\n",
        "a.yml",
    )
    again = parse_config(generate_default_config(cfg), "b.yml")
    assert again == cfg
    assert again.performance.per_kind["network"] == KindLimits(sampling_rate=0.5)
    assert again.performance.limits_for("network") == (0.5, 1000)


def _err(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as ei:
        parse_config(text, "pol.yml")
    msg = str(ei.value)
    assert "\n" not in msg
    assert ONE_LINE.match(msg), msg
    assert msg.startswith("pol.yml:")
    return ei.value


def test_wrong_type_string_for_float() -> None:
    e = _err("performance:\n  event_buffer_size: 10\n  sampling_rate: \"abc\"\n")
    assert e.line == 3
    assert str(e).startswith("pol.yml:3: performance.sampling_rate: ")


def test_wrong_type_int_for_list() -> None:
    e = _err("files:\n  watch_read: 5\n")
    assert str(e).startswith("pol.yml:2: files.watch_read: expected a list")


def test_unknown_key_names_key_and_line() -> None:
    e = _err("network:\n  blocked_ips: []\n  blockd_domains: [a.com]\n")
    assert e.line == 3
    assert "network.blockd_domains" in str(e) and "unknown key" in str(e)


def test_unknown_section() -> None:
    e = _err("netwrk:\n  x: 1\n")
    assert str(e).startswith("pol.yml:1: netwrk: unknown key")


def test_yaml_syntax_error_is_one_line_with_line_number() -> None:
    e = _err("network:\n  blocked_ips: [\"1.2.3.4\"\n  blocked_domains: []\n")
    assert e.line is not None and e.line >= 2
    assert "invalid YAML" in str(e)


@pytest.mark.parametrize(
    "text,key",
    [
        ("network:\n  blocked_ips: ['999.1.1.1']\n", "network.blocked_ips[0]"),
        ("network:\n  monitored_ports: [0]\n", "network.monitored_ports[0]"),
        ("network:\n  monitored_ports: [70000]\n", "network.monitored_ports[0]"),
        ("network:\n  monitored_ports: ['80']\n", "network.monitored_ports[0]"),
        ("network:\n  alert_on_any_connection: 'yes please'\n", "network.alert_on_any_connection"),
        ("network:\n  mode: deny\n", "network.mode"),
        ("network:\n  blocked_domains: ['bad domain']\n", "network.blocked_domains[0]"),
        ("performance:\n  sampling_rate: 0\n", "performance.sampling_rate"),
        ("performance:\n  sampling_rate: 1.5\n", "performance.sampling_rate"),
        ("performance:\n  max_events_per_second: -1\n", "performance.max_events_per_second"),
        ("performance:\n  event_buffer_size: 1.5\n", "performance.event_buffer_size"),
        ("performance:\n  profile: fast\n", "performance.profile"),
        ("performance:\n  per_kind:\n    disk: {sampling_rate: 1}\n", "performance.per_kind.disk"),
        ("reporting:\n  severity_levels:\n    file_access: urgent\n", "reporting.severity_levels.file_access"),
        ("reporting:\n  severity_levels:\n    bogus: low\n", "reporting.severity_levels.bogus"),
        ("reporting:\n  max_events_per_type: true\n", "reporting.max_events_per_type"),
        ("advanced:\n  ebpf_params:\n    stack_depth: 3\n", "advanced.ebpf_params.stack_depth"),
        ("advanced:\n  min_kernel_version: 'five'\n", "advanced.min_kernel_version"),
        ("files:\n  watch_read: ['']\n", "files.watch_read[0]"),
        ("files:\n  watch_read: [[a]]\n", "files.watch_read[0]"),
        ("memory:\n  secret_env_patterns: {a: 1}\n", "memory.secret_env_patterns"),
        ("network:\n  mode: audit\n  mode: block\n", "network.mode"),
        ("network: [1, 2]\n", "network"),
    ],
)
def test_invalid_values_name_the_key(text: str, key: str) -> None:
    e = _err(text)
    assert e.key == key, str(e)


def test_top_level_must_be_mapping() -> None:
    _err("- a\n- b\n")


def test_null_lists_are_empty() -> None:
    cfg = parse_config("network:\n  allowed_domains:\n", "x")
    assert cfg.network.allowed_domains == ()


def test_cidr_and_ipv6_accepted() -> None:
    cfg = parse_config("network:\n  blocked_ips: ['10.0.0.0/8', '2001:db8::/32', '::1']\n", "x")
    assert len(cfg.network.blocked_networks) == 3


def test_unquoted_kernel_version_keeps_text() -> None:
    assert parse_config("advanced:\n  min_kernel_version: 5.10\n", "x").advanced.min_kernel_version == "5.10"


def test_domains_normalised() -> None:
    cfg = parse_config("network:\n  blocked_domains: ['Evil.COM.', '*.bad.org']\n", "x")
    assert cfg.network.blocked_domains == ("evil.com", "bad.org")


def test_load_config_explicit_path_and_missing(tmp_path: Path) -> None:
    p = tmp_path / "s.yml"
    p.write_text("network:\n  report_loopback: true\n")
    cfg = load_config(str(p))
    assert cfg.network.report_loopback is True
    assert cfg.source == str(p)
    with pytest.raises(ConfigError) as ei:
        load_config(str(tmp_path / "missing.yml"))
    assert "missing.yml" in str(ei.value)


def test_load_config_none_uses_github_security_yml(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert load_config(None).source is None
    (tmp_path / ".github").mkdir()
    (tmp_path / ".github" / "security.yml").write_text("memory:\n  alert_on_memory_access: false\n")
    cfg = load_config(None)
    assert cfg.source == ".github/security.yml"
    assert cfg.memory.alert_on_memory_access is False


def test_load_config_error_mentions_file(tmp_path: Path) -> None:
    p = tmp_path / "bad.yml"
    p.write_text("performance:\n  sampling_rate: \"abc\"\n")
    with pytest.raises(ConfigError) as ei:
        load_config(str(p))
    assert str(ei.value).startswith(f"{p}:2: performance.sampling_rate:")


def test_config_is_frozen() -> None:
    cfg = Config()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.network = None  # type: ignore[misc, assignment]


def test_to_dict_is_plain_data() -> None:
    d = Config().to_dict()
    assert isinstance(d["files"]["watch_read"], list)
    assert d["reporting"]["severity_levels"]["memory_access"] == "high"


def test_per_kind_limits_refused_for_critical_kinds() -> None:
    with pytest.raises(ConfigError, match="security-critical"):
        parse_config("performance:\n  per_kind:\n    file: {sampling_rate: 0.5}\n", "p.yml")


def _all_keys(cls: type, prefix: str = "") -> list[tuple[str, dataclasses.Field]]:
    from bee_trace.config import keys_of
    out = []
    for f in keys_of(cls):
        path = f"{prefix}{f.name}"
        out.append((path, f))
        if isinstance(f.default_factory, type) and dataclasses.is_dataclass(f.default_factory):
            out += _all_keys(f.default_factory, path + ".")   # a section
    return out


def test_every_key_is_declared_once_with_a_check_and_a_doc() -> None:
    from bee_trace.config import KindLimits as K
    keys = _all_keys(Config) + _all_keys(K, "performance.per_kind.*.")
    assert len(keys) > 40
    for path, f in keys:
        assert callable(f.metadata["check"]), path
        assert f.metadata["doc"].strip(), f"{path} has no comment"
    # the source of a policy is not a key: it cannot be set from YAML
    assert "source" not in {p for p, _ in keys}


def test_generated_policy_names_and_documents_every_key() -> None:
    text = generate_default_config()
    lines = text.splitlines()
    for path, _ in _all_keys(Config):
        name = path.rsplit(".", 1)[-1]
        i = next(i for i, l in enumerate(lines) if l.strip().startswith(f"{name}:"))
        assert lines[i - 1].strip().startswith("#"), f"{path}: no comment above it"
    assert parse_config(text, "gen.yml") == Config()


def test_unknown_key_lists_the_declared_keys() -> None:
    with pytest.raises(ConfigError) as e:
        parse_config("advanced:\n  ebpf_params:\n    nope: 1\n", "x.yml")
    assert str(e.value) == ("x.yml:3: advanced.ebpf_params.nope: unknown key "
                            "(expected one of: stack_trace_depth, max_entries_per_map)")
