"""monitor.parse's plain RSS 2.0 reader gives exactly what feedparser gives.

The fast path (``monitor.parse.plain_rss``) reads plain RSS 2.0 without
feedparser; for every document it accepts, the ParsedFeed must equal the one
feedparser's path builds, field for field. Documents are generated to be plain (so the
fast path is really taken) with hostile text in every field: markup, entities,
CDATA, mojibake, C1 controls, odd whitespace, relative and odd links, dates in
many shapes. A second property mutates them out of the subset: whichever path
reads them, the result must not change.
"""

from __future__ import annotations

import pytest
from golden import FEEDS, GOLDEN
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.parse import _parse_xml, parse_feed
from monitor.parse.plain_rss import read_plain_rss20

NAMESPACES = (' xmlns:content="http://purl.org/rss/1.0/modules/content/"'
              ' xmlns:dc="http://purl.org/dc/elements/1.1/"'
              ' xmlns:atom="http://www.w3.org/2005/Atom"')

# Characters XML 1.0 allows, with the troublesome ones over-represented.
PIECES = st.one_of(
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0x2FF), max_size=12),
    st.sampled_from([
        "&", "<", ">", '"', "'", "&amp;", "&lt;b&gt;", "&foo;", "&#38;", "]]", " ", "\n",
        "\t", "\u00a0", "Ã©", "â€™", "\u0080", "\u0093", "\u009f", "Каспий", "中文", "😀",
        "<p>Hi</p>", "<b>x", "http://", "https:///a", "?a=1&b=2", "/rel/path", "#frag",
        "javascript:x", "\u2028",
    ]),
)
TEXT = st.lists(PIECES, max_size=6).map("".join)
DATES = st.one_of(
    TEXT,
    st.sampled_from([
        "Tue, 19 Nov 2024 09:15:00 +0300", "Tue, 19 Nov 2024 09:15:00 GMT",
        "19 Nov 2024 09:15 EST", "2024-11-19T09:15:00Z", "2024-11-19", "Tue, 31 Feb 2024",
        "  Mon, 01 Jan 2024 00:00:00 GMT  ", "not a date", "",
    ]),
)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


@st.composite
def _text_xml(draw: st.DrawFn, text: str) -> str:
    """``text`` as element content: escaped, in CDATA, or both, with C1 controls
    as character references (they are legal XML, but only as references)."""
    if "]]>" not in text and draw(st.booleans()):
        return f"<![CDATA[{text}]]>"
    escaped = _escape(text)
    return "".join(f"&#{ord(c)};" if 0x7F <= ord(c) <= 0x9F else c for c in escaped)


@st.composite
def _element(draw: st.DrawFn, name: str, values: st.SearchStrategy[str] = TEXT,
             attrs: str = "") -> str:
    return f"<{name}{attrs}>{draw(_text_xml(draw(values)))}</{name}>"


@st.composite
def _item(draw: st.DrawFn) -> str:
    parts = []
    for name, values in (("title", TEXT), ("link", TEXT), ("description", TEXT),
                         ("pubDate", DATES), ("content:encoded", TEXT),
                         ("dc:language", st.sampled_from(["kk", "ru-RU", "en_GB", "", "x y"]))):
        if draw(st.booleans()):
            parts.append(draw(_element(name, values)))
    if draw(st.booleans()):
        perma = draw(st.sampled_from(["", ' isPermaLink="true"', ' isPermaLink="false"',
                                      ' isPermaLink="True"']))
        parts.append(draw(_element("guid", TEXT, perma)))
    for name in draw(st.lists(st.sampled_from(["category", "author", "comments",
                                               "dc:creator"]), max_size=3)):
        parts.append(draw(_element(name)))
    parts = draw(st.permutations(parts))
    space = draw(st.sampled_from(["", "\n  ", " "]))
    return f"<item>{space}{space.join(parts)}{space}</item>"


@st.composite
def plain_documents(draw: st.DrawFn) -> tuple[bytes, dict[str, str]]:
    channel = []
    for name in ("title", "link", "description", "language", "lastBuildDate", "generator"):
        if draw(st.booleans()):
            values = st.sampled_from(["en", "kk", "ru_RU", "", "EN-us"]) \
                if name == "language" else TEXT
            channel.append(draw(_element(name, values)))
    if draw(st.booleans()):
        channel.append('<atom:link href="https://example.org/rss" rel="self" '
                       'type="application/rss+xml"/>')
    channel += draw(st.lists(_item(), max_size=4))
    channel = draw(st.permutations(channel))
    decl = draw(st.sampled_from(['<?xml version="1.0" encoding="UTF-8"?>\n',
                                 "<?xml version='1.0'?>", ""]))
    body = (f'{decl}<rss version="2.0"{NAMESPACES}><channel>\n'
            + "\n".join(channel) + "\n</channel></rss>\n").encode()
    headers = {}
    content_type = draw(st.sampled_from(["application/rss+xml; charset=utf-8",
                                         "application/xml", "application/rss+xml", None]))
    if content_type is not None:
        headers["Content-Type"] = content_type
        language = draw(st.sampled_from([None, "kk", "ru, en", "de_AT"]))
        if language:
            headers["Content-Language"] = language
    return body, headers


def _both(body: bytes, headers: dict[str, str], url: str = "https://feeds.example.org/news/rss"
          ) -> tuple[object, object]:
    hdrs = {k.lower(): v for k, v in headers.items()}
    return _parse_xml(body, url, dict(hdrs)), _parse_xml(body, url, dict(hdrs), fast=False)


@pytest.mark.slow
@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(plain_documents())
def test_the_fast_path_gives_what_feedparser_gives(doc: tuple[bytes, dict[str, str]]) -> None:
    body, headers = doc
    assert read_plain_rss20(body, {k.lower(): v for k, v in headers.items()}) is not None
    fast, slow = _both(body, headers)
    assert fast == slow


MUTATIONS = [
    ("<channel>", '<channel xml:lang="de">'),
    ("<item>", '<item xml:base="https://other.example/">'),
    ("<item>", "<item><source url='https://s.example/'>Src</source>"),
    ("<item>", "<item><enclosure url='https://e.example/a.mp3'/>"),
    ("<item>", "<item><media:title>Media</media:title>"),
    ("<channel>", "<channel><image><title>Logo</title><link>https://l.example/</link></image>"),
    ("<item>", "<item><title>first</title>"),
    ("<channel>", "<channel><atom:link href='https://a.example/' rel='alternate' "
                  "type='text/html'/>"),
    ("</channel>", "<dc:date>2024-01-01</dc:date></channel>"),
    ("<rss ", '<!DOCTYPE rss [<!ENTITY e "x">]><rss '),
    ('version="2.0"', 'version="0.91"'),
    ('version="2.0"', 'version="2.0" xmlns="http://backend.userland.com/rss2"'),
    ("<channel>", "<channel>&nbsp;"),
    ("</rss>", "</rss><junk/>"),
]


@pytest.mark.slow
@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(plain_documents(), st.sampled_from(MUTATIONS),
       st.sampled_from([None, "text/xml", "text/html", "application/rss+xml; charset=latin-1"]))
def test_documents_outside_the_subset_read_the_same(
        doc: tuple[bytes, dict[str, str]], mutation: tuple[str, str],
        content_type: str | None) -> None:
    body, headers = doc
    old, new = mutation
    body = body.replace(old.encode(), new.encode(), 1)
    if content_type is not None:
        headers = {**headers, "Content-Type": content_type}
    fast, slow = _both(body, headers)
    assert fast == slow


@pytest.mark.parametrize("name", sorted(n for n in GOLDEN if not n.endswith(".json")))
def test_golden_files_read_the_same_either_way(name: str) -> None:
    url, served_with = GOLDEN[name]
    body = (FEEDS / name).read_bytes()
    for headers in (served_with, {}, {"Content-Type": "application/rss+xml; charset=utf-8"}):
        fast, slow = _both(body, headers, url)
        assert fast == slow


def test_a_typical_feed_takes_the_fast_path() -> None:
    body = (b'<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0"><channel>'
            b"<title>Wire</title><link>https://wire.example/</link><language>en</language>"
            b"<item><title>A &amp; B</title><link>https://wire.example/1?a=1&amp;b=2</link>"
            b"<description><![CDATA[<p>Text &nbsp;here</p>]]></description>"
            b'<guid isPermaLink="false">w-1</guid>'
            b"<pubDate>Tue, 19 Nov 2024 09:15:00 +0300</pubDate></item></channel></rss>")
    headers = {"content-type": "application/rss+xml; charset=utf-8"}
    assert read_plain_rss20(body, headers) is not None
    feed = parse_feed(body, url="https://wire.example/rss", headers=headers)
    item = feed.items[0]
    assert (item.title, item.link, item.guid, item.lang) == (
        "A & B", "https://wire.example/1?a=1&b=2", "w-1", "en")
    assert item.summary == "Text here"
    assert item.published is not None and item.published.isoformat() == "2024-11-19T06:15:00+00:00"
