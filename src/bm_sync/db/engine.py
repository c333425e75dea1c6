"""Opening the entity database: engine, SQLite pragmas, automatic migrations.

Migrations run when a database is opened and is not at `HEAD_REVISION`; a database already at
head costs one `SELECT version_num FROM alembic_version` and alembic is not even imported.
Errors come out as one line (`DatabaseUnusable`, or `DatabaseUrlInvalid` for the URL itself).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sqlalchemy import event, inspect, make_url, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import (
    ArgumentError,
    InvalidRequestError,
    NoSuchModuleError,
    SQLAlchemyError,
)
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bm_sync.db import HEAD_REVISION, postgres
from bm_sync.db.read_only import cannot_open, read_only_uri
from bm_sync.db.urls import LOCK_TIMEOUT_MS, sqlite_file
from bm_sync.errors import DatabaseUnusable, DatabaseUrlInvalid, database_hint

BUSY_TIMEOUT_MS = LOCK_TIMEOUT_MS


def migrations_dir() -> Path:
    """The alembic script directory: shipped inside the wheel (`bm_sync/_alembic`), or the
    repository's `alembic/` in a source checkout (`src/bm_sync/db/engine.py` -> the root)."""
    package = Path(__file__).resolve().parents[1]
    shipped = package / "_alembic"
    if (shipped / "env.py").exists():
        return shipped
    return package.parents[1] / "alembic"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """WAL (readers never block the writer), foreign keys on, a patient busy timeout."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cursor.close()


def create_engine(url: str) -> AsyncEngine:
    """An engine for `url`, not connected yet (SQLite gets its pragmas on each connection)."""
    try:
        engine = create_async_engine(url, connect_args=_connect_arguments(url))
    except (ArgumentError, NoSuchModuleError, InvalidRequestError) as error:
        # A malformed URL, an unknown dialect or a sync-only driver: the user's input.
        raise DatabaseUrlInvalid(f"database URL {redacted(url)!r} is not usable: "
                                 f"{first_line(error)}") from error
    except ImportError as error:
        raise DatabaseUnusable(f"the driver for {redacted(url)!r} is not installed: "
                               f"{first_line(error)}") from error
    if engine.dialect.name == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    elif engine.dialect.name == "postgresql":
        postgres.prepare(engine)
    return engine


def _connect_arguments(url: str) -> dict[str, object]:
    """PostgreSQL waits for another session's lock as long as SQLite's busy timeout, then
    fails the statement (SQLSTATE 55P03), instead of forever (the server's default)."""
    from sqlalchemy.engine import make_url

    if make_url(url).get_backend_name() != "postgresql":
        return {}
    return {"server_settings": {"lock_timeout": str(BUSY_TIMEOUT_MS)}}


async def open_database(url: str) -> AsyncEngine:
    """An engine for `url`, migrated to head. No folder is created: a SQLite file's folder
    must exist (the default one, `.basic-memory/`, is made by the folder lock)."""
    engine = create_engine(url)
    database = sqlite_file(url)
    if database is not None and not database.parent.is_dir():
        await engine.dispose()
        raise DatabaseUnusable(f"the folder of database {str(database)!r} does not exist")
    created = database is not None and not database.exists()
    if database is not None and not created:
        _writable_sidecars(database)
    try:
        async with engine.begin() as connection:
            if await connection.run_sync(read_revision) != HEAD_REVISION:
                # Another bm may be migrating this database right now: wait for it, then
                # look again (it may have done the work).
                await connection.run_sync(postgres.lock_migrations)
                if await connection.run_sync(read_revision) != HEAD_REVISION:
                    await connection.run_sync(upgrade_to_head)
    except (SQLAlchemyError, OSError, ImportError) as error:
        await engine.dispose()
        if created and database is not None:
            # SQLite runs DDL outside the transaction: a new database whose first migration
            # failed (a full disk) would stay half made. It was made here and holds nothing.
            _remove_new_database(database)
        message = first_line(error)
        raise DatabaseUnusable(f"database {redacted(url)!r} cannot be opened: {message}; "
                               f"{database_hint(message, database)}") from error
    return engine


async def open_read_only(url: str) -> AsyncEngine:
    """An engine for `url` that only reads: never migrated, and for a SQLite file a read-only
    connection (`mode=ro`; `immutable` where SQLite cannot open it even so, a WAL database in
    a folder this user cannot write), so the read commands work on a read-only mount and in a
    folder of another user. The caller checks the revision first (`db.state`)."""
    database = sqlite_file(url)
    if database is None:
        return create_engine(url)
    try:
        return await _proven(_read_only_sqlite(database, immutable=False))
    except SQLAlchemyError as error:
        if not cannot_open(first_line(error)):
            raise _unreadable(database, error) from error
    try:
        return await _proven(_read_only_sqlite(database, immutable=True))
    except SQLAlchemyError as error:
        raise _unreadable(database, error) from error


async def _proven(engine: AsyncEngine) -> AsyncEngine:
    """`engine`, once a first read went through (SQLite opens lazily); disposed if not."""
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT count(*) FROM sqlite_master"))
    except BaseException:
        await engine.dispose()
        raise
    return engine


def _unreadable(database: Path, error: SQLAlchemyError) -> DatabaseUnusable:
    message = first_line(error)
    return DatabaseUnusable(f"database {str(database)!r} cannot be read: {message}; "
                            f"{database_hint(message, database)}")


def _read_only_sqlite(database: Path, *, immutable: bool) -> AsyncEngine:
    import aiosqlite

    uri = read_only_uri(database, immutable=immutable)

    async def connect() -> Any:
        return await aiosqlite.connect(uri, uri=True)

    engine = create_async_engine("sqlite+aiosqlite://", async_creator=connect)
    event.listen(engine.sync_engine, "connect", _read_only_pragmas)
    return engine


def _read_only_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA query_only=ON")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cursor.close()


def _writable_sidecars(database: Path) -> None:
    """SQLite makes `-wal` and `-shm` with the database file's permissions: opened while it
    was read-only (0444), they stay read-only after the user makes it writable again, and
    every later sync would fail. Give them back the write bits the database has."""
    try:
        mode = os.stat(database).st_mode & 0o666
    except OSError:
        return
    for suffix in ("-wal", "-shm"):
        sidecar = f"{database}{suffix}"
        try:
            if os.stat(sidecar).st_mode & 0o666 != mode and os.access(database, os.W_OK):
                os.chmod(sidecar, mode)
        except OSError:  # not there, or not ours: SQLite says so if it matters
            pass


def _remove_new_database(database: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        try:
            os.unlink(f"{database}{suffix}")
        except OSError:
            pass


def first_line(error: BaseException) -> str:
    """The driver's message without SQLAlchemy's multi-line background links."""
    error = getattr(error, "orig", None) or error
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def redacted(url: str) -> str:
    """The URL as it may be printed: without its password."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


def read_revision(connection: Connection) -> str | None:
    """The database's alembic revision, or None for a database without one."""
    if not inspect(connection).has_table("alembic_version"):
        return None
    revision = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    return str(revision) if revision is not None else None


def upgrade_to_head(connection: Connection) -> None:
    """Run alembic's `upgrade head` on an open connection (the only place alembic is loaded)."""
    from alembic.config import Config

    from alembic import command

    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")
