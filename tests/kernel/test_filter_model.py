"""The kernel's candidate filter (bpf/file_match.h) against its Python model
(bee_trace/patterns.py): a test-only BPF_PROG_TYPE_SYSCALL program (tests/bpf/filtertest.bpf.c)
runs the real C code on each path through BPF_PROG_TEST_RUN, for the default policy and for
policies of many prefix, suffix, basename and parent-directory keys. Both the split search
(link/rename names) and the known split of an open (dentry names) must agree with the model,
and every path the exact globs match must be a candidate (the filter is a superset)."""

from __future__ import annotations

import random
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest

from bee_trace import patterns
from bee_trace._libbpf import Object, Program
from bee_trace.config import default_config
from bee_trace.globs import GlobSet
from bee_trace.inodes import inode_slot

OBJECT = Path(__file__).resolve().parents[2] / "build" / "tests" / "filtertest.bpf.o"
PATH_LEN = 512
# struct filter_args: path, len, slash, slash2, slot, then out: searched, split
ARGS = struct.Struct(f"<{PATH_LEN}sIiiIII")
FILTER_ALL, FILTER_HIGH = 0, 1


class FilterProgram:
    def __init__(self) -> None:
        self.obj = Object(str(OBJECT))
        self.obj.load()
        self.prog: Program = next(p for p in self.obj.programs() if p.name == "filter_test")

    def set_filter(self, globs: list[str], slot: int = FILTER_ALL) -> None:
        self.obj.map("file_filter").update(struct.pack("<I", slot),
                                           patterns.build_filter(globs).tobytes())

    def run(self, path: bytes, slot: int = FILTER_ALL) -> tuple[bool, bool]:
        slash = path.rfind(b"/")
        slash2 = path.rfind(b"/", 0, slash) if slash > 0 else -1
        ctx = bytearray(ARGS.pack(path, len(path), slash, slash2, slot, 9, 9))
        assert self.prog.test_run(ctx) == 0
        searched, split = ARGS.unpack(bytes(ctx))[-2:]
        return bool(searched), bool(split)

    def close(self) -> None:
        self.obj.close()


@pytest.fixture(scope="module")
def prog() -> Iterator[FilterProgram]:
    if not OBJECT.exists():
        pytest.skip(f"{OBJECT} not built (run `make bpf`)")
    p = FilterProgram()
    yield p
    p.close()


def sample_paths(globs: list[str], rng: random.Random) -> list[bytes]:
    """Paths each glob matches, near misses (one byte changed, another directory, a longer or
    shorter name) and random paths, with names from 1 to 255 bytes."""
    out: list[bytes] = []
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789._-"
    for g in globs:
        concrete = g.replace("**/", "home/u/").replace("**", "x")
        for _ in range(3):
            concrete_i = "".join(rng.choice(alphabet) * rng.randint(1, 3) if c in "*?" else c
                                 for c in concrete.replace("[", "").replace("]", ""))
            p = ("/" + concrete_i.lstrip("/")).encode()
            out += [p, p[:-1], p + b"x", p.replace(b"/home/u", b"/srv"), b"rel/" + p.rsplit(b"/", 1)[-1]]
    for _ in range(400):
        parts = ["".join(rng.choice(alphabet) for _ in range(rng.choice([1, 2, 3, 5, 8, 9, 16, 40, 255])))
                 for _ in range(rng.randint(1, 4))]
        out.append(("/" if rng.random() < 0.8 else "").encode() + "/".join(parts).encode())
    return [p for p in out if len(p) < PATH_LEN - 1]


def policy_cases(rng: random.Random) -> list[list[str]]:
    cfg = default_config()
    default = list(cfg.files.watch_read) + list(cfg.files.watch_write)
    many = []
    for n in range(1, 9):       # every prefix and suffix length
        many += [f"**/{'p' * n}*", f"**/*{'s' * n}", f"**/*.{'e' * (n - 1)}" if n > 1 else "**/*."]
    many += ["**/exact_name", "**/.hidden/*", "/etc/abc/*", "**/a", "**/" + "l" * 200]
    return [default, many, patterns.high_tier(default)]


def test_kernel_filter_agrees_with_the_python_model(prog: FilterProgram) -> None:
    rng = random.Random(1234)
    checked = candidates = 0
    for globs in policy_cases(rng):
        prog.set_filter(globs, FILTER_ALL)
        prog.set_filter(patterns.high_tier(globs), FILTER_HIGH)
        exact = GlobSet(globs)
        filt = patterns.build_filter(globs)
        high = patterns.build_filter(patterns.high_tier(globs))
        for path in sample_paths(globs, rng):
            want = patterns.is_candidate(filt, path)
            assert prog.run(path) == (want, want), path
            # a superset: every path the exact globs match is a kernel candidate
            assert want or not exact.match(path.decode()), path
            want_high = patterns.is_candidate(high, path)
            assert prog.run(path, FILTER_HIGH) == (want_high, want_high), path
            checked += 1
            candidates += want
    # the samples exercise both outcomes
    assert checked > 1000 and 0.1 < candidates / checked < 0.9, (checked, candidates)


def test_kernel_inode_slot_agrees_with_userspace(prog: FilterProgram) -> None:
    """userspace sets the slot byte of every inode it seeds: a disagreement would hide seeded
    inodes (hard links) from the kernel."""
    slot_prog = next(p for p in prog.obj.programs() if p.name == "slot_test")
    rng = random.Random(99)
    cases = [(0, 0), (1, 1), ((1 << 64) - 1, (1 << 32) - 1), (2, (8 << 20) | 1)]
    cases += [(rng.getrandbits(rng.choice([16, 32, 64])), rng.getrandbits(32)) for _ in range(500)]
    for ino, dev in cases:
        ctx = bytearray(struct.pack("<QII", ino, dev, 1 << 31))
        assert slot_prog.test_run(ctx) == 0
        assert struct.unpack("<QII", bytes(ctx))[2] == inode_slot(dev, ino), (ino, dev)
