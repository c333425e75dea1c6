"""`bm search`'s fast path (`bm_sync.search_fast`, taken by the console entry): it prints
byte for byte what the full typer CLI prints, for well-formed and malformed command lines
alike (what it cannot answer, the CLI answers), and it really runs without typer or
SQLAlchemy."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bm_sync import detector, identity, index_format, search_fast
from bm_sync.db import state
from tests.helpers import run_bm, write
from tests.test_search import CORPUS

# The two ways into the same command line: the console entry (fast path first) and the typer
# CLI it falls back to. Both run with argv[0] "bm", as the installed script does.
ENTRY = "import sys; sys.argv[0] = 'bm'; from bm_sync.entry import main; main()"
FULL_CLI = "import sys; sys.argv[0] = 'bm'; from bm_sync.cli import main; main()"
HEAVY_MODULES = ("typer", "sqlalchemy", "pydantic", "bm_sync.cli", "bm_sync.sync")


@pytest.fixture(scope="module")
def notes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The search tests' corpus, synced into the default SQLite database."""
    root = tmp_path_factory.mktemp("fast") / "notes"
    for path, text in CORPUS.items():
        write(root, path, text)
    write(root, "Scan 001.pdf", b"%PDF-1.4 binary")
    result = run_bm("sync", str(root), "--quiet")
    assert result.returncode == 0, result.stderr
    yield root


def bm(code: str, arguments: list[str], cwd: Path,
       python_options: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *python_options, "-c", code, *arguments], cwd=cwd,
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "COLUMNS": "100"})


def expand(arguments: list[str], notes: Path) -> list[str]:
    return [argument.replace("{notes}", str(notes)) for argument in arguments]


FAST, FULL = True, False


@pytest.mark.parametrize(("arguments", "taken"), [
    (["search", "sync", "{notes}"], FAST),
    (["search", "sync", "{notes}", "--json"], FAST),
    (["search", '"sync index"', "{notes}"], FAST),
    (["search", "--limit=2", "sync*", "{notes}", "--json"], FAST),
    (["search", "sync*", "{notes}", "--limit", "2"], FAST),
    (["search", "plant", "{notes}", "--tag", "garden"], FAST),
    (["search", "plant", "{notes}", "--tag=GARDEN", "--json"], FAST),
    (["search", "plant", "{notes}", "--tag", "machine-learning", "--tag", "gärten"], FAST),
    (["search", "plant", "{notes}", "--type", "meeting", "--json"], FAST),
    (["search", "plant", "{notes}/Projects"], FAST),
    (["search", "plant"], FAST),  # the folder is the working directory
    (["search", "Café", "{notes}"], FAST),
    (["search", "東京", "{notes}", "--json"], FAST),
    (["search", "(alpha OR bravo) -charlie", "{notes}", "--json"], FAST),
    (["search", "scan", "{notes}", "--type", "file"], FAST),
    (["search", "nothingmatchesthis", "{notes}"], FAST),
    (["search", "sync", "{notes}", "--db",
      "sqlite+aiosqlite:///{notes}/.basic-memory/memory.db"], FAST),
    # malformed queries and command lines: the full CLI answers them
    (["search", '"sync', "{notes}"], FULL),
    (["search", "(sync", "{notes}", "--json"], FULL),
    (["search", "NOT sync", "{notes}"], FULL),
    (["search", "", "{notes}"], FULL),
    (["search", "-x", "{notes}"], FULL),
    (["search", "sync", "{notes}", "--limit", "0"], FULL),
    (["search", "sync", "{notes}", "--limit", "abc"], FULL),
    (["search", "sync", "{notes}", "--bogus"], FULL),
    (["search", "sync", "{notes}", "--json=yes"], FULL),
    (["search", "sync", "{notes}", "extra"], FULL),
    (["search", "sync", "{notes}/no-such-folder"], FULL),
    (["search", "sync", "{notes}", "--db", "not a url"], FULL),
    (["search"], FULL),
])
def test_the_fast_path_prints_what_the_full_cli_prints(notes: Path, arguments: list[str],
                                                       taken: bool) -> None:
    command = expand(arguments, notes)
    fast, modules = imported(command, notes)
    full = bm(FULL_CLI, command, notes)
    assert (fast.returncode, fast.stdout, fast.stderr) == (
        full.returncode, full.stdout, full.stderr)
    assert ("typer" not in modules) is taken


def imported(arguments: list[str], cwd: Path) -> tuple[subprocess.CompletedProcess[str],
                                                        set[str]]:
    """Run the console entry under `-X importtime`: its result (stderr without the import
    lines) and the names of every module it imported."""
    result = bm(ENTRY, arguments, cwd, ("-X", "importtime"))
    modules = {line.rsplit("|", 1)[1].strip() for line in result.stderr.splitlines()
               if line.startswith("import time:") and "|" in line}
    result.stderr = "".join(line + "\n" for line in result.stderr.splitlines()
                            if not line.startswith("import time:"))
    return result, modules


def test_a_plain_search_runs_without_typer_or_sqlalchemy(notes: Path) -> None:
    result, modules = imported(["search", "sync", str(notes)], notes)
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.splitlines()[0] == "title.md  Sync"
    assert "bm_sync.search_fast" in modules
    assert not modules & set(HEAVY_MODULES), sorted(modules & set(HEAVY_MODULES))


@pytest.mark.parametrize("arguments", [
    ["search", '"sync', "{notes}"],  # a malformed query: the CLI says what is wrong
    ["search", "sync", "{notes}", "--help"],
])
def test_what_the_fast_path_cannot_answer_goes_to_the_full_cli(notes: Path,
                                                               arguments: list[str]) -> None:
    _result, modules = imported(expand(arguments, notes), notes)
    assert "typer" in modules and "bm_sync.cli" in modules


def test_a_moved_folder_is_left_to_the_full_cli_and_still_found(notes: Path,
                                                                tmp_path: Path) -> None:
    """The database records the folder at its old path: only the full identity rules (the
    folder keeps its project when moved) may decide, so the fast path declines."""
    moved = tmp_path / "moved"
    shutil.copytree(notes, moved, symlinks=True)
    os.rename(notes, tmp_path / "away")
    try:
        result, modules = imported(["search", "alpha", str(moved)], moved)
        full = bm(FULL_CLI, ["search", "alpha", str(moved)], moved)
    finally:
        os.rename(tmp_path / "away", notes)
    assert "typer" in modules
    assert (result.returncode, result.stdout) == (full.returncode, full.stdout)
    assert "set/a.md  A" in result.stdout.splitlines()


def test_the_fast_path_names_the_same_files_as_the_engine() -> None:
    assert search_fast.PROJECT_META == identity.PROJECT_META
    assert search_fast.STATE_DIR == detector.STATE_DIR
    assert search_fast.INDEX_FILE == detector.INDEX_FILE
    assert search_fast.META_EXTENSION == index_format.META_EXTENSION
    assert search_fast.REVISION_SQL == state.REVISION_SQL


def test_the_index_tail_gives_the_recorded_project_id(notes: Path, tmp_path: Path) -> None:
    index = notes / search_fast.STATE_DIR / search_fast.INDEX_FILE
    recorded = identity.recorded_id(index_format.read_index(index))
    assert recorded is not None
    assert search_fast.recorded_project_id(index) == recorded
    damaged = tmp_path / "index"
    damaged.write_bytes(index.read_bytes()[:-30] + bytes(30))  # EOIE and checksum zeroed
    assert search_fast.recorded_project_id(damaged) is None
    assert search_fast.recorded_project_id(tmp_path / "missing") is None
