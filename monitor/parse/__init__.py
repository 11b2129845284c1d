"""The parse stage: fetched bytes -> :class:`~monitor.models.ParsedFeed` of items.

RSS 0.9x/1.0/2.0, Atom and CDF go through feedparser (imported lazily, and only
here); JSON Feed 1.0/1.1, which feedparser's release does not read, goes
through :mod:`json` into the same item shape. Plain RSS 2.0 is read with
expat alone into exactly what feedparser would give, ~4x faster (see "plain
RSS 2.0" below).

:func:`parse_feed` never raises on bad input. A document that holds no feed (an
HTML page, random bytes, an empty body) comes back with ``is_feed=False`` and a
``problem`` saying why; a malformed feed keeps whatever feedparser recovers,
with feedparser's complaint in ``problem``.

Hostile documents are defused before feedparser sees them:

* the body is handed over as a stream, never as a ``bytes`` value, which
  feedparser would first try to open as a *file name*;
* entity declarations are dropped from the prolog, so "billion laughs"
  expands nothing (nor does the loose parser, which has no limit of its own),
  and blank lines are folded there, where feedparser's scan is quadratic;
  external entities are never resolved (feedparser turns off ``external_ges``);
* every string of an item is bounded (see the ``MAX_*`` constants).
"""

from __future__ import annotations

import codecs
import contextlib
import hashlib
import io
import json
import logging
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

from monitor.models import Item, ParsedFeed
from monitor.text import fold_whitespace, html_to_text, strip_control, truncate

if TYPE_CHECKING:
    import time

__all__ = [
    "MAX_GUID",
    "MAX_LINK",
    "MAX_SUMMARY",
    "MAX_TITLE",
    "item_fingerprint",
    "item_identity",
    "parse_feed",
]

log = logging.getLogger(__name__)

# Bounds on what one item may hold, so a hostile feed cannot bloat the store.
MAX_TITLE = 1_000
MAX_SUMMARY = 10_000
MAX_LINK = 2_000  # longer links are dropped, not cut: a cut URL leads nowhere
MAX_GUID = 2_000  # longer ids are replaced by their hash: still stable, now bounded
MAX_PROBLEM = 500

_JSON_TYPES = frozenset({"application/feed+json", "application/json"})
_JSONFEED_VERSION = re.compile(r"https?://jsonfeed\.org/version/")
_LEADING_JUNK = b"\xef\xbb\xbf \t\r\n"  # UTF-8 BOM and XML whitespace
# Atomic group: without it, a run of comments that is not followed by <html
# would be retried in every way of splitting it (exponential).
_HTML_START = re.compile(
    rb"(?>(?:<!--.*?-->\s*)*)<(?:!doctype\s+html|html|head|body)\b", re.IGNORECASE | re.DOTALL
)
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
_CHARSET = re.compile(r"""charset\s*=\s*["']?([^\s;"']+)["']?""", re.IGNORECASE)
_ABSOLUTE_HTTP = re.compile(r"https?://[\w.~%!$&'()*+,;=:@-]+(?:[/?#]\S*)?\Z")
_LANG_TAG = re.compile(r"[a-z]{1,8}(?:-[a-z0-9]{1,8}){0,4}")
_SURROGATES = re.compile(r"[\ud800-\udfff]")
_ID_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


# -- identity -------------------------------------------------------------------


def _digest(*parts: str) -> str:
    h = hashlib.sha256()
    for p in parts:
        # surrogatepass: hostile ids may hold lone surrogates; the hash must not fail
        h.update(p.encode("utf-8", "surrogatepass"))
        h.update(b"\x00")
    return h.hexdigest()


def item_identity(
    entry_id: str | None,
    link: str | None,
    title: str | None,
    summary: str | None,
    content: Sequence[str] = (),
) -> str:
    """The stable identity of an entry, from its values as the feed gives them.

    The id, else the link, else ``sha256:`` and a hash of the title, summary
    and content, so that even an entry of bare markup has one. Control
    characters are removed (PostgreSQL rejects NUL in text) and an id longer
    than :data:`MAX_GUID` is replaced by its hash.
    """
    for candidate in (entry_id, link):
        if candidate:
            guid = _ID_CONTROL.sub("", candidate).strip()
            if guid:
                return guid if len(guid) <= MAX_GUID else "sha256:" + _digest(guid)
    return "sha256:" + _digest(title or "", summary or "", *content)


def item_fingerprint(title: str, summary: str, *, guid: str = "") -> str:
    """A hash of the normalised (casefolded, whitespace-folded) title and summary.

    It recognises an entry republished under a new id. An entry with neither
    title nor summary has nothing to recognise it by, so its fingerprint is
    derived from ``guid`` instead: empty entries are never taken for each other.
    """
    return _fingerprint_folded(fold_whitespace(title), fold_whitespace(summary), guid)


def _fingerprint_folded(title: str, summary: str, guid: str) -> str:
    # The parser's plain text is folded already; folding again costs ~3 us an item.
    if not title and not summary:
        return _digest("\x00guid", guid)[:32]
    return _digest(title.casefold(), summary.casefold())[:32]


# -- small value cleaners ---------------------------------------------------------


def _str(value: object) -> str:
    """A field as text: feedparser and JSON may hand over anything."""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return ""


def _plain(value: object, limit: int) -> str:
    return truncate(html_to_text(_str(value)), limit)


def _http_link(value: object, base: str) -> str | None:
    """An absolute http(s) URL, resolved against ``base``; else None."""
    raw = _str(value).strip()
    if not raw or _ID_CONTROL.search(raw):
        return None
    if _ABSOLUTE_HTTP.match(raw):  # the usual case, without urllib's ~10 us
        return raw if len(raw) <= MAX_LINK else None
    raw = raw.replace(" ", "%20")
    try:
        # urljoin(base, "https://") is base itself: only a link without a scheme is joined
        link = raw if urlsplit(raw).scheme else urljoin(base, raw)
        parts = urlsplit(link)
    except ValueError:  # e.g. a malformed IPv6 host
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname or len(link) > MAX_LINK:
        return None
    return link


def _lang(value: object) -> str | None:
    """A language tag as given, lower-cased, with ``_`` as ``-`` (``en_US`` -> ``en-us``).

    Of a list (``Content-Language: kk, ru``) the first; anything that is not
    shaped like a tag (a number, a sentence) is no language.
    """
    if not isinstance(value, str):
        return None
    tag = value.split(",", 1)[0].strip().lower().replace("_", "-")
    return tag if _LANG_TAG.fullmatch(tag) else None


def _from_struct(t: time.struct_time | None) -> datetime | None:
    """feedparser's parsed dates are UTC ``struct_time`` s."""
    if not t:
        return None
    try:
        return datetime(*t[:6], tzinfo=UTC)
    except (TypeError, ValueError, OverflowError):
        return None


def _from_text(value: object) -> datetime | None:
    """An RFC 3339 date (JSON Feed), or failing that an RFC 822 one; in UTC."""
    text = _str(value).strip()
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        import email.utils  # ~10 ms to import, for a fallback most polls never need

        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
    try:
        if when.tzinfo is None:  # no offset given: take it as UTC rather than guess
            return when.replace(tzinfo=UTC)
        return when.astimezone(UTC)
    except (ValueError, OverflowError):
        return None


def _problem(message: str) -> str:
    return truncate(fold_whitespace(strip_control(message)), MAX_PROBLEM)


def _not_feed(url: str, why: str) -> ParsedFeed:
    return ParsedFeed(url=url, title=None, link=None, language=None, items=(),
                      is_feed=False, problem=_problem(f"not a feed: {why}"))


def _make_item(
    url: str,
    *,
    entry_id: str | None,
    raw_link: str | None,
    raw_title: str,
    raw_summary: str,
    raw_content: Sequence[str],
    plain_summary: str,
    published: datetime | None,
    lang: str | None,
) -> Item:
    guid = item_identity(entry_id, raw_link, raw_title, raw_summary, raw_content)
    title = _plain(raw_title, MAX_TITLE)
    return Item(
        feed_url=url,
        guid=guid,
        title=title,
        summary=plain_summary,
        link=_http_link(raw_link, url),
        published=published,
        lang=lang,
        fingerprint=_fingerprint_folded(title, plain_summary, guid),
    )


# -- XML feeds (feedparser) -------------------------------------------------------

# FeedParserDict is a dict whose get() maps legacy key names on each call (~1.5 us);
# the canonical keys read here are stored as they are, so the plain dict lookup
# is the same answer at a tenth of the cost.
_get = dict.get


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


def _defuse_prolog(body: bytes) -> bytes:
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


def _fix_charset(headers: dict[str, str], body: bytes) -> dict[str, str]:
    """Trust a body that is valid UTF-8 over a header that names another charset.

    A server's default ``charset=windows-1251`` (or latin-1) on a UTF-8 feed
    decodes without error into mojibake, so feedparser cannot notice; non-ASCII
    text that happens to be valid UTF-8 in any other charset is vanishingly rare.
    """
    content_type = headers.get("content-type", "")
    m = _CHARSET.search(content_type)
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


def _entry_lang(entry: dict[str, Any], header_lang: str | None, feed_lang: str | None
                ) -> str | None:
    """The entry's language: its own element, else its ``xml:lang``, else the feed's."""
    own = _lang(_get(entry, "language"))
    if own:
        return own
    for key in ("title_detail", "summary_detail"):
        detail = _get(entry, key)
        if isinstance(detail, dict):
            lang = _lang(_get(detail, "language"))
            # feedparser fills a detail's language from the Content-Language
            # header too; only an xml:lang in the document says more than the feed.
            if lang and lang != header_lang:
                return lang
    return feed_lang


def _summary_and_content(entry: dict[str, Any]) -> tuple[str, list[str]]:
    raw_summary = _str(_get(entry, "summary"))
    content = _get(entry, "content")
    raw_content = [
        _str(_get(c, "value")) for c in content if isinstance(c, dict)
    ] if isinstance(content, list) else []
    return raw_summary, raw_content


def _first_text(candidates: Sequence[str]) -> str:
    """The plain text of the first candidate that has any: a summary of only an
    ``<img>`` gives way to the content."""
    for raw in candidates:
        if raw:
            text = _plain(raw, MAX_SUMMARY)
            if text:
                return text
    return ""


def _looks_like_html(body: bytes, content_type: str) -> bool:
    return content_type == "text/html" or bool(_HTML_START.match(body[:4096].lstrip(_LEADING_JUNK)))


def _why_not_feed(body: bytes, content_type: str, bozo: object) -> str:
    if _looks_like_html(body, content_type):
        return "looks like an HTML page"
    if bozo:
        return f"no RSS, Atom or JSON Feed found ({bozo})"
    return "no RSS, Atom or JSON Feed found"


def _parse_xml(body: bytes, url: str, headers: dict[str, str], *, fast: bool = True
               ) -> ParsedFeed:
    headers = _fix_charset(headers, body)
    plain = _plain_rss20(body, headers) if fast else None
    if plain is not None:
        feed, entries = plain
        bozo = None
    else:
        import feedparser  # heavy (~50 ms): only the parse stage pays for it

        try:
            # A stream, not bytes: feedparser.parse(b"/etc/passwd") would read the file.
            # Summaries are reduced to plain text here, so sanitising and resolving
            # URIs inside them would be wasted work (~30 % of feedparser's time).
            d = feedparser.parse(io.BytesIO(_defuse_prolog(body)), response_headers=headers,
                                 sanitize_html=False, resolve_relative_uris=False)
        except Exception as e:  # feedparser has its own bugs on hostile input; the poll goes on
            log.warning("feedparser failed on %s", url, exc_info=True)
            return _not_feed(url, f"unreadable document ({type(e).__name__}: {e})")

        entries = d.get("entries") or []
        feed = d.get("feed") or {}
        bozo = d.get("bozo_exception") if d.get("bozo") else None
        if not entries and not d.get("version"):
            # No entries and no recognised root: a feed only if it has a title (an
            # empty CDF channel); an HTML page never has one in feedparser's eyes,
            # but check anyway, as HTML is by far the most common wrong answer.
            content_type = headers.get("content-type", "").split(";")[0].strip().lower()
            if not feed.get("title") or _looks_like_html(body, content_type):
                return _not_feed(url, _why_not_feed(body, content_type, bozo))

    header_lang = _lang(headers.get("content-language"))
    feed_lang = _lang(feed.get("language"))
    items = []
    for entry in entries:
        if not isinstance(entry, dict):
            continue  # never seen; feedparser's entries are FeedParserDicts
        raw_summary, raw_content = _summary_and_content(entry)
        items.append(_make_item(
            url,
            entry_id=_str(_get(entry, "id")) or None,
            raw_link=_str(_get(entry, "link")) or None,
            raw_title=_str(_get(entry, "title")),
            raw_summary=raw_summary,
            raw_content=raw_content,
            plain_summary=_first_text([raw_summary, *raw_content]),
            published=_from_struct(_get(entry, "published_parsed")
                                   or _get(entry, "updated_parsed")),
            lang=_entry_lang(entry, header_lang, feed_lang),
        ))
    return ParsedFeed(
        url=url,
        title=_plain(feed.get("title"), MAX_TITLE) or None,
        link=_http_link(feed.get("link"), url),
        language=feed_lang,
        items=tuple(items),
        is_feed=True,
        problem=_problem(str(bozo) or type(bozo).__name__) if bozo is not None else None,
    )


# -- plain RSS 2.0, without feedparser's overhead --------------------------------------
#
# feedparser spends ~2.5 ms on a 20-item feed, most of it in Python callbacks
# per element and per text node; it was most of a cold poll's CPU (issue 7).
# For plain RSS 2.0 (many feeds are: title, link, description, guid, pubDate,
# a few common extras), expat and a few lines give what feedparser gives: a
# whole parse_feed is ~4x faster (bench/bench_parse.py), the XML part ~20x.
# "Plain" is a strict whitelist, checked as the document is read:
# UTF-8, no DOCTYPE, known elements in their known places, no markup inside
# text, no attribute but a few known ones, known namespaces only. Anything
# else, including any expat error, goes to feedparser as before. What comes
# out is feedparser's own result for such a document, field for field (its
# date parser, URL fixer and text clean-ups are used as they are);
# tests/test_parse_plain.py compares the two on generated documents.

_PLAIN_TYPES = frozenset({"application/rss+xml", "application/xml"})
_PLAIN_NAMESPACES = {
    "xmlns:content": "http://purl.org/rss/1.0/modules/content/",
    "xmlns:dc": "http://purl.org/dc/elements/1.1/",
    "xmlns:atom": "http://www.w3.org/2005/Atom",
}
# feedparser drops the semicolon of a named entity left in a link ("&copy;"
# comes out "&copy"): links read here get the same.
_LINK_ENTITY = re.compile("&([A-Za-z0-9_]+);")
_XML_DECL = re.compile(rb"""<\?xml version=["']1\.[01]["'](?: encoding=["']utf-8["'])?"""
                       rb"""(?: standalone=["'](?:yes|no)["'])? ?\?>""", re.IGNORECASE)
# Where each element may be, and the attributes it may have. Text elements
# hold text only; the others hold elements only (whitespace between them).
_CHANNEL_TEXT = frozenset({"title", "link", "description", "language", "lastBuildDate",
                           "pubDate", "generator", "ttl", "copyright", "managingEditor",
                           "webMaster", "docs", "category"})
_ITEM_TEXT = frozenset({"title", "link", "description", "guid", "pubDate", "category",
                        "author", "comments", "content:encoded", "dc:creator", "dc:language"})
# An item field feedparser would take from the last of several: not plain.
_ITEM_ONCE = frozenset({"title", "link", "description", "guid", "pubDate", "content:encoded",
                        "dc:language"})
_CHANNEL_ONCE = frozenset({"title", "link", "language"})
_ATTRIBUTES = {
    "guid": frozenset({"isPermaLink"}),
    "category": frozenset({"domain"}),
}


class _NotPlain(Exception):
    """The document is outside the plain subset: feedparser reads it."""


def _plain_rss20(body: bytes, headers: Mapping[str, str]
                 ) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
    """(feed, entries) as feedparser would give them for a plain RSS 2.0
    document, or None when the document is not plain (see above)."""
    content_type = headers.get("content-type")
    if content_type is not None:  # no header at all is fine; an empty one is not
        main, _, params = content_type.partition(";")
        charset = _CHARSET.search(params)
        if main.strip().lower() not in _PLAIN_TYPES or (
                charset and charset.group(1).lower() != "utf-8"):
            return None
    elif headers:
        return None  # feedparser flags a response without a Content-Type
    if "content-location" in headers:
        return None  # a base URI for relative links: feedparser resolves against it
    if body.startswith(b"<?"):
        decl = _XML_DECL.match(body)
        if decl is None:
            return None
        rest = body[decl.end():].lstrip(b" \t\r\n")
    else:
        rest = body
    if not rest.startswith(b"<rss"):
        return None  # a BOM, a DOCTYPE, a comment, another root...
    import xml.parsers.expat

    try:
        return _PlainReader(headers.get("content-language")).read(body)
    except (_NotPlain, xml.parsers.expat.ExpatError):  # malformed: feedparser may recover
        return None


class _PlainReader:
    """One pass of expat over a document, building feedparser's dictionaries."""

    def __init__(self, header_lang: str | None) -> None:
        from feedparser.datetimes import _parse_date
        from feedparser.html import _cp1252
        from feedparser.urls import _urljoin

        self._parse_date = _parse_date
        self._cp1252 = _cp1252
        self._urljoin = _urljoin
        self.feed: dict[str, Any] = {}
        if header_lang:
            self.feed["language"] = header_lang.replace("_", "-")
        self.entries: list[dict[str, Any]] = []
        self.path: list[str] = []
        self.text: list[str] = []
        self.seen: set[str] = set()  # channel-level elements met so far
        self.item_seen: set[str] = set()  # the same, in the current item
        self.item: dict[str, Any] | None = None
        self.guid_is_link = False
        self.namespaces: set[str] = set()  # the xmlns:* declared on <rss>

    def read(self, body: bytes) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        import xml.parsers.expat

        parser = xml.parsers.expat.ParserCreate()
        parser.buffer_text = True
        parser.ordered_attributes = False
        parser.StartElementHandler = self.start
        parser.EndElementHandler = self.end
        parser.CharacterDataHandler = self.data
        # No DOCTYPE is allowed, so none of these may happen; if one does, it
        # is not plain.
        parser.StartDoctypeDeclHandler = self.refuse
        parser.EntityDeclHandler = self.refuse
        parser.ProcessingInstructionHandler = self.refuse
        parser.Parse(body, True)
        if self.path or "channel" not in self.seen:
            raise _NotPlain
        return self.feed, self.entries

    def refuse(self, *_: object) -> None:
        raise _NotPlain

    def start(self, name: str, attrs: dict[str, str]) -> None:
        path = self.path
        depth = len(path)
        if depth == 0:
            if name != "rss" or not attrs.get("version", "").startswith("2."):
                raise _NotPlain
            for key, value in attrs.items():
                if key != "version" and _PLAIN_NAMESPACES.get(key) != value:
                    raise _NotPlain
        elif depth == 1:
            if name != "channel" or attrs or "channel" in self.seen:
                raise _NotPlain
            self.seen.add("channel")
        elif depth == 2:
            if name == "item":
                if attrs:
                    raise _NotPlain
                self.item = {}
                self.entries.append(self.item)
                self.item_seen = set()
                self.guid_is_link = False
            elif name == "atom:link":
                # rel="self" only: an "alternate" one would set the feed's link
                if (attrs.get("rel") != "self" or not set(attrs) <= {"href", "rel", "type"}
                        or "xmlns:atom" not in self.namespaces):
                    raise _NotPlain
            elif name in _CHANNEL_TEXT:
                self._attrs(name, attrs)
                if name in _CHANNEL_ONCE:
                    if name in self.seen:
                        raise _NotPlain
                    self.seen.add(name)
            else:
                raise _NotPlain
        elif depth == 3 and path[2] == "item" and name in _ITEM_TEXT:
            if ":" in name and "xmlns:" + name.split(":", 1)[0] not in self.namespaces:
                raise _NotPlain  # feedparser would stop at an undeclared prefix
            self._attrs(name, attrs)
            if name in _ITEM_ONCE:
                if name in self.item_seen:
                    raise _NotPlain
                self.item_seen.add(name)
            if name == "guid":
                self.guid_is_link = attrs.get("isPermaLink", "true") == "true"
        else:
            raise _NotPlain  # markup inside text, or an unknown element
        if depth == 0:
            self.namespaces = {k for k in attrs if k.startswith("xmlns:")}
        path.append(name)
        self.text = []

    def _attrs(self, name: str, attrs: dict[str, str]) -> None:
        if attrs and not set(attrs) <= _ATTRIBUTES.get(name, frozenset()):
            raise _NotPlain

    def data(self, text: str) -> None:
        if len(self.path) in (3, 4) and self.path[-1] not in ("item", "atom:link"):
            self.text.append(text)
        elif text.strip():
            raise _NotPlain  # text among elements

    def end(self, name: str) -> None:
        self.path.pop()
        if name in ("rss", "channel", "item", "atom:link"):
            if name == "item":
                self.item = None
            return
        value = self._clean(name, "".join(self.text).strip())
        self.text = []
        if self.item is not None:
            self._item_field(self.item, name, value)
        elif name == "title":
            self.feed["title"] = value
        elif name == "link":
            self.feed["link"] = _LINK_ENTITY.sub(r"&\g<1>", value)
        elif name == "language":
            self.feed["language"] = value

    def _clean(self, name: str, value: str) -> str:
        """What feedparser's ``pop`` does to an element's text on its way out."""
        if name == "link" or (name == "guid" and self.guid_is_link):
            value = self._urljoin("", value)
        with contextlib.suppress(UnicodeEncodeError, UnicodeDecodeError):
            # text that was UTF-8 read as Latin-1 somewhere upstream
            value = value.encode("iso-8859-1").decode("utf-8")
        return value.translate(self._cp1252)

    def _item_field(self, item: dict[str, Any], name: str, value: str) -> None:
        if name == "title":
            item["title"] = value
        elif name == "link":
            value = value.replace("&amp;", "&")
            item["link"] = _LINK_ENTITY.sub(r"&\g<1>", value)
        elif name == "guid":
            item["id"] = value
            if self.guid_is_link:
                item.setdefault("link", value)  # a later <link> still wins
        elif name == "description":
            item["summary"] = value
        elif name == "content:encoded":
            item["content"] = [{"value": value}]
            item.setdefault("summary", value)  # a <description> still wins
        elif name == "pubDate":
            item["published_parsed"] = self._parse_date(value)
        elif name == "dc:language":
            item["language"] = value


# -- JSON Feed --------------------------------------------------------------------


def _json_str(item: Mapping[str, Any], key: str) -> str:
    # JSON may carry lone surrogates ("\ud800"), which nothing downstream can encode.
    return _SURROGATES.sub("\ufffd", _str(item.get(key)))


def _parse_json(doc: Mapping[str, Any], url: str) -> ParsedFeed:
    """JSON Feed 1.0/1.1 (https://jsonfeed.org/version/1.1) into the same items."""
    feed_lang = _lang(doc.get("language"))
    raw_items = doc.get("items")
    problem = None
    if not isinstance(raw_items, list):
        raw_items = []
        problem = "JSON Feed without an items list"
    items = []
    for raw in raw_items:
        if not isinstance(raw, Mapping):
            continue  # a number or a string in the list: there is no entry to keep
        summary = _json_str(raw, "summary")
        html, text = _json_str(raw, "content_html"), _json_str(raw, "content_text")
        link = _json_str(raw, "url") or _json_str(raw, "external_url")
        items.append(_make_item(
            url,
            entry_id=_json_str(raw, "id") or None,
            raw_link=link or None,
            raw_title=_json_str(raw, "title"),
            raw_summary=summary,
            raw_content=[c for c in (html, text) if c],
            # content_text too goes through html_to_text: no summary ever holds a tag
            plain_summary=_first_text([summary, html, text]),
            published=_from_text(raw.get("date_published")) or _from_text(
                raw.get("date_modified")),
            lang=_lang(raw.get("language")) or feed_lang,
        ))
    return ParsedFeed(
        url=url,
        title=_plain(doc.get("title"), MAX_TITLE) or None,
        link=_http_link(doc.get("home_page_url"), url),
        language=feed_lang,
        items=tuple(items),
        is_feed=True,
        problem=problem,
    )


def _load_json(body: bytes) -> object:
    """The decoded document, or a string saying why there is none."""
    try:
        return json.loads(body)
    except UnicodeDecodeError:
        try:
            return json.loads(body.decode("utf-8", "replace"))
        except (ValueError, RecursionError) as e:
            return f"invalid JSON ({e})"
    except (ValueError, RecursionError) as e:  # RecursionError: [[[[...]]]] nested too deep
        return f"invalid JSON ({e})"


# -- entry point ------------------------------------------------------------------


def parse_feed(body: bytes, *, url: str, headers: Mapping[str, str] | None = None
               ) -> ParsedFeed:
    """Parse one fetched document into items; never raises on bad input.

    ``url`` is the feed's URL: it names the items' feed and resolves relative
    links. ``headers`` are the HTTP response headers (any case); the
    ``Content-Type`` charset and ``Content-Language`` are honoured.
    """
    hdrs = {str(k).lower(): str(v) for k, v in (headers or {}).items()}
    body = bytes(body)
    start = body.lstrip(_LEADING_JUNK)[:1]
    if not start:
        return _not_feed(url, "empty document")
    content_type = hdrs.get("content-type", "").split(";")[0].strip().lower()
    if start in (b"{", b"[") or (content_type in _JSON_TYPES and start != b"<"):
        doc = _load_json(body)
        if isinstance(doc, str):
            return _not_feed(url, doc)
        if isinstance(doc, dict) and _JSONFEED_VERSION.match(_str(doc.get("version"))):
            return _parse_json(doc, url)
        return _not_feed(url, "JSON, but not a JSON Feed (no https://jsonfeed.org/version/)")
    return _parse_xml(body, url, hdrs)
