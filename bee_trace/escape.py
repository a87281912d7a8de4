"""Escaping of attacker-controlled strings for each output medium.

Paths, comm, cmdline, domains and environment names all come from the monitored
workload. Every text writer passes them through one of these functions so a hostile
name cannot move the cursor, recolour the terminal, break a Markdown table, inject
HTML, forge a GitHub workflow command or produce invalid UTF-8 JSON.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "terminal",
    "markdown",
    "gh_data",
    "gh_property",
    "json_safe",
    "json_safe_obj",
]

# Invisible characters that reorder or break lines in terminals and browsers
# ("Trojan Source" bidi overrides, Unicode line/paragraph separators).
_INVISIBLE = frozenset(
    [0x061C, 0x200E, 0x200F, 0x2028, 0x2029, 0xFEFF]
    + list(range(0x202A, 0x202F))
    + list(range(0x2066, 0x206A))
)
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\\": "\\\\"}


def _escape_char(ch: str) -> str | None:
    """Visible replacement for an unsafe character, or None if it is safe as is."""
    named = _NAMED.get(ch)
    if named is not None:
        return named
    cp = ord(ch)
    if cp < 0x20 or 0x7F <= cp <= 0x9F:
        return f"\\x{cp:02x}"  # C0, DEL, C1 (0x9b is a one-byte CSI on some terminals)
    if 0xDC80 <= cp <= 0xDCFF:
        return f"\\x{cp - 0xDC00:02x}"  # surrogateescape'd raw byte: show the byte
    if 0xD800 <= cp <= 0xDFFF or cp in _INVISIBLE:
        return f"\\u{cp:04x}"
    return None


def terminal(s: Any) -> str:
    """Printable one-line text: control chars as \\xNN / \\n, backslash doubled."""
    if not isinstance(s, str):
        s = "" if s is None else str(s)
    # Fast path: most strings need nothing.
    if s.isprintable() and "\\" not in s and s.isascii():
        return s
    out = []
    for ch in s:
        rep = _escape_char(ch)
        out.append(ch if rep is None else rep)
    return "".join(out)


# The backslash is escaped again so the *rendered* text equals terminal(s) exactly.
_MD = {
    "\\": "\\\\",
    "&": "&amp;",
    "<": "&lt;",
    ">": "&gt;",
    "|": "\\|",
    "`": "\\`",
    "*": "\\*",
    "_": "\\_",
    "[": "\\[",
    "]": "\\]",
    "~": "\\~",
    "#": "\\#",
    "!": "\\!",
}


def markdown(s: Any) -> str:
    """Inline Markdown text safe inside table cells and list items (no HTML, no markup)."""
    t = terminal(s)  # control chars and newlines first, as visible escapes
    return "".join(_MD.get(ch, ch) for ch in t)


def gh_data(s: Any) -> str:
    """Message part of a GitHub workflow command (`::warning ...::MESSAGE`)."""
    s = "" if s is None else str(s)
    return s.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def gh_property(s: Any) -> str:
    """Property value of a GitHub workflow command (`title=VALUE`)."""
    return gh_data(s).replace(":", "%3A").replace(",", "%2C")


def json_safe(s: Any) -> str:
    """A str that json.dumps(..., ensure_ascii=False) can encode as UTF-8: lone surrogates as text."""
    if not isinstance(s, str):
        s = "" if s is None else str(s)
    try:
        s.encode("utf-8")
        return s
    except UnicodeEncodeError:
        pass
    out = []
    for ch in s:
        cp = ord(ch)
        if 0xDC80 <= cp <= 0xDCFF:
            out.append(f"\\x{cp - 0xDC00:02x}")
        elif 0xD800 <= cp <= 0xDFFF:
            out.append(f"\\u{cp:04x}")
        else:
            out.append(ch)
    return "".join(out)


def json_safe_obj(obj: Any) -> Any:
    """Recursively apply json_safe to every string (keys included) in dicts/lists/tuples."""
    if isinstance(obj, str):
        return json_safe(obj)
    if isinstance(obj, dict):
        return {json_safe(k) if isinstance(k, str) else k: json_safe_obj(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe_obj(v) for v in obj]
    if isinstance(obj, bytes):
        return json_safe(obj.decode("utf-8", errors="surrogateescape"))
    return obj

