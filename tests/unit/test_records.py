"""records.py must mirror bpf/events.h exactly: compare with the BTF of the built object."""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import Any

import numpy as np
import pytest

from bee_trace import records as R
from bee_trace.kernel import OBJECT_PATH


def _btf_structs() -> dict[str, dict]:
    if not OBJECT_PATH.exists() or not shutil.which("bpftool"):
        pytest.skip("BPF object not built (run `make bpf`)")
    out = subprocess.run(["bpftool", "-j", "btf", "dump", "file", str(OBJECT_PATH)],
                         check=True, capture_output=True, text=True).stdout
    types = json.loads(out)["types"]
    return {t["name"]: t for t in types if t.get("kind") in ("STRUCT", "UNION") and t.get("name")}


@pytest.mark.parametrize("name", sorted(R.C_STRUCTS))
def test_struct_layout_matches_btf(name: str) -> None:
    structs = _btf_structs()
    assert name in structs, f"struct {name} not in the object's BTF"
    btf = structs[name]
    dtype = R.C_STRUCTS[name]
    assert btf["size"] == dtype.itemsize, f"{name}: C size {btf['size']} != numpy {dtype.itemsize}"
    fields: dict[str, Any] = dict(dtype.fields or {})
    for member in btf["members"]:
        mname = member["name"]
        if mname in ("", "(anon)"):  # the anonymous payload union of struct event
            assert "u" in fields and fields["u"][1] == member["bits_offset"] // 8
            continue
        assert mname in fields, f"{name}.{mname} missing in records.py"
        assert fields[mname][1] == member["bits_offset"] // 8, f"{name}.{mname} offset differs"


def test_ring_stride_is_8_aligned() -> None:
    assert R.RING_STRIDE % 8 == 0 and R.RING_STRIDE == R.EVENT_SIZE + R.RINGBUF_HDR
    assert np.dtype(R.ring_record_dtype).itemsize == R.RING_STRIDE
