"""Thin, typed ctypes binding over the system libbpf.so.1 (>= 1.1): only what bee-trace uses."""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import struct
from collections.abc import Callable

_PRINT_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p)


class LibbpfError(RuntimeError):
    """A libbpf call failed; carries errno and the captured libbpf log (verifier output)."""

    def __init__(self, what: str, err: int, log: str = "") -> None:
        self.errno = abs(err)
        self.log = log
        super().__init__(f"{what}: {os.strerror(self.errno)} (errno {self.errno})")


def _load_library() -> ctypes.CDLL:
    for name in ("libbpf.so.1", ctypes.util.find_library("bpf")):
        if not name:
            continue
        try:
            return ctypes.CDLL(name, use_errno=True)
        except OSError:
            continue
    raise ImportError("libbpf.so.1 not found: install it with `apt-get install libbpf1` (Debian/Ubuntu)")


_lib = _load_library()
_libc = ctypes.CDLL(None, use_errno=True)
_libc.vsnprintf.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_void_p]

_vp = ctypes.c_void_p


class _TestRunOpts(ctypes.Structure):
    """struct bpf_test_run_opts (libbpf >= 0.7; `sz` lets libbpf see which fields we know)."""

    _fields_ = [("sz", ctypes.c_size_t), ("data_in", _vp), ("data_out", _vp),
                ("data_size_in", ctypes.c_uint32), ("data_size_out", ctypes.c_uint32),
                ("ctx_in", _vp), ("ctx_out", _vp),
                ("ctx_size_in", ctypes.c_uint32), ("ctx_size_out", ctypes.c_uint32),
                ("retval", ctypes.c_uint32), ("repeat", ctypes.c_int), ("duration", ctypes.c_uint32),
                ("flags", ctypes.c_uint32), ("cpu", ctypes.c_uint32), ("batch_size", ctypes.c_uint32)]


def _sig(name: str, restype: object, *argtypes: object) -> None:
    fn = getattr(_lib, name)
    fn.restype = restype
    fn.argtypes = list(argtypes)


_sig("libbpf_set_print", _vp, _PRINT_FN)
_sig("bpf_object__open_file", _vp, ctypes.c_char_p, _vp)
_sig("bpf_object__load", ctypes.c_int, _vp)
_sig("bpf_object__close", None, _vp)
_sig("bpf_object__find_map_by_name", _vp, _vp, ctypes.c_char_p)
_sig("bpf_object__find_program_by_name", _vp, _vp, ctypes.c_char_p)
_sig("bpf_object__next_program", _vp, _vp, _vp)
_sig("bpf_program__name", ctypes.c_char_p, _vp)
_sig("bpf_program__section_name", ctypes.c_char_p, _vp)
_sig("bpf_program__set_autoload", ctypes.c_int, _vp, ctypes.c_bool)
_sig("bpf_program__autoload", ctypes.c_bool, _vp)
_sig("bpf_program__attach", _vp, _vp)
_sig("bpf_program__attach_cgroup", _vp, _vp, ctypes.c_int)
_sig("bpf_program__fd", ctypes.c_int, _vp)
_sig("bpf_link__destroy", ctypes.c_int, _vp)
_sig("bpf_link__pin", ctypes.c_int, _vp, ctypes.c_char_p)
_sig("bpf_map__fd", ctypes.c_int, _vp)
_sig("bpf_link__fd", ctypes.c_int, _vp)
_sig("bpf_object__next_map", _vp, _vp, _vp)
_sig("bpf_map__name", ctypes.c_char_p, _vp)
_sig("bpf_obj_get_info_by_fd", ctypes.c_int, ctypes.c_int, _vp, ctypes.POINTER(ctypes.c_uint32))
_sig("bpf_map__set_max_entries", ctypes.c_int, _vp, ctypes.c_uint32)
_sig("bpf_map__reuse_fd", ctypes.c_int, _vp, ctypes.c_int)
_sig("bpf_map__max_entries", ctypes.c_uint32, _vp)
_sig("bpf_map__value_size", ctypes.c_uint32, _vp)
_sig("bpf_map_lookup_elem", ctypes.c_int, ctypes.c_int, _vp, _vp)
_sig("bpf_map_update_elem", ctypes.c_int, ctypes.c_int, _vp, _vp, ctypes.c_uint64)
_sig("bpf_map_delete_elem", ctypes.c_int, ctypes.c_int, _vp)
_sig("bpf_map_lookup_and_delete_elem", ctypes.c_int, ctypes.c_int, _vp, _vp)
_sig("bpf_map_get_next_key", ctypes.c_int, ctypes.c_int, _vp, _vp)
_sig("bpf_map_lookup_batch", ctypes.c_int, ctypes.c_int, _vp, _vp, _vp, _vp,
     ctypes.POINTER(ctypes.c_uint32), _vp)
_sig("bpf_map_lookup_and_delete_batch", ctypes.c_int, ctypes.c_int, _vp, _vp, _vp, _vp,
     ctypes.POINTER(ctypes.c_uint32), _vp)
_sig("bpf_prog_test_run_opts", ctypes.c_int, ctypes.c_int, ctypes.POINTER(_TestRunOpts))
_sig("libbpf_num_possible_cpus", ctypes.c_int)
_sig("libbpf_probe_bpf_prog_type", ctypes.c_int, ctypes.c_int, _vp)
_sig("libbpf_probe_bpf_map_type", ctypes.c_int, ctypes.c_int, _vp)

BPF_ANY = 0
BPF_NOEXIST = 1
BPF_MAP_TYPE_RINGBUF = 27
BPF_PROG_TYPE_TRACEPOINT = 5

# libbpf logs go through one process-wide callback; keep the lines of the current operation.
_log_lines: list[str] = []


_print_buf = ctypes.create_string_buffer(1 << 20)  # a verifier log arrives as one message


@_PRINT_FN
def _print(level: int, fmt: bytes, args: int) -> int:
    _libc.vsnprintf(_print_buf, len(_print_buf), fmt, args)
    _log_lines.append(_print_buf.value.decode("utf-8", "replace"))
    return 0


_lib.libbpf_set_print(_print)


def _take_log() -> str:
    text = "".join(_log_lines)
    _log_lines.clear()
    return text


def _check_ptr(ptr: int | None, what: str) -> int:
    if not ptr:
        raise LibbpfError(what, ctypes.get_errno() or 22, _take_log())
    return ptr


def _check_rc(rc: int, what: str) -> None:
    if rc < 0:
        raise LibbpfError(what, rc, _take_log())


def num_possible_cpus() -> int:
    return int(_lib.libbpf_num_possible_cpus())


def probe_prog_type(prog_type: int) -> bool:
    return _lib.libbpf_probe_bpf_prog_type(prog_type, None) == 1


def probe_map_type(map_type: int) -> bool:
    return _lib.libbpf_probe_bpf_map_type(map_type, None) == 1


class Map:
    """A map of a loaded object: fd and raw lookups/updates with bytes values."""

    def __init__(self, ptr: int, name: str) -> None:
        self._ptr = ptr
        self.name = name

    @property
    def fd(self) -> int:
        return int(_lib.bpf_map__fd(self._ptr))

    @property
    def max_entries(self) -> int:
        return int(_lib.bpf_map__max_entries(self._ptr))

    @property
    def value_size(self) -> int:
        return int(_lib.bpf_map__value_size(self._ptr))

    def set_max_entries(self, n: int) -> None:
        _check_rc(_lib.bpf_map__set_max_entries(self._ptr, n), f"set max_entries of {self.name}")

    def reuse_fd(self, fd: int) -> None:
        """Before load: use an existing map (by fd) instead of creating this one."""
        _check_rc(_lib.bpf_map__reuse_fd(self._ptr, fd), f"reuse fd for {self.name}")

    def lookup(self, key: bytes, value_len: int) -> bytes | None:
        value = ctypes.create_string_buffer(value_len)
        rc = _lib.bpf_map_lookup_elem(self.fd, ctypes.c_char_p(key), value)
        if rc < 0:
            return None
        return value.raw

    def update(self, key: bytes, value: bytes, flags: int = BPF_ANY) -> None:
        rc = _lib.bpf_map_update_elem(self.fd, ctypes.c_char_p(key), ctypes.c_char_p(value), flags)
        _check_rc(rc if rc >= 0 else -ctypes.get_errno(), f"update {self.name}")

    def delete(self, key: bytes) -> bool:
        return _lib.bpf_map_delete_elem(self.fd, ctypes.c_char_p(key)) == 0

    def pop(self, key: bytes, value_len: int) -> bytes | None:
        """Lookup and delete in one step (no increment is lost in between)."""
        value = ctypes.create_string_buffer(value_len)
        if _lib.bpf_map_lookup_and_delete_elem(self.fd, ctypes.c_char_p(key), value) < 0:
            return None
        return value.raw

    def items(self, key_len: int, value_len: int, chunk: int = 4096) -> tuple[bytes, bytes, int]:
        """Every entry (keys concatenated, values concatenated, count) in a few
        BPF_MAP_LOOKUP_BATCH calls instead of a get_next_key + lookup pair per entry. value_len
        is a whole value (all CPUs' slots for a per-CPU map). Entries added or removed meanwhile
        may or may not appear, as with a walk."""
        return self._batch(_lib.bpf_map_lookup_batch, "batch lookup", key_len, value_len, chunk)

    def pop_all(self, key_len: int, value_len: int, chunk: int = 4096) -> tuple[bytes, bytes, int]:
        """Every entry removed, as items() returns them, with BPF_MAP_LOOKUP_AND_DELETE_BATCH (a
        few syscalls instead of a get_next_key + lookup_and_delete pair per entry); each bucket
        is read and emptied in one step, as pop() does for one key."""
        return self._batch(_lib.bpf_map_lookup_and_delete_batch, "batch pop", key_len, value_len, chunk)

    def _batch(self, call: Callable[..., int], what: str, key_len: int, value_len: int,
               chunk: int) -> tuple[bytes, bytes, int]:
        keys, values = [], []
        total = 0
        token_in: ctypes.Array[ctypes.c_char] | None = None
        while True:
            token_out = ctypes.create_string_buffer(max(key_len, 8))
            kbuf = ctypes.create_string_buffer(key_len * chunk)
            vbuf = ctypes.create_string_buffer(value_len * chunk)
            count = ctypes.c_uint32(chunk)
            rc = call(self.fd, token_in, token_out, kbuf, vbuf, ctypes.byref(count), None)
            err = ctypes.get_errno() if rc < 0 else 0
            if err == errno.ENOSPC and not count.value:
                chunk *= 2   # one hash bucket holds more entries than a chunk: retry larger
                continue
            if rc < 0 and err != errno.ENOENT:
                raise LibbpfError(f"{what} of {self.name}", err)
            n = count.value
            keys.append(kbuf.raw[:key_len * n])
            values.append(vbuf.raw[:value_len * n])
            total += n
            if rc < 0:   # ENOENT: that was the last chunk
                return b"".join(keys), b"".join(values), total
            token_in = token_out

    def keys(self, key_len: int) -> list[bytes]:
        out: list[bytes] = []
        prev = None
        cur = ctypes.create_string_buffer(key_len)
        while _lib.bpf_map_get_next_key(self.fd, prev, cur) == 0:
            out.append(cur.raw)
            prev = ctypes.create_string_buffer(cur.raw, key_len)
        return out


class Program:
    def __init__(self, ptr: int) -> None:
        self._ptr = ptr
        self.name = (_lib.bpf_program__name(ptr) or b"").decode()
        self.section = (_lib.bpf_program__section_name(ptr) or b"").decode()

    def set_autoload(self, on: bool) -> None:
        _check_rc(_lib.bpf_program__set_autoload(self._ptr, on), f"set autoload of {self.name}")

    @property
    def autoload(self) -> bool:
        return bool(_lib.bpf_program__autoload(self._ptr))

    @property
    def fd(self) -> int:
        return int(_lib.bpf_program__fd(self._ptr))

    def test_run(self, ctx: bytearray) -> int:
        """BPF_PROG_TEST_RUN of a BPF_PROG_TYPE_SYSCALL program: runs it once with `ctx` as its
        context (the kernel writes the context back into `ctx`); returns the program's return
        value. The GIL is released while it runs."""
        buf = (ctypes.c_char * len(ctx)).from_buffer(ctx)
        opts = _TestRunOpts(sz=ctypes.sizeof(_TestRunOpts), ctx_in=ctypes.addressof(buf),
                            ctx_size_in=len(ctx))
        rc = _lib.bpf_prog_test_run_opts(self.fd, ctypes.byref(opts))
        _check_rc(rc if rc >= 0 else -ctypes.get_errno(), f"test run {self.name}")
        return int(opts.retval)

    def attach(self) -> Link:
        """Attach by section name (tp/..., raw_tp/...)."""
        return Link(_check_ptr(_lib.bpf_program__attach(self._ptr), f"attach {self.section}"))

    def attach_cgroup(self, cgroup_fd: int) -> Link:
        ptr = _lib.bpf_program__attach_cgroup(self._ptr, cgroup_fd)
        return Link(_check_ptr(ptr, f"attach {self.section} to cgroup"))


def object_id(fd: int) -> int | None:
    """The kernel id of a BPF program, map or link fd (bpf_{prog,map,link}_info: u32 type, u32 id
    first), or None."""
    info = ctypes.create_string_buffer(64)
    n = ctypes.c_uint32(len(info))
    if fd < 0 or _lib.bpf_obj_get_info_by_fd(fd, info, ctypes.byref(n)) != 0 or n.value < 8:
        return None
    return int.from_bytes(info.raw[4:8], "little")


# BPF_MAP_TYPE_*: the maps whose entries come and go (the ones a soak watches fill up)
HASH_MAP_TYPES = {1: "hash", 5: "percpu_hash", 9: "lru_hash", 10: "lru_percpu_hash", 11: "lpm_trie"}


def map_info(fd: int) -> tuple[int, int, int] | None:
    """(type, key_size, max_entries) of a map fd from bpf_map_info (u32 type, id, key_size,
    value_size, max_entries first), or None."""
    info = ctypes.create_string_buffer(64)
    n = ctypes.c_uint32(len(info))
    if fd < 0 or _lib.bpf_obj_get_info_by_fd(fd, info, ctypes.byref(n)) != 0 or n.value < 20:
        return None
    typ, _, key_size, _, max_entries = struct.unpack_from("<5I", info.raw)
    return typ, key_size, max_entries


class Link:
    def __init__(self, ptr: int) -> None:
        self._ptr: int | None = ptr

    def pin(self, path: str) -> None:
        """Pin at a bpffs path: the attachment then outlives this process (until unlinked)."""
        _check_rc(_lib.bpf_link__pin(self._ptr, path.encode()), f"pin link at {path}")
    @property
    def fd(self) -> int:
        return int(_lib.bpf_link__fd(self._ptr)) if self._ptr else -1

    def destroy(self) -> None:
        if self._ptr:
            _lib.bpf_link__destroy(self._ptr)
            self._ptr = None


class Object:
    """An opened (then loaded) BPF object file."""

    def __init__(self, path: str) -> None:
        _take_log()
        self._ptr: int | None = _check_ptr(_lib.bpf_object__open_file(path.encode(), None), f"open {path}")
        self.path = path
        self._maps: dict[str, Map] = {}

    def map(self, name: str) -> Map:
        m = self._maps.get(name)   # the pipeline asks for some maps on every step
        if m is None:
            ptr = _check_ptr(_lib.bpf_object__find_map_by_name(self._ptr, name.encode()),
                             f"find map {name}")
            m = self._maps[name] = Map(ptr, name)
        return m

    def maps(self) -> list[Map]:
        out: list[Map] = []
        ptr = _lib.bpf_object__next_map(self._ptr, None)
        while ptr:
            out.append(Map(ptr, (_lib.bpf_map__name(ptr) or b"").decode()))
            ptr = _lib.bpf_object__next_map(self._ptr, ptr)
        return out

    def programs(self) -> list[Program]:
        progs: list[Program] = []
        ptr = _lib.bpf_object__next_program(self._ptr, None)
        while ptr:
            progs.append(Program(ptr))
            ptr = _lib.bpf_object__next_program(self._ptr, ptr)
        return progs

    def load(self) -> None:
        _take_log()
        _check_rc(_lib.bpf_object__load(self._ptr), f"load {os.path.basename(self.path)}")

    def close(self) -> None:
        if self._ptr:
            self._maps.clear()     # their pointers die with the object
            _lib.bpf_object__close(self._ptr)
            self._ptr = None

    def __enter__(self) -> Object:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

