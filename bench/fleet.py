"""The fleet load test: N tenant-like projects synced by one `bm worker` into PostgreSQL.

    .venv/bin/python bench/fleet.py [--projects 10] [--interval 30] [--cycles 2]
                                    [--concurrency N] [--pg-url URL] [--work DIR]

1. Makes one tenant-like corpus (`make_corpus.py --preset tenant`: 2,590 notes + 31 binaries,
   80 MB) and N copies of it, registers them in a fresh PostgreSQL database (`bm project add`).
2. Reference, in the same run: one copy synced alone (`bm sync PATH --db`), and `bm status` of
   every copy (the no-change reference), as child processes (CPU and peak RSS from wait4).
3. Starts `bm worker --json` and measures, from its own lines and /proc (the worker and its
   sync processes together): the first cycle (all N first syncs: wall time, CPU, the sum of
   the processes' peak RSS), then `--cycles` no-change cycles (worker CPU
   per cycle, including its idle polling), and the spread of the starts in each no-change
   cycle (the most starts within any 3-second window, from the recorded worker runs).
4. SIGTERM, and the worker's exit code.

The PostgreSQL server: `--pg-url`, else `$BM_TEST_POSTGRES_URL`, else a throwaway one started
by tests/postgres.py (stopped at the end). Results: a markdown table on stdout and a JSON file
in bench/results/.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path[:0] = [str(BENCH), str(REPO), str(REPO / "src")]

from measure import environment, markdown_table, results_path, run_measured  # noqa: E402

BM = [sys.executable, "-m", "bm_sync"]
TICKS = os.sysconf("SC_CLK_TCK")


def family(pid: int) -> list[int]:
    """The worker and its sync processes (its children, which live as long as it does)."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [pid, *(int(child) for child in children)]


def cpu_seconds(pid: int) -> float:
    """User + system CPU of the worker and its sync processes, from /proc."""
    total = 0.0
    for member in family(pid):
        fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / TICKS
    return total


def peak_rss_mb(pid: int) -> float:
    """The sum of the peak RSS of the worker and its sync processes."""
    total = 0.0
    for member in family(pid):
        for line in Path(f"/proc/{member}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                total += int(line.split()[1]) / 1024
    return total


def make_projects(work: Path, count: int) -> list[Path]:
    corpus = work / "corpus"
    if not corpus.exists():
        subprocess.run([sys.executable, str(BENCH / "make_corpus.py"), str(corpus),
                        "--preset", "tenant"], check=True, stdout=subprocess.DEVNULL)
    projects = []
    for number in range(count + 1):  # the last one is the reference, synced alone
        target = work / f"tenant-{number:02d}"
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(corpus, target, symlinks=True)
        projects.append(target)
    return projects


def database(given: str | None) -> tuple[str, Any]:
    """A fresh database on the server, and the server to stop (None if not ours)."""
    from tests import postgres

    url = given or os.environ.get(postgres.URL_VARIABLE)
    server = None
    if url is None:
        server = postgres.start()
        url = server.url
    return postgres.create_database(url), server


class Worker:
    """`bm worker --json` with its lines collected (and timed) by a reader thread."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen([*BM, "worker", "--json", *args],
                                        stdout=subprocess.PIPE, text=True)
        self.started = time.monotonic()
        self.events: list[tuple[float, dict[str, Any]]] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.events.append((time.monotonic(), json.loads(line)))

    def syncs(self) -> list[dict[str, Any]]:  # every sync line so far
        return [event for _when, event in self.events if event["event"] == "sync"]

    def wait_round(self, projects: int, after: float, timeout: float) -> float:
        """Wait until each of the `projects` has a sync line that came after `after` (a
        monotonic time); the time the last of them came."""
        deadline = time.monotonic() + timeout
        while True:
            latest: dict[str, float] = {}
            for when, event in list(self.events):
                if event["event"] == "sync" and when > after:
                    latest.setdefault(event["project"], when)
            if len(latest) >= projects:
                return max(latest.values())
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise SystemExit(f"only {len(latest)} of {projects} projects synced")
            time.sleep(0.05)


def recorded_starts(url: str) -> list[float]:
    from bm_sync.projects import Registry

    async def read() -> list[float]:
        async with Registry.open(url) as registry:
            return sorted(run.started_at for run in await registry.worker_runs())

    return asyncio.run(read())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--projects", type=int, default=10)
    parser.add_argument("--interval", type=float, default=30.0)
    parser.add_argument("--cycles", type=int, default=2, help="no-change cycles to measure")
    parser.add_argument("--concurrency", type=int, default=None)
    parser.add_argument("--pg-url", default=None)
    parser.add_argument("--work", type=Path, default=Path("/tmp/bm-fleet-bench"))
    args = parser.parse_args()
    from bm_sync.schedule import most_in_window

    args.work.mkdir(parents=True, exist_ok=True)
    projects = make_projects(args.work, args.projects)
    reference, tenants = projects[-1], projects[:-1]
    url, server = database(args.pg_url)
    try:
        alone, _out = run_measured([*BM, "sync", str(reference), "--db", url, "--quiet"])
        for tenant in tenants:
            subprocess.run([*BM, "project", "add", str(tenant), "--db", url], check=True,
                           stdout=subprocess.DEVNULL)
        extra = ["--concurrency", str(args.concurrency)] if args.concurrency else []
        worker = Worker("--db", url, "--interval", str(args.interval), *extra)
        first_done = worker.wait_round(args.projects, worker.started, timeout=1800)
        first_wall = first_done - worker.started
        first_cpu = cpu_seconds(worker.process.pid)
        first_rss = peak_rss_mb(worker.process.pid)
        no_change_from = time.time()
        # A no-change cycle: from the end of the last one until every project synced again
        # (its CPU includes the worker's idle polling in between).
        cycles: list[float] = []
        cycle_end, cpu_before = first_done, first_cpu
        for _cycle in range(args.cycles):
            cycle_end = worker.wait_round(args.projects, cycle_end, timeout=args.interval * 3)
            cpu_now = cpu_seconds(worker.process.pid)
            cycles.append(cpu_now - cpu_before)
            cpu_before = cpu_now
        rss = peak_rss_mb(worker.process.pid)
        worker.process.terminate()
        exit_code = worker.process.wait(timeout=120)
        syncs = worker.syncs()
        status = [run_measured([*BM, "status", str(tenant)])[0] for tenant in tenants]
        starts = recorded_starts(url)
        spread = most_in_window([start for start in starts if start > no_change_from], 3.0)
    finally:
        if server is not None:
            from tests import postgres

            postgres.stop(server.folder)
    status_cpu = sum(sample.cpu_s for sample in status)
    cycle_cpu = statistics.median(cycles)
    failed = [event for event in syncs if event["result"] != "ok"]
    rows = [
        [f"first cycle: {args.projects} first syncs (wall)", f"{first_wall:.1f} s",
         f"{args.projects} x one alone: {args.projects * alone.wall_s:.1f} s",
         first_wall / (args.projects * alone.wall_s), "<= 30 s"],
        ["first cycle: worker CPU", f"{first_cpu:.1f} s",
         f"{args.projects} x one alone: {args.projects * alone.cpu_s:.1f} s",
         first_cpu / (args.projects * alone.cpu_s), "-"],
        ["worker peak RSS", f"{rss:.0f} MB", f"one alone: {alone.rss_mb:.0f} MB",
         rss / alone.rss_mb, "<= 500 MB"],
        [f"no-change cycle: worker CPU (median of {len(cycles)})", f"{cycle_cpu:.2f} s",
         f"bm status x {args.projects}: {status_cpu:.2f} s", cycle_cpu / status_cpu,
         "<= 3 s"],
        ["spread: most starts in a 3 s window", spread, "-", None, "<= 2"],
        ["failed syncs / worker exit code on SIGTERM", f"{len(failed)} / {exit_code}", "-",
         None, "0 / 0"],
    ]
    print(markdown_table(["measure", "fleet", "reference (same run)", "ratio", "target"],
                         rows))
    path = results_path("fleet")
    path.write_text(json.dumps({
        "environment": environment(), "args": {key: str(value) for key, value
                                               in vars(args).items()},
        "first_wall_s": first_wall, "first_cpu_s": first_cpu, "first_rss_mb": first_rss,
        "peak_rss_mb": rss, "cycle_cpu_s": cycles, "status_cpu_s": status_cpu,
        "alone": {"wall_s": alone.wall_s, "cpu_s": alone.cpu_s, "rss_mb": alone.rss_mb},
        "spread": spread, "exit_code": exit_code, "failed": failed,
        "durations_s": [event["duration_s"] for event in syncs]}, indent=1))
    print(f"\n(results: {path.relative_to(REPO)})")


if __name__ == "__main__":
    main()
