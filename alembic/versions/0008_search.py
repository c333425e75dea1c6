"""search index: note_search (SQLite FTS5) and search_text

Revision ID: 0008
Revises: 0007c
Create Date: 2026-11-30

The full-text search index the sync keeps exact (issue 12). The DDL is the library's
(`bm_sync.db.search.ddl`), raw per dialect: FTS5 and tsvector have no SQLAlchemy types. An
existing database's projects have no documents yet: the consistency check sees fewer documents
than entities and the next sync rebuilds, which indexes every note.
"""

from __future__ import annotations

from alembic import op
from bm_sync.db.search import POSTGRES_DROP, SQLITE_DROP, ddl

revision = "0008"
down_revision = "0007c"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for statement in ddl(op.get_bind().dialect.name):
        op.execute(statement)


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    for statement in SQLITE_DROP if sqlite else POSTGRES_DROP:
        op.execute(statement)
