"""`bm worker`: keep every registered project in sync, alone or as one of a fleet.

Each loop turn (every `poll_s`, or as soon as a sync ends) the worker reads the registry, so
projects added or removed while it runs are picked up, and claims the projects that are due
(`bm_sync.schedule`), not backing off and not leased by another worker, up to its concurrency.
A claim is one conditional UPDATE (`bm_sync.db.registry.claim`); the lease is renewed while
the sync runs (`leases.Leases`) and released when it ends. A worker killed with SIGKILL
leaves leases that expire after `lease_s` (one interval), after which the project's next slot
goes to another worker: taken over within two intervals.

The syncs run in child processes (`bm_sync.sync_pool`), at most `concurrency` at once.
SIGTERM (or Ctrl-C) stops claiming, lets the syncs in flight finish, stops the watchers (each
after its batch in flight, its index written) and exits 0.

With `watch`, a due project whose folder is local is watched for its slot instead of synced
once (`bm_sync.worker_watch`), at most `max_watched` at once; the others sync as without it.

On SQLite one worker is the supported shape (SQLite has one writer at a time and no server
to coordinate through): the worker holds an exclusive lock on `<database>.worker-lock`, and a
second one refuses with one line.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator, Callable
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bm_sync.db.urls import sqlite_file
from bm_sync.leases import WATCH_SUFFIX, Leases, worker_id
from bm_sync.lock import lock_with_pid
from bm_sync.project_sync import BUSY, SyncOutcome, peak_rss_mb
from bm_sync.projects import ProjectError, Registry
from bm_sync.schedule import backoff_delay, latest_start, least_recently_started, offsets
from bm_sync.sync_pool import SyncPool
from bm_sync.worker_watch import DEFAULT_MAX_WATCHED, WatchSession, watchable

if TYPE_CHECKING:
    from bm_sync.db.registry import RegisteredRow

# The memory budget of one worker process (the spec's 500 MB), what the process costs before
# it syncs anything (interpreter, SQLAlchemy, asyncpg) and what one sync of a tenant-sized
# project adds at its peak (docs/benchmarks.md, "Fleet"): the default concurrency keeps
# BASE + N * PER_SYNC within the budget, and N no larger than the CPUs.
MEMORY_BUDGET_MB = 500
BASE_MB = 100
PER_SYNC_MB = 100
MIN_LEASE_S = 2.0
MAX_LEASE_S = 60.0

Emit = Callable[[dict[str, object]], None]


def default_concurrency(url: str) -> int:
    """On SQLite one sync at a time (one writer); else what the memory budget and CPUs allow."""
    if sqlite_file(url) is not None:
        return 1
    by_memory = (MEMORY_BUDGET_MB - BASE_MB) // PER_SYNC_MB
    return max(1, min(os.cpu_count() or 1, by_memory))


def lease_seconds(interval: float) -> float:
    """One interval, within [MIN_LEASE_S, MAX_LEASE_S]: renewed every quarter of it."""
    return min(MAX_LEASE_S, max(MIN_LEASE_S, interval))


@dataclass
class WorkerCounters:
    synced: int = 0
    failed: int = 0


class Worker:
    """One `bm worker` process. `emit` receives each log event (sync, heartbeat, error)."""

    def __init__(self, url: str, emit: Emit, *, interval: float = 30.0,
                 concurrency: int | None = None, once: bool = False, watch: bool = False,
                 max_watched: int | None = None) -> None:
        self.url = url
        self.emit = emit
        self.interval = interval
        self.concurrency = concurrency or default_concurrency(url)
        self.once = once
        self.holder = worker_id()
        self.lease_s = lease_seconds(interval)
        self.poll_s = min(1.0, interval / 4)
        self.counters = WorkerCounters()
        self._stopping = asyncio.Event()
        self._in_flight: dict[int, asyncio.Task[None]] = {}
        self.watch = watch
        self.max_watched = max_watched or DEFAULT_MAX_WATCHED
        self.watch_holder = self.holder + WATCH_SUFFIX
        self._watching: dict[int, tuple[WatchSession, asyncio.Task[None]]] = {}
        self._watch_leases: Leases | None = None

    def stop(self) -> None:
        self._stopping.set()
        for session, _task in self._watching.values():
            session.stop("the worker stops")

    def _lease_lost(self, project: int) -> None:
        watched = self._watching.get(project)
        if watched is not None:
            watched[0].stop("its lease was lost")

    async def run(self) -> None:
        """Until SIGTERM (or, with `once`, until every project was synced once)."""
        with ExitStack() as stack:
            database = sqlite_file(self.url)
            if database is not None:
                stack.enter_context(_single_worker(database))
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(signum, self.stop)
            pool = SyncPool(self.concurrency)
            stack.callback(pool.close)
            async with Registry.open(self.url) as registry, \
                    Leases(registry, self.holder, self.lease_s) as leases, \
                    Leases(registry, self.watch_holder, self.lease_s,
                           on_lost=self._lease_lost) as watch_leases:
                self._watch_leases = watch_leases
                await self._loop(registry, leases, pool)

    async def _loop(self, registry: Registry, leases: Leases, pool: SyncPool) -> None:
        started = time.time()
        next_heartbeat = started + self.interval
        while not self._stopping.is_set():
            claimable = await self._claim_due(registry, leases, pool, started)
            if self.once and not claimable and not self._in_flight:
                break
            now = time.time()
            if now >= next_heartbeat:
                self._heartbeat(pool)
                next_heartbeat = now + self.interval
            tasks = self._tasks()
            waiting: set[asyncio.Future[Any]] = {
                asyncio.ensure_future(self._stopping.wait()), *tasks}
            await asyncio.wait(waiting, timeout=self.poll_s,
                               return_when=asyncio.FIRST_COMPLETED)
            for pending in waiting - tasks:
                pending.cancel()
        await asyncio.gather(*self._tasks(), return_exceptions=True)

    def _tasks(self) -> set[asyncio.Future[Any]]:
        return {*self._in_flight.values(), *(task for _session, task in self._watching.values())}

    async def _claim_due(self, registry: Registry, leases: Leases, pool: SyncPool,
                         started: float) -> int:
        """Claim and start every due project there is room for; return how many projects
        were due (claimed or not: with `once`, the worker ends when none is)."""
        watched = set(self._watching)  # a watch claimed during the read is not in `rows`
        try:
            rows = await registry.projects()
        except Exception as error:  # the database is away: say so, try again next turn
            self.emit({"event": "error", "error": _first_line(error)})
            return 1
        now = time.time()
        spacing = offsets([row.name for row in rows], self.interval)
        slot = self.interval / len(rows) if rows else self.interval
        self._check_watched(watched, rows, spacing, slot, now)
        due_count = 0
        unscheduled_watch = self.watch  # see below: one such start per turn
        for row in least_recently_started(rows):
            if row.id in self._in_flight or row.id in self._watching:
                continue
            due = (started if self.once else
                   latest_start(row.name, spacing[row.name], slot, self.interval, now))
            if row.not_before is not None and row.not_before > now:
                continue
            if row.lease_holder is not None and (row.lease_expires_at or 0) >= now:
                due_count += self.once  # another worker's: --once waits for it to end
                continue
            if row.last_started_at is not None and row.last_started_at >= due:
                # Not due, and nobody's: with --watch, watch it now rather than from its
                # next slot (a restarted worker, a project freed by another). One such start
                # per turn, so a worker starting with many projects spreads their reconciles.
                if unscheduled_watch and self._may_watch(row):
                    unscheduled_watch = False
                    await self._start_watching(registry, row, None)
                continue
            due_count += 1
            if self._may_watch(row):
                await self._start_watching(registry, row, due)
                continue
            if len(self._in_flight) >= self.concurrency:
                continue
            try:
                run_id = await registry.claim(row, self.holder, time.time(), due, self.lease_s)
            except Exception as error:
                self.emit({"event": "error", "error": _first_line(error)})
                continue
            if run_id is not None:
                leases.held[row.id] = run_id
                self._in_flight[row.id] = asyncio.create_task(
                    self._sync(registry, leases, pool, row, run_id))
        return due_count

    async def _sync(self, registry: Registry, leases: Leases, pool: SyncPool,
                    row: RegisteredRow, run_id: int) -> None:
        synced: RegisteredRow | None = None
        try:
            outcome = await pool.sync(row.name, Path(row.root_path), self.url, row.last_files)
            backoff = backoff_delay(row.consecutive_failures + 1, self.interval)
            await registry.finish(row, run_id, self.holder, outcome,
                                  not_before=time.time() + backoff)
            self.counters.synced += 1
            self.counters.failed += not outcome.ok
            event = outcome.to_json()
            if not outcome.ok:
                event["consecutive_failures"] = row.consecutive_failures + 1
                event["retry_in_s"] = round(backoff, 1)
            else:
                synced = replace(row, last_result=outcome.result, consecutive_failures=0,
                                 last_files=outcome.files_scanned, not_before=None)
            self.emit(event)
        except Exception as error:  # the registry is away: the lease expires, others retry
            self.emit({"event": "error", "project": row.name, "error": _first_line(error)})
        finally:
            leases.held.pop(row.id, None)
            self._in_flight.pop(row.id, None)
        # A first sync (or one after a failure) ran in a sync process; watch from now on
        # rather than from the next slot (its reconcile then finds nothing to apply).
        if synced is not None and self._may_watch(synced):
            await self._start_watching(registry, synced, None)

    def _may_watch(self, row: RegisteredRow) -> bool:
        return (self.watch and not self._stopping.is_set()
                and len(self._watching) < self.max_watched and row.id not in self._watching
                and watchable(Path(row.root_path), row.last_files, row.last_result))

    def _check_watched(self, watched: set[int], rows: list[RegisteredRow],
                       spacing: dict[str, float], slot: float, now: float) -> None:
        """Stop watching a project (of `watched`, those watched before `rows` were read) that
        was removed, whose lease is no longer this worker's, or whose next slot has come (the
        next session's reconcile is its interval scan)."""
        by_id = {row.id: row for row in rows}
        for project in watched & set(self._watching):
            session, _task = self._watching[project]
            row = by_id.get(project)
            if row is None:
                session.stop("the project was removed")
            elif row.lease_holder != self.watch_holder:
                session.stop("its lease was lost")
            elif (row.last_started_at or 0.0) < latest_start(
                    row.name, spacing[row.name], slot, self.interval, now):
                session.stop("its next slot has come")

    async def _start_watching(self, registry: Registry, row: RegisteredRow,
                              due: float | None) -> None:
        try:
            run_id = await registry.claim(row, self.watch_holder, time.time(), due,
                                          self.lease_s)
        except Exception as error:
            self.emit({"event": "error", "error": _first_line(error)})
            return
        if run_id is None:
            return
        assert self._watch_leases is not None  # set by run() before the loop
        self._watch_leases.hold(row.id, run_id)
        session = WatchSession(row.name, Path(row.root_path), self.url, self.emit)
        self._watching[row.id] = (session, asyncio.create_task(
            self._watch(registry, session, row, run_id)))

    async def _watch(self, registry: Registry, session: WatchSession, row: RegisteredRow,
                     run_id: int) -> None:
        """One watch session; its outcome is recorded (and the lease released) at its end."""
        try:
            outcome = await session.run()
            backoff = backoff_delay(row.consecutive_failures + 1, self.interval)
            await registry.finish(row, run_id, self.watch_holder, outcome,
                                  not_before=time.time() + backoff)
            self.counters.synced += 1
            self.counters.failed += not outcome.ok
            if not outcome.ok:  # the reconcile's own line was emitted as it happened
                event = {**outcome.to_json(), "via": "watch",
                         "consecutive_failures": row.consecutive_failures + 1,
                         "retry_in_s": round(backoff, 1)}
                self.emit(event)
        except Exception as error:  # the registry is away: the lease expires, others retry
            self.emit({"event": "error", "project": row.name, "error": _first_line(error)})
        finally:
            if self._watch_leases is not None:
                self._watch_leases.drop(row.id)
            self._watching.pop(row.id, None)

    def _heartbeat(self, pool: SyncPool) -> None:
        """`peak_rss_mb`: the worker's own peak plus its sync processes' peaks."""
        self.emit({"event": "heartbeat", "worker": self.holder,
                   "in_flight": len(self._in_flight), "watching": len(self._watching),
                   "synced": self.counters.synced,
                   "failed": self.counters.failed,
                   "peak_rss_mb": round(peak_rss_mb() + pool.peak_rss_mb(), 1)})


async def sync_all(url: str, concurrency: int, lease_s: float = 30.0
                   ) -> AsyncIterator[SyncOutcome]:
    """Sync every registered project once, at most `concurrency` at a time, yielding each
    outcome as it ends. A project a worker is syncing right now is reported busy."""
    holder = worker_id()
    async with Registry.open(url) as registry, Leases(registry, holder, lease_s) as leases:
        rows = await registry.projects()
        pool = SyncPool(max(1, min(concurrency, len(rows))))
        slots = asyncio.Semaphore(pool.processes)

        async def one(row: RegisteredRow) -> SyncOutcome:
            async with slots:
                run_id = await registry.claim(row, holder, time.time(), None, lease_s,
                                              ignore_backoff=True)
                if run_id is None:
                    return SyncOutcome(row.name, row.root_path, BUSY,
                                       "a worker is syncing it right now")
                leases.held[row.id] = run_id
                outcome = await pool.sync(row.name, Path(row.root_path), url, row.last_files)
                # A failure here leaves the workers' backoff as it was.
                await registry.finish(row, run_id, holder, outcome, not_before=row.not_before)
                del leases.held[row.id]
                return outcome

        try:
            for finished in asyncio.as_completed([one(row) for row in rows]):
                yield await finished
        finally:
            pool.close()


class _single_worker:  # noqa: N801 (a context manager used like a function)
    """An exclusive lock on `<database>.worker-lock`; `ProjectError` if another worker has
    it. Held for the worker's life; released by the kernel if the worker is killed."""

    def __init__(self, database: Path) -> None:
        self.database = database
        self.path = Path(f"{database}.worker-lock")
        self.descriptor: int | None = None

    def __enter__(self) -> None:
        try:
            descriptor = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:
            raise ProjectError(f"cannot open {self.path}: {error.strerror or error}") from error
        holder = lock_with_pid(descriptor)
        if holder is not None:
            raise ProjectError(
                f"another bm worker{holder} is running on {self.database}; on "
                "SQLite one worker at a time (use PostgreSQL for a fleet: docs/deploy.md)")
        self.descriptor = descriptor

    def __exit__(self, *_exc: object) -> None:
        if self.descriptor is not None:
            os.close(self.descriptor)
            self.descriptor = None


def _first_line(error: BaseException) -> str:
    from bm_sync.db.engine import first_line

    return first_line(error)
