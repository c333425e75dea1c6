"""The `bm` command: parse options, call the library, print text or JSON. No logic of its own.

Exit codes: 0 the command ran (per-file failures are listed, not fatal); 1 it could not run
(locked folder, unusable database); 2 usage error. Errors are one line on stderr.
"""

from __future__ import annotations

import json
import os
import re
import sys
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from typer._click.exceptions import ClickException, NoArgsIsHelpError

from bm_sync.changes import ChangeKind
from bm_sync.cli_watch import register as register_watch
from bm_sync.detector import STATE_DIR, Detector
from bm_sync.errors import (
    BmSyncError,
    DatabaseUrlInvalid,
    IndexCorrupt,
    NotAFolder,
    PathOutsideRoot,
)
from bm_sync.hashing import MIB, HashPolicy
from bm_sync.roots import find_root, narrow, relative_path, scope_of
from bm_sync.status_text import render_status, render_sync

if TYPE_CHECKING:
    from bm_sync.history import RunRecord, VersionRecord
    from bm_sync.reports import SyncReport
    from bm_sync.sync import SyncEngine

# Library errors that are the user's input (a usage error, exit 2); any other is exit 1.
USAGE_ERRORS = (DatabaseUrlInvalid, PathOutsideRoot)

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},  # -h everywhere, as in git
    help="Keep a knowledge base's entity database in step with its folder of notes.",
)
from bm_sync.cli_search import register as register_search  # noqa: E402

register_search(app)

from bm_sync.cli_projects import register as register_projects  # noqa: E402

register_projects(app)

register_watch(app)

PathArgument = Annotated[
    Path, typer.Argument(help="The notes folder (default: the current directory).")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]
FullHashOption = Annotated[
    float, typer.Option("--full-hash-max-mb", help="Files up to this size get a full git blob id.")
]
PartialHashOption = Annotated[
    float | None,
    typer.Option("--partial-hash-max-mb",
                 help="Files above this size are tracked by stat only (default: never)."),
]


def _print_version(asked: bool) -> None:
    if asked:
        from bm_sync import __version__

        print(f"bm {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    _version: Annotated[bool, typer.Option(
        "--version", is_eager=True, callback=_print_version, help="Print bm's version and exit.")
    ] = False,
) -> None:
    """Keep a knowledge base's entity database in step with its folder of notes."""


def _policy(full_hash_max_mb: float, partial_hash_max_mb: float | None) -> HashPolicy:
    try:
        return HashPolicy(
            full_hash_max_bytes=int(full_hash_max_mb * MIB),
            partial_hash_max_bytes=None if partial_hash_max_mb is None
            else int(partial_hash_max_mb * MIB),
        )
    except (ValueError, OverflowError) as error:  # nan, inf, negative sizes
        raise typer.BadParameter(f"a size in MB must be a finite number >= 0 ({error})") from error


def _notes_root(path: Path) -> Path:
    """The notes folder PATH belongs to (like git: the nearest folder upward that was synced,
    else PATH itself); a usage error when PATH is neither a folder nor a path inside a synced
    folder."""
    root = find_root(os.path.realpath(path))
    if not path.is_dir() and not (root / STATE_DIR).is_dir():
        raise typer.BadParameter(f"not a folder: {path}")
    return root


def _recorded_paths(detector: Detector) -> list[bytes] | None:
    """The paths the index records (what a narrowed report counts `unchanged` among), or None
    when it cannot be read (the command's own run then says why)."""
    try:
        return [recorded for recorded, _record in detector.load_snapshot().records()]
    except (IndexCorrupt, OSError):
        return None


def _detector(path: Path, policy: HashPolicy) -> Detector:
    try:
        return Detector(path, policy=policy)
    except NotAFolder as error:
        raise typer.BadParameter(str(error)) from error


@app.command()
def status(
    path: PathArgument = Path("."),
    json_output: JsonOption = False,
    full_hash_max_mb: FullHashOption = 64.0,
    partial_hash_max_mb: PartialHashOption = None,
) -> None:
    """Show what a sync would apply. Reads only: writes nothing, not even the index."""
    root = _notes_root(path)
    detector = _detector(root, _policy(full_hash_max_mb, partial_hash_max_mb))
    scope = scope_of(root, path)
    recorded = _recorded_paths(detector) if scope is not None else None
    report = detector.status()
    if scope is not None:
        narrow(report, scope, recorded)
    stdout, stderr = render_status(report, json_output, scope)
    sys.stderr.write(stderr)
    sys.stdout.write(stdout)


DatabaseOption = Annotated[
    str | None,
    typer.Option("--db", envvar="BM_DATABASE_URL",
                 help="SQLAlchemy async URL (default: SQLite in <PATH>/.basic-memory/memory.db)."),
]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing but errors.")]
WaitOption = Annotated[
    bool, typer.Option("--wait", help="Wait for a running sync of this folder to end.")
]


@app.command()
def sync(
    path: PathArgument = Path("."),
    database_url: DatabaseOption = None,
    json_output: JsonOption = False,
    quiet: QuietOption = False,
    wait: WaitOption = False,
    no_versions: Annotated[bool, typer.Option(
        "--no-versions", help="Do not store note versions (bm history still lists changes).")
    ] = False,
    no_search: Annotated[bool, typer.Option(
        "--no-search", help="Keep no search index (a later sync without it rebuilds it).")
    ] = False,
    full_hash_max_mb: FullHashOption = 64.0,
    partial_hash_max_mb: PartialHashOption = None,
    all_projects: Annotated[bool, typer.Option(
        "--all", help="Sync every registered project (bm project list) once; exit 1 if any "
                      "could not be synced.")] = False,
) -> None:
    """Apply every change to the entity database, then record the new state."""
    import asyncio

    from bm_sync.sync import SyncEngine
    from bm_sync.versions import VersionPolicy

    if all_projects:
        if path != Path("."):
            raise typer.BadParameter("--all syncs every registered project; give no PATH")
        # The registry's projects sync as the worker syncs them; an option that would be
        # dropped silently is refused instead.
        dropped = [name for name, given in (
            ("--wait", wait), ("--no-versions", no_versions), ("--no-search", no_search),
            ("--full-hash-max-mb", full_hash_max_mb != 64.0),
            ("--partial-hash-max-mb", partial_hash_max_mb is not None)) if given]
        if dropped:
            raise typer.BadParameter(f"--all does not take {', '.join(dropped)}: registered "
                                     "projects sync with the worker's settings")
        from bm_sync.cli_projects import sync_all_command

        sync_all_command(database_url, json_output, quiet)
        return
    policy = _policy(full_hash_max_mb, partial_hash_max_mb)
    root = _notes_root(path)  # a usage error for a missing folder, before anything else
    show_progress = not (quiet or json_output) and sys.stderr.isatty()
    scope = scope_of(root, path)
    recorded = _recorded_paths(_detector(root, policy)) if scope is not None else None

    async def run() -> SyncReport:
        versions = VersionPolicy(enabled=not no_versions)
        async with SyncEngine.open(root, database_url, policy=policy, wait=wait,
                                   versions=versions, search=not no_search) as engine:
            if not show_progress:
                return await engine.sync()
            from bm_sync.progress import SyncProgressBar

            with SyncProgressBar(root) as bar:
                return await engine.sync(progress=bar.update)

    report = asyncio.run(run())
    if scope is not None:
        report.narrow_to(scope, recorded)
    stdout, stderr = render_sync(report, json_output)
    sys.stderr.write(stderr)
    if json_output or not quiet:
        sys.stdout.write(stdout)


RootOption = Annotated[
    Path | None,
    typer.Option("--root", help="The notes folder (default: found upward from the target)."),
]


def _find_root(target: Path, root: Path | None) -> Path:
    """`--root`, else the notes folder the target belongs to (`bm_sync.find_root`)."""
    return root if root is not None else find_root(target)


def _engine(root: Path, database_url: str | None,
            wait: bool = False) -> AbstractAsyncContextManager[SyncEngine]:
    from bm_sync.sync import SyncEngine

    if not root.is_dir():
        raise typer.BadParameter(f"not a folder: {root}")
    return SyncEngine.open(root, database_url, wait=wait)


def _file_in(notes_root: Path, target: Path) -> str:
    """TARGET as an absolute path inside the notes folder (raises `PathOutsideRoot`): absolute,
    because the library reads a relative path against the working directory first."""
    absolute = os.path.abspath(target)
    relative_path(notes_root, absolute)
    return absolute


@app.command()
def history(
    target: Annotated[Path, typer.Argument(
        help="A notes folder (its recent runs) or a file (its timeline).")] = Path("."),
    limit: Annotated[int | None, typer.Option(
        "--limit", min=1, help="How many runs (default 20) or timeline entries (default all).")
    ] = None,
    show: Annotated[str | None, typer.Option(
        "--show", metavar="REV", help="Print that version's content (~N or an id prefix).")
    ] = None,
    diff: Annotated[str | None, typer.Option(
        "--diff", metavar="[REV]",
        help="Diff REV against the version before it; alone, the newest against the disk.")
    ] = None,
    json_output: JsonOption = False,
    root: RootOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Recent sync runs, or the timeline of one file (following moves) and its versions."""
    import asyncio

    if show is not None and diff is not None:
        raise typer.BadParameter("give --show or --diff, not both")
    if json_output and (show is not None or diff is not None):
        raise typer.BadParameter("--json lists a timeline: it does not go with --show or --diff")
    notes_root = _find_root(target, root)
    # A folder (the default `.`, even a subfolder of the notes) means the runs; anything else,
    # existing or deleted, is a file.
    file = None if target.is_dir() else _file_in(notes_root, target)
    if file is None and (show is not None or diff is not None):
        raise typer.BadParameter("--show and --diff need a FILE")

    async def run() -> None:
        async with _engine(notes_root, database_url) as engine:
            if file is None:
                runs = await engine.runs(limit or 20)
                if json_output:
                    print(json.dumps({"runs": [item.to_json() for item in runs]}))
                else:
                    print("\n".join(_run_line(item) for item in runs) or "no sync runs yet")
                return
            if show is not None:
                _version, content = await engine.show_version(file, show)
                sys.stdout.buffer.write(content)
                return
            if diff is not None:
                sys.stdout.write(await engine.diff(file, diff or None))
                return
            versions = await engine.history(file)
            numbered = _numbered(versions)[:limit]  # `~N` counts the whole timeline
            if json_output:
                print(json.dumps({"path": versions[0].path,
                                  "versions": [item.to_json() for item, _number in numbered]}))
            else:
                print("\n".join(_version_line(item) for item in numbered))

    asyncio.run(run())


def _numbered(versions: list[VersionRecord]) -> list[tuple[VersionRecord, int | None]]:
    """Each entry with its `~N` (N versions back); a pure move shares its content's N."""
    from bm_sync.history import revision_numbers

    return list(zip(versions, revision_numbers(versions), strict=True))


def _when(timestamp: float) -> str:
    import datetime

    return datetime.datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M:%S")


def _run_line(run: RunRecord) -> str:
    duration = f"{run.duration_s:.1f} s" if run.duration_s is not None else "-"
    return (f"#{run.id}  {_when(run.started_at)}  {duration:>7}  {run.status:<11}  "
            f"{run.added} added, {run.modified} modified, {run.deleted} deleted, "
            f"{run.moved} moved, {run.failed} failed")


def _version_line(numbered: tuple[VersionRecord, int | None]) -> str:
    item, number = numbered
    revision = f"~{number}" if number is not None else ""
    content = (item.content_id or "")[:10]
    stored = "" if item.stored or item.kind is ChangeKind.DELETED else "  (content not stored)"
    if item.lifetime:
        stored += "  (an earlier file at this path)"
    where = f"{item.old_path} -> {item.path}" if item.kind is ChangeKind.MOVED else item.path
    size = f"{item.size:,} B" if item.size is not None else ""
    return (f"{revision:>4}  {_when(item.run_started_at)}  {item.kind.value:<8}  {content:<10}  "
            f"{size:>10}  {where}{stored}")


@app.command()
def restore(
    file: Annotated[Path, typer.Argument(help="The file to write back.")],
    rev: Annotated[str, typer.Option("--rev", metavar="REV",
                                     help="The version (~N or a content id prefix).")],
    force: Annotated[bool, typer.Option(
        "--force", help="Overwrite changes no sync recorded (a sync first stores them).")
    ] = False,
    wait: WaitOption = False,
    root: RootOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Write a stored version back to FILE: the only command that writes your files."""
    import asyncio

    notes_root = _find_root(file, root)
    path = _file_in(notes_root, file)

    async def run() -> VersionRecord:
        async with _engine(notes_root, database_url, wait) as engine:
            return await engine.restore(path, rev, force=force)

    from bm_sync.history import next_sync_records

    version = asyncio.run(run())
    recorded = next_sync_records(notes_root, relative_path(notes_root, path))
    print(f"restored {file} to {(version.content_id or '')[:10]} ("
          + (f"the next sync records it as {recorded})" if recorded
             else "as the last sync recorded it: nothing to sync)"))


@app.command()
def prune(
    path: PathArgument = Path("."),
    keep: Annotated[int | None, typer.Option("--keep", min=1,
                                             help="Keep the last N versions of each file.")
                    ] = None,
    days: Annotated[float | None, typer.Option("--days", min=0,
                                               help="Keep versions from the last N days.")
                    ] = None,
    wait: WaitOption = False,
    database_url: DatabaseOption = None,
) -> None:
    """Delete stored versions outside the retention and reclaim their disk space."""
    import asyncio

    if keep is None and days is None:
        raise typer.BadParameter("give --keep N, --days N or both")

    async def run() -> tuple[int, int]:
        async with _engine(path, database_url, wait) as engine:
            return await engine.prune(keep, days)

    before, after = asyncio.run(run())
    print(f"object store: {before:,} -> {after:,} bytes")


_REVISION = re.compile(r"~[0-9]*|[0-9a-fA-F]{4,40}")


def _optional_values(arguments: list[str]) -> list[str]:
    """`--diff` takes an optional REV: a bare `--diff` becomes `--diff=` (no REV).

    What follows `--diff` is its REV when it looks like one (`~N`, 4+ hex digits), or when it
    is a folder: the shell turns an unquoted `~0` into the working directory, and taken as the
    REV it gets an error that says to quote it. Anything else (`--diff a/idea.md`) is the FILE.
    """
    result = []
    for position, argument in enumerate(arguments):
        following = arguments[position + 1] if position + 1 < len(arguments) else None
        if argument == "--diff" and (following is None or following.startswith("-") or not (
                _REVISION.fullmatch(following) or os.path.isdir(following))):
            argument = "--diff="
        result.append(argument)
    return result


def main() -> None:
    """Console entry point: map errors to one line and the documented exit codes."""
    try:
        exit_code = app(args=_optional_values(sys.argv[1:]), standalone_mode=False)
    except NoArgsIsHelpError as error:
        print(error.ctx.get_help() if error.ctx else "")
        sys.exit(2)
    except ClickException as error:  # click's errors, vendored by typer
        print(f"bm: error: {error.format_message()}", file=sys.stderr)
        sys.exit(error.exit_code)
    except typer.Abort:
        sys.exit(130)
    except BmSyncError as error:
        print(f"bm: error: {error}", file=sys.stderr)
        sys.exit(2 if isinstance(error, USAGE_ERRORS) else 1)
    sys.exit(exit_code if isinstance(exit_code, int) else 0)

