"""initial: project, entity (without mtime/size), observation, relation

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "project",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("root_path", sa.String(), nullable=False, unique=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "entity",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("project_id", sa.Integer(),
                  sa.ForeignKey("project.id", ondelete="CASCADE"), nullable=False),
        sa.Column("file_path", sa.String(), nullable=False),
        sa.Column("permalink", sa.String(), nullable=True),
        sa.Column("title", sa.String(), nullable=False),
        sa.Column("entity_type", sa.String(), nullable=False),
        sa.Column("content_type", sa.String(), nullable=False),
        sa.Column("checksum", sa.String(), nullable=True),
        sa.Column("checksum_kind", sa.String(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("project_id", "file_path", name="uq_entity_project_file_path"),
        sa.UniqueConstraint("project_id", "permalink", name="uq_entity_project_permalink"),
    )
    op.create_table(
        "observation",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("entity_id", sa.Integer(),
                  sa.ForeignKey("entity.id", ondelete="CASCADE"), nullable=False),
        sa.Column("category", sa.String(), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("tags", sa.Text(), nullable=True),
        sa.Column("context", sa.Text(), nullable=True),
    )
    op.create_index("ix_observation_entity_id", "observation", ["entity_id"])
    op.create_table(
        "relation",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("from_id", sa.Integer(),
                  sa.ForeignKey("entity.id", ondelete="CASCADE"), nullable=False),
        sa.Column("to_id", sa.Integer(),
                  sa.ForeignKey("entity.id", ondelete="SET NULL"), nullable=True),
        sa.Column("to_name", sa.String(), nullable=False),
        sa.Column("relation_type", sa.String(), nullable=False),
        sa.Column("context", sa.Text(), nullable=True),
    )
    op.create_index("ix_relation_from_id", "relation", ["from_id"])
    op.create_index("ix_relation_to_id", "relation", ["to_id"])
    op.create_index("ix_relation_to_name", "relation", ["to_name"])


def downgrade() -> None:
    op.drop_table("relation")
    op.drop_table("observation")
    op.drop_table("entity")
    op.drop_table("project")
