"""The `bm` command: parse options, call the library, print text or JSON. No logic of its own.

Exit codes: 0 the command ran (per-file failures are listed, not fatal); 1 it could not run
(locked folder, unusable database); 2 usage error. Errors are one line on stderr.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from bm_sync.detector import Detector, StatusReport
from bm_sync.errors import BmSyncError, NotAFolder
from bm_sync.hashing import MIB, HashPolicy

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
