"""One engine, many searches: what `SearchReader` keeps between them (a connection, the
folder's project) never hides what a later sync wrote, on SQLite and PostgreSQL."""

from __future__ import annotations

import shutil
from pathlib import Path

from bm_sync.sync import SyncEngine
from tests.helpers import write
from tests.helpers_search import database_fixture  # noqa: F401 - the `database` fixture


async def test_one_engine_sees_every_later_sync(notes: Path, database: str | None) -> None:
    write(notes, "a.md", "# A\n\nalpha\n")
    async with SyncEngine.open(notes, database) as engine:
        await engine.sync()
        assert [hit.path for hit in (await engine.search("alpha")).hits] == ["a.md"]
        write(notes, "a.md", "# A\n\nbravo\n", old=False)
        write(notes, "b.md", "# B\n\nalpha\n")
        await engine.sync()
        assert [hit.path for hit in (await engine.search("alpha")).hits] == ["b.md"]
        assert [hit.path for hit in (await engine.search("bravo")).hits] == ["a.md"]
        assert (await engine.show("b.md")).title == "B"


async def test_a_database_made_again_under_a_reader_is_read_afresh(notes: Path) -> None:
    """The state folder deleted and the notes synced again by another process: the same
    engine finds the new database's project and reads the new file, not the deleted one."""
    write(notes, "a.md", "# A\n\nalpha\n")
    async with SyncEngine.open(notes) as engine:
        await engine.sync()
        assert [hit.path for hit in (await engine.search("alpha")).hits] == ["a.md"]
        shutil.rmtree(notes / ".basic-memory")
        write(notes, "c.md", "# C\n\ncharlie\n")
        async with SyncEngine.open(notes) as other:
            await other.sync()
        assert [hit.path for hit in (await engine.search("charlie")).hits] == ["c.md"]
        assert (await engine.show("c.md")).path == "c.md"
