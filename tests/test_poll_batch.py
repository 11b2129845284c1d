"""Feeds whose results queue up are stored together (one transaction, one story
placement): a poll stopped between batches keeps each feed whole or absent, and
the next poll stores the rest once (real loopback feeds, a real store).
"""

from __future__ import annotations

import threading
from pathlib import Path

from feedserver import Feed, FeedServer, feed_doc

from monitor.config import load_settings
from monitor.pipeline import FeedOutcome, Poller
from monitor.rules import load_rules
from monitor.store import Store

FEEDS = 12
ENTRIES = 20


def _config(tmp_path: Path, server: FeedServer, store_url: str) -> Path:
    for i in range(FEEDS):
        server.routes[f"/f{i}.xml"] = Feed(feed_doc(i, ENTRIES))
    config = tmp_path / "monitor.toml"
    config.write_text(f'[storage]\nurl = "{store_url}"\n[poll]\nconcurrency = {FEEDS}\n'
                      + "".join(f'[[feeds]]\nurl = "{server.url(f"/f{i}.xml")}"\n'
                                for i in range(FEEDS)), encoding="utf-8")
    return config


def test_a_poll_stopped_between_batches_stores_whole_feeds_and_the_next_the_rest(
        feed_server: FeedServer, tmp_path: Path, store_url: str) -> None:
    settings = load_settings(_config(tmp_path, feed_server, store_url))
    store = Store.open(store_url)
    try:
        stop = threading.Event()
        seen: list[FeedOutcome] = []

        def stop_after_first(outcome: FeedOutcome, done: int, total: int) -> None:
            seen.append(outcome)
            stop.set()  # the batch this feed came in is stored: end the cycle there

        poller = Poller(settings, store, lambda: load_rules(settings.rules_dir))
        first = poller.poll(on_outcome=stop_after_first, stop=stop)
        assert 1 <= len(first.outcomes) < FEEDS
        assert [o.url for o in seen] == [o.url for o in first.outcomes]
        stored: dict[str, int] = {}
        for row in store.iter_items():
            stored[row["feed"]] = stored.get(row["feed"], 0) + 1
        # Each feed reported is stored whole, with its validators; none other is.
        assert stored == {o.url: ENTRIES for o in first.outcomes}
        states = store.feed_states(f.url for f in settings.feeds)
        for f in settings.feeds:
            assert (states[f.url].last_new_item is not None) == (f.url in stored)
        hits_first = len(store.list_hits())
        assert hits_first == sum(o.new_hits for o in first.outcomes) > 0

        second = Poller(settings, store, lambda: load_rules(settings.rules_dir)).poll()
        assert second.failed == 0
        assert sum(o.new_items for o in second.outcomes) == (FEEDS - len(stored)) * ENTRIES
        rows = list(store.iter_items())
        assert len(rows) == len({(r["feed"], r["guid"]) for r in rows}) == FEEDS * ENTRIES
        hits = store.list_hits()
        assert len(hits) == hits_first + sum(o.new_hits for o in second.outcomes)
        assert all(h.story is not None for h in hits)  # every hit placed in a story
    finally:
        store.close()
