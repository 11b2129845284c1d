"""An article page → its main text (``full_text``): trafilatura, and only here.

The page's navigation, sidebars ("most read"), cookie banners, tickers and
footers are left out by trafilatura's extraction (precision favoured: a rule
hit on a sidebar is a false alert). What is kept is the article's **lead**: its
first paragraphs, up to :data:`LEAD_PARAGRAPHS` and :data:`LEAD_CHARS`. On
labelled articles (``bench/bench_content_depth.py``) the shipped rules are at
their best on the headline with the first two or three paragraphs; past
those, an article's background paragraphs name the region's other topics and
the false positives climb (headline + whole body: macro-F1 0.79-0.86 against
0.95-0.98). The lead is what is stored and matched as the field ``content``.

Bytes are decoded here, never by trafilatura: its own decoding would also
decompress a gzip body, unbounded. The charset is the header's or the page's
``<meta>``, checked; else UTF-8 if valid; else a guess (charset_normalizer).
A page with no readable text (a JavaScript-only shell) gives "".
"""

from __future__ import annotations

import codecs
import logging
import re
from collections.abc import Mapping

from monitor.parse._common import CHARSET

__all__ = ["LEAD_CHARS", "LEAD_PARAGRAPHS", "decode_page", "extract_text", "lead"]

LEAD_PARAGRAPHS = 3
LEAD_CHARS = 1500
# Lines shorter than this (a dateline, "Share", a caption credit) do not count
# as one of the lead's paragraphs, though they are kept.
_SHORT_LINE = 40
_META_CHARSET = re.compile(rb"""<meta[^>]{0,200}?charset\s*=\s*["']?([A-Za-z0-9_\-.:]{1,40})""",
                           re.IGNORECASE)
# Single-byte charsets that decode any bytes: declared, they prove nothing.
_ANY_BYTES = frozenset({"latin-1", "iso8859-1", "cp1252", "ascii"})


def extract_text(body: bytes, *, headers: Mapping[str, str] | None = None,
                 url: str | None = None) -> str:
    """The article's lead as plain text (paragraphs on their own lines), or ""."""
    html = decode_page(body, headers or {})
    if not html.strip():
        return ""
    import trafilatura

    logging.getLogger("trafilatura").setLevel(logging.ERROR)  # "not enough text"...
    text = trafilatura.extract(html, url=url, include_comments=False, include_tables=False,
                               include_images=False, include_links=False,
                               favor_precision=True, deduplicate=False, output_format="txt",
                               with_metadata=False)
    return lead(text or "")


def lead(text: str, paragraphs: int = LEAD_PARAGRAPHS, limit: int = LEAD_CHARS) -> str:
    """The first ``paragraphs`` paragraphs of ``text`` (short lines kept but not
    counted), cut at a word within ``limit`` characters."""
    out: list[str] = []
    size = counted = 0
    for line in text.splitlines():
        line = " ".join(line.split())
        if not line:
            continue
        if size + len(line) > limit:
            room = limit - size
            cut = line.rfind(" ", 0, room)
            if cut > room // 2:
                out.append(line[:cut])
            break
        out.append(line)
        size += len(line) + 1
        counted += len(line) >= _SHORT_LINE
        if counted >= paragraphs:
            break
    return "\n".join(out)


def decode_page(body: bytes, headers: Mapping[str, str]) -> str:
    """``body`` as text: the declared charset where it decodes the bytes, UTF-8 if
    they are valid UTF-8, else the best guess; never raises."""
    declared: list[str] = []
    m = CHARSET.search(headers.get("content-type", ""))
    if m:
        declared.append(m[1])
    m2 = _META_CHARSET.search(body[:8192])
    if m2:
        declared.append(m2[1].decode("ascii", "replace"))
    names = [n for n in (_codec(d) for d in declared) if n is not None]
    for name in names:
        if name in _ANY_BYTES:
            continue
        try:
            return body.decode(name)
        except UnicodeDecodeError:
            continue  # a wrong declaration: guess instead
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        pass
    from trafilatura.utils import detect_encoding  # charset_normalizer's guesses

    # On short pages charset_normalizer often mistakes windows-1251 for cp866:
    # its guesses and the region's usual charsets compete on how readable they are.
    sample = body[:65536]
    best, best_score = None, float("-inf")
    for guess in dict.fromkeys([*names, *detect_encoding(sample), *_USUAL]):
        try:
            text = sample.decode(guess)
        except (LookupError, UnicodeDecodeError):
            continue
        score = _readable(text)
        if score > best_score:
            best, best_score = guess, score
    return body.decode(best or (names[0] if names else "cp1252"), "replace")


_USUAL = ("cp1251", "koi8-r", "cp1252", "iso8859-2")
_WORD = re.compile(r"[^\W\d_]{2,}")


def _readable(text: str) -> float:
    """How much ``text`` reads as words in some charset: the non-ASCII letters of
    plausible words (Cyrillic ones whose case does not flip inside, ``ПРивет``
    being the mark of a wrong Cyrillic codec; Latin ones mostly ASCII, as
    accented words are), less the symbols and implausible words."""
    score = -2.0 * sum(1 for c in text if c > "\x7f" and not c.isalpha() and not c.isspace())
    for w in _WORD.findall(text):
        na = sum(1 for c in w if c > "\x7f")
        if not na:
            continue
        cyrillic = all("\u0400" <= c <= "\u04ff" for c in w)  # mixed with Latin: wrong
        cased = w.islower() or w.isupper() or w.istitle()
        if (cyrillic and cased) or (not cyrillic and na * 3 <= len(w)):
            score += na
        else:
            score -= na
    return score


def _codec(name: str) -> str | None:
    try:
        return codecs.lookup(name.strip().strip("\"'")).name
    except LookupError:
        return None
