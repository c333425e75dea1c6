"""`SyncEngine.sync(paths=...)`: the watch mode's entry point applies what was reported, and
what it leaves out is still found by the next full sync."""

from __future__ import annotations

from pathlib import Path

import pytest

from bm_sync.sync import SyncEngine
from tests.helpers import write
from tests.helpers_pgfirst import Database


@pytest.mark.usefixtures("database")
async def test_a_sync_of_reported_paths_applies_exactly_them(notes: Path) -> None:
    write(notes, "a.md", "# A\n")
    write(notes, "b.md", "# B\n")
    write(notes, "old/c.md", "# C\n")
    async with SyncEngine.open(notes) as engine:
        await engine.sync()
        write(notes, "a.md", "# A, edited\n")
        write(notes, "b.md", "# B, edited\n")
        (notes / "old").rename(notes / "new")

        reported = await engine.sync(paths=["a.md", "old", "new"])
        assert reported.modified == ["a.md"]
        assert reported.moved == [("old/c.md", "new/c.md")]

        rest = await engine.sync()
        assert rest.modified == ["b.md"]
        assert rest.change_count == 1
        assert (await engine.sync()).change_count == 0


async def test_entity_ids_follow_path_order_whatever_the_hashing_order(
        notes: Path, database: Database) -> None:
    """Issue 7: entity ids must not depend on which hash finishes first. A large note first in
    path order finishes hashing last; its row is still the first written, in the first batch."""
    write(notes, "a-large.md", "# Large\n" + "a line of a large note\n" * 400_000)
    for number in range(450):
        write(notes, f"n{number:03}.md", f"# Note {number}\n")
    async with SyncEngine.open(notes) as engine:
        await engine.sync()
    paths = [path for (path,) in database.query(notes, "SELECT file_path FROM entity ORDER BY id")]
    assert paths == sorted(paths)


def test_a_no_change_sync_removes_what_a_killed_writer_left(notes: Path) -> None:
    """Issue 7 §4: a killed `bm prune` leaves no tmp_pack_* behind after the next sync, even
    one with nothing to apply."""
    from tests.helpers import run_bm

    write(notes, "a.md", "# A\n")
    assert run_bm("sync", str(notes)).returncode == 0
    pack_dir = notes / ".basic-memory" / "objects" / "pack"
    pack_dir.mkdir(parents=True, exist_ok=True)
    leftovers = [pack_dir / "tmp_pack_999999", pack_dir / "tmp_idx_999999"]  # no such process
    for leftover in leftovers:
        leftover.write_bytes(b"half a pack")
    result = run_bm("sync", str(notes), "--json")
    assert result.returncode == 0, result.stderr
    assert not [leftover for leftover in leftovers if leftover.exists()]
