"""items.story_id and story_alerts: each story once

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03

A story is named by the id of its first item (no table of its own: nothing
else about a story needs storing). Items stored before this revision that have
hits become a story each. ``story_alerts`` is the claim that makes an alert go
out once per story per desk and channel, whichever instance sends it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("items") as batch:
        batch.add_column(sa.Column("story_id", sa.Integer(), nullable=True))
    op.create_index("ix_items_story", "items", ["story_id"])
    # Placement reads the stories of a few days around each new report: only
    # items with a story are indexed by date (the others are most of the table).
    op.create_index("ix_items_story_published", "items", ["published"],
                    sqlite_where=sa.text("story_id IS NOT NULL"),
                    postgresql_where=sa.text("story_id IS NOT NULL"))
    op.execute("UPDATE items SET story_id = id WHERE id IN (SELECT item_id FROM hits)")
    op.create_table(
        "story_alerts",
        sa.Column("story_id", sa.Integer(), nullable=False),
        sa.Column("desk", sa.Text(), nullable=False),
        sa.Column("channel", sa.Text(), nullable=False),
        sa.Column("delivery_id", sa.Integer(),
                  sa.ForeignKey("deliveries.id", ondelete="CASCADE",
                                name="fk_story_alerts_delivery_id_deliveries"),
                  nullable=False),
        sa.PrimaryKeyConstraint("story_id", "desk", "channel", name="pk_story_alerts"),
    )


def downgrade() -> None:
    op.drop_table("story_alerts")
    op.drop_index("ix_items_story_published", table_name="items")
    op.drop_index("ix_items_story", table_name="items")
    with op.batch_alter_table("items") as batch:
        batch.drop_column("story_id")
