"""`SyncEngine.watch()` (issue 9), in process: the reconcile's report, then each batch's;
`on_change` as in `sync()`; `stop` and cancelling the task both end it and free the folder."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from bm_sync import fsmonitor
from bm_sync.changes import Change
from bm_sync.lock import AlreadyWatching, WatchLock
from bm_sync.reports import SyncReport
from bm_sync.sync import SyncEngine
from tests.helpers import write

TIMEOUT_S = 90.0


async def _until(condition: Callable[[], object], what: str) -> None:
    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0.02)

    try:
        await asyncio.wait_for(poll(), TIMEOUT_S)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


@pytest.mark.parametrize("ending", ["stop", "cancel"])
async def test_watch_yields_each_batch_and_ends_cleanly(notes: Path, ending: str) -> None:
    write(notes, "a.md", "# A\n")
    reports: list[SyncReport] = []
    heard: list[Change] = []
    ready: list[int] = []
    stop = asyncio.Event()
    async with SyncEngine.open(notes) as engine:

        async def consume() -> None:
            async for report in engine.watch(debounce_ms=50, on_change=heard.append,
                                             on_ready=ready.append, stop=stop):
                reports.append(report)

        task = asyncio.ensure_future(consume())
        await _until(lambda: ready or task.done(), "ready")
        assert ready == [1] and reports[0].added == ["a.md"]  # the reconcile comes first
        with pytest.raises(AlreadyWatching):  # one watcher per folder, in process too
            WatchLock(notes / ".basic-memory").acquire()

        write(notes, "b.md", "# B\n", old=False)
        await _until(lambda: len(reports) == 2 or task.done(), "the batch")
        assert reports[1].added == ["b.md"]
        assert [change.path for change in heard] == ["a.md", "b.md"]

        if ending == "stop":
            stop.set()
            await asyncio.wait_for(task, TIMEOUT_S)
        else:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
    lock = WatchLock(notes / ".basic-memory")
    lock.acquire()  # released by the ended watcher
    lock.release()
    assert not Path(fsmonitor.socket_path(str(notes))).exists()
