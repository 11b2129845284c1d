"""feedback on hits, and full-text search over items (the web view, issue 17)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03

A new table (verdicts with who and when) and a full-text index: on SQLite an
external-content FTS5 table, on PostgreSQL a table of tsvectors with a GIN
index, both over the stored items that have a hit. (Revisions 0003 and 0004
are written in parallel; the merge re-chains ``down_revision``.)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from monitor.store.schema import (
    PG_FTS_DROP,
    PG_FTS_FILL,
    SQLITE_FTS_DROP,
    SQLITE_FTS_FILL,
    fts_statements,
)

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "feedback",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("hit_id", sa.Integer(), nullable=False),
        sa.Column("verdict", sa.Text(), nullable=False),
        sa.Column("who", sa.Text(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["hit_id"], ["hits.id"], ondelete="CASCADE",
                                name="fk_feedback_hit_id_hits"),
        sa.PrimaryKeyConstraint("id", name="pk_feedback"),
    )
    op.create_index("ix_feedback_hit", "feedback", ["hit_id", "id"])
    dialect = op.get_bind().dialect.name
    for statement in fts_statements(dialect):
        op.execute(statement)
    if dialect in ("sqlite", "postgresql"):  # the items stored before, with a hit
        op.execute(SQLITE_FTS_FILL if dialect == "sqlite" else PG_FTS_FILL)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for statement in SQLITE_FTS_DROP if dialect == "sqlite" else PG_FTS_DROP:
        op.execute(statement)
    op.drop_index("ix_feedback_hit", table_name="feedback")
    op.drop_table("feedback")
