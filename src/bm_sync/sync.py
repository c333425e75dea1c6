"""The sync engine: detected changes in, an up-to-date entity database out.

    async with SyncEngine.open(root) as engine:
        report = await engine.sync()

Order of work, and why it is crash-safe:

1. Take the folder lock (a second sync fails at once, or waits with `wait=True`).
2. A tiny consistency check: the database's project row must carry the token written into
   the index, be at the head migration, and hold as many entities as the index has entries.
   Otherwise (database deleted, emptied, replaced, or another project's) the run *rebuilds*:
   a full scan against an empty baseline, then a sweep of rows the new index does not hold.
   For SQLite this check uses the stdlib `sqlite3`: a no-change sync never imports SQLAlchemy.
3. Stream the detector's changes in batches; each batch is one database transaction.
4. Only after the last commit, write the index (without the paths that failed). A crash at any
   point leaves the index behind the database; the next sync re-detects and re-applies, and
   every step (upsert, move, delete) is idempotent, so it converges.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import sqlite3
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bm_sync.changes import Change, ChangeKind, Failure
from bm_sync.detector import Detector, StatusReport
from bm_sync.errors import IndexCorrupt
from bm_sync.hashing import HashPolicy
from bm_sync.index_format import IndexSnapshot
from bm_sync.versions import VersionPolicy

BATCH_FILES = 200
FAILURE_LOG_SIZE = 100
# The circuit breaker: a path that failed this many times in a row with the same content is
# skipped until its content changes or this many seconds have passed since its last failure.
SKIP_AFTER_FAILURES = 3
SKIP_SECONDS = 3600
SKIPPED = "skipped: failed 3 times in a row; retried when it changes or after an hour"
DATABASE_ENV = "BM_DATABASE_URL"

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
class DatabaseState:
    """What the consistency check decided."""

    token: str | None = None
    rebuild_reason: str | None = None
    failing_paths: set[str] = field(default_factory=set)
    tripped: dict[str, str | None] = field(default_factory=dict)  # path -> content id

    def skips(self, change: Change) -> bool:
        """The circuit breaker: a tripped path whose content is the same as when it failed."""
        return change.path in self.tripped and self.tripped[change.path] == change.content_id

    def unopened_skips(self, root: Path) -> dict[str, str]:
        """Tripped paths that could not even be read, and whose stat has not moved since:
        the detector leaves them unopened."""
        return {path: SKIPPED for path, content_id in self.tripped.items()
                if content_id is not None and content_id.startswith("stat:")
                and stat_signature(root, path) == content_id}


def stat_signature(root: Path, path: str) -> str | None:
    """The "content id" of a file that cannot be read: its size and mtime."""
    try:
        stat_result = os.stat(root / path, follow_symlinks=False)
    except OSError:
        return None
    return f"stat:{stat_result.st_size}:{stat_result.st_mtime_ns}"


def resolve_database_url(root: Path, database_url: str | None) -> str:
    """`database_url`, else `$BM_DATABASE_URL`, else SQLite at `<root>/.basic-memory/memory.db`."""
    url = database_url or os.environ.get(DATABASE_ENV)
    if url:
        return url
    return f"sqlite+aiosqlite:///{root / '.basic-memory' / 'memory.db'}"


def _sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL (None for other databases or in-memory SQLite)."""
    if not url.startswith("sqlite"):
        return None
    _scheme, _, rest = url.partition(":///")
    rest = rest.split("?", 1)[0]
    if not rest or rest == ":memory:":
        return None
    return Path(rest)


class SyncEngine:
    """Keeps the entity database of one folder in step with it. Use `SyncEngine.open`."""

    def __init__(self, root: str | os.PathLike[str], database_url: str | None = None, *,
                 policy: HashPolicy | None = None, wait: bool = False,
                 versions: VersionPolicy | None = None) -> None:
        self.detector = Detector(root, policy=policy)
        self.root = self.detector.root
        self.database_url = resolve_database_url(self.root, database_url)
        self.wait = wait
        self.versions = versions or VersionPolicy()
        self._store: Any = None  # bm_sync.apply.EntityStore, opened on first write
        # The current sync's (start time, last run the index confirmed, rebuilding?), handed
        # to the entity store for its history run (`EntityStore.begin_run`).
        self._run: tuple[float, int | None, bool] = (time.time(), None, False)

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
        if self._store is not None:
            await self._store.close()
            self._store = None

    async def _entity_store(self) -> Any:
        if self._store is None:
            from bm_sync.apply import EntityStore

            self._store = await EntityStore.open(self.database_url, self.root, self.versions)
            self._store.begin_run(*self._run)
        return self._store

    # -- history ------------------------------------------------------------------------------

    async def _history_store(self) -> Any:
        sqlite_path = _sqlite_file(self.database_url)
        if sqlite_path is not None and not sqlite_path.exists():
            from bm_sync.history import HistoryError

            raise HistoryError(f"no sync has run in {self.root} yet")
        return await self._entity_store()

    async def runs(self, limit: int = 20) -> list[Any]:
        """The most recent sync runs, newest first (`RunRecord`s)."""
        from bm_sync.history import list_runs

        store = await self._history_store()
        async with store.sessions() as session:
            return await list_runs(session, store.project_id, limit)

    async def history(self, path: str) -> list[Any]:
        """The timeline of one file (`VersionRecord`s), newest first, following moves."""
        from bm_sync.history import timeline

        store = await self._history_store()
        async with store.sessions() as session:
            return await timeline(session, store.project_id, self._relative(path),
                                  store.versions.has)

    async def show(self, path: str, revision: str | None = None) -> tuple[Any, bytes]:
        """A version's record and content (`~N` or a content id prefix; default the newest)."""
        from bm_sync.history import HistoryError, resolve_revision

        version = resolve_revision(await self.history(path), revision)
        content = self._store.versions.read(version.content_id)
        if content is None:
            raise HistoryError(f"the content of {version.content_id[:10]} was not stored "
                               "(binary, too large, versions off, or pruned)")
        return version, content

    async def diff(self, path: str, revision: str | None = None) -> str:
        """With a REV: that version against the one before it. Without: the newest recorded
        version against the file on disk."""
        from bm_sync.history import HistoryError, distinct_versions, unified_diff

        versions = await self.history(path)
        if revision is None:
            version, old = await self.show(path)
            current = self.root / self._relative(path)
            new = current.read_bytes() if current.exists() else b""
            return unified_diff(old, new, f"{version.content_id[:10]}", f"{current.name} (disk)")
        version, new = await self.show(path, revision)
        with_content = distinct_versions(versions)
        position = with_content.index(version)
        if position + 1 >= len(with_content):
            return unified_diff(b"", new, "/dev/null", version.content_id[:10])
        older = with_content[position + 1]
        old = self._store.versions.read(older.content_id)
        if old is None:
            raise HistoryError(f"the content of {older.content_id[:10]} was not stored")
        return unified_diff(old, new, older.content_id[:10], version.content_id[:10])

    async def restore(self, path: str, revision: str) -> Any:
        """Write a stored version back to the file: the only call that writes user files.

        The next sync records the restore as a modification.
        """
        version, content = await self.show(path, revision)
        target = self.root / self._relative(path)
        with self.detector.lock.hold(wait=self.wait):  # not under a running sync's feet
            target.parent.mkdir(parents=True, exist_ok=True)
            temporary = target.with_name(f".{target.name}.bm-restore")
            temporary.write_bytes(content)
            try:  # the file keeps its permissions (a private note stays private)
                os.chmod(temporary, os.stat(target).st_mode & 0o7777)
            except FileNotFoundError:
                pass
            os.replace(temporary, target)
        return version

    async def prune(self, keep_last: int | None = None,
                    keep_days: float | None = None) -> tuple[int, int]:
        """Drop stored versions outside the retention; return object store bytes before/after."""
        from bm_sync.history import retained_content_ids

        store = await self._history_store()
        with self.detector.lock.hold(wait=self.wait):
            async with store.sessions() as session:
                keep = await retained_content_ids(session, store.project_id, keep_last,
                                                  keep_days)
            return await asyncio.to_thread(store.versions.prune, keep)

    def _relative(self, path: str) -> str:
        """A path as recorded: relative to the root, `/`-separated (absolute paths accepted)."""
        candidate = Path(path)
        if candidate.is_absolute() or Path.cwd() != self.root:
            absolute = candidate if candidate.is_absolute() else Path.cwd() / candidate
            try:
                return Path(os.path.abspath(absolute)).relative_to(self.root).as_posix()
            except ValueError:
                pass
        return candidate.as_posix()

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
        failures = FailureLog()
        snapshot, warning = self._read_snapshot()
        if warning:
            report.warnings.append(warning)
        started = time.time()
        confirmed = snapshot.meta.get("history_run_id") if snapshot else None
        state = await self._check_database(snapshot)  # reads only
        rebuild = state.rebuild_reason is not None
        self._run = (started, confirmed if isinstance(confirmed, int) else None, rebuild)
        if self._store is not None:
            self._store.begin_run(*self._run)
        report.rebuilt, report.rebuild_reason = rebuild, state.rebuild_reason
        run = self.detector.detect(writable=True, rebuild=rebuild, snapshot=snapshot,
                                   skip=state.unopened_skips(self.root))
        counters = SyncProgress(expected=snapshot.entry_count if snapshot else 0)
        hard_failures: dict[str, tuple[str | None, str]] = {}
        excluded: set[str] = set()
        applied_paths: set[str] = set()

        def fail(failure: Failure, change: Change | None = None) -> None:
            failures.add(failure)
            if failure.error == SKIPPED:
                excluded.add(failure.path)
                return
            content_id = change.content_id if change else stat_signature(self.root, failure.path)
            hard_failures[failure.path] = (content_id, failure.error)
            excluded.add(failure.path)
            if change is not None and change.old_path:
                excluded.add(change.old_path)

        records = iter(run)
        store = None

        def produce() -> tuple[list[Failure | Change], list[Change], list[Any] | None]:
            """Stage one, in a worker thread: detect the next batch and parse its notes."""
            batch = _take(records, BATCH_FILES)
            changes = [record for record in batch
                       if isinstance(record, Change) and not state.skips(record)]
            prepared = store.prepare_all(changes) if store is not None and changes else None
            return batch, changes, prepared

        # Stage two runs here (database writes) while stage one works on the next batch.
        upcoming = asyncio.ensure_future(asyncio.to_thread(produce))
        try:
            while True:
                batch, changes, prepared = await upcoming
                if not batch:
                    break
                if changes and store is None:
                    store = await self._entity_store()
                    prepared = await asyncio.to_thread(store.prepare_all, changes)
                upcoming = asyncio.ensure_future(asyncio.to_thread(produce))
                for record in batch:
                    if isinstance(record, Failure):
                        fail(record)
                    elif state.skips(record):
                        fail(Failure(record.path, SKIPPED), record)
                if changes:
                    result = await store.write(prepared)
                    for failure, change in result.failed:
                        fail(failure, change)
                    for warning in result.warnings:
                        failures.add(warning)
                    for change in result.applied:
                        report.add(change)
                        applied_paths.add(change.path)
                        if on_change is not None:
                            outcome = on_change(change)
                            if inspect.isawaitable(outcome):
                                await outcome
                    counters.applied += len(result.applied)
                counters.hashed = run.hashed
                counters.scanned = run.hashed + run.unchanged
                if progress is not None:
                    progress(counters)
        finally:
            if not upcoming.done():  # a worker thread cannot be cancelled: let it finish
                await asyncio.wait([upcoming])
        report.sort()
        report.unchanged, report.hashed = run.unchanged, run.hashed
        report.warnings.extend(run.warnings)
        if run.index_rebuilt and not report.rebuilt:  # a corrupt entry met mid-scan
            report.rebuilt, report.rebuild_reason = True, "the index is corrupt"
        if report.rebuilt and report.rebuild_reason:
            report.warnings.append(f"rebuilt by a full scan: {report.rebuild_reason}")
        report.failed, report.failed_total = failures.failures(), failures.total
        if report.rebuilt:
            # Before `finish`, so that relations into swept rows are resolved again there.
            store = await self._entity_store()
            moves, deleted, kept = await store.sweep(applied_paths | excluded,
                                                     run.unexamined_prefixes)
            self._report_sweep(report, moves, deleted)
            if on_change is not None:  # the app hears of these like of any other change
                for change in [*(Change(ChangeKind.MOVED, new, old) for old, new in moves),
                               *(Change(ChangeKind.DELETED, path) for path in deleted)]:
                    outcome = on_change(change)
                    if inspect.isawaitable(outcome):
                        await outcome
            # Files that failed keep their rows; the new index must list them too (smudged),
            # or the counts disagree and every later sync rebuilds again.
            for row in await store.rows(sorted(excluded | set(kept))):
                run.keep_unexamined(*row)
        needs_database = (report.change_count or report.rebuilt or hard_failures
                          or state.failing_paths & applied_paths or state.token is None)
        meta: dict[str, object] = {"db_token": state.token}
        if needs_database:
            store = await self._entity_store()
            meta["db_token"] = await store.finish(
                hard_failures=hard_failures, applied_paths=applied_paths,
                failing_paths=state.failing_paths, failed_total=failures.total)
            if store.run_id is not None:
                meta["history_run_id"] = store.run_id
            if store.version_error:
                report.warnings.append(store.version_error)
        # The index is written only now, after every database commit.
        run.record(exclude=excluded, meta=meta)
        run.close()
        return report

    @staticmethod
    def _report_sweep(report: SyncReport, moves: list[tuple[str, str]],
                      deleted: list[str]) -> None:
        """A rebuild's sweep turns some of its adds into moves, and finds the deletions."""
        moved_to = {new for _old, new in moves}
        report.added = [path for path in report.added if path not in moved_to]
        report.moved.extend(moves)
        report.deleted.extend(deleted)
        report.sort()

    def _read_snapshot(self) -> tuple[IndexSnapshot | None, str | None]:
        try:
            return self.detector.load_snapshot(), None
        except IndexCorrupt as error:
            return None, (f"index {self.detector.index_path} is corrupt ({error}); "
                          "rebuilding it by a full scan")

    async def _check_database(self, snapshot: IndexSnapshot | None) -> DatabaseState:
        """Decide, cheaply, whether the database and the index still describe the same state."""
        if snapshot is None:
            return DatabaseState(rebuild_reason="the index is unreadable")
        sqlite_path = _sqlite_file(self.database_url)
        if sqlite_path is not None:
            found = _read_sqlite_state(sqlite_path, self.root)
        else:
            store = await self._entity_store()
            found = await store.read_state()
        return judge(found, snapshot)


@dataclass
class FoundState:
    """What the database says about this folder (None fields: no database or no project)."""

    revision: str | None = None
    token: str | None = None
    entity_count: int = 0
    # path -> (content id, consecutive failures, last failure time) from the breaker's table
    failures: dict[str, tuple[str | None, int, float]] = field(default_factory=dict)
    unusable: str | None = None


def judge(found: FoundState, snapshot: IndexSnapshot) -> DatabaseState:
    """The rules that make the index and the database never disagree silently."""
    from bm_sync.db import HEAD_REVISION

    now = time.time()
    state = DatabaseState(
        token=found.token,
        failing_paths=set(found.failures),
        tripped={path: content_id for path, (content_id, count, last) in found.failures.items()
                 if count >= SKIP_AFTER_FAILURES and now - last < SKIP_SECONDS},
    )
    index_token = snapshot.meta.get("db_token")
    if found.unusable:
        state.rebuild_reason = found.unusable
    elif found.token is None:
        # No completed sync against this database: it is new or was deleted, or the last sync
        # was killed after a commit (each sync clears the token in its first write). Rebuild,
        # so the sweep settles whatever that sync left behind.
        if found.revision is None and snapshot.entry_count:
            state.rebuild_reason = "the database is missing"
        elif snapshot.entry_count or found.entity_count:
            state.rebuild_reason = "the last sync of this folder did not complete"
    elif index_token is None:
        state.rebuild_reason = "the index is missing or was not written by a sync"
    elif index_token != found.token:
        state.rebuild_reason = "the database does not belong to this index"
    elif found.revision != HEAD_REVISION:
        state.rebuild_reason = f"the database was migrated from revision {found.revision}"
    elif found.entity_count != snapshot.entry_count:
        state.rebuild_reason = (f"the database holds {found.entity_count} entities but the "
                                f"index {snapshot.entry_count} files")
    return state


def _read_sqlite_state(path: Path, root: Path) -> FoundState:
    """The consistency check with the stdlib driver: a few indexed single-row queries."""
    if not path.exists():
        return FoundState()
    try:
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as error:
        return FoundState(unusable=f"the database cannot be opened ({error})")
    try:
        (revision,) = connection.execute("SELECT version_num FROM alembic_version").fetchone()
        row = connection.execute("SELECT id, index_token FROM project WHERE root_path = ?",
                                 (str(root),)).fetchone()
        if row is None:
            return FoundState(revision=revision)
        project_id, token = row
        (count,) = connection.execute("SELECT count(*) FROM entity WHERE project_id = ?",
                                      (project_id,)).fetchone()
        failures = {path: (content_id, count, last) for path, content_id, count, last in
                    connection.execute(
                        "SELECT file_path, content_id, count, last_failed_at FROM sync_failure "
                        "WHERE project_id = ?", (project_id,))}
    except (sqlite3.Error, TypeError) as error:
        return FoundState(unusable=f"the database is not usable ({error})")
    finally:
        connection.close()
    return FoundState(revision=revision, token=token, entity_count=count, failures=failures)


def _take(records: Iterator[Any], count: int) -> list[Any]:
    """Up to `count` records from the detector (runs in a worker thread)."""
    batch = []
    for record in records:
        batch.append(record)
        if len(batch) >= count:
            break
    return batch

