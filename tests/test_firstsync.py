"""A first sync (a project without entities) takes a shorter write path: no statements that look
for rows an added path cannot have, relations resolved project-wide, and on PostgreSQL the
observations and relations loaded by COPY. It must build exactly the database the general path
builds for the same files: every entity, observation, relation and search document.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bm_sync import known_targets
from bm_sync.sync import SyncEngine
from tests import postgres
from tests.helpers import run_bm, write
from tests.helpers_firstsync import project_rows
from tests.helpers_pgfirst import Database

NOTES = 260  # two batches of 200: links cross them in both directions
# Notes of the second batch (folder6) that take over a name the first batch's links resolved
# to another note, by a better rule: a first sync inserts those links resolved before it
# knows, so it must resolve them again.
LATER_NAMES = {
    251: "permalink: Note 5",  # [[Note 5]] (note 75): the permalink beats the title
    244: "title: folder0/note-007.md",  # [[folder0/note-007.md]] (note 1): title beats path
    237: "title: Note 12",  # [[Note 12]]: two notes with that title, the first by path wins
}


def tree(root: Path) -> None:
    """Notes that exercise every rule the write path applies: permalinks set in frontmatter
    (two notes wanting one, so one waits with `-1`), titles shared by two notes, links by
    permalink, title, path with and without `.md`, to notes of earlier and later batches,
    names a later batch takes over (`LATER_NAMES`), one edge named two ways (collapsed),
    repeated edges (collapsed), dangling links, observations with tags and context, NUL
    characters (PostgreSQL stores U+FFFD), and a file that is not a note."""
    for number in range(NOTES):
        name = f"folder{number % 7}/note-{number:03d}.md"
        later, earlier = (number + 130) % NOTES, (number * 7) % NOTES
        frontmatter = ""
        if number in LATER_NAMES:
            frontmatter = f"---\n{LATER_NAMES[number]}\n---\n"
        elif number % 40 == 0:
            frontmatter = "---\npermalink: shared-permalink\ntags: [a, b]\n---\n"
        elif number % 11 == 0:
            frontmatter = f"---\ntitle: Common Title {number % 3}\ntype: topic\n---\n"
        write(root, name, (
            f"{frontmatter}# Note {number}\n\nSome prose about note {number}.\n\n"
            f"- [fact] note {number} holds a fact #tag{number % 5} (context {number})\n"
            f"- [idea] another \x00 idea\n"
            f"- relates_to [[note {later}]]\n"  # unresolved: no such title or path
            f"- links [[folder{later % 7}/note-{later:03d}]]\n"  # a path without .md
            f"- links [[folder{earlier % 7}/note-{earlier:03d}.md]]\n"  # a path with .md
            f"- links [[folder{earlier % 7}/note-{earlier:03d}]]\n"  # that edge again
            f"- mentions [[Common Title {number % 3}]] and [[shared-permalink]]\n"
            f"- mentions [[common title {number % 3}]]\n"  # the same edge again
            f"- \"part of\" [[Note {earlier}]] (why \x00 not)\n"))
    write(root, "assets/picture.png", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)


def sync_both_ways(tmp_path: Path, database: Database,
                   make: Callable[[Path], None]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The rows of the tree `make` writes, synced once into a new project (the first-sync path)
    and once into a project that already has a row (the general path)."""
    first = tmp_path / "first"
    make(first)
    assert run_bm("sync", str(first), "--quiet").returncode == 0
    return project_rows(database, first), project_rows(database, general_path(tmp_path, make))


def general_path(tmp_path: Path, make: Callable[[Path], None]) -> Path:
    """The folder `tmp_path / "general"` holding the tree `make` writes, synced through the
    general path: its project had a row (a placeholder note, deleted by the same sync)."""
    general = tmp_path / "general"
    write(general, "zz-placeholder.md", "# Placeholder\n")
    assert run_bm("sync", str(general), "--quiet").returncode == 0
    (general / "zz-placeholder.md").unlink()
    make(general)
    assert run_bm("sync", str(general), "--quiet").returncode == 0
    return general


def test_a_first_sync_builds_what_the_general_path_builds(database: Database,
                                                          tmp_path: Path) -> None:
    fresh, incremental = sync_both_ways(tmp_path, database, tree)
    assert len(fresh["entity"]) == NOTES + 1
    assert sum(1 for row in fresh["relation"] if row[1] is not None) > NOTES * 3
    assert any(row[1] == "shared-permalink-1" for row in fresh["entity"])
    for table in ("entity", "observation", "relation", "search"):
        assert fresh[table] == incremental[table], table


def collation_tree(root: Path) -> None:
    """Two notes titled alike whose order by path differs between bytes (the order notes are
    written in: `Zed` before `yak`) and the database's collation (en-US: `yak` first), in
    two batches, and a link to their title from the first batch."""
    write(root, "a/Zed.md", "# Same\n")
    for number in range(199):
        write(root, f"a/filler-{number:03d}.md", f"# Filler {number}\n\n- links_to [[Same]]\n")
    write(root, "a/yak.md", "# Same\n")


def test_a_link_to_a_shared_title_follows_the_database_collation(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Among notes matching a link by title, the first by path in the database's collation
    wins, which a first sync cannot judge while it writes: the link it inserted resolved
    (to `Zed`, the only `Same` of the first batch) is resolved again once `yak` shares it."""
    server = postgres.server().url
    name = f"bm_test_{uuid.uuid4().hex[:16]}"
    postgres._execute(server, f'CREATE DATABASE "{name}" TEMPLATE template0 '
                              "LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C'")
    url = server.split("?", 1)[0].rsplit("/", 1)[0] + f"/{name}?" + server.split("?", 1)[1]
    monkeypatch.setenv("BM_DATABASE_URL", url)
    try:
        fresh, incremental = sync_both_ways(tmp_path, Database("postgres", url),
                                            collation_tree)
    finally:
        postgres.drop_database(url)
    targets = {row[1] for row in fresh["relation"]}
    assert targets == {"a/yak.md"}
    assert fresh["relation"] == incremental["relation"]


async def test_past_its_memory_caps_a_first_sync_still_builds_the_same(
        database: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With room for 300 names and 40 held relations (a tenant needs ~10,000 and ~9,000), the
    notes past the caps go in as the general path writes them: the rows are the same."""
    first = tmp_path / "first"
    tree(first)
    with monkeypatch.context() as caps:
        caps.setattr(known_targets, "NAMES_MAX", 300)
        caps.setattr(known_targets, "HELD_MAX", 40)
        async with SyncEngine.open(first, database.url) as engine:  # None: the default file
            report = await engine.sync()
    assert report.change_count == NOTES + 1
    general = general_path(tmp_path, tree)
    fresh, incremental = project_rows(database, first), project_rows(database, general)
    for table in ("entity", "observation", "relation", "search"):
        assert fresh[table] == incremental[table], table
