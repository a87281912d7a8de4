"""The event model: the JSON Lines contract (design §5, README) as one TypedDict, `EventFields`,
and the type the code passes around, `Event`. At run time an event is a plain dict (sinks
serialise dicts; building one per output event is the hot path). `Event` stays `dict[str, Any]`
for the type checker too: sinks also take events read back from streams of other producers and
versions (`bee-trace report`), which a TypedDict would reject. `EventFields` names every field the
decoders, policy and enrichment set (tests/unit/test_event.py holds them to it); every field is
optional (total=False) because each kind fills its own. Fields starting with `_` are pipeline
bookkeeping and never output."""

from __future__ import annotations

from typing import Any, TypedDict

SEVERITIES = ("low", "medium", "high", "critical")   # in rising order
KINDS = ("file", "network", "memory", "process")     # the kinds policy speaks of (plus tamper)


class EventFields(TypedDict, total=False):
    # -- every event ----------------------------------------------------------------------------
    ts: str                       # ISO-8601 UTC
    ts_ns: int
    kind: str                     # file | network | memory | process | tamper (summary: the trailer)
    severity: str                 # low | medium | high | critical
    rule: str
    category: str
    risk: int
    pid: int                      # tgid
    tid: int
    ppid: int
    uid: int
    comm: str                     # the name the process chose: attacker-controlled
    exe: str
    cmdline: str
    ancestry: list[str]
    ancestry_pids: list[int]
    start_time: str | None
    cgroup_id: int
    cpu: int
    seq: int
    lane: str                     # critical | bulk
    boot_ns: int
    count: int                    # aggregated events: how many identical events this one stands for
    aggregated: bool
    late: bool                    # recovered from the spill map
    origin: str                   # syscall | compat | io_uring
    syscall: int
    # -- file ---------------------------------------------------------------------------------------
    path: str
    requested_path: str           # the caller's string when it differs from the resolved path
    old_path: str | None          # link / rename: the old name
    watched_path: str             # the watched name of the inode opened under another name
    access: str                   # read | write | link | rename
    truncated: bool
    path_len: int
    path_resolved: bool
    read_fault: bool
    open_flags: int
    dev: int
    ino: int
    generation: int               # the inode's i_generation (tells a reused number from the watched file)
    match: str                    # name | inode | old
    pattern: str                  # the glob that confirmed it
    # -- network ------------------------------------------------------------------------------------
    protocol: str
    family: str
    daddr: str | None             # IPv4-mapped IPv6 shown as IPv4
    dport: int | None
    action: str                   # allowed | blocked
    blocklisted: bool
    domain: str | None
    domain_source: str | None
    loopback: bool
    hook: str                     # connect | sendmsg
    policy: str                   # why the egress policy decided (learned, allowed_ip, ...)
    not_allowed: bool
    op: str                       # socket / exec / fork / exit / io_uring_setup / tamper op
    socket_type: str
    enforcement: str
    # -- memory -------------------------------------------------------------------------------------
    technique: str
    target_pid: int
    target_comm: str
    ptrace_request: int
    secret_env_names: list[str]
    # -- process ------------------------------------------------------------------------------------
    filename: str
    filename_truncated: bool
    child_pid: int
    exit_code: int
    exit_signal: int
    sq_entries: int
    ring_flags: int
    # -- tamper -------------------------------------------------------------------------------------
    target: str
    signal: str
    signal_number: int
    si_code: int
    bpf_cmd: str
    object_id: int
    # -- bookkeeping (not output) -------------------------------------------------------------------
    _template: dict[str, Any]


Event = dict[str, Any]
