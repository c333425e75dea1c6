"""search ranking: a GIN index of the head columns' words on PostgreSQL

Revision ID: 0010_search_rank
Revises: 0009
Create Date: 2026-11-30

`bm search` ranks the notes whose title, tags, permalink, path or observation categories hold
the query's words first (`bm_sync.db.search.rank`). On PostgreSQL those words are the
tsvector's weights A-C, which the GIN index on `tsv` cannot tell apart: finding them read every
row holding the word. This indexes `ts_filter(tsv, '{a,b,c}')`, the same words with their
positions, an expression of the stored column (nothing to write, nothing to backfill). SQLite
needs nothing: FTS5 filters columns in its own index.
"""

from __future__ import annotations

from alembic import op
from bm_sync.db.search import POSTGRES_HEAD_INDEX, POSTGRES_HEAD_INDEX_DROP

revision = "0010_search_rank"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        op.execute(POSTGRES_HEAD_INDEX)


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        op.execute(POSTGRES_HEAD_INDEX_DROP)
