import json
import unicodedata

import pytest

from bee_trace.escape import gh_data, gh_property, json_safe, json_safe_obj, markdown, terminal

HOSTILE = "ev|il<script>alert(1)</script>\nline2\x1b[31mred\x1b[0m\r\x07\x7f\x9b`x`*b*_u_[l](u)&amp;\\n"


def _no_raw_controls(s: str) -> None:
    for ch in s:
        assert unicodedata.category(ch) not in ("Cc", "Cs", "Zl", "Zp"), repr(ch)
        assert ch not in "\u202e\u2066"


def test_terminal_escapes_controls() -> None:
    t = terminal(HOSTILE)
    _no_raw_controls(t)
    assert "\\x1b[31m" in t
    assert "\\n" in t and "\n" not in t
    assert "\\r" in t and "\\x07" in t and "\\x7f" in t and "\\x9b" in t
    # A literal backslash-n in the input is distinguishable from a newline.
    assert terminal("a\\nb") == "a\\\\nb"
    assert terminal("a\nb") == "a\\nb"


def test_terminal_plain_text_unchanged() -> None:
    assert terminal("/home/u/.ssh/id_rsa") == "/home/u/.ssh/id_rsa"
    assert terminal("naïve–ünïcode 日本") == "naïve–ünïcode 日本"
    assert terminal(None) == "" and terminal(42) == "42"


def test_terminal_surrogates_and_bidi() -> None:
    raw = b"a\xffb".decode("utf-8", errors="surrogateescape")
    assert terminal(raw) == "a\\xffb"
    assert terminal("x\ud800y") == "x\\ud800y"
    assert terminal("a\u202eb") == "a\\u202eb"
    assert terminal("a\u2028b") == "a\\u2028b"
    _no_raw_controls(terminal(raw + "\u2066"))


def test_markdown_is_inert() -> None:
    m = markdown(HOSTILE)
    _no_raw_controls(m)
    assert "<" not in m and ">" not in m
    assert "&lt;script&gt;" in m
    # Every markup character is backslash-escaped (no bare '|' etc.).
    for ch in "|`*_[]":
        idx = [i for i, c in enumerate(m) if c == ch]
        assert idx, ch
        for i in idx:
            assert m[i - 1] == "\\", (ch, m)
    assert "&amp;amp;" in m  # '&' escaped before entities are produced
    assert "\n" not in m and "\\\\x1b" in m


def test_markdown_table_cell_has_one_unescaped_column() -> None:
    cell = markdown("a|b|c")
    # Count unescaped pipes: none.
    unescaped = sum(1 for i, c in enumerate(cell) if c == "|" and (i == 0 or cell[i - 1] != "\\"))
    assert unescaped == 0


def test_gh_data_and_property() -> None:
    assert gh_data("50%\r\nnext") == "50%25%0D%0Anext"
    assert gh_property("a:b,c%\n") == "a%3Ab%2Cc%25%0A"
    assert "::" not in gh_property("x::y")
    # Encoding is reversible: decoding gives back the input.
    s = "a%b\nc:d,e\r"
    dec = gh_property(s).replace("%2C", ",").replace("%3A", ":").replace("%0A", "\n") \
        .replace("%0D", "\r").replace("%25", "%")
    assert dec == s


def test_json_safe() -> None:
    raw = b"/tmp/\xff\xfename".decode("utf-8", errors="surrogateescape")
    with pytest.raises(UnicodeEncodeError):
        raw.encode("utf-8")
    s = json_safe(raw)
    s.encode("utf-8")
    assert s == "/tmp/\\xff\\xfename"
    assert json_safe("ok\u00e9") == "ok\u00e9"
    obj = json_safe_obj({"p": raw, "l": [raw, 1], raw: None, "b": b"\xff"})
    text = json.dumps(obj, ensure_ascii=False)
    text.encode("utf-8")
    assert json.loads(text)["p"] == "/tmp/\\xff\\xfename"
