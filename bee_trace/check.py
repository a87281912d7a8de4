"""`bee-trace check`: what this machine supports, and whether monitoring can work at all."""

from __future__ import annotations

import os
import platform
import sys

from .buildinfo import describe_build, kernel_btf_info, object_info
from .kernel import BTF_PATH, OBJECT_PATH, PROBE_TYPES, TRACEFS, Kernel, SetupError, ensure_tracefs


def run_check(profile: str | None = None) -> int:
    rows: list[tuple[str, bool, str]] = []
    root = os.geteuid() == 0
    rows.append(("root", root, "yes" if root else "no: run with sudo"))
    rows.append(("kernel", True, platform.release()))
    rows.append(("BTF", BTF_PATH.exists(),
                 str(BTF_PATH) if BTF_PATH.exists() else "missing: needs CONFIG_DEBUG_INFO_BTF"))
    try:
        from . import _libbpf
        rows.append(("libbpf", True, "libbpf.so.1 loaded"))
    except ImportError as e:
        rows.append(("libbpf", False, str(e)))
        _libbpf = None  # type: ignore[assignment]
    rows.append(("BPF object", OBJECT_PATH.exists(),
                 str(OBJECT_PATH) if OBJECT_PATH.exists() else "not built: run `make bpf`"))
    rows += object_rows()
    tracefs_ok = False
    if root:
        try:
            ensure_tracefs()
            tracefs_ok = True
        except SetupError as e:
            rows.append(("tracefs", False, str(e)))
    if tracefs_ok:
        rows.append(("tracefs", True, str(TRACEFS)))
    if _libbpf is not None and root:
        ok = _libbpf.probe_map_type(_libbpf.BPF_MAP_TYPE_RINGBUF)
        rows.append(("ring buffer", ok, "BPF_MAP_TYPE_RINGBUF" if ok else "unsupported (kernel < 5.8)"))
    attached = 0
    if all(ok for _, ok, _ in rows):
        compat = profile != "max-performance"
        k = Kernel(probes=set(PROBE_TYPES), compat_syscalls=compat)
        try:
            k.load()
            k.attach()
        except SetupError as e:
            rows.append(("load", False, str(e).splitlines()[0]))
        finally:
            k.close()
        for st in k.coverage:
            good = st.state == "attached"
            attached += good
            rows.append((f"probe {st.section}", good or st.state.startswith(("missing-tracepoint", "replaced")),
                         st.state))
        rows.append(("coverage 32-bit syscalls", compat,
                     "watched (raw_tp/sys_exit)" if compat else
                     "NOT watched: the max-performance profile (int 0x80 opens and ptrace unseen)"))
    width = max(len(r[0]) for r in rows)
    for name, ok, detail in rows:
        print(f"{'ok ' if ok else 'NO '} {name:<{width}}  {detail}")
    usable = all(ok for name, ok, _ in rows if not name.startswith(("probe ", "coverage "))) and attached > 0
    print("monitoring: " + ("possible" if usable else "NOT possible"), file=sys.stderr)
    return 0 if usable else 2


def object_rows() -> list[tuple[str, bool, str]]:
    """Which object runs (sha256, how it was built) and against which kernel BTF."""
    rows: list[tuple[str, bool, str]] = []
    obj = object_info(OBJECT_PATH)
    if obj.get("exists"):
        rows.append(("object sha256", True, obj["sha256"]))
        rows.append(("object build", True, describe_build(obj.get("build"))))
    btf = kernel_btf_info(BTF_PATH)
    if btf.get("exists"):
        rows.append(("kernel BTF", True, f"{btf['path']} of {btf['kernel']} "
                                         f"({btf['size']} bytes, sha256 {btf['sha256'][:16]})"))
    return rows
