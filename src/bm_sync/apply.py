"""The apply stage: turn a batch of changes into one database transaction.

Everything here is idempotent, because after a crash the same changes are applied again:
an add of a path that exists is an upsert, a move whose target already holds the entity only
updates it, a delete of a missing path does nothing.

A batch that fails as a whole (a constraint, a driver error) is retried change by change, so one
bad file costs only itself. Reading and parsing notes happens in a worker thread; the event
loop only runs the database statements.
"""

from __future__ import annotations

import asyncio
import json
import mimetypes
import os
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bm_sync.changes import Change, ChangeKind, Failure, HashKind
from bm_sync.hashing import is_markdown
from bm_sync.versions import VersionPolicy, VersionStore, blob_id

NOTE_MAX_BYTES = 32 << 20


@dataclass
class PreparedChange:
    """A change with the database rows it becomes (parsed outside the event loop)."""

    change: Change
    entity: dict[str, Any] | None = None
    desired_permalink: str | None = None
    permalink_is_explicit: bool = False  # set in frontmatter: it gets first pick
    observations: list[dict[str, Any]] = field(default_factory=list)
    relations: list[dict[str, Any]] = field(default_factory=list)
    warning: str | None = None
    error: str | None = None
    version: bytes | None = None  # the bytes read, when they are the content id's blob


@dataclass
class ApplyResult:
    applied: list[Change] = field(default_factory=list)
    failed: list[tuple[Failure, Change]] = field(default_factory=list)
    warnings: list[Failure] = field(default_factory=list)


def content_type_of(path: str) -> str:
    if is_markdown(path.encode("utf-8", "surrogateescape")):
        return "text/markdown"
    return mimetypes.guess_type(path)[0] or "application/octet-stream"


def prepare(root: Path, change: Change, versions: VersionPolicy | None = None) -> PreparedChange:
    """Read and parse one added, modified or moved file into rows (runs in a worker thread).

    When `versions` wants this file and the bytes read still hash to the detected content id,
    they are kept as the version to store (no second read, no second hash of another state).
    """
    from bm_sync.markdown import parse_note, permalink_from_path

    prepared = PreparedChange(change)
    if change.kind is ChangeKind.DELETED:
        return prepared
    path = change.path
    name = path.rsplit("/", 1)[-1]
    entity: dict[str, Any] = {
        "file_path": path,
        "permalink": None,
        "title": name.rsplit(".", 1)[0] if "." in name else name,
        "entity_type": "file",
        "content_type": content_type_of(path),
        "checksum": change.content_id,
        "checksum_kind": change.hash_kind.value if change.hash_kind else None,
        "size": change.size,
        "mtime": change.mtime_ns / 1e9 if change.mtime_ns is not None else None,
    }
    prepared.entity = entity
    if entity["content_type"] != "text/markdown":
        if versions is not None and versions.wants(path, change.size):
            _keep_version(root, prepared, versions)  # e.g. .txt files, if the policy says so
        return prepared
    try:
        with open(root / path, "rb") as note:
            raw = note.read(NOTE_MAX_BYTES + 1)
    except OSError as error:
        prepared.error = _describe(error)
        return prepared
    if len(raw) > NOTE_MAX_BYTES:
        prepared.warning = f"note larger than {NOTE_MAX_BYTES >> 20} MiB: indexed, not parsed"
        entity["entity_type"] = "note"
        prepared.desired_permalink = permalink_from_path(path)
        return prepared
    prepared.version = _version_of(raw, change, versions)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        text = raw.decode("utf-8", "replace")
        prepared.warning = (f"invalid UTF-8 at byte {error.start}: indexed with replacement "
                            "characters")
    note = parse_note(text, path)
    if note.error:
        prepared.warning = note.error if prepared.warning is None else (
            f"{prepared.warning}; {note.error}")
    entity.update(title=note.title, entity_type=note.entity_type,
                  tags=json.dumps(list(note.tags)) if note.tags else None)
    prepared.desired_permalink = note.permalink or permalink_from_path(path)
    prepared.permalink_is_explicit = note.permalink is not None
    prepared.observations = [
        {"category": observation.category, "content": observation.content,
         "tags": json.dumps(list(observation.tags)), "context": observation.context}
        for observation in note.observations
    ]
    prepared.relations = [
        {"to_name": relation.target, "relation_type": relation.relation_type,
         "context": relation.context}
        for relation in note.relations
    ]
    return prepared


def _version_of(raw: bytes, change: Change, versions: VersionPolicy | None) -> bytes | None:
    """`raw` when the policy wants this file's versions and the bytes read still hash to the
    id the detector saw (no version of a state the index never recorded)."""
    if versions is not None and versions.wants(change.path, len(raw)) and (
        blob_id(raw) == change.content_id
    ):
        return raw
    return None


def _keep_version(root: Path, prepared: PreparedChange, versions: VersionPolicy) -> None:
    """Read a file that is not parsed, only to store its version. A read error only means no
    version: the entity itself needs no content."""
    try:
        with open(root / prepared.change.path, "rb") as handle:
            raw = handle.read(versions.max_bytes + 1)
    except OSError:
        return
    prepared.version = _version_of(raw, prepared.change, versions)


def _describe(error: OSError) -> str:
    from bm_sync.scan import describe_os_error

    return describe_os_error(error)


class EntityStore:
    """One project's entities in the database. Opened lazily by the sync engine."""

    def __init__(self, engine: Any, sessions: Any, project_id: int, token: str | None,
                 root: Path, versions: VersionPolicy) -> None:
        self.engine = engine
        self.sessions = sessions
        self.project_id = project_id
        self.token = token
        self.root = root
        self.version_policy = versions
        self.versions = VersionStore(root / ".basic-memory")
        self.run_id: int | None = None
        self.run_started_at = time.time()
        self.confirmed_run_id: int | None = None
        self.version_error: str | None = None
        self.last_completed_at: Any = None  # when the last completed sync finished
        self._marked_in_progress = False
        self.rebuilding = False  # this sync rebuilds (its history records real differences)

    def begin_run(self, started_at: float, confirmed_run_id: int | None,
                  rebuilding: bool) -> None:
        """Start the history run of one sync. An engine may sync many times (a watcher): each
        sync is its own run, timed from its own start. `confirmed_run_id` is the last run the
        index recorded; only rows of later (interrupted) runs can be replays."""
        self.run_id = None
        self.run_started_at = started_at
        self.confirmed_run_id = confirmed_run_id
        self.rebuilding = rebuilding
        self.version_error = None
        self._marked_in_progress = False

    async def _mark_in_progress(self, session: Any) -> None:
        """In this sync's first write transaction: clear the project's token (`finish` issues
        a new one). A sync killed after any commit leaves it cleared, and the next sync
        rebuilds: a full scan whose sweep keeps identities. Nothing short of that is exact
        once the user has also undone what the killed sync applied (moved a note back,
        reverted an edit): against the old index the file looks unchanged."""
        if self._marked_in_progress:
            return
        from sqlalchemy import update

        from bm_sync.db.models import Project

        # `updated_at` stays: it says when the last sync *completed* (the sweep's cutoff).
        await session.execute(update(Project).where(Project.id == self.project_id)
                              .values(index_token=None, updated_at=Project.updated_at))
        self._marked_in_progress = True

    @classmethod
    async def open(cls, url: str, root: Path,
                   versions: VersionPolicy | None = None) -> EntityStore:
        from sqlalchemy.ext.asyncio import async_sessionmaker

        from bm_sync.db.engine import get_or_create_project, open_database

        engine = await open_database(url)
        sessions = async_sessionmaker(engine, expire_on_commit=False)
        async with sessions() as session, session.begin():
            project = await get_or_create_project(session, root)
            project_id, token = project.id, project.index_token
            completed_at = project.updated_at  # only `finish` updates the row
        store = cls(engine, sessions, project_id, token, root, versions or VersionPolicy())
        store.last_completed_at = completed_at
        return store

    async def close(self) -> None:
        self.versions.close()
        await self.engine.dispose()

    async def read_state(self) -> Any:
        """The consistency facts, for databases the stdlib driver cannot read."""
        from sqlalchemy import func, select

        from bm_sync.db.models import Entity, SyncFailure
        from bm_sync.sync import FoundState

        async with self.sessions() as session:
            from bm_sync.db.engine import current_revision

            revision = await current_revision(session)
            count = await session.scalar(
                select(func.count()).select_from(Entity).where(
                    Entity.project_id == self.project_id))
            rows = await session.execute(
                select(SyncFailure.file_path, SyncFailure.content_id, SyncFailure.count,
                       SyncFailure.last_failed_at).where(
                    SyncFailure.project_id == self.project_id))
            failures = {path: (content_id, failed, last) for path, content_id, failed, last in rows}
        return FoundState(revision=revision, token=self.token, entity_count=count or 0,
                          failures=failures)

    async def apply(self, changes: list[Change]) -> ApplyResult:
        """Prepare and write one batch (see `prepare_all` and `write`)."""
        return await self.write(await asyncio.to_thread(self.prepare_all, changes))

    async def write(self, prepared: list[PreparedChange]) -> ApplyResult:
        """Write one prepared batch in one transaction; fall back to one per change."""
        result = ApplyResult()
        ready = []
        for item in prepared:
            if item.error is not None:
                result.failed.append((Failure(item.change.path, item.error), item.change))
            else:
                ready.append(item)
        # A rolled-back transaction must leave neither a dangling run id nor a mark it undid.
        run_id, marked = self.run_id, self._marked_in_progress
        try:
            async with self.sessions() as session, session.begin():
                await self._write(session, ready)
        except Exception:  # isolate the change that breaks the batch
            self.run_id, self._marked_in_progress = run_id, marked
            for item in ready:
                run_id, marked = self.run_id, self._marked_in_progress
                try:
                    async with self.sessions() as session, session.begin():
                        await self._write(session, [item])
                except Exception as error:  # one file's problem never aborts the run
                    self.run_id, self._marked_in_progress = run_id, marked
                    message = f"database: {type(error).__name__}: {str(error).splitlines()[0]}"
                    result.failed.append((Failure(item.change.path, message), item.change))
                else:
                    self._applied(item, result)
        else:
            for item in ready:
                self._applied(item, result)
        return result

    def prepare_all(self, changes: list[Change]) -> list[PreparedChange]:
        """Parse a batch and stage its versions for the sync's pack (in a worker thread)."""
        prepared = [prepare(self.root, change, self.version_policy) for change in changes]
        for item in prepared:
            if item.version is not None and item.change.content_id:
                try:
                    self.versions.stage(item.change.content_id, item.version)
                except OSError as error:  # versions are a bonus: never fail the sync for them
                    self.version_error = f"versions not stored: {_describe(error)}"
                item.version = None
        return prepared

    @staticmethod
    def _applied(item: PreparedChange, result: ApplyResult) -> None:
        result.applied.append(item.change)
        if item.warning:
            result.warnings.append(Failure(item.change.path, item.warning))

    async def _write(self, session: Any, items: list[PreparedChange]) -> None:
        from bm_sync.db.writes import (
            delete_entities,
            move_entity,
            replace_observations,
            replace_relations,
            unresolve_incoming,
            upsert_entities,
        )

        project_id = self.project_id
        await self._mark_in_progress(session)
        await self._record_history(session, [item.change for item in items])
        deleted = [item.change.path for item in items if item.change.kind is ChangeKind.DELETED]
        if deleted:
            await delete_entities(session, project_id, deleted)
        for item in items:
            if item.change.kind is ChangeKind.MOVED and item.change.old_path:
                await move_entity(session, project_id, item.change.old_path, item.change.path)
        rows = [item for item in items if item.entity is not None]
        if not rows:
            return
        await self._assign_permalinks(session, rows)
        ids = await upsert_entities(session, project_id, [item.entity for item in rows])
        # A note written again may have a new title or permalink (an "added" one too, in a
        # rebuild): the relations that pointed at it are resolved again at the end of the
        # sync, like every unresolved one. Indexed on to_id; a no-op for new rows.
        await unresolve_incoming(session, list(ids.values()))
        markdown = [item for item in rows if item.entity["content_type"] == "text/markdown"]
        if markdown:
            await replace_observations(session, {
                ids[item.change.path]: item.observations for item in markdown})
            await replace_relations(session, {
                ids[item.change.path]: item.relations for item in markdown})

    async def _record_history(self, session: Any, changes: list[Change]) -> None:
        """The run row and one file_change row per change, in the batch's own transaction.

        After a crash the same changes come again (the index was behind): a change identical to
        its path's latest recorded one is not recorded twice.
        """
        from bm_sync.history import record_changes

        self.run_id = await record_changes(session, self.project_id, self.run_id,
                                           self.run_started_at, changes,
                                           confirmed_run_id=self.confirmed_run_id,
                                           rebuild=self.rebuilding)

    async def _assign_permalinks(self, session: Any, items: list[PreparedChange]) -> None:
        """Unique permalinks: the desired one, else `-1`, `-2`, ... (stable across syncs).

        The batch's own notes first let go of the permalinks they hold, so two notes that swap
        permalinks, or a note that keeps its own, never collide with their old selves. Then
        permalinks set in frontmatter are served before generated ones, each group in path
        order, so the result does not depend on how changes fell into batches.
        """
        from sqlalchemy import select, update

        from bm_sync.db.models import Entity
        from bm_sync.db.writes import is_suffixed

        wanted = [item for item in items if item.desired_permalink]
        if not wanted:
            return
        paths = [item.change.path for item in wanted]
        current: dict[str, str] = {}
        for start in range(0, len(paths), 500):
            held = await session.execute(select(Entity.file_path, Entity.permalink).where(
                Entity.project_id == self.project_id, Entity.permalink.is_not(None),
                Entity.file_path.in_(paths[start:start + 500])))
            current.update({path: permalink for path, permalink in held})
            await session.execute(update(Entity).where(
                Entity.project_id == self.project_id,
                Entity.file_path.in_(paths[start:start + 500])).values(permalink=None))
        owners: dict[str, str] = {}

        async def load(permalinks: Iterable[str]) -> None:
            missing = [permalink for permalink in permalinks if permalink not in owners]
            for start in range(0, len(missing), 500):
                rows = await session.execute(
                    select(Entity.permalink, Entity.file_path).where(
                        Entity.project_id == self.project_id,
                        Entity.permalink.in_(missing[start:start + 500])))
                owners.update({permalink: path for permalink, path in rows})
                owners.update({permalink: "" for permalink in missing[start:start + 500]
                               if permalink not in owners})

        await load({item.desired_permalink for item in wanted})
        # A note whose permalink is still the one it wants (or that with a suffix) keeps it:
        # editing two notes together must not hand one's permalink to the other.
        for item in wanted:
            held = current.get(item.change.path)
            if held is not None and (held == item.desired_permalink
                                     or is_suffixed(held, item.desired_permalink)):
                owners[held] = item.change.path
                item.entity["permalink"] = held
        for item in sorted(wanted, key=lambda item: (not item.permalink_is_explicit,
                                                     item.change.path)):
            if item.entity["permalink"] is not None:
                continue
            path = item.change.path
            base = item.desired_permalink
            candidate, suffix = base, 0
            while owners.get(candidate) not in ("", path, None):
                suffix += 1
                candidate = f"{base}-{suffix}"
                await load([candidate])
            owners[candidate] = path
            item.entity["permalink"] = candidate

    async def finish(self, *, hard_failures: dict[str, tuple[str | None, str]],
                     applied_paths: set[str], failing_paths: Iterable[str],
                     failed_total: int = 0) -> str:
        """Write the sync's pack of versions, resolve relations, keep the circuit breaker's
        table, mark the run completed and (re)issue the token."""
        from bm_sync.history import complete_run

        try:
            await asyncio.to_thread(self.versions.flush)
        except Exception as error:  # versions are a bonus: the sync itself has succeeded
            reason = (_describe(error) if isinstance(error, OSError)
                      else f"{type(error).__name__}: {error}")
            self.version_error = f"versions not stored: {reason}"
        from sqlalchemy import update

        from bm_sync.db.models import Project, utc_now
        from bm_sync.db.writes import clear_failure, record_failure, resolve_relations

        async with self.sessions() as session, session.begin():
            await resolve_relations(session, self.project_id)
            for path, (content_id, error) in hard_failures.items():
                await record_failure(session, self.project_id, path, content_id, error)
            for path in set(failing_paths) & applied_paths:
                await clear_failure(session, self.project_id, path)
            if self.run_id is not None:
                await complete_run(session, self.run_id, time.time() - self.run_started_at,
                                   failed_total)
            # A new token for every sync that wrote: the index records it next, so a database
            # put back from an older copy (or another machine) no longer matches and is rebuilt.
            self.token = uuid.uuid4().hex
            self.last_completed_at = utc_now()  # a long-lived engine syncs again from here
            await session.execute(update(Project).where(Project.id == self.project_id)
                                  .values(index_token=self.token,
                                          updated_at=self.last_completed_at))
        return self.token

    async def rows(self, paths: list[str]) -> list[tuple[str, str, HashKind, int, int]]:
        """(path, checksum, hash kind, size, mtime_ns) of the entities at these paths."""
        from sqlalchemy import select

        from bm_sync.db.models import Entity

        found = []
        async with self.sessions() as session:
            for start in range(0, len(paths), 500):
                result = await session.execute(
                    select(Entity.file_path, Entity.checksum, Entity.checksum_kind,
                           Entity.size, Entity.mtime).where(
                        Entity.project_id == self.project_id,
                        Entity.file_path.in_(paths[start:start + 500])))
                for path, checksum, kind, size, mtime in result:
                    if checksum and len(checksum) == 40:
                        found.append((path, checksum, HashKind(kind or "full"), size or 0,
                                      int((mtime or 0) * 1e9)))
        return found

    async def sweep(self, tracked: set[str], unexamined: tuple[str, ...] = ()
                    ) -> tuple[list[tuple[str, str]], list[str], list[str]]:
        """After a rebuild: settle the entities whose file the new index does not track.

        A rebuild starts from an empty baseline, so a file moved while the index was lost (or
        behind, after a crash) came back as a new row. The detector's own move rules pair
        those stale rows with the rows inserted since the last completed sync: same content
        id, same frontmatter permalink, or similar lines (the recorded sketch of the stale
        row's content against the file on disk). The inode rule needs the lost index, so it
        sits this one out. A paired old row keeps its id, incoming relations and history and
        takes the new row's path and content (`adopt_entity`); every other stale row is
        deleted. Both are recorded in the run's history. Rows below a folder the scan could not
        examine (`unexamined` prefixes) are kept whatever: a failure never turns into a
        deletion. Returns (moves, deleted, kept).
        """
        from sqlalchemy import select

        from bm_sync.db.models import Entity
        from bm_sync.db.writes import adopt_entity, delete_entities

        async with self.sessions() as session:
            result = await session.stream(
                select(Entity.file_path, Entity.checksum).where(
                    Entity.project_id == self.project_id))
            untracked = {path: checksum async for path, checksum in result
                         if path not in tracked}
        kept = sorted(path for path in untracked if unexamined and path.startswith(unexamined))
        stale = {path: checksum for path, checksum in untracked.items() if path not in kept}
        if not stale:
            return [], [], kept
        recent = await self._created_since_last_sync()
        fresh = {path: checksum for path, checksum in recent.items() if path not in stale}
        # A stale row that is itself recent was inserted by an interrupted run: no completed
        # sync ever confirmed its identity, so it is swept, never the one that lives on.
        confirmed = {path: checksum for path, checksum in stale.items() if path not in recent}
        earlier = await self._earlier_contents(list(confirmed))
        pairs = await asyncio.to_thread(self._pair_stale_rows, confirmed, fresh, earlier)
        moved_from = {old for old, _new in pairs}
        deleted = sorted(path for path in stale if path not in moved_from)
        for start in range(0, len(pairs), 200):
            chunk = pairs[start:start + 200]
            async with self.sessions() as session, session.begin():
                await self._mark_in_progress(session)
                for old, new in chunk:
                    await adopt_entity(session, self.project_id, old, new)
                await self._forget_added(session, [new for _old, new in chunk])
                await self._record_history(session, [
                    Change(ChangeKind.MOVED, new, old, fresh[new]) for old, new in chunk])
        for start in range(0, len(deleted), 500):
            chunk = deleted[start:start + 500]
            async with self.sessions() as session, session.begin():
                await self._mark_in_progress(session)
                await delete_entities(session, self.project_id, chunk)
                await self._record_history(session, [Change(ChangeKind.DELETED, path)
                                                     for path in chunk])
        return pairs, deleted, kept

    async def _earlier_contents(self, paths: list[str]) -> dict[str, list[str]]:
        """path -> the content ids its history recorded, newest first. A stale row's own
        checksum may come from an edit a killed sync committed, whose sketch was never
        recorded; the note's earlier content still tells what its lines looked like."""
        from sqlalchemy import select

        from bm_sync.db.models import FileChange

        earlier: dict[str, list[str]] = {}
        async with self.sessions() as session:
            for start in range(0, len(paths), 500):
                rows = await session.execute(
                    select(FileChange.path, FileChange.content_id).where(
                        FileChange.project_id == self.project_id,
                        FileChange.path.in_(paths[start:start + 500]),
                        FileChange.content_id.is_not(None))
                    .order_by(FileChange.id.desc()))
                for path, content_id in rows:
                    earlier.setdefault(path, []).append(content_id)
        return earlier

    def _pair_stale_rows(self, stale: dict[str, str | None], fresh: dict[str, str | None],
                         earlier: dict[str, list[str]]) -> list[tuple[str, str]]:
        """(old path, new path) moves among stale and fresh rows, by `renames.pair_moves`."""
        from bm_sync.detector import SKETCH_FILE, STATE_DIR
        from bm_sync.markdown import frontmatter_permalink
        from bm_sync.renames import MoveCandidate, pair_moves
        from bm_sync.sketch import SketchStore, compute_sketch

        if not fresh:
            return []
        sketches = SketchStore(self.root / STATE_DIR / SKETCH_FILE, writable=False)
        read_heads = len(fresh) <= 10_000  # the permalink rule reads each new note's head

        def content_id(checksum: str | None) -> bytes:
            try:
                return bytes.fromhex(checksum or "")
            except ValueError:
                return b""

        def encoded(path: str) -> bytes:
            return path.encode("utf-8", "surrogateescape")

        def new_permalink(path: str) -> str | None:
            if not read_heads or not is_markdown(encoded(path)):
                return None
            try:
                with open(self.root / path, "rb") as note:
                    return frontmatter_permalink(note.read(64 << 10))
            except OSError:
                return None

        def old_sketch(candidate: MoveCandidate) -> bytes | None:
            for checksum in (candidate.content_id.hex(),
                             *earlier.get(os.fsdecode(candidate.path), ())):
                known = sketches.get(content_id(checksum))
                if known is not None:
                    return known[1]
            return None

        def new_sketch(candidate: MoveCandidate) -> bytes | None:
            try:
                with open(self.root / os.fsdecode(candidate.path), "rb") as note:
                    return compute_sketch(note.read(1 << 20))
            except OSError:
                return None

        try:
            # dev/ino -1 and -2: never equal, the inode rule cannot apply without the index.
            olds = []
            for path, checksum in stale.items():
                old_id = content_id(checksum)
                known = sketches.get(old_id) if old_id else None
                olds.append(MoveCandidate(encoded(path), old_id, -1, -1,
                                          permalink=known[0] if known else None))
            news = [MoveCandidate(encoded(path), content_id(checksum), -2, -2,
                                  permalink=new_permalink(path))
                    for path, checksum in fresh.items()]
            # Few stale rows against many new ones (everything an interrupted rebuild inserted)
            # costs stale x postings with the inverted index: the cap applies to the stale side.
            limit = max(1000, len(news)) if len(olds) <= 1000 and len(news) <= 50_000 else 1000
            moves, _deleted, _added = pair_moves(
                olds, news, old_sketch=old_sketch, new_sketch=new_sketch, rename_limit=limit)
        finally:
            sketches.close()
        return [(os.fsdecode(move.old.path), os.fsdecode(move.new.path)) for move in moves]

    async def _created_since_last_sync(self) -> dict[str, str | None]:
        """path -> checksum of the rows inserted since the last completed sync: by this run,
        or by interrupted runs before it (a killed rebuild already wrote the new paths; the
        rows it would have swept are still there)."""
        from datetime import UTC, datetime

        from sqlalchemy import select

        from bm_sync.db.models import Entity

        since = self.last_completed_at or datetime.fromtimestamp(0, UTC)
        async with self.sessions() as session:
            result = await session.stream(select(Entity.file_path, Entity.checksum).where(
                Entity.project_id == self.project_id, Entity.created_at >= since))
            return {path: checksum async for path, checksum in result}

    async def _forget_added(self, session: Any, paths: list[str]) -> None:
        """Drop the `added` history rows of paths the sweep turned into moves: this run's, and
        those of interrupted runs (a killed rebuild had recorded the new path as an add). The
        move row is the one true account; each run's counts follow."""
        if not paths:
            return
        from sqlalchemy import delete, func, or_, select, update

        from bm_sync.db.models import FileChange, SyncRun

        unfinished = select(SyncRun.id).where(SyncRun.project_id == self.project_id,
                                              SyncRun.status != "completed")
        condition = (or_(FileChange.run_id == (self.run_id or -1),
                         FileChange.run_id.in_(unfinished)),
                     FileChange.kind == "added", FileChange.path.in_(paths))
        counts = await session.execute(select(FileChange.run_id, func.count())
                                       .where(*condition).group_by(FileChange.run_id))
        for run_id, count in counts.all():
            await session.execute(update(SyncRun).where(SyncRun.id == run_id)
                                  .values(added=SyncRun.added - count))
        await session.execute(delete(FileChange).where(*condition))
