"""History: sync runs, per-file timelines that follow moves, versions you can get back.

Recording happens inside the sync's own transactions (`record_changes`, `complete_run`), so a
crash never records a change that was not applied, nor applies one that is not recorded. The
queries below are what `bm history` and `bm restore` call.

A timeline is followed backwards like `git log --follow`: the newest change of a path first; a
`moved` entry continues with the changes of its old path that came before it.
"""

from __future__ import annotations

import difflib
import time
from dataclasses import asdict, dataclass, replace
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bm_sync.changes import Change, ChangeKind
from bm_sync.db.models import FileChange, SyncRun
from bm_sync.errors import BmSyncError


class HistoryError(BmSyncError):
    """Unknown file or revision in the history."""


@dataclass(frozen=True)
class RunRecord:
    id: int
    started_at: float
    duration_s: float | None
    added: int
    modified: int
    deleted: int
    moved: int
    failed: int
    status: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class VersionRecord:
    """One entry of a file's timeline. `stored`: its content can be shown and restored."""

    change_id: int
    run_id: int
    run_started_at: float
    kind: str
    path: str
    old_path: str | None
    content_id: str | None
    size: int | None
    mtime: float | None
    stored: bool

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


async def record_changes(session: AsyncSession, project_id: int, run_id: int | None,
                         started_at: float, changes: list[Change],
                         confirmed_run_id: int | None = None, rebuild: bool = False) -> int:
    """Insert the run (on first use) and the changes not already recorded; return the run id.

    After a crash the index is behind the database, so the next sync detects again what the
    killed run applied and recorded. Such a replay is skipped: a change identical to its path's
    newest row, when that row belongs to a run that did not complete and (if the index names
    the last run it confirmed, `confirmed_run_id`) came after that run. A row of a completed
    run is never a replay: moving a file back and forth, or copying it back where it was, are
    real changes that happen to repeat an older row.

    A `rebuild` reports every file as added (its baseline is empty): an add that repeats the
    path's newest row is no change at all and is not recorded, and one with other content is
    recorded as what it is, a modification.
    """
    latest = await _latest_by_path(session, project_id, [change.path for change in changes])
    rows = []
    counts = dict.fromkeys(ChangeKind, 0)
    for change in changes:
        previous = latest.get(change.path)
        if previous is not None and _is_replay(*previous, change, confirmed_run_id):
            continue
        if rebuild and previous is not None and change.kind is ChangeKind.ADDED:
            if _same_state(previous[0], change):
                continue
            if previous[0].kind != "deleted":
                change = replace(change, kind=ChangeKind.MODIFIED)
        counts[change.kind] += 1
        rows.append({
            "project_id": project_id, "kind": change.kind.value, "path": change.path,
            "old_path": change.old_path, "content_id": change.content_id, "size": change.size,
            "mtime": change.mtime_ns / 1e9 if change.mtime_ns is not None else None,
        })
    if not rows:
        return run_id  # type: ignore[return-value]
    if run_id is None:
        run = SyncRun(project_id=project_id, started_at=started_at, added=0, modified=0,
                      deleted=0, moved=0, failed=0, status="interrupted")
        session.add(run)
        await session.flush()
        run_id = run.id
    await session.execute(FileChange.__table__.insert(),
                          [{**row, "run_id": run_id} for row in rows])
    await session.execute(update(SyncRun).where(SyncRun.id == run_id).values(
        added=SyncRun.added + counts[ChangeKind.ADDED],
        modified=SyncRun.modified + counts[ChangeKind.MODIFIED],
        deleted=SyncRun.deleted + counts[ChangeKind.DELETED],
        moved=SyncRun.moved + counts[ChangeKind.MOVED]))
    return run_id


def _is_replay(previous: Any, run_status: str, change: Change,
               confirmed_run_id: int | None) -> bool:
    if run_status == "completed":
        return False
    if confirmed_run_id is not None and previous.run_id <= confirmed_run_id:
        return False
    return _same_state(previous, change)


def _same_state(previous: Any, change: Change) -> bool:
    """Whether `change` only repeats what the path's latest row already says."""
    if change.kind is ChangeKind.DELETED:
        return previous.kind == "deleted"
    if previous.kind == "deleted" or previous.content_id != change.content_id:
        return False
    return change.kind is not ChangeKind.MOVED or previous.old_path == change.old_path


async def _latest_by_path(session: AsyncSession, project_id: int,
                          paths: list[str]) -> dict[str, tuple[Any, str]]:
    """path -> (its newest row, the status of that row's run)."""
    latest: dict[str, tuple[Any, str]] = {}
    for start in range(0, len(paths), 500):
        newest = (select(func.max(FileChange.id))
                  .where(FileChange.project_id == project_id,
                         FileChange.path.in_(paths[start:start + 500]))
                  .group_by(FileChange.path))
        rows = await session.execute(select(FileChange, SyncRun.status).join(SyncRun)
                                     .where(FileChange.id.in_(newest)))
        latest.update({row.path: (row, status) for row, status in rows})
    return latest


async def complete_run(session: AsyncSession, run_id: int, duration_s: float,
                       failed: int) -> None:
    await session.execute(update(SyncRun).where(SyncRun.id == run_id).values(
        status="completed", duration_s=duration_s, failed=failed))


async def list_runs(session: AsyncSession, project_id: int, limit: int) -> list[RunRecord]:
    rows = await session.scalars(select(SyncRun).where(SyncRun.project_id == project_id)
                                 .order_by(SyncRun.id.desc()).limit(limit))
    return [RunRecord(run.id, run.started_at, run.duration_s, run.added, run.modified,
                      run.deleted, run.moved, run.failed, run.status) for run in rows]


async def timeline(session: AsyncSession, project_id: int, path: str,
                   has_content: Any) -> list[VersionRecord]:
    """Newest first, following moves back to the first appearance."""
    records: list[VersionRecord] = []
    before: int | None = None
    seen_paths: set[tuple[str, int | None]] = set()
    while (path, before) not in seen_paths:
        seen_paths.add((path, before))
        query = (select(FileChange, SyncRun.started_at).join(SyncRun)
                 .where(FileChange.project_id == project_id, FileChange.path == path))
        if before is not None:
            query = query.where(FileChange.id < before)
        rows = (await session.execute(query.order_by(FileChange.id.desc()))).all()
        moved_from = None
        for change, started_at in rows:
            records.append(VersionRecord(
                change.id, change.run_id, started_at, change.kind, change.path, change.old_path,
                change.content_id, change.size, change.mtime,
                bool(change.content_id) and change.kind != "deleted"
                and has_content(change.content_id)))
            if change.kind == "moved" and change.old_path:
                moved_from = (change.old_path, change.id)
                break
            if change.kind == "added":
                break
        if moved_from is None:
            break
        path, before = moved_from
    if not records:
        raise HistoryError(f"no history for {path!r}")
    return records


def revision_numbers(versions: list[VersionRecord]) -> list[int | None]:
    """`N` of `~N` for each timeline entry (newest first): N counts distinct contents back, so
    a move that did not change the content shares the number of the content it carries."""
    numbers: list[int | None] = []
    count, previous = -1, None
    for version in versions:
        if version.kind == "deleted" or not version.content_id:
            numbers.append(None)
            previous = None
            continue
        if version.content_id != previous:
            count += 1
            previous = version.content_id
        numbers.append(count)
    return numbers


def distinct_versions(versions: list[VersionRecord]) -> list[VersionRecord]:
    """One entry per `~N`: the oldest entry that carries that content (where it appeared)."""
    chosen: dict[int, VersionRecord] = {}
    for version, number in zip(versions, revision_numbers(versions), strict=True):
        if number is not None:
            chosen[number] = version
    return [chosen[number] for number in sorted(chosen)]


def resolve_revision(versions: list[VersionRecord], revision: str | None) -> VersionRecord:
    """REV is a content id prefix (4+ hex digits) or `~N`, N versions back (`~0` the newest)."""
    with_content = distinct_versions(versions)
    if not with_content:
        raise HistoryError("this file has no recorded version")
    if revision is None:
        return with_content[0]
    if revision.startswith("~"):
        steps = revision[1:] or "1"
        if not steps.isdigit() or int(steps) >= len(with_content):
            raise HistoryError(f"no revision {revision!r}: the file has {len(with_content)} "
                               "versions (~0 is the newest)")
        return with_content[int(steps)]
    if revision.startswith("/"):  # the shell expanded an unquoted `~0` to the working folder
        raise HistoryError(f"unknown revision {revision!r} (quote ~N in the shell: '~1')")
    if len(revision) < 4 or any(char not in "0123456789abcdef" for char in revision.lower()):
        raise HistoryError(f"unknown revision {revision!r}: give 4+ hex digits or ~N")
    matches = {version.content_id: version for version in with_content
               if version.content_id.startswith(revision.lower())}
    if len(matches) != 1:
        raise HistoryError(f"{'ambiguous' if matches else 'unknown'} revision {revision!r}")
    return next(iter(matches.values()))


def unified_diff(old: bytes, new: bytes, old_label: str, new_label: str) -> str:
    return "".join(difflib.unified_diff(
        old.decode("utf-8", "replace").splitlines(keepends=True),
        new.decode("utf-8", "replace").splitlines(keepends=True),
        fromfile=old_label, tofile=new_label))


async def retained_content_ids(session: AsyncSession, project_id: int, keep_last: int | None,
                               keep_days: float | None) -> set[str]:
    """Content ids to keep. Retention counts per file, a file being a timeline as `bm history`
    shows it (moves followed), not per path: a path a file moved away from is not a file.

    In each timeline the versions are its distinct contents, as `~N` counts them. Kept: the
    newest version (a deleted file's last one too, so it can still be restored), the last
    `keep_last`, and with `keep_days` every version that was still current at some time in
    the last `keep_days` days (so the file can be put back as it was at any moment of the
    window, including the version that was current when the window opened).
    """
    now = time.time()
    cutoff = now - keep_days * 86400 if keep_days is not None else None
    rows = await session.stream(
        select(FileChange.kind, FileChange.path, FileChange.old_path, FileChange.content_id,
               SyncRun.started_at)
        .join(SyncRun).where(FileChange.project_id == project_id).order_by(FileChange.id))
    timelines: list[list[tuple[str | None, float]]] = []  # oldest first: (content id, time)
    live: dict[str, int] = {}  # path -> its timeline, while a file is there
    async for kind, path, old_path, content_id, started_at in rows:
        if kind == "deleted":
            if path in live:
                timelines[live.pop(path)].append((None, started_at))
            continue
        number = live.pop(old_path, None) if kind == "moved" and old_path else None
        if number is None:
            number = live.get(path) if kind == "modified" else None
        if number is None:  # added, or a change whose file the history never saw appear
            number = len(timelines)
            timelines.append([])
        live[path] = number
        timelines[number].append((content_id, started_at))
    keep: set[str] = set()
    for entries in timelines:
        keep.update(_retained(entries, keep_last, cutoff, now))
    return keep


def _retained(entries: list[tuple[str | None, float]], keep_last: int | None,
              cutoff: float | None, now: float) -> set[str]:
    """The versions of one timeline (oldest first) to keep; see `retained_content_ids`."""
    states: list[tuple[str | None, float]] = []  # (content id or None when deleted, since)
    for content_id, started_at in entries:
        if not states or content_id is None or content_id != states[-1][0]:
            states.append((content_id, started_at))
    keep: set[str] = set()
    rank, until = 0, now  # `until`: when the newer state replaced this one
    for content_id, since in reversed(states):
        if content_id is not None:
            rank += 1
            if (rank == 1 or (keep_last is not None and rank <= keep_last)
                    or (cutoff is not None and until >= cutoff)):
                keep.add(content_id)
        until = since
    return keep
