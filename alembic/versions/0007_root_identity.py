"""project.root_identity: the device and inode of the folder a project was first synced from

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30

A copy of a notes folder carries the original's project id. When a copy syncs first after the
original was moved, it takes the project (the original is nowhere to be seen); the original's
(st_dev, st_ino), kept here, lets it reclaim its project at its next sync, and the copy is then
told apart (`bm_sync.identity`). Existing projects get it on their next sync.
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("project") as batch:
        batch.add_column(sa.Column("root_identity", sa.String(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("project") as batch:
        batch.drop_column("root_identity")
