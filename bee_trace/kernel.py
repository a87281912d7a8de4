"""The built BPF object: open, size the rings, load, configure the maps, attach by probe type."""

from __future__ import annotations

import ctypes
import errno
import functools
import ipaddress
import os
import struct
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import records as R
from ._libbpf import BPF_NOEXIST, LibbpfError, Link, Map, Object, num_possible_cpus
from .inodes import InodeKey, WatchedInode, inode_slot, kernel_dev
from .programs import Attach, program
from .record_view import RecordView

# Where things are looked for; the environment can point elsewhere (README: "Errors").
OBJECT_PATH = Path(os.environ.get("BEE_TRACE_OBJECT") or Path(__file__).parent / "bpf" / "bee_trace.bpf.o")
TRACEFS = Path(os.environ.get("BEE_TRACE_TRACEFS") or "/sys/kernel/tracing")
BTF_PATH = Path(os.environ.get("BEE_TRACE_BTF") or "/sys/kernel/btf/vmlinux")

PROBE_TYPES = R.PROBE_TYPES


class SetupError(Exception):
    """Monitoring cannot start; the message says what to do."""


def ensure_tracefs() -> None:
    if (TRACEFS / "events").is_dir():
        return
    rc = subprocess.run(["mount", "-t", "tracefs", "nodev", str(TRACEFS)],
                        capture_output=True, text=True)
    if rc.returncode != 0 or not (TRACEFS / "events").is_dir():
        why = (rc.stderr.strip().splitlines() or ["unknown error"])[0]  # the error stays one line
        raise SetupError(f"tracefs is not mounted at {TRACEFS} and mounting it failed "
                         f"({why}); run "
                         f"`mount -t tracefs nodev {TRACEFS}` as root")


def preflight() -> None:
    """The checks every run needs, with errors that say what to do."""
    if os.geteuid() != 0:
        raise SetupError("bee-trace must run as root (BPF programs need CAP_BPF and CAP_PERFMON): "
                         "run it with sudo")
    if not BTF_PATH.exists():
        raise SetupError(f"{BTF_PATH} is missing: this kernel has no BTF (CONFIG_DEBUG_INFO_BTF=y "
                         "is needed for CO-RE)")
    if not OBJECT_PATH.exists():
        raise SetupError(f"{OBJECT_PATH} is not built: run `make bpf` (needs clang-19, bpftool)")
    ensure_tracefs()


def check_min_kernel(minimum: str, release: str | None = None) -> None:
    """advanced.min_kernel_version: refuse to start on an older kernel."""
    import platform
    import re

    release = release or platform.release()
    have = tuple(int(x) for x in re.findall(r"\d+", release)[:3])
    want = tuple(int(x) for x in re.findall(r"\d+", minimum)[:3])
    if have < want:
        raise SetupError(f"kernel {release} is older than advanced.min_kernel_version {minimum}")


def tracepoint_exists(section: str) -> bool:
    """tp/<category>/<name> sections attach only where the event exists on this kernel."""
    parts = section.split("/")
    if parts[0] in ("tp", "tracepoint") and len(parts) == 3:
        return (TRACEFS / "events" / parts[1] / parts[2]).is_dir()
    return True


@dataclass
class ProgramStatus:
    name: str
    section: str
    state: str           # attached | not-needed | missing-tracepoint | replaced ... | off: ... | failed: ...


@dataclass
class Kernel:
    """Loaded and attached kernel side. Use as a context manager; close() detaches everything."""

    probes: set[str]
    ring_critical_bytes: int = 4 << 20
    ring_bulk_bytes: int = 16 << 20
    bulk_wake_bytes: int = 64 << 10
    block: bool = False
    table_entries: int = 10000          # advanced.ebpf_params.max_entries_per_map
    spill_entries: int = 65536          # events kept while a ring is full (critical.h)
    fail_closed: bool = False           # network.fail_closed: pin the egress links (block mode)
    compat_syscalls: bool = True        # False: per-syscall open tracepoints, 32-bit syscalls unwatched
    coverage: list[ProgramStatus] = field(default_factory=list)
    inodes_full: int = 0                # userspace watch_inode calls refused by a full map

    def __post_init__(self) -> None:
        self.settings = np.zeros(1, dtype=R.settings_dtype)
        self._obj: Object | None = None
        self._links: list[Link] = []
        self.ncpus = num_possible_cpus()

    # -- lifecycle ---------------------------------------------------------------------------
    def load(self) -> None:
        preflight()
        obj = Object(str(OBJECT_PATH))
        self._obj = obj
        obj.map("ring_critical").set_max_entries(_ring_size(self.ring_critical_bytes))
        obj.map("ring_bulk").set_max_entries(_ring_size(self.ring_bulk_bytes))
        for name in ("agg", "rate_buckets", "learned", "crit_fold", "fold_counts", "seen_keys"):
            obj.map(name).set_max_entries(self.table_entries)
        obj.map("spill").set_max_entries(self.spill_entries)
        for prog in obj.programs():
            entry = program(prog.name)   # programs.py: who needs it, how it attaches
            skip = "every_exit" if not self.compat_syscalls else "own_exit"
            if entry is not None and entry.needed(self.probes) and entry.opens_by == skip:
                # one of the two ways to see opens: every syscall exit (with 32-bit syscalls) or
                # the open family's own tracepoints (max-performance)
                prog.set_autoload(False)
                state = "replaced by raw_tp/sys_exit" if self.compat_syscalls else \
                    "off: max-performance profile (32-bit syscalls unwatched)"
                self.coverage.append(ProgramStatus(prog.name, prog.section, state))
            elif entry is None or not entry.needed(self.probes):
                prog.set_autoload(False)
                self.coverage.append(ProgramStatus(prog.name, prog.section, "not-needed"))
            elif not tracepoint_exists(prog.section):
                prog.set_autoload(False)
                self.coverage.append(ProgramStatus(prog.name, prog.section, "missing-tracepoint"))
        try:
            obj.load()
        except LibbpfError as e:
            raise SetupError(f"the kernel refused the BPF programs: {e}\n{_log_tail(e.log)}") from e

    def attach(self) -> None:
        assert self._obj is not None
        done = {s.name for s in self.coverage}
        egress_links: list[tuple[str, Link]] = []
        for prog in self._obj.programs():
            entry = program(prog.name)
            if prog.name in done or entry is None:
                continue
            try:
                if entry.attach is Attach.CGROUP:
                    link = _attach_root_cgroup(prog)
                else:
                    link = prog.attach()
                self._links.append(link)
                if entry.egress:
                    egress_links.append((prog.name, link))
                self.coverage.append(ProgramStatus(prog.name, prog.section, "attached"))
            except (LibbpfError, SetupError) as e:
                self.coverage.append(ProgramStatus(prog.name, prog.section, f"failed: {e}"))
                if self.block and entry.attach is Attach.CGROUP:
                    # Enforcement that is not attached must not look like enforcement.
                    self.close()
                    raise SetupError(f"network.mode block: {prog.section} could not attach "
                                     f"({e})") from e
        if self.fail_closed and self.block and egress_links:
            from .egress.pins import pin_links
            try:
                pin_links(egress_links)
            except (OSError, LibbpfError) as e:
                self.close()
                raise SetupError(f"network.fail_closed: pinning the egress programs failed ({e})") from e

    def start(self, file_filter: np.ndarray, self_tgid: int | None = None,
              high_filter: np.ndarray | None = None,
              blocked: list[ipaddress.IPv4Network | ipaddress.IPv6Network] | None = None,
              inodes: list[WatchedInode] | None = None, egress: object | None = None,
              **settings: object) -> list[WatchedInode]:
        """Load, configure, then attach (so no event is seen with an unconfigured filter).
        Returns the seeded inodes that are watched, with the i_generation the kernel recorded."""
        self.load()
        self.set_file_filter(file_filter, high_filter)
        seeded = [w for w in inodes or () if self.watch_inode(w.dev, w.ino, seeded=True)]
        self.set_blocked(blocked or [])
        if "network_monitor" in self.probes:
            if egress is None:
                from .egress.policy import EgressPolicy
                egress = EgressPolicy(block=self.block)
            egress.apply(self)  # type: ignore[attr-defined]
        self.set_settings(os.getpid() if self_tgid is None else self_tgid, **settings)
        self.attach()
        from .tamper import register_agent
        assert self._obj is not None
        register_agent(self._obj, self._links)
        # Attached: our own opens now tell the kernel which inode each seeded entry is.
        return [w for w in (self.adopt(w) for w in seeded) if w is not None]

    def detach(self) -> None:
        """Stop producing records; maps (rings, counters) stay readable until close()."""
        for link in self._links:
            link.destroy()
        self._links.clear()

    def close(self) -> None:
        self.detach()
        if self._obj:
            self._obj.close()
            self._obj = None

    def __enter__(self) -> Kernel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- maps --------------------------------------------------------------------------------
    @property
    def loaded(self) -> bool:
        return self._obj is not None

    def map_fd(self, name: str) -> int:
        assert self._obj is not None
        return self._obj.map(name).fd

    def map(self, name: str) -> Map:
        """A map of the loaded object (libbpf Map: update, lookup, keys)."""
        assert self._obj is not None
        return self._obj.map(name)

    def maps(self) -> list[Map]:
        """Every map of the loaded object (the bench counts their entries)."""
        assert self._obj is not None
        return self._obj.maps()

    def ring_size(self, name: str) -> int:
        assert self._obj is not None
        return self._obj.map(name).max_entries

    def set_file_filter(self, value: np.ndarray, high: np.ndarray | None = None) -> None:
        """Slot 0: every pattern; slot 1: the highest tier (keeps the critical ring's headroom)."""
        assert self._obj is not None
        m = self._obj.map("file_filter")
        m.update(_KEY0, value.tobytes())
        m.update(bytes(ctypes.c_uint32(1)), (value if high is None else high).tobytes())

    def pop_spilled(self) -> list[tuple[int, RecordView]]:
        """Every spilled event (critical, or a bulk first-of-key), removed from the map: (count,
        record), oldest first (a process's exec record before its opens). The records are views
        of one copy of the entries, as ring records are of the ring."""
        assert self._obj is not None
        _, raw, n = self._obj.map("spill").pop_all(R.fold_key_dtype.itemsize, R.spill_value_dtype.itemsize)
        if not n:
            return []
        values = np.frombuffer(raw, dtype=R.spill_value_dtype)
        values = values[np.argsort(values["ev"]["h"]["ts_ns"], kind="stable")]
        buf, size = values.tobytes(), R.spill_value_dtype.itemsize
        return [(count, RecordView(buf, i * size + _SPILL_EVENT_OFFSET))
                for i, count in enumerate(values["count"].tolist())]

    def fold_counts(self) -> dict[tuple[int, int, int, int], tuple[int, int]]:
        """Counts of critical events folded in the kernel, by fold key: (cumulative count,
        boot ns of the last one)."""
        assert self._obj is not None
        raw_keys, raw_values, n = self._obj.map("fold_counts").items(R.fold_key_dtype.itemsize,
                                                                     R.fold_value_dtype.itemsize)
        if not n:
            return {}
        k = np.frombuffer(raw_keys, dtype=R.fold_key_dtype)
        v = np.frombuffer(raw_values, dtype=R.fold_value_dtype)
        return dict(zip(zip(k["tgid"].tolist(), k["type"].tolist(), k["a"].tolist(), k["b"].tolist()),
                        zip(v["count"].tolist(), v["last_ns"].tolist())))

    def pop_fold_counts(self, keys: list[tuple[int, int, int, int]]) -> dict[tuple[int, int, int, int], int]:
        """Delete these keys' counts; returns each one's count as it was deleted (a fold the
        kernel made since the caller's read is in it)."""
        assert self._obj is not None
        m, out = self._obj.map("fold_counts"), {}
        for key in keys:
            raw = m.pop(np.array([key], dtype=R.fold_key_dtype).tobytes(), R.fold_value_dtype.itemsize)
            if raw is not None:
                out[key] = int(np.frombuffer(raw, dtype=R.fold_value_dtype)["count"][0])
        return out

    def watch_inode(self, dev: int, ino: int, seeded: bool = False) -> bool:
        """Report every open of this inode (kernel dev encoding), whatever its name; the kernel
        learns which inode it is at the agent's next open of it (`adopt`). False when the map is
        full of files that exist (a flood of watched names): the name filter still applies.
        `seeded`: found at start, dropped only when the kernel can prove the file deleted."""
        assert self._obj is not None
        key = _inode_key(dev, ino)
        # The slot first: the kernel looks in watched_inodes only when the slot is set.
        self._obj.map("watched_inode_slots").update(
            inode_slot(dev, ino).to_bytes(4, "little"), b"\x01")
        value = np.zeros(1, dtype=R.inode_value_dtype)
        value["tier"], value["flags"] = R.TIER_HIGH, R.INODE_SEEDED if seeded else 0
        try:
            # Never over an entry the kernel knows (the same file, learned at an open).
            self._obj.map("watched_inodes").update(key, value.tobytes(), BPF_NOEXIST)
        except LibbpfError as e:
            if e.errno == errno.EEXIST:
                return True
            if e.errno != errno.E2BIG:
                raise
            self.inodes_full += 1
            return False
        return True

    def adopt(self, w: WatchedInode, follow: bool = True) -> WatchedInode | None:
        """Open w.path (O_PATH: no data) so the kernel records which inode its entry is
        (inode_adopt in bpf/open_exit.h: the agent's own opens). The probes must be attached.
        w with the recorded i_generation; None, and the entry deleted, when the name no
        longer leads to that inode (replaced in between)."""
        assert self._obj is not None
        try:
            fd = os.open(w.path, os.O_PATH | (0 if follow else os.O_NOFOLLOW))
        except OSError:
            fd = -1
        try:
            st = os.fstat(fd) if fd >= 0 else None
        finally:
            if fd >= 0:
                os.close(fd)
        raw = self._obj.map("watched_inodes").lookup(_inode_key(w.dev, w.ino),
                                                     R.inode_value_dtype.itemsize)
        if st is None or (kernel_dev(st.st_dev), st.st_ino) != (w.dev, w.ino):
            if raw is not None and not np.frombuffer(raw, R.inode_value_dtype)["flags"][0] & R.INODE_KNOWN:
                self.forget_inode(w.dev, w.ino)
            return None
        if raw is None:
            return None
        v = np.frombuffer(raw, R.inode_value_dtype)[0]
        return WatchedInode(w.dev, w.ino, w.path, int(v["gen"]) if v["flags"] & R.INODE_KNOWN else None)

    def forget_inode(self, dev: int, ino: int) -> None:
        assert self._obj is not None
        self._obj.map("watched_inodes").delete(_inode_key(dev, ino))

    def inode_entries(self) -> dict[InodeKey, int | None]:
        """watched_inodes as (dev, ino) -> recorded i_generation (None: not known yet)."""
        assert self._obj is not None
        raw_keys, raw_values, n = self._obj.map("watched_inodes").items(
            R.inode_key_dtype.itemsize, R.inode_value_dtype.itemsize)
        if not n:
            return {}
        k = np.frombuffer(raw_keys, dtype=R.inode_key_dtype)
        v = np.frombuffer(raw_values, dtype=R.inode_value_dtype)
        known = (v["flags"] & R.INODE_KNOWN) != 0
        return {(d, i): (g if kn else None) for d, i, g, kn in
                zip(k["dev"].tolist(), k["ino"].tolist(), v["gen"].tolist(), known.tolist())}

    def set_settings(self, self_tgid: int, **fields: object) -> None:
        """Write the whole settings slot (the kernel reads it on every event)."""
        assert self._obj is not None
        s = self.settings
        s["self_tgid"] = self_tgid
        s["bulk_wake_bytes"] = self.bulk_wake_bytes
        s["probes"] = sum(R.PROBE_BITS[p] for p in self.probes if p in R.PROBE_BITS) | R.PROBE_PROCESS
        s["block"] = int(self.block)
        s["spill_cap"] = self.spill_entries
        for name, value in fields.items():
            s[name] = value
        self._obj.map("settings").update(_KEY0, s.tobytes())

    def update_settings(self, **fields: object) -> None:
        """Change some settings at run time (shed level, sampling, wake-up threshold...)."""
        if "bulk_wake_bytes" in fields:
            self.bulk_wake_bytes = int(fields["bulk_wake_bytes"])  # type: ignore[call-overload]
        self.set_settings(int(self.settings["self_tgid"][0]), **fields)

    def agg_counts(self) -> list[tuple[np.void, int, np.void]]:
        """Every aggregation entry: (key, cumulative count summed over CPUs, a CPU's value with
        the window's sample)."""
        assert self._obj is not None
        slot = per_cpu_slot(R.agg_value_dtype)
        raw_keys, raw_values, n = self._obj.map("agg").items(R.agg_key_dtype.itemsize,
                                                             slot.itemsize * self.ncpus)
        if not n:
            return []
        keys = np.frombuffer(raw_keys, dtype=R.agg_key_dtype)
        vals = np.frombuffer(raw_values, dtype=slot).reshape(n, self.ncpus)
        counts = vals["count"].sum(axis=1).tolist()
        newest = np.argmax(vals["window_start"], axis=1)   # the CPU holding the window's sample
        samples = vals[np.arange(n), newest]
        return [(keys[i], counts[i], samples[i]) for i in range(n)]

    def set_blocked(self, networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> None:
        """The block list (LPM tries): looked up by the connect tracepoint and cgroup hooks."""
        assert self._obj is not None
        v4, v6 = self._obj.map("blocked_v4"), self._obj.map("blocked_v6")
        for net in networks:
            key = struct.pack("<I", net.prefixlen) + net.network_address.packed
            (v4 if net.version == 4 else v6).update(key, b"\x01")

    def drop_totals(self) -> np.ndarray:
        """Drop counts by (lane, cause), summed over CPUs."""
        return self.counters_per_cpu()["drops"].sum(axis=0)

    def counters_per_cpu(self) -> np.ndarray:
        """struct counters for each possible CPU."""
        per_cpu = self.per_cpu_slot0("counters", R.counters_dtype)
        return np.zeros(self.ncpus, dtype=R.counters_dtype) if per_cpu is None else per_cpu

    def per_cpu_slot0(self, name: str, dtype: np.dtype) -> np.ndarray | None:
        """Slot 0 of a per-CPU array map, one record of `dtype` per possible CPU; None if unread."""
        assert self._obj is not None
        slot = per_cpu_slot(dtype)
        raw = self._obj.map(name).lookup(_KEY0, slot.itemsize * self.ncpus)
        return None if raw is None else np.frombuffer(raw, dtype=slot)


_KEY0 = bytes(ctypes.c_uint32(0))
_SPILL_EVENT_OFFSET = R.field_offset(R.spill_value_dtype, "ev")


@functools.cache
def per_cpu_slot(dtype: np.dtype) -> np.dtype:
    """A per-CPU map's value holds one 8-aligned slot per CPU: the struct padded to its slot."""
    names = list(dtype.names or ())
    fields: Any = dtype.fields or {}
    spec: Any = {"names": names, "formats": [fields[n][0] for n in names],
                 "offsets": [fields[n][1] for n in names], "itemsize": (dtype.itemsize + 7) & ~7}
    return np.dtype(spec)



def cgroup2_root() -> str:
    """Where the cgroup v2 hierarchy is mounted (/sys/fs/cgroup, or .../unified on hybrids)."""
    with open("/proc/self/mounts") as f:
        for line in f:
            parts = line.split()
            if len(parts) > 2 and parts[2] == "cgroup2":
                return parts[1]
    raise SetupError("the network monitor needs cgroup v2 (its hooks attach to the root), "
                     "which is not mounted")


def _attach_root_cgroup(prog: object) -> Link:
    fd = os.open(cgroup2_root(), os.O_RDONLY | os.O_DIRECTORY)
    try:
        return prog.attach_cgroup(fd)  # type: ignore[attr-defined]
    finally:
        os.close(fd)


def _ring_size(nbytes: int) -> int:
    """Ring sizes must be a power of two multiple of the page size."""
    size = max(nbytes, os.sysconf("SC_PAGE_SIZE"))
    return 1 << (size - 1).bit_length()


def _inode_key(dev: int, ino: int) -> bytes:
    key = np.zeros(1, dtype=R.inode_key_dtype)
    key["ino"], key["dev"] = ino, dev
    return key.tobytes()


def _log_tail(log: str, lines: int = 40) -> str:
    return "\n".join(log.strip().splitlines()[-lines:])
