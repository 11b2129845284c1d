"""The ``hits`` listing without SQLAlchemy (monitor.store.direct), on SQLite and
PostgreSQL: the same answers as the Store, and the Store whenever the database
needs it first."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from procenv import cli_env

from monitor.errors import StorageError
from monitor.models import Evidence, FeedState, Item, Match, NewItem, Severity
from monitor.store import Store
from monitor.store.direct import list_direct

T0 = datetime(2026, 3, 4, 5, 6, 7, 891011, tzinfo=UTC)
RULES = {"cpc-disruption": ("v1", Severity.CRITICAL), "btc-diversion": ("v2", Severity.HIGH)}
NAMED, UNNAMED = "https://named.example.org/rss", "https://unnamed.example.org/rss"


def _fill(store: Store) -> dict[str, datetime]:
    """Six hits over two feeds: two share a poll time (ties go by id), one item
    has no link, one feed has no name (its URL stands in). Returns guid -> matched_at."""
    store.sync_feeds([(NAMED, "Named"), (UNNAMED, None)])
    matched: dict[str, datetime] = {}
    polls = [(NAMED, T0, ["a", "b"]), (UNNAMED, T0 + timedelta(hours=1), ["c"]),
             (NAMED, T0 + timedelta(hours=2, microseconds=1), ["d"]),
             (UNNAMED, T0 + timedelta(days=3), ["e", "f"])]
    for n, (feed, when, guids) in enumerate(polls):
        new = []
        for k, guid in enumerate(guids):
            rule = "btc-diversion" if guid in "bd" else "cpc-disruption"
            ev = (Evidence("title", "CPC", "КТК «Каспий»", 0, 12, 97.5),
                  Evidence("summary", "halt", "halted", 3, 9, 88.0))
            item = Item(feed_url=feed, guid=guid, title=f"Заголовок {guid} ✓",
                        summary=f"summary {guid}", link=None if guid == "c" else f"https://x/{guid}",
                        published=when - timedelta(minutes=k), lang="ru" if k else "en",
                        fingerprint=f"fp-{n}-{k}", outlet="Интерфакс" if guid == "b" else None)
            new.append(NewItem(item, (Match(rule, 90.0 + k / 3, ev),)))
            matched[guid] = when
        store.commit_poll(FeedState(feed), new, RULES, when)
    return matched


def _direct(url: str, desks: tuple[str, ...] = (), **query: object):  # type: ignore[no-untyped-def]
    return list_direct(url, timeout=5, desks=desks, **query)  # type: ignore[arg-type]


def test_direct_listing_is_the_store_s(store: Store, store_url: str) -> None:
    matched = _fill(store)
    newest_first = sorted(matched, key=lambda g: (matched[g], g), reverse=True)
    assert newest_first == ["f", "e", "d", "c", "b", "a"]
    plus_five = timezone(timedelta(hours=5))
    queries: list[tuple[dict[str, object], list[str]]] = [
        ({}, newest_first),
        # the bound is inclusive, to the microsecond, whatever the caller's zone
        ({"since": T0 + timedelta(hours=1)}, ["f", "e", "d", "c"]),
        ({"since": (T0 + timedelta(hours=2, microseconds=1)).astimezone(plus_five)},
         ["f", "e", "d"]),
        ({"since": T0 + timedelta(hours=2, microseconds=2)}, ["f", "e"]),
        ({"rule_id": "btc-diversion"}, ["d", "b"]),
        ({"rule_id": "no-such-rule"}, []),
        ({"limit": 3}, ["f", "e", "d"]),
        ({"limit": 0}, []),
        ({"since": T0, "rule_id": "cpc-disruption", "limit": 2}, ["f", "e"]),
    ]
    for query, expected in queries:
        direct = _direct(store_url, **query)
        assert direct is not None
        assert [h.guid for h in direct] == expected, query
        assert direct == store.list_hits(**query), query  # type: ignore[arg-type]
    c = next(h for h in _direct(store_url) or [] if h.guid == "c")
    assert (c.link, c.feed_name, c.feed_url, c.rule_version, c.severity) == (
        None, UNNAMED, UNNAMED, "v1", Severity.CRITICAL)
    assert c.matched_at == T0 + timedelta(hours=1) and c.matched_at.tzinfo == UTC
    assert c.evidence[0] == Evidence("title", "CPC", "КТК «Каспий»", 0, 12, 97.5)
    b = next(h for h in _direct(store_url) or [] if h.guid == "b")
    assert (b.outlet, b.shown_outlet, c.outlet, c.shown_outlet) == (
        "Интерфакс", "Интерфакс", None, UNNAMED)


def test_a_new_database_is_left_to_the_store(tmp_path: Path) -> None:
    db = tmp_path / "state" / "monitor.db"
    assert _direct(f"sqlite:///{db}") is None
    assert not db.exists()  # creating and migrating it is the Store's job
    Store.open(f"sqlite:///{db}").close()
    assert _direct(f"sqlite:///{db}") == []


def test_a_schema_to_migrate_is_left_to_the_store(store: Store, store_url: str) -> None:
    with store.engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '0000'"))
    assert _direct(store_url) is None
    with store.engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE alembic_version"))
    assert _direct(store_url) is None


def test_a_new_desk_is_left_to_the_store(store: Store, store_url: str) -> None:
    # SPEC: a desk starts with the hits matched after any command first loaded it,
    # and registering it is a write.
    store.register_desks(["energy"])
    assert _direct(store_url, desks=("energy",)) == []
    assert _direct(store_url, desks=("energy", "grain")) is None
    store.register_desks(["grain"])
    assert _direct(store_url, desks=("energy", "grain")) == []


def test_other_urls_are_left_to_sqlalchemy() -> None:
    assert _direct("sqlite:///:memory:") is None
    assert _direct("mysql+pymysql://u@127.0.0.1/db") is None
    assert _direct("postgresql+asyncpg://u@127.0.0.1/db") is None


def test_an_unreachable_postgresql_is_a_storage_error() -> None:
    with pytest.raises(StorageError, match=r"^cannot open the store: "):
        _direct("postgresql://nobody@127.0.0.1:1/none")


def _hits_command(config: Path, *args: str) -> tuple[list[str], bool]:
    """Run ``hits`` in a fresh interpreter: its output lines, and whether it
    imported SQLAlchemy."""
    code = ("import sys; from monitor.cli import main; status = main(sys.argv[1:]); "
            "print('sqlalchemy' in sys.modules, file=sys.stderr); sys.exit(status)")
    env = {**cli_env(), "NM_HOOK": "https://hooks.example.org/x"}
    r = subprocess.run([sys.executable, "-c", code, "--config", str(config), "hits", *args],
                       capture_output=True, text=True, timeout=60, check=True, env=env)
    return r.stdout.splitlines(), r.stderr.strip().splitlines()[-1] == "True"


@pytest.mark.slow
def test_hits_command_skips_sqlalchemy_once_the_database_is_ready(tmp_path: Path) -> None:
    db = tmp_path / "monitor.db"
    config = tmp_path / "monitor.toml"
    config.write_text(f'[storage]\nurl = "sqlite:///{db}"\n', encoding="utf-8")
    assert _hits_command(config) == (["PUBLISHED  RULE  SCORE  FEED  TITLE"], True)  # created it
    store = Store.open(f"sqlite:///{db}")
    _fill(store)
    store.close()
    lines, imported = _hits_command(config, "--format", "jsonl", "--since", "2026-03-05")
    assert not imported
    assert [json.loads(line)["guid"] for line in lines] == ["f", "e"]
    assert json.loads(lines[0])["matched_at"] == "2026-03-07T05:06:07Z"
    # A desk the store has not seen yet: the Store registers it, then no more.
    config.write_text(config.read_text(encoding="utf-8") + '[[desks]]\nname = "energy"\n'
                      'rules = ["cpc-disruption"]\nslack_webhook = "env:NM_HOOK"\n',
                      encoding="utf-8")
    assert _hits_command(config, "--limit", "1")[1] is True
    lines, imported = _hits_command(config, "--limit", "1")
    assert not imported and len(lines) == 3 and "Заголовок f" in lines[1]


def test_feed_validators(store: Store, store_url: str, tmp_path: Path) -> None:
    from monitor.store.direct import feed_validators

    store.sync_feeds([(NAMED, "Named"), (UNNAMED, None)])
    store.save_feed_states([FeedState(NAMED, etag='"v1"', last_modified="Mon, 02 Mar 2026")])
    store.save_feed_states([FeedState(UNNAMED, disabled="410 Gone")])
    assert feed_validators(store_url, timeout=5) == {
        NAMED: ('"v1"', "Mon, 02 Mar 2026", False), UNNAMED: (None, None, True)}
    # A first poll in a folder that exists: no validators, and nothing created.
    first = tmp_path / "first.db"
    assert feed_validators(f"sqlite:///{first}", timeout=5) == {}
    assert not first.exists()
    # A folder still to make, or a schema to migrate: the Store's business.
    assert feed_validators(f"sqlite:///{tmp_path}/state/new.db", timeout=5) is None
    with store.engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '0000'"))
    assert feed_validators(store_url, timeout=5) is None
