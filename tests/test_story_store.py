"""Stories in the store and in delivery: each story once, across feeds, languages,
restarts and instances (a real store: SQLite, and PostgreSQL where available; a real
SMTP server on loopback).

Done means: reports of one event join one story when they are stored, whichever
feed or language they come in; a story is alerted once per desk and channel, its
later reports going to the digest as its new coverage; the story survives a
restart; two instances storing reports of one event at once make one story.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from desks import desk_config
from servers import Mailbox, parts
from test_deliver import RULES, Clock, deliverer, settings

from monitor import stories
from monitor.cli import main
from monitor.models import Evidence, FeedState, Item, Match, NewItem, Report, Severity
from monitor.store import Store

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
WINDOW = timedelta(hours=stories.PLACE["window_hours"])

STORM_EN = ("CPC halts tanker loadings at Novorossiysk after storm damages two moorings",
            "The Caspian Pipeline Consortium suspended loadings at its Black Sea terminal "
            "after a storm damaged two of its three single point moorings.")
STORM_RU = ("КТК приостановил отгрузку нефти в Новороссийске после шторма",
            "Каспийский трубопроводный консорциум остановил погрузку танкеров: шторм "
            "повредил два из трех выносных причальных устройств.")
GRAIN = ("Kazakhstan bans wheat imports by road for six months",
         "The agriculture ministry banned imports of wheat by lorry from Russia.")

_n = iter(range(1, 1_000_000))


def report(store: Store, at: datetime, text: tuple[str, str], *, feed: str = "reuters",
           rule: str = "cpc-disruption", link: str | None = None, lang: str = "en") -> int:
    """Store one report from ``feed`` as a poll does (its story placed); its hit id."""
    url = f"https://{feed}.example/rss"
    store.sync_feeds([(url, feed.capitalize())], now=at)
    n = next(_n)
    item = Item(feed_url=url, guid=f"{feed}-{n}", title=text[0], summary=text[1],
                link=link or f"https://{feed}.example/story/{n}", published=at, lang=lang,
                fingerprint=f"fp-{feed}-{n}")
    new = NewItem(item, (Match(rule, 90.0, (Evidence("summary", "x", "x", 0, 0, 100.0),)),))
    store.commit_poll(FeedState(url), [new], RULES, at, place=stories.place,
                      story_window=WINDOW)
    return next(h.id for h in store.list_hits() if h.guid == item.guid)


def story_of(store: Store, hit_id: int) -> int | None:
    return next(h.story for h in store.list_hits() if h.id == hit_id)


def test_one_event_from_two_feeds_and_two_languages_is_one_story(store: Store) -> None:
    first = report(store, T0, STORM_EN)
    same_link = report(store, T0 + timedelta(minutes=3), ("Other words", "Nothing alike."),
                       feed="yahoo", link="https://reuters.example/story/"
                       + str(next(h.guid for h in store.list_hits()).split("-")[1]))
    russian = report(store, T0 + timedelta(hours=1), STORM_RU, feed="interfax")
    other = report(store, T0 + timedelta(hours=2), GRAIN, feed="kursiv", rule="eaeu-grain-ban")
    story = story_of(store, first)
    assert story is not None
    assert story_of(store, same_link) == story_of(store, russian) == story
    assert story_of(store, other) not in (None, story)


def test_the_same_headline_after_the_window_is_a_new_story(store: Store) -> None:
    first = report(store, T0, STORM_EN)
    later = report(store, T0 + WINDOW + timedelta(hours=12), STORM_EN, feed="interfax")
    assert story_of(store, later) != story_of(store, first)


def test_a_story_survives_a_restart(store_url: str) -> None:
    s = Store.open(store_url)
    first = report(s, T0, STORM_EN)
    s.close()
    s = Store.open(store_url)
    try:
        again = report(s, T0 + timedelta(hours=1), STORM_RU, feed="interfax")
        assert story_of(s, again) == story_of(s, first)
    finally:
        s.close()


def _poll(store: Store, feed: str, at: datetime, *texts: tuple[str, str]
          ) -> tuple[FeedState, list[NewItem]]:
    """One feed's poll of ``texts`` as commit_polls takes it (the feed synced)."""
    url = f"https://{feed}.example/rss"
    store.sync_feeds([(url, feed.capitalize())], now=at)
    new = []
    for text in texts:
        n = next(_n)
        item = Item(feed_url=url, guid=f"{feed}-{n}", title=text[0], summary=text[1],
                    link=f"https://{feed}.example/story/{n}", published=at, lang="en",
                    fingerprint=f"fp-{feed}-{n}")
        new.append(NewItem(item, (Match("cpc-disruption", 90.0,
                                        (Evidence("summary", "x", "x", 0, 0, 100.0),)),)))
    return FeedState(url, etag=f"etag-{feed}"), new


def test_feeds_stored_in_one_batch_share_their_stories(store: Store) -> None:
    """A batch of polls (a cold poll's queued feeds) is placed as feed by feed:
    a later feed's report of the first feed's event joins its story."""
    batch = [_poll(store, "reuters", T0, STORM_EN, GRAIN),
             _poll(store, "interfax", T0 + timedelta(minutes=5), STORM_RU)]
    got = store.commit_polls(batch, RULES, T0, place=stories.place, story_window=WINDOW)
    assert [items for items, _ in got] == [2, 1]
    by_title = {h.title: h.story for h in store.list_hits()}
    assert by_title[STORM_RU[0]] == by_title[STORM_EN[0]] is not None
    assert by_title[GRAIN[0]] not in (None, by_title[STORM_EN[0]])


def test_a_batch_is_stored_whole_or_not_at_all(store: Store) -> None:
    """A batch that fails half-way stores none of its feeds, nor their validators:
    the next poll fetches them all again."""
    good = _poll(store, "reuters", T0, STORM_EN)
    stray = (FeedState("https://never-synced.example/rss"), good[1][:0])
    try:
        store.commit_polls([good, stray], RULES, T0, place=stories.place,
                           story_window=WINDOW)
    except Exception as e:
        assert "not in the store" in str(e)
    else:
        raise AssertionError("a feed that is not in the store must fail the batch")
    assert store.list_hits() == []
    assert store.feed_states([good[0].url])[good[0].url].etag is None


def test_two_instances_storing_one_event_at_once_make_one_story(store: Store,
                                                                 store_url: str) -> None:
    """Each round, two stores (two engines, as two daemons have) commit a report of
    the same new event at the same moment: they must agree on its story."""
    other = Store.open(store_url)
    try:
        for round_ in range(8):
            at = T0 + round_ * (WINDOW + timedelta(days=1))  # each round a new event
            barrier = threading.Barrier(2)
            ids: dict[str, int] = {}

            def store_one(s: Store, feed: str, text: tuple[str, str],
                          at: datetime = at, barrier: threading.Barrier = barrier,
                          ids: dict[str, int] = ids) -> None:
                s.sync_feeds([(f"https://{feed}.example/rss", feed)], now=at)
                barrier.wait()
                ids[feed] = report(s, at, text, feed=feed)

            threads = [threading.Thread(target=store_one, args=(store, "reuters", STORM_EN)),
                       threading.Thread(target=store_one, args=(other, "interfax", STORM_RU))]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=60)
            assert story_of(store, ids["reuters"]) == story_of(store, ids["interfax"])
    finally:
        other.close()


def test_a_later_report_of_an_alerted_story_waits_for_the_digest(
        store: Store, tmp_path: Path) -> None:
    with Mailbox() as mailbox:
        desk = desk_config("energy", email=("energy@example.org",),
                           alert_min_severity=Severity.HIGH)
        clock = Clock(T0 + timedelta(seconds=30))
        d = deliverer(store, settings(desk, smtp_port=mailbox.port), clock)
        report(store, T0, STORM_EN)
        assert d.send_alerts().sent == 1
        clock.advance(minutes=10)
        report(store, T0 + timedelta(minutes=9), STORM_RU, feed="interfax")
        report(store, T0 + timedelta(minutes=9), STORM_EN, feed="kursiv")
        assert d.send_alerts().summary() == "nothing to send"
        assert len(mailbox.received) == 1
        clock.advance(hours=1)
        assert d.send_digests().hits == 2
        digest = mailbox.received[1].message
        assert digest["Subject"].strip() == \
            "[news-monitor] energy: 1 new story (CPC disruption 1)"
        text = parts(digest)["text/plain"]
        # One entry: the lead and the other outlet's report linked under it, its
        # language marked.
        assert text.count("\n* ") == 1 and "+1 more:" in text
        # A new event later is alerted again.
        clock.advance(days=5)
        report(store, clock.now - timedelta(minutes=1), GRAIN, rule="cpc-disruption")
        assert d.send_alerts().sent == 1


def test_an_item_hitting_two_rules_is_listed_once_under_the_gravest(store: Store) -> None:
    from monitor.digest import build_digest

    url = "https://reuters.example/rss"
    store.sync_feeds([(url, "Reuters")], now=T0)
    item = Item(feed_url=url, guid="g2", title=STORM_EN[0], summary=STORM_EN[1],
                link="https://reuters.example/2", published=T0, lang="en", fingerprint="f2")
    ev = (Evidence("summary", "x", "x", 0, 0, 100.0),)
    store.commit_poll(FeedState(url), [NewItem(item, (Match("btc-diversion", 80.0, ev),
                                                      Match("cpc-disruption", 70.0, ev)))],
                      RULES, T0, place=stories.place, story_window=WINDOW)
    d = build_digest("energy", store.list_hits(), {"cpc-disruption": "CPC disruption",
                                                   "btc-diversion": "BTC diversion"}, T0)
    [section] = d.sections
    assert section.rule_id == "cpc-disruption"  # high beats medium, whatever the score
    [entry] = section.stories
    assert entry.also == ("BTC diversion",) and len(entry.hit_ids) == 2
    assert d.subject == "[news-monitor] energy: 1 new story (CPC disruption 1)"


def test_hits_jsonl_names_each_hit_and_its_story(tmp_path: Path) -> None:
    db = tmp_path / "monitor.db"
    config = tmp_path / "monitor.toml"
    config.write_text(f'[storage]\nurl = "sqlite:///{db}"\n', encoding="utf-8")
    s = Store.open(f"sqlite:///{db}")
    a = report(s, T0, STORM_EN)
    b = report(s, T0 + timedelta(hours=1), STORM_RU, feed="interfax")
    c = report(s, T0 + timedelta(hours=1), GRAIN, feed="kursiv", rule="eaeu-grain-ban")
    s.close()
    out = tmp_path / "out.jsonl"
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(["--config", str(config), "hits", "--format", "jsonl"]) == 0
    out.write_text(buf.getvalue(), encoding="utf-8")
    rows = {r["id"]: r for r in map(json.loads, buf.getvalue().splitlines())}
    assert set(rows) == {a, b, c}
    assert rows[a]["story"] == rows[b]["story"] != rows[c]["story"]
    assert isinstance(rows[a]["story"], str)


def test_placement_is_handed_the_rules_each_stored_report_hit(store_url: str) -> None:
    """The window's stored reports carry the rules they hit (from the hits table), as
    new ones do, read again after a restart: placement can weigh them alike."""
    seen: list[tuple[list[Report], list[Report]]] = []

    def recording(new: Sequence[Report], placed: Sequence[Report]) -> list[int]:
        seen.append((list(new), list(placed)))
        return stories.place(new, placed)

    s = Store.open(store_url)
    try:
        url = "https://reuters.example/rss"
        s.sync_feeds([(url, "Reuters")], now=T0)
        item = Item(feed_url=url, guid="two-rules", title=STORM_EN[0], summary=STORM_EN[1],
                    link="https://reuters.example/two", published=T0, lang="en",
                    fingerprint="f-two")
        ev = (Evidence("summary", "x", "x", 0, 0, 100.0),)
        s.commit_poll(FeedState(url), [NewItem(item, (Match("cpc-disruption", 70.0, ev),
                                                      Match("btc-diversion", 80.0, ev)))],
                      RULES, T0, place=recording, story_window=WINDOW)
        grain_at = T0 + timedelta(minutes=5)
        s.sync_feeds([("https://kursiv.example/rss", "Kursiv")], now=grain_at)
        grain = Item(feed_url="https://kursiv.example/rss", guid="grain", title=GRAIN[0],
                     summary=GRAIN[1], link="https://kursiv.example/g", published=grain_at,
                     lang="en", fingerprint="f-grain")
        s.commit_poll(FeedState("https://kursiv.example/rss"),
                      [NewItem(grain, (Match("eaeu-grain-ban", 60.0, ev),))],
                      RULES, grain_at, place=recording, story_window=WINDOW)
    finally:
        s.close()
    assert [r.rules for r in seen[0][0]] == [("cpc-disruption", "btc-diversion")]
    [(_, placed)] = seen[1:]
    assert [(sorted(r.rules), r.title) for r in placed] == \
        [(["btc-diversion", "cpc-disruption"], STORM_EN[0])]
    s = Store.open(store_url)  # a restart reads them from the store again
    try:
        report(s, T0 + timedelta(hours=1), STORM_RU, feed="interfax")
        seen.clear()
        url = "https://tass.example/rss"
        s.sync_feeds([(url, "Tass")], now=T0)
        later = Item(feed_url=url, guid="later", title=STORM_EN[0], summary=STORM_EN[1],
                     link="https://tass.example/1", published=T0 + timedelta(hours=2),
                     lang="en", fingerprint="f-later")
        s.commit_poll(FeedState(url), [NewItem(later, (Match("cpc-disruption", 70.0, ev),))],
                      RULES, T0, place=recording, story_window=WINDOW)
    finally:
        s.close()
    [(_, placed)] = seen
    assert {r.title: sorted(r.rules) for r in placed} == {
        STORM_EN[0]: ["btc-diversion", "cpc-disruption"], GRAIN[0]: ["eaeu-grain-ban"],
        STORM_RU[0]: ["cpc-disruption"]}


def test_reports_of_two_topics_alike_in_words_stay_two_stories(store: Store) -> None:
    """The stored report's rules reach placement: an hour after a sanctions report,
    one of a CPC outage told in the same words starts its own story; its pair, the
    same report hitting the sanctions rule too, joins (a story may span rules)."""
    sanctions = ("Kazakhstan oil exports hit by Russian sanctions", "")
    outage = ("Kazakhstan oil exports hit by CPC outage", "")
    first = report(store, T0, sanctions, rule="sanctioned-transit")
    apart = report(store, T0 + timedelta(hours=1), outage, feed="interfax")
    assert story_of(store, apart) != story_of(store, first)
    later = T0 + 2 * WINDOW  # a new event, far from the first
    again = report(store, later, sanctions, rule="sanctioned-transit")
    url = "https://tass.example/rss"
    store.sync_feeds([(url, "Tass")], now=later)
    item = Item(feed_url=url, guid="both", title=outage[0], summary="",
                link="https://tass.example/both", published=later + timedelta(hours=1),
                lang="en", fingerprint="f-both")
    ev = (Evidence("summary", "x", "x", 0, 0, 100.0),)
    store.commit_poll(FeedState(url), [NewItem(item, (Match("cpc-disruption", 80.0, ev),
                                                      Match("sanctioned-transit", 60.0, ev)))],
                      RULES, later, place=stories.place, story_window=WINDOW)
    both = next(h.id for h in store.list_hits() if h.guid == "both")
    assert story_of(store, both) == story_of(store, again)
