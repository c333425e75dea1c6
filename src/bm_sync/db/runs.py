"""Project, run and history rows: the bookkeeping around a sync's entity writes, and the
queries behind `bm history` and `bm prune`.

The token protocol these statements serve is told once, in `bm_sync.runs`.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bm_sync.db.batches import append_rows, chunks
from bm_sync.db.models import FileChange, Project, SyncFailure, SyncRun
from bm_sync.identity import folder_identity

# `file_change`'s columns as `insert_changes` writes them (the id is the database's).
CHANGE_COLUMNS = ("run_id", "project_id", "kind", "path", "old_path", "content_id", "size",
                  "mtime")


@dataclass(frozen=True, slots=True)
class ProjectRow:
    id: int
    uuid: str
    token: str | None
    completed_at: datetime | None  # when the last completed sync finished


@dataclass(frozen=True, slots=True)
class ChangeRow:
    """One `file_change` row with the start time and status of its run."""

    id: int
    run_id: int
    run_started_at: float
    run_status: str
    kind: str
    path: str
    old_path: str | None
    content_id: str | None
    size: int | None
    mtime: float | None


# One run as `bm history` lists it: id, started at, duration, added, modified, deleted, moved,
# failed, status (the fields of `bm_sync.history.RunRecord`, in order).
RunFields = tuple[int, float, "float | None", int, int, int, int, int, str]


# -- the project row and its token --------------------------------------------------------------

async def claim_project(session: AsyncSession, root: Path, project_uuid: str,
                        row_id: int | None) -> ProjectRow:
    """The project row `row_id` (else the one at `root`, else a new one with `project_uuid`),
    now recorded at `root`: a moved folder takes its row along. A row without an id (made
    before ids existed) gets `project_uuid`.

    `root_identity` is the folder's device and inode when the row is made (or first seen
    without one), and never changes after: it names the original folder, which can reclaim
    the row from a copy that took it while the original was out of sight (`bm_sync.identity`).
    """
    project = await session.get(Project, row_id) if row_id is not None else None
    if project is None:
        project = await session.scalar(select(Project).where(Project.root_path == str(root)))
    if project is None:
        project = Project(name=root.name or str(root), root_path=str(root), uuid=project_uuid,
                          root_identity=folder_identity(root))
        session.add(project)
        await session.flush()
        return ProjectRow(project.id, project_uuid, project.index_token, project.updated_at)
    if project.root_path != str(root):
        await _vacate_root(session, root, project.id)
    if project.root_path != str(root) or project.uuid is None or project.root_identity is None:
        # `updated_at` stays: it says when the last sync completed (the sweep's cutoff).
        await session.execute(update(Project).where(Project.id == project.id).values(
            root_path=str(root), name=root.name or str(root),
            uuid=project.uuid or project_uuid,
            root_identity=project.root_identity or folder_identity(root),
            updated_at=Project.updated_at))
    return ProjectRow(project.id, project.uuid or project_uuid, project.index_token,
                      project.updated_at)


def vacated_root(project_id: int) -> str:
    """The `root_path` of a project whose folder another project now occupies. Relative, so
    never a real root (roots are absolute, symlinks resolved), and unique per row. Such a
    project keeps everything: its folder, wherever it went, carries the project's id in its
    index and finds the row by that id at its next sync, which records its new root."""
    return f"(moved away) project {project_id}"


async def _vacate_root(session: AsyncSession, root: Path, claimant: int) -> None:
    """Free `root` for project `claimant`: the row recorded there is of a folder that was
    moved away (its index has its own id: this folder would otherwise have found that row),
    and `root_path` is unique."""
    holder = await session.scalar(select(Project.id).where(Project.root_path == str(root),
                                                           Project.id != claimant))
    if holder is not None:
        await session.execute(update(Project).where(Project.id == holder).values(
            root_path=vacated_root(holder), updated_at=Project.updated_at))


async def clear_token(session: AsyncSession, project_id: int) -> None:
    """`updated_at` stays: it says when the last sync *completed* (the sweep's cutoff)."""
    await session.execute(update(Project).where(Project.id == project_id)
                          .values(index_token=None, updated_at=Project.updated_at))


async def issue_token(session: AsyncSession, project_id: int, token: str,
                      completed_at: datetime) -> None:
    await session.execute(update(Project).where(Project.id == project_id)
                          .values(index_token=token, updated_at=completed_at))


# -- runs and file changes ----------------------------------------------------------------------

async def insert_run(session: AsyncSession, project_id: int, started_at: float) -> int:
    """A new run, "interrupted" until `complete_run` marks it completed."""
    run = SyncRun(project_id=project_id, started_at=started_at, added=0, modified=0,
                  deleted=0, moved=0, failed=0, status="interrupted")
    session.add(run)
    await session.flush()
    return run.id


async def insert_changes(session: AsyncSession, run_id: int, rows: list[dict[str, Any]],
                         counts: dict[str, int]) -> None:
    """The run's `file_change` rows (one COPY on PostgreSQL: a first sync records every file),
    and its per-kind counters raised by `counts`."""
    await append_rows(session, FileChange.metadata.tables["file_change"], CHANGE_COLUMNS, [
        (run_id, *(row[column] for column in CHANGE_COLUMNS[1:])) for row in rows])
    await session.execute(update(SyncRun).where(SyncRun.id == run_id).values(
        added=SyncRun.added + counts.get("added", 0),
        modified=SyncRun.modified + counts.get("modified", 0),
        deleted=SyncRun.deleted + counts.get("deleted", 0),
        moved=SyncRun.moved + counts.get("moved", 0)))


async def complete_run(session: AsyncSession, run_id: int, duration_s: float,
                       failed: int) -> None:
    await session.execute(update(SyncRun).where(SyncRun.id == run_id).values(
        status="completed", duration_s=duration_s, failed=failed))


async def has_changes(session: AsyncSession, project_id: int) -> bool:
    """Whether the project has any `file_change` row (an index probe)."""
    found = await session.execute(select(FileChange.id).where(
        FileChange.project_id == project_id).limit(1))
    return found.first() is not None


async def latest_changes(session: AsyncSession, project_id: int,
                         paths: Sequence[str]) -> dict[str, ChangeRow]:
    """path -> its newest `file_change` row."""
    latest: dict[str, ChangeRow] = {}
    for chunk in chunks(session, paths):
        newest = (select(func.max(FileChange.id))
                  .where(FileChange.project_id == project_id, FileChange.path.in_(chunk))
                  .group_by(FileChange.path))
        rows = await session.execute(_change_rows().where(FileChange.id.in_(newest)))
        latest.update({row.path: row for row in map(_change_row, rows)})
    return latest


async def forget_added(session: AsyncSession, project_id: int, run_id: int | None,
                       paths: Sequence[str]) -> None:
    """Drop the `added` rows of `paths` recorded by run `run_id` or by runs that never
    completed, and lower those runs' counters to match."""
    unfinished = select(SyncRun.id).where(SyncRun.project_id == project_id,
                                          SyncRun.status != "completed")
    for chunk in chunks(session, paths):
        condition = (or_(FileChange.run_id == (run_id or -1), FileChange.run_id.in_(unfinished)),
                     FileChange.kind == "added", FileChange.path.in_(chunk))
        counts = await session.execute(select(FileChange.run_id, func.count())
                                       .where(*condition).group_by(FileChange.run_id))
        for counted_run, count in counts.all():
            await session.execute(update(SyncRun).where(SyncRun.id == counted_run)
                                  .values(added=SyncRun.added - count))
        await session.execute(delete(FileChange).where(*condition))


async def recorded_contents(session: AsyncSession, project_id: int,
                            paths: Sequence[str]) -> dict[str, list[str]]:
    """path -> the content ids its history recorded, newest first."""
    earlier: dict[str, list[str]] = {}
    for chunk in chunks(session, paths):
        rows = await session.execute(
            select(FileChange.path, FileChange.content_id).where(
                FileChange.project_id == project_id, FileChange.path.in_(chunk),
                FileChange.content_id.is_not(None))
            .order_by(FileChange.id.desc()))
        for path, content_id in rows:
            if content_id is not None:
                earlier.setdefault(path, []).append(content_id)
    return earlier


async def recent_runs(session: AsyncSession, project_id: int, limit: int) -> list[RunFields]:
    rows = await session.scalars(select(SyncRun).where(SyncRun.project_id == project_id)
                                 .order_by(SyncRun.id.desc()).limit(limit))
    return [(run.id, run.started_at, run.duration_s, run.added, run.modified, run.deleted,
             run.moved, run.failed, run.status) for run in rows]


async def changes_of_path(session: AsyncSession, project_id: int, path: str,
                          before: int | None = None) -> list[ChangeRow]:
    """The changes recorded at `path` (older than change id `before`, if given), newest first."""
    query = _change_rows().where(FileChange.project_id == project_id, FileChange.path == path)
    if before is not None:
        query = query.where(FileChange.id < before)
    rows = await session.execute(query.order_by(FileChange.id.desc()))
    return [_change_row(row) for row in rows]


async def all_changes(session: AsyncSession, project_id: int) -> AsyncIterator[ChangeRow]:
    """Every change of the project, oldest first, streamed."""
    result = await session.stream(_change_rows().where(FileChange.project_id == project_id)
                                  .order_by(FileChange.id))
    async for row in result:
        yield _change_row(row)


def _change_rows() -> Any:
    return select(FileChange.id, FileChange.run_id, SyncRun.started_at, SyncRun.status,
                  FileChange.kind, FileChange.path, FileChange.old_path, FileChange.content_id,
                  FileChange.size, FileChange.mtime).join(SyncRun)


def _change_row(row: Any) -> ChangeRow:
    return ChangeRow(*row)


# -- the circuit breaker's table ----------------------------------------------------------------

async def record_failure(session: AsyncSession, project_id: int, path: str,
                         content_id: str | None, error: str) -> int:
    """Count one more failure of `path` (restarting at 1 when its content changed)."""
    now = time.time()
    failure = await session.get(SyncFailure, (project_id, path))
    if failure is None:
        session.add(SyncFailure(project_id=project_id, file_path=path, content_id=content_id,
                                error=error, count=1, first_failed_at=now, last_failed_at=now))
        await session.flush()
        return 1
    if failure.content_id != content_id:
        failure.count, failure.first_failed_at = 0, now
    failure.count += 1
    failure.content_id, failure.error, failure.last_failed_at = content_id, error, now
    await session.flush()
    return failure.count


async def clear_failures(session: AsyncSession, project_id: int, paths: Sequence[str]) -> None:
    for chunk in chunks(session, paths):
        await session.execute(delete(SyncFailure).where(
            SyncFailure.project_id == project_id, SyncFailure.file_path.in_(chunk)))
