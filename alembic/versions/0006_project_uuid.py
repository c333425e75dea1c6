"""project.uuid: the identity of a notes folder, also recorded in its index

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30

A folder's identity travels with the folder (its index holds the same id), so a moved or
renamed folder, or one reached through a symlink, keeps its project. Existing projects get an
id here; their index records it on the next sync.
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("project") as batch:
        batch.add_column(sa.Column("uuid", sa.String(), nullable=True))
    connection = op.get_bind()
    project = sa.table("project", sa.column("id", sa.Integer), sa.column("uuid", sa.String))
    for (project_id,) in connection.execute(sa.select(project.c.id)).all():
        connection.execute(sa.update(project).where(project.c.id == project_id)
                           .values(uuid=uuid.uuid4().hex))
    op.create_index("ix_project_uuid", "project", ["uuid"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_project_uuid", "project")
    with op.batch_alter_table("project") as batch:
        batch.drop_column("uuid")
