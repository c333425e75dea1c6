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


def status_summary(report: StatusReport, scope: str | None = None) -> str:
    """The count line of `bm status`; narrowed, it names the `scope` it covers."""
    where = f" in {scope}" if scope is not None else ""
    if not report.change_count and not report.failed:
        return f"up to date ({files(report.unchanged)} unchanged{where})"
    return (f"{len(report.added)} added, {len(report.modified)} modified, "
            f"{len(report.deleted)} deleted, {len(report.moved)} moved, "
            f"{len(report.failed)} failed, {report.unchanged} unchanged{where}")


def status_lines(report: StatusReport, scope: str | None = None) -> list[str]:
    """`git status --short`-like lines, grouped added / modified / deleted / moved, then the
    summary."""
    lines = [f"A  {path}" for path in report.added]
    lines += [f"M  {path}" for path in report.modified]
    lines += [f"D  {path}" for path in report.deleted]
    lines += [f"R  {old} -> {new}" for old, new in report.moved]
    lines += [f"!  {failure.path}: {failure.error}" for failure in report.failed]
    return [*lines, status_summary(report, scope)]


def sync_summary(report: SyncReport) -> str:
    """`12 added, 3 modified, 1 deleted, 2 moved, 0 failed in 0.8 s` (with `, 1 warning` after
    `failed` when notes were indexed with warnings), or `up to date`.

    Narrowed (`bm sync SUBFOLDER`), the counts of the subfolder come first, then what the sync
    applied to the whole folder (what `bm history` shows as its run):
    `sub: 1 added, ...; the whole folder: 2 added, 1 modified, ... in 0.8 s`."""
    if report.scope is None or report.applied is None:
        return _counts_line(report.counts(), report.file_warnings_total, report.duration_s)
    whole = _counts_line(report.applied, report.file_warnings_total, report.duration_s)
    counts = report.counts()
    if whole.startswith("up to date"):
        return (f"up to date ({files(counts['unchanged'])} unchanged in {report.scope}, "
                f"{report.duration_s:.1f} s)")
    narrowed = (f"{files(counts['unchanged'])} unchanged" if not report.change_count
                and not counts["failed"] else _change_counts(counts))
    return f"{report.scope}: {narrowed}; the whole folder: {whole}"


def _counts_line(counts: dict[str, int], warnings: int, duration_s: float) -> str:
    if not any(counts[kind] for kind in ("added", "modified", "deleted", "moved", "failed")
               ) and not warnings:
        return f"up to date ({files(counts['unchanged'])} unchanged, {duration_s:.1f} s)"
    noted = f", {warnings} warning{'s' if warnings != 1 else ''}" if warnings else ""
    return f"{_change_counts(counts)}{noted} in {duration_s:.1f} s"


def _change_counts(counts: dict[str, int]) -> str:
    return (f"{counts['added']} added, {counts['modified']} modified, "
            f"{counts['deleted']} deleted, {counts['moved']} moved, {counts['failed']} failed")


def render_status(report: StatusReport, as_json: bool,
                  scope: str | None = None) -> tuple[str, str]:
    """(stdout, stderr) of `bm status [--json]`, narrowed to `scope` if given."""
    stderr = "".join(f"bm: warning: {warning}\n" for warning in report.warnings)
    if as_json:
        data = report.to_json()
        if scope is not None:
            data["scope"] = scope
        return json.dumps(data) + "\n", stderr
    return "\n".join(status_lines(report, scope)) + "\n", stderr


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
