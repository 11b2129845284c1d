"""Every third-party feed in ``../shared/corpus`` ingests without an exception.

The corpus is read where it lies (it is never copied into this repository); the
tests skip when ``../shared`` is not beside the checkout.

* ``feedparser-tests/``: feedparser's own 2,100 test documents, parsed in one
  test with the HTTP headers their ``Header:`` comments name, each yielding as
  many items as feedparser recovers entries; failures are collected and
  reported together.
* ``real-feeds/``: 30 saved news feeds; each yields exactly the entries
  feedparser recovers, with non-empty, unique (or explained) guids and UTC dates.
"""

from __future__ import annotations

import io
import re
from collections import defaultdict
from datetime import UTC
from pathlib import Path

import feedparser
import pytest

from monitor.models import ParsedFeed
from monitor.parse import MAX_GUID, MAX_LINK, MAX_SUMMARY, MAX_TITLE, parse_feed

SHARED = Path(__file__).resolve().parents[2] / "shared"
FEEDPARSER_TESTS = SHARED / "corpus" / "feedparser-tests"
REAL_FEEDS = SHARED / "corpus" / "real-feeds"

# "Header:      Content-type: application/atom+xml; charset=utf-8" in a test's leading comment
_HEADER = re.compile(rb"^Header:\s*([A-Za-z-]+):[ \t]*(.*?)[ \t]*\r?$", re.MULTILINE)
_CONTENT_TYPES = {".xml": "application/xml", ".json": "application/feed+json"}


def _corpus_files(root: Path, suffixes: tuple[str, ...]) -> list[Path]:
    if not root.is_dir():
        pytest.skip(f"{root} is not there (the shared corpus sits beside the checkout)")
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in suffixes)


def _headers_for(path: Path, body: bytes) -> dict[str, str]:
    """The headers the upstream harness serves this file with, else none."""
    found = _HEADER.findall(body[:4096])
    return {k.decode("ascii"): v.decode("latin-1") for k, v in found}


def _invariant_errors(feed: ParsedFeed) -> list[str]:
    errors = []
    for n, item in enumerate(feed.items):
        where = f"item {n}"
        if not item.guid or len(item.guid) > MAX_GUID:
            errors.append(f"{where}: bad guid {item.guid!r:.80}")
        if len(item.title) > MAX_TITLE or len(item.summary) > MAX_SUMMARY:
            errors.append(f"{where}: unbounded title or summary")
        if item.link is not None and (not item.link.startswith(("http://", "https://", "HTTP"))
                                      or len(item.link) > MAX_LINK):
            errors.append(f"{where}: bad link {item.link!r:.80}")
        if item.published is not None and item.published.tzinfo is not UTC:
            errors.append(f"{where}: published not in UTC: {item.published!r}")
    return errors


@pytest.mark.slow
def test_feedparser_test_documents_all_ingest() -> None:
    files = _corpus_files(FEEDPARSER_TESTS, (".xml", ".json"))
    assert len(files) > 2000
    failures: list[str] = []
    feeds = items = 0
    for path in files:
        body = path.read_bytes()
        name = path.relative_to(FEEDPARSER_TESTS)
        headers = _headers_for(path, body)
        try:
            feed = parse_feed(body, url=f"http://127.0.0.1:8097/{name}", headers=headers)
        except Exception as e:  # collect, so one run shows every failure
            failures.append(f"{name}: {type(e).__name__}: {e}")
            continue
        failures.extend(f"{name}: {err}" for err in _invariant_errors(feed))
        if path.suffix == ".xml":  # every entry feedparser recovers is kept
            reference = feedparser.parse(io.BytesIO(body), response_headers=headers,
                                         sanitize_html=False, resolve_relative_uris=False)
            if len(feed.items) != len(reference.entries):
                failures.append(f"{name}: {len(feed.items)} items for "
                                f"{len(reference.entries)} entries")
        feeds += feed.is_feed
        items += len(feed.items)
    assert not failures, f"{len(failures)} failures:\n" + "\n".join(failures[:50])
    # Nearly all of them are feeds; the exceptions are the empty document and
    # CDF channels that hold nothing at all.
    assert feeds > len(files) - 20
    assert items > 1000


def test_feedparser_json_example_is_read() -> None:
    path = FEEDPARSER_TESTS / "json" / "example.json"
    if not path.is_file():
        pytest.skip(f"{path} is not there")
    feed = parse_feed(path.read_bytes(), url="https://example.org/feed.json")
    # its Expect: feed.title == 'My Example Feed' and len(entries) == 2
    assert feed.title == "My Example Feed" and len(feed.items) == 2
    assert feed.items[1].summary == "Hello, world!"  # the <script> is gone


def _real_feed_names() -> list[str]:
    if not REAL_FEEDS.is_dir():
        return []
    return sorted(p.name for p in REAL_FEEDS.iterdir() if p.suffix in (".xml", ".rss", ".rdf",
                                                                      ".atom"))


@pytest.mark.parametrize("name", _real_feed_names() or ["(corpus missing)"])
def test_real_feed_ingests_every_entry(name: str) -> None:
    path = REAL_FEEDS / name
    if not path.is_file():
        pytest.skip(f"{REAL_FEEDS} is not there (the shared corpus sits beside the checkout)")
    body = path.read_bytes()
    url = f"https://feeds.example.net/{name}"
    feed = parse_feed(body, url=url)
    reference = feedparser.parse(io.BytesIO(body), sanitize_html=False,
                                 resolve_relative_uris=False)

    assert feed.is_feed
    assert len(feed.items) == len(reference.entries) > 0
    assert not _invariant_errors(feed)
    assert bool(feed.problem) == bool(reference.bozo)

    # A guid may repeat only where the document itself repeats the entry's id,
    # or (having none) its link: the same entry listed twice.
    by_guid: dict[str, list[int]] = defaultdict(list)
    for n, item in enumerate(feed.items):
        by_guid[item.guid].append(n)
    for guid, positions in by_guid.items():
        if len(positions) == 1:
            continue
        entries = [reference.entries[n] for n in positions]
        ids = {e.get("id") for e in entries}
        links = {e.get("link") for e in entries}
        assert ids == {guid} or (ids == {None} and links == {guid}), (
            f"guid {guid!r} shared by entries {positions} that the feed does not repeat")

    # Every date feedparser reads becomes a UTC datetime, and only those.
    for item, entry in zip(feed.items, reference.entries, strict=True):
        # dict.get: FeedParserDict.get("updated_parsed") falls back to published, with a warning
        parsed = dict.get(entry, "published_parsed") or dict.get(entry, "updated_parsed")
        assert (item.published is None) == (parsed is None)
        if parsed is not None:
            assert item.published is not None
            assert item.published.timetuple()[:6] == tuple(parsed[:6])


def test_real_feed_quirks() -> None:
    if not REAL_FEEDS.is_dir():
        pytest.skip(f"{REAL_FEEDS} is not there")

    def parsed(name: str) -> ParsedFeed:
        return parse_feed((REAL_FEEDS / name).read_bytes(), url=f"https://feeds.example.net/{name}")

    uol = parsed("uol-noticias-br.rss")  # "Seg, 24 Set 2018": kept, undated
    assert len(uol.items) == 15 and all(i.published is None for i in uol.items)
    assert uol.problem and "windows-1252" in uol.problem
    guardian = parsed("guardian-world.xml")  # not well-formed: the loose parser's entries
    assert guardian.is_feed and guardian.problem and len(guardian.items) > 50
    heise = parsed("heise-online.rdf")  # RSS 0.90 namespace, no dates, no guids
    assert len({i.guid for i in heise.items}) == len(heise.items) == 60
    assert parsed("argumenty-i-fakty-ru.xml").items[0].lang == "ru-ru"
    greek = parsed("liberal-gr-iso-8859-7.xml")
    assert greek.items[0].title.startswith("«Πορτραίτα")
    for item in parsed("huffpost-front-page.xml").items + parsed("golem-de-iso-8859-1.xml").items:
        assert "<" not in item.summary or not re.search(r"<[a-z/!]", item.summary)
