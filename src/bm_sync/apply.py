"""The apply stage: parse a batch of changes into rows, then write it in one transaction.

Everything here is idempotent, because after a crash the same changes are applied again
(`bm_sync.runs` tells the whole story): an add of a path that exists is an upsert, a move whose
target already holds the entity only updates it, a delete of a missing path does nothing.

A batch that fails as a whole (a constraint, a driver error) is retried change by change, so one
bad file costs only itself. Reading and parsing notes happens in a worker thread
(`prepare_batch`); the event loop only runs the database statements (`BatchWriter.write`).
"""

from __future__ import annotations

import json
import mimetypes
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bm_sync.changes import Change, ChangeKind, Failure, HashKind
from bm_sync.db import search as search_rows
from bm_sync.db import writes
from bm_sync.db.session import ProjectDatabase
from bm_sync.errors import describe_os_error
from bm_sync.hashing import blob_id, is_markdown
from bm_sync.known_targets import KnownTargets
from bm_sync.markdown import parse_note, permalink_from_path, title_from_path
from bm_sync.runs import RunLog
from bm_sync.search import SearchDoc, note_body, search_doc
from bm_sync.versions import VersionPolicy, VersionStore

NOTE_MAX_BYTES = 32 << 20
MARKDOWN = "text/markdown"
CHANGED_DURING_SYNC = "changed during sync: not indexed; the next sync reads it again"


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
    search: SearchDoc | None = None  # what the search index holds of it (search on)


@dataclass
class BatchResult:
    """What one batch did: changes applied, those of them the history recorded (as recorded:
    a rebuild's re-add of an unchanged file is no change, of an edited one a modification),
    changes that failed (not applied), and warnings about changes applied all the same (a
    note indexed with broken frontmatter)."""

    applied: list[Change] = field(default_factory=list)
    recorded: list[Change] = field(default_factory=list)
    failed: list[tuple[Failure, Change]] = field(default_factory=list)
    warnings: list[Failure] = field(default_factory=list)


def content_type_of(path: str) -> str:
    if is_markdown(path.encode("utf-8", "surrogateescape")):
        return MARKDOWN
    return mimetypes.guess_type(path)[0] or "application/octet-stream"


def prepare(root: Path, change: Change, versions: VersionPolicy | None = None,
            search_project: int | None = None) -> PreparedChange:
    """Read and parse one added, modified or moved file into rows (runs in a worker thread).

    When `versions` wants this file and the bytes read still hash to the detected content id,
    they are kept as the version to store (no second read, no second hash of another state).
    With `search_project` (search on), the search document is built here too, off the loop.
    """
    prepared = _prepare(root, change, versions, search_project)
    if search_project is not None and prepared.entity is not None and prepared.error is None:
        if prepared.search is None:  # a file, or a note too large to parse: name and path
            entity = prepared.entity
            prepared.search = search_doc(project_id=search_project, path=change.path,
                                         title=entity["title"],
                                         entity_type=entity["entity_type"],
                                         permalink=prepared.desired_permalink)
    return prepared


def _prepare(root: Path, change: Change, versions: VersionPolicy | None,
             search_project: int | None) -> PreparedChange:
    prepared = PreparedChange(change)
    if change.kind is ChangeKind.DELETED:
        return prepared
    path = change.path
    entity: dict[str, Any] = {
        "file_path": path,
        "permalink": None,
        "title": title_from_path(path),
        "entity_type": "file",
        "content_type": content_type_of(path),
        "checksum": change.content_id,
        "checksum_kind": change.hash_kind.value if change.hash_kind else None,
        "size": change.size,
        "mtime": change.mtime_ns / 1e9 if change.mtime_ns is not None else None,
    }
    prepared.entity = entity
    if entity["content_type"] != MARKDOWN:
        if versions is not None and versions.wants(path, change.size):
            _keep_version(root, prepared, versions)  # e.g. .txt files, if the policy says so
        return prepared
    # The detector hands over the bytes it hashed (a file is read once); a change held back
    # for move pairing comes without them and is read again, then checked against its id.
    raw = change.content
    if raw is None:
        try:
            with open(root / path, "rb") as handle:
                raw = handle.read(NOTE_MAX_BYTES + 1)
        except OSError as error:
            prepared.error = describe_os_error(error)
            return prepared
    if len(raw) > NOTE_MAX_BYTES:
        prepared.warning = f"note larger than {NOTE_MAX_BYTES >> 20} MiB: indexed, not parsed"
        entity["entity_type"] = "note"
        prepared.desired_permalink = permalink_from_path(path)
        return prepared
    # The row must describe the content whose id is recorded: bytes read after the hash was
    # taken may be another version (the file was edited in between).
    matches_id = change.content is not None or blob_id(raw) == change.content_id
    if change.hash_kind is HashKind.FULL and not matches_id:
        prepared.error = CHANGED_DURING_SYNC
        return prepared
    if matches_id and versions is not None and versions.wants(path, len(raw)):
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
    if search_project is not None:
        # The desired permalink: a conflict's `-1` is settled later, and may change again.
        prepared.search = search_doc(
            project_id=search_project, path=path, title=note.title,
            entity_type=note.entity_type, permalink=prepared.desired_permalink, tags=note.tags,
            body=note_body(text), categories=(item.category for item in note.observations))
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


class BatchWriter:
    """Writes prepared batches of one project, each in one transaction, with their history."""

    def __init__(self, root: Path, database: ProjectDatabase, run_log: RunLog,
                 versions: VersionStore, version_policy: VersionPolicy, *,
                 search: bool = True) -> None:
        self.root = root
        self.search = search  # keep the search index (the same transactions as the rows)
        self.database = database
        self.run_log = run_log
        self.versions = versions
        self.version_policy = version_policy
        self.version_error: str | None = None
        # path -> the held permalink its frontmatter claimed: reported by `settle_permalinks`
        # only if the note still does not have it when the sync ends.
        self.claims: dict[str, str] = {}
        # What this sync's writes can make resolvable: `resolve_relations` looks at these only.
        self.relation_targets = writes.RelationTargets()
        # Whether the project held no entity when this sync first wrote (a first sync): then
        # an added path has no row, permalink, observation or incoming relation to replace,
        # and the statements that would look for them are skipped. Known at the first write.
        self.fresh: bool | None = None
        # A first sync's relations naming a note already written go in resolved.
        self.known = KnownTargets()

    def prepare_batch(self, changes: list[Change]) -> list[PreparedChange]:
        """Parse a batch and stage its versions for the sync's pack (in a worker thread)."""
        search_project = self.database.project_id if self.search else None
        prepared = [prepare(self.root, change, self.version_policy, search_project)
                    for change in changes]
        for item in prepared:
            if item.version is not None and item.change.content_id:
                try:
                    self.versions.stage(item.change.content_id, item.version)
                except OSError as error:  # versions are a bonus: never fail the sync for them
                    self.version_error = f"versions not stored: {describe_os_error(error)}"
                item.version = None
        return prepared

    async def write(self, prepared: list[PreparedChange]) -> BatchResult:
        """Write one prepared batch in one transaction; fall back to one per change."""
        result = BatchResult()
        ready = []
        for item in prepared:
            if item.error is not None:
                result.failed.append((Failure(item.change.path, item.error), item.change))
            else:
                ready.append(item)
        # A rolled-back transaction must leave neither a dangling run id nor a mark it undid,
        # nor a note it wrote known as a relation target.
        before, known_before = self.run_log.checkpoint(), self.known.checkpoint()
        try:
            async with self.database.sessions() as session, session.begin():
                recorded = await self._write(session, ready)
        except Exception:  # isolate the change that breaks the batch
            self.run_log.roll_back(before)
            self.known.roll_back(known_before)
            self.database.raise_if_lost()  # a lost server is the run's end, not one file's
            for item in ready:
                before, known_before = self.run_log.checkpoint(), self.known.checkpoint()
                try:
                    async with self.database.sessions() as session, session.begin():
                        recorded = await self._write(session, [item])
                except Exception as error:  # one file's problem never aborts the run
                    self.run_log.roll_back(before)
                    self.known.roll_back(known_before)
                    self.database.raise_if_lost()
                    message = f"database: {type(error).__name__}: {str(error).splitlines()[0]}"
                    result.failed.append((Failure(item.change.path, message), item.change))
                else:
                    _applied(item, result)
                    result.recorded.extend(recorded)
        else:
            for item in ready:
                _applied(item, result)
            result.recorded.extend(recorded)
        self.known.committed()
        return result

    async def _write(self, session: AsyncSession, items: list[PreparedChange]) -> list[Change]:
        """Write `items`; return the changes as the history recorded them."""
        project_id = self.database.project_id
        if self.fresh is None:  # rolled back with the transaction if it fails: still true
            self.fresh = not await writes.project_has_entities(session, project_id)
            self.relation_targets.everything = self.fresh
        # Each path comes once per sync: an add into a fresh project meets no row of its own.
        new = self.fresh and all(item.change.kind is ChangeKind.ADDED for item in items)
        if self.fresh and not new:
            self.known.off = True
        if self.known.off:
            # Relations held back go in unresolved, before anything this batch deletes, as
            # they would have in their own batches (no longer held once this commits).
            await writes.replace_relations(session, self.known.held(), new_entities=True)
        await self.run_log.mark_in_progress(session)
        recorded = await self.run_log.record(session, [item.change for item in items])
        deleted = [item.change.path for item in items if item.change.kind is ChangeKind.DELETED]
        # Documents first: an entity with one cannot be deleted (no cascade, on purpose), and
        # a move onto a path replaces the entity there. Search off: the sync's start cleared
        # them, and this finds none.
        replaced = [item.change.path for item in items if item.change.kind is ChangeKind.MOVED]
        if deleted or replaced:
            await search_rows.delete_docs_at(session, project_id, deleted + replaced)
        if deleted:
            await writes.delete_entities(session, project_id, deleted, self.relation_targets)
        for item in items:
            if item.change.kind is ChangeKind.MOVED and item.change.old_path:
                await writes.move_entity(session, project_id, item.change.old_path,
                                         item.change.path)
                self.relation_targets.wrote(item.change.path, None, None)
        # Path order: entity ids follow the tree, not the order hashing finished in.
        rows = sorted((item for item in items if item.entity is not None),
                      key=lambda item: item.change.path)
        if not rows:
            return recorded
        unsettled = await self._assign_permalinks(session, rows, new)
        ids = await writes.upsert_entities(session, project_id,
                                           [item.entity for item in rows if item.entity])
        # Remembered on the row, in this transaction: any later sync's end may settle it.
        await writes.set_wanted_permalinks(
            session, project_id, unsettled,
            [] if new else [item.change.path for item in rows
                            if item.change.path not in unsettled])
        # A note written again may have a new title or permalink (an "added" one too, in a
        # rebuild): the relations that pointed at it are resolved again at the end of the
        # sync, like every unresolved one. Indexed on to_id; a no-op for new rows.
        if not new:
            await writes.unresolve_incoming(session, list(ids.values()), self.relation_targets)
        for item in rows:
            if item.entity:
                self.relation_targets.wrote(item.change.path, item.entity["title"],
                                            item.entity["permalink"])
                if new:
                    self.known.wrote(ids[item.change.path], item.change.path,
                                     item.entity["title"], item.entity["permalink"])
        markdown = [item for item in rows
                    if item.entity and item.entity["content_type"] == MARKDOWN]
        if markdown:
            await writes.replace_observations(session, {
                ids[item.change.path]: item.observations for item in markdown},
                new_entities=new)
            relations = {ids[item.change.path]: item.relations for item in markdown}
            await writes.replace_relations(
                session, self.known.hold(relations) if new else relations,
                new_entities=new, resolve=self.known.guess if new else None)
            self.relation_targets.from_ids.update(ids[item.change.path] for item in markdown)
        if self.search:
            await search_rows.replace_docs(session, project_id, {
                ids[item.change.path]: item.search for item in rows if item.search is not None})
        return recorded

    async def _assign_permalinks(self, session: AsyncSession, items: list[PreparedChange],
                                 new: bool = False) -> dict[str, tuple[str, bool]]:
        """Unique permalinks: the desired one, else `-1`, `-2`, ... (stable across syncs).
        Returns path -> (the permalink it wants, set in frontmatter?) for the notes that did
        not get it (`settle_permalinks` hands it over once it is free).

        The batch's own notes first let go of the permalinks they hold, so two notes that swap
        permalinks, or a note that keeps its own, never collide with their old selves. Then
        permalinks set in frontmatter are served before generated ones, each group in path
        order. `new`: the items' paths have no rows yet (nothing to let go of).
        """
        unsettled: dict[str, tuple[str, bool]] = {}
        wanted = [item for item in items if item.desired_permalink and item.entity]
        if not wanted:
            return unsettled
        project_id = self.database.project_id
        held = {} if new else await writes.release_permalinks(
            session, project_id, [item.change.path for item in wanted])
        owners: dict[str, str] = {}  # permalink -> owner path; "" once known to be free
        loaded: set[str] = set()

        async def load(permalinks: list[str]) -> None:
            missing = [permalink for permalink in permalinks if permalink not in loaded]
            loaded.update(missing)
            found = await writes.permalink_owners(session, project_id, missing)
            for permalink in missing:
                owners.setdefault(permalink, found.get(permalink, ""))

        await load(sorted({item.desired_permalink for item in wanted
                           if item.desired_permalink}))
        # A note whose permalink is still the one it wants (or that with a suffix) keeps it:
        # editing two notes together must not hand one's permalink to the other.
        for item in wanted:
            current = held.get(item.change.path)
            desired = item.desired_permalink or ""
            if item.entity is not None and current is not None and (
                    current == desired or writes.is_suffixed(current, desired)):
                owners[current] = item.change.path
                item.entity["permalink"] = current
        for item in sorted(wanted, key=lambda item: (not item.permalink_is_explicit,
                                                     item.change.path)):
            if item.entity is None or item.entity["permalink"] is not None:
                continue
            path = item.change.path
            base = item.desired_permalink or ""
            current = held.get(path)
            holder = owners.get(base)
            if item.permalink_is_explicit and current is not None and holder not in (
                    "", path, None):
                # An edit claims a permalink another note holds: the note keeps its own (links
                # to it keep working) and the claim is reported.
                await load([current])
                if owners.get(current) in ("", path, None):
                    owners[current] = path
                    item.entity["permalink"] = current
                    self.claims[path] = base
                    unsettled[path] = (base, True)
                    continue
            candidate, suffix = base, 0
            while owners.get(candidate) not in ("", path, None):
                suffix += 1
                candidate = f"{base}-{suffix}"
                await load([candidate])
            owners[candidate] = path
            item.entity["permalink"] = candidate
            if candidate != base:
                unsettled[path] = (base, item.permalink_is_explicit)
        for item in wanted:
            desired = item.desired_permalink or ""
            if item.entity is not None and item.entity["permalink"] != desired:
                unsettled.setdefault(item.change.path, (desired, item.permalink_is_explicit))
        return unsettled

    async def settle_permalinks(self, session: AsyncSession) -> list[Failure]:
        """Settle the permalinks (`_settle_permalinks`), then unresolve the relations this sync
        inserted resolved whose target a later write put in doubt (`KnownTargets`): the
        resolution that follows in this transaction resolves them by the rules."""
        refused = await self._settle_permalinks(session)
        await writes.replace_relations(session, self.known.take_held(), new_entities=True,
                                       resolve=self.known.guess)
        if self.known.guessed:
            project_id = self.database.project_id
            await writes.unresolve_names(
                session, project_id, None if self.known.off else sorted(self.known.doubtful))
        self.known.forget()
        return refused

    async def _settle_permalinks(self, session: AsyncSession) -> list[Failure]:
        """At the end of a sync: each note that did not get the permalink it wants (in this
        sync or any earlier one: the row remembers it) gets it now if it is free (its holder
        was deleted, moved away, or let it go in a later batch), frontmatter permalinks first,
        then in path order, as a fresh sync serves them. So two notes swapping permalinks, or
        one claiming the permalink of a note deleted in this sync or a later one, end as a
        fresh sync of the tree ends, however the changes fell into batches and syncs.

        A note holding the permalink it wants keeps it (links stay stable): when two notes
        want one permalink, the one that got it first keeps it, where a fresh sync would give
        it to the first in that order. That is the only way a long history differs from a
        fresh sync.

        Returns the claims of this sync still refused once everything is settled (a note whose
        frontmatter asks for a permalink another note keeps), one warning each: a claim that a
        later batch made good (a swap) is no conflict and says nothing."""
        claims, self.claims = self.claims, {}
        project_id = self.database.project_id
        unsettled = await writes.wanted_permalinks(session, project_id)
        if not unsettled:
            return []
        pending = sorted(unsettled.items(), key=lambda entry: (not entry[1][1], entry[0]))
        # Let go of them all first: a cycle (two notes swapping) settles only together.
        held = await writes.release_permalinks(session, project_id,
                                               [path for path, _wish in pending])
        self.known.doubtful.update(held.values())  # relations naming them are resolved again
        owners = await writes.permalink_owners(
            session, project_id,
            sorted({desired for _path, (desired, _) in pending} | set(held.values())))
        unserved = []
        settled = []
        for path, (desired, _explicit) in pending:
            if desired in owners:
                unserved.append((path, desired))
            else:
                owners[desired] = path
                settled.append(path)
                await writes.set_permalink(session, project_id, path, desired)
                self.relation_targets.names.add(desired)
                self.known.doubtful.add(desired)
        await writes.set_wanted_permalinks(session, project_id, {}, settled)
        refused = []
        for path, desired in unserved:  # what it held, if still free, else the next suffix
            candidate, suffix = held.get(path), 0
            while candidate is None or candidate in owners:
                suffix += 1
                candidate = f"{desired}-{suffix}"
                owners.update(await writes.permalink_owners(session, project_id, [candidate]))
            owners[candidate] = path
            await writes.set_permalink(session, project_id, path, candidate)
            self.relation_targets.names.add(candidate)
            self.known.doubtful.add(candidate)
            if claims.get(path) == desired:
                refused.append(Failure(path, f"permalink {desired!r} is held by "
                                             f"{owners[desired]}; keeps {candidate!r}"))
        return refused


def _applied(item: PreparedChange, result: BatchResult) -> None:
    result.applied.append(item.change)
    if item.warning:
        result.warnings.append(Failure(item.change.path, item.warning))
