"""A Telegram public channel's web preview as a source: posts become items.

The page served on loopback carries t.me/s/ markup: a news post with an emoji
opening it and a line break, a photo without caption, a forwarded post, a
service message (a pinned message).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from feedserver import Feed, FeedServer

from monitor.parse import parse_feed
from monitor.parse.telegram import parse_telegram

_POST = """
<div class="tgme_widget_message_wrap js-widget_message_wrap">
 <div class="tgme_widget_message text_not_supported_wrap js-widget_message{extra}"
      data-post="{post}" data-view="x">
  <div class="tgme_widget_message_bubble">
   {forwarded}
   {body}
   <div class="tgme_widget_message_footer compact js-message_footer">
    <div class="tgme_widget_message_info short js-message_info">
     <span class="tgme_widget_message_views">1.2K</span>
     <span class="tgme_widget_message_meta"><a class="tgme_widget_message_date"
       href="https://t.me/{post}"><time datetime="{when}" class="time">08:12</time></a></span>
    </div>
   </div>
  </div>
 </div>
</div>"""


def post(
    post: str,
    text: str | None,
    *,
    when: str = "2022-03-23T08:12:00+00:00",
    forwarded: str | None = None,
    service: bool = False,
    photo: bool = False,
) -> str:
    body = ""
    if photo:
        body += (
            '<a class="tgme_widget_message_photo_wrap" href="https://t.me/x" '
            "style=\"background-image:url('https://cdn.example/p.jpg')\"></a>"
        )
    if text is not None:
        body += f'<div class="tgme_widget_message_text js-message_text" dir="auto">{text}</div>'
    fwd = (
        (
            f'<div class="tgme_widget_message_forwarded_from accent_color">Forwarded from '
            f'<a class="tgme_widget_message_forwarded_from_name" href="https://t.me/orig">'
            f"<span>{forwarded}</span></a></div>"
        )
        if forwarded
        else ""
    )
    return _POST.format(
        post=post, body=body, forwarded=fwd, when=when, extra=" service_message" if service else ""
    )


def page(*posts: str) -> bytes:
    return (
        "<!DOCTYPE html><html><head><title>Нефтегаз KZ – Telegram</title></head><body>"
        '<div class="tgme_channel_info"><div class="tgme_channel_info_header_title">'
        'Нефтегаз KZ</div></div><section class="tgme_channel_history js-message_history">'
        + "".join(posts)
        + "</section></body></html>"
    ).encode()


NEWS = post(
    "neftegaz_kz/3441",
    "⚡️ <b>КТК сократил отгрузки</b> после шторма<br/><br/>Шторм повредил два "
    "из трёх выносных причальных устройств &amp; терминал.<br/>"
    '<a href="https://outlet.example/ktk">Подробнее</a>',
)
PHOTO = post("neftegaz_kz/3442", None, photo=True)
FORWARDED = post(
    "neftegaz_kz/3443", "Казахстан нарастил экспорт нефти в обход России", forwarded="Kursiv Media"
)
SERVICE = post("neftegaz_kz/3444", "Channel pinned a message", service=True)


@pytest.fixture(autouse=True)
def _no_pause_between_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    """A channel's first poll pages back a second apart: not in these tests."""
    from monitor import pipeline

    monkeypatch.setattr(pipeline, "TELEGRAM_PAGE_PAUSE", 0.0)


def test_posts_become_items_and_the_rest_does_not() -> None:
    parsed = parse_feed(page(NEWS, PHOTO, FORWARDED, SERVICE), url="https://t.me/s/neftegaz_kz")
    assert parsed.is_feed and parsed.title == "Нефтегаз KZ – Telegram"
    assert [i.link for i in parsed.items] == [
        "https://t.me/neftegaz_kz/3441",
        "https://t.me/neftegaz_kz/3443",
    ]
    news, fwd = parsed.items
    assert news.guid == news.link
    assert news.title == "КТК сократил отгрузки после шторма"  # no emoji, no markup
    assert news.summary == (
        "⚡️ КТК сократил отгрузки после шторма\n\nШторм повредил два "
        "из трёх выносных причальных устройств & терминал.\nПодробнее"
    )
    assert news.published is not None and news.published.isoformat() == "2022-03-23T08:12:00+00:00"
    assert news.outlet is None
    assert fwd.outlet == "Kursiv Media"  # a forwarded post keeps its origin
    assert fwd.title == fwd.summary == "Казахстан нарастил экспорт нефти в обход России"
    # A channel declares no language: each post's is guessed from its text.
    assert [i.lang for i in parsed.items] == ["ru", "ru"]


def test_a_changed_layout_is_a_clear_error_not_a_crash() -> None:
    html = b"<!doctype html><html><body><div class='message'>hello</div></body></html>"
    parsed = parse_feed(html, url="https://t.me/s/neftegaz_kz")
    assert not parsed.is_feed and parsed.items == ()
    assert parsed.problem is not None and "layout changed" in parsed.problem
    # Markup cut off in the middle of a post keeps the posts read so far.
    whole = page(NEWS, FORWARDED)
    cut = whole[: whole.index(b"neftegaz_kz/3443")]
    assert [i.link for i in parse_telegram(cut, "https://t.me/s/x").items] == [
        "https://t.me/neftegaz_kz/3441"
    ]


def test_an_rss_feed_quoting_the_markup_is_still_a_feed() -> None:
    rss = (
        b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title><item>'
        b"<title>A</title><link>https://example.org/a</link><description>"
        b"&lt;div class='tgme_widget_message'&gt;x&lt;/div&gt;</description></item>"
        b"</channel></rss>"
    )
    parsed = parse_feed(rss, url="https://rsshub.example/telegram/x")
    assert [i.title for i in parsed.items] == ["A"]


def test_a_t_me_url_is_a_telegram_channel(tmp_path: Path) -> None:
    from monitor.config import load_settings

    config = tmp_path / "monitor.toml"
    config.write_text(
        '[[feeds]]\nurl = "https://t.me/kazinform"\n'
        '[[feeds]]\nurl = "https://t.me/s/tengrinews"\n'
        '[[feeds]]\nurl = "http://127.0.0.1:9/s/chan"\nkind = "telegram"\n'
        '[[feeds]]\nurl = "https://example.org/rss"\n',
        encoding="utf-8",
    )
    feeds = load_settings(config).feeds
    assert [(f.url, f.kind) for f in feeds] == [
        ("https://t.me/s/kazinform", "telegram"),
        ("https://t.me/s/tengrinews", "telegram"),
        ("http://127.0.0.1:9/s/chan", "telegram"),
        ("https://example.org/rss", "feed"),
    ]


def test_polling_a_channel_stores_each_post_once(
    feed_server: FeedServer, tmp_path: Path, store_url: str
) -> None:
    from monitor.config import load_settings
    from monitor.pipeline import Poller
    from monitor.rules import load_rules
    from monitor.store import Store

    feed_server.routes["/s/neftegaz_kz"] = Feed(
        page(NEWS, PHOTO, FORWARDED, SERVICE),
        content_type="text/html; charset=utf-8",
        conditional=False,
    )
    config = tmp_path / "monitor.toml"
    config.write_text(
        f'[storage]\nurl = "{store_url}"\n[[feeds]]\n'
        f'url = "{feed_server.url("/s/neftegaz_kz")}"\nkind = "telegram"\n',
        encoding="utf-8",
    )
    settings = load_settings(config)
    store = Store.open(store_url)
    try:
        poller = Poller(settings, store, lambda: load_rules(settings.rules_dir))
        first = poller.poll()
        assert (first.failed, first.new_items) == (0, 2)
        assert first.hits_by_rule.get("cpc-disruption") == 1  # "КТК ... шторм" is the topic
        assert poller.poll().new_items == 0  # a repeat poll stores nothing
        new = post("neftegaz_kz/3445", "Россия ограничила транзит казахстанского зерна")
        feed_server.routes["/s/neftegaz_kz"] = Feed(
            page(NEWS, PHOTO, FORWARDED, SERVICE, new),
            content_type="text/html; charset=utf-8",
            conditional=False,
        )
        assert poller.poll().new_items == 1  # a new post is one item
        links = sorted(r["link"] for r in store.iter_items())
        assert links == [
            "https://t.me/neftegaz_kz/3441",
            "https://t.me/neftegaz_kz/3443",
            "https://t.me/neftegaz_kz/3445",
        ]
        # A page that lost its markup fails the feed, and loses nothing stored.
        feed_server.routes["/s/neftegaz_kz"] = Feed(
            b"<!doctype html><html></html>", content_type="text/html", conditional=False
        )
        broken = poller.poll()
        assert broken.failed == 1 and broken.outcomes[0].error  # (t.me URLs: "layout changed")
        assert store.totals()["items"] == 3
    finally:
        store.close()


def test_kind_telegram_reads_a_mirror_as_a_channel_and_says_when_its_layout_changed(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    """The configured kind reaches the parser: a loopback mirror (no t.me URL)
    with ``kind = "telegram"`` is a channel; its page without the preview
    markup fails as a Telegram layout change, not as "not a feed"."""
    from monitor.config import load_settings
    from monitor.pipeline import Poller
    from monitor.rules import load_rules
    from monitor.store import Store

    feed_server.routes["/mirror/neftegaz_kz"] = Feed(page(NEWS, FORWARDED),
                                                     content_type="text/html; charset=utf-8")
    config = tmp_path / "monitor.toml"
    config.write_text(
        f'[storage]\nurl = "sqlite:///{tmp_path / "m.db"}"\n'
        f'[[feeds]]\nurl = "{feed_server.url("/mirror/neftegaz_kz")}"\nkind = "telegram"\n',
        encoding="utf-8")
    settings = load_settings(config)
    assert settings.feeds[0].kind == "telegram"
    store = Store.open(settings.storage_url)
    try:
        poller = Poller(settings, store, lambda: load_rules(settings.rules_dir))
        assert poller.poll().new_items == 2
        links = sorted(r["link"] for r in store.iter_items())
        assert links == ["https://t.me/neftegaz_kz/3441", "https://t.me/neftegaz_kz/3443"]
        feed_server.routes["/mirror/neftegaz_kz"] = Feed(
            b"<!DOCTYPE html><html><body><div class='new-layout'>posts</div></body></html>",
            content_type="text/html")
        (broken,) = poller.poll().outcomes
        assert broken.error is not None and "Telegram" in broken.error
    finally:
        store.close()


def test_the_configured_kind_reaches_the_parser() -> None:
    from monitor.parse import parse_feed

    body = b"<!DOCTYPE html><html><body><p>a page</p></body></html>"
    as_feed = parse_feed(body, url="http://mirror.example/chan")
    as_channel = parse_feed(body, url="http://mirror.example/chan", kind="telegram")
    assert not as_feed.is_feed and not as_channel.is_feed
    assert as_channel.problem is not None and "Telegram" in as_channel.problem
    assert as_feed.problem is not None and "Telegram" not in as_feed.problem


@pytest.mark.slow
def test_kind_reaches_the_parser_in_polls_fetch_child(feed_server: FeedServer,
                                                      tmp_path: Path) -> None:
    """``news-monitor poll`` parses in its forked fetch child: the kind goes there
    with each request."""
    import sqlite3
    import subprocess
    import sys

    from procenv import cli_env

    feed_server.routes["/mirror/x"] = Feed(
        b"<!DOCTYPE html><html><body><div class='new-layout'>posts</div></body></html>",
        content_type="text/html")
    config = tmp_path / "monitor.toml"
    config.write_text(f'[storage]\nurl = "sqlite:///{tmp_path / "m.db"}"\n'
                      f'[[feeds]]\nurl = "{feed_server.url("/mirror/x")}"\nkind = "telegram"\n',
                      encoding="utf-8")
    run = subprocess.run([sys.executable, "-m", "monitor", "--config", str(config), "poll",
                          "-q"], env=cli_env(), capture_output=True, text=True, timeout=120)
    assert run.returncode == 1, run.stderr  # every feed failed
    with sqlite3.connect(tmp_path / "m.db") as conn:
        (error,) = conn.execute("SELECT error FROM feeds").fetchone()
    assert "Telegram" in error


def test_a_channels_first_poll_pages_back_up_to_a_bound(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    """The first poll reads older posts through ``?before=ID`` (as the preview's
    "load more" does), at most TELEGRAM_BACKFILL_PAGES pages; later polls read
    the newest page only."""
    from feedserver import Route

    from monitor import pipeline
    from monitor.config import load_settings
    from monitor.rules import load_rules
    from monitor.store import Store

    def posts(first: int, last: int) -> bytes:
        return page(*(post(f"chan_x/{n}", f"Post number {n} about the weather")
                      for n in range(first, last + 1)))

    class Paged(Route):
        def serve(self, h: object) -> None:
            query = h.path.partition("?")[2]  # type: ignore[attr-defined]
            before = int(query.partition("before=")[2] or 1000)
            body = posts(max(1, before - 3), before - 1) if before > 1 else page()
            h.respond(200, body, {"Content-Type": "text/html"})  # type: ignore[attr-defined]

    feed_server.routes["/chan"] = Paged()
    config = tmp_path / "monitor.toml"
    config.write_text(f'[storage]\nurl = "sqlite:///{tmp_path / "m.db"}"\n'
                      f'[[feeds]]\nurl = "{feed_server.url("/chan")}"\nkind = "telegram"\n',
                      encoding="utf-8")
    settings = load_settings(config)
    store = Store.open(settings.storage_url)
    try:
        poller = pipeline.Poller(settings, store, lambda: load_rules(settings.rules_dir))
        # 997-999, then 994-996, 991-993, 988-990: the newest page and three older
        assert poller.poll().new_items == 3 * (1 + pipeline.TELEGRAM_BACKFILL_PAGES)
        assert feed_server.count("/chan") == 1 + pipeline.TELEGRAM_BACKFILL_PAGES
        links = {r["link"] for r in store.iter_items()}
        assert "https://t.me/chan_x/988" in links and "https://t.me/chan_x/987" not in links
        assert {r["feed"] for r in store.iter_items()} == {settings.feeds[0].url}
        feed_server.clear()
        assert poller.poll().new_items == 0  # not the first poll: no paging back
        assert feed_server.count("/chan") == 1
    finally:
        store.close()


def test_a_posts_article_link_goes_through_full_text(feed_server: FeedServer,
                                                     tmp_path: Path) -> None:
    """With full_text, a post's first link out is its article: fetched, its lead
    matched as content; a post without one fetches nothing (not its t.me page)."""
    from newssite import chrome_page

    from monitor.config import load_settings
    from monitor.pipeline import Poller
    from monitor.rules import load_rules
    from monitor.store import Store

    article = feed_server.url("/news/ktk")
    feed_server.routes["/robots.txt"] = Feed(b"", content_type="text/plain")
    feed_server.routes["/news/ktk"] = Feed(chrome_page("Отгрузки", [
        "Каспийский трубопроводный консорциум приостановил отгрузку нефти на морском "
        "терминале под Новороссийском из-за шторма, сообщили в консорциуме."]).encode(),
        content_type="text/html; charset=utf-8")
    feed_server.routes["/mirror/chan"] = Feed(page(
        post("chan_x/20", f'Новости терминала.<br/><a href="{article}">Подробнее</a>'),
        post("chan_x/21", "Погода в Алматы: без осадков")),
        content_type="text/html; charset=utf-8")
    config = tmp_path / "monitor.toml"
    config.write_text(f'[storage]\nurl = "sqlite:///{tmp_path / "m.db"}"\n'
                      f'[[feeds]]\nurl = "{feed_server.url("/mirror/chan")}"\n'
                      'kind = "telegram"\nfull_text = true\n', encoding="utf-8")
    settings = load_settings(config)
    store = Store.open(settings.storage_url)
    try:
        report = Poller(settings, store, lambda: load_rules(settings.rules_dir)).poll()
        assert report.new_items == 2 and report.hits_by_rule == {"cpc-disruption": 1}
        (hit,) = store.list_hits()
        assert hit.link == "https://t.me/chan_x/20"  # the item stays the post
        assert {e.field for e in hit.evidence} == {"content"}
        assert feed_server.count("/news/ktk") == 1
        assert store.feed_states()[settings.feeds[0].url].article_failures == 0
    finally:
        store.close()
