"""Issue 7, narrowed runs: `bm sync SUB` and `bm status SUB` say what they cover.

A sync always applies the whole notes folder (a move across the subfolder's edge must pair);
narrowed, its summary and JSON list the subfolder's changes and then what was applied, which
is what its history run records. A narrowed status counts `unchanged` inside the subfolder.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.helpers import bm_json, run_bm, write


def synced_tree(root: Path) -> None:
    for number in range(3):
        write(root, f"sub/a{number}.md", f"# A{number}\nalpha {number}\n")
        write(root, f"other/b{number}.md", f"# B{number}\nbeta {number}\n")
    assert run_bm("sync", str(root), "--quiet").returncode == 0


def change_both_folders(root: Path) -> None:
    write(root, "sub/new.md", "# New\nnew in sub\n")
    write(root, "other/x.md", "# X\nnew elsewhere\n")
    write(root, "other/b1.md", "# B1\nbeta 1, edited\n")


def latest_run(root: Path) -> dict[str, object]:
    runs = bm_json("history", str(root))["runs"]
    assert isinstance(runs, list)
    latest: dict[str, object] = runs[0]
    return latest


def test_narrowed_sync_json_says_what_it_applied_as_history_records_it(notes: Path) -> None:
    synced_tree(notes)
    change_both_folders(notes)
    report = bm_json("sync", str(notes / "sub"))
    assert report["scope"] == "sub"
    assert (report["added"], report["modified"]) == (["sub/new.md"], [])
    assert report["unchanged"] == 3
    run = latest_run(notes)
    applied = report["applied"]
    assert {kind: applied[kind] for kind in ("added", "modified", "deleted", "moved", "failed")
            } == {kind: run[kind] for kind in ("added", "modified", "deleted", "moved", "failed")}
    assert (run["added"], run["modified"]) == (2, 1)


def test_narrowed_sync_summary_names_the_subfolder_and_the_whole_folder(notes: Path) -> None:
    synced_tree(notes)
    change_both_folders(notes)
    result = run_bm("sync", "sub", cwd=notes)
    assert result.returncode == 0, result.stderr
    summary = result.stdout.strip()
    assert summary.startswith("sub: 1 added, 0 modified, 0 deleted, 0 moved, 0 failed; "
                              "the whole folder: 2 added, 1 modified, 0 deleted, 0 moved, "
                              "0 failed in "), summary
    again = run_bm("sync", str(notes / "sub")).stdout.strip()
    assert again.startswith("up to date (4 files unchanged in sub, "), again


def test_a_sync_of_the_whole_folder_keeps_its_json_shape(notes: Path) -> None:
    synced_tree(notes)
    change_both_folders(notes)
    report = bm_json("sync", str(notes))
    assert "scope" not in report and "applied" not in report
    assert len(report["added"]) == 2 and report["unchanged"] == 5


@pytest.fixture(scope="module")
def changed_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One synced tree with changes in and across both folders (status only reads it)."""
    root = tmp_path_factory.mktemp("narrow")
    synced_tree(root)
    change_both_folders(root)
    os.rename(root / "sub/a0.md", root / "other/a0.md")
    (root / "sub/a2.md").unlink()
    return root


@pytest.mark.parametrize(("target", "expected"), [
    pytest.param("sub", {"added": ["sub/new.md"], "modified": [], "deleted": ["sub/a2.md"],
                         "moved": [{"from": "sub/a0.md", "to": "other/a0.md"}],
                         "unchanged": 1}, id="a subfolder"),
    pytest.param("other", {"added": ["other/x.md"], "modified": ["other/b1.md"], "deleted": [],
                           "moved": [{"from": "sub/a0.md", "to": "other/a0.md"}],
                           "unchanged": 2}, id="a move into it counts, unchanged its own"),
    pytest.param("sub/a1.md", {"added": [], "modified": [], "deleted": [], "moved": [],
                               "unchanged": 1}, id="a file"),
    pytest.param(".", {"added": ["other/x.md", "sub/new.md"], "modified": ["other/b1.md"],
                       "deleted": ["sub/a2.md"],
                       "moved": [{"from": "sub/a0.md", "to": "other/a0.md"}],
                       "unchanged": 3}, id="the whole folder"),
])
def test_narrowed_status_counts_unchanged_inside(changed_tree: Path, target: str,
                                                 expected: dict[str, object]) -> None:
    result = run_bm("status", target, "--json", cwd=changed_tree)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert {key: report[key] for key in expected} == expected
    assert report.get("scope") == (None if target == "." else target)


def test_narrowed_status_line_names_its_scope(changed_tree: Path) -> None:
    assert run_bm("status", "sub/a1.md", cwd=changed_tree).stdout.strip() == (
        "up to date (1 file unchanged in sub/a1.md)")
