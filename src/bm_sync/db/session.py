"""An open entity database and the row of one project in it."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bm_sync.db.engine import open_database, open_read_only
from bm_sync.db.postgres import connection_lost
from bm_sync.db.runs import ProjectRow, claim_project
from bm_sync.errors import DatabaseConnectionLost


class ProjectDatabase:
    """The database (migrated to head on open) and `project`, the folder's row as it was when
    opened. `sessions()` starts a session; `session.begin()` a transaction. Once a connection
    to the server broke, `sessions()` raises `DatabaseConnectionLost`: the sync stops there
    rather than reconnect and apply the rest of the run around a gap."""

    def __init__(self, engine: AsyncEngine, project: ProjectRow) -> None:
        self.engine = engine
        self._sessions = async_sessionmaker(engine, expire_on_commit=False, class_=AsyncSession)
        self.project = project

    def sessions(self) -> AsyncSession:
        self.raise_if_lost()
        return self._sessions()

    def raise_if_lost(self) -> None:
        """Raise `DatabaseConnectionLost` if a connection to the server broke: for a caller
        that catches a failed write to retry it piece by piece, which must not go on then."""
        if connection_lost(self.engine):
            raise DatabaseConnectionLost(
                f"database error: the connection to the database server was lost during the "
                f"sync ({self.engine.url.render_as_string(hide_password=True)}); "
                "what was committed stays, the folder's index was not written: sync again "
                "once the server is back")

    @property
    def project_id(self) -> int:
        return self.project.id

    @classmethod
    async def open(cls, url: str, root: Path, project_uuid: str,
                   row_id: int | None = None) -> ProjectDatabase:
        """Open (and migrate) the database and claim the folder's project row
        (`runs.claim_project`)."""
        engine = await open_database(url)
        sessions = async_sessionmaker(engine, expire_on_commit=False)
        try:
            async with sessions() as session, session.begin():
                project = await claim_project(session, root, project_uuid, row_id)
        except BaseException:
            await engine.dispose()
            raise
        return cls(engine, project)

    async def close(self) -> None:
        await self.engine.dispose()


class ProjectReader:
    """One project's rows, read only: what the history commands use. Opening it never
    migrates and never claims or re-points a project row (`ProjectDatabase.open` does both,
    for a sync), so `bm history` on a copy, a moved folder or a read-only mount changes
    nothing; the caller found the project first, as a sync would (`bm_sync.identity`)."""

    def __init__(self, engine: AsyncEngine, project_id: int) -> None:
        self.engine = engine
        self.sessions = async_sessionmaker(engine, expire_on_commit=False, class_=AsyncSession)
        self.project_id = project_id

    @classmethod
    async def open(cls, url: str, project_id: int) -> ProjectReader:
        return cls(await open_read_only(url), project_id)

    async def close(self) -> None:
        await self.engine.dispose()
