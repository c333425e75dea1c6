"""The fleet through a real PgBouncer in transaction pooling mode (tests/pgbouncer.py), in
front of the test PostgreSQL server: the commands, two workers sharing projects, a worker
killed and its projects taken over, migrations of a fresh database, all through the pooler,
whose small pool makes the clients share server connections. The URL is what docs/deploy.md
tells the user to write (`?prepared_statement_cache_size=0`)."""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import pgbouncer, postgres
from tests.helpers import BM, run_bm, write
from tests.helpers_fleet import (
    WorkerProcess,
    bm_ok,
    ended_runs,
    entity_paths,
    files_on_disk,
    make_notes,
    overlaps,
    registry_state,
    wait_until,
)


@pytest.fixture
def pooled_url() -> Iterator[str]:
    """A fresh database of the test server, reached through the bouncer."""
    server_url = postgres.server().create_database()
    yield pgbouncer.bouncer().url(server_url)
    postgres.drop_database(server_url)


@pytest.mark.parametrize(("url", "pooled"), [
    ("postgresql+asyncpg://bm@pgbouncer:6432/bm?prepared_statement_cache_size=0", True),
    ("postgresql+asyncpg://bm@/bm?host=/run/pg&prepared_statement_cache_size=0&ssl=require",
     True),
    ("postgresql+asyncpg://bm@pgbouncer:6432/bm?prepared_statement_cache_size= 0", True),
    ("postgresql+asyncpg://bm@db/bm", False),
    ("postgresql+asyncpg://bm@db/bm?prepared_statement_cache_size=100", False),
    ("postgresql+asyncpg://bm@db/bm?statement_cache_size=0", True),  # asyncpg's spelling
    ("postgresql+asyncpg://bm@db/bm?statement_cache_size=100", False),
])
def test_the_url_says_whether_a_pooler_is_in_between(url: str, pooled: bool) -> None:
    from bm_sync.db.urls import behind_pooler

    assert behind_pooler(url) is pooled


def test_commands_and_migrations_through_the_pooler(tmp_path: Path, pooled_url: str) -> None:
    folders = [make_notes(tmp_path / f"p{number}", 4) for number in range(3)]
    # Two first commands at once on the empty database: both migrate through the pooler
    # (the migration lock is a transaction's own) and both succeed.
    racing = [subprocess.Popen([*BM, "project", "add", str(folder), "--db", pooled_url],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
              for folder in folders[:2]]
    for process in racing:
        _out, err = process.communicate(timeout=300)
        assert process.returncode == 0, err
    bm_ok("project", "add", str(folders[2]), "--db", pooled_url)

    first = run_bm("sync", "--all", "--db", pooled_url)
    assert first.returncode == 0, first.stderr
    assert sorted(line.split(":")[0] for line in first.stdout.splitlines()) == \
        ["p0", "p1", "p2"]
    assert all("4 added" in line for line in first.stdout.splitlines())
    again = run_bm("sync", "--all", "--db", pooled_url)
    assert again.returncode == 0 and again.stdout.count("0 added 0 modified") == 3

    # `bm sync PATH`: the no-change path reads through asyncpg alone, then a change.
    quiet = run_bm("sync", str(folders[0]), "--db", pooled_url)
    assert quiet.returncode == 0 and "up to date" in quiet.stdout, quiet.stderr
    write(folders[0], "fresh.md", "# Fresh\n\n- links_to [[Note 1]]\n")
    (folders[0] / "n3.md").unlink()
    changed = run_bm("sync", str(folders[0]), "--db", pooled_url)
    assert changed.returncode == 0 and "1 added" in changed.stdout, changed.stderr
    assert entity_paths(pooled_url, folders[0]) == files_on_disk(folders[0])

    listing = json.loads(bm_ok("project", "list", "--json", "--db", pooled_url))
    files = {item["name"]: item["files"] for item in listing["projects"]}
    assert files == {"p0": 4, "p1": 4, "p2": 4}
    assert "removed" in bm_ok("project", "remove", "p1", "--yes", "--db", pooled_url)
    assert entity_paths(pooled_url, folders[1]) == set()
    assert files_on_disk(folders[1]) == {"n0.md", "n1.md", "n2.md", "n3.md"}


def test_the_lock_timeout_holds_through_the_pooler(pooled_url: str) -> None:
    """Direct connections get `lock_timeout` at startup; PgBouncer refuses that, so each
    transaction sets it: a statement never waits for another session's lock forever."""
    from sqlalchemy import text

    from bm_sync.db.engine import open_database

    async def settings() -> list[str]:
        engine = await open_database(pooled_url)
        try:
            seen = []
            for _ in range(3):  # separate transactions, maybe on other server connections
                async with engine.begin() as connection:
                    seen.append(str((await connection.execute(
                        text("SELECT current_setting('lock_timeout')"))).scalar()))
            return seen
        finally:
            await engine.dispose()

    assert asyncio.run(settings()) == ["10s", "10s", "10s"]


def test_without_the_setting_the_pooler_is_one_line_and_loses_nothing(
        tmp_path: Path, pooled_url: str) -> None:
    folder = make_notes(tmp_path / "plain", 2)
    plain = pooled_url.replace("&prepared_statement_cache_size=0", "")
    for command in (["project", "add", str(folder)], ["sync", str(folder)]):
        result = run_bm(*command, "--db", plain)
        assert result.returncode == 1, result.stdout
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
        assert "unsupported startup parameter" in result.stderr
        assert "prepared_statement_cache_size=0" in result.stderr  # what to do about it
    assert files_on_disk(folder) == {"n0.md", "n1.md"}


def test_two_workers_share_projects_through_the_pooler(tmp_path: Path,
                                                       pooled_url: str) -> None:
    folders = [make_notes(tmp_path / f"w{number}", 3) for number in range(5)]
    for folder in folders:
        bm_ok("project", "add", str(folder), "--db", pooled_url)
    workers = [WorkerProcess("--db", pooled_url, "--interval", "1", "--concurrency", "2")
               for _ in range(2)]
    wait_until(lambda: len(ended_runs(pooled_url)) == 5, "a sync of each project")
    newcomer = make_notes(tmp_path / "w5", 2)
    bm_ok("project", "add", str(newcomer), "--db", pooled_url)
    write(folders[2], "fresh.md", "# Fresh\n")
    wait_until(lambda: ended_runs(pooled_url).get("w5", 0) >= 1, "a sync of the newcomer")
    wait_until(lambda: "fresh.md" in entity_paths(pooled_url, folders[2]),
               "the change applied")
    wait_until(lambda: min(ended_runs(pooled_url).values()) >= 2, "another cycle")
    assert [worker.terminate() for worker in workers] == [0, 0]

    errors = [event for worker in workers for event in worker.events
              if event["event"] == "error" or event.get("result", "ok") != "ok"]
    assert errors == []
    rows, runs = registry_state(pooled_url)
    assert all(row.lease_holder is None for row in rows)
    assert overlaps(runs) == []
    assert len({run.worker for run in runs}) == 2
    for folder in [*folders, newcomer]:
        assert entity_paths(pooled_url, folder) == files_on_disk(folder)


def test_a_killed_worker_is_taken_over_through_the_pooler(tmp_path: Path,
                                                          pooled_url: str) -> None:
    folders = [make_notes(tmp_path / f"k{number}", 3) for number in range(4)]
    for folder in folders:
        bm_ok("project", "add", str(folder), "--db", pooled_url)
    first = WorkerProcess("--db", pooled_url, "--interval", "2", "--concurrency", "2")
    wait_until(lambda: len(ended_runs(pooled_url)) == 4, "a sync of each project")
    first.kill()
    before = registry_state(pooled_url)[1]
    killed_at = max(run.started_at for run in before)
    (dead,) = {run.worker for run in before}
    for folder in folders:  # changed while no worker runs
        write(folder, "later.md", "# Later\n")
        (folder / "n0.md").unlink()
    second = WorkerProcess("--db", pooled_url, "--interval", "2", "--concurrency", "2")
    wait_until(lambda: all(entity_paths(pooled_url, folder) == files_on_disk(folder)
                           for folder in folders), "every project converged")
    assert second.terminate() == 0

    _rows, runs = registry_state(pooled_url)
    assert overlaps(runs) == []
    taken = {run.project_name for run in runs if run.started_at > killed_at
             and run.worker != dead and run.result == "ok"}
    assert taken == {"k0", "k1", "k2", "k3"}
