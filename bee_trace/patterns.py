"""Globs -> the kernel's candidate filter (a superset), mirroring bpf/file_match.h.

Each pattern contributes one key that every path it matches must have: the hash of a literal
basename, the literal head or tail of a wildcard basename, or the literal parent directory. The
kernel sends an open when any key of the path hits a set bit; userspace then confirms with exact
glob semantics, so a hash collision costs one record and never a false report."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import records as R
from .globs import literal_key

_MASK64 = (1 << 64) - 1
_FNV_OFFSET = 0xCBF29CE484222325
_FNV_PRIME = 0x100000001B3


def name_hash(name: bytes) -> int:
    """FNV-1a over the name's 8-byte little-endian words, the last zero-padded (name_hash() in
    bpf/file_match.h: one multiply per word on every open)."""
    h = _FNV_OFFSET
    for i in range(0, len(name), 8):
        h = ((h ^ int.from_bytes(name[i:i + 8], "little")) * _FNV_PRIME) & _MASK64
    return h


def filter_bit(value: int, kind: int) -> int:
    x = ((value ^ (kind * 0xFF51AFD7ED558CCD & _MASK64)) * 0x9E3779B97F4A7C15) & _MASK64
    return x >> (64 - R.FILTER_BITS_LOG2)


def _pack(b: bytes) -> int:
    return int.from_bytes(b, "little")


@dataclass(frozen=True)
class Key:
    kind: int      # KEY_BASENAME, KEY_PREFIX + n, KEY_SUFFIX + n, KEY_DIR, or 0 = match all
    value: int


MATCH_ALL = Key(0, 0)


def kernel_key(pattern: str) -> Key:
    """The one key a path must have to match `pattern` (MATCH_ALL when there is none): the
    hash or packed bytes of globs.literal_key, the literal userspace confirms on too."""
    key = literal_key(pattern)
    if key is None:
        return MATCH_ALL
    kind, lit = key[0], key[1].encode()
    if kind == "base":
        return Key(R.KEY_BASENAME, name_hash(lit))
    if kind == "dir":
        return Key(R.KEY_DIR, name_hash(lit))
    n = min(len(lit), 8)
    if kind == "suffix":
        return Key(R.KEY_SUFFIX + n, _pack(lit[-n:]))
    return Key(R.KEY_PREFIX + n, _pack(lit[:n]))


def build_filter(patterns: list[str]) -> np.ndarray:
    """The struct file_filter value for a set of globs."""
    f = np.zeros(1, dtype=R.file_filter_dtype)
    bits = f["bits"][0]
    for pattern in patterns:
        key = kernel_key(pattern)
        if key.kind == 0:
            f["match_all"] = 1
            continue
        bit = filter_bit(key.value, key.kind)
        bits[bit >> 6] |= np.uint64(1 << (bit & 63))
        if R.KEY_PREFIX < key.kind <= R.KEY_PREFIX + 8:
            f["prefix_lengths"] |= 1 << (key.kind - R.KEY_PREFIX)
        elif R.KEY_SUFFIX < key.kind <= R.KEY_SUFFIX + 8:
            f["suffix_lengths"] |= 1 << (key.kind - R.KEY_SUFFIX)
    return f


def path_keys(path: bytes) -> list[Key]:
    """The keys the kernel derives from a path (for tests and `check`): same split as the C code."""
    parts = path.rsplit(b"/", 2)
    base = parts[-1]
    keys = [Key(R.KEY_BASENAME, name_hash(base))]
    if len(parts) >= 2:
        keys.append(Key(R.KEY_DIR, name_hash(parts[-2])))
    padded = b"\0" * 8 + path
    tail = padded[-8:]
    head = (base + b"\0" * 8)[:8]
    for n in range(1, 9):
        keys.append(Key(R.KEY_SUFFIX + n, _pack(tail[8 - n:])))
        keys.append(Key(R.KEY_PREFIX + n, _pack(head[:n])))
    return keys


def is_candidate(filt: np.ndarray, path: bytes) -> bool:
    """Python model of path_is_candidate() in bpf/file_match.h."""
    if int(filt["match_all"][0]):
        return True
    bits = filt["bits"][0]
    pre, suf = int(filt["prefix_lengths"][0]), int(filt["suffix_lengths"][0])
    for key in path_keys(path):
        if R.KEY_PREFIX < key.kind <= R.KEY_PREFIX + 8 and not pre & (1 << (key.kind - R.KEY_PREFIX)):
            continue
        if R.KEY_SUFFIX < key.kind <= R.KEY_SUFFIX + 8 and not suf & (1 << (key.kind - R.KEY_SUFFIX)):
            continue
        bit = filter_bit(key.value, key.kind)
        if int(bits[bit >> 6]) >> (bit & 63) & 1:
            return True
    return False


def high_tier(globs: list[str]) -> list[str]:
    """The patterns whose files are keys or cloud credentials (the highest tier): they keep the
    critical ring's headroom under a flood of lower-tier events."""
    from .classify import _file_class

    out = []
    for g in globs:
        sample = "/h/" + g.replace("**/", "").replace("**", "x").replace("*", "x").replace("?", "x")
        if _file_class(sample)[0] in ("ssh_key", "cloud_credential", "private_key", "credential"):
            out.append(g)
    return out
