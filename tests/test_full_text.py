"""full_text: each new item's article page fetched once, its main text matched as
``content``, on a loopback news site whose pages carry heavy chrome, a
robots.txt, and hostile pages (huge, slow, a gzip bomb, JavaScript only, the
wrong charset, a redirect to the metadata address).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from feedserver import Drip, Feed, FeedServer, GzipBomb, Huge, Redirect, Status
from newssite import chrome_page, headline_feed, js_only_page

from monitor.config import load_settings
from monitor.errors import ConfigError
from monitor.fetch import PageMemory, address_kind, fetch_pages
from monitor.highlight import sentence_at
from monitor.models import Evidence, FeedState, Item, Match, NewItem, Severity
from monitor.parse.article import decode_page, extract_text, lead
from monitor.pipeline import Poller
from monitor.rules import load_rules, shipped_rules_dir
from monitor.settings import PollConfig
from monitor.status import status_document
from monitor.store import Store

HTML = "text/html; charset=utf-8"
CPC_BODY = [
    "The Caspian Pipeline Consortium suspended tanker loadings at its marine terminal near "
    "Novorossiysk on Tuesday after a storm damaged one of its single point moorings, the "
    "consortium said in a statement.",
    "Kazakhstan ships most of its crude exports through the pipeline. Repairs are expected "
    "to take at least a week, two traders said.",
]
PARK_BODY = [
    "The city council opened a new park on the left bank of the river on Saturday, with "
    "playgrounds, a skating rink and four kilometres of cycle paths.",
    "The mayor said two more parks would open next year in the northern districts, where "
    "residents had long complained of a lack of green space.",
]
RU_BODY = [
    "Каспийский трубопроводный консорциум приостановил отгрузку нефти на морском терминале "
    "под Новороссийском из-за повреждения выносного причального устройства во время шторма.",
    "Через КТК проходит около двух третей казахстанского экспорта нефти, напомнили в "
    "министерстве энергетики.",
]


def _page(headline: str, body: list[str], **kw: object) -> Feed:
    return Feed(chrome_page(headline, body, **kw).encode(), content_type=HTML)  # type: ignore[arg-type]


def _site(server: FeedServer) -> dict[str, str]:
    """The site's pages; returns guid -> expected outcome."""
    r = server.routes
    r["/robots.txt"] = Feed(b"User-agent: *\nDisallow: /members/\n", content_type="text/plain")
    # Only the chrome names the rules' topics here: nothing may hit.
    r["/news/park"] = _page("City opens a new park", PARK_BODY)
    # A headline that names no topic; the article does.
    r["/news/terminal"] = _page("Terminal operator gives an update", CPC_BODY)
    # The same article, where robots.txt says no: never fetched, so no hit.
    r["/members/terminal"] = _page("Members: terminal update", CPC_BODY)
    r["/news/app"] = Feed(js_only_page("CPC halts loadings at Novorossiysk after storm").encode(),
                          content_type=HTML)
    # Russian, windows-1251, while the header claims UTF-8.
    r["/news/ru"] = Feed(chrome_page("Новости терминала", RU_BODY, lang="ru",
                                     charset=None).encode("cp1251", "xmlcharrefreplace"),
                         content_type=HTML)
    r["/news/huge"] = Huge(8 * 1024 * 1024, content_type="text/html")
    r["/news/slow"] = Drip(interval=0.2, content_type="text/html")
    r["/news/bomb"] = GzipBomb(64 << 20, content_type="text/html")
    r["/news/meta"] = Redirect("http://169.254.169.254/latest/meta-data/")
    r["/news/missing"] = Status(404)
    entries = [
        ("park", "City opens a new park", "/news/park"),
        ("terminal", "Terminal operator gives an update", "/news/terminal"),
        ("members", "Members: terminal update", "/members/terminal"),
        ("app", "CPC halts loadings at Novorossiysk after storm", "/news/app"),
        ("ru", "Новости терминала", "/news/ru"),
        ("huge", "Huge page", "/news/huge"),
        ("slow", "Slow page", "/news/slow"),
        ("bomb", "Bomb page", "/news/bomb"),
        ("meta", "Redirect to the metadata address", "/news/meta"),
        ("missing", "Page gone", "/news/missing"),
    ]
    r["/feed.xml"] = Feed(headline_feed([(g, t, server.url(p)) for g, t, p in entries]))
    return {g: p for g, _, p in entries}


def _config(tmp_path: Path, server: FeedServer, *, full_text: bool = True) -> Path:
    config = tmp_path / "monitor.toml"
    config.write_text(
        f'[storage]\nurl = "sqlite:///{tmp_path / "m.db"}"\n'
        f'[poll]\ntimeout = "2s"\n'
        f'[[feeds]]\nurl = "{server.url("/feed.xml")}"\nfull_text = {str(full_text).lower()}\n',
        encoding="utf-8")
    return config


def _hits(store: Store) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for h in store.list_hits():
        out.setdefault(h.guid, []).append(h.rule_id)
    return out


def test_full_text_matches_the_article_never_the_chrome_and_keeps_every_item(
        feed_server: FeedServer, tmp_path: Path) -> None:
    paths = _site(feed_server)
    settings = load_settings(_config(tmp_path, feed_server))
    store = Store.open(settings.storage_url)
    try:
        poller = Poller(settings, store, lambda: load_rules(shipped_rules_dir()))
        report = poller.poll()
        assert report.failed == 0 and report.new_items == len(paths)  # no item lost
        hits = _hits(store)
        # The article body makes the hit; the chrome (BTC ticker, CPC of China,
        # a CPC headline under "most read", the footer) makes none.
        assert hits == {"terminal": ["cpc-disruption"], "ru": ["cpc-disruption"],
                        "app": ["cpc-disruption"]}
        contents = {r["guid"]: r["content"] for r in store.iter_items()}
        assert "single point moorings" in contents["terminal"]
        assert "Most read" not in contents["terminal"] and "BTC" not in contents["terminal"]
        assert "cookies" not in contents["park"] and "Accept all" not in contents["park"]
        assert "Каспийский трубопроводный консорциум" in contents["ru"]  # cp1251 read right
        # The JavaScript shell has no text: matched on the feed's headline alone.
        for guid in ("app", "members", "huge", "slow", "bomb", "meta", "missing"):
            assert contents[guid] == "", guid
        (terminal,) = [h for h in store.list_hits() if h.guid == "terminal"]
        assert {e.field for e in terminal.evidence} == {"content"}
        ev = next(e for e in terminal.evidence if e.context)
        assert ev.context is not None and ev.context.startswith("The Caspian Pipeline")
        assert len(ev.context) < 300  # the sentence, not the article
        # robots.txt: the disallowed page never requested, robots.txt once.
        assert feed_server.count("/members/terminal") == 0
        assert feed_server.count("/robots.txt") == 1
        # status counts the pages not read (members, app, huge, slow, bomb, meta,
        # missing) and names the last one's reason.
        row = status_document(settings, store)["feeds"][0]
        assert row["article_failures"] == 7
        assert row["article_error"] and row["article_error"].startswith("http://127.0.0.1:")
    finally:
        store.close()


def test_each_article_page_is_fetched_once_across_polls(
        feed_server: FeedServer, tmp_path: Path) -> None:
    feed_server.routes["/robots.txt"] = Status(404)  # no rules: everything may be fetched
    feed_server.routes["/a"] = _page("Terminal operator gives an update", CPC_BODY)
    feed_server.routes["/b"] = _page("City opens a new park", PARK_BODY)
    entries = [("a", "Terminal operator gives an update", feed_server.url("/a"))]
    feed_server.routes["/feed.xml"] = Feed(headline_feed(entries))
    settings = load_settings(_config(tmp_path, feed_server))
    store = Store.open(settings.storage_url)
    try:
        poller = Poller(settings, store, lambda: load_rules(shipped_rules_dir()))
        assert poller.poll().new_hits == 1
        entries.append(("b", "City opens a new park", feed_server.url("/b")))
        feed_server.routes["/feed.xml"] = Feed(headline_feed(entries))
        second = poller.poll()
        assert second.new_items == 1 and second.new_hits == 0
        assert poller.poll().new_items == 0  # the feed unchanged: a 304, no page fetched
        assert feed_server.count("/a") == 1 and feed_server.count("/b") == 1
        assert feed_server.count("/robots.txt") == 1  # kept between polls
        ua = feed_server.requests("/a")[0].headers.get("user-agent", "")
        assert ua.startswith("news-monitor/")
    finally:
        store.close()


def test_without_full_text_no_page_is_fetched(feed_server: FeedServer, tmp_path: Path) -> None:
    _site(feed_server)
    settings = load_settings(_config(tmp_path, feed_server, full_text=False))
    store = Store.open(settings.storage_url)
    try:
        Poller(settings, store, lambda: load_rules(shipped_rules_dir())).poll()
        assert _hits(store) == {"app": ["cpc-disruption"]}  # the headline alone
        assert feed_server.count() == 1  # the feed, nothing else
    finally:
        store.close()


def test_poll_full_text_is_every_feeds_default_and_a_feed_may_say_no(tmp_path: Path) -> None:
    config = tmp_path / "m.toml"
    config.write_text('[poll]\nfull_text = true\n[[feeds]]\nurl = "https://a.example/rss"\n'
                      '[[feeds]]\nurl = "https://b.example/rss"\nfull_text = false\n'
                      '[[feeds]]\nurl = "https://c.example/rss"\nfull_text = "topic"\n'
                      '[[feeds]]\nurl = "https://t.me/s/chan_x"\n',
                      encoding="utf-8")
    settings = load_settings(config)
    # A channel's posts are their own text: not by default.
    assert [settings.feed_full_text(f) for f in settings.feeds] == ["all", "off", "topic",
                                                                    "off"]
    config.write_text('[poll]\nfull_text = "yes"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"poll\.full_text: 'yes' is not true, false or"):
        load_settings(config)


# -- the fetcher's own guarantees -------------------------------------------------


def _pages(urls: list[str], feed_url: str, poll: PollConfig | None = None,
           memory: PageMemory | None = None) -> list[object]:
    async def run() -> list[object]:
        out: list[object] = [None] * len(urls)
        async for i, result in fetch_pages(urls, feed_url, poll or PollConfig(timeout=2.0),
                                           memory or PageMemory()):
            out[i] = result
        return out

    return asyncio.run(run())


def test_a_feed_on_a_public_address_never_gets_loopback_pages(feed_server: FeedServer) -> None:
    feed_server.routes["/page"] = _page("x", CPC_BODY)
    port = feed_server.port
    # A feed elsewhere (a name that does not resolve here is not private either).
    results = _pages([f"http://127.0.0.1:{port}/page", f"http://localhost:{port}/page",
                      "http://169.254.169.254/latest/meta-data/", "file:///etc/passwd",
                      f"http://[::ffff:127.0.0.1]:{port}/page"],
                     "https://news.example.org/rss")
    kinds = [r.error_kind for r in results]  # type: ignore[attr-defined]
    assert kinds == ["blocked", "blocked", "blocked", "invalid_url", "blocked"]
    assert feed_server.count() == 0  # not even robots.txt


def test_redirects_are_checked_again_and_retry_after_backs_the_host_off(
        feed_server: FeedServer) -> None:
    r = feed_server.routes
    r["/robots.txt"] = Status(404)
    r["/hop"] = Redirect("/hop2")
    r["/hop2"] = Redirect("http://169.254.169.254/")
    r["/ipv6meta"] = Redirect("http://[fe80::1]/")
    r["/busy"] = Status(429, retry_after="120")
    r["/after"] = _page("x", CPC_BODY)
    memory = PageMemory()
    feed = feed_server.url("/feed.xml")
    hop, v6, busy = _pages([feed_server.url("/hop"), feed_server.url("/ipv6meta"),
                            feed_server.url("/busy")], feed, memory=memory)
    assert hop.error_kind == "blocked" and "169.254.169.254" in hop.error  # type: ignore[attr-defined]
    assert v6.error_kind == "blocked"  # type: ignore[attr-defined]
    assert busy.status == 429  # type: ignore[attr-defined]
    (after,) = _pages([feed_server.url("/after")], feed, memory=memory)
    assert after.error_kind == "backoff"  # type: ignore[attr-defined]
    assert feed_server.count("/after") == 0


def test_an_unreachable_robots_txt_means_nothing_is_fetched(feed_server: FeedServer) -> None:
    feed_server.routes["/robots.txt"] = Status(503)
    feed_server.routes["/page"] = _page("x", CPC_BODY)
    (page,) = _pages([feed_server.url("/page")], feed_server.url("/feed.xml"))
    assert page.error_kind == "robots"  # type: ignore[attr-defined]
    assert feed_server.count("/page") == 0


def test_address_kinds() -> None:
    assert [address_kind(a) for a in (
        "169.254.169.254", "fe80::1", "0.0.0.0", "100.100.100.200", "fd00:ec2::254",
        "::ffff:169.254.169.254", "64:ff9b::a9fe:a9fe", "224.0.0.1")] == ["forbidden"] * 8
    assert [address_kind(a) for a in ("127.0.0.1", "::1", "10.1.2.3", "192.168.0.1",
                                      "::ffff:127.0.0.1", "fd12::1")] == ["private"] * 6
    assert [address_kind(a) for a in ("93.184.216.34", "2606:4700::1111")] == ["public"] * 2


# -- extraction -----------------------------------------------------------------------


def test_extraction_keeps_the_articles_lead_without_chrome() -> None:
    body = [*CPC_BODY, "A third paragraph on the background of the consortium, long "
                       "enough to count as a paragraph of the article.",
            "A fourth paragraph that the lead does not keep, about other things."]
    text = extract_text(chrome_page("Terminal update", body).encode(), headers={})
    assert "single point moorings" in text and "third paragraph" in text
    assert "fourth paragraph" not in text
    for chrome in ("cookies", "Most read", "BTC", "Subscribe", "©", "CPC of China"):
        assert chrome not in text, chrome


def test_lead_counts_paragraphs_and_cuts_at_a_word() -> None:
    assert lead("Dateline\n" + "\n".join(f"Paragraph {i} " + "x" * 50 for i in range(5))
                ).count("\n") == 3
    cut = lead("word " * 1000, limit=100)
    assert len(cut) <= 100 and cut.endswith("word")


def test_pages_are_decoded_by_header_meta_or_guess() -> None:
    text = "Каспийский трубопроводный консорциум приостановил отгрузку нефти"
    cp = f"<html><body><p>{text}</p></body></html>".encode("cp1251")
    assert text in decode_page(cp, {"content-type": "text/html; charset=utf-8"})  # wrong
    assert text in decode_page(cp, {"content-type": "text/html"})  # missing
    assert text in decode_page(cp, {"content-type": "text/html; charset=windows-1251"})
    meta = b'<html><head><meta charset="windows-1251"></head>' + cp
    assert text in decode_page(meta, {})
    assert decode_page(b"\xff\xfe\x00garbage", {}) is not None  # never raises
    latin = "<p>Müller straße café déjà vu Zürich</p>"
    assert decode_page(latin.encode("cp1252"), {"content-type": "text/html; charset=latin-1"}
                       ) == latin


def test_a_content_sentence_is_what_is_kept_as_evidence() -> None:
    text = "First. The CPC terminal stopped loadings today. Then more text follows here."
    i = text.index("CPC")
    start, end = sentence_at(text, i, i + 3)
    assert text[start:end] == "The CPC terminal stopped loadings today."


# -- the store, on SQLite and PostgreSQL ------------------------------------------


def test_content_round_trips_through_the_store_and_goes_with_retention(store: Store) -> None:
    url = "https://outlet.example/rss"
    store.sync_feeds([(url, None)])
    now = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)
    item = Item(feed_url=url, guid="g1", title="Terminal update", summary="", link=None,
                published=now, lang="en", fingerprint="f1",
                content="The Caspian Pipeline Consortium halted loadings.")
    plain = Item(feed_url=url, guid="g2", title="Other", summary="", link=None,
                 published=now, lang="en", fingerprint="f2")
    ev = Evidence("content", "Caspian Pipeline Consortium", "Caspian Pipeline Consortium",
                  4, 31, 100.0, context=item.content, context_start=0)
    state = FeedState(url=url, last_polled=now, article_failures=3,
                      article_error="https://outlet.example/x: timeout")
    store.commit_poll(state, [NewItem(item, (Match("cpc-disruption", 100.0, (ev,)),)),
                              NewItem(plain)], {"cpc-disruption": ("v1", Severity.HIGH)}, now)
    rows = {r["guid"]: r["content"] for r in store.iter_items()}
    assert rows == {"g1": item.content, "g2": ""}
    (hit,) = store.list_hits()
    assert hit.evidence == (ev,)
    st = store.feed_states([url])[url]
    assert (st.article_failures, st.article_error) == (3, "https://outlet.example/x: timeout")
    assert store.purge_items(now + timedelta(days=1)) == 2
    assert list(store.iter_items()) == []


@pytest.mark.parametrize("evidence_field", ["summary", "content"])
def test_a_digest_shows_the_sentence_of_content_evidence(evidence_field: str) -> None:
    from monitor.digest import build_digest
    from monitor.models import StoredHit

    content = ("Background paragraph one. " * 20 + "The Caspian Pipeline Consortium halted "
               "loadings. " + "Tail sentence. " * 20)
    i = content.index("Caspian")
    start, end = sentence_at(content, i, i + 27)
    ev = Evidence(evidence_field, "Caspian Pipeline Consortium", "x", i, i + 27, 100.0,
                  context=content[start:end] if evidence_field == "content" else None,
                  context_start=start)
    now = datetime(2026, 12, 3, tzinfo=UTC)
    summary = content if evidence_field == "summary" else "Short summary."
    hit = StoredHit(id=1, rule_id="r", rule_version="v", severity=Severity.HIGH, score=100.0,
                    evidence=(ev,), matched_at=now, item_id=1, guid="g", title="Update",
                    summary=summary, link=None, published=now, lang="en", feed_url="u",
                    feed_name="n")
    digest = build_digest("energy", [hit], {"r": "Rule"}, now)
    spans = digest.sections[0].stories[0].snippet
    shown = "".join(s.text for s in spans)
    marked = [s.text for s in spans if s.mark]
    assert marked == ["Caspian Pipeline Consortium"]
    assert len(shown) < 300
    if evidence_field == "content":
        assert shown == "The Caspian Pipeline Consortium halted loadings."


def test_full_text_topic_fetches_only_headlines_naming_a_topic_without_a_hit(
        feed_server: FeedServer, tmp_path: Path) -> None:
    r = feed_server.routes
    r["/robots.txt"] = Status(404)
    r["/named"] = _page("Caspian Pipeline Consortium gives an update", CPC_BODY)
    r["/hit"] = _page("CPC halts loadings at Novorossiysk after storm", CPC_BODY)
    r["/other"] = _page("Terminal operator gives an update", CPC_BODY)
    entries = [("named", "Caspian Pipeline Consortium gives an update", feed_server.url("/named")),
               ("hit", "CPC halts loadings at Novorossiysk after storm", feed_server.url("/hit")),
               ("other", "Terminal operator gives an update", feed_server.url("/other"))]
    r["/feed.xml"] = Feed(headline_feed(entries))
    config = _config(tmp_path, feed_server)
    config.write_text(config.read_text().replace("full_text = true", 'full_text = "topic"'))
    settings = load_settings(config)
    store = Store.open(settings.storage_url)
    try:
        Poller(settings, store, lambda: load_rules(shipped_rules_dir())).poll()
        # named: the topic without an event in the headline, the page says it; hit:
        # the headline alone hits; other: no topic named, its page is not read.
        assert _hits(store) == {"named": ["cpc-disruption"], "hit": ["cpc-disruption"]}
        assert [feed_server.count(p) for p in ("/named", "/hit", "/other")] == [1, 0, 0]
    finally:
        store.close()


def test_hostile_pages_fail_within_their_bounds(feed_server: FeedServer) -> None:
    r = feed_server.routes
    r["/robots.txt"] = Status(404)
    r["/huge"] = Huge(8 * 1024 * 1024, content_type="text/html")
    r["/huge-declared"] = Huge(8 * 1024 * 1024, content_length=True, content_type="text/html")
    r["/bomb"] = GzipBomb(256 << 20, content_type="text/html")
    r["/slow"] = Drip(interval=0.2, content_type="text/html")
    r["/pdf"] = Feed(b"%PDF-1.4 ...", content_type="application/pdf")
    r["/js"] = Feed(js_only_page("x").encode(), content_type=HTML)
    paths = ["/huge", "/huge-declared", "/bomb", "/slow", "/pdf", "/js"]
    results = _pages([feed_server.url(p) for p in paths], feed_server.url("/feed.xml"),
                     PollConfig(timeout=1.0))
    kinds = [res.error_kind for res in results]  # type: ignore[attr-defined]
    assert kinds == ["too_large", "too_large", "too_large", "timeout", "not_html", None]
    # The bomb was not read to its end: the cap is on the decoded bytes.
    (bomb,) = feed_server.requests("/bomb")
    assert bomb.sent < 2 * 1024 * 1024
    assert extract_text(results[-1].body, headers={}) == ""  # type: ignore[attr-defined]


def test_pages_held_at_once_are_bounded(feed_server: FeedServer) -> None:
    from monitor.fetch import PAGES_HELD

    feed_server.routes["/robots.txt"] = Status(404)
    for i in range(3 * PAGES_HELD):
        feed_server.routes[f"/p{i}"] = Feed(b"<html><body><p>x</p></body></html>",
                                            content_type=HTML, delay=0.05)
    results = _pages([feed_server.url(f"/p{i}") for i in range(3 * PAGES_HELD)],
                     feed_server.url("/feed.xml"),
                     PollConfig(timeout=5.0, concurrency=64, per_host=64))
    assert all(res.ok for res in results)  # type: ignore[attr-defined]
    assert 1 < feed_server.peak_in_flight <= PAGES_HELD
