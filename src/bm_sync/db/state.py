"""The one reader of what the database says about a folder: migration revision, project row,
token, entity count and the circuit breaker's failures. It never migrates and never writes.

The SQL is text, run through the stdlib `sqlite3` driver for SQLite files (so a no-change
sync does not import SQLAlchemy) and through a SQLAlchemy connection for any other database;
`_read` holds the rules once for both.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bm_sync.db.read_only import cannot_open, read_only_uri
from bm_sync.db.urls import POSTGRES_ASYNC, postgres_connect_arguments, sqlite_file

Query = Callable[[str, dict[str, object]], Sequence[Sequence[Any]]]

UUID_REVISION = "0006"  # the first revision whose project rows carry an id
ROOT_IDENTITY_REVISION = "0007"  # ... and the device and inode of their original folder
REVISION_SQL = "SELECT version_num FROM alembic_version"
PROJECT_BY_ID_SQL = ("SELECT id, uuid, root_path, index_token, root_identity FROM project "
                     "WHERE uuid = :uuid")
PROJECT_BY_ROOT_SQL = ("SELECT id, uuid, root_path, index_token, root_identity FROM project "
                       "WHERE root_path = :root")
PROJECT_BY_ID_BEFORE_ROOT_IDENTITY_SQL = ("SELECT id, uuid, root_path, index_token, NULL "
                                          "FROM project WHERE uuid = :uuid")
PROJECT_BY_ROOT_BEFORE_ROOT_IDENTITY_SQL = ("SELECT id, uuid, root_path, index_token, NULL "
                                            "FROM project WHERE root_path = :root")
PROJECT_BY_ROOT_BEFORE_UUID_SQL = ("SELECT id, NULL, root_path, index_token, NULL FROM project "
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
    root_identity: str | None = None  # `DEV:INODE` of its original folder (bm_sync.identity)


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
    if url.startswith(POSTGRES_ASYNC + "://"):
        return await _read_postgres(url, root, project_uuid)
    return await _read_other(url, root, project_uuid)


# The reading rules, once for every driver: a generator that yields (sql, parameters) and is
# sent back the rows; `_drive` runs it on a blocking driver, `_drive_async` on asyncpg.
Reading = Generator[tuple[str, dict[str, object]], Sequence[Sequence[Any]], StoredState]


def _read(has_revision_table: bool, root: Path, project_uuid: str | None) -> Reading:
    if not has_revision_table:
        return StoredState()
    revision_row = yield REVISION_SQL, {}
    revision = str(revision_row[0][0]) if revision_row else None
    has_uuid = revision is not None and revision >= UUID_REVISION
    has_identity = revision is not None and revision >= ROOT_IDENTITY_REVISION
    by_id = ((yield from _project(PROJECT_BY_ID_SQL if has_identity
                                  else PROJECT_BY_ID_BEFORE_ROOT_IDENTITY_SQL,
                                  {"uuid": project_uuid}))
             if project_uuid and has_uuid else None)
    if by_id is not None and by_id.root_path == str(root):
        by_root: StoredProject | None = by_id
    else:
        by_root = yield from _project(PROJECT_BY_ROOT_SQL if has_identity
                                      else PROJECT_BY_ROOT_BEFORE_ROOT_IDENTITY_SQL if has_uuid
                                      else PROJECT_BY_ROOT_BEFORE_UUID_SQL, {"root": str(root)})
    return StoredState(revision=revision, by_id=by_id, by_root=by_root)


def _project(sql: str, parameters: dict[str, object]
             ) -> Generator[tuple[str, dict[str, object]], Sequence[Sequence[Any]],
                            StoredProject | None]:
    rows = yield sql, parameters
    if not rows:
        return None
    project_id, project_uuid, root_path, token, root_identity = rows[0]
    ((count,),) = yield ENTITY_COUNT_SQL, {"project_id": project_id}
    failure_rows = yield FAILURES_SQL, {"project_id": project_id}
    failures = {path: RecordedFailure(content_id, failed, last)
                for path, content_id, failed, last in failure_rows}
    return StoredProject(project_id, project_uuid, root_path, token, count, failures,
                         root_identity)


def _drive(reading: Reading, query: Query) -> StoredState:
    try:
        request = next(reading)
        while True:
            request = reading.send(query(*request))
    except StopIteration as finished:
        result: StoredState = finished.value
        return result


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
        return _drive(_read(has_table, root, project_uuid), query)
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

        return _drive(_read(inspect(connection).has_table("alembic_version"), root,
                            project_uuid), query)

    try:
        async with engine.connect() as connection:
            return await connection.run_sync(read)
    except (SQLAlchemyError, OSError, ValueError) as error:
        return StoredState(unusable=f"the database is not usable ({first_line(error)})")
    finally:
        await engine.dispose()



async def _read_postgres(url: str, root: Path, project_uuid: str | None) -> StoredState:
    """The PostgreSQL reading through asyncpg itself: SQLAlchemy's import alone costs more
    than the whole no-change sync should (about a second on a loaded machine)."""
    import asyncpg  # type: ignore[import-untyped]

    try:
        connection = await asyncpg.connect(**postgres_connect_arguments(url))
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, ValueError,
            TypeError) as error:
        return StoredState(unusable=f"the database is not usable ({_first_line(error)})")
    try:
        reading = _read(await connection.fetchval(
            "SELECT to_regclass('alembic_version') IS NOT NULL"), root, project_uuid)
        try:
            sql, parameters = next(reading)
            while True:
                positional, values = _numbered(sql, parameters)
                rows = await connection.fetch(positional, *values)
                sql, parameters = reading.send([tuple(row) for row in rows])
        except StopIteration as finished:
            result: StoredState = finished.value
            return result
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
        return StoredState(unusable=f"the database is not usable ({_first_line(error)})")
    finally:
        await connection.close()


def _numbered(sql: str, parameters: dict[str, object]) -> tuple[str, list[object]]:
    """`:name` placeholders as asyncpg's `$1, $2, ...`, with the values in that order."""
    values: list[object] = []

    def number(match: re.Match[str]) -> str:
        values.append(parameters[match.group(1)])
        return f"${len(values)}"

    return re.sub(r":(\w+)", number, sql), values


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]
