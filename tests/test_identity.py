"""A notes folder's identity travels with it: moved, renamed, reached through a symlink or
copied, and root discovery and database URLs built from any folder name."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from bm_sync.index_format import read_index
from tests.helpers import bm_json, run_bm, write
from tests.helpers_pgfirst import Database, shared


def project_id(root: Path) -> object:
    return read_index(root / ".basic-memory" / "index").meta.get("project_id")


def make_notes(root: Path) -> None:
    write(root, "a.md", "# A\n- links_to [[B]]\n")
    write(root, "sub/b.md", "# B\n")
    write(root, "sub/c.md", "# C\n")


def test_a_moved_folder_keeps_its_project_ids_and_history(tmp_path: Path,
                                                          database: Database) -> None:
    notes, moved = tmp_path / "notes", tmp_path / "Notes"
    shared_database = shared(database, tmp_path / "shared.db")
    make_notes(notes)
    url = shared_database.url_for(notes)
    assert run_bm("sync", str(notes), "--db", url).returncode == 0
    before = shared_database.query(notes, "SELECT file_path, id FROM entity ORDER BY 1")
    notes.rename(moved)
    result = bm_json("sync", str(moved), "--db", url)
    assert (result["added"], result["deleted"], result["moved"]) == ([], [], [])
    assert shared_database.query(moved, "SELECT file_path, id FROM entity ORDER BY 1") == before
    assert shared_database.query(moved, "SELECT root_path FROM project") == [(str(moved),)]
    timeline = bm_json("history", str(moved / "a.md"), "--db", url)
    assert [version["kind"] for version in timeline["versions"]] == ["added"]


# The link is resolved before the database is opened: SQLite alone says as much.
def test_a_symlinked_root_is_the_same_project(tmp_path: Path) -> None:
    notes = tmp_path / "notes"
    make_notes(notes)
    assert run_bm("sync", str(notes)).returncode == 0
    link = tmp_path / "n2"
    link.symlink_to(notes)
    result = bm_json("sync", str(link))
    assert (result["added"], result["deleted"]) == ([], [])
    assert len(Database("sqlite", None).query(notes, "SELECT id FROM project")) == 1


def test_a_copied_folder_gets_its_own_identity(tmp_path: Path, database: Database) -> None:
    notes = tmp_path / "notes"
    shared_database = shared(database, tmp_path / "shared.db")
    make_notes(notes)
    url = shared_database.url_for(notes)
    assert run_bm("sync", str(notes), "--db", url).returncode == 0
    original = shared_database.query(notes, "SELECT file_path, id FROM entity ORDER BY 1")
    copy = tmp_path / "notes2"
    shutil.copytree(notes, copy, symlinks=True)
    copied = bm_json("sync", str(copy), "--db", url)
    assert sorted(copied["added"]) == ["a.md", "sub/b.md", "sub/c.md"]
    assert project_id(copy) != project_id(notes)
    assert len(shared_database.query(notes, "SELECT id FROM project")) == 2
    again = run_bm("sync", str(notes), "--db", url)  # the original is untouched
    assert again.returncode == 0 and "up to date" in again.stdout, again.stderr
    assert "rebuilt" not in again.stderr
    ids = shared_database.query(notes, "SELECT e.file_path, e.id FROM entity e JOIN project p "
                                       "ON p.id = e.project_id WHERE p.root_path = ? ORDER BY 1",
                                str(notes))
    assert ids == original
    assert "up to date" in run_bm("sync", str(copy), "--db", url).stdout


# Root discovery happens before the database is opened: SQLite alone says as much.
def test_a_subfolder_uses_the_root_above_and_narrows_the_report(tmp_path: Path) -> None:
    notes = tmp_path / "notes"
    make_notes(notes)
    assert run_bm("sync", str(notes)).returncode == 0
    write(notes, "sub/d.md", "# D\n")
    write(notes, "e.md", "# E\n")
    status = bm_json("status", cwd=notes / "sub")
    assert status["added"] == ["sub/d.md"]
    synced = bm_json("sync", str(notes / "sub"))
    assert synced["added"] == ["sub/d.md"]
    assert not (notes / "sub" / ".basic-memory").exists()
    assert bm_json("status", str(notes))["added"] == []  # the whole folder was synced


# SQLite only: the default SQLite file's URL is what is built from the folder's name.
@pytest.mark.parametrize("name", ["C# notes", "what?", "50%25 done", "a b&c=d"])
def test_folder_names_with_url_characters(tmp_path: Path, name: str) -> None:
    notes = tmp_path / name
    make_notes(notes)
    before = sorted(os.listdir(tmp_path))
    first = run_bm("sync", str(notes))
    assert first.returncode == 0, first.stderr
    second = run_bm("sync", str(notes))
    assert second.returncode == 0 and "up to date" in second.stdout, second.stderr
    assert sorted(os.listdir(tmp_path)) == before  # nothing created beside the folder
    assert (notes / ".basic-memory" / "memory.db").exists()


# SQLite only: a SQLite file's folder; the URL checks below refuse before any database.
def test_a_database_in_a_missing_folder_is_an_error_not_a_mkdir(tmp_path: Path) -> None:
    notes = tmp_path / "notes"
    make_notes(notes)
    missing = tmp_path / "nonexistent" / "dir"
    result = run_bm("sync", str(notes), "--db", f"sqlite+aiosqlite:///{missing / 'x.db'}")
    assert result.returncode == 1 and result.stderr.startswith("bm: error: ")
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "nonexistent").exists()
    assert not (notes / ".basic-memory").exists()  # a rejected URL creates nothing


@pytest.mark.parametrize(("scheme", "says"), [
    ("sqlite+aiosqlit", "needs the driver 'aiosqlit'"),
    ("sqlit+aiosqlite", "unknown database 'sqlit'"),
    ("postgresql", "is not an async PostgreSQL URL; use postgresql+asyncpg://"),
    ("mysql", "names no async driver"),
])
def test_a_mistyped_url_is_refused_before_anything_is_created(tmp_path: Path, scheme: str,
                                                               says: str) -> None:
    notes = tmp_path / "notes"
    make_notes(notes)
    for given in (["--db", f"{scheme}:///{tmp_path / 'x.db'}"], []):
        environment = {} if given else {"BM_DATABASE_URL": f"{scheme}:///{tmp_path / 'x.db'}"}
        result = run_bm("sync", str(notes), *given, env=environment)
        assert result.returncode == 2 and says in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
        assert not (notes / ".basic-memory").exists() and not (tmp_path / "x.db").exists()


def test_a_synchronous_sqlite_url_suggests_the_async_one(tmp_path: Path) -> None:
    notes = tmp_path / "notes"
    make_notes(notes)
    result = run_bm("sync", str(notes), "--db", f"sqlite:///{tmp_path / 'x.db'}")
    assert result.returncode == 2 and "sqlite+aiosqlite:///" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "x.db").exists() and not (notes / ".basic-memory").exists()
