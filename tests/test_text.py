"""monitor.text: HTML to plain text, control characters, folding, truncation."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.text import (
    fold_whitespace,
    html_to_text,
    parse_retry_after,
    strip_control,
    truncate,
)


@pytest.mark.parametrize(("html", "text"), [
    ("plain text", "plain text"),
    ("<p>Hello&nbsp;<b>wor</b>ld</p><p>Next</p>", "Hello world Next"),
    ("line<br>break<br/>and<BR />more", "line break and more"),
    ("<ul><li>one</li><li>two</li></ul>", "one two"),
    ("<td>Ceyhan</td><td>14</td>", "Ceyhan 14"),
    ('<a href="https://e.org/">link</a>ed <span class="x">words</span>', "linked words"),
    ("x<script>alert('<p>hi</p>')</script>y", "x y"),
    ("a<style type='text/css'>p { color: red }</style>b", "a b"),
    ("a<SCRIPT>evil()</SCRIPT >b", "a b"),
    ("before <script>never closed", "before"),
    ("Hel<!-- a comment -->lo", "Hello"),
    ("text <!-- unterminated comment", "text"),
    ("<![CDATA[inside <i>cdata</i>]]> after", "inside cdata after"),
    ("&lt;p&gt;escaped &lt;b&gt;twice&lt;/b&gt;&lt;/p&gt;", "escaped twice"),
    ("&lt;script&gt;alert(1)&lt;/script&gt;ok", "ok"),
    ("AT&amp;T &amp;amp; S&P 500 &lt; 4000", "AT&T &amp; S&P 500 < 4000"),
    ("5 < 6 > 4", "5 < 6 > 4"),
    ("&hellip; &mdash; &#8212; &#x2014; &eacute;", "… — — — é"),
    ("&unknown; &amp", "&unknown; &"),
    ("  lots\n\tof \r\n whitespace\u00a0\u2028here ", "lots of whitespace here"),
    ("\x1b[31mred\x1b[0m \x07bell\x00nul", "red bellnul"),
    ("<\x00script>x</script>y &#129;z", "y z"),
    ("<&#129;script>x", ""),  # an unclosed <script> runs to the end
    ("<img src=x>Caption", "Caption"),
    ("Привет, <b>мир</b>!", "Привет, мир!"),
    ("", ""),
])
def test_html_to_text(html: str, text: str) -> None:
    assert html_to_text(html) == text


def test_html_to_text_nested_tag_tricks_leave_no_tag() -> None:
    for tricky in ("<<script>script>alert(1)", "<scr<script>ipt>alert(1)</script>",
                   "&lt;<b>script&gt;x", "<<<<b>b>b>b>x", "<script <b>>x"):
        out = html_to_text(tricky)
        assert not re.search(r"<[A-Za-z/!?]", out), (tricky, out)


@pytest.mark.parametrize(("shape", "text"), [
    ("<" * 100_000 + "S", "S"),
    ("&lt;" * 100_000 + "p", "p"),
    ("<a" * 100_000, "a" * 100_000),  # never closed: no tag, only stray "<"s
    ("</" * 100_000, "/" * 100_000),
    ("<script" * 20_000 + ">x", "script" * 19_999),
    ("<!--" * 50_000, ""),
    ("&#x1" * 50_000, ""),
])
def test_html_to_text_adversarial_shapes(shape: str, text: str) -> None:
    # Every pattern is linear; a quadratic one turns each of these into minutes.
    assert html_to_text(shape) == text


def test_strip_control_keeps_newline_and_tab() -> None:
    assert strip_control("a\tb\nc") == "a\tb\nc"
    assert strip_control("a\r\nb") == "a\nb"
    assert strip_control("\x1b[1;31mred\x1b[0m") == "red"
    assert strip_control("x\x1b]0;window title\x07y") == "xy"
    assert strip_control("x\x1b]8;;https://e.org\x1b\\link\x1b]8;;\x1b\\y") == "xlinky"
    assert strip_control("x\x1bPq#0;2;0;0;0\x1b\\y") == "xy"  # DCS (sixel)
    assert strip_control("x\x1b(0y\x1bMz\x1b") == "xyz"
    assert strip_control("C1\x9b31m \x85 \x7f DEL") == "C131m   DEL"
    assert strip_control("lone \ud800 surrogate") == "lone  surrogate"
    assert strip_control("Қазақ «текст» — ok") == "Қазақ «текст» — ok"


def test_fold_whitespace() -> None:
    assert fold_whitespace("  a \n\t b\u00a0\u3000c  ") == "a b c"
    assert fold_whitespace("") == ""


@pytest.mark.parametrize(("s", "limit", "out"), [
    ("short", 10, "short"),
    ("exactly10!", 10, "exactly10!"),
    ("hello world this is long", 12, "hello world…"),
    ("x" * 20, 5, "xxxx…"),
    ("a verylongunbrokenword", 12, "a verylongu…"),  # no boundary near the end: cut
    ("abc", 1, "a"),
    ("abc", 0, ""),
])
def test_truncate(s: str, limit: int, out: str) -> None:
    assert truncate(s, limit) == out
    assert len(truncate(s, limit)) <= max(limit, 0)


_FRAGMENTS = st.sampled_from([
    "<", ">", "&", ";", "/", "!", "-", "[", "]", "script", "SCRIPT", "style", "<script>",
    "</script>", "<style>", "<!--", "-->", "<![CDATA[", "]]>", "&lt;", "&gt;", "&amp;",
    "&#x1b;", "&#27;", "&#0;", "&#x9b;", "&#129;", "&#x8d;", "&NewLine;",
    "\x1b", "\x1b[", "\x1b]", "\x07", "\x9b", "\x00",
    "\r", "\n", "\t", "\u2028", "\ud800", "<p>", "<br/>", "<b>", "x", " ", "é", "Қ",
])
_HTMLISH = st.lists(st.one_of(_FRAGMENTS, st.text(max_size=8)), max_size=60).map("".join)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(), _HTMLISH))
def test_html_to_text_never_leaks_markup_or_controls(s: str) -> None:
    out = html_to_text(s)
    assert "<script" not in out.lower()
    assert "\x1b" not in out and not _CONTROL.search(out)
    assert "\n" not in out and "\t" not in out  # folded to one line
    assert out == out.strip() and "  " not in out


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(), _HTMLISH))
def test_strip_control_never_leaks_controls(s: str) -> None:
    out = strip_control(s)
    assert "\x1b" not in out and not _CONTROL.search(out)
    assert out.count("\n") == s.count("\n") and out.count("\t") == s.count("\t")


@settings(max_examples=200, deadline=None)
@given(st.text(), st.integers(min_value=0, max_value=50))
def test_truncate_never_exceeds_the_limit(s: str, limit: int) -> None:
    out = truncate(s, limit)
    assert len(out) <= limit
    assert out == s or len(s) > limit


def test_retry_after_in_seconds_or_as_a_date() -> None:
    now = datetime(2026, 1, 2, 3, 0, tzinfo=UTC)
    assert parse_retry_after("Fri, 02 Jan 2026 03:00:30 GMT", now) == 30.0
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None
