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
from collections.abc import Callable, Iterable, Sequence

__all__ = ["compile_glob", "glob_to_regex", "literal_key", "GlobSet", "GlobGroup", "GlobError"]


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


_WILD = set("*?[")


def literal_key(pattern: str) -> tuple[str, str] | None:
    """A literal that every path matching ``pattern`` shows in its last two components:
    ("base", the basename), ("suffix", the basename's tail after its last wildcard),
    ("prefix", its head before the first), ("dir", the parent's name); None when there is none.
    The kernel's candidate filter hashes the same literal (bee_trace/patterns.py)."""
    parts = [p for p in pattern.split("/") if p]
    if not parts or parts[-1] == "**" or "\\" in parts[-1]:
        return None
    base = parts[-1]
    if not _WILD & set(base):
        return ("base", base)
    first = min(base.index(c) for c in _WILD if c in base)
    last = max(i for i, c in enumerate(base) if c in _WILD or c == "]")
    head, tail = base[:first], base[last + 1:]
    if tail and len(tail) >= len(head):
        return ("suffix", tail)
    if head:
        return ("prefix", head)
    if len(parts) >= 2 and parts[-2] != "**" and not (_WILD | {"\\"}) & set(parts[-2]):
        return ("dir", parts[-2])
    return None


def required_literal(pattern: str) -> str:
    """The longest run of literal characters in one component that every matching path
    contains verbatim ("" when there is none): a substring test rules most paths out before
    the regex runs. Components with classes or escapes are left out (their parsing is subtle)."""
    best = ""
    for part in pattern.split("/"):
        if not part or part == "**" or "[" in part or "\\" in part:
            continue
        for piece in re.split(r"[*?]", part):
            if len(piece) > len(best):
                best = piece
    return best


def _literal(part: str) -> bool:
    return part != "**" and not (_WILD | {"\\"}) & set(part)


def simple_test(pattern: str) -> Callable[[str], bool] | None:
    """A plain string test equivalent to the pattern's regex, for the shapes most policies are
    made of: `**/name`, `**/dir/file`, `**/*.ext`, `**/dir/**`, `/abs/path`, `/abs/dir/**`
    (literal components); None for anything else. Paths given to it are normalised."""
    parts = [p for p in pattern.split("/") if p]
    if not parts:
        return None
    if pattern.startswith("/"):
        if all(_literal(p) for p in parts):
            exact = "/" + "/".join(parts)
            return lambda path: path == exact
        if len(parts) > 1 and parts[-1] == "**" and all(_literal(p) for p in parts[:-1]):
            head = "/" + "/".join(parts[:-1]) + "/"
            return lambda path: len(path) > len(head) and path.startswith(head)
        return None
    if parts[0] == "**":
        parts = parts[1:]
    if not parts:
        return None
    if all(_literal(p) for p in parts):
        tail = "/".join(parts)
        slash_tail = "/" + tail
        return lambda path: path == tail or path.endswith(slash_tail)
    if len(parts) == 1 and parts[0] != "**" and parts[0].startswith("*") \
            and _literal(parts[0].lstrip("*")):
        suffix = parts[0].lstrip("*")   # `*` never crosses '/', and the suffix has none
        return lambda path: path.endswith(suffix)
    if len(parts) > 1 and parts[-1] == "**" and all(_literal(p) for p in parts[:-1]):
        inner = "/" + "/".join(parts[:-1]) + "/"

        def below(path: str) -> bool:
            i = ("/" + path).find(inner)   # the first occurrence leaves the most after it
            return i >= 0 and i + len(inner) < len(path) + 1
        return below
    return None


def _regex_test(regex: re.Pattern[str], literal: str) -> Callable[[str], bool]:
    def test(path: str) -> bool:
        return literal in path and regex.match(path) is not None
    return test


class KeyIndex:
    """Patterns by their literal key (literal_key): a path's candidates are those whose key it
    shows, those without one whose longest literal component is one of its components, and
    those with neither, as positions in the pattern list."""

    def __init__(self, patterns: Sequence[str]) -> None:
        self._always: list[int] = []
        # Keyless patterns with a literal component (`**/.git/**`, `/etc/ssl/certs/**`): every
        # path they match has that component, so they are candidates of those paths only.
        self._component: dict[str, list[int]] = {}
        self._base: dict[str, list[int]] = {}     # literal basename -> patterns
        self._dir: dict[str, list[int]] = {}      # literal parent name -> patterns
        affix: dict[tuple[str, int], dict[str, list[int]]] = {}  # (kind, length) -> literal
        for i, p in enumerate(patterns):
            key = literal_key(p)
            if key is None:
                literals = [c for c in p.split("/") if c and _literal(c)]
                if literals:
                    self._component.setdefault(max(literals, key=len), []).append(i)
                else:
                    self._always.append(i)
            elif key[0] == "base":
                self._base.setdefault(key[1], []).append(i)
            elif key[0] == "dir":
                self._dir.setdefault(key[1], []).append(i)
            else:
                affix.setdefault((key[0], len(key[1])), {}).setdefault(key[1], []).append(i)
        self._component_names = frozenset(self._component)
        # (length, literal -> patterns), one table per literal length, shortest first
        self._suffix = sorted((n, t) for (kind, n), t in affix.items() if kind == "suffix")
        self._prefix = sorted((n, t) for (kind, n), t in affix.items() if kind == "prefix")

    def candidates(self, path: str) -> list[int]:
        """Positions that may match the normalised path, unordered."""
        slash = path.rfind("/")
        base = path[slash + 1:]
        found = self._always[:]
        # One C-level pass over the path's components (most paths have none of these).
        for part in self._component_names.intersection(path.split("/")):
            found += self._component[part]
        hit = self._base.get(base)
        if hit:
            found += hit
        if slash >= 0 and self._dir:
            hit = self._dir.get(path[path.rfind("/", 0, slash) + 1:slash])
            if hit:
                found += hit
        size = len(base)
        for n, table in self._suffix:
            if n > size:
                break
            hit = table.get(base[size - n:])
            if hit:
                found += hit
        for n, table in self._prefix:
            if n > size:
                break
            hit = table.get(base[:n])
            if hit:
                found += hit
        return found


class GlobSet:
    """An ordered set of globs. A path is tried only against its candidates (KeyIndex), in the
    set's order: a few dict lookups and plain string tests or one or two small regexes instead
    of one alternation of every pattern."""

    def __init__(self, patterns: Iterable[str]) -> None:
        self.patterns: tuple[str, ...] = tuple(patterns)
        self._last_path: str | None = None
        self._last: str | None = None
        self._res = [compile_glob(p) for p in self.patterns]
        # Per pattern: a string test where its shape allows, else a substring prefilter
        # (required_literal) and then the regex.
        self._tests: list[Callable[[str], bool]] = []
        for p, r in zip(self.patterns, self._res):
            self._tests.append(simple_test(p) or _regex_test(r, required_literal(p)))
        self._index = KeyIndex(self.patterns)

    def _candidates(self, path: str) -> list[int]:
        return self._index.candidates(path)

    def match(self, path: str) -> str | None:
        """Return the first pattern (in order) that matches ``path``, else None."""
        if not self.patterns or not path:
            return None
        if path == self._last_path:     # confirmation and classification ask twice per event
            return self._last
        norm = _normalise(path)
        candidates = self._candidates(norm)
        if len(candidates) > 1:
            candidates.sort()   # the first pattern in the set's order wins
        tests = self._tests
        found = next((self.patterns[i] for i in candidates if tests[i](norm)), None)
        self._last_path, self._last = path, found
        return found

    def __contains__(self, path: str) -> bool:
        return self.match(path) is not None

    def __len__(self) -> int:
        return len(self.patterns)

    def __bool__(self) -> bool:
        return bool(self.patterns)

    def __repr__(self) -> str:
        return f"GlobSet({list(self.patterns)!r})"


class GlobGroup:
    """Several GlobSets asked about one path (exclusions, reads, writes, classes): one index over
    all their patterns, so a path is looked up once, not once per set. match() gives each set's
    first match, as each set's own match() would."""

    def __init__(self, sets: Sequence[GlobSet]) -> None:
        self.sets = tuple(sets)
        self._patterns = [p for gs in self.sets for p in gs.patterns]
        self._owner = [n for n, gs in enumerate(self.sets) for _ in gs.patterns]
        self._tests = [t for gs in self.sets for t in gs._tests]
        self._index = KeyIndex(self._patterns)
        self._last_path: str | None = None
        self._last: tuple[str | None, ...] = ()

    def match(self, path: str) -> tuple[str | None, ...]:
        if path == self._last_path:     # confirmation and classification ask about one path
            return self._last
        found: list[str | None] = [None] * len(self.sets)
        if path:
            norm = _normalise(path)
            owner, tests, done = self._owner, self._tests, [False] * len(self.sets)
            for g in sorted(self._index.candidates(norm)):   # by set, then in each set's order
                n = owner[g]
                if not done[n] and tests[g](norm):
                    found[n], done[n] = self._patterns[g], True
        self._last_path, self._last = path, tuple(found)
        return self._last
