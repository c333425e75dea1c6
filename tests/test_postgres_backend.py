"""PostgreSQL as a first-class backend, against the real throwaway server (tests/postgres.py):
one-line errors, a connection lost mid-sync, racing first syncs, many projects in one
database, migrations from every revision, NUL bytes and the statement limits."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy.engine import Connection

from bm_sync.db import HEAD_REVISION
from bm_sync.sync import SyncEngine
from tests import postgres
from tests.helpers import BM, REPO, bm_json, run_bm, write
from tests.helpers_pgfirst import Database, run_sql


def earlier_revisions() -> list[str]:
    """Every revision below head, oldest first, from the script directory itself (so a new
    migration is tested as an upgrade target without touching this file)."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from bm_sync.db.engine import migrations_dir

    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    revisions = [script.revision for script in ScriptDirectory.from_config(config).walk_revisions()]
    return [revision for revision in reversed(revisions) if revision != HEAD_REVISION]


EARLIER_REVISIONS = earlier_revisions()


def one_line_error(result: subprocess.CompletedProcess[str], code: int) -> str:
    assert result.returncode == code, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("bm: error: "), result.stderr
    return lines[0]


def many_notes(root: Path, count: int) -> None:
    for number in range(count):
        observations = "".join(f"- [fact] fact {line} of note {number} #t{line}\n"
                               for line in range(6))
        write(root, f"n{number // 100}/note {number:04}.md",
              f"# Note {number}\n{observations}- links [[Note {(number + 1) % count}]]\n")


@pytest.fixture
def postgres_url() -> str:
    """A fresh database on the test server (dropped with the throwaway server)."""
    return postgres.server().create_database()


@pytest.mark.parametrize(("suffix", "code", "says"), [
    ("&sslmode=require", 2, "asyncpg spells it ssl=require"),
    ("&colour=blue", 2, "unknown parameter(s) colour"),
])
def test_a_bad_url_parameter_is_a_usage_error(notes: Path, postgres_url: str, suffix: str,
                                              code: int, says: str) -> None:
    write(notes, "a.md", "# A\n")
    line = one_line_error(run_bm("sync", str(notes), "--db", postgres_url + suffix), code)
    assert says in line
    assert not (notes / ".basic-memory").exists()  # refused before anything was created


def test_a_synchronous_postgres_url_names_the_async_one_without_the_password(
        notes: Path) -> None:
    line = one_line_error(run_bm("sync", str(notes), "--db", "postgresql://me:s3cret@db/notes"),
                          2)
    assert "postgresql+asyncpg://me:***@db/notes" in line and "s3cret" not in line


@pytest.mark.parametrize(("problem", "says"), [
    ("database missing", "create the database first"),
    ("server down", "is the database server running"),
    ("wrong port", "is the database server running"),
])
def test_an_unreachable_database_is_one_line(notes: Path, postgres_url: str, problem: str,
                                             says: str) -> None:
    write(notes, "a.md", "# A\n")
    socket = str(postgres.server().folder)
    url = {"database missing": postgres_url.replace("/bm_test_", "/missing_", 1),
           "server down": postgres_url.replace(socket, "/tmp/no-server-here"),
           "wrong port": "postgresql+asyncpg://postgres@127.0.0.1:1/notes"}[problem]
    for command in (["sync", str(notes)], ["history", str(notes)]):
        line = one_line_error(run_bm(*command, "--db", url), 1)
        assert says in line or command[0] == "history", line


def test_a_wrong_password_is_one_line(notes: Path, postgres_url: str) -> None:
    """The throwaway server trusts local users; a role with a password (md5 on the socket is
    not configured there), so the refusal tested is the missing role's."""
    write(notes, "a.md", "# A\n")
    url = postgres_url.replace("postgres@", "nobody_here:wrong@", 1)
    line = one_line_error(run_bm("sync", str(notes), "--db", url), 1)
    assert "nobody_here" in line and "wrong" not in line.replace("nobody_here", "")
    assert "check the user name and password" in line


def _terminate_backends(url: str) -> int:
    name = url.split("?", 1)[0].rsplit("/", 1)[1]
    rows = run_sql(postgres.server().url,
                   "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                   "WHERE datname = ? AND pid <> pg_backend_pid()", name)
    return len(rows)


def test_a_connection_lost_mid_sync_is_fatal_one_line_and_the_next_sync_converges(
        notes: Path, postgres_url: str) -> None:
    many_notes(notes, 400)
    process = subprocess.Popen([*BM, "sync", str(notes), "--db", postgres_url],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    terminated = 0
    deadline = time.monotonic() + 120
    while process.poll() is None and time.monotonic() < deadline:
        # Once some batches are committed: the sync is in the middle of its writes.
        if not terminated and run_sql(postgres_url, "SELECT to_regclass('entity') IS NOT NULL"
                                      )[0][0] and run_sql(
                postgres_url, "SELECT count(*) FROM entity")[0][0] > 0:
            terminated = _terminate_backends(postgres_url)
        time.sleep(0.02)
    stdout, stderr = process.communicate(timeout=120)
    assert terminated, "the sync ended before a connection could be cut"
    line = one_line_error(subprocess.CompletedProcess(process.args, process.returncode,
                                                      stdout, stderr), 1)
    assert "connection to the database server was lost" in line
    assert not (notes / ".basic-memory" / "index").exists()  # nothing claims to be synced
    report = bm_json("sync", str(notes), "--db", postgres_url)
    assert report["failed"] == []
    assert run_sql(postgres_url, "SELECT count(*) FROM entity")[0][0] == 400
    assert run_sql(postgres_url, "SELECT count(*) FROM observation")[0][0] == 400 * 6
    assert run_sql(postgres_url, "SELECT count(*) FROM relation WHERE to_id IS NULL"
                   )[0][0] == 0
    assert "up to date" in run_bm("sync", str(notes), "--db", postgres_url).stdout


def test_first_syncs_of_two_folders_into_one_empty_database_race_safely(
        tmp_path: Path, postgres_url: str) -> None:
    """Both find no schema; the migration lock makes one wait for the other. Then the two
    folders are two projects that never see each other's rows, whatever their file names."""
    folders = [tmp_path / "alice", tmp_path / "bob"]
    for folder in folders:
        write(folder, "shared name.md", f"# {folder.name}\n- [owner] {folder.name}\n")
        write(folder, f"{folder.name} only.md", "# Mine\n- see [[Shared Name]]\n")
    processes = [subprocess.Popen([*BM, "sync", str(folder), "--db", postgres_url, "--json"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for folder in folders]
    results = [process.communicate(timeout=300) for process in processes]
    assert [process.returncode for process in processes] == [0, 0], results
    assert run_sql(postgres_url, "SELECT version_num FROM alembic_version") == [
        (HEAD_REVISION,)]
    projects = dict(run_sql(postgres_url, "SELECT root_path, id FROM project"))
    assert sorted(projects) == sorted(str(folder) for folder in folders)
    for folder in folders:
        paths = sorted(path for (path,) in run_sql(
            postgres_url, "SELECT file_path FROM entity WHERE project_id = ?",
            projects[str(folder)]))
        assert paths == sorted([f"{folder.name} only.md", "shared name.md"])
        history = bm_json("history", str(folder), "--db", postgres_url)
        assert len(history["runs"]) == 1 and history["runs"][0]["added"] == 2
    # Links resolve inside their own project only.
    assert run_sql(postgres_url, """
        SELECT count(*) FROM relation r JOIN entity s ON s.id = r.from_id
        JOIN entity t ON t.id = r.to_id WHERE s.project_id <> t.project_id""") == [(0,)]


def _upgrade_to(connection: Connection, revision: str) -> None:
    from alembic.config import Config

    from alembic import command
    from bm_sync.db.engine import migrations_dir

    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


@pytest.mark.parametrize("revision", ["empty", *EARLIER_REVISIONS])
async def test_migrations_run_on_postgres_from_every_earlier_revision(
        notes: Path, postgres_url: str, revision: str) -> None:
    from sqlalchemy.ext.asyncio import create_async_engine

    write(notes, "a.md", "# A\n- [fact] kept\n")
    if revision != "empty":
        engine = create_async_engine(postgres_url)
        async with engine.begin() as connection:
            await connection.run_sync(_upgrade_to, revision)
        await engine.dispose()
    async with SyncEngine.open(notes, database_url=postgres_url) as engine:
        report = await engine.sync()
    assert report.added == ["a.md"] and report.failed == []
    assert run_sql(postgres_url, "SELECT version_num FROM alembic_version") == [
        (HEAD_REVISION,)]
    assert run_sql(postgres_url, "SELECT file_path FROM entity") == [("a.md",)]


NUL_NOTE = ('---\ntitle: "Nul\\0title"\ntags: ["a\\0b"]\nsource: "x\\0y"\n---\n'
            "# Heading\n- [fact\x00kind] text with a \x00 byte #t\x00g (context\x00here)\n"
            "- links\x00to [[Tar\x00get]]\nplain \x00 line\n")


@pytest.mark.usefixtures("database")
async def test_nul_bytes_in_every_text_field_are_indexed(notes: Path) -> None:
    write(notes, "nul.md", NUL_NOTE)
    write(notes, "Tar\ufffdget.md", "# Tar\ufffdget\n")
    async with SyncEngine.open(notes) as engine:
        report = await engine.sync()
        assert report.failed == [] and sorted(report.added) == ["Tar\ufffdget.md", "nul.md"]
        assert (await engine.sync()).change_count == 0


@pytest.mark.usefixtures("database")
async def test_statements_stay_under_the_parameter_limit_and_repeat_no_row(
        notes: Path) -> None:
    """40,000 paths in one delete (one parameter each: past the 32,767 limit); 3,000 entity
    rows in one upsert (13 parameters each), two of them for one path."""
    from bm_sync.db import writes

    write(notes, "a.md", "# A\n")
    async with SyncEngine.open(notes) as engine:
        await engine.sync()
        database, _runs, _versions = await engine._open_database()
        rows = [{"file_path": f"bulk/{number}.md", "title": f"N{number}", "entity_type": "note",
                 "content_type": "text/markdown", "permalink": f"bulk/{number}"}
                for number in range(3000)]
        rows.append({**rows[0], "title": "the last of a repeated key wins"})
        async with database.sessions() as session, session.begin():
            ids = await writes.upsert_entities(session, database.project_id, rows)
            assert len(ids) == 3000
            stored = await writes.stored_files(session, database.project_id,
                                               [f"bulk/{number}.md" for number in range(40_000)])
            assert len(stored) == 3000
            await writes.delete_entities(session, database.project_id,
                                         [f"bulk/{number}.md" for number in range(40_000)])
        async with database.sessions() as session:
            assert await writes.checksums(session, database.project_id) == {
                "a.md": (await writes.checksums(session, database.project_id))["a.md"]}


def test_the_database_fixture_fails_rather_than_skips_without_a_server(tmp_path: Path) -> None:
    """A PostgreSQL test with no server to be had fails with the reason: run one in a child
    with a URL of a server that does not exist."""
    test = tmp_path / "test_needs_postgres.py"
    test.write_text("def test_it(database):\n    assert database.is_postgres\n")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "tests.conftest", "-p", "no:cacheprovider",
         "--rootdir", str(tmp_path), str(test), "-k", "postgres"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONPATH": str(REPO),
             postgres.URL_VARIABLE: "postgresql+asyncpg://postgres@/postgres?host=/tmp/none"})
    summary = result.stdout.strip().splitlines()[-1]
    assert result.returncode == 1 and "1 error" in summary and "skipped" not in summary, (
        result.stdout)
    assert "cannot reach the test server" in result.stdout


def test_database_fixture_points_the_library_and_the_cli_at_postgres(
        database: Database, notes: Path) -> None:
    write(notes, "a.md", "# A\n")
    assert run_bm("sync", str(notes), "--quiet").returncode == 0
    assert database.query(notes, "SELECT file_path FROM entity") == [("a.md",)]
    assert (notes / ".basic-memory" / "memory.db").exists() == (not database.is_postgres)


async def test_the_raw_state_reader_agrees_with_sqlalchemy_and_never_migrates(
        notes: Path, postgres_url: str) -> None:
    """The no-change path reads PostgreSQL through asyncpg alone; it must read what the
    SQLAlchemy reader reads, including an older revision (which must stay older)."""
    from bm_sync.db import state

    write(notes, "a.md", "# A\n")
    write(notes, "b.md", "# B\n")
    async with SyncEngine.open(notes, database_url=postgres_url) as engine:
        await engine.sync()
    run_sql(postgres_url, "UPDATE alembic_version SET version_num = '0004'")
    through_asyncpg = await state.read_stored_state(postgres_url, notes)
    through_sqlalchemy = await state._read_other(postgres_url, notes, None)
    assert through_asyncpg == through_sqlalchemy
    project = through_asyncpg.by_root
    assert through_asyncpg.revision == "0004" and project is not None
    assert project.entity_count == 2 and project.token is not None
    assert run_sql(postgres_url, "SELECT version_num FROM alembic_version") == [("0004",)]


def test_a_no_change_sync_into_postgres_never_imports_sqlalchemy(
        notes: Path, postgres_url: str) -> None:
    write(notes, "a.md", "# A\n")
    assert run_bm("sync", str(notes), "--db", postgres_url, "--quiet").returncode == 0
    code = ("import asyncio, sys\nfrom bm_sync.sync import SyncEngine\n"
            "async def main():\n"
            "    async with SyncEngine.open(sys.argv[1], database_url=sys.argv[2]) as engine:\n"
            "        return await engine.sync()\n"
            "report = asyncio.run(main())\n"
            "assert report.change_count == 0, report\n"
            "assert 'sqlalchemy' not in sys.modules, 'sqlalchemy imported'\n")
    result = subprocess.run([sys.executable, "-c", code, str(notes), postgres_url],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr


def test_a_table_locked_by_another_session_is_one_line_not_a_wait(notes: Path,
                                                                  postgres_url: str) -> None:
    """Another session holds a lock on the entity table past the lock timeout: one line that
    names the cause (as SQLite's busy timeout does), not a sync waiting forever; once the lock
    is gone, the next sync converges."""
    write(notes, "a.md", "# A\n")
    assert run_bm("sync", str(notes), "--db", postgres_url).returncode == 0
    write(notes, "b.md", "# B\n")
    dsn = postgres_url.replace("postgresql+asyncpg://", "postgresql://")
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import asyncio, sys\nimport asyncpg\n"
         "async def main():\n"
         "    connection = await asyncpg.connect(sys.argv[1])\n"
         "    transaction = connection.transaction()\n"
         "    await transaction.start()\n"
         "    await connection.execute('LOCK TABLE entity IN ACCESS EXCLUSIVE MODE')\n"
         "    print('locked', flush=True)\n"
         "    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)\n"
         "    await transaction.rollback()\n"
         "    await connection.close()\n"
         "asyncio.run(main())\n", dsn],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdin is not None
    assert holder.stdout.readline().strip() == "locked"
    try:
        result = subprocess.run([*BM, "sync", str(notes), "--db", postgres_url],
                                capture_output=True, text=True, timeout=120)
    finally:
        holder.stdin.write("release\n")
        holder.stdin.close()
        holder.wait()
    line = one_line_error(result, 1)
    assert "lock timeout" in line and "another process holds the database" in line
    report = bm_json("sync", str(notes), "--db", postgres_url)
    assert "b.md" in report["added"]
