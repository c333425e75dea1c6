"""`.basic-memory` is a git directory: the real git binary reads bm's index and versions.

Run from a folder that is no git repository (the notes folder's parent, a temporary folder),
with the commands as the docs print them.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.helpers import bm_json, run_bm, write

GIT_ENV = {"GIT_CONFIG_NOSYSTEM": "1", "HOME": "/nonexistent", "GIT_CEILING_DIRECTORIES": "/"}


def git(notes: Path, *args: str, cwd: Path) -> str:
    result = subprocess.run(["git", f"--git-dir={notes / '.basic-memory'}", *args], cwd=cwd,
                            capture_output=True, text=True, env={**os.environ, **GIT_ENV})
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture
def synced(tmp_path: Path) -> Path:
    notes = tmp_path / "notes"
    write(notes, "a.md", "# A\n")
    write(notes, "b.md", "# B\n")
    write(notes, "d.md", "# D, about to move\n")
    write(notes, "sub/c.md", "# C\n")
    write(notes, ".obsidian/app.json", "{}\n")
    write(notes, "sub/.hidden.md", "hidden\n")
    run_bm("sync", "--quiet", str(notes), check=True)
    return notes


def test_ls_files_lists_the_index(synced: Path, tmp_path: Path) -> None:
    listed = git(synced, "ls-files", "-s", cwd=tmp_path).splitlines()
    expected = subprocess.run(["git", "hash-object", str(synced / "a.md")], capture_output=True,
                              text=True, check=True).stdout.strip()
    assert [line.split("\t")[1] for line in listed] == ["a.md", "b.md", "d.md", "sub/c.md"]
    assert listed[0] == f"100644 {expected} 0\ta.md"


def test_status_agrees_with_bm_status(synced: Path, tmp_path: Path) -> None:
    write(synced, "a.md", "# A, edited\n")
    os.unlink(synced / "b.md")
    write(synced, "new/e.md", "# E\n")
    write(synced, "a.md~", "# A, an editor's backup\n")  # ignored by both
    write(synced, "new/4913", "")
    os.rename(synced / "d.md", synced / "moved.md")
    bm = bm_json("status", str(synced))
    assert (bm["added"], bm["modified"], bm["deleted"], bm["moved"]) == (
        ["new/e.md"], ["a.md"], ["b.md"], [{"from": "d.md", "to": "moved.md"}])
    lines = git(synced, "status", "--porcelain", "--untracked-files=all", cwd=tmp_path)
    # No commit yet: the first column says "in the index"; the second is the work tree.
    on_disk = {line[3:]: line[1] for line in lines.splitlines()}
    assert {path for path, state in on_disk.items() if state == "M"} == {"a.md"}
    assert {path for path, state in on_disk.items() if state == "D"} == {"b.md", "d.md"}
    assert {path for path, state in on_disk.items() if state == "?"} == {"new/e.md",
                                                                        "moved.md"}
    # The same, with the commands that compare only the work tree with the index.
    assert git(synced, "diff", "--name-status", cwd=tmp_path).splitlines() == [
        "M\ta.md", "D\tb.md", "D\td.md"]
    assert git(synced, "ls-files", "--others", "--exclude-standard",
               cwd=tmp_path).splitlines() == ["moved.md", "new/e.md"]


def test_cat_file_shows_a_stored_version(synced: Path, tmp_path: Path) -> None:
    content_id = git(synced, "ls-files", "-s", "a.md", cwd=tmp_path).split()[1]
    assert git(synced, "cat-file", "-p", content_id, cwd=tmp_path) == "# A\n"
    write(synced, "a.md", "# A, second version\n")
    run_bm("sync", "--quiet", str(synced), check=True)
    assert git(synced, "cat-file", "-p", content_id, cwd=tmp_path) == "# A\n"
    newer = git(synced, "ls-files", "-s", "a.md", cwd=tmp_path).split()[1]
    assert git(synced, "cat-file", "-p", newer, cwd=tmp_path) == "# A, second version\n"


def test_git_reads_without_rewriting_the_index(synced: Path, tmp_path: Path) -> None:
    """A touched file makes `git status` refresh the index and write it back, without bm's
    extensions (its metadata: the next sync would rebuild). git must only read it."""
    index = synced / ".basic-memory" / "index"
    before = index.read_bytes()
    write(synced, "a.md", "# A, edited\n")
    os.utime(synced / "b.md")  # touched: same content, new stat
    git(synced, "status", "--porcelain", cwd=tmp_path)
    assert index.read_bytes() == before
    added = subprocess.run(["git", f"--git-dir={synced / '.basic-memory'}", "add", "a.md"],
                           cwd=tmp_path, capture_output=True, text=True,
                           env={**os.environ, **GIT_ENV})
    assert added.returncode != 0 and index.read_bytes() == before
    assert bm_json("status", str(synced))["modified"] == ["a.md"]
    assert "rebuil" not in run_bm("sync", str(synced)).stderr


def test_a_user_tuned_config_is_kept(synced: Path, tmp_path: Path) -> None:
    config = synced / ".basic-memory" / "config"
    config.write_text(config.read_text() + "[user]\n\tname = me\n")
    write(synced, "a.md", "# A, edited\n")
    run_bm("sync", "--quiet", str(synced), check=True)
    assert "name = me" in config.read_text()
    assert git(synced, "config", "user.name", cwd=tmp_path).strip() == "me"


def test_a_folder_synced_before_becomes_readable_on_the_next_sync(synced: Path,
                                                                  tmp_path: Path) -> None:
    """An index written by an older bm (no git files beside it) gains them on the next sync,
    even one with nothing to do."""
    state = synced / ".basic-memory"
    for name in ("HEAD", "config", "index.lock"):
        (state / name).unlink()
    run_bm("sync", "--quiet", str(synced), check=True)
    assert git(synced, "ls-files", cwd=tmp_path).splitlines() == ["a.md", "b.md", "d.md",
                                                                  "sub/c.md"]
