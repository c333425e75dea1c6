"""The history commands read; they never claim a project: real folders, real `bm` runs.

`bm history` (and `--show`, `--diff`) never write the database: no migration, no project row,
so a copy, a moved folder, a read-only mount or another user's folder is only read. `bm prune`
and `bm restore` write their own things (stored versions, the user's file) but never take or
re-point a project row either: a copy never prunes through the original's project.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import BM, REPO, run_bm, write
from tests.helpers_pgfirst import Database, shared
from tests.helpers_pgfirst import current as current_database

UNPRIVILEGED = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("bm: error: "), lines
    return lines[0]


def ok(*args: str) -> str:
    result = run_bm(*args)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    return result.stdout


def project_rows(root: Path) -> list[tuple[object, ...]]:
    """The project rows of the database `root` syncs into (the test's backend)."""
    return current_database().query(root, "SELECT id, uuid, root_path, index_token FROM project "
                                          "ORDER BY id")


def object_bytes(root: Path) -> int:
    objects = root / ".basic-memory" / "objects"
    return sum(path.stat().st_size for path in objects.rglob("*") if path.is_file())


@pytest.fixture
def place() -> Iterator[Path]:
    """A folder to hold several notes folders (copies, moves), reachable by `nobody`."""
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="bm-place-"))
    folder.chmod(0o755)
    yield folder
    subprocess.run(["umount", "-q", str(folder / "ro")], capture_output=True, check=False)
    subprocess.run(["chmod", "-R", "u+rwX", str(folder)], check=False)
    shutil.rmtree(folder, ignore_errors=True)


def make_notes(root: Path) -> None:
    """Five notes, synced; then `n1.md` changed and synced: it has two versions."""
    for number in range(1, 6):
        write(root, f"n{number}.md", f"# Note {number}\n")
    ok("sync", str(root))
    write(root, "n1.md", "# Note 1, second words\n")
    ok("sync", str(root))


@pytest.mark.usefixtures("database")
def test_history_of_a_copy_writes_nothing_and_sync_keeps_working(place: Path) -> None:
    """The reviewer's case: `bm history` on a copy made a project row for it; once the
    original moved away, every sync of the copy failed on `project.root_path`."""
    original, copy = place / "t", place / "t2"
    make_notes(original)
    subprocess.run(["cp", "-a", str(original), str(copy)], check=True)
    rows_before = project_rows(copy)
    for args in (("history", str(copy)), ("history", str(copy / "n1.md")),
                 ("history", str(copy / "n1.md"), "--show", "~1"),
                 ("history", str(copy / "n1.md"), "--diff")):
        line = one_line_error(run_bm(*args))
        assert f"no sync has run in {copy} yet" in line
    assert project_rows(copy) == rows_before
    original.rename(place / "t3")
    ok("sync", str(copy))
    ok("sync", str(copy))  # and every later one
    assert "~1" in ok("history", str(copy / "n1.md"))
    assert ok("history", str(copy / "n1.md"), "--show", "~1") == "# Note 1\n"


@pytest.mark.usefixtures("database")
def test_a_moved_folder_reads_its_history_without_re_pointing_its_row(place: Path) -> None:
    make_notes(place / "t")
    rows_before = project_rows(place / "t")
    (place / "t").rename(place / "moved")
    assert "~1" in ok("history", str(place / "moved" / "n1.md"))
    assert project_rows(place / "moved") == rows_before


@pytest.mark.usefixtures("database")
def test_prune_and_restore_of_a_copy_never_use_the_original_project(place: Path) -> None:
    """Pruning a copy through a project of its own made on the fly deleted every version."""
    original, copy = place / "t", place / "t2"
    make_notes(original)
    subprocess.run(["cp", "-a", str(original), str(copy)], check=True)
    stored = object_bytes(copy)
    rows_before = project_rows(copy)
    line = one_line_error(run_bm("prune", str(copy), "--keep", "1"))
    assert f"no sync has run in {copy} yet" in line
    line = one_line_error(run_bm("restore", str(copy / "n1.md"), "--rev", "~1"))
    assert f"no sync has run in {copy} yet" in line
    assert object_bytes(copy) == stored and project_rows(copy) == rows_before
    assert (copy / "n1.md").read_text() == "# Note 1, second words\n"
    # Synced, the copy has a project and a timeline of its own, and prune keeps what it needs.
    ok("sync", str(copy))
    ok("prune", str(copy), "--keep", "1")
    for number in range(1, 6):
        assert ok("history", str(copy / f"n{number}.md"), "--show", "~0").startswith(
            f"# Note {number}")


def test_a_folder_takes_the_path_of_one_moved_away_in_a_shared_database(
        place: Path, database: Database) -> None:
    """t and its copy t2 in one database; t2 moves to t4 and t takes its path: both sync,
    each keeping its id (the row left at the path gives it up, and t4 finds its row by id)."""
    shared_database = shared(database, place / "shared.db")
    first, second = place / "t", place / "t2"
    url = shared_database.url_for(first)
    make_notes(first)
    ok("sync", str(first), "--db", url)
    subprocess.run(["cp", "-a", str(first), str(second)], check=True)
    ok("sync", str(second), "--db", url)
    ids = dict(shared_database.query(first, "SELECT root_path, uuid FROM project"))
    second.rename(place / "t4")
    first.rename(second)
    ok("sync", str(second), "--db", url)
    ok("sync", str(place / "t4"), "--db", url)
    ok("sync", str(second), "--db", url)
    now = dict(shared_database.query(first, "SELECT root_path, uuid FROM project"))
    assert now == {str(second): ids[str(first)], str(place / "t4"): ids[str(second)]}


@pytest.mark.parametrize("args", [
    ("sync", "{root}"),
    ("prune", "{root}", "--keep", "1"),
    ("restore", "{root}/n1.md", "--rev", "~1"),
    ("restore", "{root}/n1.md", "--rev", "~1", "--force"),
])
def test_a_folder_in_place_of_the_lock_is_one_line(place: Path, args: tuple[str, ...]) -> None:
    root = place / "t"
    make_notes(root)
    lock = root / ".basic-memory" / "lock"
    lock.unlink()
    lock.mkdir()
    line = one_line_error(run_bm(*(arg.format(root=root) for arg in args)))
    assert f"cannot take the lock {lock}: is a directory; remove it" in line
    lock.rmdir()
    ok(*(arg.format(root=root) for arg in args))


def history_works(root: Path, prefix: list[str]) -> None:
    """`bm history` of the folder's runs, a timeline, a version and a diff, all exit 0."""
    def bm(*args: str) -> str:
        result = subprocess.run([*prefix, *BM, *args], capture_output=True, text=True,
                                timeout=300, cwd="/")
        assert result.returncode == 0 and not result.stderr, result.stderr
        return result.stdout

    assert "completed" in bm("history", str(root))
    assert "~1" in bm("history", str(root / "n1.md"))
    assert bm("history", str(root / "n1.md"), "--show", "~1") == "# Note 1\n"
    assert "+# Note 1, second words" in bm("history", str(root / "n1.md"), "--diff", "~0")


# SQLite only: what is tested is reading a SQLite file on a read-only mount (`mode=ro`).
def test_history_reads_a_read_only_mount(place: Path) -> None:
    root, mounted = place / "e", place / "ro"
    make_notes(root)
    mounted.mkdir()
    if subprocess.run(["mount", "--bind", str(root), str(mounted)],
                      capture_output=True).returncode != 0:
        pytest.skip("bind mounts need root")
    subprocess.run(["mount", "-o", "remount,bind,ro", str(mounted)], check=True)
    history_works(mounted, [])
    assert "unchanged" in ok("status", str(mounted))
    line = one_line_error(run_bm("prune", str(mounted), "--keep", "1"))
    assert "read-only file system" in line


# SQLite only: an immutable read of a WAL file, by an unprivileged user (as_unprivileged).
@pytest.mark.skipif(sys.platform != "linux", reason="setpriv")
def test_history_reads_a_folder_it_cannot_write(place: Path) -> None:
    """A 555 folder (and its .basic-memory) read by another user: SQLite cannot make the
    WAL's `-shm` there, so the database is read as immutable."""
    root = place / "e"
    make_notes(root)
    for folder in (root, root / ".basic-memory"):
        folder.chmod(0o555)
    history_works(root, UNPRIVILEGED if os.geteuid() == 0 else [])


# SQLite only: runs as an unprivileged user, and the hint is about memory.db's owner.
@pytest.mark.skipif(os.geteuid() != 0, reason="needs another user's folder")
def test_another_users_state_folder_hints_at_ownership(place: Path) -> None:
    """Owned by root, read-only for `nobody`: chmod 644 does not help, chown does."""
    root = place / "e"
    make_notes(root)
    write(root, "new.md", "# New\n")
    result = subprocess.run([*UNPRIVILEGED, *BM, "sync", str(root)], capture_output=True,
                            text=True, timeout=300, cwd="/")
    line = one_line_error(result)
    assert "belongs to another user" in line and "chown" in line and "chmod" not in line
    (root / ".basic-memory" / "lock").chmod(0o666)  # the lock taken, the database refuses
    result = subprocess.run([*UNPRIVILEGED, *BM, "sync", str(root)], capture_output=True,
                            text=True, timeout=300, cwd="/")
    line = one_line_error(result)
    assert "belongs to another user" in line and "chown" in line and "chmod" not in line


def test_a_database_below_head_is_read_after_bm_sync_upgrades_it(place: Path,
                                                                  database: Database) -> None:
    root = place / "t"
    make_notes(root)
    downgraded = subprocess.run(
        [sys.executable, "-m", "alembic", "-x", f"url={database.url_for(root)}",
         "downgrade", "0005"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert downgraded.returncode == 0, downgraded.stderr
    line = one_line_error(run_bm("history", str(root / "n1.md")))
    assert "revision 0005" in line and "bm sync" in line
    assert database.query(root, "SELECT version_num FROM alembic_version") == [("0005",)]
    ok("sync", str(root))
    assert "~1" in ok("history", str(root / "n1.md"))
