"""entity.tags: a note's frontmatter tags, as a JSON list (like observation.tags)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25

A database upgraded to this revision is rebuilt by the next sync (the sync engine rebuilds
after any migration), which backfills the tags of every note.
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("entity", sa.Column("tags", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("entity") as batch:
        batch.drop_column("tags")
