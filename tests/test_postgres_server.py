"""The throwaway PostgreSQL server of the tests (tests/postgres.py) is real, isolated per test,
and shows the limits a PostgreSQL backend must respect (bind parameters, NUL bytes, one row
touched twice by one upsert)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as postgres_insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from tests import postgres
from tests.helpers import REPO

metadata = sa.MetaData()
note = sa.Table("note", metadata,
                sa.Column("id", sa.Integer, primary_key=True),
                sa.Column("path", sa.String, nullable=False, unique=True),
                sa.Column("title", sa.Text))
seen_databases: set[str] = set()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[postgres.Server]:
    yield postgres.server()
    postgres.shutdown()


@pytest.fixture
def postgres_url(postgres_server: postgres.Server) -> Iterator[str]:
    url = postgres_server.create_database()
    yield url
    postgres.drop_database(url)


@pytest.fixture
async def engine(postgres_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(postgres_url)
    async with engine.begin() as connection:
        await connection.run_sync(metadata.create_all)
    yield engine
    await engine.dispose()


async def test_a_note_written_through_sqlalchemy_and_asyncpg_reads_back(
        engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        await connection.execute(note.insert(), [{"path": "inbox.md", "title": "Inbox"},
                                                 {"path": "café.md", "title": "Café ☕"}])
    async with engine.connect() as connection:
        rows = (await connection.execute(sa.select(note.c.path, note.c.title)
                                         .order_by(note.c.id))).all()
        server_version = await connection.scalar(sa.text("SHOW server_version"))
    assert [tuple(row) for row in rows] == [("inbox.md", "Inbox"), ("café.md", "Café ☕")]
    assert server_version.startswith("15")


@pytest.mark.parametrize("turn", ["first", "second"])
async def test_each_test_gets_a_database_of_its_own(postgres_url: str, turn: str) -> None:
    """Both turns create the same table: in a shared database the second would fail."""
    engine = create_async_engine(postgres_url)
    try:
        async with engine.begin() as connection:
            tables = await connection.run_sync(lambda sync: sa.inspect(sync).get_table_names())
            await connection.run_sync(metadata.create_all)
            database = await connection.scalar(sa.text("SELECT current_database()"))
    finally:
        await engine.dispose()
    assert tables == []
    assert database not in seen_databases
    seen_databases.add(database)


async def test_a_statement_takes_at_most_32767_bind_parameters(engine: AsyncEngine) -> None:
    """asyncpg refuses a 32,768th parameter: batches must be cut below it."""
    async with engine.connect() as connection:
        allowed = sa.select(sa.func.count()).select_from(note).where(
            note.c.id.in_(range(32767)))
        assert await connection.scalar(allowed) == 0
        with pytest.raises(DBAPIError, match="32767"):
            await connection.scalar(sa.select(sa.func.count()).select_from(note).where(
                note.c.id.in_(range(32768))))


async def test_text_refuses_nul_bytes(engine: AsyncEngine) -> None:
    """SQLite stores "a\\x00b"; PostgreSQL text cannot hold a NUL."""
    with pytest.raises(DBAPIError, match="0x00"):
        async with engine.begin() as connection:
            await connection.execute(note.insert(), {"path": "nul.md", "title": "a\x00b"})


async def test_one_upsert_cannot_touch_a_row_twice(engine: AsyncEngine) -> None:
    """SQLite lets the last of two same-key rows win; PostgreSQL refuses the statement."""
    statement = postgres_insert(note).values([{"path": "twice.md", "title": "one"},
                                              {"path": "twice.md", "title": "two"}])
    statement = statement.on_conflict_do_update(index_elements=["path"],
                                                set_={"title": statement.excluded.title})
    with pytest.raises(DBAPIError, match="cannot affect row a second time"):
        async with engine.begin() as connection:
            await connection.execute(statement)


def test_a_server_started_from_the_command_line_runs_until_stopped() -> None:
    """What .ci/run does: `start` prints a URL and leaves the server running; `stop URL`
    stops it and removes its folder."""
    command = [sys.executable, "-m", "tests.postgres"]
    started = subprocess.run([*command, "start"], cwd=REPO, capture_output=True, text=True,
                             check=False, timeout=300)
    assert started.returncode == 0, started.stderr
    url = started.stdout.strip()
    folder = postgres.socket_dir(url)
    try:
        database = postgres.create_database(url)
        assert database.startswith("postgresql+asyncpg://postgres@/bm_test_")
    finally:
        stopped = subprocess.run([*command, "stop", url], cwd=REPO, capture_output=True,
                                 text=True, check=False, timeout=300)
    assert stopped.returncode == 0, stopped.stderr
    assert not folder.exists()


def test_stop_removes_only_folders_of_its_own(tmp_path: Path) -> None:
    keep = tmp_path / "data"
    keep.mkdir()
    (keep / "PG_VERSION").write_text("15\n")
    postgres.stop(tmp_path)
    assert (keep / "PG_VERSION").exists()
