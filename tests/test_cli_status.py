"""`bm status` as a user runs it: a real subprocess."""

from __future__ import annotations

import json
import os
from pathlib import Path

from bm_sync import Detector
from tests.helpers import bm_json, run_bm, write


def test_status_text_groups_and_counts(notes: Path) -> None:
    write(notes, "keep.md", "keep\n")
    write(notes, "edit.md", "before\n")
    write(notes, "gone.md", "bye\n")
    write(notes, "moved.md", "- a\n- b\n- c\n")
    Detector(notes).record()
    write(notes, "edit.md", "after\n!")
    (notes / "gone.md").unlink()
    write(notes, "new.md", "new\n")
    os.rename(notes / "moved.md", notes / "renamed.md")
    result = run_bm("status", str(notes))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "A  new.md",
        "M  edit.md",
        "D  gone.md",
        "R  moved.md -> renamed.md",
        "1 added, 1 modified, 1 deleted, 1 moved, 0 failed, 1 unchanged",
    ]


def test_status_json_shape(notes: Path) -> None:
    write(notes, "a.md", "a\n")
    write(notes, "b.md", "b\n")
    Detector(notes).record()
    os.rename(notes / "a.md", notes / "c.md")
    write(notes, "d.md", "d\n")
    data = bm_json("status", str(notes))
    assert data == {"added": ["d.md"], "modified": [], "deleted": [],
                    "moved": [{"from": "a.md", "to": "c.md"}], "failed": [], "unchanged": 1}


def test_status_defaults_to_current_directory_and_never_synced_is_all_added(notes: Path) -> None:
    write(notes, "x/y.md", "y\n")
    data = bm_json("status", cwd=notes)
    assert data["added"] == ["x/y.md"]
    assert not (notes / ".basic-memory").exists()


def test_status_up_to_date_message(notes: Path) -> None:
    write(notes, "a.md", "a\n")
    Detector(notes).record()
    result = run_bm("status", str(notes))
    assert result.stdout.strip() == "up to date (1 file unchanged)"


def test_usage_errors_exit_2_with_one_line(notes: Path) -> None:
    for args in (["status", str(notes / "missing")], ["status", "--bogus"],
                 ["status", str(notes), "--full-hash-max-mb", "-1"],
                 ["status", str(notes), "--full-hash-max-mb", "inf"],
                 ["sync", str(notes), "--partial-hash-max-mb", "nan"]):
        result = run_bm(*args)
        assert result.returncode == 2, args
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert result.stderr.startswith("bm: error:")


def test_corrupt_index_warns_on_stderr_and_json_stays_clean(notes: Path) -> None:
    write(notes, "a.md", "a\n")
    Detector(notes).record()
    (notes / ".basic-memory/index").write_bytes(b"garbage")
    result = run_bm("status", str(notes), "--json")
    assert result.returncode == 0
    assert json.loads(result.stdout)["added"] == ["a.md"]
    assert "corrupt" in result.stderr and len(result.stderr.strip().splitlines()) == 1
