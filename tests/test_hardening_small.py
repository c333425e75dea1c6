"""Issue 7, small things: what a restore will be recorded as, history's database errors in one
line, and git reading `.basic-memory` silently with the README's commands."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest

from tests.helpers import REPO, run_bm, write
from tests.test_docs import commands, snippets


@pytest.fixture
def two_versions(notes: Path) -> Path:
    """a.md synced twice (two versions), and b.md once."""
    write(notes, "a.md", "# A\none\n")
    write(notes, "b.md", "# B\nbee\n")
    assert run_bm("sync", str(notes), "--quiet").returncode == 0
    write(notes, "a.md", "# A\ntwo\n")
    assert run_bm("sync", str(notes), "--quiet").returncode == 0
    return notes


def test_restoring_a_deleted_file_is_an_add(two_versions: Path) -> None:
    (two_versions / "a.md").unlink()
    assert run_bm("sync", str(two_versions), "--quiet").returncode == 0
    result = run_bm("restore", "a.md", "--rev", "~1", cwd=two_versions)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("(the next sync records it as an add)")
    assert (two_versions / "a.md").read_text() == "# A\none\n"


def test_restoring_an_older_version_is_a_modification(two_versions: Path) -> None:
    result = run_bm("restore", "a.md", "--rev", "~1", cwd=two_versions)
    assert result.stdout.strip().endswith("(the next sync records it as a modification)")
    again = run_bm("restore", "a.md", "--rev", "~0", cwd=two_versions)
    assert again.stdout.strip().endswith("(as the last sync recorded it: nothing to sync)")


COMMANDS_READING_HISTORY = [
    ["history", "a.md"], ["history", "a.md", "--show", "~1"], ["history", "a.md", "--diff"],
    ["restore", "a.md", "--rev", "~1"], ["prune", ".", "--keep", "1"],
]


def test_a_database_error_in_a_history_query_is_one_line(two_versions: Path) -> None:
    """The database opens fine, then a query fails (here: a table gone). Each command of
    COMMANDS_READING_HISTORY in turn, on one folder: none of them changes anything."""
    database = sqlite3.connect(two_versions / ".basic-memory" / "memory.db")
    database.execute("ALTER TABLE file_change RENAME TO file_change_elsewhere")
    database.commit()
    database.close()
    before = (two_versions / "a.md").read_bytes()
    for command in COMMANDS_READING_HISTORY:
        result = run_bm(*command, cwd=two_versions)
        assert (result.returncode, result.stderr.splitlines()) == (1, [
            "bm: error: database error: no such table: file_change; sync again once the cause "
            "is gone"]), command
    assert (two_versions / "a.md").read_bytes() == before


def test_the_readme_git_commands_print_nothing_on_stderr(tmp_path: Path) -> None:
    """git notes every index extension it does not know on stderr (read-cache.c), bm's BMKD and
    BMMT among them: the README's commands, run as printed, are silent and succeed."""
    notes = tmp_path / "notes"
    shutil.copytree(REPO / "examples" / "notes", notes)
    assert run_bm("sync", str(notes), "--quiet").returncode == 0
    git_commands = [command for snippet in snippets(REPO / "README.md")
                    if snippet.language == "bash" for command in commands(snippet)
                    if command.startswith("git ")]
    assert len(git_commands) == 3
    environment = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "HOME": str(tmp_path),
                   "GIT_CEILING_DIRECTORIES": str(tmp_path)}
    for command in git_commands:
        result = subprocess.run(["bash", "-c", command.replace("examples/notes", str(notes))],
                                cwd=tmp_path, capture_output=True, text=True, env=environment)
        assert (result.returncode, result.stderr) == (0, ""), command
