"""The registry's SQL: registered projects, their schedule state, leases and worker runs.

Each function here runs in one short transaction (the caller's), with no session state (no
advisory lock, no `SET`, no temporary table, no cursor held across transactions), so a fleet
can reach PostgreSQL through PgBouncer in transaction pooling mode. Taking a lease is one
conditional `UPDATE ... RETURNING`: PostgreSQL re-checks the `WHERE` after waiting for a
concurrent updater's row lock, so of two workers racing for a project exactly one gets a row
back.

Lock order, against deadlocks: a transaction touching both tables locks the project's
`registered_project` row first, then its `worker_run` row (claim, renew, finish, and the
cascade of a removal all do), and renews several leases in project id order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, delete, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from bm_sync.db.models import Entity, Project, RegisteredProject, WorkerRun


@dataclass(frozen=True, slots=True)
class RegisteredRow:
    """One registered project and its schedule state (`RegisteredProject`)."""

    id: int
    name: str
    root_path: str
    last_started_at: float | None
    last_duration_s: float | None
    last_result: str | None
    last_error: str | None
    last_files: int | None
    consecutive_failures: int
    not_before: float | None
    lease_holder: str | None
    lease_expires_at: float | None


@dataclass(frozen=True, slots=True)
class WorkerRunRow:
    id: int
    project_name: str
    worker: str
    started_at: float
    ended_at: float | None
    lease_until: float
    result: str | None


_COLUMNS = (RegisteredProject.id, RegisteredProject.name, RegisteredProject.root_path,
            RegisteredProject.last_started_at, RegisteredProject.last_duration_s,
            RegisteredProject.last_result, RegisteredProject.last_error,
            RegisteredProject.last_files, RegisteredProject.consecutive_failures,
            RegisteredProject.not_before, RegisteredProject.lease_holder,
            RegisteredProject.lease_expires_at)


def _registered(values: Any) -> RegisteredRow:
    return RegisteredRow(*values)


async def registered(connection: AsyncConnection) -> list[RegisteredRow]:
    """Every registered project, by name."""
    rows = await connection.execute(select(*_COLUMNS).order_by(RegisteredProject.name))
    return [_registered(row) for row in rows]


async def find(connection: AsyncConnection, *, name: str | None = None,
               root_path: str | None = None) -> RegisteredRow | None:
    """The project registered under `name`, or at `root_path`."""
    condition = (RegisteredProject.name == name if name is not None
                 else RegisteredProject.root_path == root_path)
    row = (await connection.execute(select(*_COLUMNS).where(condition))).first()
    return _registered(row) if row is not None else None


async def register(connection: AsyncConnection, name: str, root_path: str) -> None:
    await connection.execute(insert(RegisteredProject).values(
        name=name, root_path=root_path, consecutive_failures=0))


async def unregister(connection: AsyncConnection, registered_id: int, root_path: str,
                     project_uuid: str | None) -> int:
    """Delete the registration and the project's rows (entities, observations, relations,
    history: they cascade from the `project` row); return how many project rows went."""
    await connection.execute(delete(RegisteredProject).where(
        RegisteredProject.id == registered_id))
    condition = Project.root_path == root_path
    if project_uuid is not None:
        condition = or_(condition, Project.uuid == project_uuid)
    deleted = await connection.execute(delete(Project).where(condition))
    return int(deleted.rowcount or 0)


async def claim(connection: AsyncConnection, registered_id: int, holder: str, now: float,
                due: float | None, lease_s: float, *, ignore_backoff: bool = False) -> int | None:
    """Take the project's lease if it is free (or expired), its sync is due (it has not
    started since `due`; None: whenever) and not backing off; record the run. The run's id,
    or None when another worker holds the project or it is not due."""
    conditions = [RegisteredProject.id == registered_id,
                  or_(RegisteredProject.lease_holder.is_(None),
                      RegisteredProject.lease_expires_at < now)]
    if due is not None:
        conditions.append(or_(RegisteredProject.last_started_at.is_(None),
                              RegisteredProject.last_started_at < due))
    if not ignore_backoff:
        conditions.append(or_(RegisteredProject.not_before.is_(None),
                              RegisteredProject.not_before <= now))
    taken = await connection.execute(
        update(RegisteredProject).where(and_(*conditions))
        .values(lease_holder=holder, lease_expires_at=now + lease_s, last_started_at=now)
        .returning(RegisteredProject.id))
    if taken.first() is None:
        return None
    run = await connection.execute(insert(WorkerRun).values(
        registered_project_id=registered_id, worker=holder, started_at=now,
        lease_until=now + lease_s).returning(WorkerRun.id))
    return int(run.scalar_one())


async def renew(connection: AsyncConnection, holder: str, leases: dict[int, int],
                until: float) -> set[int]:
    """Extend `holder`'s leases (registered project id -> run id); the projects still held."""
    kept = set()
    for project in sorted(leases):
        held = await connection.execute(
            update(RegisteredProject)
            .where(RegisteredProject.id == project, RegisteredProject.lease_holder == holder)
            .values(lease_expires_at=until).returning(RegisteredProject.id))
        if held.first() is not None:
            kept.add(project)
            await connection.execute(update(WorkerRun).where(
                WorkerRun.id == leases[project]).values(lease_until=until))
    return kept


async def finish(connection: AsyncConnection, registered_id: int, run_id: int, holder: str,
                 *, ended_at: float, duration_s: float, result: str, error: str | None,
                 files: int | None, failures: int, not_before: float | None) -> None:
    """Release the lease and record the outcome: `failures` consecutive failures (0 after a
    success) and `not_before` (the backoff's end, or None)."""
    values: dict[str, object] = {
        "lease_holder": None, "lease_expires_at": None, "last_result": result,
        "last_error": error, "consecutive_failures": failures, "not_before": not_before,
        "last_duration_s": duration_s}
    if files is not None:
        values["last_files"] = files
    await connection.execute(update(RegisteredProject).where(
        RegisteredProject.id == registered_id, RegisteredProject.lease_holder == holder)
        .values(**values))
    await connection.execute(update(WorkerRun).where(WorkerRun.id == run_id).values(
        ended_at=ended_at, result=result))


async def worker_runs(connection: AsyncConnection) -> list[WorkerRunRow]:
    """Every recorded worker run, by project and start."""
    rows = await connection.execute(
        select(WorkerRun.id, RegisteredProject.name, WorkerRun.worker, WorkerRun.started_at,
               WorkerRun.ended_at, WorkerRun.lease_until, WorkerRun.result)
        .join(RegisteredProject, RegisteredProject.id == WorkerRun.registered_project_id)
        .order_by(RegisteredProject.name, WorkerRun.started_at))
    return [WorkerRunRow(*row) for row in rows]


async def entity_counts(connection: AsyncConnection) -> dict[str, int]:
    """Entity rows per project root (what `bm project list` shows as files)."""
    rows = await connection.execute(
        select(Project.root_path, func.count(Entity.id))
        .join(Entity, Entity.project_id == Project.id)
        .where(Project.root_path.in_(select(RegisteredProject.root_path)))
        .group_by(Project.root_path))
    return {str(root): int(count) for root, count in rows}
