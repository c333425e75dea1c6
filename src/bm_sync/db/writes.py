"""Entity writes and reads of one project: what one sync transaction does to its entities.

Each write is safe to repeat (a crashed sync re-applies the same changes): upserts on the
(project, path) key, moves that find the entity already moved, deletes of missing paths.
Every list goes through `batches.chunks`, sized by the dialect's parameter limit.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import delete, exists, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from bm_sync.db.batches import append_rows, chunks, upsert
from bm_sync.db.models import Entity, Observation, Relation, utc_now
from bm_sync.hashing import MARKDOWN_SUFFIXES

# How many notes with unresolved links make a bulk load worth fresh planner statistics.
ANALYZE_AFTER = 500
ENTITY_TABLE = Entity.metadata.tables["entity"]
OBSERVATION_TABLE = Observation.metadata.tables["observation"]
OBSERVATION_COLUMNS = ("entity_id", "category", "content", "tags", "context")
RELATION_TABLE = Relation.metadata.tables["relation"]
RELATION_COLUMNS = ("from_id", "to_id", "to_name", "relation_type", "context")
ENTITY_COLUMNS = ("file_path", "permalink", "title", "entity_type", "content_type", "checksum",
                  "checksum_kind", "size", "mtime", "tags")


@dataclass(frozen=True, slots=True)
class StoredFile:
    """What an entity row says of its file: enough to rebuild the file's index entry."""

    path: str
    checksum: str | None
    checksum_kind: str | None
    size: int | None
    mtime: float | None


@dataclass(slots=True)
class RelationTargets:
    """What one sync did that can make unresolved relations resolvable: the notes it wrote
    (their relations were inserted unresolved), the names of the notes it wrote or moved (a
    relation naming them may now find them), and the relations it unresolved (their target
    went away; another note of that name may take them). `resolve_relations` looks at these
    alone, so a sync of one note does not re-try every dangling link of the project."""

    from_ids: set[int] = field(default_factory=set)
    names: set[str] = field(default_factory=set)
    relation_ids: set[int] = field(default_factory=set)
    # The sync started from a project without entities (a first sync): every relation of the
    # project is one it wrote, so "every unresolved relation of the project" is the same set,
    # named by one condition instead of tens of thousands of ids.
    everything: bool = False

    def wrote(self, path: str, title: str | None, permalink: str | None) -> None:
        """A note now at `path` under this title and permalink: every name a link may use."""
        self.names.add(path)
        for suffix in MARKDOWN_SUFFIXES:
            if path.endswith(suffix.decode()):
                self.names.add(path[:-len(suffix)])
        self.names.update(name for name in (title, permalink) if name)


async def upsert_entities(session: AsyncSession, project_id: int,
                          rows: list[dict[str, Any]]) -> dict[str, int]:
    """Insert or update entities keyed by (project, file_path); return file_path -> id."""
    now = utc_now()
    values = [{**{column: row.get(column) for column in ENTITY_COLUMNS},
               "project_id": project_id, "created_at": now, "updated_at": now} for row in rows]
    ids = await upsert(session, ENTITY_TABLE, values, ("project_id", "file_path"),
                       (*ENTITY_COLUMNS, "updated_at"))
    return {path: entity_id for (_project, path), entity_id in ids.items()}


async def project_has_entities(session: AsyncSession, project_id: int) -> bool:
    """Whether the project holds any entity (an indexed probe, not a count)."""
    found = await session.scalar(select(Entity.id).where(Entity.project_id == project_id)
                                 .limit(1))
    return found is not None


async def replace_observations(session: AsyncSession,
                               rows_by_entity: dict[int, list[dict[str, Any]]], *,
                               new_entities: bool = False) -> None:
    """Replace all observations of these entities with the given rows. `new_entities`: the
    entities were inserted in this transaction, so they have none to delete."""
    if not new_entities:
        for chunk in chunks(session, list(rows_by_entity)):
            await session.execute(delete(Observation).where(Observation.entity_id.in_(chunk)))
    await append_rows(session, OBSERVATION_TABLE, OBSERVATION_COLUMNS, [
        (entity_id, row["category"], row["content"], row["tags"], row["context"])
        for entity_id, entity_rows in rows_by_entity.items() for row in entity_rows])


async def replace_relations(session: AsyncSession,
                            rows_by_entity: dict[int, list[dict[str, Any]]], *,
                            new_entities: bool = False,
                            resolve: Callable[[str], int | None] | None = None) -> None:
    """Replace all outgoing relations of these entities. New ones start unresolved, or with
    `resolve` (a first sync's `KnownTargets.guess`) pointing at the target it names, if known.
    `new_entities`: as for `replace_observations`."""
    if not new_entities:
        for chunk in chunks(session, list(rows_by_entity)):
            await session.execute(delete(Relation).where(Relation.from_id.in_(chunk)))
    await append_rows(session, RELATION_TABLE, RELATION_COLUMNS, [
        (entity_id, resolve(row["to_name"]) if resolve else None, row["to_name"],
         row["relation_type"], row["context"])
        for entity_id, entity_rows in rows_by_entity.items() for row in entity_rows])


async def move_entity(session: AsyncSession, project_id: int, old_path: str,
                      new_path: str) -> int | None:
    """Give the entity at `old_path` the path `new_path`, keeping its id.

    Idempotent: if the move already happened (only `new_path` exists) nothing changes. If both
    exist (a crash left an add of the new path behind), the entity that was at `old_path` is
    kept, because it carries the identity (incoming relations, history), and the other goes.
    """
    old_id = await _entity_id(session, project_id, old_path)
    new_id = await _entity_id(session, project_id, new_path)
    if old_id is None:
        return new_id
    if new_id is not None:
        await delete_entities(session, project_id, [new_path])
    await session.execute(update(Entity).where(Entity.id == old_id).values(
        file_path=new_path, updated_at=utc_now()))
    return old_id


async def adopt_entity(session: AsyncSession, project_id: int, old_path: str,
                       new_path: str) -> None:
    """The row at `new_path` is the note that was at `old_path` (a move a rebuild found): keep
    the old row's id (its incoming relations, its history) and give it the new row's content,
    observations and outgoing relations, so the result equals what a fresh sync builds."""
    old = (await session.execute(select(Entity.id, Entity.permalink).where(
        Entity.project_id == project_id, Entity.file_path == old_path))).first()
    new = (await session.execute(select(Entity).where(
        Entity.project_id == project_id, Entity.file_path == new_path))).scalar_one_or_none()
    if old is None or new is None:
        return
    old_id, old_permalink = old
    values = {column: getattr(new, column) for column in ENTITY_COLUMNS}
    if old_permalink and is_suffixed(values["permalink"], old_permalink):
        values["permalink"] = old_permalink  # the new row was only kept off its own permalink
    new_id = new.id
    await session.execute(delete(Relation).where(Relation.from_id == old_id))
    await session.execute(delete(Observation).where(Observation.entity_id == old_id))
    await session.execute(update(Relation).where(Relation.from_id == new_id)
                          .values(from_id=old_id))
    await session.execute(update(Relation).where(Relation.to_id == new_id).values(to_id=old_id))
    await session.execute(update(Observation).where(Observation.entity_id == new_id)
                          .values(entity_id=old_id))
    await session.execute(delete(Entity).where(Entity.id == new_id))
    await session.execute(update(Entity).where(Entity.id == old_id)
                          .values(**values, updated_at=utc_now()))


async def delete_entities(session: AsyncSession, project_id: int, paths: Sequence[str],
                          targets: RelationTargets | None = None) -> None:
    """Delete entities with their observations and outgoing relations; incoming relations
    become unresolved (to_id NULL, to_name kept), whether or not the database enforces
    foreign keys, and are noted in `targets`."""
    for chunk in chunks(session, paths):
        ids = list(await session.scalars(select(Entity.id).where(
            Entity.project_id == project_id, Entity.file_path.in_(chunk))))
        if not ids:
            continue
        await _unresolve(session, ids, targets)
        await session.execute(delete(Relation).where(Relation.from_id.in_(ids)))
        await session.execute(delete(Observation).where(Observation.entity_id.in_(ids)))
        await session.execute(delete(Entity).where(Entity.id.in_(ids)))


async def unresolve_incoming(session: AsyncSession, entity_ids: list[int],
                             targets: RelationTargets | None = None) -> None:
    """Mark the relations pointing at these entities unresolved (to be resolved again)."""
    for chunk in chunks(session, entity_ids):
        await _unresolve(session, chunk, targets)


async def _unresolve(session: AsyncSession, entity_ids: list[int],
                     targets: RelationTargets | None) -> None:
    if targets is not None:
        targets.relation_ids.update(await session.scalars(
            select(Relation.id).where(Relation.to_id.in_(entity_ids))))
    await session.execute(update(Relation).where(Relation.to_id.in_(entity_ids))
                          .values(to_id=None))


async def unresolve_names(session: AsyncSession, project_id: int,
                          names: Sequence[str] | None) -> None:
    """Unresolve the project's relations naming any of `names` (by the to_name index), or
    with None every relation of the project."""
    resolved = (Relation.to_id.is_not(None),
                Relation.from_id.in_(select(Entity.id).where(Entity.project_id == project_id)))
    by_name = ([[Relation.to_name.in_(chunk)] for chunk in chunks(session, names)]
               if names is not None else [[]])
    for condition in by_name:
        await session.execute(update(Relation).where(*resolved, *condition).values(to_id=None)
                              .execution_options(synchronize_session=False))


async def resolve_relations(session: AsyncSession, project_id: int,
                            targets: RelationTargets | None = None) -> None:
    """Point unresolved relations at their target: by permalink, then title, then path
    (with or without `.md`); among several matches (two notes titled alike) the first by
    path, so the result depends on the tree, not on the order rows were inserted. Then
    collapse the edges that now repeat (`[[Target Entity]]` and `[[target]]` naming one note
    with one relation type are one relation), among the notes whose relations were just
    resolved. Set-based: one statement per rule (and chunk).

    With `targets` (what this sync wrote), only the relations it could have made resolvable
    are tried: a dangling link no write of this sync names stays as it was. Without, every
    unresolved relation of the project is (a rebuild; a first sync, `targets.everything`),
    and the repeated edges of every note of the project are collapsed: a first sync inserts
    some relations resolved (`KnownTargets`), so a note may repeat an edge without holding an
    unresolved relation; elsewhere only a note with one can repeat an edge (every resolution
    collapses its notes' edges), so the result is the same."""
    in_project = select(Entity.id).where(Entity.project_id == project_id)
    pending: list[int] = []
    notes: int | None = None  # with relations to resolve or collapse
    if targets is None or targets.everything:
        notes = await session.scalar(select(func.count(Relation.from_id.distinct()))
                                     .where(Relation.from_id.in_(in_project)))
        scopes = [Relation.from_id.in_(in_project)]
    else:
        relation_ids = await _pending_relations(session, project_id, targets)
        pending = sorted({from_id for chunk in chunks(session, relation_ids)
                          for from_id in await session.scalars(
                              select(Relation.from_id).distinct()
                              .where(Relation.id.in_(chunk)))})
        scopes = [Relation.id.in_(chunk) for chunk in chunks(session, relation_ids)]
        notes = len(pending)
    if not notes:
        return
    if notes >= ANALYZE_AFTER and _dialect_name(session) == "postgresql":
        # A first sync has just loaded the tables: without fresh statistics PostgreSQL plans
        # the lookups below as for empty tables (sequential scans, 1.6-2.7x slower syncs).
        await session.execute(text("ANALYZE entity, relation"))
    # Ordered by an expression of the path, not the path column: SQLite would otherwise walk
    # the path index for the order instead of looking the title up (5 s against 0.1 s at
    # 3k notes); the matches to sort are few.
    by_path = Entity.file_path + ""
    for target in (Entity.permalink == Relation.to_name,
                   Entity.title == Relation.to_name,
                   Entity.file_path == Relation.to_name,
                   *(Entity.file_path == Relation.to_name + suffix.decode()
                     for suffix in MARKDOWN_SUFFIXES)):
        matches = select(Entity.id).where(Entity.project_id == project_id, target)
        match = matches.order_by(by_path).limit(1).scalar_subquery()
        for scope in scopes:
            # Only the relations a rule resolves are written: PostgreSQL writes a new row
            # version for every row an UPDATE touches, even to the same NULL.
            await session.execute(
                update(Relation)
                .where(Relation.to_id.is_(None), scope, matches.exists())
                .values(to_id=match)
                .execution_options(synchronize_session=False))
    if targets is None or targets.everything:
        # One statement, no ids: each edge's first relation is the one kept (an anti-join,
        # which scales where `NOT IN` a subquery falls back to a rescan per row).
        earlier = aliased(Relation)
        await session.execute(
            delete(Relation)
            .where(Relation.to_id.is_not(None), Relation.from_id.in_(in_project),
                   exists().where(earlier.from_id == Relation.from_id,
                                  earlier.to_id == Relation.to_id,
                                  earlier.relation_type == Relation.relation_type,
                                  earlier.id < Relation.id))
            .execution_options(synchronize_session=False))
    for chunk in chunks(session, pending, parameters_per_item=2):  # the chunk is used twice
        first_of_each_edge = (select(func.min(Relation.id))
                              .where(Relation.to_id.is_not(None), Relation.from_id.in_(chunk))
                              .group_by(Relation.from_id, Relation.to_id,
                                        Relation.relation_type))
        await session.execute(
            delete(Relation)
            .where(Relation.to_id.is_not(None), Relation.from_id.in_(chunk),
                   Relation.id.not_in(first_of_each_edge))
            .execution_options(synchronize_session=False))


async def _pending_relations(session: AsyncSession, project_id: int,
                             targets: RelationTargets) -> list[int]:
    """The unresolved relations `targets` may have made resolvable (indexed lookups by
    relation id, source note and target name)."""
    found: set[int] = set()
    for chunk in chunks(session, sorted(targets.relation_ids)):
        found.update(await session.scalars(select(Relation.id).where(
            Relation.id.in_(chunk), Relation.to_id.is_(None))))
    for from_chunk in chunks(session, sorted(targets.from_ids)):
        found.update(await session.scalars(select(Relation.id).where(
            Relation.from_id.in_(from_chunk), Relation.to_id.is_(None))))
    in_project = select(Entity.id).where(Entity.project_id == project_id)
    for name_chunk in chunks(session, sorted(targets.names)):
        found.update(await session.scalars(select(Relation.id).where(
            Relation.to_name.in_(name_chunk), Relation.to_id.is_(None),
            Relation.from_id.in_(in_project))))
    return sorted(found)


async def release_permalinks(session: AsyncSession, project_id: int,
                             paths: Sequence[str]) -> dict[str, str]:
    """Clear the permalinks of the entities at `paths` (about to be written again) and return
    path -> the permalink each held."""
    held: dict[str, str] = {}
    for chunk in chunks(session, paths):
        rows = await session.execute(select(Entity.file_path, Entity.permalink).where(
            Entity.project_id == project_id, Entity.permalink.is_not(None),
            Entity.file_path.in_(chunk)))
        held.update({path: permalink for path, permalink in rows if permalink is not None})
        await session.execute(update(Entity).where(
            Entity.project_id == project_id, Entity.file_path.in_(chunk)).values(permalink=None))
    return held


async def permalink_owners(session: AsyncSession, project_id: int,
                           permalinks: Sequence[str]) -> dict[str, str]:
    """permalink -> the path of the entity holding it, for those of `permalinks` held."""
    owners: dict[str, str] = {}
    for chunk in chunks(session, permalinks):
        rows = await session.execute(select(Entity.permalink, Entity.file_path).where(
            Entity.project_id == project_id, Entity.permalink.in_(chunk)))
        owners.update({permalink: path for permalink, path in rows if permalink is not None})
    return owners


async def set_permalink(session: AsyncSession, project_id: int, path: str,
                        permalink: str) -> None:
    await session.execute(update(Entity).where(
        Entity.project_id == project_id, Entity.file_path == path).values(permalink=permalink))


async def stored_files(session: AsyncSession, project_id: int,
                       paths: Sequence[str]) -> list[StoredFile]:
    """The entity rows at these paths, as `StoredFile`s."""
    found: list[StoredFile] = []
    for chunk in chunks(session, paths):
        result = await session.execute(
            select(Entity.file_path, Entity.checksum, Entity.checksum_kind, Entity.size,
                   Entity.mtime).where(Entity.project_id == project_id,
                                       Entity.file_path.in_(chunk)))
        found.extend(StoredFile(*row) for row in result)
    return found


async def checksums(session: AsyncSession, project_id: int,
                    created_since: datetime | None = None) -> dict[str, str | None]:
    """path -> checksum of the project's entities (those inserted since a time, if given),
    streamed so that a large project is not materialised as ORM objects."""
    query = select(Entity.file_path, Entity.checksum).where(Entity.project_id == project_id)
    if created_since is not None:
        query = query.where(Entity.created_at >= created_since)
    result = await session.stream(query)
    return {path: checksum async for path, checksum in result}


async def _entity_id(session: AsyncSession, project_id: int, path: str) -> int | None:
    return await session.scalar(select(Entity.id).where(
        Entity.project_id == project_id, Entity.file_path == path))


def _dialect_name(session: AsyncSession) -> str:
    return str(session.get_bind().dialect.name)


def is_suffixed(permalink: str | None, base: str) -> bool:
    """Whether `permalink` is `base-N`, the form a conflict gives."""
    if not permalink or not permalink.startswith(base + "-"):
        return False
    return permalink[len(base) + 1:].isdigit()


async def set_wanted_permalinks(session: AsyncSession, project_id: int,
                                wanted: dict[str, tuple[str, bool]],
                                settled: Sequence[str]) -> None:
    """Remember, on the rows at `wanted`'s paths, the permalink each wants and did not get
    (and whether its frontmatter set it); forget it on the rows at `settled`. The end of every
    sync hands a remembered permalink over once it is free (`wanted_permalinks`)."""
    for path, (permalink, explicit) in wanted.items():
        await session.execute(update(Entity).where(
            Entity.project_id == project_id, Entity.file_path == path).values(
            wanted_permalink=permalink, wanted_permalink_explicit=explicit))
    for chunk in chunks(session, settled):
        await session.execute(update(Entity).where(
            Entity.project_id == project_id, Entity.file_path.in_(chunk),
            Entity.wanted_permalink.is_not(None)).values(
            wanted_permalink=None, wanted_permalink_explicit=None))


async def wanted_permalinks(session: AsyncSession,
                            project_id: int) -> dict[str, tuple[str, bool]]:
    """path -> (the permalink it wants, set in frontmatter?) of the rows that did not get it:
    read through the (project, wanted_permalink) index, never a scan of the entities."""
    rows = await session.execute(select(
        Entity.file_path, Entity.wanted_permalink, Entity.wanted_permalink_explicit).where(
        Entity.project_id == project_id, Entity.wanted_permalink.is_not(None)))
    return {path: (permalink, bool(explicit)) for path, permalink, explicit in rows
            if permalink is not None}
