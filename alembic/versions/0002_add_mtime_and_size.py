"""add mtime and size to entity (nullable), index on (project_id, file_path)

The path the seed spec (SPEC-19) describes: the columns arrive nullable, and the next sync
backfills them (the engine rebuilds when it finds a database migrated from an older revision).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("entity", sa.Column("mtime", sa.Float(), nullable=True))
    op.add_column("entity", sa.Column("size", sa.BigInteger(), nullable=True))
    op.create_index("ix_entity_project_file_path", "entity", ["project_id", "file_path"])


def downgrade() -> None:
    with op.batch_alter_table("entity") as batch:
        batch.drop_index("ix_entity_project_file_path")
        batch.drop_column("size")
        batch.drop_column("mtime")
