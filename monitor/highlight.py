"""Feed text made fit to show: marked runs, snippets, clean text and safe links.

Feed text is untrusted. What leaves this module is free of control characters
(:func:`clean`), links are plain http(s) URLs or nothing (:func:`safe_url`),
and the matched terms of a rule are marked as :class:`Span` runs
(:func:`highlight`, :func:`snippet`) for each channel to render its own way.
Pure, standard library only; used by the digest and by story clustering.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import quote, urlsplit, urlunsplit

from monitor.text import fold_whitespace, strip_control

__all__ = [
    "SNIPPET_CHARS",
    "TITLE_CHARS",
    "Span",
    "clean",
    "content_snippet",
    "highlight",
    "host",
    "safe_url",
    "sentence_at",
    "snippet",
]

TITLE_CHARS = 300  # a title longer than this is cut (a feed that puts its article there)
SNIPPET_CHARS = 240


@dataclass(frozen=True, slots=True)
class Span:
    """A run of text; ``mark`` is True where a rule's term matched."""

    text: str
    mark: bool = False



def clean(text: str) -> str:
    """Feed text for any output: no control characters, whitespace folded."""
    return fold_whitespace(strip_control(text))


# -- highlights and snippets ----------------------------------------------------


def _merge_spans(spans: Iterable[tuple[int, int]], length: int) -> list[tuple[int, int]]:
    """Valid spans only (evidence from another version of the text may not fit), merged."""
    ok = sorted((s, e) for s, e in spans if 0 <= s < e <= length)
    merged: list[tuple[int, int]] = []
    for s, e in ok:
        if merged and s <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], e))
        else:
            merged.append((s, e))
    return merged


def _segments(text: str, spans: Sequence[tuple[int, int]], start: int, end: int
              ) -> list[Span]:
    out: list[Span] = []
    pos = start
    for s, e in spans:
        s, e = max(s, start), min(e, end)
        if s >= e:
            continue
        if s > pos:
            out.append(Span(text[pos:s]))
        out.append(Span(text[s:e], True))
        pos = e
    if pos < end:
        out.append(Span(text[pos:end]))
    return out


def _tidy(segments: list[Span]) -> tuple[Span, ...]:
    """Clean each run after the offsets were used (cleaning first would shift them)."""
    out: list[Span] = []
    for seg in segments:
        t = re.sub(r"\s+", " ", strip_control(seg.text))
        if out and out[-1].text.endswith(" ") and t.startswith(" "):
            t = t[1:]
        if not t:
            continue
        if out and out[-1].mark == seg.mark:
            out[-1] = Span(out[-1].text + t, seg.mark)
        else:
            out.append(Span(t, seg.mark))
    if out:
        out[0] = Span(out[0].text.lstrip(), out[0].mark)
        out[-1] = Span(out[-1].text.rstrip(), out[-1].mark)
    return tuple(s for s in out if s.text)


def highlight(text: str, spans: Iterable[tuple[int, int]], *, limit: int | None = None
              ) -> tuple[Span, ...]:
    """``text`` as runs, the given character spans marked; cut at ``limit`` characters."""
    end = len(text)
    cut = limit is not None and end > limit
    if cut and limit is not None:
        end = max(text.rfind(" ", 0, limit), limit * 4 // 5)
    out = list(_tidy(_segments(text, _merge_spans(spans, len(text)), 0, end)))
    if cut:
        out.append(Span("…"))
    return tuple(out)


def snippet(text: str, spans: Iterable[tuple[int, int]], width: int = SNIPPET_CHARS
            ) -> tuple[Span, ...]:
    """A window of about ``width`` characters of ``text``, around its first marked span."""
    merged = _merge_spans(spans, len(text))
    if len(text) <= width:
        return _tidy(_segments(text, merged, 0, len(text)))
    start = 0
    if merged:
        start = max(0, merged[0][0] - width // 3)
        if start:
            space = text.rfind(" ", 0, start)
            start = space + 1 if space > start - 30 else start
    end = min(len(text), start + width)
    if end < len(text):
        space = text.rfind(" ", start, end)
        end = space if space > end - 30 else end
    out = list(_tidy(_segments(text, merged, start, end)))
    if start > 0:
        out.insert(0, Span("… "))
    if end < len(text):
        out.append(Span(" …"))
    return tuple(out)


# A sentence ends at . ! ? … (and a closing quote or bracket) before a space, or at a line end.
_SENTENCE_END = re.compile(r"""[.!?…]+["'»”)\]]*(?=\s)|\n""")


def sentence_at(text: str, start: int, end: int, width: int = SNIPPET_CHARS * 2
                ) -> tuple[int, int]:
    """The bounds of the sentence (or line) of ``text`` that holds ``start:end``,
    kept within about ``width`` characters around it: what is shown of a long
    text (an article) for a term found in it."""
    begin = 0
    for m in _SENTENCE_END.finditer(text, max(0, start - width), start):
        begin = m.end()
    stop = len(text)
    after = _SENTENCE_END.search(text, end)
    if after is not None:
        stop = after.end() if after.group() != "\n" else after.start()
    begin = max(begin, start - width)
    stop = min(stop, end + width)
    while begin < start and text[begin].isspace():
        begin += 1
    return begin, stop


def content_snippet(context: str, spans: Iterable[tuple[int, int]], offset: int,
                    width: int = SNIPPET_CHARS) -> tuple[Span, ...]:
    """A snippet of a stored sentence (``context``, which starts at ``offset`` of
    its field) with the spans of that field marked."""
    inside = [(s - offset, e - offset) for s, e in spans
              if s >= offset and e <= offset + len(context)]
    return snippet(context, inside, width)


# -- links ----------------------------------------------------------------------

# RFC 3986 reserved and unreserved characters, and '%': everything else is encoded,
# so a link has no space, quote, '<', '>', '|' or backslash left to break out with.
_URL_SAFE = ":/?#[]@!$&'()*+,;=-._~%"


def safe_url(url: str | None) -> str | None:
    """An http(s) URL fit for an href or a chat message's link, else None.

    Other schemes (``javascript:``, ``data:``...), URLs with credentials (a
    ``https://bank.example@evil.example/`` disguise) and monsters are dropped.
    The host is given in ASCII (punycode), and the rest percent-encoded.
    """
    if not url:
        return None
    url = strip_control(url).strip()
    if len(url) > 2048 or any(c.isspace() for c in url) or "\\" in url:
        return None
    try:
        parts = urlsplit(url)
        host = parts.hostname
        port = parts.port
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not host or "@" in parts.netloc:
        return None
    try:
        # Punycode shows a look-alike (a Cyrillic "е" in a Latin name) for what it is.
        ascii_host = host.encode("idna").decode("ascii")
    except UnicodeError:
        return None
    if re.fullmatch(r"[0-9a-f:.]+", ascii_host) and ":" in ascii_host:
        ascii_host = f"[{ascii_host}]"  # IPv6
    elif not re.fullmatch(r"[a-z0-9_.-]+", ascii_host):
        return None  # no host has '<', '!', '|' or quotes in its name
    netloc = ascii_host + (f":{port}" if port is not None else "")
    return urlunsplit((parts.scheme.lower(), netloc, quote(parts.path, safe=_URL_SAFE),
                       quote(parts.query, safe=_URL_SAFE), quote(parts.fragment, safe=_URL_SAFE)))


def host(url: str | None) -> str | None:
    """The host of a :func:`safe_url` link (ASCII), or None."""
    return urlsplit(url).hostname if url else None
