"""History operations: sync runs, per-file timelines that follow moves, versions you can get
back (show, diff, restore) and retention (prune). `SyncEngine` delegates to `History`.

Recording happens inside the sync's own transactions (`bm_sync.runs`); this module only reads
history, and writes a user file only in `restore`, when asked.

A timeline is followed backwards like `git log --follow`: the newest change of a path first; a
`moved` entry continues with the changes of its old path that came before it.
"""

from __future__ import annotations

import asyncio
import difflib
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from bm_sync.changes import ChangeKind
from bm_sync.db import runs as run_rows
from bm_sync.db.session import ProjectDatabase
from bm_sync.errors import HistoryError
from bm_sync.lock import FolderLock
from bm_sync.versions import VersionStore


@dataclass(frozen=True)
class RunRecord:
    """One sync run that applied something. `status` is "completed" or "interrupted"."""

    id: int
    started_at: float
    duration_s: float | None
    added: int
    modified: int
    deleted: int
    moved: int
    failed: int
    status: str

    def to_json(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class VersionRecord:
    """One entry of a file's timeline. `stored`: its content can be shown and restored."""

    change_id: int
    run_id: int
    run_started_at: float
    kind: ChangeKind
    path: str
    old_path: str | None
    content_id: str | None
    size: int | None
    mtime: float | None
    stored: bool

    def to_json(self) -> dict[str, object]:
        data = asdict(self)
        data["kind"] = self.kind.value
        return data


class History:
    """The history of one folder's project: what `bm history`, `restore` and `prune` call."""

    def __init__(self, root: Path, database: ProjectDatabase, versions: VersionStore,
                 lock: FolderLock, *, wait: bool = False) -> None:
        self.root = root
        self.database = database
        self.versions = versions
        self.lock = lock
        self.wait = wait

    async def runs(self, limit: int = 20) -> list[RunRecord]:
        """The most recent sync runs, newest first."""
        async with self.database.sessions() as session:
            rows = await run_rows.recent_runs(session, self.database.project_id, limit)
        return [RunRecord(row.id, row.started_at, row.duration_s, row.added, row.modified,
                          row.deleted, row.moved, row.failed, row.status) for row in rows]

    async def timeline(self, path: str) -> list[VersionRecord]:
        """The timeline of one file (root-relative path), newest first, following moves back
        to its first appearance."""
        records: list[VersionRecord] = []
        before: int | None = None
        seen: set[tuple[str, int | None]] = set()
        asked = path
        async with self.database.sessions() as session:
            while (path, before) not in seen:
                seen.add((path, before))
                rows = await run_rows.changes_of_path(session, self.database.project_id, path,
                                                      before)
                moved_from = None
                for row in rows:
                    kind = ChangeKind(row.kind)
                    records.append(VersionRecord(
                        row.id, row.run_id, row.run_started_at, kind, row.path, row.old_path,
                        row.content_id, row.size, row.mtime,
                        bool(row.content_id) and kind is not ChangeKind.DELETED
                        and self.versions.has(row.content_id or "")))
                    if kind is ChangeKind.MOVED and row.old_path:
                        moved_from = (row.old_path, row.id)
                        break
                    if kind is ChangeKind.ADDED:
                        break
                if moved_from is None:
                    break
                path, before = moved_from
        if not records:
            raise HistoryError(f"no history for {asked!r}")
        return records

    async def show(self, path: str, revision: str | None = None) -> tuple[VersionRecord, bytes]:
        """A version's record and content (`~N` or a content id prefix; default the newest)."""
        version = resolve_revision(await self.timeline(path), revision)
        return version, self._content(version)

    async def diff(self, path: str, revision: str | None = None) -> str:
        """With a REV: that version against the one before it. Without: the newest recorded
        version against the file on disk."""
        versions = await self.timeline(path)
        if revision is None:
            version = resolve_revision(versions, None)
            old = self._content(version)
            current = self.root / path
            new = current.read_bytes() if current.exists() else b""
            return unified_diff(old, new, f"{version.content_id or ''}"[:10],
                                f"{current.name} (disk)")
        version = resolve_revision(versions, revision)
        new = self._content(version)
        with_content = distinct_versions(versions)
        position = with_content.index(version)
        if position + 1 >= len(with_content):
            return unified_diff(b"", new, "/dev/null", (version.content_id or "")[:10])
        older = with_content[position + 1]
        return unified_diff(self._content(older), new, (older.content_id or "")[:10],
                            (version.content_id or "")[:10])

    async def restore(self, path: str, revision: str) -> VersionRecord:
        """Write a stored version back to the file: the only call that writes user files.

        The next sync records the restore as a modification.
        """
        version, content = await self.show(path, revision)
        target = self.root / path
        with self.lock.hold(wait=self.wait):  # not under a running sync's feet
            target.parent.mkdir(parents=True, exist_ok=True)
            temporary = target.with_name(f".{target.name}.bm-restore")
            temporary.write_bytes(content)
            try:  # the file keeps its permissions (a private note stays private)
                os.chmod(temporary, os.stat(target).st_mode & 0o7777)
            except FileNotFoundError:
                pass
            os.replace(temporary, target)
        return version

    async def prune(self, keep_last: int | None = None,
                    keep_days: float | None = None) -> tuple[int, int]:
        """Drop stored versions outside the retention; return object store bytes before/after."""
        with self.lock.hold(wait=self.wait):
            keep = await self._retained_content_ids(keep_last, keep_days)
            return await asyncio.to_thread(self.versions.prune, keep)

    def _content(self, version: VersionRecord) -> bytes:
        content = self.versions.read(version.content_id) if version.content_id else None
        if content is None:
            raise HistoryError(f"the content of {(version.content_id or '')[:10]} was not "
                               "stored (binary, too large, versions off, or pruned)")
        return content

    async def _retained_content_ids(self, keep_last: int | None,
                                    keep_days: float | None) -> set[str]:
        """Content ids to keep. Retention counts per file, a file being a timeline as
        `bm history` shows it (moves followed), not per path: a path a file moved away from
        is not a file.

        In each timeline the versions are its distinct contents, as `~N` counts them. Kept:
        the newest version (a deleted file's last one too, so it can still be restored), the
        last `keep_last`, and with `keep_days` every version that was still current at some
        time in the last `keep_days` days (so the file can be put back as it was at any moment
        of the window, including the version that was current when the window opened).
        """
        now = time.time()
        cutoff = now - keep_days * 86400 if keep_days is not None else None
        timelines: list[list[tuple[str | None, float]]] = []  # oldest first: (content, time)
        live: dict[str, int] = {}  # path -> its timeline, while a file is there
        async with self.database.sessions() as session:
            async for row in run_rows.all_changes(session, self.database.project_id):
                if row.kind == ChangeKind.DELETED.value:
                    if row.path in live:
                        timelines[live.pop(row.path)].append((None, row.run_started_at))
                    continue
                number = (live.pop(row.old_path, None)
                          if row.kind == ChangeKind.MOVED.value and row.old_path else None)
                if number is None:
                    number = live.get(row.path) if row.kind == ChangeKind.MODIFIED.value else None
                if number is None:  # added, or a change whose file the history never saw appear
                    number = len(timelines)
                    timelines.append([])
                live[row.path] = number
                timelines[number].append((row.content_id, row.run_started_at))
        keep: set[str] = set()
        for entries in timelines:
            keep.update(_retained(entries, keep_last, cutoff, now))
        return keep


def _retained(entries: list[tuple[str | None, float]], keep_last: int | None,
              cutoff: float | None, now: float) -> set[str]:
    """The versions of one timeline (oldest first) to keep; see `_retained_content_ids`."""
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


def revision_numbers(versions: list[VersionRecord]) -> list[int | None]:
    """`N` of `~N` for each timeline entry (newest first): N counts distinct contents back, so
    a move that did not change the content shares the number of the content it carries."""
    numbers: list[int | None] = []
    count, previous = -1, None
    for version in versions:
        if version.kind is ChangeKind.DELETED or not version.content_id:
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
               if version.content_id and version.content_id.startswith(revision.lower())}
    if len(matches) != 1:
        raise HistoryError(f"{'ambiguous' if matches else 'unknown'} revision {revision!r}")
    return next(iter(matches.values()))


def unified_diff(old: bytes, new: bytes, old_label: str, new_label: str) -> str:
    return "".join(difflib.unified_diff(
        old.decode("utf-8", "replace").splitlines(keepends=True),
        new.decode("utf-8", "replace").splitlines(keepends=True),
        fromfile=old_label, tofile=new_label))
