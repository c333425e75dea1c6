"""The terminal progress bar of `bm sync` (rich), kept out of the library's import path."""

from __future__ import annotations

import time
from types import TracebackType

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from bm_sync.sync import SyncProgress


class SyncProgressBar:
    """Files scanned (against the last known file count), hashed and applied, rate and ETA."""

    def __init__(self) -> None:
        self._progress = Progress(
            TextColumn("[bold]sync"),
            BarColumn(bar_width=20),
            MofNCompleteColumn(),
            TextColumn("{task.fields[detail]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            transient=True,
        )
        self._task = self._progress.add_task("sync", total=None, detail="")
        self._started = time.monotonic()

    def __enter__(self) -> SyncProgressBar:
        self._progress.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self._progress.stop()

    def update(self, counters: SyncProgress) -> None:
        # The last recorded file count is the estimate; a first sync has none, and a count
        # already passed means the tree grew: then the bar pulses (no total, no ETA) rather
        # than sit at 100%.
        total = counters.expected if counters.scanned <= counters.expected else None
        elapsed = time.monotonic() - self._started
        rate = f" {counters.scanned / elapsed:,.0f}/s" if elapsed > 0.5 else ""
        self._progress.update(
            self._task, completed=counters.scanned, total=total,
            detail=f"hashed {counters.hashed} applied {counters.applied}{rate}")
