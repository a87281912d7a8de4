"""Path globs with gitignore-like semantics.

Rules:
- ``**`` as a whole path component matches any number of components (including zero);
  a trailing ``/**`` matches everything below the directory (not the directory itself).
- ``*`` and ``?`` never cross ``/``; ``[...]`` / ``[!...]`` are character classes.
- A pattern that neither starts with ``/`` nor ``**/`` matches at any depth (as if
  prefixed with ``**/``), so ``id_rsa`` and ``.aws/credentials`` work as expected.
- ``\\x`` escapes a character.

The translation is hand-written instead of composing ``fnmatch.translate`` output,
because fnmatch lets ``*`` cross ``/`` and wraps each result in ``(?s:...)\\Z``,
which cannot be spliced into a component-aware expression.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["compile_glob", "glob_to_regex", "GlobSet", "GlobError"]


class GlobError(ValueError):
    """A pattern that cannot be compiled (e.g. empty)."""


def _class(seg: str, i: int) -> tuple[str, int] | None:
    """Translate a ``[...]`` class starting at seg[i]; None if it is not closed."""
    j = i + 1
    negate = j < len(seg) and seg[j] in "!^"
    if negate:
        j += 1
    start = j
    # A ']' right after '[' or '[!' is a literal member, as in fnmatch.
    if j < len(seg) and seg[j] == "]":
        j += 1
    while j < len(seg) and seg[j] != "]":
        j += 1
    if j >= len(seg):
        return None
    body = seg[start:j]
    # Escape each member except '-' so ranges survive and nothing else is special.
    members = "".join(c if c == "-" else re.escape(c) for c in body)
    if negate:
        return f"[^/{members}]", j + 1
    # A range such as '+-0' contains '/', which a class must never match.
    return f"(?!/)[{members}]", j + 1


def _segment(seg: str) -> str:
    """Translate one path component (no '/') to a regex fragment."""
    out: list[str] = []
    i = 0
    while i < len(seg):
        c = seg[i]
        if c == "*":
            # '**' inside a component (e.g. 'a**b') is just '*'.
            while i < len(seg) and seg[i] == "*":
                i += 1
            out.append("[^/]*")
            continue
        if c == "?":
            out.append("[^/]")
        elif c == "[":
            cls = _class(seg, i)
            if cls is None:
                out.append(re.escape(c))
            else:
                frag, i = cls
                out.append(frag)
                continue
        elif c == "\\" and i + 1 < len(seg):
            i += 1
            out.append(re.escape(seg[i]))
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)


def glob_to_regex(pattern: str) -> str:
    """Return the (unanchored) regex source for a glob pattern."""
    if not isinstance(pattern, str) or not pattern.strip():
        raise GlobError("empty glob pattern")
    absolute = pattern.startswith("/")
    parts = [p for p in pattern.split("/") if p != ""]  # collapse '//' and edge slashes
    if not parts:
        return "/.*" if absolute else ".*"  # '/' alone: everything
    if not absolute and parts[0] != "**":
        parts.insert(0, "**")

    out: list[str] = ["/" if absolute else ""]
    last = len(parts) - 1
    for idx, part in enumerate(parts):
        if part == "**":
            if idx == last:
                # Trailing '**': one or more further components ('.+' may contain '/').
                out.append(".+" if idx else ".*")
            else:
                # Zero or more whole components, each ending in '/'.
                out.append("(?:[^/]*/)*" if idx or absolute else "(?:/?(?:[^/]*/)*)?")
        else:
            out.append(_segment(part))
            if idx != last:
                out.append("/")
    return "".join(out)


def compile_glob(pattern: str) -> re.Pattern[str]:
    """Compile a glob to a regex that must match the whole path (use .fullmatch or .match)."""
    return re.compile(r"(?s:" + glob_to_regex(pattern) + r")\Z")


def _normalise(path: str) -> str:
    # Kernel paths may contain '//' (e.g. from joined dirfd paths); globs ignore them.
    if "//" in path:
        path = re.sub(r"/{2,}", "/", path)
    return path


class GlobSet:
    """An ordered set of globs matched in one regex pass."""

    def __init__(self, patterns: Iterable[str]) -> None:
        self.patterns: tuple[str, ...] = tuple(patterns)
        if self.patterns:
            alts = [
                f"(?P<g{i}>{glob_to_regex(p)})" for i, p in enumerate(self.patterns)
            ]
            self._re: re.Pattern[str] | None = re.compile(
                r"(?s:" + "|".join(alts) + r")\Z"
            )
        else:
            self._re = None

    def match(self, path: str) -> str | None:
        """Return the first pattern (in order) that matches ``path``, else None."""
        if self._re is None or not path:
            return None
        m = self._re.match(_normalise(path))
        if m is None:
            return None
        # Alternation tries patterns in order, so the matched group is the first match.
        return self.patterns[int(m.lastgroup[1:])]  # type: ignore[index]

    def __contains__(self, path: str) -> bool:
        return self.match(path) is not None

    def __len__(self) -> int:
        return len(self.patterns)

    def __bool__(self) -> bool:
        return bool(self.patterns)

    def __repr__(self) -> str:
        return f"GlobSet({list(self.patterns)!r})"
