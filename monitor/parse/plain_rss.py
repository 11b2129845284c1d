"""Speed machinery: plain RSS 2.0 read with expat alone, into what feedparser would give.

Why it exists: feedparser spends ~2.5 ms on a 20-item feed, most of it in
Python callbacks per element and per text node; it was 43 % of a cold poll's
CPU (issue 7). Many feeds are plain RSS 2.0 (title, link, description, guid,
pubDate, a few common extras), and for those expat and a few lines give what
feedparser gives. What it is worth, from ``bench/bench_parse.py`` (figures in
``bench/README.md``, "Parse throughput" and "Where the time went"): a whole
``parse_feed`` of the bench feeds runs ~4x faster than the same documents
forced through feedparser (~5x faster than ``feedparser.parse``), the XML
part ~20x; of the changes listed there behind a cold poll ~4x faster than
reader's, it did the most.

It changes no result. "Plain" is a strict whitelist, checked as the document
is read: UTF-8, no DOCTYPE, known elements in their known places, no markup
inside text, no attribute but a few known ones, known namespaces only.
Anything else, including any expat error, gives None and goes to feedparser
as before. What comes out is feedparser's own result for such a document,
field for field (its date parser, URL fixer and text clean-ups are used as
they are), and it goes through the same item building as feedparser's;
``tests/test_parse_plain.py`` compares the two paths on generated documents.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Mapping
from typing import Any

from monitor.parse._common import CHARSET

__all__ = ["read_plain_rss20"]

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


def read_plain_rss20(body: bytes, headers: Mapping[str, str]
                     ) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
    """(feed, entries) as feedparser would give them for a plain RSS 2.0
    document, or None when the document is not plain (see above).

    ``headers`` have lower-case names, the charset already fixed
    (:func:`monitor.parse.defuse.fix_charset`).
    """
    content_type = headers.get("content-type")
    if content_type is not None:  # no header at all is fine; an empty one is not
        main, _, params = content_type.partition(";")
        charset = CHARSET.search(params)
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
        # feedparser's own helpers, so that every value comes out as its does;
        # importing these loads feedparser, but not its parsers' per-element work.
        from feedparser.datetimes import _parse_date
        from feedparser.html import _cp1252
        from feedparser.urls import _urljoin

        self._parse_date: Callable[[str], Any] = _parse_date
        self._cp1252: dict[int, str] = _cp1252
        self._urljoin: Callable[[str, str], str] = _urljoin
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
