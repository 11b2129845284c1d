"""The store at a million items: inserts through the poll path, and ``hits`` queries.

Run from the repository root::

    .venv/bin/python bench/bench_store.py                      # SQLite, then PostgreSQL
    .venv/bin/python bench/bench_store.py --pg-url postgresql://user@127.0.0.1/db
    .venv/bin/python bench/bench_store.py --smoke              # tiny sizes, for CI

Fills a fresh store with ``--items`` entries (1,000,000) as 1,000 feeds would
over 180 days: one ``Store.commit_poll`` per feed poll of 20 new entries (the
poll's own transaction: items, their hits and the feed's state), with times
spread evenly, so the newest day holds ~1/180 of everything; 6 % of entries
carry a hit of one of the four shipped rules, with its evidence. The insert
rate counts the time spent in ``commit_poll`` only.

Then the ``hits`` command, as a user runs it (a whole process, start-up
included, 5 runs, output discarded), and the same query through
``Store.list_hits`` in-process (the database part alone):

* ``hits --since 1d --format jsonl``: the last day's hits (~330);
* ``hits --rule cpc-disruption --since 7d``: one rule, a week;
* ``hits --limit 50``: the newest 50 of all (~60,000).

PostgreSQL: ``--pg-url`` (a database it may fill), else a throwaway server
started the way ``tests/pg.py`` does (Debian's ``postgresql`` package), else
skipped with a note.
"""

from __future__ import annotations

import argparse
import contextlib
import random
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import common
from common import Stat

DAYS = 180
FEEDS = 1000
PER_POLL = 20
RULES = ("cpc-disruption", "btc-diversion", "eaeu-grain-ban", "sanctioned-transit")
QUERIES = {
    "hits --since 1d --format jsonl": (["--since", "1d", "--format", "jsonl"],
                                       {"since": timedelta(days=1)}),
    "hits --rule cpc-disruption --since 7d": (["--rule", "cpc-disruption", "--since", "7d"],
                                              {"since": timedelta(days=7),
                                               "rule_id": "cpc-disruption"}),
    "hits --limit 50": (["--limit", "50"], {"limit": 50}),
}


def _polls(items: int, end: datetime, seed: int = 7) -> Iterator[tuple[str, datetime, list]]:
    """(feed URL, poll time, new items with their verdicts), oldest first, the
    last poll at ``end``."""
    from monitor.models import Evidence, Item, Match, NewItem
    from monitor.parse import item_fingerprint

    rng = random.Random(seed)
    polls = items // PER_POLL
    step = timedelta(days=DAYS) / max(polls, 1)
    words = ("port", "grain", "pipeline", "tariff", "budget", "rail", "bank", "power", "steel",
             "wheat", "crude", "terminal", "court", "strike", "export", "customs")
    for p in range(polls):
        feed = p % FEEDS
        now = end - timedelta(days=DAYS) + step * (p + 1)
        new = []
        for k in range(PER_POLL):
            serial = p * PER_POLL + k
            title = f"{' '.join(rng.choices(words, k=8)).capitalize()} #{serial}"
            summary = " ".join(rng.choices(words, k=60)) + "."
            item = Item(feed_url=f"https://news.example.org/{feed}/rss",
                        guid=f"urn:bench:{feed}:{serial}", title=title, summary=summary,
                        link=f"https://news.example.org/{feed}/{serial}",
                        published=now - timedelta(minutes=k), lang="en",
                        fingerprint=item_fingerprint(title, summary))
            matches: tuple = ()
            if rng.random() < 0.06:
                rule = rng.choice(RULES)
                matches = (Match(rule, 92.5, (Evidence("title", "term", title[:12], 0, 12,
                                                       100.0),)),)
            new.append(NewItem(item, matches))
        yield f"https://news.example.org/{feed}/rss", now, new


def fill(url: str, items: int) -> dict[str, float]:
    """Insert ``items`` entries through commit_poll; return the figures."""
    from monitor.models import FeedState, Severity
    from monitor.store import Store

    store = Store.open(url)
    store.sync_feeds((f"https://news.example.org/{f}/rss", None) for f in range(FEEDS))
    info = {r: ("bench", Severity.HIGH) for r in RULES}
    spent = 0.0
    stored = hits = 0
    # The newest poll a minute ago: `hits --since 1d` is relative to the clock.
    for feed_url, now, new in _polls(items, datetime.now(UTC) - timedelta(minutes=1)):
        state = FeedState(url=feed_url, last_polled=now, last_ok=now, last_status="200",
                          last_new_item=now, next_poll=now + timedelta(minutes=15))
        started = time.perf_counter()
        got_items, got_hits = store.commit_poll(state, new, info, now)
        spent += time.perf_counter() - started
        stored += got_items
        hits += sum(got_hits.values())
    store.close()
    if stored != items - items % PER_POLL:
        raise AssertionError(f"stored {stored} of {items}")
    return {"items": stored, "hits": hits, "insert_s": spent, "items_per_s": stored / spent}


def query_in_process(url: str, runs: int) -> dict[str, list[tuple[float, int]]]:
    from monitor.store import Store

    store = Store.open(url)
    out: dict[str, list[tuple[float, int]]] = {}
    now = datetime.now(UTC)
    for name, (_, kwargs) in QUERIES.items():
        args = dict(kwargs)
        if "since" in args:
            args["since"] = now - args["since"]
        store.list_hits(**args)  # warm the cache, as a second user would find it
        for _ in range(runs):
            started = time.perf_counter()
            got = store.list_hits(**args)
            out.setdefault(name, []).append((time.perf_counter() - started, len(got)))
    store.close()
    return out


def query_commands(config: Path, runs: int) -> dict[str, list[tuple[float, int]]]:
    out: dict[str, list[tuple[float, int]]] = {}
    for name, (argv, _) in QUERIES.items():
        common.run(common.nm_command(config, "hits", *argv), env=common.nm_env())  # warm-up
        for _ in range(runs):
            r = common.run(common.nm_command(config, "hits", *argv), env=common.nm_env())
            lines = r.out.count("\n") - (0 if "--format" in argv else 1)
            out.setdefault(name, []).append((r.wall, lines))
    return out


@contextlib.contextmanager
def _postgres(url: str | None) -> Iterator[str | None]:
    if url:
        yield url
        return
    sys.path.insert(0, str(common.REPO / "tests"))
    from pg import fresh_database, postgres_server

    with postgres_server() as server:
        yield fresh_database(server, "nm_bench") if server else None


def bench_backend(name: str, url: str, items: int, runs: int, work: Path) -> list[tuple]:
    print(f"\n{name}: filling {items:,} items ...", flush=True)
    filled = fill(url, items)
    print(f"  {filled['items']:,} items, {filled['hits']:,} hits in {filled['insert_s']:.1f} s "
          f"of commit_poll: {filled['items_per_s']:,.0f} items/s", flush=True)
    config = common.write_config(work / f"{name}.toml", [], db_url=url)
    inproc = query_in_process(url, runs)
    commands = query_commands(config, runs)
    rows = [(name, f"insert {filled['items']:,} items (commit_poll, 20 per transaction)",
             f"{filled['items_per_s']:,.0f} items/s", "", "")]
    for q in QUERIES:
        rows.append((name, q, f"{inproc[q][0][1]:,} hits",
                     Stat.of([t * 1000 for t, _ in inproc[q]]).fmt(1),
                     Stat.of([t * 1000 for t, _ in commands[q]]).fmt(0)))
    if url.startswith("sqlite"):
        db = Path(url.split("///", 1)[1])
        size = sum(p.stat().st_size for p in db.parent.glob(db.name + "*"))
        rows.append((name, "database size", f"{size / 2**20:,.0f} MiB", "", ""))
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--pg-url", metavar="URL", help="a PostgreSQL database it may fill")
    ap.add_argument("--no-pg", action="store_true", help="SQLite only")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes, SQLite only, for CI")
    ap.add_argument("--json", metavar="PATH")
    a = ap.parse_args()
    if a.smoke:
        a.items, a.runs, a.no_pg = 2000, 1, True
    common.compile_checkout()
    print(f"machine: {common.machine()}")
    rows: list[tuple] = []
    with common.workdir("nm-bench-store-") as work:
        rows += bench_backend("SQLite", f"sqlite:///{work}/store.db", a.items, a.runs, work)
        if not a.no_pg:
            with _postgres(a.pg_url) as pg:
                if pg is None:
                    print("\nPostgreSQL: skipped (no --pg-url, and no postgresql package "
                          "to start a throwaway server)")
                else:
                    rows += bench_backend("PostgreSQL", pg, a.items, a.runs, work)
    print(f"\n{a.runs} runs per query\n")
    print(common.table(("store", "figure", "value", "list_hits in-process, ms",
                        "`news-monitor hits` whole process, ms"), rows))
    common.save_json(a.json, {"machine": common.machine(), "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
