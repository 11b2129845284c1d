"""monitor.parse: golden feed files, identity, hostile documents, JSON Feed.

Golden files live in ``tests/data/feeds/NAME`` (listed, with the headers each is
served with, in ``tests/golden.py``) with the expected result in
``NAME.expected.json``. After a deliberate change, rewrite the expectations with
``NEWS_MONITOR_UPDATE_GOLDEN=1 pytest tests/test_parse.py`` and review the diff.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from golden import FEEDS, GOLDEN
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.models import Item, ParsedFeed
from monitor.parse import (
    MAX_GUID,
    MAX_LINK,
    MAX_SUMMARY,
    MAX_TITLE,
    item_fingerprint,
    item_identity,
    parse_feed,
)
from monitor.parse.defuse import defuse_prolog  # the guard itself is worth a test

ROOT = Path(__file__).resolve().parents[1]


_ONE_ITEM = (b'<rss version="2.0"><channel><title>x</title>'
             b"<item><title>t</title></item></channel></rss>")


def _iso(when: datetime | None) -> str | None:
    return None if when is None else when.isoformat().replace("+00:00", "Z")


def _item_dict(item: Item) -> dict[str, Any]:
    return {"guid": item.guid, "title": item.title, "summary": item.summary, "link": item.link,
            "published": _iso(item.published), "lang": item.lang,
            "fingerprint": item.fingerprint, "outlet": item.outlet}


def _feed_dict(feed: ParsedFeed) -> dict[str, Any]:
    return {"url": feed.url, "title": feed.title, "link": feed.link, "language": feed.language,
            "is_feed": feed.is_feed, "problem": feed.problem,
            "items": [_item_dict(i) for i in feed.items]}


def _parse_golden(name: str) -> ParsedFeed:
    url, headers = GOLDEN[name]
    return parse_feed((FEEDS / name).read_bytes(), url=url, headers=headers)


def _assert_item_invariants(feed: ParsedFeed) -> None:
    for item in feed.items:
        assert item.feed_url == feed.url
        assert item.guid and len(item.guid) <= MAX_GUID
        assert len(item.title) <= MAX_TITLE and len(item.summary) <= MAX_SUMMARY
        assert item.link is None or (item.link.startswith(("http://", "https://"))
                                     and len(item.link) <= MAX_LINK)
        assert item.published is None or item.published.utcoffset() is not None
        assert item.published is None or item.published.tzinfo is UTC
        assert "<script" not in (item.title + item.summary).lower()
        assert len(item.fingerprint) == 32


# -- golden files -------------------------------------------------------------------


def test_every_golden_file_is_listed() -> None:
    on_disk = {p.name for p in FEEDS.iterdir() if not p.name.endswith(".expected.json")}
    assert on_disk == set(GOLDEN)


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_golden(name: str) -> None:
    got = _feed_dict(_parse_golden(name))
    expected_path = FEEDS / f"{name}.expected.json"
    if os.environ.get("NEWS_MONITOR_UPDATE_GOLDEN"):
        expected_path.write_text(json.dumps(got, ensure_ascii=False, indent=2) + "\n",
                                 encoding="utf-8")
    expected = json.loads(expected_path.read_text(encoding="utf-8"))
    assert got["items"] == expected["items"]
    assert got == expected


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_golden_invariants(name: str) -> None:
    feed = _parse_golden(name)
    assert feed.is_feed and feed.items
    _assert_item_invariants(feed)


def test_russian_rss_items() -> None:
    feed = _parse_golden("rss20-russian.xml")
    first, second, kazakh, flash = feed.items
    assert feed.language == "ru"
    assert first.guid == "news-example-ru-48213"
    assert "track(" not in first.summary  # <script> content is dropped
    assert "\xa0" not in first.summary and "…" in first.summary  # &nbsp; folded, &hellip; decoded
    assert first.published == datetime(2024, 11, 19, 6, 15, tzinfo=UTC)
    # relative <link> resolved against the feed URL; the guid keeps it as given
    assert second.link == "https://news.example.ru/2024/11/18/tranzit-zerna"
    assert second.title == "Казахстан & Россия: переговоры о транзите зерна"
    assert second.summary == "Стороны обсудили квоты на экспорт пшеницы и тарифы на перевалку."
    # no description: the summary comes from content:encoded; no link: the permalink guid
    assert kazakh.lang == "kk" and kazakh.summary.startswith("Атырау мұнай")
    assert kazakh.link == kazakh.guid
    assert flash.title == "Молния: «Газпром» сократил поставки"  # HTML in a title is stripped
    assert flash.summary == "Поставки сокращены на 15%."


def test_atom_languages_dates_and_links() -> None:
    feed = _parse_golden("atom.xml")
    btc, kazakh, insurers = feed.items
    assert feed.title == "Energy Wire — Caspian desk"
    assert [i.lang for i in feed.items] == ["en-us", "kk", "en-us"]  # entry xml:lang wins
    assert btc.link == "https://wire.example.com/articles/btc-flows"  # xml:base
    assert btc.published == datetime(2024, 11, 19, 4, 0, tzinfo=UTC)  # published, not updated
    assert kazakh.published == datetime(2024, 11, 18, 7, 30, tzinfo=UTC)  # only <updated>
    assert insurers.link is None  # javascript: is no link


def test_undated_entries_are_kept_without_a_date() -> None:
    feed = _parse_golden("undated.xml")
    assert [i.published is None for i in feed.items] == [True, True, False, True]
    assert len(feed.items) == 4


def test_malformed_feed_keeps_what_feedparser_recovers() -> None:
    feed = _parse_golden("malformed.xml")
    assert feed.is_feed and feed.problem and "not well-formed" in feed.problem
    assert [i.title for i in feed.items][:2] == ["Novorossiysk loadings resume",
                                                 "Poti terminal expands"]


def test_entries_without_guid_or_link_get_a_content_hash() -> None:
    feed = _parse_golden("no-guid-no-link.xml")
    guids = [i.guid for i in feed.items]
    assert all(g.startswith("sha256:") for g in guids[:4])
    assert len(set(guids)) == len(guids)
    # the two markup-only entries have no text at all, yet distinct identities
    assert feed.items[2].summary == feed.items[3].summary == ""
    assert feed.items[2].fingerprint != feed.items[3].fingerprint
    assert feed.items[4].guid == "mailto:desk@bulletin.example.org" and feed.items[4].link is None


def test_windows_1251_with_a_wrong_utf8_header() -> None:
    body = (FEEDS / "windows-1251.xml").read_bytes()
    feed = parse_feed(body, url="https://zerno.example.kz/rss",
                      headers={"content-type": "application/rss+xml; charset=utf-8"})
    assert feed.items[0].title == "Минсельхоз продлил запрет на вывоз пшеницы автотранспортом"
    assert feed.problem is not None  # feedparser's CharacterEncodingOverride


def test_wrong_latin1_header_on_utf8_body() -> None:
    body = (FEEDS / "wrong-charset.xml").read_bytes()
    for charset in ("windows-1251", "iso-8859-1", "koi8-r", "utf-16"):
        feed = parse_feed(body, url="https://qed.example.kz/rss",
                          headers={"Content-Type": f"application/xml; charset={charset}"})
        assert feed.items[0].title == "Қашаған кен орнында өндіріс қалпына келді", charset


# -- hostile documents ------------------------------------------------------------------


def _lol_dtd(levels: int = 9) -> str:
    decls = ['<!ENTITY lol "lol">']
    for i in range(1, levels + 1):
        ref = "&lol;" if i == 1 else f"&lol{i - 1};"
        decls.append(f'<!ENTITY lol{i} "{ref * 10}">')
    return "".join(decls)


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16", "utf-16-be", "utf-32"])
def test_billion_laughs_on_one_line_expands_nothing(encoding: str) -> None:
    # feedparser's own filter only sees declarations at the start of a line
    doc = (f'<?xml version="1.0" encoding="{encoding}"?><!DOCTYPE rss [{_lol_dtd()}]>'
           '<rss version="2.0"><channel><title>&lol9;</title>'
           "<item><title>&lol9;</title><description>x &lol5;</description></item>"
           "</channel></rss>")
    feed = parse_feed(doc.encode(encoding), url="https://laughs.example.org/rss")
    assert len(feed.items) == 1
    assert "lollol" not in feed.items[0].title + feed.items[0].summary + (feed.title or "")


def test_long_entity_referenced_many_times_is_not_expanded() -> None:
    # Plain feedparser turns this 60 kB document into a 100 MB summary.
    doc = ('<?xml version="1.0"?>\n<!DOCTYPE rss [\n<!ENTITY a "' + "x" * 5000 + '">\n]>\n'
           '<rss version="2.0"><channel><title>t</title><item><title>a</title><description>'
           + "&a;" * 20000 + "</description></item><item><title>broken & tail</title></item>"
           "</channel></rss>")
    feed = parse_feed(doc.encode(), url="https://laughs.example.org/rss")
    assert len(feed.items) == 2
    assert "xxxxx" not in feed.items[0].summary


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16", "utf-32-be"])
def test_prolog_is_defused_before_feedparser_sees_it(encoding: str) -> None:
    # feedparser scans the prolog with per-line ^\s*<!... patterns: blank lines
    # and repeated declarations made that quadratic (40 kB of newlines: 4.8 s).
    prolog = (f'<?xml version="1.0" encoding="{encoding}"?>' + "\n \r\n" * 5000
              + "<!DOCTYPE rss>\n" * 50 + '<!DOCTYPE r [<!ENTITY a "x>y"><!ENTITY b \'z\'>]>'
              + "<!ENTITY unterminated \"")
    body = (prolog + "\n" + _ONE_ITEM.decode()).encode(encoding)
    out = defuse_prolog(body).decode(encoding)
    head = out[: out.index("<rss")]
    assert "<!ENTITY" not in head and head.count("<!DOCTYPE") == 1
    assert not re.search(r"\n\s*\n", head)
    assert out.endswith(_ONE_ITEM.decode())  # the document itself is untouched
    assert len(parse_feed(body, url="https://e.org/rss").items) == 1


def test_a_plain_prolog_is_left_alone() -> None:
    for name in GOLDEN:
        body = (FEEDS / name).read_bytes()
        if b"<!ENTITY" not in body:
            assert defuse_prolog(body) is body, name


def test_external_entities_never_read_local_files(tmp_path: Path) -> None:
    # a feed itself, so that reading it by mistake would show in the items
    secret = tmp_path / "secret.xml"
    secret.write_text('<rss version="2.0"><channel><title>TOPSECRET-7f3a9</title>'
                      "<item><title>TOPSECRET item</title></item></channel></rss>\n")
    uri = secret.as_uri()
    item = "<item><title>t &xxe;</title><guid>&xxe;</guid><description>&xxe;</description></item>"
    docs = [
        f'<?xml version="1.0"?>\n<!DOCTYPE rss [\n<!ENTITY xxe SYSTEM "{uri}">\n]>\n'
        f'<rss version="2.0"><channel><title>&xxe;</title>{item}</channel></rss>',
        f'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY xxe SYSTEM "{uri}">]>'
        f'<rss version="2.0"><channel><title>&xxe;</title>{item}</channel></rss>',
        f'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY % p SYSTEM "{uri}"> %p;]>'
        f'<rss version="2.0"><channel><title>x</title>{item}</channel></rss>',
        f'<?xml version="1.0"?><!DOCTYPE rss SYSTEM "{uri}">'
        f'<rss version="2.0"><channel><title>x</title>{item}</channel></rss>',
        f'<?xml version="1.0"?><!DOCTYPE rss PUBLIC "-//x//EN" "{uri}">'
        f'<rss version="2.0"><channel><title>&xxe;</title>{item}</channel></rss>',
        f'<rss version="2.0" xmlns:xi="http://www.w3.org/2001/XInclude"><channel><title>x</title>'
        f'<item><title><xi:include href="{uri}" parse="text"/></title></item></channel></rss>',
    ]
    for doc in docs:
        feed = parse_feed(doc.encode(), url="https://xxe.example.org/rss")
        assert "TOPSECRET" not in repr(feed), doc
    # feedparser.parse(bytes) opens bytes that name a file; parse_feed must not
    for body in (str(secret).encode(), uri.encode()):
        feed = parse_feed(body, url="https://xxe.example.org/rss")
        assert not feed.is_feed and "TOPSECRET" not in repr(feed)


def test_xxe_golden_does_not_read_etc_passwd() -> None:
    feed = _parse_golden("xxe.xml")
    assert "root:" not in repr(feed)


def test_hostile_sizes_are_bounded() -> None:
    long_id = "id-" + "9" * 5000
    doc = ('<rss version="2.0"><channel><title>' + "T" * 5000 + "</title><item>"
           f"<guid>{long_id}</guid><title>" + "word " * 2000 + "</title>"
           "<link>https://example.org/" + "a" * 3000 + "</link>"
           "<description>" + "&lt;p&gt;para &lt;/p&gt;" * 10000 + "</description>"
           "</item></channel></rss>")
    feed = parse_feed(doc.encode(), url="https://example.org/rss")
    item = feed.items[0]
    assert feed.title is not None and len(feed.title) <= MAX_TITLE
    assert len(item.title) <= MAX_TITLE and item.title.endswith("…")
    assert len(item.summary) <= MAX_SUMMARY
    assert item.link is None  # too long to keep, and a cut URL leads nowhere
    assert item.guid.startswith("sha256:")
    assert item.guid == item_identity(long_id, None, "", "")  # stable


def test_control_characters_and_nul_never_reach_items() -> None:
    doc = ('<rss version="2.0"><channel><title>x</title><item>'
           "<guid>abc&#x7f;&#0;def</guid>"
           "<title>red \x1b[31malert\x1b[0m</title>"
           "<description>&#x1b;]0;pwned&#x7;text&#x9b;more</description>"
           "</item></channel></rss>")
    feed = parse_feed(doc.encode(), url="https://example.org/rss")
    item = feed.items[0]
    for text in (item.guid, item.title, item.summary):
        assert not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in text), repr(text)
    assert item.guid == "abcdef"
    assert item.title == "red alert"
    assert "pwned" not in item.summary and item.summary.startswith("text")  # OSC title dropped


@pytest.mark.parametrize(("link", "expected"), [
    ("https://example.org/a", "https://example.org/a"),
    ("/a/b?c=1", "https://feeds.example.org/a/b?c=1"),
    ("b", "https://feeds.example.org/news/b"),
    ("//cdn.example.net/x", "https://cdn.example.net/x"),
    ("HTTP://Example.org/A", "HTTP://Example.org/A"),  # valid as it is
    ("https://example.org/a b", "https://example.org/a%20b"),
    ("javascript:alert(1)", None),
    ("mailto:desk@example.org", None),
    ("ftp://example.org/file", None),
    ("data:text/html,<b>x</b>", None),
    ("http://[::1", None),
    ("https://", None),
])
def test_links_are_http_only_and_absolute(link: str, expected: str | None) -> None:
    doc = ('<rss version="2.0"><channel><title>x</title><item><title>t</title>'
           f"<link>{link.replace('&', '&amp;').replace('<', '&lt;')}</link>"
           "</item></channel></rss>")
    feed = parse_feed(doc.encode(), url="https://feeds.example.org/news/rss")
    assert feed.items[0].link == expected


def test_header_names_are_case_insensitive_and_content_language_counts() -> None:
    doc = _ONE_ITEM
    for headers in ({"Content-Language": "KK"}, {"content-language": "kk"},
                    {"CONTENT-LANGUAGE": "kk, ru"}):
        feed = parse_feed(doc, url="https://example.org/rss", headers=headers)
        assert feed.language == "kk" and feed.items[0].lang == "kk", headers


def test_language_tags_are_lower_cased() -> None:
    doc = (b'<rss version="2.0"><channel><language>en_US</language><title>x</title>'
           b"<item><title>t</title></item></channel></rss>")
    assert parse_feed(doc, url="https://example.org/rss").items[0].lang == "en-us"


# -- not a feed ---------------------------------------------------------------------------


@pytest.mark.parametrize(("body", "headers", "why"), [
    (b"", {}, "empty document"),
    (b" \r\n\t ", {}, "empty document"),
    (b"\xef\xbb\xbf", {}, "empty document"),
    (b"<!DOCTYPE html><html><head><title>Home</title></head><body><p>Hi</p></body></html>",
     {}, "looks like an HTML page"),
    (b'<html lang="en"><head><link rel="alternate" type="application/rss+xml" href="/rss">'
     b"</head><body><h1>News</h1></body></html>", {"Content-Type": "text/html"},
     "looks like an HTML page"),
    (b"<!-- generated --><!doctype HTML><body>x</body>", {}, "looks like an HTML page"),
    (bytes(range(256)) * 8, {"Content-Type": "application/octet-stream"}, "no RSS, Atom"),
    (b"Service temporarily unavailable", {"Content-Type": "text/plain"}, "no RSS, Atom"),
    (b'<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
     b"<url><loc>https://example.org/</loc></url></urlset>", {}, "no RSS, Atom"),
    (b'{"error": "not found"}', {"Content-Type": "application/json"}, "not a JSON Feed"),
    (b"[1, 2, 3]", {}, "not a JSON Feed"),
    (b'{"version": "https://jsonfeed.org/version/1.1", "items": [', {}, "invalid JSON"),
    (b"not json at all", {"Content-Type": "application/feed+json"}, "invalid JSON"),
    (b"[" * 100_000 + b"]" * 100_000, {}, "invalid JSON"),
    (b'{"a": ' + b"9" * 10_000 + b"}", {}, "invalid JSON"),
])
def test_not_a_feed(body: bytes, headers: dict[str, str], why: str) -> None:
    feed = parse_feed(body, url="https://example.org/x", headers=headers)
    assert not feed.is_feed and feed.items == ()
    assert feed.problem is not None and feed.problem.startswith("not a feed: ")
    assert why in feed.problem


def test_an_empty_but_valid_feed_is_a_feed() -> None:
    body = (b'<rss version="2.0"><channel><title>Quiet</title><link>https://q.example/</link>'
            b"</channel></rss>")
    feed = parse_feed(body, url="https://q.example/rss")
    assert feed.is_feed and feed.items == () and feed.problem is None and feed.title == "Quiet"


@pytest.mark.parametrize("content_type", ["application/json", "text/html; charset=utf-8",
                                          "text/plain", "application/octet-stream"])
def test_a_wrong_content_type_on_a_feed_still_parses(content_type: str) -> None:
    feed = parse_feed(_ONE_ITEM, url="https://example.org/rss",
                      headers={"Content-Type": content_type})
    assert feed.is_feed and len(feed.items) == 1


# -- JSON Feed ------------------------------------------------------------------------------


def test_json_feed_golden_details() -> None:
    feed = _parse_golden("jsonfeed-1.1.json")
    first, numeric, russian, no_id, bare = feed.items
    assert first.summary == "The EU lists 19 firms accused of re-exporting dual-use goods."
    assert first.lang == "en-gb" and numeric.lang == "en"
    assert numeric.guid == "1002" and numeric.link == "https://other.example.net/story/parallel-imports"
    assert numeric.published == datetime(2024, 11, 18, 23, 59, 59, tzinfo=UTC)  # date_modified
    assert russian.link == "https://transit.example.org/p/1003"
    assert no_id.guid == "https://transit.example.org/p/1004"
    assert no_id.published == datetime(2024, 11, 16, 8, 0, tzinfo=UTC)  # RFC 822, tolerated
    assert bare.guid.startswith("sha256:") and bare.published is None and bare.link is None


def test_json_feed_1_0_from_the_feedparser_corpus_shape() -> None:
    body = json.dumps({
        "version": "https://jsonfeed.org/version/1", "title": "My Example Feed",
        "home_page_url": "https://example.org/",
        "items": [{"id": "2", "content_text": "This is a second item.",
                   "url": "https://example.org/second-item"},
                  {"id": "1", "content_html": "<p>Hello, world!</p>\n\n<script>alert();</script>",
                   "url": "https://example.org/initial-post"}],
    }).encode()
    feed = parse_feed(body, url="https://example.org/feed.json")
    assert feed.title == "My Example Feed" and feed.link == "https://example.org/"
    assert [(i.guid, i.summary) for i in feed.items] == [
        ("2", "This is a second item."), ("1", "Hello, world!")]


def test_hostile_json_feed() -> None:
    body = json.dumps({
        "version": "https://jsonfeed.org/version/1.1",
        "title": ["not", "a", "string"],
        "language": 42,
        "items": [
            "not an item", 7, None,
            {"id": "\ud800bad", "title": "a\ud800b", "summary": {"x": 1}, "url": 5},
            {"id": True, "title": "bool id", "date_published": "9999-12-31T23:59:59-23:59"},
            {"id": None, "url": "https://example.org/" + "x" * 3000, "title": "t" * 5000},
        ],
    }).encode()
    feed = parse_feed(body, url="https://example.org/feed.json")
    assert feed.is_feed and feed.title is None and feed.language is None
    assert len(feed.items) == 3  # the three objects; the scalars are no entries
    surrogate, bool_id, big = feed.items
    surrogate.guid.encode("utf-8")
    surrogate.title.encode("utf-8")
    assert bool_id.guid.startswith("sha256:")  # a boolean is no id
    assert bool_id.published is None  # out of range once in UTC
    assert big.link is None and len(big.title) <= MAX_TITLE
    _assert_item_invariants(feed)


def test_a_summary_of_bare_markup_gives_way_to_the_content() -> None:
    doc = ('<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/">'
           "<channel><title>x</title><item><guid>1</guid>"
           "<description>&lt;img src=\"https://e.org/lead.jpg\"&gt;</description>"
           "<content:encoded>&lt;p&gt;The article text.&lt;/p&gt;</content:encoded>"
           "</item></channel></rss>")
    assert parse_feed(doc.encode(), url="https://e.org/rss").items[0].summary == "The article text."
    body = json.dumps({"version": "https://jsonfeed.org/version/1.1", "items": [
        {"id": "1", "summary": "<img src='x'>", "content_html": "<br>",
         "content_text": "Plain <text> & more"}]}).encode()
    # content_text is reduced like the rest: no summary ever holds a tag
    assert parse_feed(body, url="https://e.org/f.json").items[0].summary == "Plain & more"


def test_json_feed_without_items() -> None:
    body = b'{"version": "https://jsonfeed.org/version/1.1", "title": "Empty", "items": {}}'
    feed = parse_feed(body, url="https://example.org/feed.json")
    assert feed.is_feed and feed.items == () and feed.problem


def test_json_feed_with_bom_and_latin1_bytes() -> None:
    body = ('\ufeff{"version": "https://jsonfeed.org/version/1.1", "items": '
            '[{"id": "1", "title": "caf\u00e9"}]}').encode("utf-8")
    assert parse_feed(body, url="https://e.org/f.json").items[0].title == "café"
    broken = (b'{"version": "https://jsonfeed.org/version/1.1", '
              b'"items": [{"id": "1", "title": "caf\xe9"}]}')
    assert parse_feed(broken, url="https://e.org/f.json").items[0].title == "caf\ufffd"


# -- identity and fingerprint ------------------------------------------------------------


def test_item_identity_prefers_id_then_link_then_hash() -> None:
    assert item_identity("urn:x:1", "https://e.org/1", "t", "s") == "urn:x:1"
    assert item_identity(None, "https://e.org/1", "t", "s") == "https://e.org/1"
    assert item_identity("", "https://e.org/1", "t", "s") == "https://e.org/1"
    hashed = item_identity(None, None, "t", "s", ["<p>c</p>"])
    assert hashed.startswith("sha256:") and len(hashed) == 71
    assert hashed == item_identity(None, None, "t", "s", ["<p>c</p>"])
    # raw values, not plain text: markup alone tells entries apart
    assert (item_identity(None, None, "", '<img src="a">')
            != item_identity(None, None, "", '<img src="b">'))
    # the parts are delimited, so moving text between fields changes the hash
    assert item_identity(None, None, "ab", "") != item_identity(None, None, "a", "b")


def test_fingerprint_recognises_a_republished_entry() -> None:
    a = item_fingerprint("CPC  resumes loadings", "Flows are back.")
    b = item_fingerprint("cpc resumes\nLOADINGS", "  Flows are   back. ")
    assert a == b
    assert a != item_fingerprint("CPC resumes loadings", "Flows are back!")
    assert item_fingerprint("", "", guid="1") != item_fingerprint("", "", guid="2")


def test_same_entry_under_two_ids_shares_a_fingerprint() -> None:
    doc = ('<rss version="2.0"><channel><title>x</title>'
           "<item><guid>a-1</guid><title>Grain ban extended</title><description>"
           "&lt;p&gt;Until &lt;b&gt;June&lt;/b&gt;.&lt;/p&gt;</description></item>"
           "<item><guid>a-2</guid><title>Grain  ban extended</title><description>"
           "Until June.</description></item></channel></rss>")
    one, two = parse_feed(doc.encode(), url="https://e.org/rss").items
    assert one.guid != two.guid and one.fingerprint == two.fingerprint


# -- robustness -------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2000))
def test_random_bytes_never_raise(body: bytes) -> None:
    feed = parse_feed(body, url="https://example.org/rss", headers={"Content-Type": "text/xml"})
    _assert_item_invariants(feed)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_damaged_golden_feeds_never_raise(data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(sorted(GOLDEN)))
    body = bytearray((FEEDS / name).read_bytes())
    for _ in range(data.draw(st.integers(1, 8))):
        pos = data.draw(st.integers(0, len(body) - 1))
        body[pos] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(1, len(body)))
    url, headers = GOLDEN[name]
    feed = parse_feed(bytes(body[:cut]), url=url, headers=headers)
    _assert_item_invariants(feed)


@pytest.mark.slow
def test_importing_parse_does_not_load_feedparser() -> None:
    code = ("import sys, monitor.parse, monitor.text; "
            "assert 'feedparser' not in sys.modules, 'feedparser loaded at import'; "
            "monitor.parse.parse_feed(b'<rss/>', url='https://e.org/'); "
            "assert 'feedparser' in sys.modules")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr


# -- the language of items whose feed declares none --------------------------------------

_IN_THREE = [  # (title, summary) in ru, kk, en, and one too short to tell
    ("КТК приостановил отгрузку нефти после шторма",
     "Каспийский трубопроводный консорциум остановил погрузку танкеров в Новороссийске."),
    ("КҚК терминалында дауылдан кейін мұнай тиеу тоқтатылды",
     "Каспий құбыр консорциумы Новороссийск маңындағы терминалда мұнай тиеуді тоқтатты."),
    ("CPC halts loadings after a storm",
     "The Caspian Pipeline Consortium suspended loadings at its terminal near Novorossiysk."),
    ("Tengiz", ""),
]


def _rss(language: str = "", entry_language: str = "") -> bytes:
    items = "".join(
        f"<item><title>{t}</title><description>{s}</description><guid>g{n}</guid>"
        + (f"<dc:language>{entry_language}</dc:language>" if entry_language else "")
        + "</item>" for n, (t, s) in enumerate(_IN_THREE))
    return ('<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/"><channel>'
            "<title>x</title>" + (f"<language>{language}</language>" if language else "")
            + items + "</channel></rss>").encode()


def _atom(language: str = "") -> bytes:
    lang = f' xml:lang="{language}"' if language else ""
    entries = "".join(f"<entry><id>g{n}</id><title>{t}</title><summary>{s}</summary></entry>"
                      for n, (t, s) in enumerate(_IN_THREE))
    return (f'<feed xmlns="http://www.w3.org/2005/Atom"{lang}><title>x</title>{entries}'
            "</feed>").encode()


def _json_feed(language: str = "") -> bytes:
    doc: dict[str, Any] = {"version": "https://jsonfeed.org/version/1.1", "title": "x",
                           "items": [{"id": f"g{n}", "title": t, "summary": s}
                                     for n, (t, s) in enumerate(_IN_THREE)]}
    if language:
        doc["language"] = language
    return json.dumps(doc, ensure_ascii=False).encode()


@pytest.mark.parametrize("document", [_rss, _atom, _json_feed], ids=["rss", "atom", "json"])
def test_items_of_a_feed_without_a_language_get_a_guessed_one(document: Any) -> None:
    feed = parse_feed(document(), url="https://example.org/feed")
    assert feed.language is None  # the feed's own field stays what the feed says
    assert [i.lang for i in feed.items] == ["ru", "kk", "en", None]


@pytest.mark.parametrize("document", [_rss, _atom, _json_feed], ids=["rss", "atom", "json"])
def test_a_declared_feed_language_wins_over_the_guess(document: Any) -> None:
    feed = parse_feed(document("en-GB"), url="https://example.org/feed")
    assert [i.lang for i in feed.items] == ["en-gb"] * 4


def test_an_entry_s_declared_language_wins_over_the_guess() -> None:
    feed = parse_feed(_rss(entry_language="kk"), url="https://example.org/feed")
    assert [i.lang for i in feed.items] == ["kk"] * 4
