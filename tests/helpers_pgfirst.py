"""The database a test syncs into, SQLite or PostgreSQL, and how the test reads it back.

The `database` fixture (conftest.py) gives a `Database`: for SQLite the default file of each
folder (`<root>/.basic-memory/memory.db`), for PostgreSQL a fresh database on the test server
named by `BM_DATABASE_URL` (so the library and every `bm` subprocess use it). Tests read rows
with `database.query(root, sql, *args)`, written with `?` placeholders, on either backend.
"""

from __future__ import annotations

import os
import re
import sqlite3
from pathlib import Path
from typing import Any

from tests import postgres

SQLITE = "sqlite"
POSTGRES = "postgres"
BACKENDS = (SQLITE, POSTGRES)


class Database:
    """One test's database. `url` is None for SQLite (each folder's default file)."""

    def __init__(self, backend: str, url: str | None, file: Path | None = None) -> None:
        self.backend = backend
        self.url = url
        self.file = file  # SQLite: this file rather than each folder's default one

    @property
    def is_postgres(self) -> bool:
        return self.backend == POSTGRES

    def url_for(self, root: Path) -> str:
        """The URL a sync of `root` uses."""
        if self.url is not None:
            return self.url
        return f"sqlite+aiosqlite:///{self._file(root)}"

    def _file(self, root: Path) -> Path:
        return self.file or root / ".basic-memory" / "memory.db"

    def query(self, root: Path, sql: str, *args: object) -> list[tuple[Any, ...]]:
        """Rows of `sql` (`?` placeholders) in the database `root` syncs into."""
        if self.url is None:
            with sqlite3.connect(self._file(root)) as connection:
                return connection.execute(sql, args).fetchall()
        return [tuple(row) for row in run_sql(self.url, sql, *args)]

    def execute(self, root: Path, sql: str, *args: object) -> None:
        """Run a statement that changes the database (`?` placeholders), committed."""
        if self.url is None:
            with sqlite3.connect(self._file(root)) as connection:
                connection.execute(sql, args)
            return
        run_sql(self.url, sql, *args)

    def remove(self, root: Path) -> None:
        """The database is gone (deleted, or a new empty one in its place)."""
        if self.url is None:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{root / '.basic-memory' / 'memory.db'}{suffix}").unlink(missing_ok=True)
            return
        postgres.drop_database(self.url)
        name = self.url.split("?", 1)[0].rsplit("/", 1)[1]
        postgres._execute(postgres.server().url,
                          f'CREATE DATABASE "{name}" TEMPLATE template0 STRATEGY FILE_COPY')


def current() -> Database:
    """The database of the running test, as the `database` fixture set it (SQLite when no
    test server URL is in `BM_DATABASE_URL`): module helpers of converted test files read
    rows through it without taking the fixture as an argument."""
    url = os.environ.get("BM_DATABASE_URL", "")
    if url.startswith("postgresql"):
        return Database(POSTGRES, url)
    return Database(SQLITE, None)


def fresh_database(sqlite_file: Path) -> Database:
    """Another empty database on the running test's backend (`sqlite_file` for SQLite); a
    PostgreSQL one is dropped with the server (each test server is throwaway)."""
    if current().is_postgres:
        return Database(POSTGRES, postgres.server().create_database())
    return Database(SQLITE, None, sqlite_file)


def query(root: Path, sql: str, *args: object) -> list[tuple[Any, ...]]:
    """`current().query`: rows of `sql` in the database `root` syncs into."""
    return current().query(root, sql, *args)


def run_sql(url: str, sql: str, *args: object) -> list[Any]:
    """Run `sql` (`?` placeholders) on a PostgreSQL database through asyncpg, from sync code
    (also inside an async test)."""
    numbered = iter(range(1, len(args) + 1))
    statement = re.sub(r"\?", lambda _match: f"${next(numbered)}", sql)

    async def fetch() -> list[Any]:
        import asyncpg  # type: ignore[import-untyped]

        connection = await asyncpg.connect(postgres._driver_dsn(url))
        try:
            return list(await connection.fetch(statement, *args))
        finally:
            await connection.close()

    result: list[Any] = postgres._run_coroutine(fetch())
    return result


def shared(database: Database, sqlite_file: Path) -> Database:
    """The one database several folders of a test sync into (`--db database.url_for(root)`):
    `sqlite_file` for SQLite, the test's own database for PostgreSQL (many projects in one)."""
    if database.is_postgres:
        return database
    return Database(SQLITE, None, sqlite_file)
