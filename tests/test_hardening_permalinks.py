"""Issue 7: a permalink swap that falls into two batches ends right and says nothing; a claim
still refused when the sync ends is one warning (with the note's other notices)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import bm_json, run_bm, write
from tests.test_permalinks import fill, permalinks


@pytest.mark.usefixtures("database")
def test_a_swap_across_batches_warns_of_nothing(notes: Path) -> None:
    write(notes, "a.md", "---\npermalink: x\n---\n# A\n")
    write(notes, "z.md", "---\npermalink: y\n---\n# Z\n")
    fill(notes, 1)
    assert run_bm("sync", str(notes), "--quiet").returncode == 0
    write(notes, "a.md", "---\npermalink: y\n---\n# A\n")
    write(notes, "z.md", "---\npermalink: x\n---\n# Z\n")
    fill(notes, 2)
    report = bm_json("sync", str(notes))
    database = permalinks(notes)
    assert (database["a.md"], database["z.md"]) == ("y", "x")
    assert report["warnings"] == []


def test_a_refused_claim_is_one_warning_beside_the_notes_other_notice(notes: Path) -> None:
    write(notes, "a.md", "---\npermalink: x\n---\n# A\n")
    write(notes, "b.md", "# B\n")
    assert run_bm("sync", str(notes), "--quiet").returncode == 0
    write(notes, "b.md", b"---\npermalink: x\n---\n# B \xff\n")  # and invalid UTF-8
    result = run_bm("sync", str(notes))
    warnings = [line for line in result.stderr.splitlines() if line.startswith("bm: warning: b")]
    assert len(warnings) == 1 and "held by a.md; keeps 'b'" in warnings[0], result.stderr
    assert ", 1 warning in " in result.stdout
