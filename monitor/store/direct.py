"""Reads without SQLAlchemy, in plain SQL on a bare DB-API connection, for
commands whose start-up is most of their cost (issue 7): SQLAlchemy's import
alone takes ~0.12 s.

* The stored-hits listing: :meth:`Store.list_hits` runs :func:`fetch_hits` on
  the engine's own connection, and the ``hits`` command, through
  :func:`list_direct`, on a connection of its own (sqlite3 or psycopg).
* The feeds' conditional-GET validators (:func:`feed_validators`), with which
  ``poll`` sends its requests to the fetch child while it imports SQLAlchemy.

Nothing here writes or migrates: both answer None whenever the database needs
:class:`Store` first (no file yet, a schema to migrate, a desk to register),
and the caller takes the Store's way.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

from monitor.errors import StorageError
from monitor.models import Evidence, Severity, StoredHit
from monitor.store import SCHEMA_REVISION

T = TypeVar("T")

#: A hit's feedback: its latest verdict (index ix_feedback_hit).
LATEST_VERDICT = ("SELECT fb.verdict FROM feedback fb WHERE fb.hit_id = h.id "
                  "ORDER BY fb.id DESC LIMIT 1")
#: A hit joined with its item and feed, the order :func:`stored_hit` reads (the
#: Store's own hit queries select the same).
HIT_COLUMNS = ("h.id, h.rule_id, h.rule_version, h.severity, h.score, h.evidence, "
               "h.matched_at, h.item_id, i.guid, i.title, i.summary, i.link, i.published, "
               "i.lang, f.url, COALESCE(f.name, f.title, f.url), i.outlet, i.story_id, "
               f"({LATEST_VERDICT})")
_SELECT = (f"SELECT {HIT_COLUMNS} FROM hits h JOIN items i ON i.id = h.item_id "
           "JOIN feeds f ON f.id = i.feed_id")


def fetch_hits(conn: Any, dialect: str, *, since: datetime | None = None,
               rule_id: str | None = None, limit: int | None = None) -> list[StoredHit]:
    """Stored hits, newest match first (id breaks ties). ``conn`` is a DB-API
    connection of ``dialect`` ("sqlite" or "postgresql"); its errors propagate."""
    mark = "?" if dialect == "sqlite" else "%s"
    where: list[str] = []
    params: list[Any] = []
    if since is not None:
        where.append(f"h.matched_at >= {mark}")
        params.append(_sqlite_time(since) if dialect == "sqlite" else since)
    if rule_id is not None:
        where.append(f"h.rule_id = {mark}")
        params.append(rule_id)
    sql = _SELECT + (" WHERE " + " AND ".join(where) if where else "")
    sql += " ORDER BY h.matched_at DESC, h.id DESC"
    if limit is not None:
        sql += f" LIMIT {mark}"
        params.append(max(0, limit))
    return _hits(conn, sql, params)


def _hits(conn: Any, sql: str, params: list[Any]) -> list[StoredHit]:
    """The hits a query of :data:`HIT_COLUMNS` selects, on a DB-API connection."""
    cur = conn.cursor()
    try:
        cur.execute(sql, params)
        return [stored_hit(row) for row in cur.fetchall()]
    finally:
        cur.close()


def search_hits(conn: Any, dialect: str, *, rule_ids: Iterable[str] | None = None,
                q: str | None = None, since: datetime | None = None,
                before: int | None = None, limit: int = 50) -> list[StoredHit]:
    """The web view's hit list: newest stored first (by id, so ``before``, the
    last id of a page, gives the next page by the primary key: keyset, no
    OFFSET), of ``rule_ids`` only (a desk's rules), matched since ``since``,
    whose item's title or summary has every word of ``q`` (full-text: FTS5 on
    SQLite, a tsvector on PostgreSQL)."""
    mark = "?" if dialect == "sqlite" else "%s"
    where: list[str] = []
    params: list[Any] = []
    if rule_ids is not None:
        wanted = sorted(set(rule_ids))
        if not wanted:
            return []
        # SQLite's "+": not by the rule's index (every hit of the rules, sorted
        # after), but in the primary key's order, stopping at ``limit``
        plus = "+" if dialect == "sqlite" else ""
        where.append(f"{plus}h.rule_id IN ({', '.join([mark] * len(wanted))})")
        params.extend(wanted)
    if since is not None:
        where.append(f"h.matched_at >= {mark}")
        params.append(_sqlite_time(since) if dialect == "sqlite" else since)
    if before is not None:
        where.append(f"h.id < {mark}")
        params.append(before)
    words = text_query(q)
    if words and dialect == "sqlite":
        return _fts_hits(conn, where, params, " ".join(f'"{w}"' for w in words),
                         since=since, before=before, limit=limit)
    if words:  # PostgreSQL: the tsvectors of the items with a hit (schema.PG_FTS)
        where.append("h.item_id IN (SELECT item_id FROM items_search "
                     f"WHERE tsv @@ plainto_tsquery('simple', {mark}))")
        params.append(" ".join(words))
    sql = _SELECT + (" WHERE " + " AND ".join(where) if where else "")
    sql += f" ORDER BY h.id DESC LIMIT {mark}"
    params.append(max(0, limit))
    return _hits(conn, sql, params)


SPARE = 8  # rules one item may hit beyond a page's end


def _fts_hits(conn: Any, where: list[str], params: list[Any], match: str, *,
              since: datetime | None, before: int | None, limit: int) -> list[StoredHit]:
    """SQLite's search: the hits' ids walking the FTS5 index newest item first
    (it yields rowids in order, so the walk stops at ``limit``, however common
    the word: an IN list of every matching item, sorted after, took ~1 s at
    60,000 indexed items), then those hits' rows. A hit is stored with its new
    item, in one transaction, so the newest items' hits are the newest hits."""
    bounds = ""
    extra: list[Any] = []
    cur = conn.cursor()
    # The bounds as constants, looked up first: as subqueries they cost the
    # FTS5 walk its order (a sort of every match again).
    if before is not None:
        cur.execute("SELECT item_id FROM hits WHERE id < ? ORDER BY id DESC LIMIT 1", [before])
        row = cur.fetchone()
        if row is None:
            return []
        bounds += " AND items_fts.rowid <= ?"
        extra.append(row[0])
    if since is not None:
        cur.execute("SELECT min(+item_id) FROM hits WHERE matched_at >= ?",  # by its index
                    [_sqlite_time(since)])
        row = cur.fetchone()
        if row is None or row[0] is None:
            return []
        bounds += " AND items_fts.rowid >= ?"
        extra.append(row[0])
    sql = ("SELECT h.id FROM items_fts JOIN hits h ON h.item_id = items_fts.rowid "
           "WHERE items_fts MATCH ?" + bounds + "".join(f" AND {w}" for w in where)
           + " ORDER BY items_fts.rowid DESC LIMIT ?")
    try:
        # Ordered by item only (a second key would sort every match): the spare
        # rows make the page whole where it ends among one item's several hits.
        cur.execute(sql, [match, *extra, *params, max(0, limit) + SPARE])
        ids = [row[0] for row in cur.fetchall()]
        if not ids:
            return []
        cur.execute(_SELECT + f" WHERE h.id IN ({', '.join('?' * len(ids))}) "
                    "ORDER BY h.id DESC LIMIT ?", [*ids, max(0, limit)])
        return [stored_hit(row) for row in cur.fetchall()]
    finally:
        cur.close()


def text_query(q: str | None) -> list[str]:
    """The words of a search box, lower-cased: what every found item must hold
    (no operator of either engine's syntax gets through)."""
    import re

    return [w.lower() for w in re.findall(r"\w+", q or "")][:12]


def list_direct(url: str, *, timeout: float, desks: Iterable[str],
                since: datetime | None = None, rule_id: str | None = None,
                limit: int | None = None) -> list[StoredHit] | None:
    """:func:`fetch_hits` on a connection of its own, without SQLAlchemy; None
    when the database needs a :class:`Store` first. Raises StorageError."""
    return _run(url, timeout, set(desks), lambda conn, dialect: fetch_hits(
        conn, dialect, since=since, rule_id=rule_id, limit=limit))


def feed_validators(url: str, *, timeout: float
                    ) -> dict[str, tuple[str | None, str | None, bool]] | None:
    """Each stored feed's ETag and Last-Modified, and whether it is disabled,
    by URL (none at all for a SQLite file not created yet, in a folder where
    it can be); None when the database needs a :class:`Store` first. Raises
    StorageError."""
    path = _sqlite_path(url)
    if path is not None and not Path(path).exists():
        folder = Path(path).parent
        # A first poll: no feed has validators yet (elsewhere the Store says why not).
        return {} if folder.is_dir() and os.access(folder, os.W_OK) else None

    def read(conn: Any, _dialect: str) -> dict[str, tuple[str | None, str | None, bool]]:
        cur = conn.cursor()
        cur.execute("SELECT url, etag, last_modified, disabled FROM feeds")
        return {u: (etag, modified, disabled is not None)
                for u, etag, modified, disabled in cur.fetchall()}

    return _run(url, timeout, set(), read)


def _run(url: str, timeout: float, desks: set[str], read: Callable[[Any, str], T]) -> T | None:
    """``read(connection, dialect)`` on a connection of its own, closed after;
    None when the database needs a :class:`Store` first. The driver's errors
    become StorageError."""
    opened = _open(url, timeout, desks)
    if opened is None:
        return None
    conn, dialect, error = opened
    try:
        return read(conn, dialect)
    except error as e:
        raise StorageError(f"database error: {first_line(e)}") from e
    finally:
        conn.close()


def _open(url: str, timeout: float, desks: set[str]) -> tuple[Any, str, type[Exception]] | None:
    scheme = url.split("://", 1)[0]
    if scheme == "sqlite":
        conn, dialect, error = _sqlite(url, timeout), "sqlite", _sqlite_error()
    elif scheme in ("postgresql", "postgresql+psycopg"):
        conn, dialect, error = _postgresql(url, timeout), "postgresql", _psycopg_error()
    else:
        return None  # another driver: SQLAlchemy knows how to reach it
    if conn is None:
        return None
    try:
        cur = conn.cursor()
        cur.execute("SELECT version_num FROM alembic_version")
        revision = cur.fetchone()
        cur.execute("SELECT name FROM desks")
        known = {row[0] for row in cur.fetchall()}
        cur.close()
    except error:
        revision, known = None, set()  # no schema yet
    if revision is None or revision[0] != SCHEMA_REVISION or not desks <= known:
        conn.close()
        return None
    return conn, dialect, error


def _sqlite_path(url: str) -> str | None:
    """The file of a plain ``sqlite:///PATH`` URL, else None (leave it to SQLAlchemy)."""
    if not url.startswith("sqlite:///"):
        return None
    path = url[len("sqlite:///"):]
    if not path or path.startswith(":memory:") or any(c in path for c in "?#%"):
        return None
    return path


def _sqlite(url: str, timeout: float) -> Any:
    import sqlite3

    path = _sqlite_path(url)
    if path is None:
        return None
    try:
        # mode=rw: a missing file is not created here (Store creates and migrates it)
        return sqlite3.connect(f"file:{quote(path)}?mode=rw", uri=True, timeout=timeout)
    except sqlite3.OperationalError:
        return None


def _postgresql(url: str, timeout: float) -> Any:
    import psycopg

    conninfo = "postgresql://" + url.split("://", 1)[1]
    try:
        return psycopg.connect(conninfo, autocommit=True,
                               connect_timeout=max(1, int(timeout)))
    except psycopg.Error as e:
        # Store.open says the same about the same failure
        raise StorageError(f"cannot open the store: {first_line(e)}") from e


def first_line(e: BaseException) -> str:
    """A driver error's message without its detail lines."""
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _sqlite_error() -> type[Exception]:
    import sqlite3

    return sqlite3.Error


def _psycopg_error() -> type[Exception]:
    import psycopg

    return psycopg.Error


def _sqlite_time(when: datetime) -> str:
    """How SQLAlchemy stores a DateTime in SQLite: naive UTC, microseconds always."""
    if when.tzinfo is None:
        raise ValueError("naive datetime given to the store")
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def _utc(value: datetime | str) -> datetime:
    if isinstance(value, str):  # SQLite
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def stored_hit(row: tuple[Any, ...]) -> StoredHit:
    """A row of :data:`HIT_COLUMNS`, as the driver or SQLAlchemy decoded it."""
    (hit_id, rule_id, rule_version, severity, score, evidence, matched_at, item_id, guid,
     title, summary, link, published, lang, feed_url, feed_name, outlet, story, verdict) = row
    if isinstance(evidence, str):  # SQLite keeps JSON as text; psycopg decodes it
        evidence = json.loads(evidence)
    return StoredHit(
        id=hit_id, rule_id=rule_id, rule_version=rule_version,
        severity=Severity.parse(severity), score=score,
        evidence=tuple(Evidence(**e) for e in evidence), matched_at=_utc(matched_at),
        item_id=item_id, guid=guid, title=title, summary=summary, link=link,
        published=_utc(published), lang=lang, feed_url=feed_url, feed_name=feed_name,
        outlet=outlet, story=story, feedback=verdict,
    )

