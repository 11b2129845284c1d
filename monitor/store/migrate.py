"""Schema migrations: Alembic, shipped inside the package, applied at start.

Alembic is imported only when the database is not already at
:data:`~monitor.store.SCHEMA_REVISION`, so a routine start costs one
small query.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from monitor.errors import StorageError
from monitor.store import SCHEMA_REVISION

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def current_revision(conn: sa.Connection) -> str | None:
    if not sa.inspect(conn).has_table("alembic_version"):
        return None
    return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()


def alembic_config(conn: sa.Connection | None = None):  # -> alembic.config.Config
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = conn
    return config


def upgrade(engine: sa.Engine) -> None:
    """Bring the schema to the code's revision; refuse a newer one."""
    with engine.connect() as conn:
        revision = current_revision(conn)
    if revision == SCHEMA_REVISION:
        return
    from alembic import command
    from alembic.script import ScriptDirectory

    config = alembic_config()
    known = {s.revision for s in ScriptDirectory.from_config(config).walk_revisions()}
    if revision is not None and revision not in known:
        raise StorageError(
            f"the database schema is at revision {revision}, newer than this news-monitor "
            f"knows ({SCHEMA_REVISION}): upgrade news-monitor, or point storage.url elsewhere")
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # Several daemons may start at once: one migrates, the others wait.
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(727274)"))
            if current_revision(conn) == SCHEMA_REVISION:
                return
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
