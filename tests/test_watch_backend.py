"""`BM_WATCH_BACKEND` (issue 9): the event backend a `bm watch` uses, chosen for support and for
CI, which runs the watch tests on watchfiles too (what macOS and Windows use)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bm_sync import fsmonitor
from tests.helpers import write
from tests.helpers_watch import WatchProcess, run_entry

NOTE = "# Note\n\n- [idea] the first version\n"


@pytest.mark.parametrize("value", ["kqueue", "INOTIFY", "watchfiles "])
def test_an_unknown_backend_is_a_usage_error(notes: Path, value: str) -> None:
    result = run_entry("watch", str(notes), env={"BM_WATCH_BACKEND": value})
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"bm: error: Invalid value: BM_WATCH_BACKEND={value!r} is not one of inotify, "
        "watchfiles, poll"]
    assert not (notes / ".basic-memory").exists()  # refused before anything was written


@pytest.mark.parametrize(("backend", "polls"), [("inotify", False), ("watchfiles", False),
                                                ("poll", True)])
def test_each_backend_applies_a_save_and_says_whether_it_polls(notes: Path, backend: str,
                                                               polls: bool) -> None:
    write(notes, "a.md", NOTE)
    with WatchProcess(notes, "--poll-seconds", "0.2",
                      env={"BM_WATCH_BACKEND": backend}).wait_ready() as watcher:
        write(notes, "b.md", NOTE, old=False)
        watcher.wait_batch(lambda report: report["added"] == ["b.md"], "b.md added")
        answer = fsmonitor.ask(str(notes), {"op": "status", "json": True})
        assert (answer is None) == polls  # a poller has no fast path
        assert any("polling every 0.2 s: BM_WATCH_BACKEND is poll" in line
                   for line in watcher.stderr) == polls
        assert watcher.terminate() == 0
