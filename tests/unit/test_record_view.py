"""record_view's struct layouts against numpy's reading of the same bytes, field by field: the
decoders' views must say what records.py's dtypes (checked against the BPF object's BTF) say."""

from __future__ import annotations

import os

import numpy as np

from bee_trace import records as R
from bee_trace.record_view import RecordView


def _as_python(v: object) -> object:
    if isinstance(v, np.void | np.bytes_):
        return v.tobytes() if isinstance(v, np.void) else bytes(v)
    return v.item() if isinstance(v, np.generic) else v


def test_views_read_every_field_as_numpy_does() -> None:
    for _ in range(200):
        raw = os.urandom(R.EVENT_SIZE)
        rec = np.frombuffer(raw, dtype=R.event_dtype)[0]
        view = RecordView(raw)
        for name in R.header_dtype.names or ():
            assert view["h"][name] == _as_python(rec["h"][name]), name
        for member in R.payload_dtype.names or ():
            mdt = R.payload_dtype.fields[member][0]   # type: ignore[index]
            for name in mdt.names or ():
                assert view["u"][member][name] == _as_python(rec["u"][member][name]), (member, name)


def test_a_view_at_an_offset_and_from_a_header_tuple() -> None:
    from bee_trace.ringbuf import Batch

    events = np.zeros(3, dtype=R.event_dtype)
    events["h"]["tgid"] = [11, 12, 13]
    events["h"]["comm"] = [b"a", b"bb", b"ccc"]
    events["u"]["net"]["dport"] = [1, 2, 3]
    batch = Batch.of(events)
    views = [RecordView(batch.raw, off, t) for t, off in zip(batch.headers, batch.offsets)]
    assert [v.h["tgid"] for v in views] == [11, 12, 13]
    assert [v.h["comm"] for v in views] == [b"a", b"bb", b"ccc"]
    assert [v.u["net"]["dport"] for v in views] == [1, 2, 3]
    assert batch["h"]["tgid"].tolist() == [11, 12, 13]
