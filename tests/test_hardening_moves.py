"""Issue 7, false moves: a template's shape is not evidence, even before a census knows it.

The line census (rarity weights) needs several notes from a template to discount its lines; a
folder with one or two daily notes has none. These cases run `pair_moves` without weights (no
census yet), so only the sketch's own structural discount can keep a new day from inheriting
the deleted day's identity, while a real note moved and edited is still a move.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bm_sync.sketch import compute_sketch, is_structure
from tests.helpers import bm_json, run_bm, write
from tests.test_renames import Side, run_pairing

FRONTMATTER = ["---", "type: daily", "tags: [daily, journal]", "status: draft", "---"]
SCAFFOLD = ["## Focus", "- [ ]", "- [ ]", "## Tasks", "- [ ] ", "* [x]", "## Journal",
            "- Mood:", "- Energy:", "**Gratitude:**", "---", "## Links", "#daily #journal"]


def day(number: int, body: list[str]) -> list[str]:
    return [FRONTMATTER[0], f"title: 2024-01-{number:02d}", f"date: 2024-01-{number:02d}",
            *FRONTMATTER[1:], f"# 2024-01-{number:02d}", *SCAFFOLD, *body]


MEETING = ["---", "title: Call with Bob", "tags: [meeting]", "---", "# Call with Bob",
           "Bob sends the signed contract by Friday.", "We go with the blue vendor for hosting."]
MEETING_EDITED = [*MEETING[:-1], "We go with the green vendor after all."]

CASES = [
    pytest.param([Side("2024-01-01.md", day(1, ["gym at seven"]))],
                 [Side("2024-01-02.md", day(2, ["lunch with Ana"]))], [],
                 id="a new day from a template used once is not a move"),
    pytest.param([Side("2024-01-01.md", day(1, ["gym at seven"]), ino=7, size=1, mtime_ns=1)],
                 [Side("2024-01-02.md", day(2, ["lunch with Ana"]), ino=7, size=2, mtime_ns=2)],
                 [], id="nor with the deleted day's inode reused"),
    pytest.param([Side("2024-01-01.md", day(1, [])), Side("2024-01-02.md", day(2, ["read"]))],
                 [Side("2024-01-03.md", day(3, [])), Side("2024-01-04.md", day(4, ["swim"]))],
                 [], id="two days deleted, two created: empty days are no evidence"),
    pytest.param([Side("2024-01-01.md", day(1, ["gym at seven", "called the bank"]))],
                 [Side("archive/2024-01-01.md",
                       day(1, ["gym at seven", "called the bank", "one more thing"]))],
                 [("2024-01-01.md", "archive/2024-01-01.md", "similarity")],
                 id="the same day moved with a line added is a move"),
    pytest.param([Side("call.md", MEETING)], [Side("meetings/call.md", MEETING_EDITED)],
                 [("call.md", "meetings/call.md", "similarity")],
                 id="a short real note moved with one of its two sentences edited is a move"),
    pytest.param([Side("call.md", MEETING)],
                 [Side("meetings/call.md", [*MEETING, "Ana joins the next call."])],
                 [("call.md", "meetings/call.md", "similarity")],
                 id="a short real note moved with a sentence added is a move"),
    pytest.param([Side("call.md", MEETING, ino=9, size=1, mtime_ns=1)],
                 [Side("call-bob.md", ["---", "title: Bob", "---", *MEETING[4:]],
                       ino=9, size=2, mtime_ns=2)],
                 [("call.md", "call-bob.md", "inode")],
                 id="renamed and its frontmatter rewritten in place is a move"),
    pytest.param([Side("outline.md", ["# Plan", "## Goals", "## Risks"])],
                 [Side("plans/outline.md", ["# Plan", "## Goals", "## Risks", "## Budget"])],
                 [("outline.md", "plans/outline.md", "similarity")],
                 id="an outline moved and edited pairs by its title heading"),
    pytest.param([Side("outline.md", ["## Goals", "## Risks"])],
                 [Side("plans/outline.md", ["## Goals", "## Risks", "## Budget"])], [],
                 id="subheadings only are no words to pair by (known limit)"),
]


@pytest.mark.parametrize(("deleted", "added", "expected"), CASES)
def test_pair_moves_without_a_census(deleted: list[Side], added: list[Side],
                                     expected: list[tuple[str, str, str]]) -> None:
    assert run_pairing(deleted, added) == expected


@pytest.mark.parametrize(("line", "structure"), [
    ("## Tasks", True), ("# 2024-01-02", False), ("#", True), ("###### Notes", True),
    ("#daily #journal", True), ("- Mood:", True),
    ("- [ ]", True), ("- [x]", True), ("1.", True), ("**Attendees:**", True), ("---", True),
    ("* * *", True), ("|---|---|", True), ("```python", True), ("Action items::", True),
    ("#tag and words", False), ("- [x] gym at seven", False), ("Mood: 7/10", False),
    ("- previous [[2024-01-01]]", False), ("- [fact] tea is good", False),
    ("Called the bank.", False), ("日本語のメモ", False),
    ("These are the three reasons why we moved the launch:", False),
])
def test_is_structure(line: str, structure: bool) -> None:
    assert is_structure(line.encode()) is structure


@pytest.mark.parametrize(("content", "kept"), [
    ("---\ntype: daily\ntags: [a]\n---\nbody\n", ["body"]),
    ("\n\n---\ntype: x\n---\nbody\n", ["body"]),
    ("---\ntitle: Call\nDate: 2024-01-02\nstatus: x\ntitle:\n---\nbody\n",
     ["title: Call", "Date: 2024-01-02", "body"]),  # the keys that name the note stay
    ("---\nbody after a rule\n", ["body after a rule"]),  # never closed: not frontmatter
    ("text\n---\ntitle: x\n---\n", ["text", "title: x"]),  # not at the top: rules and words
])
def test_the_frontmatter_block_is_left_out_but_names(content: str, kept: list[str]) -> None:
    assert compute_sketch(content.encode()) == compute_sketch("\n".join(kept).encode())


def test_bm_status_a_folder_with_one_daily_note(notes: Path) -> None:
    """The issue's example where the census cannot help: the only daily note of the folder is
    deleted and the next day created from the same template."""
    write(notes, "projects/roadmap.md", "# Roadmap\nShip the importer in March.\n")
    write(notes, "journal/2024-01-01.md", "\n".join(day(1, ["gym at seven"])) + "\n")
    assert run_bm("sync", str(notes), "--quiet").returncode == 0
    (notes / "journal/2024-01-01.md").unlink()
    write(notes, "journal/2024-01-02.md", "\n".join(day(2, ["lunch with Ana"])) + "\n")
    report = bm_json("status", str(notes))
    assert report["moved"] == []
    assert report["added"] == ["journal/2024-01-02.md"]
    assert report["deleted"] == ["journal/2024-01-01.md"]
