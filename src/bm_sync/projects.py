"""Many projects in one database: the registry (`bm project add/list/remove`), and the
registry's side of a sync (claim, renew, finish).

The registry lives in the database given by `--db` / `$BM_DATABASE_URL`, else in a per-user
default, `$XDG_DATA_HOME/bm-sync/projects.db` (`~/.local/share/bm-sync/projects.db`); every
registered project's rows go to that same database. A folder synced alone (`bm sync PATH`
without `--db`) keeps its embedded default, `<PATH>/.basic-memory/memory.db`.

One sync's outcome lives in `bm_sync.project_sync` and the leases in `bm_sync.leases`: both
run where the registry is not open (sync processes, watchers). Their names are re-exported
here, where the fleet's modules have always found them.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from bm_sync.db.urls import check_url, sqlite_url
from bm_sync.errors import BmSyncError
from bm_sync.leases import WATCH_SUFFIX, Leases, worker_id
from bm_sync.project_sync import (
    BUSY,
    FAILED,
    MISSING,
    OK,
    REMOVED,
    UNREADABLE,
    SyncOutcome,
    describe_report,
    folder_problem,
    peak_rss_mb,
    sync_folder,
    sync_line,
)

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from bm_sync.db.registry import RegisteredRow, WorkerRunRow

__all__ = ["BUSY", "FAILED", "MISSING", "OK", "REGISTRY_FILE", "REMOVED", "UNREADABLE",
           "WATCH_SUFFIX", "Leases", "ProjectError", "Registry", "SyncOutcome",
           "default_registry_url", "describe_report", "folder_problem", "peak_rss_mb",
           "registry_url", "sync_folder", "sync_line", "worker_id"]

REGISTRY_FILE = "projects.db"
REMOVE_WAIT_S = 60.0  # how long `bm project remove` waits for a sync in flight
# How long a worker may take to notice that its watch lease was revoked: it reads the
# registry every second at most (`worker.Worker.poll_s`), and a little more for the batch.
WATCHER_NOTICE_S = 1.5


class ProjectError(BmSyncError):
    """A registry command that cannot do what was asked (exit 1, one line)."""


def default_registry_url() -> str:
    """The per-user registry database (its folder is made here)."""
    data_home = os.environ.get("XDG_DATA_HOME") or os.path.expanduser("~/.local/share")
    folder = Path(data_home) / "bm-sync"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ProjectError(f"cannot create the registry folder {folder}: "
                           f"{error.strerror or error}") from error
    return sqlite_url(folder / REGISTRY_FILE)


def registry_url(given: str | None) -> str:
    """`given` (`--db`, or `$BM_DATABASE_URL` through the option), else the per-user default."""
    if given:
        check_url(given)
        return given
    return default_registry_url()


class Registry:
    """The registry database, opened (and migrated) once. Each method is one short
    transaction (`bm_sync.db.registry`). Use `Registry.open`."""

    def __init__(self, url: str, engine: AsyncEngine) -> None:
        self.url = url
        self.engine = engine

    @classmethod
    @asynccontextmanager
    async def open(cls, url: str) -> AsyncIterator[Registry]:
        from bm_sync.db.engine import open_database

        engine = await open_database(url)
        try:
            yield cls(url, engine)
        finally:
            await engine.dispose()

    async def projects(self) -> list[RegisteredRow]:
        from bm_sync.db.registry import registered

        async with self.engine.connect() as connection:
            return await registered(connection)

    async def find(self, name: str) -> RegisteredRow:
        from bm_sync.db.registry import find

        async with self.engine.connect() as connection:
            row = await find(connection, name=name)
        if row is None:
            raise ProjectError(f"no project named {name!r} is registered (bm project list)")
        return row

    async def add(self, path: Path, name: str | None) -> RegisteredRow:
        """Register a folder (symlinks resolved) under `name` (default: its folder name)."""
        from bm_sync.db.registry import find, register

        root = Path(os.path.realpath(path))
        name = name or root.name or str(root)
        async with self.engine.begin() as connection:
            if (taken := await find(connection, name=name)) is not None:
                raise ProjectError(f"a project named {name!r} is already registered "
                                   f"(at {taken.root_path}); choose another with --name")
            if (same := await find(connection, root_path=str(root))) is not None:
                raise ProjectError(f"{root} is already registered as {same.name!r}")
            await register(connection, name, str(root))
            added = await find(connection, name=name)
        assert added is not None  # inserted just above, in this transaction
        return added

    async def remove(self, name: str) -> tuple[RegisteredRow, int]:
        """Unregister `name` and delete its rows and stored versions (never its notes);
        return the registration and how many project rows were deleted."""
        from bm_sync.db.registry import unregister

        row = await self.find(name)
        root = Path(row.root_path)
        await self._take_for_removal(row)
        async with self.engine.begin() as connection:
            deleted = await unregister(connection, row.id, row.root_path, _folder_id(root))
        _remove_versions(root)
        return row, deleted

    async def _take_for_removal(self, row: RegisteredRow) -> None:
        """Take the project's lease, waiting for a sync in flight to end: rows deleted under a
        running sync would be written again by it. A watcher's lease (`WATCH_SUFFIX`) lasts
        a whole slot, so it is revoked instead; then the watcher must be gone before the rows
        go (`_watcher_gone`)."""
        deadline = time.monotonic() + REMOVE_WAIT_S
        holder = worker_id()
        revoked_until: float | None = None
        while await self.claim(row, holder, time.time(), None, REMOVE_WAIT_S,
                               ignore_backoff=True) is None:
            current = await self.find(row.name)
            if current.lease_holder is not None and \
                    current.lease_holder.endswith(WATCH_SUFFIX):
                await self._revoke(current)
                revoked_until = max(revoked_until or 0.0, current.lease_expires_at or 0.0)
                continue
            if time.monotonic() > deadline:
                raise ProjectError(f"{row.name} is being synced by {current.lease_holder}; "
                                   "try again when that sync ends")
            await asyncio.sleep(0.2)
        if revoked_until is not None:
            await _watcher_gone(Path(row.root_path), revoked_until)

    async def _revoke(self, row: RegisteredRow) -> None:
        """End a watcher's run and free its lease: its worker sees that within a second (it
        reads the registry every second) and stops watching."""
        holder = row.lease_holder
        assert holder is not None
        open_runs = [run.id for run in await self.worker_runs()
                     if run.project_name == row.name and run.worker == holder
                     and run.ended_at is None]
        await self.finish(row, open_runs[-1] if open_runs else -1, holder,
                          SyncOutcome(row.name, row.root_path, REMOVED,
                                      "revoked by bm project remove"), not_before=None)

    async def entity_counts(self) -> dict[str, int]:
        from bm_sync.db.registry import entity_counts

        async with self.engine.connect() as connection:
            return await entity_counts(connection)

    async def claim(self, row: RegisteredRow, holder: str, now: float, due: float | None,
                    lease_s: float, *, ignore_backoff: bool = False) -> int | None:
        from bm_sync.db.registry import claim

        async with self.engine.begin() as connection:
            return await claim(connection, row.id, holder, now, due, lease_s,
                               ignore_backoff=ignore_backoff)

    async def renew(self, holder: str, leases: dict[int, int], until: float) -> set[int]:
        from bm_sync.db.registry import renew

        async with self.engine.begin() as connection:
            return await renew(connection, holder, leases, until)

    async def finish(self, row: RegisteredRow, run_id: int, holder: str,
                     outcome: SyncOutcome, not_before: float | None) -> None:
        """Record the outcome and release the lease. A success resets the failure count; a
        failure adds one (`not_before` is then the backoff's end)."""
        from bm_sync.db.registry import finish

        failures = 0 if outcome.ok else row.consecutive_failures + 1
        async with self.engine.begin() as connection:
            await finish(connection, row.id, run_id, holder, ended_at=time.time(),
                         duration_s=outcome.duration_s, result=outcome.result,
                         error=outcome.error, files=outcome.files_scanned, failures=failures,
                         not_before=None if outcome.ok else not_before)

    async def worker_runs(self) -> list[WorkerRunRow]:
        from bm_sync.db.registry import worker_runs

        async with self.engine.connect() as connection:
            return await worker_runs(connection)


def _folder_id(root: Path) -> str | None:
    """The project id the folder's index records, if it can be read."""
    from bm_sync.detector import INDEX_FILE, STATE_DIR
    from bm_sync.identity import recorded_id
    from bm_sync.index_format import read_index

    try:
        return recorded_id(read_index(root / STATE_DIR / INDEX_FILE))
    except (BmSyncError, OSError):
        return None


async def _watcher_gone(root: Path, revoked_until: float) -> None:
    """Wait until the folder's watcher has stopped (its `watch.lock` is free) after its lease
    was revoked, at most until that lease would have expired (a worker stops watching once
    it cannot confirm its lease: `Leases`). The first second is always waited: the worker
    may be between two batches, or about to start its watcher, when the lease is revoked."""
    from bm_sync.detector import STATE_DIR
    from bm_sync.lock import AlreadyWatching, WatchLock

    await asyncio.sleep(WATCHER_NOTICE_S)
    state_dir = root / STATE_DIR
    while time.time() < revoked_until and state_dir.is_dir():
        lock = WatchLock(state_dir)
        try:
            lock.acquire()
        except AlreadyWatching:
            await asyncio.sleep(0.1)
            continue
        except BmSyncError:  # unreadable: wait for the lease's expiry instead
            await asyncio.sleep(0.1)
            continue
        lock.release()
        return


def _remove_versions(root: Path) -> None:
    """Delete the folder's stored versions (its version packs), under the folder's lock; a
    folder that is gone or locked keeps them (one could delete `.basic-memory` by hand)."""
    from bm_sync.detector import STATE_DIR
    from bm_sync.lock import FolderLock
    from bm_sync.versions import VersionStore

    state_dir = root / STATE_DIR
    if not state_dir.is_dir():
        return
    try:
        with FolderLock(state_dir).hold(wait=False):
            shutil.rmtree(VersionStore(state_dir).pack_dir, ignore_errors=True)
    except BmSyncError as error:
        raise ProjectError(f"the project's rows are deleted but its stored versions are "
                           f"kept: {error}") from error
