"""`bm worker --watch`: one project watched by file events for one slot of its schedule.

A watch session is one claim of the project, taken under the worker's watch holder
(`<worker id>/watch`, so `bm project remove` can tell a watcher from a sync: see
`projects.Registry.remove`). It runs `SyncEngine.watch` in the worker process:

- the watcher's first report is its reconcile, a full sync: this is the project's interval
  scan for the slot, recorded in the registry when the session ends;
- then each batch of file events is applied within about a second (debounce 200 ms), one log
  line each with `"via": "watch"`;
- the session ends when the project's next slot comes (the worker releases the lease and
  claims the next slot at once, whose reconcile is the next interval scan: the watcher's own
  rescan is off), when the lease is lost (another worker or `bm project remove` took it, or
  renewals failed until it expired) or the project is removed, on SIGTERM, or when the
  watcher stops by itself (the folder moved or deleted, another `bm watch` on it).

Why a session per slot rather than one watcher for the worker's life holding the lease
forever: each slot keeps its recorded run (result, duration, failures in a row, backoff),
`bm project list` stays true, the fleet can hand the project to another worker at any slot,
and the interval scan stays what it is without `--watch` (the reconcile).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bm_sync.projects import (
    BUSY,
    FAILED,
    MISSING,
    SyncOutcome,
    describe_report,
    folder_problem,
    peak_rss_mb,
)

WATCH_DEBOUNCE_MS = 200  # a saved note lands within about a second
# How many projects one worker watches at once by default: each costs an open engine (one
# idle database connection), one inotify watch per folder and its event thread, all small;
# the bound keeps a worker's connections (`2 + 2 x concurrency + watched`) and its share of
# the kernel's inotify watches predictable.
DEFAULT_MAX_WATCHED = 16

Emit = Callable[[dict[str, object]], None]


def watchable(root: Path, last_files: int | None, last_result: str | None) -> bool:
    """Whether a project's slot may be a watch session: a local folder (network and FUSE
    mounts deliver no reliable events: `fstype`), fit to sync, synced before and fine the last
    time (a first sync, or one after a failure, runs in a sync process as without `--watch`:
    a large sync's memory stays out of the long-lived worker)."""
    from bm_sync.fstype import events_unreliable

    if last_files is None or last_result != "ok":
        return False
    if folder_problem(root, last_files) is not None:
        return False
    return events_unreliable(root) is None


@dataclass
class WatchSession:
    """One project watched for one slot. `stop(why)` ends it after the batch in flight."""

    name: str
    root: Path
    url: str
    emit: Emit
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    why: str | None = None
    batches: int = 0

    def stop(self, why: str) -> None:
        if self.why is None:
            self.why = why
        self.stopping.set()

    async def run(self) -> SyncOutcome:
        """Watch until stopped; the outcome of the slot (its reconcile, or why it failed)."""
        from bm_sync.errors import BmSyncError, SyncLocked
        from bm_sync.sync import SyncEngine
        from bm_sync.watching import WatchStopped

        outcome = SyncOutcome(self.name, str(self.root))
        started = time.perf_counter()
        try:
            async with SyncEngine.open(self.root, self.url) as engine:
                reports = engine.watch(debounce_ms=WATCH_DEBOUNCE_MS, rescan_minutes=0,
                                       on_warning=self._warn, stop=self.stopping)
                async for report in reports:
                    if outcome.files_scanned is None:  # the reconcile: the slot's scan
                        describe_report(outcome, report)
                        outcome.duration_s = time.perf_counter() - started
                        outcome.peak_rss_mb = peak_rss_mb()
                        self.emit({**outcome.to_json(), "via": "reconcile"})
                        continue
                    self.batches += 1
                    batch = SyncOutcome(self.name, str(self.root),
                                        duration_s=report.duration_s,
                                        peak_rss_mb=peak_rss_mb())
                    describe_report(batch, report)
                    self.emit({**batch.to_json(), "via": "watch"})
        except WatchStopped as error:
            outcome.result, outcome.error = MISSING, str(error)
        except SyncLocked as error:  # another `bm watch`, or a sync holding the folder
            outcome.result, outcome.error = BUSY, str(error)
        except BmSyncError as error:
            outcome.result, outcome.error = FAILED, str(error)
        except Exception as error:  # a long-running worker outlives one project's watcher
            from bm_sync.db.engine import first_line

            outcome.result, outcome.error = FAILED, f"{type(error).__name__}: {first_line(error)}"
        if outcome.files_scanned is None or not outcome.ok:
            outcome.duration_s = time.perf_counter() - started
            outcome.peak_rss_mb = peak_rss_mb()
        return outcome

    def _warn(self, line: str) -> None:
        self.emit({"event": "warning", "project": self.name, "warning": line})
