"""The database layer: migrations (the seed spec's path), pragmas, the head constant."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from bm_sync.db import HEAD_REVISION
from bm_sync.db.engine import migrations_dir, open_database
from bm_sync.sync import SyncEngine
from tests.helpers import REPO, write
from tests.helpers_pgfirst import Database


def alembic(*args: str, url: str) -> subprocess.CompletedProcess[str]:
    """The real `alembic` command, run from the repository root as a developer would."""
    return subprocess.run([sys.executable, "-m", "alembic", "-x", f"url={url}", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=120)


def test_head_constant_matches_the_scripts() -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    assert ScriptDirectory.from_config(config).get_current_head() == HEAD_REVISION


# SQLite here; test_postgres_backend.py migrates PostgreSQL from every revision.
def test_alembic_upgrade_head_from_the_repository(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    result = alembic("upgrade", "head", url=url)
    assert result.returncode == 0, result.stderr
    with sqlite3.connect(tmp_path / "cli.db") as connection:
        assert connection.execute("SELECT version_num FROM alembic_version").fetchone() == (
            HEAD_REVISION,)


@pytest.mark.usefixtures("database")
async def test_models_equal_the_migrated_schema(database: Database, tmp_path: Path) -> None:
    """The ORM models and the migrations describe one schema, on both backends. The search
    index's tables have no model (FTS5 virtual tables, a tsvector column): they are left out."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from bm_sync.db.models import Base

    def modelled(name: str | None, type_: str, _parents: object) -> bool:
        return not (type_ == "table" and name is not None
                    and (name.startswith("note_search") or name == "search_text"))

    engine = await open_database(database.url or f"sqlite+aiosqlite:///{tmp_path / 'head.db'}")
    async with engine.connect() as connection:
        differences = await connection.run_sync(
            lambda sync_connection: compare_metadata(
                MigrationContext.configure(sync_connection, opts={"include_name": modelled}),
                Base.metadata))
    await engine.dispose()
    assert differences == []


# SQLite only: SQLite's pragmas.
async def test_wal_mode_and_foreign_keys(tmp_path: Path) -> None:
    from sqlalchemy import text

    engine = await open_database(f"sqlite+aiosqlite:///{tmp_path / 'wal.db'}")
    async with engine.connect() as connection:
        assert (await connection.execute(text("PRAGMA journal_mode"))).scalar() == "wal"
        assert (await connection.execute(text("PRAGMA foreign_keys"))).scalar() == 1
    await engine.dispose()


async def test_first_revision_database_upgrades_and_is_backfilled(notes: Path,
                                                                  database: Database) -> None:
    """The seed spec's path: a database without mtime/size gets them on the next sync."""
    write(notes, "a.md", "# A\n")
    (notes / ".basic-memory").mkdir()
    assert alembic("upgrade", "0001", url=database.url_for(notes)).returncode == 0
    columns_sql = ("SELECT column_name FROM information_schema.columns "
                   "WHERE table_name = 'entity'" if database.is_postgres
                   else "SELECT name FROM pragma_table_info('entity')")
    columns = {name for (name,) in database.query(notes, columns_sql)}
    assert "file_path" in columns and "mtime" not in columns and "size" not in columns
    database.execute(notes, "INSERT INTO project (name, root_path, created_at, updated_at) "
                            "VALUES ('notes', ?, '2025-01-01', '2025-01-01')", str(notes))
    database.execute(notes,
                     "INSERT INTO entity (project_id, file_path, permalink, title, entity_type, "
                     "content_type, checksum, created_at, updated_at) SELECT id, 'a.md', 'a', "
                     "'A', 'note', 'text/markdown', 'old', '2025-01-01', '2025-01-01' "
                     "FROM project")
    ((old_id,),) = database.query(notes, "SELECT id FROM entity")
    async with SyncEngine.open(notes) as engine:
        report = await engine.sync()
    assert report.rebuilt
    assert database.query(notes, "SELECT version_num FROM alembic_version") == [
        (HEAD_REVISION,)]
    rows = database.query(notes, "SELECT id, file_path, size, mtime FROM entity")
    assert len(rows) == 1
    entity_id, path, size, mtime = rows[0]
    assert (entity_id, path, size) == (old_id, "a.md", 4)  # same entity, backfilled
    assert mtime == (notes / "a.md").stat().st_mtime_ns / 1e9
    # The project made before ids existed got one, and the index records the same.
    from bm_sync.index_format import read_index

    ((project_uuid,),) = database.query(notes, "SELECT uuid FROM project")
    assert project_uuid and read_index(notes / ".basic-memory" / "index").meta[
        "project_id"] == str(project_uuid)


# SQLite only: the stdlib reader of SQLite files (test_postgres_backend.py has asyncpg's).
async def test_state_reader_agrees_across_drivers_and_never_migrates(notes: Path) -> None:
    """The consistency check reads the same facts through the stdlib driver (SQLite files) and
    through SQLAlchemy (every other database), and neither migrates: a database at an older
    revision must be seen as such, or it would never trigger the rebuild it needs."""
    from bm_sync.db import state

    write(notes, "a.md", "# A\n")
    write(notes, "b.md", "# B\n")
    async with SyncEngine.open(notes) as engine:
        await engine.sync()
    database = notes / ".basic-memory" / "memory.db"
    with sqlite3.connect(database) as connection:
        connection.execute("UPDATE alembic_version SET version_num = '0004'")
    url = f"sqlite+aiosqlite:///{database}"
    through_stdlib = await state.read_stored_state(url, notes)
    through_sqlalchemy = await state._read_other(url, notes, None)
    assert through_stdlib == through_sqlalchemy
    project = through_stdlib.by_root
    assert through_stdlib.revision == "0004" and project is not None
    assert project.entity_count == 2 and project.token is not None
    assert through_stdlib.unusable is None
    with sqlite3.connect(database) as connection:
        assert connection.execute("SELECT version_num FROM alembic_version").fetchone() == (
            "0004",)
