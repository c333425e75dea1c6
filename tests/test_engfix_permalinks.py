"""Permalinks converge across syncs (soak defect: a moved note asking for `x` kept `x-2`).

A note that wants a permalink another note holds gets a suffix; its row remembers what it
wants, and the end of every later sync hands it over once it is free, so the result is what a
fresh sync of the tree gives. Each case is a sequence of syncs, each after some writes and
deletions; on SQLite and PostgreSQL.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import run_bm, write
from tests.helpers_search import database_fixture, rows, sync_args  # noqa: F401 (fixture)


def note(name: str, body: str = "text", permalink: str | None = "x") -> str:
    if permalink is None:
        return f"# {name}\n{body}\n"
    return f"---\npermalink: {permalink}\n---\n# {name}\n{body}\n"


# (files written, files deleted) per sync; then path -> permalink after the last sync.
Step = tuple[dict[str, str], list[str]]
CASES: dict[str, tuple[list[Step], dict[str, str]]] = {
    # The soak's case: the watcher saw the move's new path before the old one was gone, so
    # one sync added the note while its old row held `x`, the next deleted the old row.
    "a move seen in two syncs": (
        [({"old/p.md": note("P")}, []),
         ({"new/p.md": note("P")}, []),
         ({}, ["old/p.md"])],
        {"new/p.md": "x"}),
    "a holder deleted in a later sync": (
        [({"a.md": note("A"), "b.md": note("B")}, []),
         ({}, ["a.md"])],
        {"b.md": "x"}),
    "explicit before generated, then path order": (
        [({"x.md": note("X", permalink=None), "b.md": note("B"), "c.md": note("C")}, []),
         ({}, ["x.md"])],
        {"b.md": "x", "c.md": "x-1"}),
    "a holder moved away from the permalink": (
        [({"a.md": note("A"), "b.md": note("B")}, []),
         ({"a.md": note("A", permalink="y")}, [])],
        {"a.md": "y", "b.md": "x"}),
    "a note that stops wanting it does not take it later": (
        [({"a.md": note("A"), "b.md": note("B")}, []),
         ({"b.md": note("B", permalink="z")}, []),
         ({}, ["a.md"])],
        {"b.md": "z"}),
    # Incumbency: the holder still wants `x` and keeps it (links stay stable), even though a
    # fresh sync would serve a.md first. The one case a history differs from a fresh sync.
    "the incumbent keeps it": (
        [({"b.md": note("B")}, []),
         ({"a.md": note("A")}, []),
         ({"b.md": note("B", body="edited")}, [])],
        {"a.md": "x-1", "b.md": "x"}),
}


@pytest.mark.parametrize("case", list(CASES))
def test_permalinks_converge(notes: Path, database: str | None, case: str) -> None:
    steps, expected = CASES[case]
    for written, deleted in steps:
        for path, content in written.items():
            write(notes, path, content)
        for path in deleted:
            (notes / path).unlink()
        result = run_bm("sync", str(notes), *sync_args(database))
        assert result.returncode == 0, result.stderr
    held = dict(rows(notes, database, "SELECT file_path, permalink FROM entity"))
    assert held == expected
    # Settled rows remember nothing; a note left with a suffix remembers what it wants.
    wanting = dict(rows(notes, database, "SELECT file_path, wanted_permalink FROM entity "
                                         "WHERE wanted_permalink IS NOT NULL"))
    assert wanting == {path: "x" for path, permalink in expected.items()
                       if permalink.startswith("x-")}
