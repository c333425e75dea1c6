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

from bm_sync.db.read_only import cannot_open, read_only_uri
from bm_sync.db.urls import sqlite_file

Query = Callable[[str, dict[str, object]], Sequence[Sequence[Any]]]

UUID_REVISION = "0006"  # the first revision whose project rows carry an id
REVISION_SQL = "SELECT version_num FROM alembic_version"
PROJECT_BY_ID_SQL = "SELECT id, uuid, root_path, index_token FROM project WHERE uuid = :uuid"
PROJECT_BY_ROOT_SQL = ("SELECT id, uuid, root_path, index_token FROM project "
                       "WHERE root_path = :root")
PROJECT_BY_ROOT_BEFORE_UUID_SQL = ("SELECT id, NULL, root_path, index_token FROM project "
                                   "WHERE root_path = :root")
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
class StoredProject:
    """A project row with what the consistency check compares: token, entity count, and the
    circuit breaker's failures."""

    id: int
    uuid: str | None
    root_path: str
    token: str | None
    entity_count: int = 0
    failures: dict[str, RecordedFailure] = field(default_factory=dict)


@dataclass(frozen=True)
class StoredState:
    """What the database holds about one folder. `revision` None: no database (or one never
    migrated); `by_id` the project holding the id the folder's index recorded, `by_root` the
    one recorded at the folder's path (which of them the folder is: `bm_sync.identity`);
    `unusable`: why the database could not be read at all."""

    revision: str | None = None
    by_id: StoredProject | None = None
    by_root: StoredProject | None = None
    unusable: str | None = None


async def read_stored_state(url: str, root: Path, project_uuid: str | None = None
                            ) -> StoredState:
    """The state of `root`'s project in the database at `url`, read without migrating."""
    path = sqlite_file(url)
    if path is not None:
        return _read_sqlite(path, root, project_uuid)
    if url.startswith("sqlite"):  # in-memory SQLite: a new, empty database every time
        return StoredState()
    return await _read_other(url, root, project_uuid)


def _read(query: Query, has_revision_table: bool, root: Path,
          project_uuid: str | None) -> StoredState:
    if not has_revision_table:
        return StoredState()
    revision_row = query(REVISION_SQL, {})
    revision = str(revision_row[0][0]) if revision_row else None
    has_uuid = revision is not None and revision >= UUID_REVISION
    by_id = (_project(query, PROJECT_BY_ID_SQL, {"uuid": project_uuid})
             if project_uuid and has_uuid else None)
    if by_id is not None and by_id.root_path == str(root):
        by_root: StoredProject | None = by_id
    else:
        by_root = _project(query, PROJECT_BY_ROOT_SQL if has_uuid
                           else PROJECT_BY_ROOT_BEFORE_UUID_SQL, {"root": str(root)})
    return StoredState(revision=revision, by_id=by_id, by_root=by_root)


def _project(query: Query, sql: str, parameters: dict[str, object]) -> StoredProject | None:
    rows = query(sql, parameters)
    if not rows:
        return None
    project_id, project_uuid, root_path, token = rows[0]
    ((count,),) = query(ENTITY_COUNT_SQL, {"project_id": project_id})
    failures = {path: RecordedFailure(content_id, failed, last)
                for path, content_id, failed, last in query(FAILURES_SQL,
                                                            {"project_id": project_id})}
    return StoredProject(project_id, project_uuid, root_path, token, count, failures)


def _read_sqlite(path: Path, root: Path, project_uuid: str | None) -> StoredState:
    if not path.exists():
        return StoredState()
    try:
        connection = _connect_read_only(path)
    except sqlite3.Error as error:
        return StoredState(unusable=f"the database cannot be opened ({error})")
    try:
        def query(sql: str, parameters: dict[str, object]) -> list[Any]:
            return connection.execute(sql, parameters).fetchall()

        has_table = bool(query("SELECT 1 FROM sqlite_master WHERE type = 'table' "
                               "AND name = 'alembic_version'", {}))
        return _read(query, has_table, root, project_uuid)
    except (sqlite3.Error, ValueError) as error:
        return StoredState(unusable=f"the database is not usable ({error})")
    finally:
        connection.close()


def _connect_read_only(path: Path) -> sqlite3.Connection:
    """A read-only connection to `path`, proven by a first read (SQLite opens lazily)."""
    try:
        connection = sqlite3.connect(read_only_uri(path), uri=True)
        try:
            connection.execute("SELECT count(*) FROM sqlite_master").fetchall()
        except sqlite3.Error:
            connection.close()
            raise
        return connection
    except sqlite3.OperationalError as error:
        if not cannot_open(str(error)):
            raise
        return sqlite3.connect(read_only_uri(path, immutable=True), uri=True)


async def _read_other(url: str, root: Path, project_uuid: str | None) -> StoredState:
    from sqlalchemy import inspect, text
    from sqlalchemy.engine import Connection
    from sqlalchemy.exc import SQLAlchemyError

    from bm_sync.db.engine import create_engine, first_line

    engine = create_engine(url)  # raises DatabaseUnusable for a URL it cannot use

    def read(connection: Connection) -> StoredState:
        def query(sql: str, parameters: dict[str, object]) -> Sequence[Sequence[Any]]:
            return connection.execute(text(sql), parameters).all()

        return _read(query, inspect(connection).has_table("alembic_version"), root,
                     project_uuid)

    try:
        async with engine.connect() as connection:
            return await connection.run_sync(read)
    except (SQLAlchemyError, OSError, ValueError) as error:
        return StoredState(unusable=f"the database is not usable ({first_line(error)})")
    finally:
        await engine.dispose()

