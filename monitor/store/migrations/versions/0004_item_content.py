"""items.content (an article's main text, full_text) and feeds' article failures

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03

Nullable (or defaulted) columns: items stored before keep matching on what
their feed gave. Retention deletes items, and their content with them.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # batch mode (env.py turns it on for SQLite) adds nullable or defaulted
    # columns with a plain ALTER TABLE ... ADD COLUMN: no copy of the table
    with op.batch_alter_table("items") as batch:
        batch.add_column(sa.Column("content", sa.Text(), nullable=True))
    with op.batch_alter_table("feeds") as batch:
        batch.add_column(sa.Column("article_failures", sa.Integer(), nullable=False,
                                   server_default="0"))
        batch.add_column(sa.Column("article_error", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("feeds") as batch:
        batch.drop_column("article_error")
        batch.drop_column("article_failures")
    with op.batch_alter_table("items") as batch:
        batch.drop_column("content")
