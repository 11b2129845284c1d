"""Hostile-input defusing: what an XML body and its headers go through before a parser.

* :func:`defuse_prolog` drops every entity declaration from the prolog, so
  "billion laughs" expands nothing (nor does feedparser's loose parser, which
  has no limit of its own), and folds the blank lines there, where
  feedparser's scan is quadratic. External entities are never resolved
  either: feedparser turns off ``external_ges``.
* :func:`fix_charset` trusts a body that is valid UTF-8 over a header that
  names another charset.

The rest of the defences are where the data is: feedparser is handed a
stream, never ``bytes`` (:mod:`monitor.parse.feedparser_path`), and every
string of an item is bounded (the ``MAX_*`` constants of :mod:`monitor.parse`).
"""

from __future__ import annotations

import codecs
import re

from monitor.parse._common import CHARSET

# The prolog ends where the first element starts (feedparser draws the same line).
_FIRST_ELEMENT = re.compile(r"<\w", re.ASCII)
_FIRST_ELEMENT_BYTES = re.compile(rb"<\w")
# One declaration, quoted values included; possessive, so a failure costs one scan.
_ENTITY_DECL = re.compile(r"""<!ENTITY(?:[^"'>]|"[^"]*"|'[^']*')*+>""")
# A run of whitespace holding two or more line breaks (ASCII \s, as feedparser's
# bytes patterns see it).
_BLANK_LINES = re.compile(r"\n\s*\n\s*", re.ASCII)
# Encodings in which "<!ENTITY" is not ASCII bytes: (how the body starts, codec,
# length of the byte-order mark). UTF-32 marks first: they begin like UTF-16's.
_WIDE_ENCODINGS = (
    (b"\x00\x00\xfe\xff", "utf-32-be", 4), (b"\xff\xfe\x00\x00", "utf-32-le", 4),
    (b"\xfe\xff", "utf-16-be", 2), (b"\xff\xfe", "utf-16-le", 2),
    (b"\x00\x00\x00<", "utf-32-be", 0), (b"<\x00\x00\x00", "utf-32-le", 0),
    (b"\x00<", "utf-16-be", 0), (b"<\x00", "utf-16-le", 0),
)


def _remove_entity_decls(prolog: str) -> str:
    parts = []
    pos = 0
    while (start := prolog.find("<!ENTITY", pos)) != -1:
        parts.append(prolog[pos:start])
        m = _ENTITY_DECL.match(prolog, start)
        pos = m.end() if m else len(prolog)  # unterminated: the rest is no prolog worth keeping
    parts.append(prolog[pos:])
    return "".join(parts)


def _clean_prolog(prolog: str) -> str:
    if "<!ENTITY" in prolog:
        prolog = _remove_entity_decls(prolog)
    first = prolog.find("<!DOCTYPE")
    if first != -1 and "<!DOCTYPE" in prolog[first + 1:]:  # malformed: keep the first only
        prolog = prolog[: first + 1] + prolog[first + 1:].replace("<!DOCTYPE", "")
    if "\n" in prolog:
        prolog = _BLANK_LINES.sub("\n", prolog)
    return prolog


def defuse_prolog(body: bytes) -> bytes:
    """Rewrite what precedes the root element so that feedparser cannot be made slow or big.

    * Every entity declaration is dropped. feedparser filters declarations
      itself, but only those that start a line, and it keeps any quoted value:
      a one-line DTD reached expat whole ("billion laughs" stopped only by
      expat's amplification limit, after ~0.5 s of work), and a 5 kB value
      referenced 20,000 times became a 100 MB summary in the loose parser,
      which has no limit at all. References to undeclared entities send
      feedparser to its loose parser, which decodes the HTML named entities
      (``&nbsp;``...) that feeds declare in practice, and decodes them better
      than it expands declared ones (``&&#160;;``).
    * Blank lines are folded and extra DOCTYPEs dropped: feedparser looks for
      declarations with ``^\\s*<!...`` per line, which rescans every following
      blank line (40 kB of newlines took 4.8 s, 200 kB of ``<!DOCTYPE`` lines 26 s).

    Outside the prolog nothing changes, and a plain prolog is returned as it is.
    """
    bom, codec = 0, "latin-1"  # latin-1: any byte is one character, and back
    for prefix, name, bom_len in _WIDE_ENCODINGS:
        if body.startswith(prefix):
            bom, codec = bom_len, name
            break
    if codec == "latin-1":
        # Only the prolog is decoded; it is usually a line or two.
        first = _FIRST_ELEMENT_BYTES.search(body)
        end = first.start() if first else len(body)
        prolog = body[:end].decode("latin-1")
        clean = _clean_prolog(prolog)
        return body if clean == prolog else clean.encode("latin-1") + body[end:]
    text = body[bom:].decode(codec, "replace")
    first_el = _FIRST_ELEMENT.search(text)
    end = first_el.start() if first_el else len(text)
    clean = _clean_prolog(text[:end])
    if clean == text[:end]:
        return body
    return body[:bom] + (clean + text[end:]).encode(codec, "replace")


def fix_charset(headers: dict[str, str], body: bytes) -> dict[str, str]:
    """Trust a body that is valid UTF-8 over a header that names another charset.

    A server's default ``charset=windows-1251`` (or latin-1) on a UTF-8 feed
    decodes without error into mojibake, so feedparser cannot notice; non-ASCII
    text that happens to be valid UTF-8 in any other charset is vanishingly rare.
    ``headers`` have lower-case names; they are returned as they are, or fixed
    in a copy.
    """
    content_type = headers.get("content-type", "")
    m = CHARSET.search(content_type)
    if not m:
        return headers
    try:
        declared = codecs.lookup(m.group(1)).name
    except LookupError:
        return headers
    if declared == "utf-8" or body.isascii():
        return headers
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return headers
    fixed = dict(headers)
    fixed["content-type"] = content_type[: m.start()] + "charset=utf-8" + content_type[m.end():]
    return fixed
