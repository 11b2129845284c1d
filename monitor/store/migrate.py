"""Schema migrations: Alembic, shipped inside the package, applied at start.

Alembic is imported only when an existing database is behind
:data:`~monitor.store.SCHEMA_REVISION`: a routine start costs one small
query, and an empty database gets the current schema directly.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa

from monitor.errors import StorageError
from monitor.store import SCHEMA_REVISION

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_LOCK = 727274  # the advisory lock several daemons starting at once take to migrate


def current_revision(conn: sa.Connection) -> str | None:
    if not sa.inspect(conn).has_table("alembic_version"):
        return None
    return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()


def alembic_config(conn: sa.Connection | None = None) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = conn
    return config


# Alembic's own bookkeeping table, as Alembic creates it, for :func:`_create`.
_alembic_version = sa.Table(
    "alembic_version", sa.MetaData(),
    sa.Column("version_num", sa.String(32), nullable=False),
    sa.PrimaryKeyConstraint("version_num", name="alembic_version_pkc"),
)


def upgrade(engine: sa.Engine) -> None:
    """Bring the schema to the code's revision; refuse a newer one."""
    with engine.connect() as conn:
        revision = current_revision(conn)
    if revision == SCHEMA_REVISION:
        return
    with engine.begin() as conn:
        # Several daemons may start at once: one migrates, the others wait,
        # then find the work done.
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text(f"SELECT pg_advisory_xact_lock({_LOCK})"))
        else:
            # The sqlite3 driver runs DDL outside any transaction, so a start
            # killed half-way would leave some tables and no revision, and every
            # later start would fail. An explicit write transaction makes the
            # schema appear whole or not at all, and serialises starters.
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        revision = current_revision(conn)
        if revision == SCHEMA_REVISION:
            return
        if revision is None and _create(conn):
            return
        _migrate(conn, revision)


def _create(conn: sa.Connection) -> bool:
    """Give an empty database the current schema directly, and record its
    revision: Alembic's "create_all, then stamp" recipe for new databases,
    without importing Alembic (~0.1 s of a first poll). False when the
    database is not empty: Alembic takes it from there. A test checks that
    this schema is the one the migrations build."""
    from monitor.store.schema import metadata

    if sa.inspect(conn).get_table_names():
        return False
    metadata.create_all(conn)
    _alembic_version.create(conn)
    conn.execute(_alembic_version.insert().values(version_num=SCHEMA_REVISION))
    return True


def _migrate(conn: sa.Connection, revision: str | None) -> None:
    """Alembic's migrations from ``revision`` to the head, on ``conn``."""
    from alembic import command
    from alembic.script import ScriptDirectory

    config = alembic_config(conn)
    known = {s.revision for s in ScriptDirectory.from_config(config).walk_revisions()}
    if revision is not None and revision not in known:
        raise StorageError(
            f"the database schema is at revision {revision}, newer than this news-monitor "
            f"knows ({SCHEMA_REVISION}): upgrade news-monitor, or point storage.url elsewhere")
    command.upgrade(config, "head")
