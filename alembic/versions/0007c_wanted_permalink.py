"""entity.wanted_permalink: the permalink a note asks for and did not get

Revision ID: 0007c
Revises: 0007b
Create Date: 2026-11-30

A note that wants a permalink another note holds gets a `-N` suffix. Remembering what it
wants (and whether its frontmatter set it) lets every later sync hand the permalink back once
it is free, so permalinks converge to what a fresh sync gives instead of depending on the
order past syncs saw the changes in. NULL once settled; indexed so that the end-of-sync pass
reads only the unsettled rows.
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op

revision = "0007c"
down_revision = "0007b"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("entity") as batch:
        batch.add_column(sa.Column("wanted_permalink", sa.String(), nullable=True))
        batch.add_column(sa.Column("wanted_permalink_explicit", sa.Boolean(), nullable=True))
    op.create_index("ix_entity_project_wanted_permalink", "entity",
                    ["project_id", "wanted_permalink"])


def downgrade() -> None:
    op.drop_index("ix_entity_project_wanted_permalink", "entity")
    with op.batch_alter_table("entity") as batch:
        batch.drop_column("wanted_permalink_explicit")
        batch.drop_column("wanted_permalink")
