"""One sync of a registered project, as a worker or `bm sync --all` runs it: the outcome
(what is logged and recorded in the registry), and the refusal to sync a folder that is not
there.

A registered folder that is missing or unreadable is reported and never synced: a sync would
see every note deleted. Nor is a folder that is empty and holds no `.basic-memory` while the
last sync found files (an unmounted mount point looks like that).

Kept apart from the registry (`bm_sync.projects`) because it runs where the registry is not
open: in a worker's sync processes (`bm_sync.sync_pool`) and its watchers
(`bm_sync.worker_watch`).
"""

from __future__ import annotations

import os
import resource
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from bm_sync.errors import BmSyncError

if TYPE_CHECKING:
    from bm_sync.reports import SyncReport

# The result of a sync as the registry records it; anything but OK counts as a failure.
OK, FAILED, MISSING, UNREADABLE, BUSY = "ok", "failed", "missing", "unreadable", "busy"
REMOVED = "removed"  # a watch lease revoked by `bm project remove`


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

@dataclass
class SyncOutcome:
    """One sync of a registered project, as logged and recorded."""

    project: str
    path: str
    result: str = OK
    error: str | None = None
    duration_s: float = 0.0
    files_scanned: int | None = None
    changes: dict[str, int] = field(default_factory=dict)
    failures: int = 0
    peak_rss_mb: float = 0.0

    @property
    def ok(self) -> bool:
        return self.result == OK

    def to_json(self) -> dict[str, object]:
        return {"event": "sync", "project": self.project, "path": self.path,
                "result": self.result, "error": self.error,
                "duration_s": round(self.duration_s, 3), "files_scanned": self.files_scanned,
                "changes": self.changes, "failures": self.failures,
                "peak_rss_mb": round(self.peak_rss_mb, 1)}

    def line(self) -> str:
        return sync_line(self.to_json())


def sync_line(event: dict[str, object]) -> str:
    """A sync event (`SyncOutcome.to_json`) as one line: `notes: ok in 0.4 s, 120 files,
    2 added 1 modified 0 deleted 0 moved, 0 failed, peak RSS 90 MB`."""
    if event["result"] != OK:
        return (f"{event['project']}: {event['result']}: {event['error']} "
                f"({event['duration_s']:.1f} s)")
    changes = event["changes"]
    assert isinstance(changes, dict)
    counts = " ".join(f"{count} {kind}" for kind, count in changes.items())
    return (f"{event['project']}: ok in {event['duration_s']:.1f} s, "
            f"{_files(event['files_scanned'])}, {counts}, {event['failures']} failed, "
            f"peak RSS {event['peak_rss_mb']:.0f} MB")


def folder_problem(root: Path, last_files: int | None) -> tuple[str, str] | None:
    """Why `root` must not be synced (result, message), or None: see the module doc."""
    if not root.is_dir():
        return MISSING, f"folder {root} is missing (not synced, its rows are kept)"
    try:
        with os.scandir(root) as entries:
            empty = next(entries, None) is None
    except OSError as error:
        return UNREADABLE, (f"folder {root} cannot be read ({error.strerror or error}; "
                            "not synced, its rows are kept)")
    if empty and last_files:
        return MISSING, (f"folder {root} is empty and has no .basic-memory, but held "
                         f"{last_files} files (not mounted?); not synced, its rows are kept")
    return None


async def sync_folder(name: str, root: Path, database_url: str,
                      last_files: int | None = None) -> SyncOutcome:
    """Sync one registered folder into `database_url`; a failure is the outcome, never raised."""
    from bm_sync.errors import SyncLocked
    from bm_sync.sync import SyncEngine

    outcome = SyncOutcome(name, str(root))
    started = time.perf_counter()
    problem = folder_problem(root, last_files)
    if problem is not None:
        outcome.result, outcome.error = problem
    else:
        try:
            async with SyncEngine.open(root, database_url) as engine:
                describe_report(outcome, await engine.sync())
        except SyncLocked as error:
            outcome.result, outcome.error = BUSY, str(error)
        except BmSyncError as error:
            outcome.result, outcome.error = FAILED, str(error)
    outcome.duration_s = time.perf_counter() - started
    outcome.peak_rss_mb = peak_rss_mb()
    return outcome


def describe_report(outcome: SyncOutcome, report: SyncReport) -> None:
    """Fill `outcome`'s counts from a sync's report."""
    outcome.changes = {"added": len(report.added), "modified": len(report.modified),
                       "deleted": len(report.deleted), "moved": len(report.moved)}
    outcome.files_scanned = (report.unchanged + len(report.added) + len(report.modified)
                             + len(report.moved))
    outcome.failures = report.failed_total


def _files(count: object) -> str:
    return "1 file" if count == 1 else f"{count} files"
