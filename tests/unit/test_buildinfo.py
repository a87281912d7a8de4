"""Which object runs: sha256, the build record written next to it (only when it matches), BTF."""

from __future__ import annotations

import hashlib
import json

from bee_trace.buildinfo import BUILD_INFO_NAME, build_record, describe_build, kernel_btf_info, object_info


def test_object_info_uses_only_a_matching_build_record(tmp_path):
    obj = tmp_path / "bee_trace.bpf.o"
    obj.write_bytes(b"\x7fELF-not-really")
    src = tmp_path / "a.bpf.c"
    src.write_text("int x;")
    record = build_record(obj, "true", [src])
    assert record["sha256"] == hashlib.sha256(obj.read_bytes()).hexdigest()
    (tmp_path / BUILD_INFO_NAME).write_text(json.dumps(record))
    info = object_info(obj)
    assert info["sha256"] == record["sha256"] and info["build"]["sources_sha256"] == record["sources_sha256"]
    assert describe_build(info["build"]).startswith("built ")
    obj.write_bytes(b"rebuilt without a record")
    assert object_info(obj)["build"] is None
    assert "no build record" in describe_build(None)


def test_missing_object_and_btf(tmp_path):
    assert object_info(tmp_path / "none.o") == {"path": str(tmp_path / "none.o"), "exists": False}
    btf = tmp_path / "vmlinux"
    btf.write_bytes(b"BTF")
    info = kernel_btf_info(btf)
    assert info["size"] == 3 and info["sha256"] == hashlib.sha256(b"BTF").hexdigest()
