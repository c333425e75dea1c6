"""Continuous sync: file events in, one `SyncEngine.sync(paths=batch)` per batch out.

    async for report in engine.watch():     # the reconcile, then every batch that did something
        ...

Events are hints, never the truth: a batch is only a set of paths, and the detector examines
them exactly as a full scan would (`sources.ExplicitPaths`), so what is applied is what a
`bm sync` would apply. Event kinds are thrown away (an editor's save is a storm of creates,
renames and deletes; only the end state counts).

- **Batching**: a batch closes after 50 ms without news, or `debounce_ms` after its first
  event. If a path in it is missing (an editor between delete and create, a rename half
  seen), it stays open until 500 ms pass without news (at most 5 s): a save is never applied
  half done. One batch at a time; events during a batch go to the next.
- **Lost history** (queue overflow, watch limit, more than 1,000 paths, an error, `flush`) is
  one warning and a full scan. A jittered full reconcile also runs every `rescan_minutes`
  (events can be missed without any sign: a note written through a hard link outside the
  folder, an overflow under watchfiles); it is silent unless it finds something.
- **Heartbeat** (every `heartbeat_s`, jittered): a cookie round trip. A cookie that does not
  come back means the event source is dead or deaf (its thread died, the cookie folder was
  deleted with its watch): the source is closed and opened again, then a full scan, so a
  watcher never goes silently stale (basic-memory's #580).
- **Stop**: once `stop` is set, one cookie round trip (at most `STOP_COOKIE_TIMEOUT_S`) drains
  what the kernel still holds, and the batch it completes is applied before `run` returns:
  a note saved just before a SIGTERM is in the database when the watcher exits.
- **Locks**: `watch.lock` for the watcher's life (one watcher per folder); the folder lock
  per batch (waited for without blocking the event loop), so `bm sync`, `bm restore` and
  `bm prune` interleave between batches.
- **Root identity**: the root's (st_dev, st_ino) is checked before every batch and answer; a
  root moved, deleted or replaced raises `WatchStopped` (nothing sensible can go on).
- **fsmonitor** (`fsmonitor.py`): answers other processes' `status` and `sync` from the dirty
  set D = pending ∪ the batch in flight ∪ paths that failed. The invariant: D holds every path
  whose file differs from the index; a path leaves D only once a batch re-detected it.
- **Polling** (network/FUSE, the watch limit, no backend): a full stat scan every
  clamp(60 × the last full scan's time, 5 s, 600 s), or `poll_seconds`. No fast path then.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from bm_sync.changes import StatusReport
from bm_sync.errors import BmSyncError, IndexCorrupt, SyncLocked
from bm_sync.events import EventSource, open_source
from bm_sync.inotify import watch_limit_message
from bm_sync.lock import WatchLock

if TYPE_CHECKING:
    from bm_sync.reports import SyncReport
    from bm_sync.sync import ChangeHandler, SyncEngine

QUIET_S = 0.05
GRACE_QUIET_S = 0.5
GRACE_MAX_S = 5.0
MAX_BATCH_PATHS = 1000
HEARTBEAT_S = 60.0
HEARTBEAT_TIMEOUT_S = 2.0
COOKIE_TIMEOUT_S = 1.0
# Well inside the CLI's 30 s stop budget (`cli_watch.STOP_BUDGET_S`), with room for the batch.
STOP_COOKIE_TIMEOUT_S = 10.0
POLL_MIN_S, POLL_MAX_S = 5.0, 600.0
RETRY_MAX_S = 60.0
LOCK_RETRY_MIN_S, LOCK_RETRY_MAX_S = 0.02, 0.5

_log = logging.getLogger("bm_sync.watch")


class WatchStopped(BmSyncError):
    """The watched folder was moved, deleted or replaced: the watcher cannot go on."""


def _has_news(report: SyncReport) -> bool:
    return bool(report.change_count or report.failed_total or report.file_warnings_total
                or report.warnings)


class Watcher:
    """One folder watched by one engine. `run()` is the async iterator `SyncEngine.watch`
    returns; `answer()` serves the fsmonitor socket."""

    def __init__(self, engine: SyncEngine, *, debounce_ms: int = 500,
                 rescan_minutes: float = 60.0, poll_seconds: float | None = None,
                 heartbeat_s: float | None = None,
                 on_change: ChangeHandler | None = None,
                 on_ready: Callable[[int], None] | None = None,
                 on_warning: Callable[[str], None] | None = None,
                 stop: asyncio.Event | None = None) -> None:
        self.engine = engine
        self.root = engine.root
        self.debounce_s = max(debounce_ms, 0) / 1000
        self.rescan_s = rescan_minutes * 60
        self.poll_seconds = poll_seconds
        self.heartbeat_s = heartbeat_s or HEARTBEAT_S
        self.on_change = on_change
        self.on_ready = on_ready
        self.on_warning = on_warning
        self.stop = stop or asyncio.Event()
        self._wake = asyncio.Event()
        self._source: EventSource | None = None
        self._polling: str | None = None  # why we poll, when we do
        self._poll_s = POLL_MIN_S
        self._pending: set[bytes] = set()
        self._in_flight: set[bytes] = set()
        self._lost: str | None = None
        self._failing: set[bytes] = set()  # failed paths: a full status reports them again
        self._failing_complete = True  # False when more failed than a report lists
        self._sync_requests: list[asyncio.Future[SyncReport]] = []
        self._healthy = False
        self._instance = uuid.uuid4().hex[:12]
        self._seq = 0
        stat = os.stat(self.root)
        self._root_id = [stat.st_dev, stat.st_ino]
        self._retry_s = 0.0
        self._drained = False  # the stop's cookie round trip is done
        now = time.monotonic()
        self._next_heartbeat = now + _jitter(self.heartbeat_s)
        self._next_rescan = now + _jitter(self.rescan_s) if self.rescan_s > 0 else float("inf")
        self._next_poll = float("inf")

    @property
    def token(self) -> str:
        return f"{self._instance}:{self._seq}"

    # -- the loop ---------------------------------------------------------------------------

    async def run(self) -> AsyncIterator[SyncReport]:
        """Reconcile (a full sync: its report comes first, always), then yield the report of
        every batch that applied, failed or warned about something, until `stop` is set."""
        from bm_sync import fsmonitor

        lock = WatchLock(self.engine.detector.state_dir)
        lock.acquire()
        server = None
        relay = asyncio.ensure_future(self._relay_stop())
        try:
            self._open_source()  # armed before the reconcile: a change during it is queued
            yield await self._full_sync()
            if self._source is not None:
                try:
                    server = await fsmonitor.serve(self)
                except OSError as error:  # watching still works; other commands just scan
                    self._warn(f"no fast path for bm status: {error}")
            if self._polling is not None:
                self._start_polling(self._polling)
            if self.on_ready is not None:
                self.on_ready(self._tracked_files())
            while True:
                report = await self._next_report()
                if report is None:
                    return
                yield report
        finally:
            relay.cancel()
            if server is not None:
                server.close()
                fsmonitor.remove_socket(str(self.root))
            if self._source is not None:
                self._source.close()
            lock.release()

    def _open_source(self) -> None:
        self._source, self._polling = open_source(self.root, max_pending=MAX_BATCH_PATHS)
        if self._source is not None:
            try:
                self._source.start(self._wake.set)
            except OSError as error:
                self._source.close()
                self._source, self._polling = None, f"file events unavailable: {error}"

    async def _relay_stop(self) -> None:
        await self.stop.wait()
        self._wake.set()

    async def _next_report(self) -> SyncReport | None:
        """Wait for work and do it; the next report worth yielding, None once stopped."""
        while True:
            work = await self._wait_for_work()
            if work == "stop":
                if self._drained or self._source is None:
                    return None
                self._drained = True
                # What the kernel still holds (a save just before the signal) comes back
                # before the cookie; the next turn applies it.
                await self._source.cookie(STOP_COOKIE_TIMEOUT_S)
                continue
            self._check_root()
            if work == "heartbeat":
                await self._heartbeat()
                continue
            if work in ("rescan", "poll"):
                try:
                    report = await self._full_sync()
                except Exception as error:  # as in _apply_batch
                    await self._after_failure(error)
                    continue
                if work == "rescan" and report.change_count:
                    self._warn(f"rescan found {report.change_count} changes the watcher missed")
                if _has_news(report):
                    return report
                continue
            await self._settle()
            batch_report = await self._apply_batch()
            if batch_report is not None and _has_news(batch_report):
                return batch_report

    async def _wait_for_work(self) -> str:
        while True:
            self._collect()
            if self._lost or self._pending or self._sync_requests:
                return "batch"
            if self.stop.is_set():
                return "stop"
            now = time.monotonic()
            timers = {"rescan": self._next_rescan, "poll": self._next_poll}
            if self._source is not None:
                timers["heartbeat"] = self._next_heartbeat
            work, due = min(timers.items(), key=lambda item: item[1])
            if due <= now:
                return work
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), min(due - now, 3600.0))
            except TimeoutError:
                pass

    def _collect(self) -> bool:
        """Move the source's news into the pending set; whether there were new paths."""
        source = self._source
        if source is None:
            return False
        paths, lost = source.take()
        self._pending |= paths
        if lost is not None:
            self._lost = self._lost or lost
        if source.root_gone:
            raise WatchStopped(f"{self.root} was moved or deleted; bm watch stops")
        if source.limit_reached:
            source.close()
            self._source = None
            self._start_polling(f"{watch_limit_message()}; polling instead")
        return bool(paths)

    async def _settle(self) -> None:
        """Keep the batch open until it is quiet (see the module docstring)."""
        started = time.monotonic()
        quiet, deadline, graced = QUIET_S, started + self.debounce_s, False
        while not self._sync_requests and not self._lost:
            timeout = min(quiet, deadline - time.monotonic())
            if timeout > 0 and await self._news_within(timeout):
                continue
            if not graced and self._any_missing():
                graced, quiet, deadline = True, GRACE_QUIET_S, started + GRACE_MAX_S
                continue
            return

    async def _news_within(self, timeout: float) -> bool:
        self._wake.clear()
        try:
            await asyncio.wait_for(self._wake.wait(), timeout)
        except TimeoutError:
            pass
        return self._collect()

    def _any_missing(self) -> bool:
        for path in self._pending:
            try:
                os.lstat(os.path.join(os.fsencode(self.root), path))
            except FileNotFoundError:
                return True
            except OSError:
                continue
        return False

    async def _apply_batch(self) -> SyncReport | None:
        requests, self._sync_requests = self._sync_requests, []
        paths, lost = self._pending, self._lost
        self._pending, self._lost = set(), None
        if lost is None and len(paths) > MAX_BATCH_PATHS:
            lost = f"more than {MAX_BATCH_PATHS:,} paths changed at once"
        try:
            if lost is not None:
                self._warn(f"{lost}; scanning the whole folder")
                report = await self._full_sync()
            elif self._source is None:  # polling: a `bm sync` asked, there are no hints
                report = await self._full_sync()
            else:
                self._in_flight = paths
                report = await self._sync(paths)
        except Exception as error:  # a long-running watcher outlives a bad batch
            for request in requests:
                if not request.done():
                    request.set_exception(error)
            await self._after_failure(error)
            return None
        finally:
            self._in_flight = set()
        self._retry_s = 0.0
        for request in requests:
            if not request.done():
                request.set_result(report)
        return report

    async def _after_failure(self, error: Exception) -> None:
        """A batch that raised: one warning, the database closed, then (after a pause that
        grows while it keeps failing, e.g. an unreachable database) a full scan. Errors of our
        own are one line already; anything else is named by its type."""
        self._retry_s = min(max(self._retry_s * 2, 1.0), RETRY_MAX_S)
        reason = str(error) if isinstance(error, BmSyncError) else (
            f"{type(error).__name__}: {error}")
        self._warn(f"sync failed: {reason}; retrying with a full scan in {self._retry_s:.0f} s")
        self._healthy = False
        # The retry opens the database afresh: an engine whose connection broke stays marked
        # lost (`db.postgres.connection_lost`, right for one run), and would fail every retry
        # for the rest of the watcher's life.
        try:
            await self.engine.close()
        except Exception as closing:  # a dead pool may fail to close: it is dropped anyway
            _log.debug("closing the database after a failed batch: %s", closing)
        try:
            await asyncio.wait_for(self.stop.wait(), self._retry_s)
        except TimeoutError:
            pass
        self._lost = self._lost or "the last batch failed"

    @asynccontextmanager
    async def _folder_lock(self) -> AsyncIterator[None]:
        """The folder lock, waited for without blocking the event loop (a `bm restore` may
        hold it for a while, and the fsmonitor answers must go on meanwhile). The engine's
        own `hold` inside is then re-entrant."""
        lock = self.engine.detector.lock
        delay = LOCK_RETRY_MIN_S
        while True:
            holding = lock.hold(wait=False)
            try:
                holding.__enter__()
            except SyncLocked:
                await asyncio.sleep(delay)
                delay = min(delay * 2, LOCK_RETRY_MAX_S)
                continue
            try:
                yield
            finally:
                holding.__exit__(None, None, None)
            return

    async def _sync(self, paths: set[bytes]) -> SyncReport:
        async with self._folder_lock():
            report = await self.engine.sync(on_change=self.on_change, paths=sorted(paths))
        self._seq += 1
        self._failing -= paths
        self._remember_failures(report)
        return report

    async def _full_sync(self) -> SyncReport:
        """A scan of the whole tree. Answers are trivial meanwhile, and the token's instance
        changes: whoever kept a token must not trust it across a rescan."""
        self._healthy = False
        self._instance = uuid.uuid4().hex[:12]
        started = time.perf_counter()
        async with self._folder_lock():
            report = await self.engine.sync(on_change=self.on_change)
        self._seq += 1
        self._failing = set()
        self._remember_failures(report)
        self._poll_s = self.poll_seconds or min(max(60 * (time.perf_counter() - started),
                                                    POLL_MIN_S), POLL_MAX_S)
        if self._polling is not None:
            self._next_poll = time.monotonic() + self._poll_s
        if self.rescan_s > 0:
            self._next_rescan = time.monotonic() + _jitter(self.rescan_s)
        self._healthy = self._source is not None
        return report

    def _remember_failures(self, report: SyncReport) -> None:
        self._failing |= {os.fsencode(failure.path) for failure in report.failed}
        self._failing_complete = report.failed_total <= len(report.failed)

    def _start_polling(self, why: str) -> None:
        self._polling = why
        self._healthy = False
        self._next_poll = time.monotonic() + self._poll_s
        self._warn(f"polling every {self._poll_s:.3g} s: {why}")

    async def _heartbeat(self) -> None:
        """A cookie round trip; when it fails, the source is replaced (see the module
        docstring) and the next batch is a full scan."""
        self._next_heartbeat = time.monotonic() + _jitter(self.heartbeat_s)
        if self._source is None or await self._source.cookie(HEARTBEAT_TIMEOUT_S):
            return
        self._healthy = False
        self._source.close()
        self._source = None
        self._open_source()
        self._lost = self._lost or "no file event came back for the heartbeat; events restarted"
        if self._polling is not None:
            self._start_polling(self._polling)

    def _check_root(self) -> None:
        if not self._root_unchanged():
            raise WatchStopped(f"{self.root} was moved, deleted or replaced; bm watch stops")

    def _root_unchanged(self) -> bool:
        try:
            stat = os.stat(self.root)
        except OSError:
            return False
        return [stat.st_dev, stat.st_ino] == self._root_id

    def _tracked_files(self) -> int:
        try:
            return self.engine.detector.load_snapshot().entry_count
        except (OSError, IndexCorrupt):
            return 0

    def _warn(self, line: str) -> None:
        if self.on_warning is not None:
            self.on_warning(line)
        else:
            _log.warning("%s", line)

    # -- fsmonitor answers --------------------------------------------------------------------

    async def answer(self, request: dict[str, Any]) -> dict[str, Any]:
        """The reply to one fsmonitor request (`fsmonitor.py` has the protocol)."""
        operation = request.get("op")
        if operation == "flush":
            self._lost = self._lost or "flush requested"
            self._wake.set()
            return self._trivial("flush")
        if operation == "status":
            return await self._answer_status(request)
        if operation == "sync":
            return await self._answer_sync(request)
        return self._trivial(f"unknown op {operation!r}")

    def _trivial(self, why: str) -> dict[str, Any]:
        return {"token": self.token, "root_id": self._root_id, "trivial": True, "why": why}

    async def _answer_status(self, request: dict[str, Any]) -> dict[str, Any]:
        from bm_sync.hashing import HashPolicy

        source = self._source
        policy, default = self.engine.detector.policy, HashPolicy()
        if (policy.full_hash_max_bytes, policy.partial_hash_max_bytes) != (
                default.full_hash_max_bytes, default.partial_hash_max_bytes):
            return self._trivial("the watcher hashes with other thresholds")
        if source is None or not self._healthy:
            return self._trivial("not watching by events")
        if not await source.cookie(COOKIE_TIMEOUT_S):
            return self._trivial("the cookie did not come back")
        try:
            self._collect()
        except WatchStopped:
            return self._trivial("the folder was moved")
        dirty = self._pending | self._in_flight | self._failing
        if (self._lost or not self._healthy or not self._failing_complete
                or len(dirty) > MAX_BATCH_PATHS or not self._root_unchanged()):
            return self._trivial("history lost, or too much to look at")
        try:
            report = await asyncio.to_thread(self._status_of, dirty)
        except (OSError, BmSyncError) as error:
            return self._trivial(f"{type(error).__name__}: {error}")
        return self._rendered(report, request, sync=False)

    def _status_of(self, dirty: set[bytes]) -> StatusReport:
        """Exactly what a full read-only scan reports, looking only at `dirty` (runs in a
        worker thread): every entry outside it is unchanged, by the invariant."""
        from bm_sync.detector import Detector
        from bm_sync.sources import explicit_paths

        detector = Detector(self.root)
        snapshot = detector.load_snapshot()
        if not dirty:
            return StatusReport(unchanged=snapshot.entry_count)
        report = detector.detect(paths=sorted(dirty), snapshot=snapshot).collect()
        source = explicit_paths(self.root, sorted(dirty))
        if source is not None and snapshot.entry_count:
            covered = sum(1 for path, _raw in snapshot.records() if source.covers(path))
            report.unchanged += snapshot.entry_count - covered
        return report

    async def _answer_sync(self, request: dict[str, Any]) -> dict[str, Any]:
        from bm_sync.db.urls import database_url

        asked_db = request.get("db")
        try:
            same_db = database_url(self.engine.detector.state_dir,
                                   asked_db if isinstance(asked_db, str) else None
                                   ) == self.engine.database_url
        except BmSyncError:
            same_db = False
        if not same_db or bool(request.get("versions", True)) != \
                self.engine.version_policy.enabled:
            return {**self._trivial("another database or version policy"), "refused": True}
        if self._source is not None and not await self._source.cookie(COOKIE_TIMEOUT_S):
            return self._trivial("the cookie did not come back")
        done: asyncio.Future[SyncReport] = asyncio.get_running_loop().create_future()
        self._sync_requests.append(done)
        self._wake.set()
        try:
            report = await done
        except Exception as error:  # the loop has warned; the client syncs itself
            return self._trivial(f"{type(error).__name__}: {error}")
        # A batch counts only the files it examined: say how many are unchanged in all.
        report.unchanged = max(self._tracked_files() - len(report.added)
                               - len(report.modified) - len(report.moved), 0)
        return self._rendered(report, request, sync=True)

    def _rendered(self, report: StatusReport, request: dict[str, Any],
                  sync: bool) -> dict[str, Any]:
        from bm_sync.reports import SyncReport
        from bm_sync.roots import narrow, scope_of
        from bm_sync.status_text import render_status, render_sync

        target = request.get("target")
        scope = scope_of(self.root, target) if isinstance(target, str) else None
        if scope is not None:  # counted as the CLI counts it (roots.narrow)
            recorded = [path for path, _entry in self.engine.detector.load_snapshot().records()]
            if sync and isinstance(report, SyncReport):
                report.narrow_to(scope, recorded)
            else:
                narrow(report, scope, recorded)
        as_json = bool(request.get("json"))
        if sync and isinstance(report, SyncReport):
            stdout, stderr = render_sync(report, as_json, {"via": "watcher", "token": self.token})
        else:
            stdout, stderr = render_status(report, as_json, scope)
        return {"token": self.token, "root_id": self._root_id, "trivial": False,
                "stdout": stdout, "stderr": stderr, "exit": 0}


def _jitter(seconds: float) -> float:
    """`seconds` × uniform(0.9, 1.1): many watchers started together do not rescan together."""
    return seconds * random.uniform(0.9, 1.1)
