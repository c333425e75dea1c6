"""Batched, idempotent writes: what one sync transaction does to one project's entities.

Each helper is safe to repeat (a crashed sync re-applies the same changes): upserts on the
(project, path) key, moves that find the entity already moved, deletes of missing paths.
Statements are chunked under the database's bound-parameter limit.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bm_sync.db.models import Entity, Observation, Relation, SyncFailure

ENTITY_COLUMNS = ("file_path", "permalink", "title", "entity_type", "content_type", "checksum",
                  "checksum_kind", "size", "mtime", "tags")
_SQLITE_VARIABLES = 32766 if sqlite3.sqlite_version_info >= (3, 32) else 999


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _rows_per_statement(session: AsyncSession, columns: int) -> int:
    limit = _SQLITE_VARIABLES if session.bind.dialect.name == "sqlite" else 30000
    return max(1, limit // (columns + 1) - 1)


async def upsert_entities(session: AsyncSession, project_id: int,
                          rows: list[dict[str, Any]]) -> dict[str, int]:
    """Insert or update entities keyed by (project, file_path); return file_path -> id."""
    dialect = session.bind.dialect.name
    ids: dict[str, int] = {}
    now = _now()
    values = [{**{column: row.get(column) for column in ENTITY_COLUMNS},
               "project_id": project_id, "created_at": now, "updated_at": now} for row in rows]
    if dialect in ("sqlite", "postgresql") and values:
        if dialect == "sqlite":
            from sqlalchemy.dialects.sqlite import insert as dialect_insert
        else:
            from sqlalchemy.dialects.postgresql import insert as dialect_insert
        # One cached statement run as executemany: SQLAlchemy batches it into multi-row
        # INSERT ... RETURNING under the parameter limit ("insertmanyvalues").
        statement = dialect_insert(Entity.__table__)
        statement = statement.on_conflict_do_update(
            index_elements=["project_id", "file_path"],
            set_={column: statement.excluded[column] for column in (*ENTITY_COLUMNS,
                                                                     "updated_at")},
        ).returning(Entity.__table__.c.file_path, Entity.__table__.c.id)
        result = await session.execute(statement, values)
        ids.update({path: entity_id for path, entity_id in result})
        return ids
    for value in values:  # any other database: select, then update or insert
        existing = await session.scalar(select(Entity.id).where(
            Entity.project_id == project_id, Entity.file_path == value["file_path"]))
        if existing is None:
            result = await session.execute(insert(Entity).values(**value).returning(Entity.id))
            ids[value["file_path"]] = result.scalar_one()
        else:
            await session.execute(update(Entity).where(Entity.id == existing).values(
                {column: value[column] for column in (*ENTITY_COLUMNS, "updated_at")}))
            ids[value["file_path"]] = existing
    return ids


async def replace_observations(session: AsyncSession,
                               rows_by_entity: dict[int, list[dict[str, Any]]]) -> None:
    """Replace all observations of these entities with the given rows."""
    entity_ids = list(rows_by_entity)
    for chunk in _chunks(entity_ids, 500):
        await session.execute(delete(Observation).where(Observation.entity_id.in_(chunk)))
    rows = [{**row, "entity_id": entity_id}
            for entity_id, entity_rows in rows_by_entity.items() for row in entity_rows]
    await _insert_many(session, Observation.__table__, rows)


async def replace_relations(session: AsyncSession,
                            rows_by_entity: dict[int, list[dict[str, Any]]]) -> None:
    """Replace all outgoing relations of these entities (new ones start unresolved)."""
    entity_ids = list(rows_by_entity)
    for chunk in _chunks(entity_ids, 500):
        await session.execute(delete(Relation).where(Relation.from_id.in_(chunk)))
    rows = [{"to_id": None, **row, "from_id": entity_id}
            for entity_id, entity_rows in rows_by_entity.items() for row in entity_rows]
    await _insert_many(session, Relation.__table__, rows)


async def _insert_many(session: AsyncSession, table: Any, rows: list[dict[str, Any]]) -> None:
    """Bulk insert. On SQLite, straight to the driver's executemany with tuples: for the
    hundreds of thousands of observation and relation rows of a first sync, SQLAlchemy's
    per-row parameter processing costs more than SQLite itself."""
    if not rows:
        return
    if session.bind.dialect.name != "sqlite":
        await session.execute(table.insert(), rows)
        return
    columns = list(rows[0])
    sql = (f"INSERT INTO {table.name} ({', '.join(columns)}) "
           f"VALUES ({', '.join('?' for _ in columns)})")
    connection = await session.connection()
    await connection.exec_driver_sql(sql, [tuple(row[column] for column in columns)
                                           for row in rows])


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
        file_path=new_path, updated_at=_now()))
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
                          .values(**values, updated_at=_now()))


async def delete_entities(session: AsyncSession, project_id: int, paths: Sequence[str]) -> None:
    """Delete entities with their observations and outgoing relations; incoming relations
    become unresolved (to_id NULL, to_name kept), whether or not the database enforces
    foreign keys."""
    for chunk in _chunks(list(paths), 500):
        ids = list(await session.scalars(select(Entity.id).where(
            Entity.project_id == project_id, Entity.file_path.in_(chunk))))
        if not ids:
            continue
        await session.execute(update(Relation).where(Relation.to_id.in_(ids)).values(to_id=None))
        await session.execute(delete(Relation).where(Relation.from_id.in_(ids)))
        await session.execute(delete(Observation).where(Observation.entity_id.in_(ids)))
        await session.execute(delete(Entity).where(Entity.id.in_(ids)))


async def unresolve_incoming(session: AsyncSession, entity_ids: list[int]) -> None:
    """Mark the relations pointing at these entities unresolved (to be resolved again)."""
    for chunk in _chunks(entity_ids, 500):
        await session.execute(update(Relation).where(Relation.to_id.in_(chunk))
                              .values(to_id=None))


async def resolve_relations(session: AsyncSession, project_id: int) -> None:
    """Point unresolved relations at their target: by permalink, then title, then path
    (with or without `.md`). Set-based: one indexed UPDATE per rule, no loop in Python."""
    in_project = select(Entity.id).where(Entity.project_id == project_id)
    for target in (Entity.permalink == Relation.to_name,
                   Entity.title == Relation.to_name,
                   Entity.file_path == Relation.to_name,
                   Entity.file_path == Relation.to_name + ".md"):
        match = (select(Entity.id).where(Entity.project_id == project_id, target)
                 .order_by(Entity.id).limit(1).scalar_subquery())
        await session.execute(
            update(Relation)
            .where(Relation.to_id.is_(None), Relation.from_id.in_(in_project))
            .values(to_id=match)
            .execution_options(synchronize_session=False))


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


async def clear_failure(session: AsyncSession, project_id: int, path: str) -> None:
    await session.execute(delete(SyncFailure).where(
        SyncFailure.project_id == project_id, SyncFailure.file_path == path))


async def _entity_id(session: AsyncSession, project_id: int, path: str) -> int | None:
    return await session.scalar(select(Entity.id).where(
        Entity.project_id == project_id, Entity.file_path == path))


def is_suffixed(permalink: str | None, base: str) -> bool:
    """Whether `permalink` is `base-N`, the form a conflict gives."""
    if not permalink or not permalink.startswith(base + "-"):
        return False
    return permalink[len(base) + 1:].isdigit()


def _now() -> Any:
    from bm_sync.db.models import utc_now

    return utc_now()
