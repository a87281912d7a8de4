"""One kernel record as plain Python values, for the decoders: `rec["h"]["tgid"]`,
`rec["u"]["file"]["path"]`, as on a numpy record, but unpacked with one struct call per part.
Field access on an np.void costs ≈ 1 µs each (a decoded event reads ~25 fields); a struct unpack
of the whole header costs less than two of them. The decoders of the frequent records (files,
connects) read the unpacked tuples by position (`rec.t[H_TGID]`, `rec.u.row("file")[F_PATH]`):
building the dicts cost them half their decoding. The formats are derived from records.py's
dtypes, which stay the one source of truth for every layout."""

from __future__ import annotations

import struct
from typing import Any

import numpy as np

from . import records as R

_INT_CODES = {("u", 1): "B", ("u", 2): "H", ("u", 4): "I", ("u", 8): "Q",
              ("i", 1): "b", ("i", 2): "h", ("i", 4): "i", ("i", 8): "q"}


class Layout:
    """A flat structured dtype as a struct format: integers as ints, `S` fields as bytes without
    their trailing NULs (numpy's reading of them), `V` fields as raw bytes."""

    def __init__(self, dtype: np.dtype) -> None:
        assert dtype.fields is not None, dtype
        fmt, pos, strip = ["<"], 0, []
        self.names: list[str] = []
        for name, (ft, off, *_) in sorted(dtype.fields.items(), key=lambda kv: kv[1][1]):
            assert ft.shape == () and ft.fields is None, f"{name}: only flat scalar fields"
            if off > pos:
                fmt.append(f"{off - pos}x")
            if ft.kind in "SV":
                fmt.append(f"{ft.itemsize}s")
                if ft.kind == "S":
                    strip.append(name)
            else:
                fmt.append(_INT_CODES[(ft.kind, ft.itemsize)])
            self.names.append(name)
            pos = off + ft.itemsize
        self._strip_names: list[str] = strip   # S fields: numpy drops their trailing NULs
        self.struct = struct.Struct("".join(fmt))
        assert self.struct.size <= dtype.itemsize, dtype
        # a field's position in the unpacked tuple (S fields there keep their NULs)
        self.pos = {name: i for i, name in enumerate(self.names)}

    def unpack(self, buf: bytes | memoryview, offset: int) -> dict[str, Any]:
        return self.fields(self.struct.unpack_from(buf, offset))

    def fields(self, values: tuple) -> dict[str, Any]:
        """Unpacked values as a dict; leading extra values (a ring slot's len word) skipped."""
        if len(values) > len(self.names):
            values = values[len(values) - len(self.names):]
        d = dict(zip(self.names, values))
        for name in self._strip_names:
            d[name] = d[name].rstrip(b"\0")
        return d


HEADER = Layout(R.header_dtype)
# Positions in a header tuple, which leads with the ring's len word (ringbuf's batch headers).
H = {name: i + 1 for i, name in enumerate(HEADER.names)}
H_TYPE, H_FLAGS, H_CPU, H_SEQ, H_TS, H_TGID, H_TID, H_PPID, H_UID, H_CGROUP, H_COMM, H_LANE = (
    H[n] for n in ("type", "flags", "cpu", "seq", "ts_ns", "tgid", "tid", "ppid", "uid",
                   "cgroup_id", "comm", "lane"))
_PAYLOAD_OFFSET = R.field_offset(R.event_dtype, "u")
_MEMBERS = {name: Layout(ft) for name, (ft, *_) in (R.payload_dtype.fields or {}).items()}
MEMBER_POS = {name: layout.pos for name, layout in _MEMBERS.items()}


class Payload:
    """The record's union: a member is unpacked when first asked for."""

    __slots__ = ("_buf", "_offset", "_members")

    def __init__(self, buf: bytes | memoryview, offset: int) -> None:
        self._buf, self._offset = buf, offset
        self._members: dict[str, dict[str, Any]] = {}

    def __getitem__(self, member: str) -> dict[str, Any]:
        m = self._members.get(member)
        if m is None:
            m = self._members[member] = _MEMBERS[member].unpack(self._buf, self._offset)
        return m

    def row(self, member: str) -> tuple:
        """The member's values as a tuple, by the positions of MEMBER_POS[member]."""
        return _MEMBERS[member].struct.unpack_from(self._buf, self._offset)


class RecordView:
    """`t` (the header's values, unpacked at once: every decoder reads it), `h` (the same as a
    dict, built when first asked for) and `u` (the payload)."""

    __slots__ = ("t", "u", "_h")

    def __init__(self, buf: bytes | memoryview, offset: int = 0, header: tuple | None = None) -> None:
        """header: the record's header values when the caller unpacked them already (a ring
        batch's tuples, which lead with the ring's len word)."""
        self.t = (0, *HEADER.struct.unpack_from(buf, offset)) if header is None else header
        self.u = Payload(buf, offset + _PAYLOAD_OFFSET)
        self._h: dict[str, Any] | None = None

    @property
    def h(self) -> dict[str, Any]:
        if self._h is None:
            self._h = HEADER.fields(self.t)
        return self._h

    @classmethod
    def of(cls, rec: np.void | np.ndarray) -> RecordView:
        """A numpy record (spill map, aggregation summary) as a view."""
        return cls(np.asarray(rec, dtype=R.event_dtype).tobytes())

    def __getitem__(self, part: str) -> Any:
        if part == "h":
            return self.h
        if part == "u":
            return self.u
        raise KeyError(part)
