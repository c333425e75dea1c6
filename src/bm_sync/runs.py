"""The history run of one sync, and the token that tells a completed sync from a killed one.

Crash recovery, told once (docs/architecture.md tells it for users). The database commits
first and the index is written after, so after a crash the index is only ever behind the
database: the next run re-detects and re-applies, and every apply step is idempotent (an add
of an existing path is an upsert, a move whose target holds the entity keeps the old id, a
delete of a missing path does nothing). Re-detecting is not enough once the user has also
undone what the killed sync applied (moved a note back, reverted an edit: against the old
index the file looks unchanged). So each sync clears the project's token in its first write
transaction (`RunLog.mark_in_progress`) and issues a new one when it completes
(`RunLog.complete`), which the index then records. A missing or different token makes the
next sync a rebuild (`bm_sync.consistency`): a full scan whose sweep (`bm_sync.rebuild`) keeps
identities. History skips what a replay repeats (`is_replay`).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from bm_sync.changes import Change, ChangeKind
from bm_sync.db import runs as run_rows
from bm_sync.db.models import utc_now
from bm_sync.db.runs import ChangeRow


@dataclass
class RunState:
    """What a rolled-back transaction must put back: the run id it created, the mark it made."""

    run_id: int | None
    marked: bool


class RunLog:
    """The current sync's run row, its change rows and the project's token."""

    def __init__(self, project_id: int, token: str | None,
                 last_completed_at: datetime | None) -> None:
        self.project_id = project_id
        self.token = token
        self.last_completed_at = last_completed_at  # the sweep's cutoff
        self.run_id: int | None = None
        self.started_at = time.time()
        self.confirmed_run_id: int | None = None
        self.rebuilding = False
        self._marked = False
        self._history_before: bool | None = None

    def begin(self, started_at: float, confirmed_run_id: int | None, rebuilding: bool) -> None:
        """Start the run of one sync. An engine may sync many times (a watcher): each sync is
        its own run, timed from its own start. `confirmed_run_id` is the last run the index
        recorded; only rows of later (interrupted) runs can be replays. A `rebuilding` sync
        reports every file as added; its history records only real differences."""
        self.run_id = None
        self.started_at = started_at
        self.confirmed_run_id = confirmed_run_id
        self.rebuilding = rebuilding
        self._marked = False
        self._history_before = None

    def checkpoint(self) -> RunState:
        return RunState(self.run_id, self._marked)

    def roll_back(self, state: RunState) -> None:
        self.run_id, self._marked = state.run_id, state.marked

    async def mark_in_progress(self, session: AsyncSession) -> None:
        """In this sync's first write transaction: clear the token (see the module doc)."""
        if not self._marked:
            await run_rows.clear_token(session, self.project_id)
            self._marked = True

    async def record(self, session: AsyncSession, changes: list[Change]) -> list[Change]:
        """The run row (on first use) and one row per change that is not a replay, in the
        transaction that applies the changes: a crash never records a change that was not
        applied, nor applies one that is not recorded. Returns the changes as recorded (what
        the sync reports: one truth for the report and the history)."""
        if self._history_before is None:  # asked once a sync, before it records anything
            self._history_before = await run_rows.has_changes(session, self.project_id)
        # A project without history (a first sync) has no newest row to look up: this run
        # records each path at most once, and no other run recorded any.
        latest = (await run_rows.latest_changes(session, self.project_id,
                                                [change.path for change in changes])
                  if self._history_before else {})
        rows = []
        recorded_changes = []
        counts: dict[str, int] = {}
        for change in changes:
            recorded = history_change(change, latest.get(change.path), self.confirmed_run_id,
                                      self.rebuilding)
            if recorded is None:
                continue
            recorded_changes.append(recorded)
            counts[recorded.kind.value] = counts.get(recorded.kind.value, 0) + 1
            rows.append({
                "project_id": self.project_id, "kind": recorded.kind.value,
                "path": recorded.path, "old_path": recorded.old_path,
                "content_id": recorded.content_id, "size": recorded.size,
                "mtime": recorded.mtime_ns / 1e9 if recorded.mtime_ns is not None else None,
            })
        if not rows:
            return []
        if self.run_id is None:
            self.run_id = await run_rows.insert_run(session, self.project_id, self.started_at)
        await run_rows.insert_changes(session, self.run_id, rows, counts)
        return recorded_changes

    async def forget_added(self, session: AsyncSession, paths: list[str]) -> None:
        """Drop the `added` rows of paths a rebuild's sweep turned into moves: this run's and
        those of interrupted runs (a killed rebuild had recorded the new path as an add). The
        move row is the one true account; each run's counts follow."""
        if paths:
            await run_rows.forget_added(session, self.project_id, self.run_id, paths)

    async def complete(self, session: AsyncSession, failed_total: int) -> str:
        """Mark the run completed and issue a new token (returned, for the index): a database
        put back from an older copy, or another machine's, then no longer matches."""
        if self.run_id is not None:
            await run_rows.complete_run(session, self.run_id, time.time() - self.started_at,
                                        failed_total)
        self.token = uuid.uuid4().hex
        self.last_completed_at = utc_now()  # a long-lived engine syncs again from here
        await run_rows.issue_token(session, self.project_id, self.token,
                                   self.last_completed_at)
        return self.token


def history_change(change: Change, latest: ChangeRow | None, confirmed_run_id: int | None,
                   rebuilding: bool) -> Change | None:
    """The change to record for `change`, given its path's newest history row; None when
    there is nothing to record.

    A replay is skipped: a change identical to the newest row, when that row belongs to a run
    that did not complete and came after the run the index confirmed. A row of a completed run
    is never a replay: moving a file back and forth, or copying it back where it was, are real
    changes that happen to repeat an older row. A rebuild reports every file as added: an add
    that repeats the newest row is no change at all, one with other content is recorded as what
    it is, a modification.
    """
    if latest is None:
        return change
    if is_replay(latest, change, confirmed_run_id):
        return None
    if rebuilding and change.kind is ChangeKind.ADDED:
        if same_state(latest, change):
            return None
        if latest.kind != ChangeKind.DELETED.value:
            return replace(change, kind=ChangeKind.MODIFIED)
    return change


def is_replay(latest: ChangeRow, change: Change, confirmed_run_id: int | None) -> bool:
    if latest.run_status == "completed":
        return False
    if confirmed_run_id is not None and latest.run_id <= confirmed_run_id:
        return False
    return same_state(latest, change)


def same_state(latest: ChangeRow, change: Change) -> bool:
    """Whether `change` only repeats what the path's newest row already says."""
    if change.kind is ChangeKind.DELETED:
        return latest.kind == ChangeKind.DELETED.value
    if latest.kind == ChangeKind.DELETED.value or latest.content_id != change.content_id:
        return False
    return change.kind is not ChangeKind.MOVED or latest.old_path == change.old_path
