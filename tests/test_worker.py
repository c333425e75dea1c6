"""`bm worker`: real worker subprocesses on a real PostgreSQL database (and SQLite), real
SIGTERM and SIGKILL, short intervals. Who synced what, and when, is read from the runs the
workers record (`worker_run`)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import time
from pathlib import Path

from bm_sync.projects import Registry
from tests.helpers import run_bm, write
from tests.helpers_fleet import (
    WorkerProcess,
    bm_ok,
    ended_runs,
    entity_paths,
    files_on_disk,
    make_notes,
    overlaps,
    pg_url,
    register,
    registry_state,
    user_data,
    wait_until,
)

__all__ = ["pg_url", "user_data"]  # fixtures

SYNC_FIELDS = {"event", "project", "path", "result", "error", "duration_s", "files_scanned",
               "changes", "failures", "peak_rss_mb"}


def running(pid: str) -> bool:
    """Whether the process runs (a zombie nobody reaped does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def test_two_workers_share_projects_without_overlap(tmp_path: Path, pg_url: str) -> None:
    folders = [make_notes(tmp_path / f"p{number}", 3) for number in range(6)]
    register(pg_url, folders)
    workers = [WorkerProcess("--db", pg_url, "--interval", "1", "--concurrency", "2")
               for _ in range(2)]
    wait_until(lambda: len(ended_runs(pg_url)) == 6, "a sync of each project")

    # Added while they run: picked up; removed: no longer synced; a change: applied.
    newcomer = make_notes(tmp_path / "p6", 2)
    bm_ok("project", "add", str(newcomer), "--db", pg_url)
    write(folders[1], "fresh.md", "# Fresh\n")
    bm_ok("project", "remove", "p0", "--yes", "--db", pg_url)
    removed_at = sum(len(worker.syncs("p0")) for worker in workers)
    wait_until(lambda: ended_runs(pg_url).get("p6", 0) >= 1, "a sync of the newcomer")
    wait_until(lambda: "fresh.md" in entity_paths(pg_url, folders[1]), "the change applied")
    wait_until(lambda: min(ended_runs(pg_url).values()) >= 2, "another cycle")
    assert [worker.terminate() for worker in workers] == [0, 0]

    assert sum(len(worker.syncs("p0")) for worker in workers) <= removed_at + 1  # in flight
    assert entity_paths(pg_url, folders[0]) == set()
    assert entity_paths(pg_url, newcomer) == {"n0.md", "n1.md"}
    rows, runs = registry_state(pg_url)
    errors = [event for worker in workers for event in worker.events if event["event"] == "error"]
    assert errors == []
    assert len(rows) == 6 and all(row.lease_holder is None for row in rows), rows
    assert overlaps(runs) == []
    assert len({run.worker for run in runs}) == 2  # the work is spread over both
    for worker in workers:
        syncs = worker.syncs()
        assert syncs and all(set(event) == SYNC_FIELDS and event["result"] == "ok"
                             for event in syncs)
        assert set(syncs[0]["changes"]) == {"added", "modified", "deleted", "moved"}
        assert any(event["event"] == "heartbeat" for event in worker.events)


def wait_for_sync_in_a_child(worker: WorkerProcess, lock: Path) -> None:
    """Until the folder's lock names one of the worker's sync processes (a sync in flight)."""
    pid = worker.process.pid

    def syncing_in_a_child() -> bool:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        return lock.exists() and lock.read_text() in children

    wait_until(syncing_in_a_child, "the big project's sync in a child process")


def test_a_worker_killed_mid_sync_is_taken_over_and_projects_converge(
        tmp_path: Path, pg_url: str) -> None:
    big = make_notes(tmp_path / "k0", 300)  # its first sync lasts long enough to be killed in
    folders = [big, *(make_notes(tmp_path / f"k{number}", 3) for number in range(1, 4))]
    register(pg_url, folders)
    first = WorkerProcess("--db", pg_url, "--interval", "1", "--concurrency", "2")
    lock = big / ".basic-memory" / "lock"
    wait_for_sync_in_a_child(first, lock)
    child = lock.read_text()
    first.kill()
    # The child dies with the worker: no sync goes on behind the dead worker's lease.
    wait_until(lambda: not running(child), "the killed worker's sync process gone")
    for folder in folders:  # changed while no worker runs
        write(folder, "later.md", "# Later\n")
        (folder / "n0.md").unlink()
    second = WorkerProcess("--db", pg_url, "--interval", "1")
    wait_until(lambda: all(entity_paths(pg_url, folder) == files_on_disk(folder)
                           for folder in folders), "every project converged")
    assert second.terminate() == 0

    _rows, runs = registry_state(pg_url)
    killed = [run for run in runs if run.project_name == "k0" and run.ended_at is None]
    assert len(killed) == 1  # the run the kill interrupted: it ends with its lease
    assert overlaps(runs) == []  # the second worker took k0 only once that lease expired
    # Every project synced by the second worker; k0 only once the dead worker's lease expired
    # (k1-k3 held no lease of the dead worker, so the second may sync them at once).
    survivor = [run for run in runs if run.worker != killed[0].worker and run.ended_at is not None]
    assert {run.project_name for run in survivor} == {"k0", "k1", "k2", "k3"}
    assert all(run.started_at >= killed[0].lease_until
               for run in survivor if run.project_name == "k0")
    assert entity_paths(pg_url, folders[1]) == {"n1.md", "n2.md", "later.md"}


def test_an_expired_lease_is_taken_only_after_it_expires(tmp_path: Path, pg_url: str) -> None:
    folder = make_notes(tmp_path / "leased", 2)
    register(pg_url, [folder])

    async def claim_as_a_dead_worker() -> float:
        async with Registry.open(pg_url) as registry:
            (row,) = await registry.projects()
            now = time.time()
            assert await registry.claim(row, "dead-host:1:abc", now, None, 3.0) is not None
            return now + 3.0

    expires = asyncio.run(claim_as_a_dead_worker())
    worker = WorkerProcess("--db", pg_url, "--interval", "1")
    worker.wait_for(lambda events: any(event["event"] == "sync" for event in events),
                    "a sync of the leased project")
    assert worker.terminate() == 0
    _rows, runs = registry_state(pg_url)
    dead, taken = runs[:2]
    assert dead.worker == "dead-host:1:abc" and dead.ended_at is None
    assert taken.started_at >= expires
    assert overlaps(runs) == []


def test_backoff_survives_a_restart_and_a_missing_folder_keeps_its_rows(
        tmp_path: Path, pg_url: str) -> None:
    folder = make_notes(tmp_path / "away", 3)
    register(pg_url, [folder])
    # Backoff after a first failure: 20 s, jittered down by at most a quarter: far longer
    # than it takes the next worker process to start.
    worker = ["worker", "--db", pg_url, "--interval", "20", "--once", "--json"]
    bm_ok(*worker)
    assert entity_paths(pg_url, folder) == {"n0.md", "n1.md", "n2.md"}
    shutil.move(folder, tmp_path / "moved-away")

    first = run_bm(*worker)
    assert first.returncode == 0, first.stderr
    (event,) = [json.loads(line) for line in first.stdout.splitlines() if '"sync"' in line]
    assert (event["result"], event["consecutive_failures"]) == ("missing", 1)
    assert 15.0 <= event["retry_in_s"] <= 20.0
    (row,), _runs = registry_state(pg_url)
    assert row.consecutive_failures == 1 and row.not_before is not None
    # A new worker process honours the backoff the last one recorded: nothing to do.
    again = run_bm(*worker)
    assert again.returncode == 0 and '"sync"' not in again.stdout
    (still,), runs = registry_state(pg_url)
    assert (still.consecutive_failures, still.not_before) == (1, row.not_before)
    assert len(runs) == 2
    # `bm sync --all` ignores the backoff (asked for), fails again, and keeps the wait.
    assert run_bm("sync", "--all", "--db", pg_url).returncode == 1
    (later,), _runs = registry_state(pg_url)
    assert (later.consecutive_failures, later.not_before) == (2, row.not_before)
    assert entity_paths(pg_url, folder) == {"n0.md", "n1.md", "n2.md"}  # never emptied
    listing = bm_ok("project", "list", "--db", pg_url)
    assert "2 failures in a row" in listing and "missing" in listing


def test_a_second_worker_on_sqlite_is_refused(tmp_path: Path,
                                              user_data: dict[str, str]) -> None:
    folder = make_notes(tmp_path / "solo", 2)
    bm_ok("project", "add", str(folder), env=user_data)
    first = WorkerProcess("--interval", "1", env=user_data)
    first.wait_for(lambda events: any(event["event"] == "sync" for event in events),
                   "the first worker's sync")
    second = run_bm("worker", "--once", env=user_data)
    assert second.returncode == 1
    assert second.stderr.count("\n") == 1 and "another bm worker" in second.stderr
    assert f"pid {first.process.pid}" in second.stderr
    assert first.terminate() == 0
    assert os.path.exists(Path(user_data["XDG_DATA_HOME"]) / "bm-sync" / "projects.db")


def test_sigterm_lets_the_sync_in_flight_finish(tmp_path: Path, pg_url: str) -> None:
    big = make_notes(tmp_path / "t0", 150)  # its first sync lasts long enough to stop in
    register(pg_url, [big])
    worker = WorkerProcess("--db", pg_url, "--interval", "1", "--concurrency", "2")
    lock = big / ".basic-memory" / "lock"
    wait_for_sync_in_a_child(worker, lock)
    assert worker.terminate() == 0
    (event,) = worker.syncs("t0")  # the sync in flight, ended and logged; no new one
    assert event["result"] == "ok" and event["changes"]["added"] == 150
    (row,), runs = registry_state(pg_url)
    assert [(run.result, run.ended_at is not None) for run in runs] == [("ok", True)]
    assert row.lease_holder is None and row.last_result == "ok"
    assert entity_paths(pg_url, big) == files_on_disk(big)
