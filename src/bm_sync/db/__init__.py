"""The entity database: models (`models`), opening and migrating (`engine`), batched writes
(`writes`). Migrations live in `alembic/` at the repository root.

This package's `__init__` stays import-free on purpose: the no-change sync path reads
`HEAD_REVISION` without paying for SQLAlchemy.
"""

# The newest alembic revision; a test checks it against the script directory.
HEAD_REVISION = "0010_search_rank"
