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
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from bm_sync.changes import Change, ChangeKind, Failure, Finding
from bm_sync.consistency import SKIPPED, SyncPlan, plan_sync
from bm_sync.db.state import StoredState, read_stored_state
from bm_sync.db.urls import database_url as database_url_of
from bm_sync.db.urls import sqlite_file
from bm_sync.detector import SKETCH_FILE, DetectionRun, Detector
from bm_sync.errors import (
    BmSyncError,
    HistoryError,
    IndexCorrupt,
    SyncFailed,
    database_error_line,
    os_error_line,
)
from bm_sync.hashing import HashPolicy
from bm_sync.identity import PROJECT_META, Identity, identify, recorded_id
from bm_sync.index_format import IndexSnapshot, corrupt_index_message
from bm_sync.reports import PathOutcomes, SyncProgress, SyncReport
from bm_sync.roots import relative_path
from bm_sync.sources import ReportedPath
from bm_sync.versions import VersionPolicy, VersionStore

if TYPE_CHECKING:  # the writing side pulls in SQLAlchemy: imported when first needed
    from bm_sync.apply import BatchWriter, PreparedChange
    from bm_sync.db.search import SearchState
    from bm_sync.db.session import ProjectDatabase, ProjectReader
    from bm_sync.history import History, RunRecord, VersionRecord
    from bm_sync.runs import RunLog
    from bm_sync.search import NoteView, SearchResult
    from bm_sync.search_reader import SearchReader

BATCH_FILES = 200

ChangeHandler = Callable[[Change], Awaitable[None] | None]
ProgressHandler = Callable[["SyncProgress"], None]


class SyncEngine:
    """Keeps the entity database of one folder in step with it. Use `SyncEngine.open`."""

    def __init__(self, root: str | os.PathLike[str], database_url: str | None = None, *,
                 policy: HashPolicy | None = None, wait: bool = False,
                 versions: VersionPolicy | None = None, search: bool = True) -> None:
        # Symlinks of the root resolved: the same folder is the same project however reached.
        self.detector = Detector(os.path.realpath(root), policy=policy)
        self.root = self.detector.root
        self.database_url = database_url_of(self.detector.state_dir, database_url)
        self.wait = wait
        self.version_policy = versions or VersionPolicy()
        self.search_enabled = search  # keep the search index (off: forget it)
        # Opened on first write (or history call): SQLAlchemy is not imported before.
        self._database: ProjectDatabase | None = None
        self._run_log: RunLog | None = None
        self._versions: VersionStore | None = None
        self._identity: Identity | None = None
        self._reader: ProjectReader | None = None  # the history's read-only connection
        self._search_reader: SearchReader | None = None

    @classmethod
    @asynccontextmanager
    async def open(cls, root: str | os.PathLike[str], database_url: str | None = None, *,
                   policy: HashPolicy | None = None, wait: bool = False,
                   versions: VersionPolicy | None = None,
                   search: bool = True) -> AsyncIterator[SyncEngine]:
        """An engine for `root`; the database is opened (and migrated) when first needed.
        `search=False`: no search index (the first such sync forgets it; turned on again, the
        next sync rebuilds it)."""
        engine = cls(root, database_url, policy=policy, wait=wait, versions=versions,
                     search=search)
        try:
            yield engine
        finally:
            await engine.close()

    async def close(self) -> None:
        if self._search_reader is not None:
            await self._search_reader.close()
            self._search_reader = None
        if self._reader is not None:
            await self._reader.close()
            self._reader = None
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

            identity = self._identity or Identity(uuid.uuid4().hex)
            self._database = await ProjectDatabase.open(
                self.database_url, self.root, identity.uuid,
                identity.project.id if identity.project else None)
            project = self._database.project
            self._run_log = RunLog(project.id, project.token, project.completed_at)
            # The history's store, if it opened one: a forced restore checks there what the
            # sync it ran has just stored.
            self._versions = self._versions or VersionStore(self.detector.state_dir)
        return self._database, self._run_log, self._versions

    # -- history: delegated to bm_sync.history ----------------------------------------------

    async def _history(self) -> History:
        """The folder's history, read through its own read-only connection: the project is
        found as a sync would find it, and nothing is written to the database."""
        from bm_sync.db.session import ProjectReader
        from bm_sync.history import History, history_project
        from bm_sync.versions import VersionStore

        database_file = sqlite_file(self.database_url)
        if database_file is not None and not database_file.exists():
            raise HistoryError(f"no sync has run in {self.root} yet")
        snapshot, _warning = self._read_snapshot()
        stored, identity = await self._identify(snapshot)
        project = history_project(self.root, stored, identity.project, identity.copy_of)
        if self._reader is None or self._reader.project_id != project.id:
            if self._reader is not None:
                await self._reader.close()
            self._reader = await ProjectReader.open(self.database_url, project.id)
        if self._versions is None:
            self._versions = VersionStore(self.detector.state_dir)
        return History(self.root, self._reader, self._versions, self.detector.lock,
                       wait=self.wait)

    async def runs(self, limit: int = 20) -> list[RunRecord]:
        """The most recent sync runs, newest first."""
        return await (await self._history()).runs(limit)

    async def history(self, path: str) -> list[VersionRecord]:
        """The timeline of one file (root-relative or absolute path), newest first, following
        moves."""
        return await (await self._history()).timeline(relative_path(self.root, path))

    async def show_version(self, path: str,
                           revision: str | None = None) -> tuple[VersionRecord, bytes]:
        """A version's record and content (`~N` or a content id prefix; default the newest)."""
        return await (await self._history()).show(relative_path(self.root, path), revision)

    async def diff(self, path: str, revision: str | None = None) -> str:
        """With a REV: that version against the one before it. Without: the newest recorded
        version against the file on disk."""
        return await (await self._history()).diff(relative_path(self.root, path), revision)

    async def restore(self, path: str, revision: str, *, force: bool = False) -> VersionRecord:
        """Write a stored version back to the file: the only call that writes user files.
        Refused when the file holds content no sync recorded, unless `force`: then a sync
        records that content first, as a version (`History.restore`)."""
        return await (await self._history()).restore(relative_path(self.root, path), revision,
                                                     force=force, record=self.sync)

    async def prune(self, keep_last: int | None = None,
                    keep_days: float | None = None) -> tuple[int, int]:
        """Drop stored versions outside the retention; return object store bytes before/after."""
        return await (await self._history()).prune(keep_last, keep_days)

    # -- search: delegated to bm_sync.search_reader -----------------------------------------

    async def search(self, query: str, *, limit: int = 10, type: str | None = None,
                     tag: str | Sequence[str] | None = None,
                     path: str | None = None) -> SearchResult:
        """The notes matching `query` (docs/cli.md has the language), best first. `type` and
        `tag` (one or several, all required) filter exactly, case- and accent-insensitively;
        `path`: only below that folder (root-relative). A malformed query raises
        `SearchQueryError` before the database is touched; a folder without a search index
        `SearchUnavailable`. Reads only (for SQLite through the stdlib driver)."""
        return await self._searcher().search(query, limit=limit, type=type, tag=tag, path=path)

    async def show(self, ref: str) -> NoteView:
        """A note by path (root-relative, `.md` optional), permalink or title: its entity, its
        observations, outgoing relations and backlinks. `NoteNotFound` when nothing or several
        notes match."""
        return await self._searcher().show(ref)

    def _searcher(self) -> SearchReader:
        """The folder's search reader: it keeps a connection and the project between calls."""
        if self._search_reader is None:
            from bm_sync.search_reader import SearchReader

            self._search_reader = SearchReader(self.root, self.database_url,
                                               self.detector.index_path, self._identify_folder)
        return self._search_reader

    async def _identify_folder(self) -> tuple[StoredState, Identity]:
        return await self._identify(self._read_snapshot()[0])

    async def _search_state(self, stored: StoredState,
                            identity: Identity) -> SearchState | None:
        """What `plan_sync` needs of the search index (nothing without a usable project)."""
        from bm_sync.db import HEAD_REVISION
        from bm_sync.db.search import read_search_state

        if identity.project is None or stored.unusable or stored.revision != HEAD_REVISION:
            return None
        return await read_search_state(self.database_url, identity.project.id)

    async def _settle_search(self, plan: SyncPlan, begin: tuple[float, int | None, bool],
                             report: SyncReport) -> None:
        """Before detection: repair the search index (no file read), or forget it (search
        turned off), in one transaction."""
        from bm_sync.db import search as search_rows

        writer = await self._writer(begin)
        async with writer.database.sessions() as session, session.begin():
            if plan.search_repair:
                await search_rows.repair(session)
                report.warnings.append(f"search index repaired: {plan.search_repair}")
            if plan.search_clear:
                await search_rows.clear_project(session, writer.database.project_id)

    # -- watch: delegated to bm_sync.watching ------------------------------------------------

    def watch(self, *, debounce_ms: int = 500, rescan_minutes: float = 60.0,
              poll_seconds: float | None = None, on_change: ChangeHandler | None = None,
              on_ready: Callable[[int], None] | None = None,
              on_warning: Callable[[str], None] | None = None,
              stop: asyncio.Event | None = None) -> AsyncIterator[SyncReport]:
        """Keep syncing from file events: `async for report in engine.watch(): ...`.

        The first report is the reconcile (a full sync); then each batch that applied, failed
        or warned about something. `on_ready(files)` is called once watching; `on_warning`
        hears each one-line warning (lost history, polling). Setting `stop` ends it after the
        batch in flight; cancelling the task is allowed too (an uncommitted batch rolls back
        and is found again next time). Raises `AlreadyWatching` when another watcher holds the
        folder and `WatchStopped` when the folder is moved or deleted (`bm_sync.watching`).
        """
        from bm_sync.watching import Watcher

        return Watcher(self, debounce_ms=debounce_ms, rescan_minutes=rescan_minutes,
                       poll_seconds=poll_seconds, on_change=on_change, on_ready=on_ready,
                       on_warning=on_warning, stop=stop).run()

    # -- sync -----------------------------------------------------------------------------------

    async def sync(self, *, on_change: ChangeHandler | None = None,
                   progress: ProgressHandler | None = None,
                   paths: Iterable[ReportedPath] | None = None) -> SyncReport:
        """Detect and apply every change; return what was applied.

        `on_change` is called (and awaited, if it returns an awaitable) for each change right
        after the transaction that applied it commits. `paths` limits detection to what a file
        watcher reported (`Detector.detect`); a rebuild always scans the whole tree. Raises
        `SyncLocked` when another sync holds the folder.
        """
        started = time.perf_counter()
        try:
            with self.detector.lock.hold(wait=self.wait):
                report = await self._sync_locked(on_change, progress, paths)
        except BmSyncError:
            raise
        except OSError as error:  # .basic-memory or the index unwritable, a full disk, ...
            raise SyncFailed(os_error_line(error)) from error
        except Exception as error:
            if not _is_database_error(error):
                raise
            from bm_sync.db.engine import first_line

            raise SyncFailed(database_error_line(first_line(error),
                                                 sqlite_file(self.database_url))) from error
        report.duration_s = time.perf_counter() - started
        return report

    async def _sync_locked(self, on_change: ChangeHandler | None,
                           progress: ProgressHandler | None,
                           paths: Iterable[ReportedPath] | None) -> SyncReport:
        report = SyncReport()
        _remove_leftovers(self.detector.state_dir)
        snapshot, warning = self._read_snapshot()
        if warning:
            report.warnings.append(warning)
        started = time.time()
        confirmed = snapshot.meta.get("history_run_id") if snapshot else None
        stored, identity = await self._identify(snapshot)
        search_state = await self._search_state(stored, identity)
        plan = plan_sync(stored, identity, snapshot, search=self.search_enabled,
                         search_documents=search_state.documents if search_state else None,
                         search_damaged=search_state.damaged if search_state else None)
        rebuild = plan.rebuild_reason is not None
        begin = (started, confirmed if isinstance(confirmed, int) else None, rebuild)
        if self._run_log is not None:
            self._run_log.begin(*begin)
        report.rebuilt, report.rebuild_reason = rebuild, plan.rebuild_reason
        if plan.search_repair or plan.search_clear:
            await self._settle_search(plan, begin, report)
        unopened = plan.breaker.unopened(self.root)
        run = self.detector.detect(writable=True, rebuild=rebuild, snapshot=snapshot,
                                   skip=unopened, paths=None if rebuild else paths)
        outcome = PathOutcomes(self.root)
        writer = await self._apply(run, plan, outcome, report, begin, on_change,
                                   SyncProgress(expected=snapshot.entry_count if snapshot else 0),
                                   progress)
        report.sort()
        report.unchanged += run.unchanged
        report.hashed = run.hashed
        report.warnings.extend(run.warnings)
        if run.index_rebuilt and not report.rebuilt:  # a corrupt entry met mid-scan
            report.rebuilt, report.rebuild_reason = True, "the index is corrupt"
        if report.rebuilt and report.rebuild_reason:
            report.warnings.append(f"rebuilt by a full scan: {report.rebuild_reason}")
        report.failed, report.failed_total = outcome.log.failures(), outcome.log.total
        report.file_warnings = outcome.warnings.failures()
        report.file_warnings_total = outcome.warnings.total
        if report.rebuilt:
            await self._sweep(run, outcome, report, begin, on_change)
        meta: dict[str, object] = {"db_token": plan.token, PROJECT_META: identity.uuid}
        moved = identity.project is not None and identity.project.root_path != str(self.root)
        if (outcome.applied or report.rebuilt or outcome.hard_failures or moved
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
        return BatchWriter(self.root, database, run_log, versions, self.version_policy,
                           search=self.search_enabled)

    async def _apply(self, run: DetectionRun, plan: SyncPlan, outcome: PathOutcomes,
                     report: SyncReport, begin: tuple[float, int | None, bool],
                     on_change: ChangeHandler | None, counters: SyncProgress,
                     progress: ProgressHandler | None) -> BatchWriter | None:
        """Stream the run's records in batches: detection and parsing of the next batch in a
        worker thread while this one is written. Returns the writer, if anything was written."""
        records = iter(run)
        writer: BatchWriter | None = None
        deleted = 0  # deleted files count as examined: the bar ends at 100% with deletions

        def produce() -> tuple[list[Finding], list[Change], list[PreparedChange] | None]:
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
                        if record.skipped:
                            outcome.skipped(record)
                        else:
                            outcome.failed(record)
                    elif plan.breaker.holds_back(record):
                        outcome.skipped(Failure(record.path, SKIPPED, skipped=True))
                if writer is not None and prepared:
                    result = await writer.write(prepared)
                    for failure, change in result.failed:
                        outcome.failed(failure, change)
                    for warning in result.warnings:
                        outcome.warnings.add(warning)
                    outcome.applied.update(change.path for change in result.applied)
                    # Applied but not recorded: a rebuild's re-add of an unchanged file, or a
                    # crashed run's change replayed. The history says nothing changed: so
                    # does the report.
                    report.unchanged += len(result.applied) - len(result.recorded)
                    for change in result.recorded:
                        report.add(change)
                        await _notify(on_change, change)
                    counters.applied += len(result.applied)
                    deleted += sum(change.kind is ChangeKind.DELETED for change in result.applied)
                counters.hashed = run.hashed
                counters.scanned = run.hashed + run.unchanged + deleted
                if progress is not None:
                    progress(counters)
        finally:
            if not upcoming.done():  # a worker thread cannot be cancelled: let it finish
                await asyncio.wait([upcoming])
        if progress is not None:
            counters.finished = True
            progress(counters)
        return writer

    async def _sweep(self, run: DetectionRun, outcome: PathOutcomes, report: SyncReport,
                     begin: tuple[float, int | None, bool],
                     on_change: ChangeHandler | None) -> None:
        """After a rebuild, before `_finish` (so relations into swept rows resolve again)."""
        from bm_sync.rebuild import keep_in_index, sweep

        writer = await self._writer(begin)
        result = await sweep(writer.database, writer.run_log, self.root,
                             self.detector.state_dir / SKETCH_FILE,
                             outcome.applied | outcome.excluded, run.unexamined_prefixes)
        report.add_sweep(result.moves, result.deleted)
        for change in [*(Change(ChangeKind.MOVED, new, old) for old, new in result.moves),
                       *(Change(ChangeKind.DELETED, path) for path in result.deleted)]:
            await _notify(on_change, change)  # the app hears of these like of any other
        # Files that failed keep their rows; the new index must list them too (smudged), or
        # the counts disagree and every later sync rebuilds again.
        await keep_in_index(writer.database, run, sorted(outcome.excluded | set(result.kept)))

    async def _finish(self, plan: SyncPlan, outcome: PathOutcomes, report: SyncReport,
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
            refused_claims = await writer.settle_permalinks(session)
            # A rebuild (or a sync after a crash, which is one) tries every dangling link; an
            # incremental sync only those its own writes may have made resolvable.
            await writes.resolve_relations(
                session, project_id,
                None if plan.rebuild_reason is not None else writer.relation_targets)
            for path, (content_id, reason) in outcome.hard_failures.items():
                await run_rows.record_failure(session, project_id, path, content_id, reason)
            await run_rows.clear_failures(session, project_id,
                                          sorted(plan.breaker.failing & outcome.applied))
            token = await writer.run_log.complete(session, outcome.log.total)
        for claim in refused_claims:
            outcome.warnings.note(claim)
        report.file_warnings = outcome.warnings.failures()
        report.file_warnings_total = outcome.warnings.total
        if writer.version_error:
            report.warnings.append(writer.version_error)
        report.warnings.extend(writer.versions.take_warnings())
        meta: dict[str, object] = {"db_token": token, PROJECT_META: writer.database.project.uuid}
        if writer.run_log.run_id is not None:
            meta["history_run_id"] = writer.run_log.run_id
        return meta

    async def _identify(self, snapshot: IndexSnapshot | None) -> tuple[StoredState, Identity]:
        """Read the database's state (without migrating) and find which project this folder
        is (`bm_sync.identity`)."""
        index_id = recorded_id(snapshot)
        stored = await read_stored_state(self.database_url, self.root, index_id)
        self._identity = identify(self.root, index_id, stored)
        return stored, self._identity

    def _read_snapshot(self) -> tuple[IndexSnapshot | None, str | None]:
        try:
            return self.detector.load_snapshot(), None
        except IndexCorrupt as error:
            return None, corrupt_index_message(self.detector.index_path, error)


def _is_database_error(error: Exception) -> bool:
    """Whether `error` comes from the database driver (SQLAlchemy is loaded by then)."""
    exceptions = sys.modules.get("sqlalchemy.exc")
    return exceptions is not None and isinstance(error, exceptions.SQLAlchemyError)


async def _notify(on_change: ChangeHandler | None, change: Change) -> None:
    if on_change is not None:
        outcome = on_change(change)
        if inspect.isawaitable(outcome):
            await outcome


def _take(records: Iterator[Finding], count: int) -> list[Finding]:
    """Up to `count` records from the detector (runs in a worker thread)."""
    batch = []
    for record in records:
        batch.append(record)
        if len(batch) >= count:
            break
    return batch


def _remove_leftovers(state_dir: Path) -> None:
    """Every sync, even one with nothing to do, removes what killed writers left in the version
    store (a `bm prune` killed mid-rewrite leaves a temporary pack). Under the folder lock, so
    no live writer owns them; best effort: a store we cannot list is the versions' problem."""

    try:
        VersionStore(state_dir).remove_leftovers()
    except OSError:
        pass
