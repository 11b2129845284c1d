"""The status document (monitor.status), read from a real store: what
``news-monitor status --format json`` prints and the web view will show."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from monitor.config import parse_settings
from monitor.models import Evidence, FeedState, Item, Match, NewItem, Severity
from monitor.status import status_document
from monitor.store import Store

T0 = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
POLLED, FAILING, NEW = ("https://a.example/rss", "https://b.example/rss",
                        "https://c.example/rss")


def test_the_document_has_every_configured_feed_and_the_totals(store: Store,
                                                                tmp_path: Path) -> None:
    settings = parse_settings(
        f'[[feeds]]\nurl = "{POLLED}"\n[[feeds]]\nurl = "{FAILING}"\nname = "Bee"\n'
        f'[[feeds]]\nurl = "{NEW}"\n[[desks]]\nname = "energy"\n'
        'webhook_url = "https://hooks.example.org/x"\n', "monitor.toml", base=tmp_path)
    store.register_desks(["energy"], T0 - timedelta(hours=1))  # before the hit: it is owed
    store.sync_feeds([(POLLED, None), (FAILING, None)])
    item = Item(POLLED, "g1", "CPC halts loadings", "", None, T0, "en", "fp")
    store.commit_poll(FeedState(POLLED, last_polled=T0, last_status="304", title="Feed A"),
                      [NewItem(item, (Match("cpc-disruption", 90.0,
                                            (Evidence("title", "CPC", "CPC", 0, 3, 100.0),)),))],
                      {"cpc-disruption": ("v1", Severity.HIGH)}, T0)
    store.save_feed_states([FeedState(FAILING, last_polled=T0, last_status="timeout",
                                      error="timed out", failures=2, next_poll=T0)])
    store.put_state("daemon:host:1", {"owner": "host:1", "rules": {"cpc-disruption": "v1"}})
    store.put_state("daemon:host:2", None)  # a daemon that stopped
    doc = status_document(settings, store)
    assert list(doc) == ["feeds", "items", "hits", "pending_deliveries", "retrying", "failed",
                         "daemons"]
    a, b, c = doc["feeds"]
    assert (a["name"], a["items"], a["last_polled"], a["last_status"]) == (
        "Feed A", 1, "2026-03-04T05:06:07Z", 304)  # the feed's title; a status code as a number
    assert (b["name"], b["last_status"], b["error"], b["failures"], b["next_poll"]) == (
        "Bee", "timeout", "timed out", 2, "2026-03-04T05:06:07Z")
    assert c == {"url": NEW, "name": NEW, "items": 0, "last_polled": None, "last_status": None,
                 "error": None, "failures": 0, "next_poll": None, "disabled": None,
                 "flag": None}  # never polled: its URL stands in for a name
    assert (doc["items"], doc["hits"], doc["pending_deliveries"]) == (1, 1, 1)
    assert (doc["retrying"], doc["failed"]) == ([], [])
    assert doc["daemons"] == [{"owner": "host:1", "rules": {"cpc-disruption": "v1"}}]
    assert json.loads(json.dumps(doc)) == doc
