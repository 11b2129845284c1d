"""The tables, as SQLAlchemy Core metadata (the single description of the schema).

Alembic migrations under ``migrations/`` create and evolve these tables;
:data:`monitor.store.SCHEMA_REVISION` is the revision this code expects.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

# Constraint names are spelt out so that migrations (and SQLite batch mode) can
# refer to them on every backend.
metadata = sa.MetaData(naming_convention={
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
})


class UTCDateTime(sa.TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, on every backend.

    SQLite has no time zone type: values are stored as naive UTC there.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


feeds = sa.Table(
    "feeds", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("url", sa.Text, nullable=False, unique=True),
    sa.Column("name", sa.Text),
    sa.Column("title", sa.Text),  # what the feed calls itself
    sa.Column("added_at", UTCDateTime, nullable=False),
    # conditional GET validators
    sa.Column("etag", sa.Text),
    sa.Column("last_modified", sa.Text),
    # the last poll
    sa.Column("last_polled", UTCDateTime),
    sa.Column("last_ok", UTCDateTime),
    sa.Column("last_status", sa.Text),  # "200", "304", "timeout", "dns"...
    sa.Column("error", sa.Text),
    sa.Column("failures", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_poll", UTCDateTime),
    sa.Column("disabled", sa.Text),  # why the feed is no longer polled (410 Gone), else NULL
    sa.Column("last_new_item", UTCDateTime),  # when a poll last stored a new entry
    sa.Column("newest_entry", UTCDateTime),  # newest published time ever seen
    sa.Column("flag", sa.Text),  # health flag already reported once (failing, silent, gap)
    # work claiming between several daemons (scale-out)
    sa.Column("lease_owner", sa.Text),
    sa.Column("lease_until", UTCDateTime),
    # full_text: article pages that could not be fetched or read, the last reason (0004)
    sa.Column("article_failures", sa.Integer, nullable=False, server_default="0"),
    sa.Column("article_error", sa.Text),
)

items = sa.Table(
    "items", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("feed_id", sa.Integer, sa.ForeignKey("feeds.id", ondelete="CASCADE"),
              nullable=False),
    sa.Column("guid", sa.Text, nullable=False),
    sa.Column("fingerprint", sa.Text, nullable=False),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("summary", sa.Text, nullable=False),
    sa.Column("link", sa.Text),
    sa.Column("published", UTCDateTime, nullable=False),  # first_seen when the feed gives none
    sa.Column("first_seen", UTCDateTime, nullable=False),
    sa.Column("lang", sa.Text),
    sa.Column("outlet", sa.Text),  # who reported it, where the feed names one (revision 0002)
    # The story it tells: the id of that story's first item (revision 0003). Set
    # for items with hits when they are stored; NULL for the others.
    sa.Column("story_id", sa.Integer),
    sa.Column("content", sa.Text),  # the article's main text, where full_text fetched it (0004)
    sa.UniqueConstraint("feed_id", "guid"),
    sa.Index("ix_items_feed_fingerprint", "feed_id", "fingerprint"),
    sa.Index("ix_items_first_seen", "first_seen"),
    sa.Index("ix_items_story", "story_id"),
    sa.Index("ix_items_story_published", "published",
             sqlite_where=sa.text("story_id IS NOT NULL"),
             postgresql_where=sa.text("story_id IS NOT NULL")),
)

hits = sa.Table(
    "hits", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("item_id", sa.Integer, sa.ForeignKey("items.id", ondelete="CASCADE"),
              nullable=False),
    sa.Column("rule_id", sa.Text, nullable=False),
    sa.Column("rule_version", sa.Text, nullable=False),
    sa.Column("severity", sa.Text, nullable=False),
    sa.Column("score", sa.Float, nullable=False),
    sa.Column("evidence", sa.JSON, nullable=False),
    sa.Column("matched_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("item_id", "rule_id"),
    sa.Index("ix_hits_matched_at", "matched_at"),
    sa.Index("ix_hits_rule_matched", "rule_id", "matched_at"),
)

# Desks are configuration, but the store remembers when each was first seen:
# a new desk starts with the hits matched after that, not the whole history.
desks = sa.Table(
    "desks", metadata,
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("first_seen", UTCDateTime, nullable=False),
)

deliveries = sa.Table(
    "deliveries", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("desk", sa.Text, nullable=False),
    sa.Column("channel", sa.Text, nullable=False),  # a registered channel name
    sa.Column("kind", sa.Text, nullable=False),  # digest, alert, notice
    sa.Column("state", sa.Text, nullable=False),  # pending, sent, failed
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt", UTCDateTime),
    sa.Column("last_error", sa.Text),
    sa.Column("sent_at", UTCDateTime),
    sa.Column("payload", sa.JSON),  # what a notice says (digests are rebuilt from their hits)
    sa.Column("lease_owner", sa.Text),
    sa.Column("lease_until", UTCDateTime),
    sa.Index("ix_deliveries_state", "state", "next_attempt"),
)

# One row per (desk, channel, hit): the unique constraint is what makes a hit
# go out at most once per desk and channel, whichever instance builds the digest.
delivery_hits = sa.Table(
    "delivery_hits", metadata,
    sa.Column("delivery_id", sa.Integer, sa.ForeignKey("deliveries.id", ondelete="CASCADE"),
              nullable=False),
    sa.Column("hit_id", sa.Integer, sa.ForeignKey("hits.id", ondelete="CASCADE"),
              nullable=False),
    sa.Column("desk", sa.Text, nullable=False),
    sa.Column("channel", sa.Text, nullable=False),
    sa.PrimaryKeyConstraint("delivery_id", "hit_id"),
    sa.UniqueConstraint("desk", "channel", "hit_id", name="uq_delivery_hits_once"),
    sa.Index("ix_delivery_hits_hit", "hit_id"),
)

# An alert goes out once per story per desk and channel: the primary key is the
# claim, taken with the alert's delivery, whichever instance sends it.
story_alerts = sa.Table(
    "story_alerts", metadata,
    sa.Column("story_id", sa.Integer, nullable=False),
    sa.Column("desk", sa.Text, nullable=False),
    sa.Column("channel", sa.Text, nullable=False),
    sa.Column("delivery_id", sa.Integer, sa.ForeignKey("deliveries.id", ondelete="CASCADE"),
              nullable=False),
    sa.PrimaryKeyConstraint("story_id", "desk", "channel"),
)

silences = sa.Table(
    "silences", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("rule_id", sa.Text, nullable=False),
    sa.Column("desk", sa.Text),  # NULL: every desk
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("until", UTCDateTime, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
)

# Verdicts on hits from the web view (issue 17): every one kept with who and
# when; a hit's verdict is its latest (the highest id).
feedback = sa.Table(
    "feedback", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("hit_id", sa.Integer, sa.ForeignKey("hits.id", ondelete="CASCADE"),
              nullable=False),
    sa.Column("verdict", sa.Text, nullable=False),  # relevant | noise
    sa.Column("who", sa.Text),  # the signed-in user, NULL without authentication
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Index("ix_feedback_hit", "hit_id", "id"),
)

# Small facts the daemon publishes for `status` (last reload, rules loaded...).
daemon_state = sa.Table(
    "daemon_state", metadata,
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("value", sa.JSON, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)


# -- full-text search over items (revision 0005) ----------------------------------
#
# Not expressible as Core tables, so kept as DDL run after ``items`` is created
# (a new database) and by the migration (an old one).
#
# SQLite: an external-content FTS5 table (the text stays in ``items`` alone; no
# positions kept, ``detail=none``) over the items that have a hit: the search
# narrows the hit list, and ~6 % of items have one, so the index costs a
# fraction of what one over every item would (on the small disks of
# tests/test_disk_full.py that is the difference between a poll that fits and
# one that does not). A trigger on ``hits`` indexes an item at its first hit;
# one on ``items`` takes it out when it is deleted (purged), only if it is in
# (``items_fts_docsize`` has a row per indexed item: a 'delete' of a row never
# indexed would corrupt an external-content index).
# PostgreSQL: the same set of items, in ``items_search`` (an item's tsvector,
# filled by a trigger on ``hits``) with a GIN index: an index of every item
# made each poll's inserts several times slower, and a common word matched a
# million rows.

FTS_TABLES = ("items_fts", "items_fts_data", "items_fts_idx", "items_fts_docsize",
              "items_fts_config", "items_search")

_INDEXED = "EXISTS (SELECT 1 FROM items_fts_docsize WHERE id = {})"
SQLITE_FTS = (
    "CREATE VIRTUAL TABLE items_fts USING fts5(title, summary, content='items', "
    "content_rowid='id', detail=none, tokenize='unicode61 remove_diacritics 2')",
    "CREATE TRIGGER items_fts_hit AFTER INSERT ON hits "
    f"WHEN NOT {_INDEXED.format('new.item_id')} BEGIN "
    "INSERT INTO items_fts(rowid, title, summary) "
    "SELECT id, title, summary FROM items WHERE id = new.item_id; END",
    "CREATE TRIGGER items_fts_delete AFTER DELETE ON items "
    f"WHEN {_INDEXED.format('old.id')} BEGIN "
    "INSERT INTO items_fts(items_fts, rowid, title, summary) "
    "VALUES ('delete', old.id, old.title, old.summary); END",
    "CREATE TRIGGER items_fts_update AFTER UPDATE OF title, summary ON items "
    f"WHEN {_INDEXED.format('old.id')} BEGIN "
    "INSERT INTO items_fts(items_fts, rowid, title, summary) "
    "VALUES ('delete', old.id, old.title, old.summary); "
    "INSERT INTO items_fts(rowid, title, summary) VALUES (new.id, new.title, new.summary); END",
)
#: The migration's fill: the items stored before, that have a hit.
SQLITE_FTS_FILL = ("INSERT INTO items_fts(rowid, title, summary) SELECT id, title, summary "
                   "FROM items WHERE id IN (SELECT item_id FROM hits)")
SQLITE_FTS_DROP = ("DROP TRIGGER IF EXISTS items_fts_hit",
                   "DROP TRIGGER IF EXISTS items_fts_delete",
                   "DROP TRIGGER IF EXISTS items_fts_update",
                   "DROP TABLE IF EXISTS items_fts")

#: The one text expression searched on PostgreSQL (stored and queried alike).
PG_TSVECTOR = "to_tsvector('simple', title || ' ' || summary)"
PG_FTS = (
    "CREATE TABLE items_search (item_id integer PRIMARY KEY "
    "REFERENCES items (id) ON DELETE CASCADE, tsv tsvector NOT NULL)",
    "CREATE INDEX ix_items_search ON items_search USING gin (tsv)",
    "CREATE FUNCTION items_search_hit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    f"INSERT INTO items_search (item_id, tsv) SELECT id, {PG_TSVECTOR} FROM items "
    "WHERE id = NEW.item_id ON CONFLICT DO NOTHING; RETURN NULL; END $$",
    "CREATE TRIGGER items_search_hit AFTER INSERT ON hits FOR EACH ROW "
    "EXECUTE FUNCTION items_search_hit()",
)
PG_FTS_FILL = (f"INSERT INTO items_search (item_id, tsv) SELECT id, {PG_TSVECTOR} FROM items "
               "WHERE id IN (SELECT item_id FROM hits)")
PG_FTS_DROP = ("DROP TRIGGER IF EXISTS items_search_hit ON hits",
               "DROP FUNCTION IF EXISTS items_search_hit()",
               "DROP TABLE IF EXISTS items_search")


def fts_statements(dialect: str) -> tuple[str, ...]:
    """The DDL that gives ``items`` its full-text index on ``dialect``."""
    return SQLITE_FTS if dialect == "sqlite" else PG_FTS if dialect == "postgresql" else ()


def _create_fts(target: sa.Table, connection: sa.Connection, **_kw: Any) -> None:
    # after ``hits`` (created after ``items``): a trigger may only name tables that exist
    for statement in fts_statements(connection.dialect.name):
        connection.exec_driver_sql(statement)


sa.event.listen(hits, "after_create", _create_fts)  # the triggers name both tables


def include_name(name: str | None, type_: str, _parent: Any) -> bool:
    """For Alembic's comparisons: the FTS5 table and its shadow tables are not
    Core tables (:data:`FTS_TABLES`), nor is PostgreSQL's ``items_search``."""
    return not ((type_ == "table" and name in FTS_TABLES) or
                (type_ == "index" and name == "ix_items_search"))
