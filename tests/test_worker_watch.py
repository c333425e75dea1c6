"""`bm worker --watch`: real worker subprocesses watching real folders (real inotify), on
SQLite (the single-worker shape) and a real PostgreSQL database. The interval is 300 s, so a
note that reaches the database within the test was applied by a watcher, not by a scan."""

from __future__ import annotations

from pathlib import Path

import pytest

from bm_sync.db.urls import sqlite_url
from bm_sync.detector import Detector
from bm_sync.lock import WatchLock
from bm_sync.projects import WATCH_SUFFIX
from tests.helpers import run_bm, write
from tests.helpers_fleet import (
    Event,
    WorkerProcess,
    bm_ok,
    entity_paths,
    make_notes,
    overlaps,
    pg_url,
    register,
    registry_state,
    user_data,
    wait_until,
)

__all__ = ["pg_url", "user_data"]  # fixtures

LONG_INTERVAL = "300"


def watching(project: str) -> object:
    """A `wait_for` predicate: the project's watch session has reconciled (it is watched)."""
    def reconciled(events: list[Event]) -> bool:
        return any(event["event"] == "sync" and event["project"] == project
                   and event.get("via") == "reconcile" for event in events)
    return reconciled


def watch_batches(worker: WorkerProcess, project: str) -> list[Event]:
    return [event for event in worker.syncs(project) if event.get("via") == "watch"]


def watcher_running(folder: Path) -> bool:
    lock = WatchLock(folder / ".basic-memory")
    try:
        lock.acquire()
    except Exception:
        return True
    lock.release()
    return False


def test_a_saved_note_lands_within_the_interval_and_sigterm_leaves_the_index_written(
        tmp_path: Path, user_data: dict[str, str]) -> None:
    folder = make_notes(tmp_path / "notes", 3)
    bm_ok("project", "add", str(folder), env=user_data)
    url = sqlite_url(Path(user_data["XDG_DATA_HOME"]) / "bm-sync" / "projects.db")
    worker = WorkerProcess("--watch", "--interval", LONG_INTERVAL, env=user_data)
    worker.wait_for(watching("notes"), "the project watched")  # type: ignore[arg-type]

    write(folder, "saved.md", "# Saved\n\n- links_to [[Note 1]]\n")
    wait_until(lambda: "saved.md" in entity_paths(url, folder), "the saved note in the database")
    (folder / "n0.md").unlink()
    worker.wait_for(lambda events: any(
        event.get("via") == "watch" and event["changes"]["deleted"] == 1 for event in events),
        "the deletion applied by the watcher")
    assert worker.terminate() == 0

    assert entity_paths(url, folder) == {"n1.md", "n2.md", "saved.md"}
    # The index records exactly what is on disk: nothing left for a scan to apply.
    report = Detector(folder).status()
    assert report.change_count == 0 and report.unchanged == 3, report
    assert not watcher_running(folder)
    batches = watch_batches(worker, "notes")
    assert [event["changes"]["added"] for event in batches][:1] == [1]
    assert all(event["result"] == "ok" and event["failures"] == 0 for event in batches)
    (row,), runs = registry_state(url)
    assert row.lease_holder is None and row.consecutive_failures == 0
    assert all(run.ended_at is not None and run.result == "ok" for run in runs), runs
    assert any(run.worker.endswith(WATCH_SUFFIX) for run in runs)
    assert worker.stderr() == ""


def test_a_removed_project_stops_being_watched_and_the_other_goes_on(
        tmp_path: Path, pg_url: str) -> None:
    kept, removed = make_notes(tmp_path / "kept", 2), make_notes(tmp_path / "removed", 2)
    register(pg_url, [kept, removed])
    # One sync at a time, in the worker itself: no sync processes to start (a faster test).
    worker = WorkerProcess("--db", pg_url, "--watch", "--interval", LONG_INTERVAL,
                           "--concurrency", "1")
    for name in ("kept", "removed"):
        worker.wait_for(watching(name), f"{name} watched")  # type: ignore[arg-type]
    assert watcher_running(removed)

    bm_ok("project", "remove", "removed", "--yes", "--db", pg_url)
    # The removal revoked the watcher's lease and returned only once the watcher was gone.
    assert not watcher_running(removed)
    assert entity_paths(pg_url, removed) == set()
    write(removed, "after.md", "# After\n")
    write(kept, "after.md", "# After\n")
    wait_until(lambda: "after.md" in entity_paths(pg_url, kept), "the kept project's change")
    assert entity_paths(pg_url, removed) == set()  # never written again
    assert not watcher_running(removed)
    assert worker.terminate() == 0
    assert [event["project"] for event in worker.events if event["event"] == "error"] == []
    assert not any(event.get("via") == "watch" for event in worker.syncs("removed"))
    rows, runs = registry_state(pg_url)
    assert [row.name for row in rows] == ["kept"] and rows[0].lease_holder is None
    assert overlaps(runs) == []


def test_two_watching_workers_share_the_projects_without_overlap(
        tmp_path: Path, pg_url: str) -> None:
    folders = [make_notes(tmp_path / f"w{number}", 2) for number in range(4)]
    register(pg_url, folders)
    workers = [WorkerProcess("--db", pg_url, "--watch", "--max-watched", "2",
                             "--interval", LONG_INTERVAL, "--concurrency", "1")
               for _ in range(2)]
    wait_until(lambda: sum(len([event for event in worker.syncs()
                                if event.get("via") == "reconcile"])
                           for worker in workers) >= 4, "all four projects watched")
    for folder in folders:
        write(folder, "edit.md", "# Edit\n")
    wait_until(lambda: all("edit.md" in entity_paths(pg_url, folder) for folder in folders),
               "every edit applied")
    assert [worker.terminate() for worker in workers] == [0, 0]

    rows, runs = registry_state(pg_url)
    assert overlaps(runs) == []
    assert all(row.lease_holder is None for row in rows)
    watched_by = {run.worker for run in runs if run.worker.endswith(WATCH_SUFFIX)}
    assert len(watched_by) == 2  # --max-watched 2: neither worker could watch all four


@pytest.mark.parametrize(("args", "message"), [
    (["--watch", "--once"], "cannot be combined with --once"),
    (["--max-watched", "2"], "--max-watched needs --watch"),
    (["--watch", "--max-watched", "0"], "--max-watched"),
])
def test_option_misuse_is_a_usage_error(args: list[str], message: str,
                                        user_data: dict[str, str]) -> None:
    result = run_bm("worker", *args, env=user_data)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr


def test_each_slot_rolls_the_watch_over_with_a_reconcile_recorded_in_the_registry(
        tmp_path: Path, user_data: dict[str, str]) -> None:
    folder = make_notes(tmp_path / "rolling", 2)
    bm_ok("project", "add", str(folder), env=user_data)
    url = sqlite_url(Path(user_data["XDG_DATA_HOME"]) / "bm-sync" / "projects.db")
    worker = WorkerProcess("--watch", "--interval", "2", env=user_data)
    worker.wait_for(lambda events: sum(event.get("via") == "reconcile"
                                       for event in events) >= 3, "three slots watched")
    write(folder, "late.md", "# Late\n")
    wait_until(lambda: "late.md" in entity_paths(url, folder), "a note saved after a roll-over")
    assert worker.terminate() == 0

    _rows, runs = registry_state(url)
    watch_runs = [run for run in runs if run.worker.endswith(WATCH_SUFFIX)]
    assert len(watch_runs) >= 3 and all(run.result == "ok" for run in watch_runs)
    assert overlaps(runs) == []
    assert entity_paths(url, folder) == {"n0.md", "n1.md", "late.md"}
