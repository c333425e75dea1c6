"""The sync engine: detected changes in, an up-to-date entity database out.

    async with SyncEngine.open(root) as engine:
        report = await engine.sync()

Order of work: take the folder lock (a second sync fails at once, or waits with `wait=True`);
read the database's state without migrating and decide whether this sync must rebuild
(`bm_sync.consistency`; for SQLite through the stdlib driver, so a no-change sync never
imports SQLAlchemy); stream the detector's changes in batches, each batch one transaction
(`bm_sync.apply`); after a rebuild, sweep the rows the new index does not hold
(`bm_sync.rebuild`); only after the last commit, write the index. Why that order survives a
crash at any point: `bm_sync.runs`.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from bm_sync.changes import Change, ChangeKind, Failure, HashKind
from bm_sync.consistency import SKIPPED, SyncPlan, plan_sync, stat_signature
from bm_sync.db.state import read_stored_state
from bm_sync.db.urls import database_url as database_url_of
from bm_sync.db.urls import sqlite_file
from bm_sync.detector import SKETCH_FILE, DetectionRun, Detector, Record, StatusReport
from bm_sync.errors import HistoryError, IndexCorrupt
from bm_sync.hashing import HashPolicy
from bm_sync.index_format import IndexSnapshot
from bm_sync.roots import relative_path
from bm_sync.versions import VersionPolicy

if TYPE_CHECKING:  # the writing side pulls in SQLAlchemy: imported when first needed
    from bm_sync.apply import BatchWriter, PreparedChange
    from bm_sync.db.session import ProjectDatabase
    from bm_sync.history import History, RunRecord, VersionRecord
    from bm_sync.runs import RunLog
    from bm_sync.versions import VersionStore

BATCH_FILES = 200
FAILURE_LOG_SIZE = 100

ChangeHandler = Callable[[Change], Awaitable[None] | None]
ProgressHandler = Callable[["SyncProgress"], None]


@dataclass
class SyncReport(StatusReport):
    """What a sync applied. `failed` keeps the last 100 failures; `failed_total` counts all."""

    duration_s: float = 0.0
    rebuilt: bool = False
    rebuild_reason: str | None = None
    failed_total: int = 0

    def to_json(self) -> dict[str, object]:
        """The `bm status --json` object plus `duration_s`."""
        data = super().to_json()
        data["duration_s"] = round(self.duration_s, 3)
        return data


@dataclass
class SyncProgress:
    """Counters for a progress bar; `expected` is the file count of the last recorded state."""

    scanned: int = 0
    hashed: int = 0
    applied: int = 0
    expected: int = 0


class FailureLog:
    """The in-memory record of failures, capped (least recently failed dropped first)."""

    def __init__(self, capacity: int = FAILURE_LOG_SIZE) -> None:
        self.capacity = capacity
        self.total = 0
        self._entries: OrderedDict[str, str] = OrderedDict()

    def add(self, failure: Failure) -> None:
        self.total += 1
        self._entries.pop(failure.path, None)
        self._entries[failure.path] = failure.error
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)

    def failures(self) -> list[Failure]:
        return [Failure(path, error) for path, error in self._entries.items()]


@dataclass
class _Outcome:
    """What one sync did to each path, beyond the report: failures to remember in the
    breaker's table, paths the index must not record, paths applied."""

    root: Path
    log: FailureLog = field(default_factory=FailureLog)
    hard_failures: dict[str, tuple[str | None, str]] = field(default_factory=dict)
    excluded: set[str] = field(default_factory=set)
    applied: set[str] = field(default_factory=set)

    def skipped(self, failure: Failure) -> None:
        """A path the breaker held back: reported, not applied, not counted again."""
        self.log.add(failure)
        self.excluded.add(failure.path)

    def failed(self, failure: Failure, change: Change | None = None) -> None:
        """A path not applied: reported, left out of the index, counted by the breaker."""
        self.log.add(failure)
        content_id = change.content_id if change else stat_signature(self.root, failure.path)
        self.hard_failures[failure.path] = (content_id, failure.error)
        self.excluded.add(failure.path)
        if change is not None and change.old_path:
            self.excluded.add(change.old_path)


class SyncEngine:
    """Keeps the entity database of one folder in step with it. Use `SyncEngine.open`."""

    def __init__(self, root: str | os.PathLike[str], database_url: str | None = None, *,
                 policy: HashPolicy | None = None, wait: bool = False,
                 versions: VersionPolicy | None = None) -> None:
        self.detector = Detector(root, policy=policy)
        self.root = self.detector.root
        self.database_url = database_url_of(self.detector.state_dir, database_url)
        self.wait = wait
        self.version_policy = versions or VersionPolicy()
        # Opened on first write (or history call): SQLAlchemy is not imported before.
        self._database: ProjectDatabase | None = None
        self._run_log: RunLog | None = None
        self._versions: VersionStore | None = None

    @classmethod
    @asynccontextmanager
    async def open(cls, root: str | os.PathLike[str], database_url: str | None = None, *,
                   policy: HashPolicy | None = None, wait: bool = False,
                   versions: VersionPolicy | None = None) -> AsyncIterator[SyncEngine]:
        """An engine for `root`; the database is opened (and migrated) when first needed."""
        engine = cls(root, database_url, policy=policy, wait=wait, versions=versions)
        try:
            yield engine
        finally:
            await engine.close()

    async def close(self) -> None:
        if self._versions is not None:
            self._versions.close()
            self._versions = None
        if self._database is not None:
            await self._database.close()
            self._database = None
            self._run_log = None

    async def _open_database(self) -> tuple[ProjectDatabase, RunLog, VersionStore]:
        if self._database is None or self._run_log is None or self._versions is None:
            from bm_sync.db.session import ProjectDatabase
            from bm_sync.runs import RunLog
            from bm_sync.versions import VersionStore

            self._database = await ProjectDatabase.open(self.database_url, self.root)
            project = self._database.project
            self._run_log = RunLog(project.id, project.token, project.completed_at)
            self._versions = VersionStore(self.detector.state_dir)
        return self._database, self._run_log, self._versions

    # -- history: delegated to bm_sync.history ----------------------------------------------

    async def _history(self) -> History:
        from bm_sync.history import History

        database_file = sqlite_file(self.database_url)
        if database_file is not None and not database_file.exists():
            raise HistoryError(f"no sync has run in {self.root} yet")
        database, _run_log, versions = await self._open_database()
        return History(self.root, database, versions, self.detector.lock, wait=self.wait)

    async def runs(self, limit: int = 20) -> list[RunRecord]:
        """The most recent sync runs, newest first."""
        return await (await self._history()).runs(limit)

    async def history(self, path: str) -> list[VersionRecord]:
        """The timeline of one file (root-relative or absolute path), newest first, following
        moves."""
        return await (await self._history()).timeline(relative_path(self.root, path))

    async def show(self, path: str, revision: str | None = None) -> tuple[VersionRecord, bytes]:
        """A version's record and content (`~N` or a content id prefix; default the newest)."""
        return await (await self._history()).show(relative_path(self.root, path), revision)

    async def diff(self, path: str, revision: str | None = None) -> str:
        """With a REV: that version against the one before it. Without: the newest recorded
        version against the file on disk."""
        return await (await self._history()).diff(relative_path(self.root, path), revision)

    async def restore(self, path: str, revision: str) -> VersionRecord:
        """Write a stored version back to the file: the only call that writes user files."""
        return await (await self._history()).restore(relative_path(self.root, path), revision)

    async def prune(self, keep_last: int | None = None,
                    keep_days: float | None = None) -> tuple[int, int]:
        """Drop stored versions outside the retention; return object store bytes before/after."""
        return await (await self._history()).prune(keep_last, keep_days)

    # -- sync -----------------------------------------------------------------------------------

    async def sync(self, *, on_change: ChangeHandler | None = None,
                   progress: ProgressHandler | None = None) -> SyncReport:
        """Detect and apply every change; return what was applied.

        `on_change` is called (and awaited, if it returns an awaitable) for each change right
        after the transaction that applied it commits. Raises `SyncLocked` when another sync
        holds the folder.
        """
        started = time.perf_counter()
        with self.detector.lock.hold(wait=self.wait):
            report = await self._sync_locked(on_change, progress)
        report.duration_s = time.perf_counter() - started
        return report

    async def _sync_locked(self, on_change: ChangeHandler | None,
                           progress: ProgressHandler | None) -> SyncReport:
        report = SyncReport()
        snapshot, warning = self._read_snapshot()
        if warning:
            report.warnings.append(warning)
        started = time.time()
        confirmed = snapshot.meta.get("history_run_id") if snapshot else None
        plan = plan_sync(await read_stored_state(self.database_url, self.root), snapshot)
        rebuild = plan.rebuild_reason is not None
        begin = (started, confirmed if isinstance(confirmed, int) else None, rebuild)
        if self._run_log is not None:
            self._run_log.begin(*begin)
        report.rebuilt, report.rebuild_reason = rebuild, plan.rebuild_reason
        unopened = plan.breaker.unopened(self.root)
        run = self.detector.detect(writable=True, rebuild=rebuild, snapshot=snapshot,
                                   skip=unopened)
        outcome = _Outcome(self.root)
        writer = await self._apply(run, plan, unopened, outcome, report, begin, on_change,
                                   SyncProgress(expected=snapshot.entry_count if snapshot else 0),
                                   progress)
        report.sort()
        report.unchanged, report.hashed = run.unchanged, run.hashed
        report.warnings.extend(run.warnings)
        if run.index_rebuilt and not report.rebuilt:  # a corrupt entry met mid-scan
            report.rebuilt, report.rebuild_reason = True, "the index is corrupt"
        if report.rebuilt and report.rebuild_reason:
            report.warnings.append(f"rebuilt by a full scan: {report.rebuild_reason}")
        report.failed, report.failed_total = outcome.log.failures(), outcome.log.total
        if report.rebuilt:
            await self._sweep(run, outcome, report, begin, on_change)
        meta: dict[str, object] = {"db_token": plan.token}
        if (report.change_count or report.rebuilt or outcome.hard_failures
                or plan.breaker.failing & outcome.applied or plan.token is None):
            meta.update(await self._finish(plan, outcome, report, begin, writer))
        # The index is written only now, after every database commit.
        run.record(exclude=outcome.excluded, meta=meta)
        run.close()
        return report

    async def _writer(self, begin: tuple[float, int | None, bool]) -> BatchWriter:
        from bm_sync.apply import BatchWriter

        fresh = self._run_log is None
        database, run_log, versions = await self._open_database()
        if fresh:
            run_log.begin(*begin)
        return BatchWriter(self.root, database, run_log, versions, self.version_policy)

    async def _apply(self, run: DetectionRun, plan: SyncPlan, unopened: dict[str, str],
                     outcome: _Outcome, report: SyncReport,
                     begin: tuple[float, int | None, bool], on_change: ChangeHandler | None,
                     counters: SyncProgress,
                     progress: ProgressHandler | None) -> BatchWriter | None:
        """Stream the run's records in batches: detection and parsing of the next batch in a
        worker thread while this one is written. Returns the writer, if anything was written."""
        records = iter(run)
        writer: BatchWriter | None = None

        def produce() -> tuple[list[Record], list[Change], list[PreparedChange] | None]:
            """Stage one, in a worker thread: detect the next batch and parse its notes."""
            batch = _take(records, BATCH_FILES)
            changes = [record for record in batch
                       if isinstance(record, Change) and not plan.breaker.holds_back(record)]
            prepared = writer.prepare_batch(changes) if writer is not None and changes else None
            return batch, changes, prepared

        upcoming = asyncio.ensure_future(asyncio.to_thread(produce))
        try:
            while True:
                batch, changes, prepared = await upcoming
                if not batch:
                    break
                if changes and writer is None:
                    writer = await self._writer(begin)
                    prepared = await asyncio.to_thread(writer.prepare_batch, changes)
                upcoming = asyncio.ensure_future(asyncio.to_thread(produce))
                for record in batch:
                    if isinstance(record, Failure):
                        if record.path in unopened:
                            outcome.skipped(record)
                        else:
                            outcome.failed(record)
                    elif plan.breaker.holds_back(record):
                        outcome.skipped(Failure(record.path, SKIPPED))
                if writer is not None and prepared:
                    result = await writer.write(prepared)
                    for failure, change in result.failed:
                        outcome.failed(failure, change)
                    for warning in result.warnings:
                        outcome.log.add(warning)
                    for change in result.applied:
                        report.add(change)
                        outcome.applied.add(change.path)
                        await _notify(on_change, change)
                    counters.applied += len(result.applied)
                counters.hashed = run.hashed
                counters.scanned = run.hashed + run.unchanged
                if progress is not None:
                    progress(counters)
        finally:
            if not upcoming.done():  # a worker thread cannot be cancelled: let it finish
                await asyncio.wait([upcoming])
        return writer

    async def _sweep(self, run: DetectionRun, outcome: _Outcome, report: SyncReport,
                     begin: tuple[float, int | None, bool],
                     on_change: ChangeHandler | None) -> None:
        """After a rebuild, before `_finish` (so relations into swept rows resolve again)."""
        from bm_sync.db import writes
        from bm_sync.rebuild import sweep

        writer = await self._writer(begin)
        result = await sweep(writer.database, writer.run_log, self.root,
                             self.detector.state_dir / SKETCH_FILE,
                             outcome.applied | outcome.excluded, run.unexamined_prefixes)
        moved_to = {new for _old, new in result.moves}
        report.added = [path for path in report.added if path not in moved_to]
        report.moved.extend(result.moves)
        report.deleted.extend(result.deleted)
        report.sort()
        for change in [*(Change(ChangeKind.MOVED, new, old) for old, new in result.moves),
                       *(Change(ChangeKind.DELETED, path) for path in result.deleted)]:
            await _notify(on_change, change)  # the app hears of these like of any other
        # Files that failed keep their rows; the new index must list them too (smudged), or
        # the counts disagree and every later sync rebuilds again.
        async with writer.database.sessions() as session:
            stored = await writes.stored_files(session, writer.database.project_id,
                                               sorted(outcome.excluded | set(result.kept)))
        for row in stored:
            if row.checksum and len(row.checksum) == 40:
                run.keep_unexamined(row.path, row.checksum, HashKind(row.checksum_kind or "full"),
                                    row.size or 0, int((row.mtime or 0) * 1e9))

    async def _finish(self, plan: SyncPlan, outcome: _Outcome, report: SyncReport,
                      begin: tuple[float, int | None, bool],
                      writer: BatchWriter | None) -> dict[str, object]:
        """Write the sync's pack of versions, resolve relations, keep the breaker's table,
        complete the run and issue the token. Returns what the index records of it."""
        from bm_sync.db import runs as run_rows
        from bm_sync.db import writes
        from bm_sync.errors import describe_os_error

        writer = writer or await self._writer(begin)
        try:
            await asyncio.to_thread(writer.versions.flush)
        except Exception as error:  # versions are a bonus: the sync itself has succeeded
            reason = (describe_os_error(error) if isinstance(error, OSError)
                      else f"{type(error).__name__}: {error}")
            writer.version_error = f"versions not stored: {reason}"
        project_id = writer.database.project_id
        async with writer.database.sessions() as session, session.begin():
            await writes.resolve_relations(session, project_id)
            for path, (content_id, reason) in outcome.hard_failures.items():
                await run_rows.record_failure(session, project_id, path, content_id, reason)
            await run_rows.clear_failures(session, project_id,
                                          sorted(plan.breaker.failing & outcome.applied))
            token = await writer.run_log.complete(session, outcome.log.total)
        if writer.version_error:
            report.warnings.append(writer.version_error)
        meta: dict[str, object] = {"db_token": token}
        if writer.run_log.run_id is not None:
            meta["history_run_id"] = writer.run_log.run_id
        return meta

    def _read_snapshot(self) -> tuple[IndexSnapshot | None, str | None]:
        try:
            return self.detector.load_snapshot(), None
        except IndexCorrupt as error:
            return None, (f"index {self.detector.index_path} is corrupt ({error}); "
                          "rebuilding it by a full scan")


async def _notify(on_change: ChangeHandler | None, change: Change) -> None:
    if on_change is not None:
        outcome = on_change(change)
        if inspect.isawaitable(outcome):
            await outcome


def _take(records: Iterator[Record], count: int) -> list[Record]:
    """Up to `count` records from the detector (runs in a worker thread)."""
    batch = []
    for record in records:
        batch.append(record)
        if len(batch) >= count:
            break
    return batch
