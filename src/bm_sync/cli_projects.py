"""`bm project add/list/remove`, `bm worker` and the body of `bm sync --all`: option parsing and
output only; the logic is in `bm_sync.projects`, `bm_sync.project_sync` and
`bm_sync.worker`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from bm_sync.db.registry import RegisteredRow

DatabaseOption = Annotated[
    str | None,
    typer.Option("--db", envvar="BM_DATABASE_URL",
                 help="The registry's database, which also receives every project's rows "
                      "(default: $XDG_DATA_HOME/bm-sync/projects.db)."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]
IntervalOption = Annotated[
    float, typer.Option("--interval", min=0.5, help="Sync each project every S seconds.")
]
ConcurrencyOption = Annotated[
    int | None,
    typer.Option("--concurrency", min=1,
                 help="At most N syncs at once (default: from the memory budget, 1 on SQLite)."),
]

project_app = typer.Typer(no_args_is_help=True, help="Register the folders a worker keeps in sync.")


@project_app.command("add")
def add(
    path: Annotated[Path, typer.Argument(help="The notes folder.")],
    name: Annotated[str | None, typer.Option("--name", help="Default: the folder's name.")
                    ] = None,
    database_url: DatabaseOption = None,
) -> None:
    """Register a notes folder (its rows go to the registry's database)."""
    import asyncio

    from bm_sync.projects import Registry, registry_url

    if not path.is_dir():
        raise typer.BadParameter(f"not a folder: {path}")
    if name is not None and not name.strip():
        raise typer.BadParameter("a project name cannot be empty")

    async def run() -> RegisteredRow:
        async with Registry.open(registry_url(database_url)) as registry:
            return await registry.add(path, name)

    row = asyncio.run(run())
    print(f"registered {row.name} at {row.root_path}")


@project_app.command("list")
def list_projects(
    json_output: JsonOption = False,
    interval: IntervalOption = 30.0,
    database_url: DatabaseOption = None,
) -> None:
    """Every registered project: files, last sync, failures in a row, next run."""
    import asyncio

    from bm_sync.projects import Registry, registry_url

    async def run() -> tuple[list[RegisteredRow], dict[str, int]]:
        async with Registry.open(registry_url(database_url)) as registry:
            return await registry.projects(), await registry.entity_counts()

    rows, counts = asyncio.run(run())
    listed = [_project_json(row, counts, rows, interval) for row in rows]
    if json_output:
        print(json.dumps({"projects": listed}))
        return
    if not listed:
        print("no projects registered (bm project add PATH)")
        return
    print("\n".join(_project_line(item) for item in listed))


@project_app.command("remove")
def remove(
    name: Annotated[str, typer.Argument(help="The project's name (bm project list).")],
    yes: Annotated[bool, typer.Option("--yes", help="Confirm: delete its rows and versions.")
                   ] = False,
    database_url: DatabaseOption = None,
) -> None:
    """Unregister a project and delete its rows and stored versions. Never touches its notes."""
    import asyncio

    from bm_sync.projects import Registry, registry_url

    if not yes:
        raise typer.BadParameter(
            f"removing {name!r} deletes its rows and stored versions (never its notes); "
            "confirm with --yes")

    async def run() -> RegisteredRow:
        async with Registry.open(registry_url(database_url)) as registry:
            row, _deleted = await registry.remove(name)
            return row

    row = asyncio.run(run())
    print(f"removed {row.name}: its rows and stored versions are deleted; "
          f"the notes in {row.root_path} are untouched")


def worker(
    database_url: DatabaseOption = None,
    interval: IntervalOption = 30.0,
    concurrency: ConcurrencyOption = None,
    json_output: JsonOption = False,
    once: Annotated[bool, typer.Option("--once", help="Sync each project once, then exit.")
                    ] = False,
    watch: Annotated[bool, typer.Option(
        "--watch", help="Also apply file events of local folders within about a second; the "
                        "interval scan stays as the reconcile.")] = False,
    max_watched: Annotated[int | None, typer.Option(
        "--max-watched", min=1,
        help="With --watch: watch at most N projects at once (default 16; the rest sync "
             "every interval).")] = None,
) -> None:
    """Keep every registered project in sync: one line per sync, a heartbeat per interval.
    SIGTERM finishes the syncs in flight, stops the watchers and exits 0."""
    import asyncio

    from bm_sync.projects import registry_url
    from bm_sync.worker import Worker

    if watch and once:
        raise typer.BadParameter("--watch keeps watching; it cannot be combined with --once")
    if max_watched is not None and not watch:
        raise typer.BadParameter("--max-watched needs --watch")

    def emit(event: dict[str, object]) -> None:
        print(json.dumps(event) if json_output else _event_line(event), flush=True)

    runner = Worker(registry_url(database_url), emit, interval=interval,
                    concurrency=concurrency, once=once, watch=watch, max_watched=max_watched)
    asyncio.run(runner.run())


def sync_all_command(database_url: str | None, json_output: bool, quiet: bool,
                     concurrency: int | None = None) -> None:
    """`bm sync --all`: every registered project once, one line each; exit 1 if any failed."""
    import asyncio

    from bm_sync.project_sync import SyncOutcome
    from bm_sync.projects import registry_url
    from bm_sync.worker import default_concurrency, sync_all

    url = registry_url(database_url)

    async def run() -> list[SyncOutcome]:
        outcomes = []
        async for outcome in sync_all(url, concurrency or default_concurrency(url)):
            outcomes.append(outcome)
            if not (json_output or quiet) or not outcome.ok:
                print(outcome.line(), file=sys.stdout if outcome.ok else sys.stderr,
                      flush=True)
        return outcomes

    outcomes = asyncio.run(run())
    if not outcomes and not json_output:
        print("no projects registered (bm project add PATH)", file=sys.stderr)
    failed = [outcome for outcome in outcomes if not outcome.ok]
    if json_output:
        print(json.dumps({"projects": [outcome.to_json() for outcome in outcomes],
                          "failed": len(failed)}))
    if failed:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.add_typer(project_app, name="project")
    app.command("worker")(worker)


def _project_json(row: RegisteredRow, counts: dict[str, int], rows: list[RegisteredRow],
                  interval: float) -> dict[str, object]:
    from bm_sync.schedule import next_start, offsets

    spacing = offsets([item.name for item in rows], interval)
    slot = interval / len(rows)
    next_run = (next_start(row.name, spacing[row.name], slot, interval, row.last_started_at)
                if row.last_started_at is not None else None)  # None: at once
    if row.not_before is not None:
        next_run = max(next_run or 0.0, row.not_before)
    last = None if row.last_started_at is None else {
        "started_at": row.last_started_at, "duration_s": row.last_duration_s,
        "result": row.last_result, "error": row.last_error}
    return {"name": row.name, "path": row.root_path,
            "files": counts.get(row.root_path, 0), "last_sync": last,
            "consecutive_failures": row.consecutive_failures, "next_run_at": next_run,
            "syncing": row.lease_holder}


def _when(timestamp: float) -> str:
    import datetime

    return datetime.datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M:%S")


def _project_line(item: dict[str, object]) -> str:
    last = item["last_sync"]
    if item["syncing"] and isinstance(last, dict):
        synced = f"syncing since {_when(last['started_at'])}"
    elif isinstance(last, dict):
        result = last["result"] if last["result"] is not None else "running"
        took = f"{last['duration_s']:.1f} s" if last["duration_s"] is not None else "-"
        synced = f"last sync {_when(last['started_at'])} ({took}, {result})"
    else:
        synced = "never synced"
    next_run = item["next_run_at"]
    upcoming = f"next {_when(next_run)}" if isinstance(next_run, float) else "next: at once"
    return (f"{item['name']}  {item['path']}  {item['files']} files  {synced}  "
            f"{item['consecutive_failures']} failures in a row  {upcoming}")


def _event_line(event: dict[str, object]) -> str:
    """A worker event as one text line (the JSON object's fields, readable)."""
    if event["event"] == "sync":
        from bm_sync.project_sync import sync_line

        line = sync_line(event)
        if "retry_in_s" in event:
            line += (f"; {event['consecutive_failures']} failures in a row, retry in "
                     f"{event['retry_in_s']} s")
        if "via" in event:
            line += f" (via {event['via']})"
        return f"sync {line}"
    if event["event"] == "warning":
        return f"warning {event['project']}: {event['warning']}"
    if event["event"] == "heartbeat":
        return (f"heartbeat {event['worker']}: {event['in_flight']} syncing, "
                f"{event['watching']} watched, "
                f"{event['synced']} synced, {event['failed']} failed, "
                f"peak RSS {event['peak_rss_mb']} MB")
    return f"error {event.get('project', '')}: {event['error']}".replace("error : ", "error: ")
