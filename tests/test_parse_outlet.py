"""monitor.parse: the item's own outlet, where the feed names one.

RSS 2.0 ``<source>`` and an Atom entry's ``<source><title>`` (feedparser's
``source.title``), else an item's ``dc:publisher``; never the author, never a
JSON Feed's ``authors``. The outlet is shown only: it changes no identity or
fingerprint.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from golden import FEEDS, GOLDEN

from monitor.parse import _parse_xml, parse_feed
from monitor.parse._common import MAX_OUTLET, make_item
from monitor.parse.plain_rss import read_plain_rss20

REAL_FEEDS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "real-feeds"


def _golden(name: str) -> list[str | None]:
    url, headers = GOLDEN[name]
    return [i.outlet for i in parse_feed((FEEDS / name).read_bytes(), url=url,
                                         headers=headers).items]


def test_rss_source_and_dc_publisher_name_the_outlet() -> None:
    # <source url> with text; text folded and markup-free; dc:publisher without
    # its e-mail address; an empty <source> names nobody
    assert _golden("rss20-aggregator.xml") == [
        "Reuters", "Kursiv & Co Media", "Agri Daily", "Trade Monitor", None]


def test_atom_entry_source_title_names_the_outlet() -> None:
    assert _golden("atom-source.xml") == ["Energy Kazakhstan", None, None]


def test_feeds_that_name_nobody_have_no_outlet() -> None:
    for name in ("rss20-russian.xml", "atom.xml", "rss10.rdf", "jsonfeed-1.1.json"):
        assert set(_golden(name)) == {None}, name  # atom.xml has a feed <author>: not an outlet


def test_a_document_with_source_is_read_by_feedparser_on_both_paths() -> None:
    body = (FEEDS / "rss20-aggregator.xml").read_bytes()
    headers = {"content-type": "application/rss+xml; charset=utf-8"}
    assert read_plain_rss20(body, headers) is None  # <source> is outside the plain subset
    url = "https://news.google.example/rss"
    assert _parse_xml(body, url, dict(headers)) == _parse_xml(body, url, dict(headers),
                                                              fast=False)


def test_the_outlet_changes_no_identity() -> None:
    plain = (b'<rss version="2.0"><channel><item><title>T</title><guid>g</guid></item>'
             b"</channel></rss>")
    sourced = plain.replace(b"<guid>", b"<source url='https://s.example/'>S</source><guid>")
    a, b = (parse_feed(d, url="https://f.example/rss").items[0] for d in (plain, sourced))
    assert (a.outlet, b.outlet) == (None, "S")
    assert (a.guid, a.fingerprint, a.title) == (b.guid, b.fingerprint, b.title)


def test_the_outlet_is_bounded_plain_text() -> None:
    def outlet(raw: object) -> str | None:
        return make_item("https://f.example/rss", entry_id="x", raw_link=None, raw_title="t",
                         raw_summary="", raw_content=(), plain_summary="", published=None,
                         lang=None, raw_outlet=raw).outlet

    assert outlet("\x1b[31mReu\x00ters\x07 ") == "Reuters"
    assert outlet("  \n ") is None and outlet(None) is None and outlet(42) == "42"
    long = outlet("A" * 5000)
    assert long is not None and len(long) <= MAX_OUTLET


def test_shared_real_feeds_that_name_outlets() -> None:
    if not REAL_FEEDS.is_dir():
        pytest.skip(f"{REAL_FEEDS} is not there (the shared corpus sits beside the checkout)")
    found = {}
    for path in sorted(REAL_FEEDS.iterdir()):
        if path.suffix == ".md":
            continue
        items = parse_feed(path.read_bytes(), url="https://feed.example/rss").items
        outlets = [i.outlet for i in items if i.outlet]
        if outlets:
            found[path.name] = (len(outlets), set(outlets))
    assert found == {
        "google-news-fr.xml": (1, {"RTBF"}),
        "washington-post-wellness.xml": (26, {"The Washington Post"}),
    }
