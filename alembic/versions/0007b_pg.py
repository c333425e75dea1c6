"""Drop ix_entity_project_file_path: the unique constraint on the same columns is an index

Revision ID: 0007b
Revises: 0007
Create Date: 2026-11-30

`uq_entity_project_file_path` (project_id, file_path) is backed by a unique index on both
SQLite (`sqlite_autoindex_entity_1`) and PostgreSQL; the plain index on the same two columns
in the same order serves no query the unique one does not, and every entity write paid for
keeping both.
"""

from __future__ import annotations

from alembic import op

revision = "0007b"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_entity_project_file_path", table_name="entity")


def downgrade() -> None:
    op.create_index("ix_entity_project_file_path", "entity", ["project_id", "file_path"])
