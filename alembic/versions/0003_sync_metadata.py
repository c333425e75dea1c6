"""sync metadata: project.index_token, sync_failure (circuit breaker), title index

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("project", sa.Column("index_token", sa.String(), nullable=True))
    op.create_index("ix_entity_project_title", "entity", ["project_id", "title"])
    op.create_table(
        "sync_failure",
        sa.Column("project_id", sa.Integer(),
                  sa.ForeignKey("project.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("file_path", sa.String(), primary_key=True),
        sa.Column("content_id", sa.String(), nullable=True),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("first_failed_at", sa.Float(), nullable=False),
        sa.Column("last_failed_at", sa.Float(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("sync_failure")
    op.drop_index("ix_entity_project_title", "entity")
    with op.batch_alter_table("project") as batch:
        batch.drop_column("index_token")
