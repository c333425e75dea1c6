"""A sync that cannot complete says why in one line (`bm: error: <cause>; <hint>`, exit 1),
corrupts nothing, and the next sync converges once the cause is gone."""

from __future__ import annotations

import os
import resource
import shutil
import signal
import subprocess
from pathlib import Path

from bm_sync import Detector
from tests.helpers import BM, as_unprivileged, bm_json, run_bm, share_state_with_everyone, write


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("bm: error: ") and "; " in lines[0], lines
    return lines[0]


def converges(notes: Path, expected: list[str]) -> None:
    report = bm_json("sync", str(notes))
    assert sorted(report["added"] + report["modified"]) == expected
    assert report["failed"] == [] and Detector(notes).status().change_count == 0


# Fails before the database is opened (lock, index); test_sync.py's rebuilds run on both.
def test_state_folder_replaced_by_a_file(notes: Path) -> None:
    write(notes, "a.md", "# A\n")
    (notes / ".basic-memory").write_text("not a folder")
    one_line_error(run_bm("sync", str(notes)))
    assert bm_json("status", str(notes))["added"] == ["a.md"]  # status only reads
    (notes / ".basic-memory").unlink()
    converges(notes, ["a.md"])


# Fails before the database is opened (lock, index); test_sync.py's rebuilds run on both.
def test_index_replaced_by_a_folder(notes: Path) -> None:
    write(notes, "a.md", "# A\n")
    assert run_bm("sync", str(notes)).returncode == 0
    write(notes, "b.md", "# B\n")
    index = notes / ".basic-memory" / "index"
    index.unlink()
    index.mkdir()
    one_line_error(run_bm("sync", str(notes)))
    index.rmdir()
    report = bm_json("sync", str(notes))  # the index is gone: a rebuild that keeps a.md's row
    assert report["rebuilt"] is True and report["failed"] == [] and report["deleted"] == []
    assert Detector(notes).status().change_count == 0


# SQLite only: the size limit is on the database file this process writes.
def test_disk_full_while_writing_the_database(notes: Path) -> None:
    """A real write failure: the sync runs with RLIMIT_FSIZE (SIGXFSZ ignored, so the write
    fails with EFBIG instead of killing the process), too small for its database."""
    for number in range(300):
        write(notes, f"n{number:03}.md", f"# Note {number}\n" + "- [fact] words words\n" * 20)

    def limited() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 << 10, 64 << 10))

    result = subprocess.run([*BM, "sync", str(notes)], capture_output=True, text=True,
                            preexec_fn=limited, timeout=300)
    line = one_line_error(result)
    assert "space" in line or "size" in line or "full" in line, line
    converges(notes, sorted(f"n{number:03}.md" for number in range(300)))


# SQLite only: runs as an unprivileged user (as_unprivileged).
def test_state_folder_owned_by_another_user(notes: Path) -> None:
    """After `sudo bm sync`, `.basic-memory` belongs to root: the user's sync fails in one
    line (the library raises SyncFailed), and works again once ownership is fixed."""
    write(notes, "a.md", "# A\n")
    assert run_bm("sync", str(notes)).returncode == 0
    write(notes, "b.md", "# B\n")
    os.chmod(notes, 0o777)
    for path in (notes / "a.md", notes / "b.md"):
        os.chmod(path, 0o644)

    def sync_unprivileged() -> str:
        return sync_message(notes)

    message = as_unprivileged(sync_unprivileged)
    assert message != "synced" and "\n" not in message and "; " in message
    assert "permission denied" in message
    if os.geteuid() == 0:  # give the state back to the user, as `sudo chown -R` would
        for folder, _folders, files in os.walk(notes / ".basic-memory"):
            shutil.chown(folder, 65534, 65534)
            for name in files:
                shutil.chown(os.path.join(folder, name), 65534, 65534)
    assert as_unprivileged(sync_unprivileged) == "synced"


# Fails before the database is opened (lock, index); test_sync.py's rebuilds run on both.
def test_lock_replaced_by_a_folder(notes: Path) -> None:
    write(notes, "a.md", "# A\n")
    assert run_bm("sync", str(notes)).returncode == 0
    write(notes, "b.md", "# B\n")
    lock = notes / ".basic-memory" / "lock"
    lock.unlink(missing_ok=True)
    lock.mkdir()
    one_line_error(run_bm("sync", str(notes)))
    lock.rmdir()
    converges(notes, ["b.md"])


# SQLite only: runs as an unprivileged user (as_unprivileged).
def test_a_read_only_notes_folder_can_be_read_not_synced(notes: Path) -> None:
    """A folder the user cannot write (as for a read-only mount): status works, sync fails in
    one line (the library raises SyncFailed) and writes nothing."""
    write(notes, "a.md", "# A\n")
    os.chmod(notes, 0o755)  # owned by root: read-only for the unprivileged user
    os.chmod(notes / "a.md", 0o644)

    def status_then_sync() -> tuple[list[str], str]:
        return Detector(notes).status().added, sync_message(notes)

    added, message = as_unprivileged(status_then_sync)
    assert added == ["a.md"]
    assert message != "synced" and "\n" not in message and "permission denied" in message
    if os.geteuid() == 0:
        assert not (notes / ".basic-memory").exists()


# SQLite only: memory.db's file permissions, as an unprivileged user.
def test_a_read_only_database_fails_in_one_line_then_recovers(notes: Path) -> None:
    """memory.db made read-only: the sync fails in one line; after `chmod 644` the next sync
    works (no read-only `-shm` or `-wal` left behind by the failed one)."""
    write(notes, "a.md", "# A\n")
    assert run_bm("sync", str(notes)).returncode == 0
    share_state_with_everyone(notes)
    os.chmod(notes, 0o777)
    write(notes, "b.md", "# B\n")
    os.chmod(notes / "b.md", 0o644)
    database = notes / ".basic-memory" / "memory.db"

    def sync_unprivileged() -> str:
        return sync_message(notes)

    def unprivileged(action: str) -> None:
        if action == "read-only":
            os.chmod(database, 0o444)
        else:
            os.chmod(database, 0o644)

    if os.geteuid() == 0:
        for path in (database, *database.parent.glob("memory.db-*")):
            shutil.chown(path, 65534, 65534)
    as_unprivileged(lambda: unprivileged("read-only"))
    message = as_unprivileged(sync_unprivileged)
    assert message != "synced" and "\n" not in message and "; " in message, message
    as_unprivileged(lambda: unprivileged("writable"))
    assert as_unprivileged(sync_unprivileged) == "synced"
    assert "b.md" in bm_json("history", str(notes / "b.md"))["path"]


# SQLite only: SQLite's write lock and busy timeout.
def test_a_database_locked_longer_than_the_busy_timeout(notes: Path) -> None:
    """Another process holds the database's write lock past the busy timeout: one line that
    names the cause; once it lets go, the next sync converges."""
    import sys

    write(notes, "a.md", "# A\n")
    assert run_bm("sync", str(notes)).returncode == 0
    write(notes, "b.md", "# B\n")
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sqlite3, sys\n"
         "connection = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
         "connection.execute('BEGIN IMMEDIATE')\n"
         "print('locked', flush=True)\n"
         "sys.stdin.readline()\n"
         "connection.execute('ROLLBACK')\n",
         str(notes / ".basic-memory" / "memory.db")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdin is not None
    assert holder.stdout.readline().strip() == "locked"
    try:
        line = one_line_error(run_bm("sync", str(notes)))
    finally:
        holder.stdin.write("release\n")
        holder.stdin.close()
        holder.wait()
    assert "locked" in line and "another process holds the database" in line
    converges(notes, ["b.md"])


def sync_message(notes: Path) -> str:
    """Sync `notes` through the library: the `SyncFailed` line, or "synced"."""
    import asyncio

    from bm_sync import SyncFailed
    from bm_sync.sync import SyncEngine

    async def run() -> str:
        async with SyncEngine.open(notes) as engine:
            try:
                await engine.sync()
            except SyncFailed as error:
                return str(error)
        return "synced"

    return asyncio.run(run())
