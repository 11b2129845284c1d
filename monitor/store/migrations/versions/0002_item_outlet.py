"""items.outlet: who reported an item, where its feed names one

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02

A nullable column: the items stored before it keep showing their feed's name.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # batch mode (env.py turns it on for SQLite) adds a nullable column with a
    # plain ALTER TABLE ... ADD COLUMN: no copy of the table
    with op.batch_alter_table("items") as batch:
        batch.add_column(sa.Column("outlet", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("items") as batch:
        batch.drop_column("outlet")
