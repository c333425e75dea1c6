"""Opening the entity database: engine, SQLite pragmas, automatic migrations.

Migrations run when a database is opened and is not at `HEAD_REVISION`; a database already at
head costs one `SELECT version_num FROM alembic_version` and alembic is not even imported.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event, make_url, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import (
    ArgumentError,
    InvalidRequestError,
    NoSuchModuleError,
    SQLAlchemyError,
)
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine

import bm_sync
from bm_sync.db import HEAD_REVISION
from bm_sync.db.models import Project
from bm_sync.errors import DatabaseUnusable


def migrations_dir() -> Path:
    """The alembic script directory: shipped inside the wheel, or the repository's `alembic/`."""
    package = Path(bm_sync.__file__).resolve().parent
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
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


async def open_database(url: str) -> AsyncEngine:
    """An engine for `url`, migrated to head. SQLite files get their folder created."""
    is_sqlite = url.startswith("sqlite")
    if is_sqlite:
        database = url.partition(":///")[2].split("?", 1)[0]
        if database and database != ":memory:":
            try:
                Path(database).parent.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise DatabaseUnusable(f"database {_redacted(url)!r} cannot be created: "
                                       f"{error.strerror or error}") from error
    try:
        engine = create_async_engine(url)
    except (ArgumentError, NoSuchModuleError, InvalidRequestError) as error:
        # A malformed URL, an unknown dialect or a sync-only driver: the user's input.
        raise DatabaseUnusable(f"database URL {_redacted(url)!r} is not usable: "
                               f"{_first_line(error)}", exit_code=2) from error
    except ImportError as error:
        raise DatabaseUnusable(f"the driver for {_redacted(url)!r} is not installed: "
                               f"{_first_line(error)}") from error
    if is_sqlite:
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    try:
        async with engine.begin() as connection:
            if await connection.run_sync(read_revision) != HEAD_REVISION:
                await connection.run_sync(upgrade_to_head)
    except (SQLAlchemyError, OSError, ImportError) as error:
        await engine.dispose()
        raise DatabaseUnusable(f"database {_redacted(url)!r} cannot be opened: "
                               f"{_first_line(error)}") from error
    return engine


def _first_line(error: BaseException) -> str:
    """The driver's message without SQLAlchemy's multi-line background links."""
    error = getattr(error, "orig", None) or error
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def _redacted(url: str) -> str:
    """The URL as it may be printed: without its password."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


def read_revision(connection: Connection) -> str | None:
    """The database's alembic revision, or None for a database without one."""
    from sqlalchemy import inspect

    if not inspect(connection).has_table("alembic_version"):
        return None
    return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


async def current_revision(session: AsyncSession) -> str | None:
    connection = await session.connection()
    return await connection.run_sync(read_revision)


def upgrade_to_head(connection: Connection) -> None:
    """Run alembic's `upgrade head` on an open connection (the only place alembic is loaded)."""
    from alembic.config import Config

    from alembic import command

    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


async def get_or_create_project(session: AsyncSession, root: Path,
                                name: str | None = None) -> Project:
    project = await session.scalar(select(Project).where(Project.root_path == str(root)))
    if project is None:
        project = Project(name=name or root.name or str(root), root_path=str(root))
        session.add(project)
        await session.flush()
    return project
