"""The one class that talks SQL: :class:`Store`, on SQLite or PostgreSQL.

Every public method is one transaction, and SQLAlchemy's errors are wrapped
into :class:`~monitor.errors.StorageError` here and nowhere else. Nothing
outside ``monitor.store`` builds a query.
"""

from __future__ import annotations

import functools
import logging
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

import sqlalchemy as sa

from monitor.errors import StorageError
from monitor.models import (
    Delivery,
    FeedState,
    NewItem,
    Report,
    Severity,
    Silence,
    StoredHit,
)
from monitor.store import direct, migrate
from monitor.store.schema import (
    daemon_state,
    deliveries,
    delivery_hits,
    desks,
    feedback,
    feeds,
    hits,
    items,
    silences,
    story_alerts,
)

log = logging.getLogger(__name__)

#: Story placement: the stored reports it is handed (the newest of the window: a
#: desk sees tens to hundreds of hits a day; the placer keeps an index of them),
#: and the PostgreSQL advisory lock key that puts placements in a row.
Placer = Callable[[Sequence[Report], Sequence[Report]], list[int]]
MAX_PLACED = 2000
STORY_LOCK = 0x6E6D5354  # "nmST"

P = ParamSpec("P")
T = TypeVar("T")
S = TypeVar("S", bound="Store")

_GUID_BATCH = 500  # bound on IN (...) lists: SQLite allows 32,766 parameters
SQLITE_FULL = 13
# The WAL is bounded to ~0.5 MiB: checkpointed into the database every 128 pages
# (SQLite's default, 1,000 pages, let a daemon's WAL, which is never deleted
# while it runs, hold ~4 MiB the database file did not, so that a full disk
# needed that much room again to checkpoint; at 256 pages, a poll's items with
# their stories and search index needed more than the 1 MiB an operator frees
# in tests/test_disk_full.py), and cut back to 1 MiB once checkpointed, instead
# of staying allocated until the last connection closes.
WAL_AUTOCHECKPOINT = 128  # pages
JOURNAL_SIZE_LIMIT = 1024 * 1024  # bytes


def _wrap(method: Callable[Concatenate[S, P], T]) -> Callable[Concatenate[S, P], T]:
    """Turn database errors (not programming errors) into StorageError: SQLAlchemy's,
    and the driver's own from a query run on its connection (:mod:`monitor.store.direct`)."""

    @functools.wraps(method)
    def wrapper(self: S, /, *args: P.args, **kwargs: P.kwargs) -> T:
        try:
            try:
                return method(self, *args, **kwargs)
            except sa.exc.OperationalError as e:
                # Every method is one transaction, rolled back by now: once the
                # WAL is folded into the database and truncated, the little room
                # freed on a full disk is room for the one retry.
                if not (_disk_full(e) and self._checkpoint()):
                    raise
                return method(self, *args, **kwargs)
        except (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.DatabaseError) as e:
            if isinstance(e, sa.exc.ProgrammingError):
                raise
            raise StorageError(f"database error: {_short(e)}") from e
        except Exception as e:
            dbapi = self.engine.dialect.loaded_dbapi
            if isinstance(e, dbapi.Error) and not isinstance(e, dbapi.ProgrammingError):
                raise StorageError(f"database error: {direct.first_line(e)}") from e
            raise

    return wrapper


def _disk_full(e: sa.exc.DBAPIError) -> bool:
    """SQLITE_FULL: "database or disk is full" (no room for the WAL or the file)."""
    return getattr(e.orig, "sqlite_errorcode", None) == SQLITE_FULL or \
        "database or disk is full" in str(e.orig)


def _short(e: sa.exc.DBAPIError) -> str:
    return direct.first_line(e.orig) if e.orig is not None else str(e)


def _now() -> datetime:
    return datetime.now(UTC)


def create_engine(url: str, timeout: float = 30.0) -> sa.Engine:
    """An engine tuned per backend: SQLite gets WAL, a busy timeout and foreign keys."""
    if url.startswith("sqlite"):
        db = sa.engine.make_url(url).database
        if db and db != ":memory:":
            try:
                Path(db).parent.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise StorageError(f"cannot open the store: cannot create folder "
                                   f"{Path(db).parent}: {e.strerror}") from e
        engine = sa.create_engine(url, connect_args={"timeout": timeout})

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")  # durable at checkpoints; safe with WAL
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
            cur.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT}")
            cur.execute(f"PRAGMA journal_size_limit={JOURNAL_SIZE_LIMIT}")
            cur.close()

        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return sa.create_engine(url, pool_pre_ping=True,  # survives a server restart
                            connect_args={"connect_timeout": max(1, int(timeout))})


def _insert_or_skip(dialect: str, table: sa.Table) -> sa.Insert:
    """INSERT ... ON CONFLICT DO NOTHING, for both backends."""
    if dialect == "postgresql":
        from sqlalchemy.dialects import postgresql
        return postgresql.insert(table).on_conflict_do_nothing()
    from sqlalchemy.dialects import sqlite
    return sqlite.insert(table).on_conflict_do_nothing()


def _status_text(value: int | str | None) -> str | None:
    return None if value is None else str(value)


class Store:
    """All persistent state: feeds and their fetch state, items, hits, deliveries.

    Open with :meth:`open`, which applies migrations. Methods raise
    :class:`~monitor.errors.StorageError` when the database fails.
    """

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        # Feed rows are never deleted, so a URL's id never changes: remembering
        # it saves a query per feed in a poll (filled by sync_feeds and feed_states).
        self._feed_ids: dict[str, int] = {}
        #: item id -> its Report as placement last read it: a poll's commits read the
        #: same window again and again (a cold poll: 356 times), so each stored
        #: report is fetched and built once (its text never changes, its story is
        #: checked each time).
        self._placed: dict[int, Report] = {}

    @classmethod
    def open(cls, url: str, *, migrate_schema: bool = True, timeout: float = 30.0) -> Store:
        """Connect (``timeout``: how long to wait for a lock or a connection) and migrate."""
        try:
            engine = create_engine(url, timeout)
            if migrate_schema:
                migrate.upgrade(engine)
        except sa.exc.DBAPIError as e:  # unreachable, locked, not a database at all...
            raise StorageError(f"cannot open the store: {_short(e)}") from e
        except sa.exc.ArgumentError as e:
            raise StorageError(f"bad storage URL: {e}") from e
        return cls(engine)

    def close(self) -> None:
        self.engine.dispose()

    def _checkpoint(self) -> bool:
        """SQLite: fold the WAL into the database and truncate it to nothing
        (``wal_checkpoint(TRUNCATE)``), after a write found the disk full.
        True when it completed; any failure is the caller's original error."""
        if self.dialect != "sqlite":
            return False
        try:
            with self.engine.connect() as conn:
                busy, frames, done = conn.exec_driver_sql(
                    "PRAGMA wal_checkpoint(TRUNCATE)").one()
        except sa.exc.DBAPIError as e:
            log.debug("disk full; the WAL checkpoint failed too: %s", _short(e))
            return False
        log.debug("disk full; WAL checkpoint: busy %s, %s frames, %s moved", busy, frames, done)
        return not busy

    # -- feeds ------------------------------------------------------------------

    @_wrap
    def sync_feeds(self, configured: Iterable[tuple[str, str | None]],
                   now: datetime | None = None) -> None:
        """Make sure each configured (url, name) has a row; update changed names."""
        now = now or _now()
        wanted = dict(configured)
        with self.engine.begin() as conn:
            rows = conn.execute(sa.select(feeds.c.url, feeds.c.name, feeds.c.id)).all()
            existing = {url: name for url, name, _ in rows}
            self._feed_ids.update((url, feed_id) for url, _, feed_id in rows)
            new = [{"url": u, "name": n, "added_at": now}
                   for u, n in wanted.items() if u not in existing]
            if new:
                conn.execute(_insert_or_skip(self.dialect, feeds), new)
            renamed = [{"b_url": url, "name": name} for url, name in wanted.items()
                       if url in existing and existing[url] != name]
            if renamed:
                conn.execute(feeds.update().where(feeds.c.url == sa.bindparam("b_url")),
                             renamed)

    @_wrap
    def feed_states(self, urls: Iterable[str] | None = None) -> dict[str, FeedState]:
        query = sa.select(feeds)
        if urls is not None:
            query = query.where(feeds.c.url.in_(list(urls)))
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        self._feed_ids.update((row.url, row.id) for row in rows)
        return {row.url: _feed_state(row) for row in rows}

    @_wrap
    def claim_due_feeds(self, owner: str, urls: Sequence[str], *, now: datetime | None = None,
                        lease: float = 120.0) -> list[str]:
        """Lease the feeds among ``urls`` that are due and not leased by another instance.

        One UPDATE per batch whose WHERE re-checks the lease, so when several
        daemons share a PostgreSQL database each due feed goes to exactly one
        of them (a concurrent UPDATE waits for the row lock, then sees the new
        lease and skips it). A dead instance's leases expire after ``lease``
        seconds. Saving the feed's state releases its lease.
        """
        now = now or _now()
        until = now + timedelta(seconds=lease)
        got: list[str] = []
        with self.engine.begin() as conn:
            for i in range(0, len(urls), _GUID_BATCH):
                stmt = (feeds.update()
                        .where(feeds.c.url.in_(list(urls[i:i + _GUID_BATCH])),
                               feeds.c.disabled.is_(None),
                               sa.or_(feeds.c.next_poll.is_(None), feeds.c.next_poll <= now),
                               sa.or_(feeds.c.lease_until.is_(None), feeds.c.lease_until < now,
                                      feeds.c.lease_owner == owner))
                        .values(lease_owner=owner, lease_until=until)
                        .returning(feeds.c.url))
                got.extend(conn.execute(stmt).scalars())
        return got

    @_wrap
    def lease_owners(self, *, now: datetime | None = None) -> set[str]:
        """Who holds an unexpired lease on a feed or a delivery."""
        now = now or _now()
        with self.engine.connect() as conn:
            return {owner for table in (feeds, deliveries) for owner in conn.execute(
                sa.select(table.c.lease_owner).distinct().where(
                    table.c.lease_owner.is_not(None), table.c.lease_until >= now)).scalars()}

    @_wrap
    def release_leases(self, owners: Sequence[str]) -> tuple[int, int]:
        """Give up the leases of ``owners`` (instances known to be dead) at once, rather
        than when they expire: their feeds are due again and their deliveries pending.
        Returns (feeds, deliveries) released."""
        if not owners:
            return 0, 0
        wanted = list(owners)
        with self.engine.begin() as conn:
            fed = conn.execute(feeds.update().where(feeds.c.lease_owner.in_(wanted))
                               .values(lease_owner=None, lease_until=None)).rowcount
            sent = conn.execute(deliveries.update().where(deliveries.c.lease_owner.in_(wanted))
                                .values(lease_owner=None, lease_until=None)).rowcount
        return fed, sent

    @_wrap
    def renew_feed_leases(self, owner: str, *, now: datetime | None = None,
                          lease: float = 120.0) -> int:
        """Extend ``owner``'s unexpired feed leases to ``lease`` seconds from now: a
        long cycle's queued feeds stay its own. Returns how many it holds."""
        now = now or _now()
        with self.engine.begin() as conn:
            return conn.execute(
                feeds.update().where(feeds.c.lease_owner == owner, feeds.c.lease_until >= now)
                .values(lease_until=now + timedelta(seconds=lease))).rowcount

    @_wrap
    def save_feed_states(self, states: Sequence[FeedState]) -> None:
        """Record the outcome of polls that stored nothing (304s, failures), in one
        transaction (one statement).

        A poll where most feeds answer 304 saves their states in batches: one
        transaction per feed was most of the cost of such a poll.
        """
        if not states:
            return
        with self.engine.begin() as conn:
            conn.execute(self._state_by_url,
                         [{"b_url": s.url, **_state_values(s)} for s in states])

    @_wrap
    def unseen(self, feed_url: str, entries: Sequence[tuple[str, str]]
               ) -> tuple[set[str], set[str]]:
        """Of (guid, fingerprint) pairs, which guids are not stored yet, and which
        fingerprints already are (an entry republished under a new id)."""
        guids = [g for g, _ in entries]
        prints = list({f for _, f in entries})
        known: set[str] = set()
        seen_prints: set[str] = set()
        with self.engine.connect() as conn:
            feed_id = self._feed_id(conn, feed_url)
            if feed_id is None:
                return set(guids), set()
            for i in range(0, len(guids), _GUID_BATCH):
                known.update(conn.execute(
                    sa.select(items.c.guid).where(items.c.feed_id == feed_id,
                                                  items.c.guid.in_(guids[i:i + _GUID_BATCH]))
                ).scalars())
            for i in range(0, len(prints), _GUID_BATCH):
                seen_prints.update(conn.execute(
                    sa.select(items.c.fingerprint).where(
                        items.c.feed_id == feed_id,
                        items.c.fingerprint.in_(prints[i:i + _GUID_BATCH]))
                ).scalars())
        return set(guids) - known, seen_prints

    def commit_poll(self, state: FeedState, new: Sequence[NewItem],
                    rules: Mapping[str, tuple[str, Severity]],
                    now: datetime | None = None, *, place: Placer | None = None,
                    story_window: timedelta = timedelta(hours=72)
                    ) -> tuple[int, dict[str, int]]:
        """Store one feed's poll: :meth:`commit_polls` of one."""
        return self.commit_polls([(state, new)], rules, now, place=place,
                                 story_window=story_window)[0]

    @_wrap
    def commit_polls(self, polls: Sequence[tuple[FeedState, Sequence[NewItem]]],
                     rules: Mapping[str, tuple[str, Severity]],
                     now: datetime | None = None, *, place: Placer | None = None,
                     story_window: timedelta = timedelta(hours=72)
                     ) -> list[tuple[int, dict[str, int]]]:
        """Store feeds' polls (each a feed's new state and new items), their hits
        and stories, in one transaction.

        A feed's poll is all or nothing: killed half-way, the validators are not
        advanced either, so the next poll fetches the same entries again.
        ``rules`` maps a rule id to (version, severity). An item already stored
        (another instance was faster) is skipped with its hits. Each new item
        with hits joins a story: ``place`` chooses it among the stored items
        published within ``story_window`` of it, in the same transaction, once
        for all the polls (a placement reads the window: a cold poll's feeds
        queue up, and storing them together reads it once).
        Returns (items stored, hits stored by rule id) for each poll, in order.
        """
        now = now or _now()
        out: list[tuple[int, dict[str, int]]] = [(0, {})] * len(polls)
        placing: list[list[tuple[int, NewItem]]] = [[] for _ in polls]
        with self.engine.begin() as conn:
            # Feeds in one order (their URLs): two instances storing the same feeds
            # at once (a `poll` beside a daemon) wait for each other's rows, never
            # deadlock on them.
            for n in sorted(range(len(polls)), key=lambda n: polls[n][0].url):
                state, new = polls[n]
                feed_id = self._feed_id(conn, state.url)
                if feed_id is None:
                    raise StorageError(f"{state.url}: feed is not in the store")
                out[n], ids = self._store_items(conn, feed_id, new, rules, now)
                placing[n] = [(ids[i.item.guid], i) for i in new
                              if i.matches and i.item.guid in ids]
                conn.execute(self._state_by_id, {"b_id": feed_id, **_state_values(state)})
            # Placed in the order the feeds came, as they would be one by one.
            fresh = [p for poll in placing for p in poll]
            if fresh and place is not None:
                self._place_stories(conn, fresh, place, story_window, now)
        return out

    def _store_items(self, conn: sa.Connection, feed_id: int, new: Sequence[NewItem],
                     rules: Mapping[str, tuple[str, Severity]], now: datetime
                     ) -> tuple[tuple[int, dict[str, int]], dict[str, int]]:
        """One feed's new items and hits: (items stored, hits by rule id), and the
        stored items' ids by guid."""
        rows = [{
            "feed_id": feed_id, "guid": n.item.guid, "fingerprint": n.item.fingerprint,
            "title": n.item.title, "summary": n.item.summary, "link": n.item.link,
            "published": n.item.published or now, "first_seen": now, "lang": n.item.lang,
            "outlet": n.item.outlet, "content": n.item.content or None,
        } for n in new]
        ids: dict[str, int] = {}
        if rows:
            # SQLAlchemy's "insertmanyvalues" batches this, RETURNING included;
            # rows skipped on conflict return nothing.
            ids = {r.guid: r.id for r in conn.execute(self._insert_items, rows)}
        hit_rows: list[dict[str, Any]] = []  # SQLAlchemy's parameter rows
        for n in new:
            item_id = ids.get(n.item.guid)
            if item_id is None:
                continue
            for m in n.matches:
                version, severity = rules[m.rule_id]
                hit_rows.append({
                    "item_id": item_id, "rule_id": m.rule_id, "rule_version": version,
                    "severity": str(severity), "score": round(m.score, 2),
                    "evidence": [e.to_dict() for e in m.evidence], "matched_at": now,
                })
        stored_hits: dict[str, int] = {}
        if hit_rows:
            conn.execute(self._insert_hits, hit_rows)
            stored_hits = dict(Counter(row["rule_id"] for row in hit_rows))
        return (len(ids), stored_hits), ids

    def _place_stories(self, conn: sa.Connection, new: Sequence[tuple[int, NewItem]],
                       place: Placer, window: timedelta, now: datetime) -> None:
        """Give each new item with hits its story, inside the poll's transaction.

        Race-safe: on PostgreSQL one advisory lock (held to the commit) puts
        every instance's placements in a row, so two reports of one event
        stored at once cannot start two stories; SQLite has one writer anyway
        (this transaction already wrote its items).
        """
        if self.dialect == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": STORY_LOCK})
        fresh = [Report(item_id=item_id, title=n.item.title,
                        summary=_lede(n.item.summary, n.item.content),
                        link=n.item.link, published=n.item.published or now, lang=n.item.lang,
                        rules=tuple(m.rule_id for m in n.matches)) for item_id, n in new]
        lo = min(r.published for r in fresh) - window
        hi = max(r.published for r in fresh) + window
        window_rows = conn.execute(self._story_window, {"lo": lo, "hi": hi}).all()
        known = self._placed
        if len(known) > 2 * MAX_PLACED:  # what left the window goes
            self._placed = known = {r.id: known[r.id] for r in window_rows if r.id in known}
        missing = [r.id for r in window_rows
                   if r.id not in known or known[r.id].story != r.story_id]
        for i in range(0, len(missing), _GUID_BATCH):
            batch = {"ids": missing[i:i + _GUID_BATCH]}
            # The rules each hit: an item's hits are stored with it and never change.
            rules: dict[int, list[str]] = {}
            for h in conn.execute(self._story_rules, batch):
                rules.setdefault(h.item_id, []).append(h.rule_id)
            for r in conn.execute(self._story_reports, batch):
                known[r.id] = Report(item_id=r.id, title=r.title,
                                     summary=_lede(r.summary, r.lede), link=r.link,
                                     published=r.published, lang=r.lang,
                                     rules=tuple(rules.get(r.id, ())), story=r.story_id)
        placed = [known[r.id] for r in window_rows]
        chosen = place(fresh, placed)
        conn.execute(self._set_story, [{"b_id": r.item_id, "b_story": story}
                                       for r, story in zip(fresh, chosen, strict=True)])

    def _feed_id(self, conn: sa.Connection, url: str) -> int | None:
        feed_id = self._feed_ids.get(url)
        if feed_id is None:
            feed_id = conn.execute(sa.select(feeds.c.id).where(feeds.c.url == url)).scalar()
            if feed_id is not None:
                self._feed_ids[url] = feed_id
        return feed_id

    # The poll's statements, built once: building one (and its cache key) cost
    # more than running it. Values come as bound parameters.

    @functools.cached_property
    def _story_window(self) -> sa.Select[Any]:
        """The placed reports published between :lo and :hi, newest first: ids only."""
        return (sa.select(items.c.id, items.c.story_id)
                .where(items.c.story_id.is_not(None),
                       items.c.published >= sa.bindparam("lo", type_=items.c.published.type),
                       items.c.published <= sa.bindparam("hi", type_=items.c.published.type))
                .order_by(items.c.published.desc()).limit(MAX_PLACED))

    @functools.cached_property
    def _story_reports(self) -> sa.Select[Any]:
        """What placement reads of the placed reports :ids (a lede of the content)."""
        return sa.select(items.c.id, items.c.title, items.c.summary, items.c.link,
                         items.c.published, items.c.lang, items.c.story_id,
                         sa.func.substr(items.c.content, 1, _LEDE_CHARS).label("lede")
                         ).where(items.c.id.in_(sa.bindparam("ids", expanding=True)))

    @functools.cached_property
    def _story_rules(self) -> sa.Select[Any]:
        """The rules the placed reports :ids hit (the hits' item_id-first unique index)."""
        return (sa.select(hits.c.item_id, hits.c.rule_id)
                .where(hits.c.item_id.in_(sa.bindparam("ids", expanding=True)))
                .order_by(hits.c.item_id, hits.c.rule_id))

    @functools.cached_property
    def _set_story(self) -> sa.Update:
        return (items.update().where(items.c.id == sa.bindparam("b_id"))
                .values(story_id=sa.bindparam("b_story")))

    @functools.cached_property
    def _insert_items(self) -> Any:  # ReturningInsert: generic as 2.0 and 2.1 disagree
        return (_insert_or_skip(self.dialect, items)
                .returning(items.c.id, items.c.guid))

    @functools.cached_property
    def _insert_hits(self) -> sa.Insert:
        return _insert_or_skip(self.dialect, hits)

    @functools.cached_property
    def _state_by_url(self) -> sa.Update:
        return feeds.update().where(feeds.c.url == sa.bindparam("b_url"))

    @functools.cached_property
    def _state_by_id(self) -> sa.Update:
        return feeds.update().where(feeds.c.id == sa.bindparam("b_id"))

    # -- hits and items -------------------------------------------------------

    @_wrap
    def list_hits(self, *, since: datetime | None = None, rule_id: str | None = None,
                  limit: int | None = None) -> list[StoredHit]:
        """Stored hits, newest match first (the ``hits`` command's query, which it
        also runs without a Store: :mod:`monitor.store.direct`)."""
        with self.engine.connect() as conn:
            return direct.fetch_hits(conn.connection.dbapi_connection, self.dialect,
                                     since=since, rule_id=rule_id, limit=limit)

    @_wrap
    def search_hits(self, *, rule_ids: Iterable[str] | None = None, q: str | None = None,
                    since: datetime | None = None, before: int | None = None,
                    limit: int = 50) -> list[StoredHit]:
        """The web view's hit list (:func:`monitor.store.direct.search_hits`)."""
        with self.engine.connect() as conn:
            return direct.search_hits(conn.connection.dbapi_connection, self.dialect,
                                      rule_ids=rule_ids, q=q, since=since, before=before,
                                      limit=limit)

    @_wrap
    def get_hit(self, hit_id: int) -> StoredHit | None:
        with self.engine.connect() as conn:
            row = conn.execute(_hit_query().where(hits.c.id == hit_id)).first()
        return None if row is None else _stored_hit(row)

    @_wrap
    def story_sizes(self, stories: Iterable[int]) -> dict[int, int]:
        """How many items (reports) each of these stories holds."""
        wanted = sorted(set(stories))
        if not wanted:
            return {}
        query = (sa.select(items.c.story_id, sa.func.count())
                 .where(items.c.story_id.in_(wanted)).group_by(items.c.story_id))
        with self.engine.connect() as conn:
            return {story: n for story, n in conn.execute(query)}

    @_wrap
    def story_hits(self, hit: StoredHit, limit: int = 100) -> list[StoredHit]:
        """The other items' hits of ``hit``'s story, one per item (its best), earliest
        first: every outlet's report of the same event."""
        if hit.story is None:
            return []
        query = (_hit_query().where(items.c.story_id == hit.story, items.c.id != hit.item_id)
                 .order_by(items.c.published, hits.c.score.desc(), hits.c.id)
                 .limit(limit * 4))
        with self.engine.connect() as conn:
            out: dict[int, StoredHit] = {}
            for row in conn.execute(query):
                h = _stored_hit(row)
                out.setdefault(h.item_id, h)
        return list(out.values())[:limit]

    @_wrap
    def hit_deliveries(self, hit_id: int) -> list[Delivery]:
        """The deliveries that carried (or hold) one hit, newest first."""
        query = (sa.select(deliveries)
                 .join(delivery_hits, delivery_hits.c.delivery_id == deliveries.c.id)
                 .where(delivery_hits.c.hit_id == hit_id).order_by(deliveries.c.id.desc()))
        with self.engine.connect() as conn:
            return [_delivery(row) for row in conn.execute(query)]

    # -- feedback ---------------------------------------------------------------

    @_wrap
    def add_feedback(self, hit_id: int, verdict: str, who: str | None = None,
                     now: datetime | None = None) -> bool:
        """Record a verdict (``relevant`` or ``noise``) on a hit; False if no such hit."""
        if verdict not in ("relevant", "noise"):
            raise ValueError(f"verdict {verdict!r} is neither relevant nor noise")
        with self.engine.begin() as conn:
            if conn.execute(sa.select(hits.c.id).where(hits.c.id == hit_id)).first() is None:
                return False
            conn.execute(feedback.insert().values(hit_id=hit_id, verdict=verdict, who=who,
                                                  at=now or _now()))
        return True

    @_wrap
    def feedback_history(self, hit_id: int) -> list[tuple[str, str | None, datetime]]:
        """Every verdict on a hit, (verdict, who, at), newest first."""
        query = (sa.select(feedback.c.verdict, feedback.c.who, feedback.c.at)
                 .where(feedback.c.hit_id == hit_id).order_by(feedback.c.id.desc()))
        with self.engine.connect() as conn:
            return [(v, w, a) for v, w, a in conn.execute(query)]

    def _latest_feedback(self) -> sa.Subquery:
        newest = (sa.select(sa.func.max(feedback.c.id).label("id"))
                  .group_by(feedback.c.hit_id).subquery())
        return (sa.select(feedback.c.hit_id, feedback.c.verdict)
                .join(newest, newest.c.id == feedback.c.id).subquery())

    @_wrap
    def feedback_counts(self, rule_id: str) -> dict[str, int]:
        """How many of a rule's hits were last judged ``relevant`` and ``noise``."""
        latest = self._latest_feedback()
        query = (sa.select(latest.c.verdict, sa.func.count())
                 .join(hits, hits.c.id == latest.c.hit_id)
                 .where(hits.c.rule_id == rule_id).group_by(latest.c.verdict))
        counts = {"relevant": 0, "noise": 0}
        with self.engine.connect() as conn:
            for verdict, n in conn.execute(query):
                counts[verdict] = n
        return counts

    @_wrap
    def judged_hits(self, *, rule_id: str | None = None, verdict: str | None = None,
                    limit: int | None = None) -> list[StoredHit]:
        """Hits with a verdict (their latest: ``verdict`` only), newest first."""
        latest = self._latest_feedback()
        query = (_hit_query().join(latest, latest.c.hit_id == hits.c.id)
                 .order_by(hits.c.id.desc()))
        if rule_id is not None:
            query = query.where(hits.c.rule_id == rule_id)
        if verdict is not None:
            query = query.where(latest.c.verdict == verdict)
        if limit is not None:
            query = query.limit(limit)
        with self.engine.connect() as conn:
            return [_stored_hit(row) for row in conn.execute(query)]

    @_wrap
    def count_hits(self, *, rule_id: str, since: datetime) -> int:
        """How many hits of a rule were matched since ``since``."""
        query = (sa.select(sa.func.count()).select_from(hits)
                 .where(hits.c.rule_id == rule_id, hits.c.matched_at >= since))
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    @_wrap
    def rule_hit_keys(self, rule_id: str, min_item_id: int) -> set[tuple[str, str]]:
        """The (guid, feed URL) of a rule's hits on items from ``min_item_id`` on."""
        query = (sa.select(items.c.guid, feeds.c.url)
                 .select_from(hits.join(items, items.c.id == hits.c.item_id)
                              .join(feeds, feeds.c.id == items.c.feed_id))
                 .where(hits.c.rule_id == rule_id, hits.c.item_id >= min_item_id))
        with self.engine.connect() as conn:
            return {(g, u) for g, u in conn.execute(query)}

    @_wrap
    def recent_items(self, limit: int) -> list[dict[str, Any]]:
        """The newest ``limit`` stored items, newest first (a bounded backtest),
        records as :meth:`iter_items` gives them."""
        query = (sa.select(items.c.id, items.c.guid, items.c.title, items.c.summary,
                           items.c.link, items.c.published, items.c.lang,
                           items.c.outlet, feeds.c.url.label("feed"))
                 .join(feeds, feeds.c.id == items.c.feed_id)
                 .order_by(items.c.id.desc()).limit(limit))
        with self.engine.connect() as conn:
            return [r._asdict() for r in conn.execute(query)]

    @_wrap
    def iter_items(self, *, since: datetime | None = None,
                   batch: int = 2000) -> Iterator[dict[str, Any]]:
        """Stored items (id, guid, title, summary, link, published, lang, outlet, feed,
        content: "" where none was fetched), oldest first."""
        last_id = 0
        while True:
            query = (sa.select(items.c.id, items.c.guid, items.c.title, items.c.summary,
                               items.c.link, items.c.published, items.c.lang,
                               items.c.outlet, feeds.c.url.label("feed"),
                               sa.func.coalesce(items.c.content, "").label("content"))
                     .join(feeds, feeds.c.id == items.c.feed_id)
                     .where(items.c.id > last_id).order_by(items.c.id).limit(batch))
            if since is not None:
                query = query.where(items.c.first_seen >= since)
            with self.engine.connect() as conn:
                rows = [r._asdict() for r in conn.execute(query)]
            if not rows:
                return
            yield from rows
            last_id = rows[-1]["id"]

    @_wrap
    def recent_published(self, per_feed: int = 20) -> dict[str, list[datetime]]:
        """The newest ``per_feed`` publication times of each feed, newest first."""
        ranked = (sa.select(items.c.feed_id, items.c.published,
                            sa.func.row_number().over(partition_by=items.c.feed_id,
                                                      order_by=items.c.published.desc())
                            .label("n"))
                  .subquery())
        query = (sa.select(feeds.c.url, ranked.c.published)
                 .join(ranked, ranked.c.feed_id == feeds.c.id)
                 .where(ranked.c.n <= per_feed)
                 .order_by(feeds.c.url, ranked.c.published.desc()))
        out: dict[str, list[datetime]] = {}
        with self.engine.connect() as conn:
            for url, published in conn.execute(query):
                out.setdefault(url, []).append(
                    published.replace(tzinfo=UTC) if published.tzinfo is None else published)
        return out

    @_wrap
    def set_flag(self, url: str, flag: str | None) -> None:
        with self.engine.begin() as conn:
            conn.execute(feeds.update().where(feeds.c.url == url).values(flag=flag))

    @_wrap
    def item_counts(self) -> dict[str, int]:
        """How many entries of each feed are stored, by feed URL."""
        query = (sa.select(feeds.c.url, sa.func.count(items.c.id))
                 .select_from(feeds.outerjoin(items, items.c.feed_id == feeds.c.id))
                 .group_by(feeds.c.url))
        with self.engine.connect() as conn:
            return {url: n for url, n in conn.execute(query)}

    @_wrap
    def totals(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            return {
                "items": conn.execute(sa.select(sa.func.count()).select_from(items)).scalar_one(),
                "hits": conn.execute(sa.select(sa.func.count()).select_from(hits)).scalar_one(),
            }

    @_wrap
    def feed_health(self, urls: Iterable[str]) -> tuple[dict[str, int], datetime | None]:
        """How many of the feeds at ``urls`` are ``disabled`` (410 Gone), ``failing``
        (their last fetch failed) or ``silent`` (flagged so, and neither of the
        others), each state present; and the latest time any of them was polled."""
        state = sa.case((feeds.c.disabled.is_not(None), "disabled"),
                        (feeds.c.error.is_not(None), "failing"),
                        (feeds.c.flag.startswith("silent"), "silent"), else_="ok")
        counts = dict.fromkeys(("disabled", "failing", "silent"), 0)
        latest: datetime | None = None
        wanted = list(urls)
        with self.engine.connect() as conn:
            for start in range(0, len(wanted), _GUID_BATCH):
                batch = wanted[start:start + _GUID_BATCH]
                query = (sa.select(state, sa.func.count(), sa.func.max(feeds.c.last_polled))
                         .where(feeds.c.url.in_(batch)).group_by(state))
                for name, n, polled in conn.execute(query):
                    if name in counts:
                        counts[name] += n
                    if polled is not None:
                        polled = polled.replace(tzinfo=UTC) if polled.tzinfo is None else polled
                        latest = polled if latest is None else max(latest, polled)
        return counts, latest

    @_wrap
    def purge_items(self, before: datetime) -> int:
        """Delete items first seen before ``before`` (their hits go with them)."""
        with self.engine.begin() as conn:
            result = conn.execute(items.delete().where(items.c.first_seen < before))
            return result.rowcount or 0

    # -- desks, deliveries and silences ---------------------------------------

    @_wrap
    def register_desks(self, names: Iterable[str], now: datetime | None = None
                       ) -> dict[str, datetime]:
        """Remember when each desk was first seen; return every desk's first-seen time.

        A desk starts with the hits matched after it first appeared, not with
        the whole history (SPEC).
        """
        now = now or _now()
        names = list(names)
        with self.engine.begin() as conn:
            if names:
                conn.execute(_insert_or_skip(self.dialect, desks),
                             [{"name": n, "first_seen": now} for n in names])
            return dict(conn.execute(sa.select(desks.c.name, desks.c.first_seen)).all())

    def _pending_query(self, desk: str, channel: str, rule_ids: Sequence[str] | None,
                       since: datetime, *, new_stories: bool = False) -> sa.Select[Any]:
        claimed = (sa.select(delivery_hits.c.hit_id)
                   .where(delivery_hits.c.desk == desk, delivery_hits.c.channel == channel,
                          delivery_hits.c.hit_id == hits.c.id))
        silenced = (sa.select(silences.c.id)
                    .where(silences.c.rule_id == hits.c.rule_id,
                           sa.or_(silences.c.desk.is_(None), silences.c.desk == desk),
                           silences.c.created_at <= hits.c.matched_at,
                           silences.c.until > hits.c.matched_at))
        query = _hit_query().where(hits.c.matched_at >= since, ~sa.exists(claimed),
                                   ~sa.exists(silenced))
        if new_stories:  # an alert: not of a story already alerted on this desk and channel
            alerted = (sa.select(story_alerts.c.story_id)
                       .where(story_alerts.c.desk == desk, story_alerts.c.channel == channel,
                              story_alerts.c.story_id == sa.func.coalesce(items.c.story_id,
                                                                          items.c.id)))
            query = query.where(~sa.exists(alerted))
        if rule_ids is not None:
            query = query.where(hits.c.rule_id.in_(list(rule_ids)))
        return query

    @_wrap
    def pending_hits(self, desk: str, channel: str, *, rule_ids: Sequence[str] | None,
                     since: datetime, min_severity: Severity | None = None,
                     matched_after: datetime | None = None,
                     limit: int | None = None, new_stories: bool = False) -> list[StoredHit]:
        """Hits for a desk and channel not yet claimed by any delivery, newest first.

        ``rule_ids`` None means every rule. Hits of a silenced rule, matched
        while the silence lasted, are never pending. ``new_stories``: only hits
        of stories no alert has claimed for this desk and channel yet.
        """
        query = self._pending_query(desk, channel, rule_ids, since, new_stories=new_stories)
        if min_severity is not None:
            query = query.where(hits.c.severity.in_(
                [str(s) for s in Severity if s >= min_severity]))
        if matched_after is not None:
            query = query.where(hits.c.matched_at >= matched_after)
        query = query.order_by(hits.c.matched_at.desc(), hits.c.id.desc())
        if limit is not None:
            query = query.limit(limit)
        with self.engine.connect() as conn:
            return [_stored_hit(row) for row in conn.execute(query)]

    @_wrap
    def count_pending(self, desk: str, channel: str, *, rule_ids: Sequence[str] | None,
                      since: datetime) -> int:
        """Hit x channel pairs not yet delivered: unclaimed, or claimed by an unsent delivery."""
        unclaimed = sa.select(sa.func.count()).select_from(
            self._pending_query(desk, channel, rule_ids, since).subquery())
        waiting = (sa.select(sa.func.count()).select_from(delivery_hits)
                   .join(deliveries, deliveries.c.id == delivery_hits.c.delivery_id)
                   .where(delivery_hits.c.desk == desk, delivery_hits.c.channel == channel,
                          deliveries.c.state == "pending"))
        with self.engine.connect() as conn:
            return conn.execute(unclaimed).scalar_one() + conn.execute(waiting).scalar_one()

    @_wrap
    def create_delivery(self, desk: str, channel: str, kind: str, hit_ids: Sequence[int],
                        now: datetime | None = None,
                        payload: Mapping[str, object] | None = None
                        ) -> tuple[int, list[int]] | None:
        """Claim hits for a new pending delivery, before anything is sent.

        A hit already claimed for this desk and channel (by another run or
        another instance) is left out; with nothing left to claim, no delivery
        is made and None is returned. An alert also claims the hits' stories
        for the desk and channel: a hit whose story another alert already
        claimed is left out too (it waits for the digest). Returns (delivery
        id, claimed hit ids).
        """
        now = now or _now()
        with self.engine.begin() as conn:
            delivery_id = conn.execute(
                deliveries.insert().values(desk=desk, channel=channel, kind=kind,
                                           state="pending", created_at=now, next_attempt=now,
                                           payload=dict(payload) if payload else None)
                .returning(deliveries.c.id)).scalar_one()
            if kind == "alert" and hit_ids:
                hit_ids = self._claim_stories(conn, delivery_id, desk, channel, hit_ids)
                if not hit_ids:
                    conn.execute(deliveries.delete().where(deliveries.c.id == delivery_id))
                    return None
            claimed: list[int] = []
            if hit_ids:
                stmt = (_insert_or_skip(self.dialect, delivery_hits)
                        .returning(delivery_hits.c.hit_id))
                claimed = [r.hit_id for r in conn.execute(stmt, [
                    {"delivery_id": delivery_id, "hit_id": h, "desk": desk, "channel": channel}
                    for h in hit_ids])]
            if hit_ids and not claimed:
                conn.execute(deliveries.delete().where(deliveries.c.id == delivery_id))
                return None
        return delivery_id, claimed

    def _claim_stories(self, conn: sa.Connection, delivery_id: int, desk: str, channel: str,
                       hit_ids: Sequence[int]) -> list[int]:
        """The hits among ``hit_ids`` whose story this alert claimed for the desk and channel."""
        story_of: dict[int, int] = {}
        for i in range(0, len(hit_ids), _GUID_BATCH):
            story_of.update((r[0], r[1]) for r in conn.execute(
                sa.select(hits.c.id, sa.func.coalesce(items.c.story_id, items.c.id))
                .join(items, items.c.id == hits.c.item_id)
                .where(hits.c.id.in_(list(hit_ids[i:i + _GUID_BATCH])))))
        wanted = sorted(set(story_of.values()))
        if not wanted:
            return []
        stmt = (_insert_or_skip(self.dialect, story_alerts)
                .returning(story_alerts.c.story_id))
        won = {r.story_id for r in conn.execute(stmt, [
            {"story_id": s, "desk": desk, "channel": channel, "delivery_id": delivery_id}
            for s in wanted])}
        return [h for h in hit_ids if story_of.get(h) in won]

    @_wrap
    def claim_due_deliveries(self, owner: str, *, now: datetime | None = None,
                             lease: float = 300.0, desk: str | None = None,
                             limit: int = 100) -> list[Delivery]:
        """Pending deliveries whose next attempt is due, leased to ``owner``.

        The lease is a compare-and-set on each row, so of several instances
        exactly one gets a delivery; a dead instance's lease expires.
        """
        now = now or _now()
        until = now + timedelta(seconds=lease)
        query = (sa.select(deliveries.c.id)
                 .where(deliveries.c.state == "pending",
                        sa.or_(deliveries.c.next_attempt.is_(None),
                               deliveries.c.next_attempt <= now))
                 .order_by(deliveries.c.id).limit(limit))
        if desk is not None:
            query = query.where(deliveries.c.desk == desk)
        got: list[Delivery] = []
        with self.engine.begin() as conn:
            for delivery_id in conn.execute(query).scalars().all():
                won = conn.execute(
                    deliveries.update()
                    .where(deliveries.c.id == delivery_id, deliveries.c.state == "pending",
                           sa.or_(deliveries.c.lease_until.is_(None),
                                  deliveries.c.lease_until < now,
                                  deliveries.c.lease_owner == owner))
                    .values(lease_owner=owner, lease_until=until)).rowcount
                if won:
                    row = conn.execute(sa.select(deliveries)
                                       .where(deliveries.c.id == delivery_id)).one()
                    got.append(_delivery(row))
        return got

    @_wrap
    def delivery_hits(self, delivery_id: int) -> list[StoredHit]:
        query = (_hit_query().join(delivery_hits, delivery_hits.c.hit_id == hits.c.id)
                 .where(delivery_hits.c.delivery_id == delivery_id)
                 .order_by(hits.c.matched_at.desc(), hits.c.id.desc()))
        with self.engine.connect() as conn:
            return [_stored_hit(row) for row in conn.execute(query)]

    @_wrap
    def mark_sent(self, delivery_id: int, now: datetime | None = None) -> None:
        now = now or _now()
        with self.engine.begin() as conn:
            conn.execute(deliveries.update().where(deliveries.c.id == delivery_id).values(
                state="sent", sent_at=now, attempts=deliveries.c.attempts + 1,
                last_error=None, lease_owner=None, lease_until=None))

    @_wrap
    def mark_failed(self, delivery_id: int, error: str, *, permanent: bool,
                    next_attempt: datetime | None, now: datetime | None = None) -> None:
        """Record a failed attempt: retried at ``next_attempt``, or never if permanent."""
        with self.engine.begin() as conn:
            conn.execute(deliveries.update().where(deliveries.c.id == delivery_id).values(
                state="failed" if permanent else "pending", last_error=error[:2000],
                attempts=deliveries.c.attempts + 1,
                next_attempt=None if permanent else next_attempt,
                lease_owner=None, lease_until=None))

    @_wrap
    def requeue_failed(self, ids: Sequence[int] | None = None, *, desk: str | None = None,
                       now: datetime | None = None) -> list[int]:
        """Give deliveries that failed for good another attempt, due now (the
        operator fixed the cause): the ``ids`` given, or every failed one (of
        ``desk``). Only failed deliveries change. Returns the ids requeued."""
        now = now or _now()
        stmt = (deliveries.update().where(deliveries.c.state == "failed")
                .values(state="pending", next_attempt=now, lease_owner=None, lease_until=None)
                .returning(deliveries.c.id))
        if ids is not None:
            stmt = stmt.where(deliveries.c.id.in_(list(ids)))
        if desk is not None:
            stmt = stmt.where(deliveries.c.desk == desk)
        with self.engine.begin() as conn:
            return sorted(conn.execute(stmt).scalars().all())

    @_wrap
    def list_deliveries(self, *, states: Sequence[str] | None = None, desk: str | None = None,
                        ids: Sequence[int] | None = None, limit: int = 100) -> list[Delivery]:
        """Deliveries, newest first."""
        query = sa.select(deliveries).order_by(deliveries.c.id.desc()).limit(limit)
        if ids is not None:
            query = query.where(deliveries.c.id.in_(list(ids)))
        if states is not None:
            query = query.where(deliveries.c.state.in_(list(states)))
        if desk is not None:
            query = query.where(deliveries.c.desk == desk)
        with self.engine.connect() as conn:
            return [_delivery(row) for row in conn.execute(query)]

    @_wrap
    def delivery_counts(self) -> dict[str, int]:
        """How many deliveries are in each state (pending, sent, failed), each present."""
        query = (sa.select(deliveries.c.state, sa.func.count())
                 .group_by(deliveries.c.state))
        counts = dict.fromkeys(("pending", "sent", "failed"), 0)
        with self.engine.connect() as conn:
            for state, n in conn.execute(query):
                counts[state] = n
        return counts

    @_wrap
    def add_silence(self, rule_id: str, desk: str | None, until: datetime, reason: str,
                    now: datetime | None = None) -> int:
        now = now or _now()
        with self.engine.begin() as conn:
            silence_id: int = conn.execute(silences.insert().values(
                rule_id=rule_id, desk=desk, created_at=now, until=until, reason=reason)
                .returning(silences.c.id)).scalar_one()
        return silence_id

    @_wrap
    def list_silences(self, *, active_at: datetime | None = None) -> list[Silence]:
        query = sa.select(silences).order_by(silences.c.id)
        if active_at is not None:
            query = query.where(silences.c.until > active_at)
        with self.engine.connect() as conn:
            return [Silence(id=r.id, rule_id=r.rule_id, desk=r.desk, created_at=r.created_at,
                            until=r.until, reason=r.reason) for r in conn.execute(query)]

    @_wrap
    def remove_silence(self, silence_id: int, now: datetime | None = None) -> bool:
        """End a silence now (kept for the record, so its hits stay unsent)."""
        now = now or _now()
        with self.engine.begin() as conn:
            return bool(conn.execute(silences.update()
                                     .where(silences.c.id == silence_id, silences.c.until > now)
                                     .values(until=now)).rowcount)

    @_wrap
    def lease_delivery(self, delivery_id: int, owner: str, *, now: datetime | None = None,
                       lease: float = 300.0) -> bool:
        """Lease one pending delivery (the one just created) to ``owner``; False if taken.

        The same compare-and-set as :meth:`claim_due_deliveries`: a delivery is
        due as soon as it is created, so without this another instance's retry
        pass could send it too while its creator is sending it.
        """
        now = now or _now()
        with self.engine.begin() as conn:
            return bool(conn.execute(
                deliveries.update()
                .where(deliveries.c.id == delivery_id, deliveries.c.state == "pending",
                       sa.or_(deliveries.c.lease_owner.is_(None),
                              deliveries.c.lease_until < now,
                              deliveries.c.lease_owner == owner))
                .values(lease_owner=owner, lease_until=now + timedelta(seconds=lease))
            ).rowcount)

    @_wrap
    def set_delivery_payload(self, delivery_id: int,
                             payload: Mapping[str, object] | None) -> None:
        """Record progress within a delivery (how many parts of a split message went out)."""
        with self.engine.begin() as conn:
            conn.execute(deliveries.update().where(deliveries.c.id == delivery_id)
                         .values(payload=dict(payload) if payload else None))

    # -- facts the daemon publishes ---------------------------------------------

    @_wrap
    def put_state(self, key: str, value: Any, now: datetime | None = None) -> None:
        now = now or _now()
        with self.engine.begin() as conn:
            updated = conn.execute(daemon_state.update().where(daemon_state.c.key == key)
                                   .values(value=value, updated_at=now)).rowcount
            if not updated:
                conn.execute(_insert_or_skip(self.dialect, daemon_state),
                             {"key": key, "value": value, "updated_at": now})

    @_wrap
    def states(self, prefix: str) -> dict[str, Any]:
        """Every published fact whose key starts with ``prefix`` (one per daemon...)."""
        with self.engine.connect() as conn:
            return dict(conn.execute(sa.select(daemon_state.c.key, daemon_state.c.value)
                                     .where(daemon_state.c.key.startswith(prefix))).all())

    @_wrap
    def delete_states(self, keys: Iterable[str]) -> int:
        """Forget the published facts at ``keys`` (a daemon gone); how many there were."""
        wanted = list(keys)
        if not wanted:
            return 0
        with self.engine.begin() as conn:
            return conn.execute(daemon_state.delete()
                                .where(daemon_state.c.key.in_(wanted))).rowcount or 0

    @_wrap
    def get_state(self, key: str) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(sa.select(daemon_state.c.value)
                                .where(daemon_state.c.key == key)).scalar()


#: A headline-only feed's item is compared by its article's first characters.
_LEDE_CHARS = 600


def _lede(summary: str, content: str | None) -> str:
    """What story placement compares beside the title: the summary, or where the
    feed gave next to none, the start of the article's text."""
    if len(summary) >= 80 or not content:
        return summary
    return f"{summary} {content[:_LEDE_CHARS]}".strip()


def _hit_query() -> sa.Select[Any]:
    """The columns of :data:`monitor.store.direct.HIT_COLUMNS`, in its order."""
    h = hits.c
    return (sa.select(h.id, h.rule_id, h.rule_version, h.severity, h.score, h.evidence,
                      h.matched_at, h.item_id, items.c.guid, items.c.title, items.c.summary,
                      items.c.link, items.c.published, items.c.lang, feeds.c.url,
                      sa.func.coalesce(feeds.c.name, feeds.c.title, feeds.c.url),
                      items.c.outlet, items.c.story_id, _latest_verdict())
            .join(items, items.c.id == hits.c.item_id)
            .join(feeds, feeds.c.id == items.c.feed_id))


def _latest_verdict() -> sa.ScalarSelect[Any]:
    """:data:`monitor.store.direct.LATEST_VERDICT`, in Core."""
    fb = feedback.alias("fb")
    return (sa.select(fb.c.verdict).where(fb.c.hit_id == hits.c.id)
            .order_by(fb.c.id.desc()).limit(1).scalar_subquery())


def _stored_hit(row: sa.Row[Any]) -> StoredHit:
    return direct.stored_hit(tuple(row))


def _delivery(row: sa.Row[Any]) -> Delivery:
    return Delivery(id=row.id, desk=row.desk, channel=row.channel, kind=row.kind,
                    state=row.state, created_at=row.created_at, attempts=row.attempts,
                    next_attempt=row.next_attempt, last_error=row.last_error,
                    sent_at=row.sent_at, payload=row.payload)


def _feed_state(row: sa.Row[Any]) -> FeedState:
    return FeedState(
        url=row.url, name=row.name, etag=row.etag, last_modified=row.last_modified,
        last_polled=row.last_polled, last_ok=row.last_ok, last_status=row.last_status,
        error=row.error, failures=row.failures, next_poll=row.next_poll,
        disabled=row.disabled, last_new_item=row.last_new_item, newest_entry=row.newest_entry,
        flag=row.flag, title=row.title, article_failures=row.article_failures,
        article_error=row.article_error,
    )


def _state_values(state: FeedState) -> dict[str, Any]:
    return {
        "etag": state.etag, "last_modified": state.last_modified,
        "last_polled": state.last_polled, "last_ok": state.last_ok,
        "last_status": _status_text(state.last_status), "error": state.error,
        "failures": state.failures, "next_poll": state.next_poll, "disabled": state.disabled,
        "last_new_item": state.last_new_item, "newest_entry": state.newest_entry,
        "flag": state.flag, "title": state.title,
        "article_failures": state.article_failures, "article_error": state.article_error,
        "lease_owner": None, "lease_until": None,  # done with the feed: release it
    }
