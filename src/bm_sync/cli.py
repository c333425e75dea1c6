"""The `bm` command: parse options, call the library, print text or JSON. No logic of its own.

Exit codes: 0 the command ran (per-file failures are listed, not fatal); 1 it could not run
(locked folder, unusable database); 2 usage error. Errors are one line on stderr.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from bm_sync.detector import Detector, StatusReport
from bm_sync.errors import BmSyncError, NotAFolder
from bm_sync.hashing import MIB, HashPolicy

if TYPE_CHECKING:
    from bm_sync.sync import SyncReport

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    help="Keep a knowledge base's entity database in step with its folder of notes.",
)

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


@app.callback()
def _root() -> None:
    """Keep a knowledge base's entity database in step with its folder of notes."""


def _policy(full_hash_max_mb: float, partial_hash_max_mb: float | None) -> HashPolicy:
    try:
        return HashPolicy(
            full_hash_max_bytes=int(full_hash_max_mb * MIB),
            partial_hash_max_bytes=None if partial_hash_max_mb is None
            else int(partial_hash_max_mb * MIB),
        )
    except ValueError as error:
        raise typer.BadParameter(str(error)) from error


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
    report = _detector(path, _policy(full_hash_max_mb, partial_hash_max_mb)).status()
    for warning in report.warnings:
        print(f"bm: warning: {warning}", file=sys.stderr)
    if json_output:
        print(json.dumps(report.to_json()))
    else:
        print_status(report)


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
    full_hash_max_mb: FullHashOption = 64.0,
    partial_hash_max_mb: PartialHashOption = None,
) -> None:
    """Apply every change to the entity database, then record the new state."""
    import asyncio

    from bm_sync.sync import SyncEngine

    policy = _policy(full_hash_max_mb, partial_hash_max_mb)
    _detector(path, policy)  # a usage error for a missing folder, before anything else
    show_progress = not (quiet or json_output) and sys.stderr.isatty()

    async def run() -> object:
        async with SyncEngine.open(path, database_url, policy=policy, wait=wait) as engine:
            if not show_progress:
                return await engine.sync()
            from bm_sync.progress import SyncProgressBar

            with SyncProgressBar() as bar:
                return await engine.sync(progress=bar.update)

    report = asyncio.run(run())
    for warning in report.warnings:  # type: ignore[attr-defined]
        print(f"bm: warning: {warning}", file=sys.stderr)
    if json_output:
        print(json.dumps(report.to_json()))  # type: ignore[attr-defined]
        return
    for failure in report.failed:  # type: ignore[attr-defined]
        print(f"bm: failed: {failure.path}: {failure.error}", file=sys.stderr)
    if not quiet:
        print(sync_summary_line(report))  # type: ignore[arg-type]


def sync_summary_line(report: SyncReport) -> str:
    """`12 added, 3 modified, 1 deleted, 2 moved, 0 failed in 0.8 s`, or `up to date`."""
    if not report.change_count and not report.failed_total:
        return f"up to date ({report.unchanged} files unchanged, {report.duration_s:.1f} s)"
    return (f"{len(report.added)} added, {len(report.modified)} modified, "
            f"{len(report.deleted)} deleted, {len(report.moved)} moved, "
            f"{report.failed_total} failed in {report.duration_s:.1f} s")


def print_status(report: StatusReport) -> None:
    """`git status --short`-like lines, grouped added / modified / deleted / moved."""
    lines = [f"A  {path}" for path in report.added]
    lines += [f"M  {path}" for path in report.modified]
    lines += [f"D  {path}" for path in report.deleted]
    lines += [f"R  {old} -> {new}" for old, new in report.moved]
    lines += [f"!  {failure.path}: {failure.error}" for failure in report.failed]
    if lines:
        print("\n".join(lines))
    print(summary_line(report))


def summary_line(report: StatusReport) -> str:
    if not report.change_count and not report.failed:
        return f"up to date ({report.unchanged} files unchanged)"
    return (f"{len(report.added)} added, {len(report.modified)} modified, "
            f"{len(report.deleted)} deleted, {len(report.moved)} moved, "
            f"{len(report.failed)} failed, {report.unchanged} unchanged")


def main() -> None:
    """Console entry point: map errors to one line and the documented exit codes."""
    try:
        exit_code = app(standalone_mode=False)
    except typer.TyperException as error:  # click's errors, vendored by typer
        if type(error).__name__ == "NoArgsIsHelpError":
            print(error.ctx.get_help())  # type: ignore[attr-defined]
            sys.exit(2)
        print(f"bm: error: {error.format_message()}", file=sys.stderr)  # type: ignore[attr-defined]
        sys.exit(getattr(error, "exit_code", 2))
    except typer.Abort:
        sys.exit(130)
    except BmSyncError as error:
        print(f"bm: error: {error}", file=sys.stderr)
        sys.exit(1)
    sys.exit(exit_code if isinstance(exit_code, int) else 0)
