"""Alembic environment: always run by ``monitor.store.migrate`` with a live connection."""

from __future__ import annotations

from alembic import context

from monitor.store.schema import include_name, metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only the programmatic path is supported
    raise RuntimeError("run migrations through `news-monitor` (monitor.store.migrate)")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite cannot ALTER much
    compare_type=True,
    include_name=include_name,  # the full-text index is DDL of its own
)
with context.begin_transaction():
    context.run_migrations()
