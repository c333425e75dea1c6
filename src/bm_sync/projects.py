"""Many projects in one database: the registry (`bm project add/list/remove`), one sync of a
registered project as a worker runs it, and `bm sync --all`.

The registry lives in the database given by `--db` / `$BM_DATABASE_URL`, else in a per-user
default, `$XDG_DATA_HOME/bm-sync/projects.db` (`~/.local/share/bm-sync/projects.db`); every
registered project's rows go to that same database. A folder synced alone (`bm sync PATH`
without `--db`) keeps its embedded default, `<PATH>/.basic-memory/memory.db`.

A registered folder that is missing or unreadable is reported and never synced: a sync would
see every note deleted. Nor is a folder that is empty and holds no `.basic-memory` while the
last sync found files (an unmounted mount point looks like that).
"""

from __future__ import annotations

import asyncio
import os
import resource
import shutil
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from bm_sync.db.urls import check_url, sqlite_url
from bm_sync.errors import BmSyncError

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from bm_sync.db.registry import RegisteredRow, WorkerRunRow
    from bm_sync.reports import SyncReport

REGISTRY_FILE = "projects.db"
# The result of a sync as the registry records it; anything but OK counts as a failure.
OK, FAILED, MISSING, UNREADABLE, BUSY = "ok", "failed", "missing", "unreadable", "busy"
REMOVED = "removed"  # a watch lease revoked by `bm project remove`
# Appended to a worker's id for the leases of the projects it watches (`bm worker --watch`):
# such a lease lasts a whole slot, so `bm project remove` revokes it instead of waiting.
WATCH_SUFFIX = "/watch"
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


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker_id() -> str:
    """Who holds a lease: host, process and a random part (pids are reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass
class SyncOutcome:
    """One sync of a registered project, as logged and recorded."""

    project: str
    path: str
    result: str = OK
    error: str | None = None
    duration_s: float = 0.0
    files_scanned: int | None = None
    changes: dict[str, int] = field(default_factory=dict)
    failures: int = 0
    peak_rss_mb: float = 0.0

    @property
    def ok(self) -> bool:
        return self.result == OK

    def to_json(self) -> dict[str, object]:
        return {"event": "sync", "project": self.project, "path": self.path,
                "result": self.result, "error": self.error,
                "duration_s": round(self.duration_s, 3), "files_scanned": self.files_scanned,
                "changes": self.changes, "failures": self.failures,
                "peak_rss_mb": round(self.peak_rss_mb, 1)}

    def line(self) -> str:
        return sync_line(self.to_json())


def sync_line(event: dict[str, object]) -> str:
    """A sync event (`SyncOutcome.to_json`) as one line: `notes: ok in 0.4 s, 120 files,
    2 added 1 modified 0 deleted 0 moved, 0 failed, peak RSS 90 MB`."""
    if event["result"] != OK:
        return (f"{event['project']}: {event['result']}: {event['error']} "
                f"({event['duration_s']:.1f} s)")
    changes = event["changes"]
    assert isinstance(changes, dict)
    counts = " ".join(f"{count} {kind}" for kind, count in changes.items())
    return (f"{event['project']}: ok in {event['duration_s']:.1f} s, "
            f"{_files(event['files_scanned'])}, {counts}, {event['failures']} failed, "
            f"peak RSS {event['peak_rss_mb']:.0f} MB")


def folder_problem(root: Path, last_files: int | None) -> tuple[str, str] | None:
    """Why `root` must not be synced (result, message), or None: see the module doc."""
    if not root.is_dir():
        return MISSING, f"folder {root} is missing (not synced, its rows are kept)"
    try:
        with os.scandir(root) as entries:
            empty = next(entries, None) is None
    except OSError as error:
        return UNREADABLE, (f"folder {root} cannot be read ({error.strerror or error}; "
                            "not synced, its rows are kept)")
    if empty and last_files:
        return MISSING, (f"folder {root} is empty and has no .basic-memory, but held "
                         f"{last_files} files (not mounted?); not synced, its rows are kept")
    return None


async def sync_folder(name: str, root: Path, database_url: str,
                      last_files: int | None = None) -> SyncOutcome:
    """Sync one registered folder into `database_url`; a failure is the outcome, never raised."""
    from bm_sync.errors import SyncLocked
    from bm_sync.sync import SyncEngine

    outcome = SyncOutcome(name, str(root))
    started = time.perf_counter()
    problem = folder_problem(root, last_files)
    if problem is not None:
        outcome.result, outcome.error = problem
    else:
        try:
            async with SyncEngine.open(root, database_url) as engine:
                describe_report(outcome, await engine.sync())
        except SyncLocked as error:
            outcome.result, outcome.error = BUSY, str(error)
        except BmSyncError as error:
            outcome.result, outcome.error = FAILED, str(error)
    outcome.duration_s = time.perf_counter() - started
    outcome.peak_rss_mb = peak_rss_mb()
    return outcome


def describe_report(outcome: SyncOutcome, report: SyncReport) -> None:
    """Fill `outcome`'s counts from a sync's report."""
    outcome.changes = {"added": len(report.added), "modified": len(report.modified),
                       "deleted": len(report.deleted), "moved": len(report.moved)}
    outcome.files_scanned = (report.unchanged + len(report.added) + len(report.modified)
                             + len(report.moved))
    outcome.failures = report.failed_total


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


class Leases:
    """The leases one process holds (registered project id -> worker run id), renewed every
    quarter of `lease_s` while the `async with` block runs: a sync may take longer than a
    lease, and a killed process's leases expire within `lease_s`.

    `on_lost(project id)` hears of a lease this process no longer holds: another holder has
    it (revoked by `bm project remove`), or renewals failed until it expired. A sync goes on
    regardless (its lease only guards the start); a watcher stops."""

    def __init__(self, registry: Registry, holder: str, lease_s: float,
                 on_lost: Callable[[int], None] | None = None) -> None:
        self.registry = registry
        self.holder = holder
        self.lease_s = lease_s
        self.on_lost = on_lost
        self.held: dict[int, int] = {}
        self._confirmed: dict[int, float] = {}  # project id -> the expiry last confirmed
        self._renewing: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Leases:
        self._renewing = asyncio.create_task(self._renew())
        return self

    async def __aexit__(self, *_exc: object) -> None:
        if self._renewing is not None:
            self._renewing.cancel()
            await asyncio.gather(self._renewing, return_exceptions=True)

    def hold(self, project: int, run_id: int) -> None:
        """A lease just claimed (good for `lease_s`)."""
        self.held[project] = run_id
        self._confirmed[project] = time.time() + self.lease_s

    def drop(self, project: int) -> None:
        self.held.pop(project, None)
        self._confirmed.pop(project, None)

    async def _renew(self) -> None:
        while True:
            await asyncio.sleep(self.lease_s / 4)
            held = dict(self.held)
            until = time.time() + self.lease_s
            try:
                kept = await self.registry.renew(self.holder, held, until)
            except Exception:  # the database is away: the next renewal tries again
                kept = set()
                lost = {project for project in held
                        if self._confirmed.get(project, until) < time.time()}
            else:
                lost = set(held) - kept
            for project in kept:
                if project in self.held:
                    self._confirmed[project] = until
            for project in lost:
                if self.on_lost is not None and project in self.held:
                    self.on_lost(project)


def _files(count: object) -> str:
    return "1 file" if count == 1 else f"{count} files"
