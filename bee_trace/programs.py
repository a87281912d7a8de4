"""The table of the object's BPF programs (Tetragon-style, instead of inferring from names): for
each program, the monitors that need it, how it attaches, and whether it is network enforcement
(must attach in block mode, pinned with network.fail_closed). kernel.py loads and attaches only
what the table says; tests/unit/test_programs.py holds the table to the built object, so a new
program in bpf/*.c must be added here."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from .records import PROBE_TYPES

FILE, NETWORK, MEMORY = "file_monitor", "network_monitor", "memory_monitor"
EVERY = frozenset(PROBE_TYPES)


class Attach(Enum):
    SECTION = "section"   # libbpf attaches by section name (tp/..., raw_tp/...)
    CGROUP = "cgroup"     # attached to the root cgroup v2 (sock_addr, skb and sock hooks)


@dataclass(frozen=True)
class Program:
    monitors: frozenset[str]      # loaded when any of these monitors runs
    attach: Attach = Attach.SECTION
    egress: bool = False          # network enforcement: pinned with network.fail_closed
    role: str = ""
    # one of two ways to see opens and links: "every_exit" (raw_tp/sys_exit: native and 32-bit
    # syscalls; it also decides link/rename) or "own_exit" (each syscall's own tracepoint: the
    # max-performance profile)
    opens_by: str = ""

    def needed(self, probes: set[str]) -> bool:
        return bool(self.monitors & probes)


def _p(monitors: set[str] | frozenset[str], role: str, attach: Attach = Attach.SECTION,
       egress: bool = False, opens_by: str = "") -> Program:
    return Program(frozenset(monitors), attach, egress, role, opens_by)


_OPENS = {FILE, MEMORY}    # file opens name secret files and /proc/PID/{mem,maps,environ}
_OPEN = "file opens at syscall exit (secret files; /proc/PID/* for memory)"
_LINK = "link/symlink/rename of watched names"
_EGRESS = "egress hook (cgroup): destinations, the allowlist in block mode"

PROGRAMS: dict[str, Program] = {
    # files.bpf.c (+ compat.bpf.c): every syscall exit; 32-bit syscalls are invisible to tp/syscalls
    "open_sys_exit": _p(_OPENS, _OPEN + ", native and 32-bit", opens_by="every_exit"),
    **{f"opentp_{n}": _p(_OPENS, _OPEN + " (max-performance: no 32-bit)", opens_by="own_exit")
       for n in ("open", "creat", "openat", "openat2", "open_tree", "open_by_handle_at")},
    # links.bpf.c
    **{f"link_{n}": _p({FILE}, _LINK, opens_by="own_exit")
       for n in ("link", "linkat", "symlink", "symlinkat", "rename", "renameat", "renameat2")},
    # uring.bpf.c: io_uring requests make no syscall events
    "uring_create": _p(EVERY, "io_uring rings set up"),
    "uring_complete": _p(EVERY, "io_uring requests (opens, connects)"),
    # egress.bpf.c
    "net_connect4": _p({NETWORK}, _EGRESS, Attach.CGROUP, egress=True),
    "net_connect6": _p({NETWORK}, _EGRESS, Attach.CGROUP, egress=True),
    "net_sendmsg4": _p({NETWORK}, _EGRESS, Attach.CGROUP, egress=True),
    "net_sendmsg6": _p({NETWORK}, _EGRESS, Attach.CGROUP, egress=True),
    "dns_ingress": _p({NETWORK}, "DNS answers learned (cgroup_skb ingress)", Attach.CGROUP, egress=True),
    "sock_create": _p({NETWORK}, "raw/packet/ICMP/vsock sockets (cgroup sock_create)", Attach.CGROUP,
                      egress=True),
    "sock_socket": _p({NETWORK}, "sockets no hook can refuse (socket() entry)", egress=True),
    # memory.bpf.c
    "mem_ptrace": _p({MEMORY}, "ptrace"),
    "mem_vm_readv": _p({MEMORY}, "process_vm_readv"),
    "mem_vm_writev": _p({MEMORY}, "process_vm_writev"),
    "mem_pidfd_getfd": _p({MEMORY}, "pidfd_getfd"),
    # process.bpf.c: lifecycle feeds every monitor (exe, ancestry)
    "proc_exec": _p(EVERY, "exec"),
    "proc_fork": _p(EVERY, "fork"),
    "proc_exit": _p(EVERY, "exit"),
    # tamper.bpf.c: aimed at the agent
    "tamper_signal": _p(EVERY, "signals to the agent"),
    "tamper_bpf": _p(EVERY, "bpf() on the agent's programs, maps and links"),
}


def program(name: str) -> Program | None:
    """The table's entry; None for a program the table does not know (never loaded)."""
    return PROGRAMS.get(name)
