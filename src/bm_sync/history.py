"""History operations: sync runs, per-file timelines that follow moves, versions you can get
back (show, diff, restore) and retention (prune). `SyncEngine` delegates to `History`.

Recording happens inside the sync's own transactions (`bm_sync.runs`); this module only reads
history (through a read-only connection: it never migrates the database, nor claims or
re-points a project row; the project is the one a sync would take, `history_project`), and
writes a user file only in `restore`, when asked, and never over words that no sync recorded
(like `git checkout`, it refuses, unless forced; forced, it first has a sync record them, so
the overwritten content is a version that can be restored in turn).

A timeline is followed backwards like `git log --follow`: the newest change of a path first; a
`moved` entry continues with the changes of its old path that came before it. A path can hold
several files in turn (one deleted, a new one created): the earlier files' timelines follow
the current one's, each marked with its `lifetime`, so their versions stay reachable.
"""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import os
import stat
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bm_sync.changes import ChangeKind
from bm_sync.db import HEAD_REVISION
from bm_sync.db import runs as run_rows
from bm_sync.db.session import ProjectReader
from bm_sync.db.state import StoredProject, StoredState
from bm_sync.errors import HistoryError, database_error_line
from bm_sync.hashing import HashPolicy, hash_file
from bm_sync.lock import FolderLock
from bm_sync.versions import VersionStore

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

# Runs a sync of the folder (`SyncEngine.sync`): how a forced restore records what it overwrites.
Recorder = Callable[[], Awaitable[object]]


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
    """One entry of a file's timeline. `stored`: its content can be shown and restored.
    `lifetime`: 0 for the file at this path (now, or when last there), 1 for the file
    deleted there before it came, and so on; `~N` counts in lifetime 0 only,
    earlier files' versions are reached by content id."""

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
    lifetime: int

    def to_json(self) -> dict[str, object]:
        data = asdict(self)
        data["kind"] = self.kind.value
        return data


class History:
    """The history of one folder's project: what `bm history`, `restore` and `prune` call."""

    def __init__(self, root: Path, database: ProjectReader, versions: VersionStore,
                 lock: FolderLock, *, wait: bool = False) -> None:
        self.root = root
        self.database = database
        self.versions = versions
        self.lock = lock
        self.wait = wait

    @contextlib.asynccontextmanager
    async def _session(self) -> AsyncIterator[AsyncSession]:
        """A session of the history's read-only connection. A database error of any query in
        it (a table gone, a lost server, a damaged file) ends as one `HistoryError` line."""
        from sqlalchemy.exc import SQLAlchemyError

        from bm_sync.db.engine import first_line

        try:
            async with self.database.sessions() as session:
                yield session
        except SQLAlchemyError as error:
            raise HistoryError(database_error_line(first_line(error))) from error

    async def runs(self, limit: int = 20) -> list[RunRecord]:
        """The most recent sync runs, newest first."""
        async with self._session() as session:
            rows = await run_rows.recent_runs(session, self.database.project_id, limit)
        return [RunRecord(*row) for row in rows]

    async def timeline(self, path: str) -> list[VersionRecord]:
        """The timeline of one file (root-relative path), newest first, following moves back
        to its first appearance; then, marked by `lifetime` 1, 2, ..., the timelines of the
        earlier files deleted at this path before this one came (one that moved away is not
        listed: its timeline goes on at its new path)."""
        records: list[VersionRecord] = []
        async with self._session() as session:
            taken: set[int] = set()
            lifetime = 0
            for row in await run_rows.changes_of_path(session, self.database.project_id, path):
                if row.id in taken:  # a change of a file already followed
                    continue
                earlier = await self._follow(session, path, row.id + 1, lifetime)
                taken.update(record.change_id for record in earlier)
                if lifetime and earlier[0].kind is not ChangeKind.DELETED:
                    continue  # a file that moved away: its timeline goes on where it went
                records.extend(earlier)
                lifetime += 1
        if not records:
            raise HistoryError(f"no history for {path!r}")
        return records

    async def _follow(self, session: AsyncSession, path: str, before: int,
                      lifetime: int) -> list[VersionRecord]:
        """One file's changes, from the newest at `path` older than change id `before` back to
        where it was added, following moves (like `git log --follow`)."""
        records: list[VersionRecord] = []
        seen: set[tuple[str, int]] = set()
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
                    and self.versions.has(row.content_id or ""), lifetime))
                if kind is ChangeKind.MOVED and row.old_path:
                    moved_from = (row.old_path, row.id)
                    break
                if kind is ChangeKind.ADDED:
                    break
            if moved_from is None:
                break
            path, before = moved_from
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
        older = previous_version(versions, version)
        if older is None:
            return unified_diff(b"", new, "/dev/null", (version.content_id or "")[:10])
        return unified_diff(self._content(older), new, (older.content_id or "")[:10],
                            (version.content_id or "")[:10])

    async def restore(self, path: str, revision: str, *, force: bool = False,
                      record: Recorder | None = None) -> VersionRecord:
        """Write a stored version back to the file: the only call that writes user files.

        Refused (`HistoryError`, nothing written) when the file on disk holds content that no
        sync recorded and that is no stored version: it would be lost. With `force`, `record`
        (a sync) runs first, so that content becomes the newest version. The revision is
        resolved before that sync, so `~N` means what the user saw. What the next sync records
        of it: `next_sync_records` (an add when the file was gone).
        """
        target = self.root / path
        with self.lock.hold(wait=self.wait):  # not under a running sync's feet
            versions = await self.timeline(path)
            version = resolve_revision(versions, revision)
            content = self._content(version)
            unrecorded = self._unrecorded(path, versions[0])
            if unrecorded and not force:
                raise HistoryError(f"{path} {unrecorded}: restoring would lose them; run "
                                   "`bm sync` first (they become a version) or pass --force")
            if unrecorded:
                if record is None:
                    raise HistoryError(f"{path} {unrecorded}, and no sync was given to "
                                       "record them first")
                await record()
                on_disk = self._disk_content_id(path)
                if on_disk is not None and not self.versions.has(on_disk):
                    raise HistoryError(f"{path}: its content could not be stored as a version "
                                       "(not a note, over the size limit, or versions off); "
                                       "move it away first")
            _write_file(target, content, path)
        return version

    def _unrecorded(self, path: str, newest: VersionRecord) -> str | None:
        """Why the file on disk cannot be overwritten safely, or None: absent, its newest
        recorded version, or a stored version (nothing would be lost)."""
        content_id = self._disk_content_id(path)
        if content_id is None:
            return None
        if newest.kind is not ChangeKind.DELETED and content_id == newest.content_id:
            return None
        if self.versions.has(content_id):
            return None
        return "has changes that no sync recorded"

    def _disk_content_id(self, path: str) -> str | None:
        """The content id of the file at `path` (None when there is none); `HistoryError`
        when something else is there or it cannot be read."""
        target = self.root / path
        try:
            mode = os.lstat(target).st_mode
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as error:
            raise HistoryError(f"cannot restore {path}: {_reason(error)}") from None
        if stat.S_ISDIR(mode):
            raise HistoryError(f"cannot restore {path}: it is a folder now")
        if not stat.S_ISREG(mode):
            raise HistoryError(f"cannot restore {path}: it is not a regular file now "
                               "(a symlink?); move it away first")
        try:
            return hash_file(str(target), HashPolicy(workers=1)).content_id.hex()
        except OSError as error:
            raise HistoryError(f"cannot restore {path}: {_reason(error)}") from None

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
        async with self._session() as session:
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


def history_project(root: Path, stored: StoredState, project: StoredProject | None,
                    copy_of: Path | None) -> StoredProject:
    """The project whose history `root` reads: the one a sync would take
    (`bm_sync.identity`), found without writing. `HistoryError` in one line when there is
    none yet (no sync of this folder; a copy before its own first sync: the original's
    history stays the original's) or the database is not at this bm's revision (a read
    command never migrates)."""
    if stored.unusable is not None:
        raise HistoryError(f"cannot read the history of {root}: {stored.unusable}")
    if stored.revision is not None and stored.revision != HEAD_REVISION:
        if stored.revision < HEAD_REVISION:
            raise HistoryError(f"the database is at revision {stored.revision}, older than "
                               f"this bm's {HEAD_REVISION}; run `bm sync {root}` to upgrade "
                               "it first")
        raise HistoryError(f"the database is at revision {stored.revision}, newer than this "
                           f"bm's {HEAD_REVISION}; upgrade bm")
    if stored.revision is None or project is None:
        copy = f" (a copy of {copy_of}: its history starts with its own first sync)"
        raise HistoryError(f"no sync has run in {root} yet{copy if copy_of else ''}")
    return project


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
    a move that did not change the content shares the number of the content it carries.
    Only the current file (lifetime 0) has numbers: an earlier file's are by content id."""
    numbers: list[int | None] = []
    count, previous = -1, None
    for version in versions:
        if version.kind is ChangeKind.DELETED or not version.content_id or version.lifetime:
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


def previous_version(versions: list[VersionRecord],
                     version: VersionRecord) -> VersionRecord | None:
    """The version before `version` in its own file's timeline: the newest older entry of
    the same lifetime with other content (None when `version` is the first)."""
    position = versions.index(version)
    for older in versions[position + 1:]:
        if older.lifetime != version.lifetime:
            break
        if (older.kind is not ChangeKind.DELETED and older.content_id
                and older.content_id != version.content_id):
            return older
    return None


def resolve_revision(versions: list[VersionRecord], revision: str | None) -> VersionRecord:
    """REV is a content id prefix (4+ hex digits) or `~N`, N versions back (`~0` the newest)."""
    with_content = distinct_versions(versions)
    if revision is None:
        if not with_content:
            raise HistoryError("this file has no recorded version")
        return with_content[0]
    if revision.startswith("~"):
        steps = revision[1:] or "1"
        if not steps.isdigit() or int(steps) >= len(with_content):
            count = len(with_content)
            raise HistoryError(f"no revision {revision!r}: the file has {count} "
                               f"version{'' if count == 1 else 's'} (~0 is the newest)")
        return with_content[int(steps)]
    if revision.startswith("/"):  # the shell expanded an unquoted `~0` to the working folder
        raise HistoryError(f"unknown revision {revision!r} (quote ~N in the shell: '~1')")
    if len(revision) < 4 or any(char not in "0123456789abcdef" for char in revision.lower()):
        raise HistoryError(f"unknown revision {revision!r}: give 4+ hex digits or ~N")
    matches: dict[str, VersionRecord] = {}
    for version in reversed(versions):  # any file's version; the oldest entry of a content
        if (version.kind is not ChangeKind.DELETED and version.content_id
                and version.content_id.startswith(revision.lower())):
            matches.setdefault(version.content_id, version)
    if len(matches) != 1:
        raise HistoryError(f"{'ambiguous' if matches else 'unknown'} revision {revision!r}")
    return next(iter(matches.values()))


def unified_diff(old: bytes, new: bytes, old_label: str, new_label: str) -> str:
    return "".join(difflib.unified_diff(
        old.decode("utf-8", "replace").splitlines(keepends=True),
        new.decode("utf-8", "replace").splitlines(keepends=True),
        fromfile=old_label, tofile=new_label))


def _write_file(target: Path, content: bytes, path: str) -> None:
    """Write `content` to `target` through a temporary file and a rename; an existing file
    keeps its permissions (a private note stays private). On failure, one-line
    `HistoryError`, and no temporary file left in the notes folder."""
    temporary = target.with_name(f".{target.name}.bm-restore")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            mode: int | None = os.stat(target).st_mode & 0o7777
        except FileNotFoundError:
            mode = None
        temporary.write_bytes(content)
        if mode is not None:
            os.chmod(temporary, mode)
        os.replace(temporary, target)
    except OSError as error:
        with contextlib.suppress(OSError):
            temporary.unlink(missing_ok=True)
        raise HistoryError(f"cannot restore {path}: {_reason(error)}") from None


def _reason(error: OSError) -> str:
    return (error.strerror or type(error).__name__).lower()


def next_sync_records(root: Path, path: str) -> str | None:
    """What the next sync of `root` will record for `path` (a restored file, say), in words:
    "an add" (the file was gone), "a modification", "a move from OLD", or None (the content
    the last sync recorded). Read-only: a status of that one path."""
    from bm_sync.detector import Detector

    report = Detector(root).status(paths=[root / path])
    if path in report.added:
        return "an add"
    if path in report.modified:
        return "a modification"
    for old, new in report.moved:
        if new == path:
            return f"a move from {old}"
    return None
