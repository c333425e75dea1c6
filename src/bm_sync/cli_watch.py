"""`bm watch`: the foreground watcher (prints, signals, exit codes; the work is in
`bm_sync.watching`)."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from bm_sync.reports import SyncReport

# After SIGINT/SIGTERM, how long the batch in flight may take before the watcher leaves anyway.
STOP_BUDGET_S = 30.0


def register(app: typer.Typer) -> None:
    app.command()(watch)


def watch(
    path: Annotated[Path, typer.Argument(
        help="The notes folder (default: the current directory).")] = Path("."),
    json_output: Annotated[bool, typer.Option(
        "--json", help="Print one JSON object per line.")] = False,
    debounce_ms: Annotated[int, typer.Option(
        "--debounce-ms", min=0, help="Apply a batch at most this long after its first event.")
    ] = 500,
    rescan_minutes: Annotated[float, typer.Option(
        "--rescan-minutes", min=0,
        help="Also rescan the whole folder about this often (0: never; fractions allowed: "
             "0.5 is 30 s).")] = 60.0,
    database_url: Annotated[str | None, typer.Option(
        "--db", envvar="BM_DATABASE_URL",
        help="SQLAlchemy async URL (default: SQLite in <PATH>/.basic-memory/memory.db).")
    ] = None,
    no_versions: Annotated[bool, typer.Option(
        "--no-versions", help="Do not store note versions (bm history still lists changes).")
    ] = False,
    poll_seconds: Annotated[float | None, typer.Option(
        "--poll-seconds", min=0.1, hidden=True,
        help="When polling, the interval (testing and support).")] = None,
    heartbeat_seconds: Annotated[float | None, typer.Option(
        "--heartbeat-seconds", min=0.1, hidden=True,
        help="How often the event source is checked alive (testing and support).")] = None,
) -> None:
    """Sync now, then keep syncing as files change, until interrupted (Ctrl-C)."""
    import asyncio

    from bm_sync.roots import find_root
    from bm_sync.sync import SyncEngine
    from bm_sync.versions import VersionPolicy
    from bm_sync.watching import Watcher

    if not path.is_dir():
        raise typer.BadParameter(f"not a folder: {path}")
    from bm_sync.events import backend_problem

    problem = backend_problem()
    if problem is not None:
        raise typer.BadParameter(problem)
    root = find_root(os.path.realpath(path))
    shown = str(path) if str(path) != "." else str(root)

    def say(line: str) -> None:
        print(line, flush=True)

    def warn(line: str) -> None:
        print(f"bm: warning: {line}", file=sys.stderr, flush=True)

    def ready(files: int) -> None:
        from bm_sync.status_text import files as counted

        say(json.dumps({"event": "ready", "files": files}) if json_output
            else f"watching {counted(files)} in {shown}")

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()

        def interrupted() -> None:
            if stop.is_set():  # a second signal: leave now (the next start re-detects)
                os._exit(130)
            stop.set()
            # A batch that never ends (a hung file system, a stalled server) must not hold a
            # stop forever: leaving is as safe as a kill (the index follows the last commit).
            loop.call_later(STOP_BUDGET_S, os._exit, 143)

        for number in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(number, interrupted)
        versions = VersionPolicy(enabled=not no_versions)
        async with SyncEngine.open(root, database_url, versions=versions) as engine:
            watcher = Watcher(engine, debounce_ms=debounce_ms, rescan_minutes=rescan_minutes,
                              poll_seconds=poll_seconds, heartbeat_s=heartbeat_seconds,
                              on_ready=ready, on_warning=warn, stop=stop)
            async for report in watcher.run():
                _print_report(report, json_output)

    asyncio.run(run())


def _print_report(report: SyncReport, json_output: bool) -> None:
    """What `bm sync [--json]` prints for the same report, flushed (stdout is often a pipe)."""
    from bm_sync.status_text import render_sync

    stdout, stderr = render_sync(report, json_output)
    sys.stderr.write(stderr)
    sys.stderr.flush()
    sys.stdout.write(stdout)
    sys.stdout.flush()
