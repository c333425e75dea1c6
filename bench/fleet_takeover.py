"""Takeover time: two `bm worker`s share N small projects; one is killed with SIGKILL (while
it holds a lease, when it can be caught holding one); how long until each of its projects is
synced by the other? Target (issue 11): within two intervals. Median of `--kills` kills.

    .venv/bin/python bench/fleet_takeover.py [--projects 10] [--notes 20] [--interval 10]
                                             [--kills 3] [--via direct,pgbouncer]
                                             [--pg-url URL] [--work DIR]

For each way to the database (`--via`: PostgreSQL directly, and through a PgBouncer in
transaction mode started by tests/pgbouncer.py, side by side in the same run):
1. A fresh database, N folders of `--notes` small linked notes registered, two workers
   (`--interval`, their default concurrency) until every project was synced once.
2. Each kill: the older of the two workers is killed with SIGKILL at time T (as soon as it
   holds a lease, waiting at most one interval for that); its projects are those whose last
   run started before T was its own. The takeover time of a project is the end of its first
   successful run by another worker after T, minus T. A new worker then replaces the dead one
   (and has synced a project) before the next kill.
3. At the end: overlapping runs of one project (from the recorded runs, a killed run lasting
   until its lease's last expiry: must be none) and every project's rows = its files.

The takeover is wall time by nature (leases expire on the clock): the table gives it in
seconds and in intervals, next to the interval itself (the reference). The PostgreSQL server:
`--pg-url`, else `$BM_TEST_POSTGRES_URL`, else a throwaway one (tests/postgres.py, stopped at
the end). Results: a markdown table on stdout, a JSON file in bench/results/.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path[:0] = [str(BENCH), str(REPO), str(REPO / "src")]

from measure import environment, markdown_table, results_path  # noqa: E402

from bm_sync.db.registry import WorkerRunRow  # noqa: E402
from bm_sync.projects import Registry  # noqa: E402
from tests.helpers_fleet import overlaps, register, registry_state  # noqa: E402

BM = [sys.executable, "-m", "bm_sync"]
POLL_S = 0.05


def entity_counts(url: str) -> dict[str, int]:
    async def read() -> dict[str, int]:
        async with Registry.open(url) as registry:
            return await registry.entity_counts()

    return asyncio.run(read())




def make_projects(work: Path, count: int, notes: int) -> list[Path]:
    folders = []
    for number in range(count):
        folder = work / f"project-{number:02d}"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        for note in range(notes):
            (folder / f"n{note}.md").write_text(
                f"# Note {note}\n\n- links_to [[Note {note + 1}]]\n- [fact] number {note}\n")
        folders.append(folder)
    return folders




class Worker:
    """A `bm worker --json` process; its holder id is recognised by the pid in it."""

    def __init__(self, url: str, interval: float) -> None:
        self.process = subprocess.Popen(
            [*BM, "worker", "--json", "--db", url, "--interval", str(interval)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def owns(self, holder: str | None) -> bool:
        return holder is not None and holder.split(":")[1:2] == [str(self.process.pid)]

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def terminate(self) -> int:
        self.process.terminate()
        return self.process.wait(timeout=300)


def wait_for(predicate: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = predicate()
        if found:
            return found
        if time.monotonic() > deadline:
            raise SystemExit(f"no {what} within {timeout:.0f} s")
        time.sleep(POLL_S)


def one_kill(url: str, workers: list[Worker], interval: float) -> dict[str, Any]:
    """Kill the older worker (holding a lease if it can be caught so within an interval);
    the takeover time of each of its projects."""
    victim = workers[0]
    deadline = time.monotonic() + interval
    mid_sync = False
    while time.monotonic() < deadline:
        rows, _runs = registry_state(url)
        if any(victim.owns(row.lease_holder) for row in rows):
            mid_sync = True
            break
        time.sleep(POLL_S)
    killed_at = time.time()
    victim.kill()
    _rows, runs = registry_state(url)
    latest: dict[str, WorkerRunRow] = {}
    for run in runs:
        if run.started_at < killed_at:
            latest[run.project_name] = run
    its_projects = {name for name, run in latest.items() if victim.owns(run.worker)}

    def taken_over() -> dict[str, float] | None:
        found: dict[str, float] = {}
        for run in registry_state(url)[1]:
            if (run.project_name in its_projects and run.started_at > killed_at
                    and not victim.owns(run.worker) and run.ended_at is not None
                    and run.result == "ok"):
                found.setdefault(run.project_name, run.ended_at - killed_at)
        return found if len(found) == len(its_projects) else None

    takeover = wait_for(taken_over, interval * 6, "takeover of the killed worker's projects")
    workers.pop(0)
    replacement = Worker(url, interval)
    workers.append(replacement)
    wait_for(lambda: any(replacement.owns(run.worker) and run.ended_at is not None
                         for run in registry_state(url)[1]), interval * 6,
             "a sync by the replacement worker")
    return {"mid_sync": mid_sync, "projects": len(its_projects),
            "takeover_s": takeover, "worst_s": max(takeover.values(), default=0.0)}


def run_via(url: str, folders: list[Path], args: argparse.Namespace) -> dict[str, Any]:
    register(url, folders)
    workers = [Worker(url, args.interval) for _ in range(2)]
    try:
        wait_for(lambda: len({run.project_name for run in registry_state(url)[1]
                              if run.ended_at is not None}) == len(folders),
                 args.interval * 10, "a first sync of every project")
        kills = [one_kill(url, workers, args.interval) for _ in range(args.kills)]
    finally:
        codes = [worker.terminate() for worker in workers]
    _rows, runs = registry_state(url)
    counts = entity_counts(url)
    converged = all(counts.get(str(folder.resolve()), 0) == args.notes for folder in folders)
    return {"kills": kills, "overlaps": len(overlaps(runs)), "converged": converged,
            "exit_codes": codes, "runs": len(runs)}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--projects", type=int, default=10)
    parser.add_argument("--notes", type=int, default=20, help="notes per project")
    parser.add_argument("--interval", type=float, default=10.0)
    parser.add_argument("--kills", type=int, default=3)
    parser.add_argument("--via", default="direct,pgbouncer",
                        help="comma-separated: direct, pgbouncer")
    parser.add_argument("--pg-url", default=None)
    parser.add_argument("--work", type=Path, default=Path("/tmp/bm-fleet-takeover"))
    args = parser.parse_args()
    from tests import pgbouncer, postgres

    given = args.pg_url or os.environ.get(postgres.URL_VARIABLE)
    server = None if given else postgres.start()
    server_url = given or (server.url if server is not None else "")
    results: dict[str, Any] = {}
    try:
        for via in args.via.split(","):
            database = postgres.create_database(server_url)
            url = database
            if via == "pgbouncer":
                url = pgbouncer.start(postgres.socket_dir(server_url)).url(database)
            elif via != "direct":
                raise SystemExit(f"--via: unknown {via!r} (direct, pgbouncer)")
            folders = make_projects(args.work / via, args.projects, args.notes)
            try:
                results[via] = run_via(url, folders, args)
            finally:
                pgbouncer.shutdown()
                postgres.drop_database(database)
    finally:
        if server is not None:
            postgres.stop(server.folder)
    rows = []
    for via, result in results.items():
        worst = [kill["worst_s"] for kill in result["kills"]]
        every = [seconds for kill in result["kills"]
                 for seconds in kill["takeover_s"].values()]
        median = statistics.median(worst)
        rows.append([
            via, f"{median:.1f} s ({median / args.interval:.2f})",
            f"{max(worst):.1f} s ({max(worst) / args.interval:.2f})",
            f"{statistics.median(every):.1f} s", f"{args.interval:.0f} s",
            f"{sum(kill['mid_sync'] for kill in result['kills'])}/{len(worst)}",
            f"{sum(kill['projects'] for kill in result['kills'])}",
            result["overlaps"], "yes" if result["converged"] else "NO",
            "<= 2 intervals, 0 overlaps"])
    print(markdown_table(
        ["via", "takeover, last project (median of kills; in intervals)", "worst kill",
         "median per project", "interval (reference)", "kills mid-sync",
         "projects taken over", "overlapping runs", "rows = files", "target"], rows))
    path = results_path("fleet_takeover")
    path.write_text(json.dumps({"environment": environment(),
                                "args": {key: str(value) for key, value in vars(args).items()},
                                "results": results}, indent=1))
    print(f"\n(results: {path.relative_to(REPO)})")


if __name__ == "__main__":
    main()
