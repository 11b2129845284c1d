"""Delivery end to end: a real store (SQLite, and PostgreSQL where available), a real SMTP
server and a real HTTP endpoint on 127.0.0.1, and an injected clock.

Done means: each desk receives each of its hits once per channel, no hit reaches the
wrong desk, none is lost across failures, and a later hit goes out alone next time.
"""

from __future__ import annotations

import json
import threading
import time as clock_time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
from desks import desk_config
from servers import Hook, Mailbox, Reply, free_port, parts
from waiting import wait_until

from monitor.channels.email import SmtpConfig
from monitor.cli import main
from monitor.config_keys import Secret
from monitor.deliver import (
    LEASE,
    Deliverer,
    Senders,
    backoff,
    in_quiet_hours,
    quiet_hours_ended,
)
from monitor.errors import StorageError
from monitor.models import Evidence, FeedState, Item, Match, NewItem, Severity
from monitor.rules import shipped_rules_dir
from monitor.settings import DeskConfig, Settings
from monitor.status import delivery_status, pending_pairs
from monitor.store import Store

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)  # a Monday
RULES = {"cpc-disruption": ("v1", Severity.HIGH), "btc-diversion": ("v1", Severity.MEDIUM),
         "eaeu-grain-ban": ("v1", Severity.LOW), "sanctioned-transit": ("v1", Severity.CRITICAL)}
TITLES = {"cpc-disruption": "CPC disruption", "btc-diversion": "BTC diversion",
          "eaeu-grain-ban": "EAEU grain ban", "sanctioned-transit": "Sanctioned transit"}


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY",
                 "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> datetime:
        self.now += timedelta(**kw)
        return self.now


_n = iter(range(1, 1_000_000))


def add(store: Store, at: datetime, *stories: tuple[str, str], feed: str = "reuters",
        summary: str = "") -> dict[str, int]:
    """Store one item per (title, rule) from ``feed``, matched at ``at``; title -> hit id."""
    url = f"https://{feed}.example/rss"
    store.sync_feeds([(url, feed.capitalize())], now=at)
    new = []
    for title, rule in stories:
        n = next(_n)
        item = Item(feed_url=url, guid=f"{feed}-{n}", title=title, summary=summary,
                    link=f"https://{feed}.example/story/{n}", published=at, lang="en",
                    fingerprint=f"fp-{feed}-{n}")
        # Evidence on the summary only, so titles read whole in the messages.
        new.append(NewItem(item, (Match(rule, 90.0, (Evidence("summary", "x", "x", 0, 0,
                                                               100.0),)),)))
    store.commit_poll(FeedState(url), new, RULES, at)
    ids = {h.title: h.id for h in store.list_hits()}
    return {title: ids[title] for title, _ in stories}


def settings(*desks: DeskConfig, smtp_port: int | None = None) -> Settings:
    return Settings(source="<test>", storage_url="sqlite://", rules_dir=Path("."),
                    channel_tables={"smtp": SmtpConfig(
                        host="127.0.0.1", port=smtp_port or free_port(),
                        sender="News Monitor <monitor@example.org>", timeout=5.0)},
                    desks=desks)


def deliverer(store: Store, cfg: Settings, clock: Clock, owner: str = "test") -> Deliverer:
    store.register_desks((d.name for d in cfg.desks), T0 - timedelta(days=1))
    return Deliverer(cfg, store, TITLES, owner=owner, clock=clock,
                     options={"slack_pause": 0, "timeout": 5.0})


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    with Mailbox() as box:
        yield box


@pytest.fixture
def hook() -> Iterator[Hook]:
    with Hook() as h:
        yield h


def text_of(box: Mailbox, i: int = -1) -> str:
    return parts(box.received[i].message)["text/plain"]


def delivered(box: Mailbox, titles: dict[str, int]) -> list[str]:
    """Which of ``titles`` each message carries, message by message."""
    return [" | ".join(t for t in titles if t in parts(r.message)["text/plain"])
            for r in box.received]


# -- the pure helpers ------------------------------------------------------------------------------


def test_backoff_doubles_to_an_hour_and_obeys_retry_after() -> None:
    assert [backoff(n) for n in range(1, 9)] == [60, 120, 240, 480, 960, 1920, 3600, 3600]
    assert backoff(5, retry_after=7) == 7
    assert backoff(1, retry_after=10 * 86400) == 86400


def test_quiet_hours_wrap_midnight_in_the_desk_time_zone() -> None:
    quiet = (time(22, 0), time(7, 0))
    almaty = "Asia/Almaty"  # UTC+5
    assert in_quiet_hours(datetime(2026, 1, 5, 18, 0, tzinfo=UTC), quiet, almaty)  # 23:00
    assert in_quiet_hours(datetime(2026, 1, 5, 1, 59, tzinfo=UTC), quiet, almaty)  # 06:59
    assert not in_quiet_hours(datetime(2026, 1, 5, 2, 0, tzinfo=UTC), quiet, almaty)  # 07:00
    assert not in_quiet_hours(datetime(2026, 1, 5, 12, 0, tzinfo=UTC), quiet, almaty)
    assert in_quiet_hours(datetime(2026, 1, 5, 12, 30, tzinfo=UTC), (time(12), time(13)), "UTC")
    assert not in_quiet_hours(T0, None, "UTC")
    assert quiet_hours_ended(datetime(2026, 1, 5, 3, 0, tzinfo=UTC), quiet, almaty) == \
        datetime(2026, 1, 5, 2, 0, tzinfo=UTC)
    assert quiet_hours_ended(datetime(2026, 1, 5, 1, 0, tzinfo=UTC), quiet, almaty) == \
        datetime(2026, 1, 4, 2, 0, tzinfo=UTC)


# -- digests --------------------------------------------------------------------------------


def test_two_desks_with_disjoint_rules_receive_disjoint_hits(store: Store, mailbox: Mailbox,
                                                             hook: Hook) -> None:
    energy = desk_config("energy", rules=("cpc-disruption", "btc-diversion"),
                         email=("energy@example.org",))
    grain = desk_config("grain", rules=("eaeu-grain-ban",), email=("grain@example.org",),
                        webhook_url=hook.url("/grain"))
    cfg = settings(energy, grain, smtp_port=mailbox.port)
    clock = Clock(T0)
    d = deliverer(store, cfg, clock)
    ids = add(store, T0, ("Storm halts CPC loadings", "cpc-disruption"),
              ("Kazakh crude diverted to BTC", "btc-diversion"),
              ("Kazakhstan bans wheat imports", "eaeu-grain-ban"))
    ids |= add(store, T0, ("Kyrgyzstan caps grain exports", "eaeu-grain-ban"), feed="kursiv")
    report = d.send_digests()
    assert (report.sent, report.failed, report.hits) == (3, 0, 6)
    by_desk = {r.recipients[0]: delivered(mailbox, ids)[i]
               for i, r in enumerate(mailbox.received)}
    assert by_desk == {
        "energy@example.org": "Storm halts CPC loadings | Kazakh crude diverted to BTC",
        "grain@example.org": "Kazakhstan bans wheat imports | Kyrgyzstan caps grain exports"}
    [req] = hook.requests
    doc = req.json()
    assert doc["desk"] == "grain" and doc["kind"] == "digest"
    assert sorted(h["id"] for s in doc["sections"] for st in s["stories"] for h in st["hits"]) \
        == sorted([ids["Kazakhstan bans wheat imports"], ids["Kyrgyzstan caps grain exports"]])
    # Everything went: a second run sends nothing.
    assert d.send_digests().summary() == "nothing to send"
    assert len(mailbox.received) == 2 and len(hook.requests) == 1
    assert pending_pairs(cfg, store) == 0


def test_done_each_hit_once_per_desk_and_channel_across_failures(store: Store,
                                                                  hook: Hook) -> None:
    """The issue's acceptance: mail down then up, a webhook failing then recovering."""
    port = free_port()
    energy = desk_config("energy", rules=("cpc-disruption", "btc-diversion"),
                         email=("energy@example.org",), webhook_url=hook.url("/energy"))
    grain = desk_config("grain", rules=("eaeu-grain-ban",), email=("grain@example.org",),
                        webhook_url=hook.url("/grain"))
    clock = Clock(T0)
    d = deliverer(store, settings(energy, grain, smtp_port=port), clock)
    ids = add(store, T0, ("Storm halts CPC loadings", "cpc-disruption"),
              ("Kazakh crude diverted to BTC", "btc-diversion"),
              ("Kazakhstan bans wheat imports", "eaeu-grain-ban"),
              ("Sanctioned goods seized in transit", "sanctioned-transit"))  # no desk's
    hook.replies.extend([Reply(500, "down"), Reply(502, "down"), Reply(503, "down")])
    assert d.send_digests().failed == 4
    with Mailbox(port=port) as box:
        for _ in range(3):
            clock.advance(minutes=5)
            d.retry_due()
        later = add(store, clock.advance(minutes=5), ("Drone strike on CPC pump station",
                                                      "cpc-disruption"))
        d.send_digests()
        assert d.retry_due().summary() == d.send_digests().summary() == "nothing to send"
    got: dict[tuple[str, str], list[str]] = {}
    for r in box.received:
        text = parts(r.message)["text/plain"]
        got.setdefault((r.recipients[0].split("@")[0], "email"), []).append(
            " | ".join(t for t in ids | later if t in text))
    titles = {v: k for k, v in (ids | later).items()}
    for req in hook.requests[3:]:  # the three refused posts carried nothing
        doc = req.json()
        got.setdefault((doc["desk"], "webhook"), []).append(" | ".join(
            titles[h["id"]] for s in doc["sections"] for st in s["stories"] for h in st["hits"]))
    first_energy = "Storm halts CPC loadings | Kazakh crude diverted to BTC"
    assert {k: sorted(v) for k, v in got.items()} == {
        ("energy", "email"): sorted([first_energy, "Drone strike on CPC pump station"]),
        ("energy", "webhook"): sorted([first_energy, "Drone strike on CPC pump station"]),
        ("grain", "email"): ["Kazakhstan bans wheat imports"],
        ("grain", "webhook"): ["Kazakhstan bans wheat imports"]}


def test_mail_down_then_up_loses_nothing_and_sends_nothing_twice(store: Store) -> None:
    port = free_port()  # nothing listens yet
    cfg = settings(desk_config("energy", email=("energy@example.org",)), smtp_port=port)
    clock = Clock(T0)
    d = deliverer(store, cfg, clock)
    first = add(store, T0, ("Storm halts CPC loadings", "cpc-disruption"),
                ("Kazakh crude diverted to BTC", "btc-diversion"))
    report = d.send_digests()
    assert (report.sent, report.failed, report.permanent) == (0, 1, 0)
    assert report.errors == [f"energy/email: email: 127.0.0.1:{port}: connection refused"]
    assert pending_pairs(cfg, store) == 2
    status = delivery_status(cfg, store)
    assert [(r["attempts"], r["next_attempt"]) for r in status["retrying"]] == [
        (1, "2026-01-05T09:01:00Z")]
    # A digest run while the claim waits for its retry must not take the same hits again.
    assert d.send_digests().summary() == "nothing to send"
    clock.advance(seconds=30)
    assert d.retry_due().summary() == "nothing to send"  # not due yet
    clock.advance(seconds=31)
    assert d.retry_due().failed == 1  # still down: next in 2 minutes
    with Mailbox(port=port) as box:
        clock.advance(minutes=1)
        assert d.retry_due().summary() == "nothing to send"
        clock.advance(minutes=1, seconds=1)
        report = d.retry_due()
        assert (report.sent, report.hits) == (1, 2)
        assert delivered(box, first) == ["Storm halts CPC loadings | Kazakh crude diverted to BTC"]
        # A hit that arrives later goes out alone in the next digest.
        later = add(store, clock.advance(minutes=5), ("Drone strike on CPC pump station",
                                                      "cpc-disruption"))
        assert d.send_digests().hits == 1
        assert delivered(box, first | later)[1:] == ["Drone strike on CPC pump station"]
        assert d.retry_due().summary() == d.send_digests().summary() == "nothing to send"
        assert len(box.received) == 2
    assert pending_pairs(cfg, store) == 0
    assert [x.attempts for x in store.list_deliveries(states=["sent"])] == [1, 3]


def test_a_failing_webhook_recovers_and_holds_back_no_other_channel(
        store: Store, mailbox: Mailbox, hook: Hook, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NM_TEST_SLACK", hook.url("/slack"))
    desk = desk_config("energy", email=("energy@example.org",),
                       slack_webhook=Secret("env:NM_TEST_SLACK"), webhook_url=hook.url("/hook"))
    cfg = settings(desk, smtp_port=mailbox.port)
    clock = Clock(T0)
    d = deliverer(store, cfg, clock)
    ids = add(store, T0, ("Storm halts CPC loadings", "cpc-disruption"),
              ("Kazakh crude diverted to BTC", "btc-diversion"))
    hook.replies.extend([Reply(500, "rollup_error"), Reply(503, "busy"),  # slack, webhook
                         Reply(429, "rate_limited", {"Retry-After": "120"}), Reply()])
    report = d.send_digests()
    assert (report.sent, report.failed) == (1, 2)  # mail went out regardless
    assert len(mailbox.received) == 1
    clock.advance(seconds=61)
    report = d.retry_due()
    assert (report.sent, report.failed) == (1, 1)  # webhook ok; slack told to wait 2 min
    clock.advance(seconds=61)
    assert d.retry_due().summary() == "nothing to send"
    clock.advance(seconds=60)
    assert d.retry_due().sent == 1
    ok = [r for r, status in zip(hook.requests, (500, 503, 429, 200, 200), strict=True)
          if status == 200]
    assert [r.path for r in ok] == ["/hook", "/slack"]
    doc = ok[0].json()
    assert sorted(h["id"] for s in doc["sections"] for st in s["stories"] for h in st["hits"]) \
        == sorted(ids.values())
    slack_text = json.dumps(ok[1].json(), ensure_ascii=False)
    assert all(title in slack_text for title in ids)
    assert d.send_digests().summary() == d.retry_due().summary() == "nothing to send"
    assert {(x.channel, x.attempts) for x in store.list_deliveries(states=["sent"])} == {
        ("email", 1), ("webhook", 2), ("slack", 3)}


@pytest.mark.slow  # it waits out a timeout
def test_the_configured_delivery_timeout_bounds_an_answer_in_all(
        store: Store, hook: Hook) -> None:
    """``[delivery] timeout`` reaches every HTTP channel, and bounds the whole
    answer: a receiver trickling it a byte at a time, each in time for the
    socket's own timeout, is cut off like a silent one and the hit stays pending."""
    desk = desk_config("energy", webhook_url=hook.url("/hook"))
    cfg = replace(settings(desk), delivery_timeout=1.0)
    clock = Clock(T0)
    store.register_desks(["energy"], T0 - timedelta(days=1))
    d = Deliverer(cfg, store, TITLES, owner="test", clock=clock)
    add(store, T0, ("Storm halts CPC loadings", "cpc-disruption"))
    hook.replies.append(Reply(trickle=0.1, body="ok" * 20))  # ~9 s in all, 0.1 s a byte
    started = clock_time.monotonic()
    report = d.send_digests()
    assert clock_time.monotonic() - started < 5  # not the ~9 s of the whole trickle
    assert report.failed == 1 and "timed out waiting for the answer after 1s" in \
        report.errors[0]
    assert [x.state for x in store.list_deliveries()] == ["pending"]
    clock.advance(minutes=10)
    assert d.retry_due().sent == 1 and len(hook.requests) == 2


def test_a_permanent_failure_is_recorded_and_not_retried(
        store: Store, mailbox: Mailbox, hook: Hook, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NM_TEST_SLACK", hook.url("/services/T1/B2/S3CR3TTOKEN"))
    desk = desk_config("energy", email=("energy@example.org",),
                       slack_webhook=Secret("env:NM_TEST_SLACK"))
    cfg = settings(desk, smtp_port=mailbox.port)
    clock = Clock(T0)
    d = deliverer(store, cfg, clock)
    add(store, T0, ("Storm halts CPC loadings", "cpc-disruption"))
    hook.replies.append(Reply(404, "no_service"))
    report = d.send_digests()
    assert (report.sent, report.failed, report.permanent) == (1, 1, 1)
    status = delivery_status(cfg, store)
    assert [(r["channel"], r["last_error"]) for r in status["failed"]] == [
        ("slack", "slack: message: HTTP 404 no_service")]
    assert "S3CR3TTOKEN" not in json.dumps(status)
    clock.advance(days=2)
    assert d.retry_due().summary() == "nothing to send"
    assert len(hook.requests) == 1
    assert status["pending_deliveries"] == 0  # failed for good is not pending


def test_the_same_story_from_three_feeds_arrives_as_one_entry(store: Store,
                                                              mailbox: Mailbox) -> None:
    cfg = settings(desk_config("energy", email=("energy@example.org",)),
                   smtp_port=mailbox.port)
    d = deliverer(store, cfg, Clock(T0))
    title = "Drone strike halts loadings at CPC terminal near Novorossiysk"
    add(store, T0, (title, "cpc-disruption"), feed="reuters")
    add(store, T0, (title + " - Interfax", "cpc-disruption"), feed="interfax")
    add(store, T0, (title + " | Kursiv", "cpc-disruption"), feed="kursiv")
    assert d.send_digests().hits == 3
    text = text_of(mailbox)
    assert text.count("* ") == 1 and "+2 more:" in text
    for feed in ("reuters", "interfax", "kursiv"):
        assert f"https://{feed}.example/story/" in text
    assert mailbox.received[0].message["Subject"] == \
        "[news-monitor] energy: 1 new story (CPC disruption 1)"


def test_a_crash_between_sent_and_marked_resends_once(store: Store, mailbox: Mailbox,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = settings(desk_config("energy", email=("energy@example.org",)),
                   smtp_port=mailbox.port)
    clock = Clock(T0)
    d = deliverer(store, cfg, clock)
    add(store, T0, ("Storm halts CPC loadings", "cpc-disruption"))
    real = store.mark_sent

    def crash(*args: Any, **kw: Any) -> None:
        raise StorageError("database error: the process died here")

    monkeypatch.setattr(store, "mark_sent", crash)
    with pytest.raises(StorageError):
        d.send_digests()
    monkeypatch.setattr(store, "mark_sent", real)
    # The restarted process is another lease owner: it waits for the lease to run out.
    again = deliverer(store, cfg, clock, owner="restarted")
    assert again.retry_due().summary() == "nothing to send"
    clock.advance(seconds=LEASE + 1)
    assert again.retry_due().sent == 1
    assert again.retry_due().summary() == again.send_digests().summary() == "nothing to send"
    ids = [r.message["Message-ID"] for r in mailbox.received]
    assert len(ids) == 2 and ids[0] == ids[1]  # one duplicate, recognisable as such


def test_two_instances_never_send_a_hit_twice(store: Store, mailbox: Mailbox) -> None:
    cfg = settings(desk_config("energy", email=("energy@example.org",)),
                   smtp_port=mailbox.port)
    clock = Clock(T0)
    a, b = deliverer(store, cfg, clock, owner="a"), deliverer(store, cfg, clock, owner="b")
    add(store, T0, ("Storm halts CPC loadings", "cpc-disruption"))
    assert a.send_digests().sent + b.send_digests().sent + b.retry_due().sent == 1
    assert len(mailbox.received) == 1


def test_silenced_rules_are_stored_but_not_sent(store: Store, mailbox: Mailbox) -> None:
    cfg = settings(desk_config("energy", email=("energy@example.org",)),
                   desk_config("all", email=("all@example.org",)), smtp_port=mailbox.port)
    d = deliverer(store, cfg, Clock(T0))
    store.add_silence("cpc-disruption", "energy", T0 + timedelta(days=2), "known story",
                      now=T0 - timedelta(minutes=1))
    ids = add(store, T0, ("Storm halts CPC loadings", "cpc-disruption"),
              ("Kazakh crude diverted to BTC", "btc-diversion"))
    d.send_digests()
    by_desk = {r.recipients[0]: delivered(mailbox, ids)[i]
               for i, r in enumerate(mailbox.received)}
    assert by_desk == {"energy@example.org": "Kazakh crude diverted to BTC",
                       "all@example.org": "Storm halts CPC loadings | Kazakh crude diverted to BTC"}
    assert store.totals()["hits"] == 2


def test_send_empty_digests_only_when_asked(store: Store, mailbox: Mailbox) -> None:
    cfg = settings(desk_config("energy", email=("energy@example.org",)),
                   desk_config("chatty", email=("chatty@example.org",), send_empty=True),
                   smtp_port=mailbox.port)
    d = deliverer(store, cfg, Clock(T0))
    assert d.send_digests().sent == 1
    [got] = mailbox.received
    assert got.recipients == ["chatty@example.org"]
    assert got.message["Subject"] == "[news-monitor] chatty: nothing new"


def test_a_removed_channel_fails_its_pending_delivery_for_good(store: Store) -> None:
    desk = desk_config("energy", email=("energy@example.org",))
    clock = Clock(T0)
    d = deliverer(store, settings(desk), clock)  # nothing listens: the digest waits
    add(store, T0, ("Storm halts CPC loadings", "cpc-disruption"))
    assert d.send_digests().failed == 1
    clock.advance(minutes=2)
    report = deliverer(store, settings(desk_config("energy")), clock).retry_due()
    assert (report.failed, report.permanent) == (1, 1)
    assert [x.last_error for x in store.list_deliveries(states=["failed"])] == [
        "desk energy no longer has the email channel"]


def test_operator_notices_go_to_desks_that_want_them_and_are_retried(store: Store) -> None:
    port = free_port()
    cfg = settings(desk_config("ops", email=("ops@example.org",), ops_notices=True),
                   desk_config("energy", email=("energy@example.org",)), smtp_port=port)
    clock = Clock(T0)
    d = deliverer(store, cfg, clock)
    assert d.send_notice("feed Kursiv failing for 3 days").failed == 1
    with Mailbox(port=port) as box:
        clock.advance(minutes=2)
        assert d.retry_due().sent == 1
        [got] = box.received
    assert got.recipients == ["ops@example.org"]
    assert got.message["Subject"] == "[news-monitor] ops: feed Kursiv failing for 3 days"
    assert "feed Kursiv failing for 3 days" in parts(got.message)["text/plain"]


# -- alerts ---------------------------------------------------------------------------------------


def test_alerts_group_a_minute_of_hits_and_are_not_repeated_in_the_digest(
        store: Store, mailbox: Mailbox) -> None:
    desk = desk_config("energy", email=("energy@example.org",),
                       alert_min_severity=Severity.HIGH)
    cfg = settings(desk, smtp_port=mailbox.port)
    clock = Clock(T0)
    d = deliverer(store, cfg, clock)
    old = add(store, T0 - timedelta(hours=2), ("Old CPC story from before", "cpc-disruption"))
    ids = add(store, T0, ("Storm halts CPC loadings", "cpc-disruption"),
              ("Grain story of low severity", "eaeu-grain-ban"))
    ids |= add(store, T0 + timedelta(seconds=20), ("Sanctioned goods seized in transit",
                                                   "sanctioned-transit"), feed="kursiv")
    clock.advance(seconds=30)
    report = d.send_alerts()
    assert (report.sent, report.hits) == (1, 2)
    [alert] = mailbox.received
    assert alert.message["Subject"].strip() == \
        "[news-monitor] ALERT energy: 2 new stories (Sanctioned transit 1, CPC disruption 1)"
    assert delivered(mailbox, ids | old) == [
        "Storm halts CPC loadings | Sanctioned goods seized in transit"]
    assert d.send_alerts().summary() == "nothing to send"
    clock.advance(hours=1)
    d.send_digests()
    assert delivered(mailbox, ids | old)[1] == \
        "Grain story of low severity | Old CPC story from before"


def test_quiet_hours_hold_alerts_for_the_digest(store: Store, mailbox: Mailbox) -> None:
    desk = desk_config("energy", email=("energy@example.org",), timezone="Asia/Almaty",
                       alert_min_severity=Severity.HIGH, quiet_hours=(time(22), time(7)))
    cfg = settings(desk, smtp_port=mailbox.port)
    night = datetime(2026, 1, 5, 18, 0, tzinfo=UTC)  # 23:00 in Almaty
    clock = Clock(night)
    d = deliverer(store, cfg, clock)
    quiet = add(store, night, ("Storm halts CPC loadings at night", "cpc-disruption"))
    assert d.send_alerts().summary() == "nothing to send"
    clock.now = datetime(2026, 1, 6, 1, 50, tzinfo=UTC)  # 06:50: still quiet
    assert d.send_alerts().summary() == "nothing to send"
    clock.now = datetime(2026, 1, 6, 2, 10, tzinfo=UTC)  # 07:10: the night's hit still waits
    morning = add(store, datetime(2026, 1, 6, 2, 5, tzinfo=UTC),
                  ("Drone strike on CPC pump station", "cpc-disruption"))
    assert d.send_alerts().hits == 1
    assert delivered(mailbox, quiet | morning) == ["Drone strike on CPC pump station"]
    d.send_digests()
    assert delivered(mailbox, quiet | morning)[1] == "Storm halts CPC loadings at night"


def test_alerts_only_for_hits_of_the_last_hour(store: Store, mailbox: Mailbox) -> None:
    desk = desk_config("energy", email=("energy@example.org",),
                       alert_min_severity=Severity.MEDIUM)
    cfg = settings(desk, smtp_port=mailbox.port)
    clock = Clock(T0 + timedelta(hours=3))  # back after an outage
    d = deliverer(store, cfg, clock)
    add(store, T0, ("Storm halts CPC loadings", "cpc-disruption"))
    assert d.send_alerts().summary() == "nothing to send"
    assert d.send_digests().hits == 1


# -- status and the command line ------------------------------------------------------------


def _config(tmp_path: Path, smtp_port: int) -> tuple[Path, str]:
    db = f"sqlite:///{tmp_path / 'monitor.db'}"
    cfg = tmp_path / "monitor.toml"
    cfg.write_text(f'[storage]\nurl = "{db}"\n\n[rules]\ndir = "{shipped_rules_dir()}"\n\n'
                   f'[smtp]\nhost = "127.0.0.1"\nport = {smtp_port}\ntimeout = "5s"\n'
                   'sender = "News Monitor <monitor@example.org>"\n\n'
                   '[[desks]]\nname = "energy"\nrules = ["cpc-disruption"]\n'
                   'email = ["energy@example.org"]\n', encoding="utf-8")
    return cfg, db


def test_cli_digest_preview_send_and_failure(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                             mailbox: Mailbox) -> None:
    cfg, db = _config(tmp_path, mailbox.port)
    store = Store.open(db)
    store.register_desks(["energy"], datetime.now(UTC) - timedelta(days=1))
    ids = add(store, datetime.now(UTC), ("Storm halts CPC <b>loadings</b>", "cpc-disruption"),
              ("Grain story for no desk", "eaeu-grain-ban"))
    html = tmp_path / "preview.html"
    assert main(["--config", str(cfg), "digest", "--preview", "--html", str(html)]) == 0
    out = capsys.readouterr().out
    assert "Subject: [news-monitor] energy: 1 new story (CPC disruption 1)" in out
    assert "Storm halts CPC <b>loadings</b>" in out and "Grain story" not in out
    assert "Storm halts CPC &lt;b&gt;loadings&lt;/b&gt;" in html.read_text(encoding="utf-8")
    assert mailbox.received == [] and store.list_deliveries() == []  # nothing sent or marked
    assert main(["--config", str(cfg), "digest", "--desk", "energy"]) == 0
    assert "1 sent (1 hits)" in capsys.readouterr().out
    assert delivered(mailbox, ids) == ["Storm halts CPC <b>loadings</b>"]
    assert main(["--config", str(cfg), "digest"]) == 0
    assert capsys.readouterr().out.strip() == "nothing to send"
    assert main(["--config", str(cfg), "digest", "--desk", "nope"]) == 1
    assert "no desk 'nope' (desks: energy)" in capsys.readouterr().err
    # The mail server goes away: exit status 1, and the hit stays pending.
    mailbox.stop()
    add(store, datetime.now(UTC), ("Drone strike on CPC pump station", "cpc-disruption"))
    assert main(["--config", str(cfg), "digest"]) == 1
    captured = capsys.readouterr()
    assert "FAIL energy/email: email: 127.0.0.1:" in captured.err
    assert "1 failed (1 will be retried)" in captured.out
    cfg_settings = _settings(cfg)
    assert pending_pairs(cfg_settings, store) == 1
    store.close()


def _settings(path: Path) -> Settings:
    from monitor.config import load_settings

    return load_settings(path)


def test_cli_silence(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg, db = _config(tmp_path, free_port())
    base = ["--config", str(cfg), "silence"]
    assert main([*base, "add", "cpc-disruption", "--desk", "energy", "--for", "2d",
                 "--reason", "everyone knows"]) == 0
    assert capsys.readouterr().out.startswith("silence 1: cpc-disruption for energy until ")
    assert main([*base, "add", "cpc-disruption", "--for", "12h", "--reason", "all desks"]) == 0
    capsys.readouterr()
    assert main([*base, "list"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert listed[0].split() == ["ID", "RULE", "DESK", "UNTIL", "REASON"]
    assert [line.split()[:3] for line in listed[1:]] == [["1", "cpc-disruption", "energy"],
                                                         ["2", "cpc-disruption", "*"]]
    assert main([*base, "remove", "1"]) == 0
    assert main([*base, "remove", "1"]) == 1
    assert "no active silence 1" in capsys.readouterr().err
    assert main([*base, "list"]) == 0
    assert [line.split()[0] for line in capsys.readouterr().out.splitlines()[1:]] == ["2"]
    assert main([*base, "add", "no-such-rule", "--for", "2d", "--reason", "x"]) == 1
    assert "no rule 'no-such-rule'" in capsys.readouterr().err
    assert main([*base, "add", "cpc-disruption", "--for", "soon", "--reason", "x"]) == 1
    store = Store.open(db)
    assert [(s.rule_id, s.desk) for s in store.list_silences()] == [
        ("cpc-disruption", "energy"), ("cpc-disruption", None)]
    store.close()


@pytest.mark.slow
def test_cli_deliveries_list_and_retry_after_the_cause_is_fixed(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], mailbox: Mailbox) -> None:
    cfg, db = _config(tmp_path, mailbox.port)
    base = ["--config", str(cfg)]
    store = Store.open(db)
    store.register_desks(["energy"], datetime.now(UTC) - timedelta(days=1))
    ids = add(store, datetime.now(UTC), ("Storm halts CPC loadings", "cpc-disruption"))
    # The mail server refuses the message for good (a wrong relay setting, say).
    mailbox.data_reply = "554 5.7.1 relay not permitted"
    assert main([*base, "digest"]) == 1
    assert capsys.readouterr().out.strip() == (
        "0 sent (0 hits), 1 failed (1 for good: `news-monitor deliveries retry --failed` "
        "once the cause is fixed)")
    assert main([*base, "deliveries", "list", "--state", "failed"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:6] == ["ID", "DESK", "CHANNEL", "KIND", "STATE", "ATTEMPTS"]
    assert table[1].split()[:6] == ["1", "energy", "email", "digest", "failed", "1"]
    assert table[2].startswith("  last error: email: 127.0.0.1:")
    assert table[2].endswith("554 5.7.1 relay not permitted")
    # Neither the next digest nor the retry pass sends it again by itself.
    assert main([*base, "digest"]) == 0
    assert capsys.readouterr().out.strip() == "nothing to send"
    assert mailbox.received == []
    # Asked the wrong way round: explained, nothing touched.
    assert main([*base, "deliveries", "retry"]) == 1
    assert "give the ids of failed deliveries, or --failed" in capsys.readouterr().err
    assert main([*base, "deliveries", "retry", "7"]) == 1
    assert capsys.readouterr().err.strip() == (
        "news-monitor: delivery 7 not retried: no such delivery")
    # Fixed: the delivery goes out once, with its own hits, and is never retried again.
    mailbox.data_reply = None
    assert main([*base, "deliveries", "retry", "1"]) == 0
    out = capsys.readouterr().out
    assert "retrying 1 failed delivery: #1" in out and "1 sent (1 hits)" in out
    assert delivered(mailbox, ids) == ["Storm halts CPC loadings"]
    assert main([*base, "deliveries", "retry", "1"]) == 1
    assert "delivery 1 not retried: it is sent" in capsys.readouterr().err
    assert main([*base, "deliveries", "retry", "--failed"]) == 0
    assert capsys.readouterr().out.strip() == "nothing to retry"
    assert main([*base, "digest"]) == 0
    assert capsys.readouterr().out.strip() == "nothing to send"
    assert len(mailbox.received) == 1
    assert main([*base, "deliveries", "list", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["id"], r["state"], r["attempts"], r["last_error"]) for r in rows] == [
        (1, "sent", 2, None)]
    assert rows[0]["sent_at"].endswith("Z")
    store.close()


def test_requeue_failed_touches_only_failed_deliveries(store: Store) -> None:
    made = [store.create_delivery(desk, "email", "digest", [], now=T0)
            for desk in ("energy", "energy", "grain", "grain")]
    a, b, c, e = (m[0] for m in made if m)
    for failed in (a, c, e):
        store.mark_failed(failed, "550 no such user", permanent=True, next_attempt=None, now=T0)
    store.mark_sent(b, now=T0)
    assert store.requeue_failed([a, b], now=T0) == [a]
    assert store.requeue_failed(desk="grain", now=T0) == [c, e]
    assert store.requeue_failed(now=T0) == []
    assert {d.id: d.state for d in store.list_deliveries()} == {
        a: "pending", b: "sent", c: "pending", e: "pending"}
    assert [d.id for d in store.claim_due_deliveries("me", now=T0)] == [a, c, e]


def test_alert_channels_send_alerts_to_slack_and_the_digest_everywhere(
        store: Store, mailbox: Mailbox, hook: Hook, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NM_TEST_SLACK", hook.url("/services/T1/B2/X"))
    desk = desk_config("energy", email=("energy@example.org",),
                       slack_webhook=Secret("env:NM_TEST_SLACK"),
                       alert_min_severity=Severity.HIGH, alert_channels=("slack",))
    assert desk.channels == ("email", "slack") and desk.alerting_channels == ("slack",)
    cfg = settings(desk, smtp_port=mailbox.port)
    clock = Clock(T0)
    d = deliverer(store, cfg, clock)
    ids = add(store, T0, ("Storm halts CPC loadings", "cpc-disruption"))
    clock.advance(seconds=30)
    assert (d.send_alerts().sent, len(hook.requests), mailbox.received) == (1, 1, [])
    assert "Storm halts CPC loadings" in hook.requests[0].body.decode()
    clock.advance(hours=1)
    report = d.send_digests()
    # Email never had it; Slack already did (once per channel, as ever).
    assert (report.sent, report.hits) == (1, 1)
    assert delivered(mailbox, ids) == ["Storm halts CPC loadings"]
    assert len(hook.requests) == 1


def test_a_forced_retry_sends_pending_deliveries_now_but_respects_another_senders_lease(
        store: Store, hook: Hook, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NM_TEST_SLACK", hook.url("/slack"))
    cfg = settings(desk_config("energy", slack_webhook=Secret("env:NM_TEST_SLACK")))
    clock = Clock(T0)
    d = deliverer(store, cfg, clock)
    add(store, T0, ("Storm halts CPC loadings", "cpc-disruption"))
    hook.replies.append(Reply(500, "rollup_error"))
    assert d.send_digests().failed == 1
    assert d.retry_due().summary() == "nothing to send"  # backing off
    # Another sender (the daemon) holds it: a forced retry leaves it alone.
    [pending] = store.list_deliveries(states=["pending"])
    assert store.lease_delivery(pending.id, "daemon", now=T0, lease=300.0)
    assert d.retry_due(force=True).summary() == "nothing to send"
    clock.advance(seconds=301)  # its lease ran out
    assert d.retry_due(force=True).summary() == "1 sent (1 hits)"
    assert len(hook.requests) == 2
    assert d.retry_due(force=True).summary() == "nothing to send"
    # Failed for good waits for `deliveries retry`, forced or not.
    add(store, clock.now, ("Drone strike on CPC pump station", "cpc-disruption"))
    hook.replies.append(Reply(404, "no_service"))
    assert d.send_digests().permanent == 1
    assert d.retry_due(force=True).summary() == "nothing to send"
    assert len(hook.requests) == 3


def test_cli_digest_sends_what_failed_at_once_whatever_the_backoff(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], hook: Hook,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NM_TEST_SLACK", hook.url("/slack"))
    db = f"sqlite:///{tmp_path / 'monitor.db'}"
    cfg = tmp_path / "monitor.toml"
    cfg.write_text(f'[storage]\nurl = "{db}"\n\n[rules]\ndir = "{shipped_rules_dir()}"\n\n'
                   '[[desks]]\nname = "energy"\nrules = ["cpc-disruption"]\n'
                   'slack_webhook = "env:NM_TEST_SLACK"\n', encoding="utf-8")
    store = Store.open(db)
    store.register_desks(["energy"], datetime.now(UTC) - timedelta(days=1))
    add(store, datetime.now(UTC), ("Storm halts CPC loadings", "cpc-disruption"))
    hook.replies.append(Reply(500, "rollup_error"))
    base = ["--config", str(cfg), "digest"]
    assert main(base) == 1
    assert capsys.readouterr().out.strip() == "0 sent (0 hits), 1 failed (1 will be retried)"
    # At once, not in a minute: the pending delivery goes out, the same one.
    assert main(base) == 0
    assert capsys.readouterr().out.strip() == "1 sent (1 hits)"
    assert len(hook.requests) == 2 and hook.requests[0].body == hook.requests[1].body
    assert [(x.id, x.state, x.attempts) for x in store.list_deliveries()] == [(1, "sent", 2)]
    assert main(base) == 0
    assert capsys.readouterr().out.strip() == "nothing to send"
    assert len(hook.requests) == 2
    store.close()


# -- receivers that answer late ---------------------------------------------------------------


@pytest.mark.slow  # it waits out timeouts
def test_a_late_receiver_holds_back_only_its_own_queue(store: Store, mailbox: Mailbox,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Slack takes the post and answers after the timeout; another desk's email alert
    goes out meanwhile, before the Slack send has even timed out."""
    with Hook(Reply(delay=5.0)) as late:
        monkeypatch.setenv("NM_TEST_SLACK", late.url())
        cfg = settings(desk_config("late", slack_webhook=Secret("env:NM_TEST_SLACK"),
                                   alert_min_severity=Severity.HIGH),
                       desk_config("mail", email=("mail@example.org",),
                                   alert_min_severity=Severity.HIGH),
                       smtp_port=mailbox.port)
        now = datetime.now(UTC)
        store.register_desks(("late", "mail"), now - timedelta(minutes=1))
        timeout = 2.0
        d = Deliverer(cfg, store, TITLES, owner="test",
                      options={"slack_pause": 0, "timeout": timeout})
        add(store, now, ("Storm halts CPC loadings", "cpc-disruption"))
        senders = Senders()
        started = clock_time.monotonic()
        assert d.queues(alerting=True) == [("late", "slack"), ("mail", "email")]
        for key in d.queues(alerting=True):  # the late one first
            senders.submit(key, "alerts", lambda k=key: d.send_alerts(*k))
        wait_until(lambda: late.requests and mailbox.received, "both alerts to arrive", 10)
        assert clock_time.monotonic() - started < timeout  # not after Slack's timeout
        assert ("late", "slack") in senders.busy()  # still waiting for its answer
        assert senders.wait_idle(10)
        (slack,) = store.list_deliveries(desk="late")
        assert slack.state == "pending" and "timed out waiting for the answer" in str(
            slack.last_error) and (slack.payload or {}).get("uncertain") == 1
        assert senders.close(1)


def test_passes_of_one_queue_never_overlap_and_are_coalesced() -> None:
    senders = Senders(workers=4)
    running: list[str] = []
    overlaps: list[str] = []
    ran: list[str] = []
    gate = threading.Event()

    def work(name: str) -> None:
        if running:
            overlaps.append(name)
        running.append(name)
        gate.wait(5)
        ran.append(name)
        running.remove(name)

    senders.submit(("d", "slack"), "alerts", lambda: work("first"))
    wait_until(lambda: running, "the first pass to start", 5)
    for n in range(5):  # while it runs: coalesced into one more pass
        senders.submit(("d", "slack"), "alerts", lambda n=n: work(f"again {n}"))
    gate.set()
    assert senders.wait_idle(5)
    assert overlaps == [] and ran == ["first", "again 4"]
    assert senders.close(1)


def _late_settings(mailbox: Mailbox, hook: Hook) -> Settings:
    desk = desk_config("energy", email=("energy@example.org",),
                       slack_webhook=Secret("env:NM_TEST_SLACK"), webhook_url=hook.url("/hook"))
    return Settings(source="<test>", storage_url="sqlite://", rules_dir=Path("."),
                    channel_tables={"smtp": SmtpConfig(
                        host="127.0.0.1", port=mailbox.port,
                        sender="News Monitor <monitor@example.org>", timeout=0.3)},
                    desks=(desk,))


@pytest.mark.slow  # it waits out timeouts
def test_a_receiver_that_always_answers_late_gets_each_message_at_most_twice(
        store: Store, mailbox: Mailbox, monkeypatch: pytest.MonkeyPatch) -> None:
    """Taken, then no answer in time (Slack, webhook, and SMTP after DATA's '.'):
    resent once after the back-off with the same id, then failed for good."""
    mailbox.data_delay = 1.0
    with Hook(Reply(delay=1.0)) as hook:
        monkeypatch.setenv("NM_TEST_SLACK", hook.url("/slack"))
        cfg = _late_settings(mailbox, hook)
        clock = Clock(T0)
        store.register_desks(["energy"], T0 - timedelta(days=1))
        d = Deliverer(cfg, store, TITLES, owner="test", clock=clock,
                      options={"slack_pause": 0, "timeout": 0.3})
        add(store, T0, ("Storm halts CPC loadings", "cpc-disruption"))
        first = d.send_digests()
        assert (first.sent, first.failed, first.permanent) == (0, 3, 0)
        assert d.retry_due().summary() == "nothing to send"  # later, with the back-off
        clock.advance(seconds=61)
        second = d.retry_due()
        assert (second.sent, second.failed, second.permanent) == (0, 3, 3)
        for _ in range(3):  # nothing more, however long we wait
            clock.advance(hours=2)
            assert d.retry_due().summary() == d.send_digests().summary() == "nothing to send"
        wait_until(lambda: len(hook.requests) == 4 and len(mailbox.received) == 2,
                   "the late receivers to record the two copies", 5)
        paths = [r.path for r in hook.requests]
        assert sorted(paths) == ["/hook", "/hook", "/slack", "/slack"]
        hooks = [r for r in hook.requests if r.path == "/hook"]
        assert hooks[0].headers["x-news-monitor-delivery"] == \
            hooks[1].headers["x-news-monitor-delivery"]
        ids = [r.message["Message-ID"] for r in mailbox.received]
        assert ids[0] == ids[1]
    failed = store.list_deliveries(states=["failed"])
    assert len(failed) == 3
    for x in failed:
        assert str(x.last_error).startswith("answered late twice (")
        assert f"check the receiver; `news-monitor deliveries retry {x.id}` sends it again" \
            in str(x.last_error)
        assert (x.payload or {}).get("uncertain") == 2 and x.attempts == 2


@pytest.mark.slow  # it waits out timeouts
def test_an_uncertain_send_then_a_clear_failure_is_retried_as_usual(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """Refused or 5xx are clear failures: retried with the back-off, never counted
    as uncertain; one late answer, then success: two copies, sent."""
    with Hook() as hook:
        hook.replies.extend([Reply(delay=1.0), Reply(503, "busy"), Reply(500, "oops"),
                             Reply()])
        cfg = settings(desk_config("energy", webhook_url=hook.url("/hook")))
        clock = Clock(T0)
        store.register_desks(["energy"], T0 - timedelta(days=1))
        d = Deliverer(cfg, store, TITLES, owner="test", clock=clock, options={"timeout": 0.3})
        add(store, T0, ("Storm halts CPC loadings", "cpc-disruption"))
        assert d.send_digests().failed == 1
        for _ in range(3):
            clock.advance(hours=1, seconds=1)
            d.retry_due()
        (x,) = store.list_deliveries()
        assert x.state == "sent" and x.attempts == 4 and (x.payload or {}).get("uncertain") == 1
