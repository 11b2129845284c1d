"""The store contract, run on SQLite and on PostgreSQL (see tests/pg.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from monitor.errors import StorageError
from monitor.models import Evidence, FeedState, Item, Match, NewItem, Severity
from monitor.store import SCHEMA_REVISION, Store, migrate
from monitor.store.sql import create_engine

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
RULES = {"cpc-disruption": ("v1", Severity.CRITICAL), "btc-diversion": ("v2", Severity.HIGH)}
FEED = "https://example.org/rss"


def item(n: int, feed: str = FEED, **kw: object) -> Item:
    fields: dict = {
        "feed_url": feed,
        "guid": f"guid-{n}",
        "title": f"Title {n}",
        "summary": f"Summary {n}",
        "link": f"https://example.org/{n}",
        "published": T0 - timedelta(hours=n),
        "lang": "en",
        "fingerprint": f"fp-{n}",
    }
    fields.update(kw)
    return Item(**fields)


def hit(rule: str = "cpc-disruption", score: float = 91.0) -> Match:
    return Match(rule, score, (Evidence("title", "CPC", "CPC", 0, 3, 100.0),))


def test_schema_is_at_alembic_head(store: Store) -> None:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(migrate.alembic_config())
    assert script.get_current_head() == SCHEMA_REVISION
    with store.engine.connect() as conn:
        assert migrate.current_revision(conn) == SCHEMA_REVISION


def _schema(engine: sa.Engine) -> dict[str, object]:
    """Everything the database says about its tables, comparable across databases."""
    insp = sa.inspect(engine)
    out: dict[str, object] = {}
    for table in sorted(insp.get_table_names()):
        out[table] = {
            "columns": [(c["name"], str(c["type"]), c["nullable"], c.get("default"))
                        for c in insp.get_columns(table)],
            "pk": insp.get_pk_constraint(table),
            "fks": sorted((f["name"], tuple(f["constrained_columns"]), f["referred_table"],
                           tuple(f["referred_columns"]), str(f.get("options")))
                          for f in insp.get_foreign_keys(table)),
            "indexes": sorted((i["name"], tuple(i["column_names"]), i["unique"])
                              for i in insp.get_indexes(table)),
            "unique": sorted((u["name"], tuple(u["column_names"]))
                             for u in insp.get_unique_constraints(table)),
        }
    return out


def test_a_new_database_gets_the_schema_the_migrations_build(
        store_url: str, request: pytest.FixtureRequest, tmp_path: object) -> None:
    from alembic import command
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from monitor.store.schema import include_name, metadata

    created = Store.open(store_url)  # a new database: created directly, then stamped
    if store_url.startswith("sqlite"):
        other = f"sqlite:///{tmp_path}/migrated.db"
    else:
        from pg import fresh_database

        other = fresh_database(request.getfixturevalue("postgres_url"), "nm_test_migrated")
    migrated = create_engine(other)
    with migrated.begin() as conn:  # every migration, as an old database went through them
        config = migrate.alembic_config(conn)
        command.upgrade(config, "head")
    assert _schema(created.engine) == _schema(migrated)
    with migrated.connect() as conn:
        assert migrate.current_revision(conn) == SCHEMA_REVISION
        context = MigrationContext.configure(conn, opts={"include_name": include_name})
        assert compare_metadata(context, metadata) == []
    with created.engine.connect() as conn:  # Alembic reads the stamp as its own
        assert MigrationContext.configure(conn).get_current_revision() == SCHEMA_REVISION
    created.close()
    migrated.dispose()


def test_a_database_with_foreign_tables_is_left_to_alembic(store_url: str) -> None:
    engine = create_engine(store_url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)"))
    with engine.begin() as conn:
        assert migrate._create(conn) is False
    migrate.upgrade(engine)  # Alembic adds ours beside it
    with engine.connect() as conn:
        assert migrate.current_revision(conn) == SCHEMA_REVISION
        assert {"notes", "hits", "items"} <= set(sa.inspect(conn).get_table_names())
    engine.dispose()


def test_a_start_that_dies_creating_the_schema_leaves_nothing_half_made(
        store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # Dies after the tables, before the revision row: the next start must not
    # find tables without a revision, which Alembic would refuse to create again.
    def die(*_a: object, **_k: object) -> None:
        raise KeyboardInterrupt

    engine = create_engine(store_url)
    with monkeypatch.context() as m:
        m.setattr(migrate._alembic_version, "create", die)
        with pytest.raises(KeyboardInterrupt):
            migrate.upgrade(engine)
    with engine.connect() as conn:
        assert sa.inspect(conn).get_table_names() == []
    engine.dispose()
    s = Store.open(store_url)
    with s.engine.connect() as conn:
        assert migrate.current_revision(conn) == SCHEMA_REVISION
    s.close()


def test_reopening_does_not_migrate_again(store_url: str) -> None:
    Store.open(store_url).close()
    s = Store.open(store_url)
    with s.engine.connect() as conn:
        assert migrate.current_revision(conn) == SCHEMA_REVISION
    s.close()


def test_refuses_a_newer_schema(store_url: str) -> None:
    s = Store.open(store_url)
    with s.engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
    s.close()
    with pytest.raises(StorageError, match="newer than this news-monitor"):
        Store.open(store_url)


def test_items_are_stored_once_with_their_hits(store: Store) -> None:
    store.sync_feeds([(FEED, "Example")])
    new = [
        NewItem(item(1), (hit(),)),
        NewItem(item(2)),
        NewItem(item(3), (hit(), hit("btc-diversion"))),
    ]
    state = FeedState(FEED, etag='"e1"', last_status="200")
    assert store.commit_poll(state, new, RULES, T0) == (
        3, {"cpc-disruption": 2, "btc-diversion": 1})
    # The same entries again (a re-poll, another instance): nothing new.
    assert store.commit_poll(state, new, RULES, T0) == (0, {})
    assert store.totals() == {"items": 3, "hits": 3}
    assert store.item_counts() == {FEED: 3}
    assert store.feed_states()[FEED].etag == '"e1"'
    hits = store.list_hits()
    assert [h.rule_id for h in hits].count("cpc-disruption") == 2
    h = next(h for h in hits if h.rule_id == "btc-diversion")
    assert (h.severity, h.rule_version, h.guid, h.feed_name) == (
        Severity.HIGH,
        "v2",
        "guid-3",
        "Example",
    )
    assert h.evidence == (Evidence("title", "CPC", "CPC", 0, 3, 100.0),)
    assert h.matched_at == T0 and h.published == T0 - timedelta(hours=3)


def test_unseen_reports_new_guids_and_known_fingerprints(store: Store) -> None:
    store.sync_feeds([(FEED, None), ("https://other.example/rss", None)])
    store.commit_poll(FeedState(FEED), [NewItem(item(1))], RULES, T0)
    unseen, prints = store.unseen(
        FEED, [("guid-1", "fp-1"), ("guid-9", "fp-1"), ("guid-8", "fp-8")]
    )
    assert unseen == {"guid-9", "guid-8"} and prints == {"fp-1"}
    # Identity is per feed: another feed may carry the same guid.
    unseen, prints = store.unseen("https://other.example/rss", [("guid-1", "fp-1")])
    assert unseen == {"guid-1"} and prints == set()


def test_undated_items_take_the_time_first_seen(store: Store) -> None:
    store.sync_feeds([(FEED, None)])
    store.commit_poll(FeedState(FEED), [NewItem(item(1, published=None), (hit(),))], RULES, T0)
    assert store.list_hits()[0].published == T0


def test_feed_state_round_trips(store: Store) -> None:
    store.sync_feeds([(FEED, "Example")])
    state = FeedState(
        FEED,
        name="Example",
        etag="x",
        last_modified="Mon, 01 Jan 2026 00:00:00 GMT",
        last_polled=T0,
        last_ok=T0,
        last_status="timeout",
        error="took too long",
        failures=3,
        next_poll=T0 + timedelta(hours=2),
        disabled=None,
        newest_entry=T0,
        flag="failing",
        title="Example feed",
    )
    store.save_feed_states([state])
    assert store.feed_states([FEED])[FEED] == state


def test_sync_feeds_adds_and_renames(store: Store) -> None:
    store.sync_feeds([(FEED, "A")])
    store.sync_feeds([(FEED, "B"), ("https://new.example/rss", None)])
    states = store.feed_states()
    assert states[FEED].name == "B" and "https://new.example/rss" in states


def test_hits_filters(store: Store) -> None:
    store.sync_feeds([(FEED, None)])
    store.commit_poll(FeedState(FEED), [NewItem(item(1), (hit(),))], RULES, T0)
    store.commit_poll(
        FeedState(FEED), [NewItem(item(2), (hit("btc-diversion"),))], RULES, T0 + timedelta(days=2)
    )
    assert [h.guid for h in store.list_hits()] == ["guid-2", "guid-1"]
    assert [h.guid for h in store.list_hits(since=T0 + timedelta(days=1))] == ["guid-2"]
    assert [h.guid for h in store.list_hits(rule_id="cpc-disruption")] == ["guid-1"]


def test_iter_items_pages_through_everything(store: Store) -> None:
    store.sync_feeds([(FEED, None)])
    store.commit_poll(FeedState(FEED), [NewItem(item(n)) for n in range(25)], RULES, T0)
    got = list(store.iter_items(batch=7))
    assert len(got) == 25 and len({r["guid"] for r in got}) == 25
    assert got[0]["feed"] == FEED


def test_purge_removes_old_items_and_their_hits(store: Store) -> None:
    store.sync_feeds([(FEED, None)])
    store.commit_poll(FeedState(FEED), [NewItem(item(1), (hit(),))], RULES, T0)
    store.commit_poll(FeedState(FEED), [NewItem(item(2), (hit(),))], RULES, T0 + timedelta(days=9))
    assert store.purge_items(T0 + timedelta(days=1)) == 1
    assert store.totals() == {"items": 1, "hits": 1}


def test_daemon_state(store: Store) -> None:
    assert store.get_state("daemon") is None
    store.put_state("daemon", {"pid": 1})
    store.put_state("daemon", {"pid": 2, "rules": ["a"]})
    assert store.get_state("daemon") == {"pid": 2, "rules": ["a"]}


def test_unreachable_store_is_a_storage_error() -> None:
    with pytest.raises(StorageError):
        Store.open("postgresql+psycopg://nobody@127.0.0.1:1/none")


def _two_hits(store: Store) -> list[int]:
    store.sync_feeds([(FEED, None)])
    store.commit_poll(
        FeedState(FEED),
        [NewItem(item(1), (hit(),)), NewItem(item(2), (hit("btc-diversion"),))],
        RULES,
        T0,
    )
    return [h.id for h in store.list_hits()]


def test_pending_hits_follow_desk_rules_and_start(store: Store) -> None:
    _two_hits(store)
    assert store.register_desks(["energy"], T0 - timedelta(days=1)) == {
        "energy": T0 - timedelta(days=1)
    }
    # Registering again keeps the first time.
    assert store.register_desks(["energy"], T0 + timedelta(days=5))["energy"] == T0 - timedelta(
        days=1
    )
    since = T0 - timedelta(days=1)
    got = store.pending_hits("energy", "email", rule_ids=["btc-diversion"], since=since)
    assert [h.guid for h in got] == ["guid-2"]
    assert len(store.pending_hits("energy", "email", rule_ids=None, since=since)) == 2
    assert store.pending_hits("energy", "email", rule_ids=None, since=T0 + timedelta(1)) == []
    crit = store.pending_hits(
        "energy", "email", rule_ids=None, since=since, min_severity=Severity.CRITICAL
    )
    assert [h.rule_id for h in crit] == ["cpc-disruption"]


def test_a_hit_is_claimed_once_per_desk_and_channel(store: Store) -> None:
    ids = _two_hits(store)
    first = store.create_delivery("energy", "email", "digest", ids, T0)
    assert first is not None and sorted(first[1]) == sorted(ids)
    # Claimed already: a second digest (or another instance) gets nothing.
    assert store.create_delivery("energy", "email", "digest", ids, T0) is None
    # Another channel, another desk: independent.
    assert store.create_delivery("energy", "slack", "digest", ids, T0) is not None
    assert store.create_delivery("grain", "email", "digest", ids[:1], T0) is not None
    assert store.pending_hits("energy", "email", rule_ids=None, since=T0 - timedelta(1)) == []
    assert store.count_pending("energy", "email", rule_ids=None, since=T0 - timedelta(1)) == 2


def test_delivery_lifecycle_and_leases(store: Store) -> None:
    ids = _two_hits(store)
    made = store.create_delivery("energy", "email", "digest", ids, T0)
    assert made is not None
    delivery_id = made[0]
    got = store.claim_due_deliveries("a", now=T0)
    assert [d.id for d in got] == [delivery_id]
    assert store.claim_due_deliveries("b", now=T0) == []  # leased to "a"
    assert {h.id for h in store.delivery_hits(delivery_id)} == set(ids)
    store.mark_failed(
        delivery_id,
        "421 try later",
        permanent=False,
        next_attempt=T0 + timedelta(minutes=5),
        now=T0,
    )
    assert store.claim_due_deliveries("b", now=T0 + timedelta(minutes=1)) == []
    again = store.claim_due_deliveries("b", now=T0 + timedelta(minutes=6))
    assert [(d.id, d.attempts, d.last_error) for d in again] == [(delivery_id, 1, "421 try later")]
    store.mark_sent(delivery_id, T0 + timedelta(minutes=6))
    assert store.claim_due_deliveries("b", now=T0 + timedelta(hours=1)) == []
    sent = store.list_deliveries(states=["sent"])
    assert [(d.id, d.attempts) for d in sent] == [(delivery_id, 2)]
    assert store.count_pending("energy", "email", rule_ids=None, since=T0 - timedelta(1)) == 0


def test_expired_lease_is_taken_over(store: Store) -> None:
    made = store.create_delivery("energy", "email", "digest", _two_hits(store), T0)
    assert made is not None
    assert store.claim_due_deliveries("dead", now=T0, lease=60)
    assert store.claim_due_deliveries("alive", now=T0 + timedelta(seconds=30)) == []
    assert store.claim_due_deliveries("alive", now=T0 + timedelta(seconds=61))


def test_permanent_failure_is_not_retried(store: Store) -> None:
    made = store.create_delivery("energy", "slack", "digest", _two_hits(store), T0)
    assert made is not None
    store.mark_failed(made[0], "404 no_service", permanent=True, next_attempt=None, now=T0)
    assert store.claim_due_deliveries("x", now=T0 + timedelta(days=1)) == []
    assert [d.last_error for d in store.list_deliveries(states=["failed"])] == ["404 no_service"]


def test_silenced_hits_are_never_pending(store: Store) -> None:
    store.sync_feeds([(FEED, None)])
    sid = store.add_silence(
        "cpc-disruption",
        "energy",
        T0 + timedelta(days=2),
        "known story",
        now=T0 - timedelta(minutes=1),
    )
    store.commit_poll(FeedState(FEED), [NewItem(item(1), (hit(),))], RULES, T0)
    since = T0 - timedelta(days=1)
    assert store.pending_hits("energy", "email", rule_ids=None, since=since) == []
    assert len(store.pending_hits("grain", "email", rule_ids=None, since=since)) == 1
    assert [s.reason for s in store.list_silences(active_at=T0)] == ["known story"]
    assert store.remove_silence(sid, now=T0 + timedelta(hours=1))
    assert store.list_silences(active_at=T0 + timedelta(hours=2)) == []
    store.commit_poll(FeedState(FEED), [NewItem(item(2), (hit(),))], RULES, T0 + timedelta(hours=3))
    assert [h.guid for h in store.pending_hits("energy", "email", rule_ids=None, since=since)] == [
        "guid-2"
    ]


def test_due_feeds_are_leased_to_one_instance(store: Store) -> None:
    urls = [f"https://f{i}.example/rss" for i in range(4)]
    store.sync_feeds([(u, None) for u in urls])
    store.save_feed_states([FeedState(urls[3], next_poll=T0 + timedelta(hours=1))])
    store.save_feed_states([FeedState(urls[2], disabled="410 Gone")])
    a = store.claim_due_feeds("a", urls, now=T0, lease=60)
    assert sorted(a) == urls[:2]
    assert store.claim_due_feeds("b", urls, now=T0 + timedelta(seconds=10)) == []
    # "a" finishes one feed: its lease is released with the new state.
    store.save_feed_states([FeedState(urls[0], next_poll=T0 + timedelta(minutes=15))])
    # "a" dies holding urls[1]: once the lease expires, "b" takes it over.
    assert store.claim_due_feeds("b", urls, now=T0 + timedelta(seconds=61)) == [urls[1]]


def test_lease_delivery_is_a_compare_and_set(store: Store) -> None:
    made = store.create_delivery("energy", "email", "digest", _two_hits(store), T0)
    assert made is not None
    assert store.lease_delivery(made[0], "a", now=T0, lease=60)
    assert not store.lease_delivery(made[0], "b", now=T0 + timedelta(seconds=30))
    assert store.claim_due_deliveries("b", now=T0 + timedelta(seconds=30)) == []
    assert store.lease_delivery(made[0], "b", now=T0 + timedelta(seconds=61))  # expired
    store.mark_sent(made[0], T0 + timedelta(seconds=62))
    assert not store.lease_delivery(made[0], "b", now=T0 + timedelta(seconds=63))  # not pending


def test_delivery_payload_records_progress(store: Store) -> None:
    made = store.create_delivery("energy", "slack", "digest", _two_hits(store), T0)
    assert made is not None
    store.set_delivery_payload(made[0], {"parts_sent": 2})
    assert [d.payload for d in store.list_deliveries()] == [{"parts_sent": 2}]
    store.set_delivery_payload(made[0], None)
    assert [d.payload for d in store.list_deliveries()] == [None]


def test_store_survives_a_postgresql_restart(store: Store, store_url: str) -> None:
    from pg import RESTART

    if not store_url.startswith("postgresql") or "fn" not in RESTART:
        pytest.skip("needs the throwaway PostgreSQL server of tests/pg.py")
    store.sync_feeds([(FEED, None)])
    store.commit_poll(FeedState(FEED), [NewItem(item(1))], RULES, T0)
    RESTART["fn"]()
    # The pooled connections died with the server: the next call reconnects.
    store.commit_poll(FeedState(FEED), [NewItem(item(2))], RULES, T0)
    assert store.totals()["items"] == 2


def test_a_failing_hits_query_is_a_storage_error(tmp_path: Path) -> None:
    # list_hits runs on the driver's own connection: its errors are wrapped too.
    # (SQLite: a missing table is an OperationalError there, a programming error
    # on PostgreSQL, which stays unwrapped like every other.)
    store = Store.open(f"sqlite:///{tmp_path / 'monitor.db'}")
    with store.engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE hits RENAME TO hits_elsewhere"))
    with pytest.raises(StorageError, match=r"^database error: no such table: hits"):
        store.list_hits()
    store.close()


def test_an_item_s_outlet_is_stored_and_read_back(store: Store) -> None:
    store.sync_feeds([(FEED, "Aggregator")])
    new = [NewItem(item(1, outlet="Reuters"), (hit(),)), NewItem(item(2), (hit(),))]
    store.commit_poll(FeedState(FEED), new, RULES, T0)
    by_guid = {h.guid: h for h in store.list_hits()}
    assert (by_guid["guid-1"].outlet, by_guid["guid-1"].shown_outlet) == ("Reuters", "Reuters")
    assert (by_guid["guid-2"].outlet, by_guid["guid-2"].shown_outlet) == (None, "Aggregator")
    assert [(i["guid"], i["outlet"]) for i in store.iter_items()] == [
        ("guid-1", "Reuters"), ("guid-2", None)]
    hit_ids = [by_guid["guid-1"].id]
    made = store.create_delivery("desk", "email", "digest", hit_ids, now=T0)
    assert made is not None
    assert [h.outlet for h in store.delivery_hits(made[0])] == ["Reuters"]


def test_a_store_made_by_revision_0001_upgrades_on_open(store_url: str) -> None:
    # A database as the previous release left it: migrated to 0001, with an
    # item and its hit; opening it with this code adds items.outlet.
    from alembic import command

    engine = create_engine(store_url)
    with engine.begin() as conn:
        command.upgrade(migrate.alembic_config(conn), "0001")
    with engine.begin() as conn:
        assert migrate.current_revision(conn) == "0001"
        assert "outlet" not in {c["name"] for c in sa.inspect(conn).get_columns("items")}
        # no ids given: PostgreSQL's sequences must count these rows
        conn.execute(sa.text("INSERT INTO feeds (url, name, added_at, failures) "
                             "VALUES (:url, 'Old feed', :t, 0)"), {"url": FEED, "t": T0})
        conn.execute(sa.text(
            "INSERT INTO items (feed_id, guid, fingerprint, title, summary, link, published, "
            "first_seen, lang) SELECT id, 'old', 'fp-old', 'Old title', 'Old summary', NULL, "
            ":t, :t, 'en' FROM feeds"), {"t": T0})
        conn.execute(sa.text(
            "INSERT INTO hits (item_id, rule_id, rule_version, severity, score, evidence, "
            "matched_at) SELECT id, 'cpc-disruption', 'v1', 'critical', 90, '[]', :t "
            "FROM items"), {"t": T0})
    engine.dispose()
    s = Store.open(store_url)
    with s.engine.connect() as conn:
        assert migrate.current_revision(conn) == SCHEMA_REVISION
    [old] = s.list_hits()
    assert (old.guid, old.title, old.outlet, old.shown_outlet) == (
        "old", "Old title", None, "Old feed")
    s.commit_poll(FeedState(FEED), [NewItem(item(5, outlet="TASS"), (hit(),))], RULES, T0)
    assert [h.outlet for h in s.list_hits()] == ["TASS", None]
    s.close()
