"""The one reader of what the database says about a folder: migration revision, project row,
token, entity count and the circuit breaker's failures. It never migrates and never writes.

The SQL is text, run through the stdlib `sqlite3` driver for SQLite files (so a no-change
sync does not import SQLAlchemy) and through a SQLAlchemy connection for any other database;
`_read` holds the rules once for both.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bm_sync.db.urls import sqlite_file

Query = Callable[[str, dict[str, object]], Sequence[Sequence[Any]]]

REVISION_SQL = "SELECT version_num FROM alembic_version"
PROJECT_SQL = "SELECT id, index_token FROM project WHERE root_path = :root"
ENTITY_COUNT_SQL = "SELECT count(*) FROM entity WHERE project_id = :project_id"
FAILURES_SQL = ("SELECT file_path, content_id, count, last_failed_at FROM sync_failure "
                "WHERE project_id = :project_id")


@dataclass(frozen=True, slots=True)
class RecordedFailure:
    """The circuit breaker's memory of one path: the content id it failed with (for a file
    that could not be read, its stat signature), how many times in a row, and when last."""

    content_id: str | None
    count: int
    last_failed_at: float


@dataclass(frozen=True)
class StoredState:
    """What the database holds about one folder. `revision` None: no database (or one never
    migrated); `project_id` None: no row for this folder yet; `unusable`: why it could not be
    read at all."""

    revision: str | None = None
    project_id: int | None = None
    token: str | None = None
    entity_count: int = 0
    failures: dict[str, RecordedFailure] = field(default_factory=dict)
    unusable: str | None = None


async def read_stored_state(url: str, root: Path) -> StoredState:
    """The state of `root`'s project in the database at `url`, read without migrating."""
    path = sqlite_file(url)
    if path is not None:
        return _read_sqlite(path, root)
    if url.startswith("sqlite"):  # in-memory SQLite: a new, empty database every time
        return StoredState()
    return await _read_other(url, root)


def _read(query: Query, has_revision_table: bool, root: Path) -> StoredState:
    if not has_revision_table:
        return StoredState()
    revision_row = query(REVISION_SQL, {})
    revision = str(revision_row[0][0]) if revision_row else None
    project = query(PROJECT_SQL, {"root": str(root)})
    if not project:
        return StoredState(revision=revision)
    project_id, token = project[0]
    ((count,),) = query(ENTITY_COUNT_SQL, {"project_id": project_id})
    failures = {path: RecordedFailure(content_id, failed, last)
                for path, content_id, failed, last in query(FAILURES_SQL,
                                                            {"project_id": project_id})}
    return StoredState(revision=revision, project_id=project_id, token=token,
                       entity_count=count, failures=failures)


def _read_sqlite(path: Path, root: Path) -> StoredState:
    if not path.exists():
        return StoredState()
    try:
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as error:
        return StoredState(unusable=f"the database cannot be opened ({error})")
    try:
        def query(sql: str, parameters: dict[str, object]) -> list[Any]:
            return connection.execute(sql, parameters).fetchall()

        has_table = bool(query("SELECT 1 FROM sqlite_master WHERE type = 'table' "
                               "AND name = 'alembic_version'", {}))
        return _read(query, has_table, root)
    except (sqlite3.Error, ValueError) as error:
        return StoredState(unusable=f"the database is not usable ({error})")
    finally:
        connection.close()


async def _read_other(url: str, root: Path) -> StoredState:
    from sqlalchemy import inspect, text
    from sqlalchemy.engine import Connection
    from sqlalchemy.exc import SQLAlchemyError

    from bm_sync.db.engine import create_engine, first_line

    engine = create_engine(url)  # raises DatabaseUnusable for a URL it cannot use

    def read(connection: Connection) -> StoredState:
        def query(sql: str, parameters: dict[str, object]) -> Sequence[Sequence[Any]]:
            return connection.execute(text(sql), parameters).all()

        return _read(query, inspect(connection).has_table("alembic_version"), root)

    try:
        async with engine.connect() as connection:
            return await connection.run_sync(read)
    except (SQLAlchemyError, OSError, ValueError) as error:
        return StoredState(unusable=f"the database is not usable ({first_line(error)})")
    finally:
        await engine.dispose()

