"""What `bm status` and `bm sync` print, as text, for a report.

The fsmonitor fast path renders its answer in the watcher's process (the client only prints
it), so these formats must not live in the typer layer alone: `cli.py` and the watcher use the
same functions, and a test holds the fast path's output to the full scan's.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bm_sync.changes import StatusReport
    from bm_sync.reports import SyncReport


def files(count: int) -> str:
    """`1 file`, `2 files`, `1,000 files`."""
    return f"{count:,} file" if count == 1 else f"{count:,} files"


def status_summary(report: StatusReport) -> str:
    if not report.change_count and not report.failed:
        return f"up to date ({files(report.unchanged)} unchanged)"
    return (f"{len(report.added)} added, {len(report.modified)} modified, "
            f"{len(report.deleted)} deleted, {len(report.moved)} moved, "
            f"{len(report.failed)} failed, {report.unchanged} unchanged")


def status_lines(report: StatusReport) -> list[str]:
    """`git status --short`-like lines, grouped added / modified / deleted / moved, then the
    summary."""
    lines = [f"A  {path}" for path in report.added]
    lines += [f"M  {path}" for path in report.modified]
    lines += [f"D  {path}" for path in report.deleted]
    lines += [f"R  {old} -> {new}" for old, new in report.moved]
    lines += [f"!  {failure.path}: {failure.error}" for failure in report.failed]
    return [*lines, status_summary(report)]


def sync_summary(report: SyncReport) -> str:
    """`12 added, 3 modified, 1 deleted, 2 moved, 0 failed in 0.8 s` (with `, 1 warning` after
    `failed` when notes were indexed with warnings), or `up to date`."""
    if not report.change_count and not report.failed_total and not report.file_warnings_total:
        return f"up to date ({files(report.unchanged)} unchanged, {report.duration_s:.1f} s)"
    warnings = report.file_warnings_total
    noted = f", {warnings} warning{'s' if warnings != 1 else ''}" if warnings else ""
    return (f"{len(report.added)} added, {len(report.modified)} modified, "
            f"{len(report.deleted)} deleted, {len(report.moved)} moved, "
            f"{report.failed_total} failed{noted} in {report.duration_s:.1f} s")


def render_status(report: StatusReport, as_json: bool) -> tuple[str, str]:
    """(stdout, stderr) of `bm status [--json]`."""
    stderr = "".join(f"bm: warning: {warning}\n" for warning in report.warnings)
    if as_json:
        return json.dumps(report.to_json()) + "\n", stderr
    return "\n".join(status_lines(report)) + "\n", stderr


def render_sync(report: SyncReport, as_json: bool,
                extra: dict[str, object] | None = None) -> tuple[str, str]:
    """(stdout, stderr) of `bm sync [--json]`; `extra` joins the JSON object."""
    stderr = "".join(f"bm: warning: {warning}\n" for warning in report.warnings)
    if as_json:
        return json.dumps({**report.to_json(), **(extra or {})}) + "\n", stderr
    stderr += "".join(f"bm: failed: {failure.path}: {failure.error}\n"
                      for failure in report.failed)
    stderr += "".join(f"bm: warning: {noted.path}: {noted.error}\n"
                      for noted in report.file_warnings)
    return sync_summary(report) + "\n", stderr
