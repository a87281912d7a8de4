"""The program table names exactly the built object's programs, with the right attach kind."""

from __future__ import annotations

import pytest

from bee_trace.kernel import OBJECT_PATH
from bee_trace.programs import EVERY, NETWORK, PROGRAMS, Attach


def _object_programs() -> dict[str, str]:
    if not OBJECT_PATH.exists():
        pytest.skip("BPF object not built (run `make bpf`)")
    from bee_trace._libbpf import Object
    obj = Object(str(OBJECT_PATH))
    try:
        return {p.name: p.section for p in obj.programs()}
    finally:
        obj.close()


def test_table_matches_the_object() -> None:
    progs = _object_programs()
    assert set(PROGRAMS) == set(progs), "add new programs to bee_trace/programs.py"
    for name, section in progs.items():
        entry = PROGRAMS[name]
        assert (entry.attach is Attach.CGROUP) == section.startswith("cgroup"), name
        assert entry.monitors and entry.monitors <= EVERY and entry.role, name
        if entry.attach is Attach.CGROUP:
            assert entry.egress and entry.monitors == {NETWORK}, name


def test_selection_by_monitor() -> None:
    file_only = {n for n, p in PROGRAMS.items() if p.needed({"file_monitor"})}
    assert {"open_sys_exit", "opentp_openat", "link_rename", "proc_exec"} <= file_only
    assert not any(n.startswith(("net_", "mem_")) for n in file_only)
    net = {n for n, p in PROGRAMS.items() if p.egress}
    assert net == {n for n in PROGRAMS if n.startswith(("net_", "dns_", "sock_"))}
