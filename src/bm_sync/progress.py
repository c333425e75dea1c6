"""The terminal progress bar of `bm sync` (rich), kept out of the library's import path."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from types import TracebackType

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from bm_sync.detector import STATE_DIR
from bm_sync.reports import SyncProgress


class SyncProgressBar:
    """Files examined against the expected total, hashed and applied, rate and ETA.

    The total is the last recorded file count; a first sync has none, so a background thread
    counts the files (a quick walk, not hidden names, ignore files not read: an estimate). The
    last update of a sync sets the total to what was examined, so the bar ends at 100%.
    """

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
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
        self._counted: int | None = None
        self._root = Path(root) if root is not None else None

    def __enter__(self) -> SyncProgressBar:
        self._progress.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self._progress.stop()

    def update(self, counters: SyncProgress) -> None:
        if counters.finished:
            self._progress.update(self._task, completed=counters.scanned,
                                  total=max(counters.scanned, 1))
            return
        if not counters.expected and self._root is not None:
            self._start_count(self._root)
        estimate = counters.expected or self._counted
        # A count already passed means the tree grew: the bar pulses (no total, no ETA) rather
        # than sit at 100%.
        total = estimate if estimate and counters.scanned <= estimate else None
        elapsed = time.monotonic() - self._started
        rate = f" {counters.scanned / elapsed:,.0f}/s" if elapsed > 0.5 else ""
        self._progress.update(
            self._task, completed=counters.scanned, total=total,
            detail=f"hashed {counters.hashed} applied {counters.applied}{rate}")

    def _start_count(self, root: Path) -> None:
        self._root = None  # once

        def count() -> None:
            files = 0
            for _folder, folders, names in os.walk(root):
                folders[:] = [name for name in folders
                              if not name.startswith(".") and name != STATE_DIR]
                files += sum(not name.startswith(".") for name in names)
            self._counted = files

        threading.Thread(target=count, daemon=True, name="bm-count").start()
