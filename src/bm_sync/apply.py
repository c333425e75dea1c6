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
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bm_sync.changes import Change, ChangeKind, Failure
from bm_sync.hashing import is_markdown
from bm_sync.versions import VersionPolicy, VersionStore, blob_id

NOTE_MAX_BYTES = 32 << 20


@dataclass
class PreparedChange:
    """A change with the database rows it becomes (parsed outside the event loop)."""

    change: Change
    entity: dict[str, Any] | None = None
    desired_permalink: str | None = None
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
    if versions is not None and versions.wants(path, len(raw)) and (
        blob_id(raw) == change.content_id
    ):
        prepared.version = raw
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
    entity.update(title=note.title, entity_type=note.entity_type)
    prepared.desired_permalink = note.permalink or permalink_from_path(path)
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
        self.version_error: str | None = None

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
        return cls(engine, sessions, project_id, token, root, versions or VersionPolicy())

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
        run_id = self.run_id  # a rolled-back transaction must not leave a dangling run id
        try:
            async with self.sessions() as session, session.begin():
                await self._write(session, ready)
        except Exception:  # isolate the change that breaks the batch
            self.run_id = run_id
            for item in ready:
                run_id = self.run_id
                try:
                    async with self.sessions() as session, session.begin():
                        await self._write(session, [item])
                except Exception as error:  # one file's problem never aborts the run
                    self.run_id = run_id
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
            upsert_entities,
        )

        project_id = self.project_id
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
                                           self.run_started_at, changes)

    async def _assign_permalinks(self, session: Any, items: list[PreparedChange]) -> None:
        """Unique permalinks: the desired one, else `-1`, `-2`, ... (stable across syncs)."""
        from sqlalchemy import select

        from bm_sync.db.models import Entity

        wanted = [item for item in items if item.desired_permalink]
        if not wanted:
            return
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
        for item in sorted(wanted, key=lambda item: item.change.path):
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
                     new_token: bool, failed_total: int = 0) -> str:
        """Write the sync's pack of versions, resolve relations, keep the circuit breaker's
        table, mark the run completed and (re)issue the token."""
        from bm_sync.history import complete_run

        try:
            await asyncio.to_thread(self.versions.flush)
        except OSError as error:
            self.version_error = f"versions not stored: {_describe(error)}"
        from sqlalchemy import update

        from bm_sync.db.models import Project
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
            if new_token or self.token is None:
                self.token = uuid.uuid4().hex
                await session.execute(update(Project).where(Project.id == self.project_id)
                                      .values(index_token=self.token))
        return self.token or ""

    async def sweep(self, tracked: set[str]) -> list[str]:
        """Delete entities whose file the new index does not track (rebuilds only)."""
        from sqlalchemy import select

        from bm_sync.db.models import Entity
        from bm_sync.db.writes import delete_entities

        async with self.sessions() as session:
            result = await session.stream_scalars(
                select(Entity.file_path).where(Entity.project_id == self.project_id))
            stale = [path async for path in result if path not in tracked]
        for start in range(0, len(stale), 500):
            async with self.sessions() as session, session.begin():
                await delete_entities(session, self.project_id, stale[start:start + 500])
        return stale

