"""Issue 7, identity: a copy that syncs first cannot keep the original's project.

`mv o o2; cp -a o2 copy; bm sync copy; bm sync o2` with one database: the copy takes the
project (the original is out of sight), then the original, known by the device and inode its
project row keeps (migration 0007), reclaims it, and the copy gets a project of its own with
one warning line. On SQLite and on PostgreSQL.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import postgres
from tests.helpers import bm_json, run_bm, write


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database shared by several folders."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"
        return
    url = postgres.server().create_database()
    yield url
    postgres.drop_database(url)


def sync(folder: Path, database_url: str) -> subprocess.CompletedProcess[str]:
    result = run_bm("sync", str(folder), "--db", database_url)
    assert result.returncode == 0, result.stderr
    return result


def first_run_of(note: Path, database_url: str) -> int:
    """The run that added the note, as its history tells (follows the project's history)."""
    timeline = bm_json("history", str(note), "--db", database_url)["versions"]
    run_id: int = timeline[-1]["run_id"]
    return run_id


def test_the_original_reclaims_its_project_from_a_copy_that_synced_first(
        tmp_path: Path, database_url: str) -> None:
    original = tmp_path / "o"
    write(original, "a.md", "# A\nalpha\n")
    sync(original, database_url)
    moved = tmp_path / "o2"
    original.rename(moved)
    copy = tmp_path / "copy"
    shutil.copytree(moved, copy, symlinks=True)  # cp -a: another folder, another inode
    sync(copy, database_url)
    sync(moved, database_url)
    assert first_run_of(moved / "a.md", database_url) == 1  # the original's history
    result = sync(copy, database_url)
    assert [line for line in result.stderr.splitlines() if "copy" in line] == [
        f"bm: warning: rebuilt by a full scan: this folder is a copy of {moved}: it gets a "
        "project of its own"]
    assert first_run_of(copy / "a.md", database_url) > 1  # a history of its own
    assert first_run_of(moved / "a.md", database_url) == 1
    again = json.loads(run_bm("sync", str(moved), "--db", database_url, "--json").stdout)
    assert (again["rebuilt"], again["unchanged"]) == (False, 1)


def test_a_folder_restored_from_a_backup_keeps_its_project(tmp_path: Path) -> None:
    """Another inode, and the original is gone: the same as a move across file systems."""
    original = tmp_path / "notes"
    write(original, "a.md", "# A\nalpha\n")
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"
    sync(original, database_url)
    backup = tmp_path / "backup"
    shutil.copytree(original, backup, symlinks=True)
    shutil.rmtree(original)
    shutil.copytree(backup, original, symlinks=True)  # restored at the same path
    shutil.rmtree(backup)
    result = sync(original, database_url)
    assert "copy" not in result.stderr
    assert first_run_of(original / "a.md", database_url) == 1
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(original, elsewhere, symlinks=True)  # moved to another disk: a copy...
    shutil.rmtree(original)  # ...and the original removed
    assert "copy" not in sync(elsewhere, database_url).stderr
    assert first_run_of(elsewhere / "a.md", database_url) == 1
