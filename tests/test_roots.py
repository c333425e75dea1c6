"""Root discovery and path normalisation (`bm_sync.roots`), through the real CLI."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import bm_json, run_bm, write


def test_a_file_reached_through_a_symlinked_root_is_the_same_file(notes: Path) -> None:
    """Issue 7 §1: a folder reached through a symlink is the same project, for file paths too
    (history, restore), not only for the folder."""
    write(notes, "b.md", "# B\n")
    assert run_bm("sync", str(notes)).returncode == 0
    write(notes, "b.md", "# B, edited\n")
    assert run_bm("sync", str(notes)).returncode == 0
    link = notes.parent / (notes.name + "-link")
    link.symlink_to(notes)
    try:
        timeline = bm_json("history", str(link / "b.md"))
        assert [version["kind"] for version in timeline["versions"]] == ["modified", "added"]
        restored = run_bm("restore", str(link / "b.md"), "--rev", "~1")
        assert restored.returncode == 0, restored.stderr
        assert (notes / "b.md").read_text() == "# B\n"
    finally:
        link.unlink()


def test_status_narrows_to_a_file_inside_a_synced_folder(notes: Path) -> None:
    write(notes, "sub/d.md", "# D\n")
    write(notes, "e.md", "# E\n")
    assert run_bm("sync", str(notes)).returncode == 0
    write(notes, "sub/d.md", "# D, edited\n")
    write(notes, "e.md", "# E, edited\n")
    report = bm_json("status", str(notes / "sub" / "d.md"))
    assert report["modified"] == ["sub/d.md"]
    assert run_bm("status", str(notes / "nowhere.md")).returncode == 0  # inside: a path, fine
    outside = run_bm("status", str(notes.parent / "not-a-folder.md"))
    assert outside.returncode == 2 and "not a folder" in outside.stderr
