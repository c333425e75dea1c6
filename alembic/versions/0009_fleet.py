"""fleet: the project registry (schedule state, lease) and the worker runs

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30

`bm project add` registers folders in `registered_project`; `bm worker` keeps them in sync,
coordinated through the lease columns, and records each sync in `worker_run`
(the models in bm_sync.db.models, docs/deploy.md).
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "registered_project",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(), nullable=False, unique=True),
        sa.Column("root_path", sa.String(), nullable=False, unique=True),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_started_at", sa.Float(), nullable=True),
        sa.Column("last_duration_s", sa.Float(), nullable=True),
        sa.Column("last_result", sa.String(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_files", sa.Integer(), nullable=True),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False),
        sa.Column("not_before", sa.Float(), nullable=True),
        sa.Column("lease_holder", sa.String(), nullable=True),
        sa.Column("lease_expires_at", sa.Float(), nullable=True),
    )
    op.create_table(
        "worker_run",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("registered_project_id", sa.Integer(),
                  sa.ForeignKey("registered_project.id", ondelete="CASCADE"), nullable=False),
        sa.Column("worker", sa.String(), nullable=False),
        sa.Column("started_at", sa.Float(), nullable=False),
        sa.Column("ended_at", sa.Float(), nullable=True),
        sa.Column("lease_until", sa.Float(), nullable=False),
        sa.Column("result", sa.String(), nullable=True),
    )
    op.create_index("ix_worker_run_project_started", "worker_run",
                    ["registered_project_id", "started_at"])


def downgrade() -> None:
    op.drop_table("worker_run")
    op.drop_table("registered_project")
