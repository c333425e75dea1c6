"""What a sync reports: one truth with its history run, warnings apart from failures, and a
progress total that ends where the work ends."""

from __future__ import annotations

from pathlib import Path

import pytest

from bm_sync.reports import SyncProgress
from bm_sync.sync import SyncEngine
from tests.helpers import bm_json, run_bm, write
from tests.helpers_pgfirst import current as current_database


@pytest.mark.usefixtures("database")
def test_a_rebuild_reports_what_its_history_run_records(notes: Path) -> None:
    for name in ("a", "b", "c"):
        write(notes, f"{name}.md", f"# {name}\n")
    assert run_bm("sync", str(notes)).returncode == 0
    # as a killed sync leaves it:
    current_database().execute(notes, "UPDATE project SET index_token = NULL")
    write(notes, "b.md", "# b edited\n")
    report = bm_json("sync", str(notes))
    assert report["rebuilt"] is True
    assert report["rebuild_reason"] == "the last sync of this folder did not complete"
    assert (report["added"], report["modified"], report["deleted"]) == ([], ["b.md"], [])
    assert report["unchanged"] == 2  # a and c: re-added by the rebuild, unchanged in truth
    run = bm_json("history", str(notes))["runs"][0]
    assert (run["added"], run["modified"], run["deleted"], run["moved"]) == (0, 1, 0, 0)
    assert bm_json("sync", str(notes))["rebuilt"] is False


def test_a_note_indexed_with_a_warning_is_not_a_failure(notes: Path) -> None:
    write(notes, "broken.md", "---\ntitle: [unclosed\n---\n# Body\n")
    write(notes, "ok.md", "# Ok\n")
    report = bm_json("sync", str(notes))
    assert report["failed"] == []
    assert [warning["path"] for warning in report["warnings"]] == ["broken.md"]
    write(notes, "other.md", "---\ntitle: [unclosed\n---\n# Other\n")
    summary = run_bm("sync", str(notes))
    assert "1 added, 0 modified, 0 deleted, 0 moved, 0 failed, 1 warning in " in summary.stdout
    assert "bm: warning: other.md: " in summary.stderr and "bm: failed" not in summary.stderr
    assert bm_json("history", str(notes))["runs"][0]["failed"] == 0


async def test_progress_ends_with_every_file_examined_deletions_included(notes: Path) -> None:
    for number in range(10):
        write(notes, f"n{number}.md", f"# Note {number}\n")
    async with SyncEngine.open(notes) as engine:
        await engine.sync()
    for number in range(4):
        (notes / f"n{number}.md").unlink()
    updates: list[SyncProgress] = []
    async with SyncEngine.open(notes) as engine:
        report = await engine.sync(progress=lambda counters: updates.append(
            SyncProgress(counters.scanned, counters.hashed, counters.applied,
                         counters.expected, counters.finished)))
    assert len(report.deleted) == 4
    last = updates[-1]
    assert last.finished and last.expected == 10
    assert last.scanned == last.expected  # 6 unchanged + 4 deleted: the bar ends at 100%
