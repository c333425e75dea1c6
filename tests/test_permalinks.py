"""Permalinks do not depend on how changes fall into batches (200 files each), and an edit
that claims another note's permalink does not take it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import bm_json, run_bm, write
from tests.helpers_pgfirst import Database, fresh_database
from tests.helpers_pgfirst import current as current_database

FILLER = 450  # enough changed notes between two notes to put them in different batches


def permalinks(notes: Path, database: Database | None = None) -> dict[str, str]:
    return dict((database or current_database()).query(
        notes, "SELECT file_path, permalink FROM entity"))


def fresh_permalinks(notes: Path, tmp_path: Path) -> dict[str, str]:
    fresh = fresh_database(tmp_path / "fresh.db")
    assert run_bm("sync", str(notes), "--db", fresh.url_for(notes)).returncode == 0
    return permalinks(notes, fresh)


def fill(notes: Path, version: int) -> None:
    for number in range(FILLER):
        write(notes, f"m/n{number:03}.md", f"# Filler {number}\nversion {version}\n")


@pytest.mark.usefixtures("database")
def test_a_swap_across_batches_ends_as_a_fresh_sync(notes: Path, tmp_path: Path) -> None:
    write(notes, "a.md", "---\npermalink: x\n---\n# A\n")
    write(notes, "z.md", "---\npermalink: y\n---\n# Z\n")
    fill(notes, 1)
    assert run_bm("sync", str(notes)).returncode == 0
    write(notes, "a.md", "---\npermalink: y\n---\n# A\n")
    write(notes, "z.md", "---\npermalink: x\n---\n# Z\n")
    fill(notes, 2)
    assert run_bm("sync", str(notes)).returncode == 0
    incremental = permalinks(notes)
    assert (incremental["a.md"], incremental["z.md"]) == ("y", "x")
    assert incremental == fresh_permalinks(notes, tmp_path)


def test_claiming_the_permalink_of_a_note_deleted_in_the_same_sync(notes: Path,
                                                                   tmp_path: Path) -> None:
    write(notes, "a.md", "# A\n")
    write(notes, "z.md", "---\npermalink: target\n---\n# Z\n")
    fill(notes, 1)
    assert run_bm("sync", str(notes)).returncode == 0
    (notes / "z.md").unlink()
    write(notes, "a.md", "---\npermalink: target\n---\n# A\n")
    fill(notes, 2)
    assert run_bm("sync", str(notes)).returncode == 0
    incremental = permalinks(notes)
    assert incremental["a.md"] == "target"
    assert incremental == fresh_permalinks(notes, tmp_path)


def test_an_edit_claiming_a_held_permalink_keeps_its_own(notes: Path) -> None:
    write(notes, "a.md", "---\npermalink: x\n---\n# A\n")
    write(notes, "b.md", "# B\n")
    assert run_bm("sync", str(notes)).returncode == 0
    write(notes, "b.md", "---\npermalink: x\n---\n# B\n")
    report = bm_json("sync", str(notes))
    assert permalinks(notes) == {"a.md": "x", "b.md": "b"}
    assert [warning["path"] for warning in report["warnings"]] == ["b.md"]
    assert "held by a.md" in report["warnings"][0]["warning"]
