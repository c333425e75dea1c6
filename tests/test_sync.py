"""`bm sync` and `SyncEngine`: the entity database follows the folder, on a real SQLite file."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bm_sync import Detector
from bm_sync.sync import SyncEngine
from tests.helpers import BM, as_unprivileged, bm_json, run_bm, share_state_with_everyone, write
from tests.helpers_pgfirst import Database, fresh_database
from tests.helpers_pgfirst import current as current_database
from tests.helpers_pgfirst import query as database_query

IDEA = """---
title: Git Index Idea
type: idea
tags: [sync, perf]
---
# Ignored heading
- [decision] Use the git index format #sync (from SPEC-19)
- implements [[Sync Engine]] (the core)
See also [[Missing Note]].
"""
ENGINE = "# Sync Engine\nThe engine.\n- part_of [[Git Index Idea]]\n"


def db_path(root: Path) -> Path:
    return root / ".basic-memory" / "memory.db"


def query(root: Path, sql: str, *args: object) -> list[tuple]:
    return database_query(root, sql, *args)


def entities(root: Path) -> dict[str, tuple]:
    return {row[0]: row[1:] for row in query(
        root, "SELECT file_path, id, permalink, title, entity_type, content_type, checksum, "
              "checksum_kind, size FROM entity ORDER BY file_path")}


def relations(root: Path) -> set[tuple]:
    return set(query(root, """
        SELECT source.file_path, relation.relation_type, relation.to_name, target.file_path
        FROM relation JOIN entity AS source ON source.id = relation.from_id
        LEFT JOIN entity AS target ON target.id = relation.to_id"""))


async def sync(root: Path, **kwargs):
    async with SyncEngine.open(root, **kwargs) as engine:
        return await engine.sync()


@pytest.mark.usefixtures("database")
async def test_first_sync_builds_entities_observations_and_relations(notes: Path) -> None:
    write(notes, "ideas/git index.md", IDEA)
    write(notes, "Sync Engine.md", ENGINE)
    write(notes, "papers/spec.pdf", b"%PDF-1.4 not really")
    report = await sync(notes)
    assert sorted(report.added) == ["Sync Engine.md", "ideas/git index.md", "papers/spec.pdf"]
    rows = entities(notes)
    _id, permalink, title, entity_type, content_type, checksum, kind, size = rows[
        "ideas/git index.md"]
    assert (permalink, title, entity_type, content_type) == (
        "ideas/git-index", "Git Index Idea", "idea", "text/markdown")
    expected_id = subprocess.run(["git", "hash-object", str(notes / "ideas/git index.md")],
                                 capture_output=True, text=True, check=True).stdout.strip()
    assert (checksum, kind, size) == (expected_id, "full", len(IDEA.encode()))
    assert rows["papers/spec.pdf"][4] == "application/pdf"
    assert rows["Sync Engine.md"][2] == "Sync Engine"
    assert dict(query(notes, "SELECT file_path, tags FROM entity")) == {
        "ideas/git index.md": '["sync", "perf"]', "Sync Engine.md": None,
        "papers/spec.pdf": None}
    assert query(notes, "SELECT category, content, tags, context FROM observation") == [
        ("decision", "Use the git index format", '["sync"]', "from SPEC-19")]
    assert relations(notes) == {
        ("ideas/git index.md", "implements", "Sync Engine", "Sync Engine.md"),
        ("ideas/git index.md", "links_to", "Missing Note", None),
        ("Sync Engine.md", "part_of", "Git Index Idea", "ideas/git index.md"),
    }


@pytest.mark.usefixtures("database")
async def test_no_change_sync_is_up_to_date_and_status_is_clean(notes: Path) -> None:
    write(notes, "a.md", "# A\n")
    await sync(notes)
    index_before = (notes / ".basic-memory/index").stat().st_mtime_ns
    report = await sync(notes)
    assert report.change_count == 0 and report.unchanged == 1
    assert (notes / ".basic-memory/index").stat().st_mtime_ns == index_before
    assert Detector(notes).status().change_count == 0


@pytest.mark.usefixtures("database")
async def test_modify_reparses_and_delete_unresolves_relations(notes: Path) -> None:
    write(notes, "ideas/git index.md", IDEA)
    write(notes, "Sync Engine.md", ENGINE)
    await sync(notes)
    write(notes, "Sync Engine.md", "# Sync Engine v2\n- [fact] rewritten #new\n")
    (notes / "ideas/git index.md").unlink()
    report = await sync(notes)
    assert report.modified == ["Sync Engine.md"] and report.deleted == ["ideas/git index.md"]
    assert list(entities(notes)) == ["Sync Engine.md"]
    assert entities(notes)["Sync Engine.md"][2] == "Sync Engine v2"
    assert query(notes, "SELECT category, content FROM observation") == [("fact", "rewritten")]
    assert relations(notes) == set()  # its own relations were replaced, the others deleted


@pytest.mark.usefixtures("database")
async def test_deleting_a_target_leaves_the_relation_unresolved(notes: Path) -> None:
    write(notes, "ideas/git index.md", IDEA)
    write(notes, "Sync Engine.md", ENGINE)
    await sync(notes)
    (notes / "Sync Engine.md").unlink()
    await sync(notes)
    assert ("ideas/git index.md", "implements", "Sync Engine", None) in relations(notes)


@pytest.mark.usefixtures("database")
async def test_forward_reference_resolves_when_target_appears(notes: Path) -> None:
    write(notes, "ideas/git index.md", IDEA)
    await sync(notes)
    assert ("ideas/git index.md", "implements", "Sync Engine", None) in relations(notes)
    write(notes, "Sync Engine.md", ENGINE)
    await sync(notes)
    assert ("ideas/git index.md", "implements", "Sync Engine", "Sync Engine.md") in relations(
        notes)


@pytest.mark.usefixtures("database")
async def test_move_keeps_entity_id_observations_and_incoming_relations(notes: Path) -> None:
    write(notes, "ideas/git index.md", IDEA)
    write(notes, "Sync Engine.md", ENGINE)
    await sync(notes)
    before = entities(notes)["ideas/git index.md"][0]
    (notes / "archive").mkdir()
    os.rename(notes / "ideas/git index.md", notes / "archive/git index.md")
    report = await sync(notes)
    assert report.moved == [("ideas/git index.md", "archive/git index.md")]
    rows = entities(notes)
    assert rows["archive/git index.md"][0] == before
    assert rows["archive/git index.md"][1] == "archive/git-index"
    assert query(notes, "SELECT count(*) FROM observation") == [(1,)]
    assert ("Sync Engine.md", "part_of", "Git Index Idea", "archive/git index.md") in relations(
        notes)


@pytest.mark.usefixtures("database")
async def test_permalink_conflicts_get_suffixes_that_stay_stable(notes: Path) -> None:
    write(notes, "a.md", "---\npermalink: shared\n---\n# A\n")
    write(notes, "b.md", "---\npermalink: shared\n---\n# B\n")
    write(notes, "c.md", "---\npermalink: shared\n---\n# C\n")
    await sync(notes)
    assert [row[1] for row in entities(notes).values()] == ["shared", "shared-1", "shared-2"]
    write(notes, "b.md", "---\npermalink: shared\n---\n# B edited\n")
    await sync(notes)
    assert entities(notes)["b.md"][1] == "shared-1"


@pytest.mark.usefixtures("database")
async def test_broken_frontmatter_is_indexed_and_reported(notes: Path) -> None:
    write(notes, "broken.md", "---\ntitle: [unclosed\n---\n# Body\n")
    write(notes, "latin1.md", "caf\xe9\n".encode("latin-1"))
    report = await sync(notes)
    warnings = {warning.path: warning.error for warning in report.file_warnings}
    assert "YAML" in warnings["broken.md"]
    assert "UTF-8" in warnings["latin1.md"]
    assert report.failed == [] and report.failed_total == 0  # indexed: a warning, no failure
    assert report.file_warnings_total == 2
    rows = entities(notes)
    assert rows["broken.md"][2] == "broken"  # the issue: title from the file name
    assert "latin1.md" in rows
    again = await sync(notes)  # indexed: not offered again until it changes
    assert again.failed == [] and again.file_warnings == []


@pytest.mark.usefixtures("database")
async def test_database_deleted_is_rebuilt(notes: Path) -> None:
    write(notes, "a.md", "# A\n")
    write(notes, "b.md", "# B\n")
    await sync(notes)
    current_database().remove(notes)
    report = await sync(notes)
    assert report.rebuilt and sorted(report.added) == ["a.md", "b.md"]
    assert sorted(entities(notes)) == ["a.md", "b.md"]
    assert (await sync(notes)).change_count == 0


@pytest.mark.usefixtures("database")
async def test_database_emptied_is_rebuilt(notes: Path) -> None:
    write(notes, "a.md", "# A\n")
    await sync(notes)
    current_database().execute(notes, "DELETE FROM entity" if not current_database().is_postgres
                               else "TRUNCATE entity CASCADE")
    report = await sync(notes)
    assert report.rebuilt
    assert list(entities(notes)) == ["a.md"]


@pytest.mark.usefixtures("database")
async def test_other_database_url_is_rebuilt_and_swept(notes: Path, tmp_path: Path) -> None:
    write(notes, "a.md", "# A\n")
    await sync(notes)
    other = f"sqlite+aiosqlite:///{tmp_path / 'other.db'}"
    report = await sync(notes, database_url=other)
    assert report.rebuilt and report.added == ["a.md"]
    (notes / "a.md").unlink()
    write(notes, "b.md", "# B\n")
    report = await sync(notes)  # back to the default database: it must notice
    assert report.rebuilt
    assert list(entities(notes)) == ["b.md"]


@pytest.mark.usefixtures("database")
async def test_missing_index_with_existing_database_sweeps_stale_rows(notes: Path) -> None:
    write(notes, "a.md", "# A\n")
    write(notes, "b.md", "# B\n")
    await sync(notes)
    (notes / ".basic-memory/index").unlink()
    (notes / "b.md").unlink()
    report = await sync(notes)
    assert report.rebuilt and "b.md" in report.deleted
    assert list(entities(notes)) == ["a.md"]


@pytest.mark.usefixtures("database")
async def test_handler_receives_each_applied_change(notes: Path) -> None:
    write(notes, "a.md", "# A\n")
    write(notes, "b.md", "# B\n")
    seen = []

    async def handler(change):
        seen.append((change.kind.value, change.path))

    async with SyncEngine.open(notes) as engine:
        await engine.sync(on_change=handler)
    assert sorted(seen) == [("added", "a.md"), ("added", "b.md")]


# SQLite only: runs as an unprivileged user (as_unprivileged).
def test_unreadable_file_fails_without_deletion_and_trips_the_breaker(notes: Path) -> None:
    write(notes, "a.md", "# A\n")
    write(notes, "b.md", "# B\n")
    assert run_bm("sync", str(notes), "--quiet").returncode == 0
    write(notes, "b.md", "# B changed\n").chmod(0o000)
    share_state_with_everyone(notes)

    def sync_unprivileged():
        import asyncio

        async def run():
            async with SyncEngine.open(notes) as engine:
                return await engine.sync()

        return asyncio.run(run())

    for _ in range(3):
        report = as_unprivileged(sync_unprivileged)
        assert report.deleted == [] and [f.error for f in report.failed] == ["permission denied"]
    report = as_unprivileged(sync_unprivileged)
    assert "skipped" in report.failed[0].error
    assert sorted(entities(notes)) == ["a.md", "b.md"]
    (notes / "b.md").chmod(0o644)
    write(notes, "b.md", "# B changed again\n")
    report = as_unprivileged(sync_unprivileged)
    assert report.modified == ["b.md"] and report.failed == []


# SQLite only: runs as an unprivileged user (as_unprivileged).
def test_a_permission_fix_rearms_the_breaker(notes: Path) -> None:
    """After 3 failures on an unreadable file, `chmod 644` alone (same content) is enough:
    the next sync indexes it instead of skipping it for an hour."""
    write(notes, "a.md", "# A\n")
    write(notes, "b.md", "# B\n")
    assert run_bm("sync", str(notes), "--quiet").returncode == 0
    write(notes, "b.md", "# B changed\n").chmod(0o000)
    share_state_with_everyone(notes)

    def sync_unprivileged():
        import asyncio

        async def run():
            async with SyncEngine.open(notes) as engine:
                return await engine.sync()

        return asyncio.run(run())

    for _ in range(3):
        assert [f.error for f in as_unprivileged(sync_unprivileged).failed] == [
            "permission denied"]
    assert "skipped" in as_unprivileged(sync_unprivileged).failed[0].error
    (notes / "b.md").chmod(0o644)
    report = as_unprivileged(sync_unprivileged)
    assert report.failed == [] and report.modified == ["b.md"]


def test_cli_sync_json_quiet_and_summary(notes: Path) -> None:
    write(notes, "a.md", "# A\n")
    data = bm_json("sync", str(notes))
    assert set(data) == {"added", "modified", "deleted", "moved", "failed", "unchanged",
                         "warnings", "rebuilt", "rebuild_reason", "duration_s"}
    assert data["added"] == ["a.md"] and isinstance(data["duration_s"], float)
    quiet = run_bm("sync", str(notes), "--quiet")
    assert quiet.returncode == 0 and quiet.stdout == "" and quiet.stderr == ""
    write(notes, "b.md", "# B\n")
    summary = run_bm("sync", str(notes))
    assert summary.returncode == 0
    lines = summary.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith("1 added, 0 modified, 0 deleted, 0 moved, "
                                                   "0 failed in ")
    assert run_bm("sync", str(notes)).stdout.startswith("up to date")
    assert run_bm("status", str(notes)).stdout.startswith("up to date")


# SQLite only: where the SQLite file named by --db or BM_DATABASE_URL is made.
def test_db_option_and_environment_variable(notes: Path, tmp_path: Path) -> None:
    write(notes, "a.md", "# A\n")
    url = f"sqlite+aiosqlite:///{tmp_path / 'elsewhere.db'}"
    assert run_bm("sync", str(notes), "--db", url, "--quiet").returncode == 0
    assert (tmp_path / "elsewhere.db").exists() and not db_path(notes).exists()
    other = f"sqlite+aiosqlite:///{tmp_path / 'env.db'}"
    assert run_bm("sync", str(notes), "--quiet", env={"BM_DATABASE_URL": other}).returncode == 0
    assert (tmp_path / "env.db").exists()


@pytest.mark.usefixtures("database")
def test_second_concurrent_sync_exits_at_once_or_waits(notes: Path) -> None:
    """A sync of a folder another process holds exits with code 1 while the holder still holds
    it (it does not wait); with --wait it runs once the holder lets go."""
    write(notes, "a.md", "# A\n")
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys\nfrom bm_sync import Detector\nd = Detector(sys.argv[1])\n"
         "with d.lock.hold():\n    print('locked', flush=True)\n    sys.stdin.readline()\n",
         str(notes)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdin is not None
    assert holder.stdout.readline().strip() == "locked"
    busy = run_bm("sync", str(notes))
    assert holder.poll() is None  # the lock was still held when the busy sync gave up
    assert busy.returncode == 1
    assert "another bm process" in busy.stderr and len(busy.stderr.strip().splitlines()) == 1
    waiting = subprocess.Popen([*BM, "sync", str(notes), "--wait", "--json"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    holder.stdin.write("release\n")
    holder.stdin.close()
    holder.wait()
    stdout, stderr = waiting.communicate(timeout=300)
    assert waiting.returncode == 0, stderr
    assert json.loads(stdout)["added"] == ["a.md"]


def test_usage_errors(notes: Path) -> None:
    result = run_bm("sync", str(notes / "missing"))
    assert result.returncode == 2 and result.stderr.startswith("bm: error:")


def _database_state(database: Database, root: Path) -> tuple:
    """Everything a knowledge app reads, without ids: entities, relations, observations."""
    rows = database.query(
        root, "SELECT file_path, permalink, title, checksum FROM entity ORDER BY file_path")
    links = database.query(root, """
        SELECT s.file_path, r.relation_type, r.to_name, t.file_path FROM relation r
        JOIN entity s ON s.id = r.from_id LEFT JOIN entity t ON t.id = r.to_id
        ORDER BY 1, 2, 3, 4""")
    observations = database.query(root, """
        SELECT e.file_path, o.category, o.content FROM observation o
        JOIN entity e ON e.id = o.entity_id ORDER BY 1, 2, 3""")
    return rows, links, observations


def _mutate_round(notes: Path, rng, round_number: int, identity: dict[str, int],
                  never_edit: set[str]) -> None:
    """A day of note-taking: a folder renamed, notes renamed, edited, added and deleted.

    `identity` maps each path to the entity id it must end with (moves carry it along). A
    note moved is not edited afterwards: after a crash its move and edit would reach the next
    sync as one move+edit, which a rebuild (no inode evidence) may not pair."""
    folders = sorted(path.name for path in notes.iterdir()
                     if path.is_dir() and not path.name.startswith("."))
    folder = rng.choice(folders)
    moved_folder = f"{folder}-r{round_number}"
    os.rename(notes / folder, notes / moved_folder)
    for path in [path for path in identity if path.startswith(folder + "/")]:
        new = moved_folder + path[len(folder):]
        identity[new] = identity.pop(path)
        never_edit.add(new)
    current = sorted(str(path.relative_to(notes)) for path in notes.rglob("*.md")
                     if ".basic-memory" not in path.parts)
    for path in rng.sample(current, 20):  # single renames into another folder
        if path not in identity or not (notes / path).exists():
            continue
        name = path.rsplit("/")[-1]
        new = f"{rng.choice(folders + [moved_folder])}/renamed r{round_number} {name}"
        if (notes / new).exists() or not (notes / new).parent.is_dir():
            continue
        os.rename(notes / path, notes / new)
        identity[new] = identity.pop(path)
        never_edit.add(new)
    for path in rng.sample(current, 150):  # edits: a line added, as a day's edit does
        if path in never_edit or not (notes / path).exists():
            continue
        text = (notes / path).read_text()
        write(notes, path, f"{text}- [fact] edited in round {round_number} #r{round_number}\n")
    for number in range(100):  # adds
        write(notes, f"new/r{round_number} {number}.md",
              f"# New {round_number} {number}\n- links_to [[Note {number}]]\n")
    for path in rng.sample(current, 40):  # deletes
        if (notes / path).exists() and path in identity:
            (notes / path).unlink()
            identity.pop(path)


@pytest.mark.parametrize(("database", "seed"), [("sqlite", 0), ("sqlite", 1), ("postgres", 0)],
                         indirect=["database"])
def test_sigkill_at_random_moments_converges(notes: Path, tmp_path: Path, seed: int,
                                            database: Database) -> None:
    """Kill real `bm sync` processes at random moments of syncs that apply adds, edits,
    deletes, renames and a folder move; the next sync must converge to exactly what a fresh
    sync builds, with every moved note keeping its entity id and no change recorded twice."""
    import random

    rng = random.Random(seed)
    for number in range(2500):
        links = " ".join(f"[[Note {rng.randrange(2500)}]]" for _ in range(2))
        body = "".join(f"Paragraph {line} of note {number}.\n" for line in range(8))
        write(notes, f"f{number % 16}/note {number}.md",
              f"# Note {number}\n{body}- [fact] number {number} #n{number % 7}\n"
              f"- relates {links}\n")
    started = time.monotonic()
    assert run_bm("sync", str(notes), "--quiet").returncode == 0
    full_sync_s = time.monotonic() - started
    identity = {path: row[0] for path, row in entities(notes).items()}
    never_edit: set[str] = set()
    killed = 0
    for round_number in range(4):
        _mutate_round(notes, rng, round_number, identity, never_edit)
        process = subprocess.Popen([*BM, "sync", str(notes), "--quiet"])
        time.sleep(rng.uniform(0.1, 1.0) * full_sync_s)
        process.kill()
        killed += process.wait() == -9
        # Whatever the moment, both stores stay readable and consistent enough to report.
        assert run_bm("status", str(notes)).returncode == 0
    assert killed >= 2, "the kills should land while a sync runs"
    final = run_bm("sync", str(notes), "--quiet")
    assert final.returncode == 0, final.stderr
    assert Detector(notes).status().change_count == 0
    fresh = fresh_database(tmp_path / "fresh.db")
    assert run_bm("sync", str(notes), "--db", fresh.url_for(notes),
                  "--quiet").returncode == 0
    crashed = _database_state(current_database(), notes)
    assert len(crashed[0]) == len({row[0] for row in crashed[0]})  # no duplicate paths
    assert crashed == _database_state(fresh, notes)
    ids = {path: row[0] for path, row in entities(notes).items()}
    assert {path: ids.get(path) for path in identity} == identity  # moves kept their ids
    repeated = query(notes, """SELECT path, old_path, content_id, count(*) FROM file_change
                               WHERE kind = 'moved' GROUP BY 1, 2, 3 HAVING count(*) > 1""")
    assert repeated == []  # a move replayed after a crash is recorded once


@pytest.mark.usefixtures("database")
async def test_interrupted_first_sync_then_delete_converges(notes: Path) -> None:
    """Regression: rows from a first sync that never finished must be swept later."""
    for number in range(450):  # three batches
        write(notes, f"n{number:03}.md", f"# Note {number}\n")

    def interrupt(change):
        raise KeyboardInterrupt  # stands for a kill after the first batch's commit

    async with SyncEngine.open(notes) as engine:
        with pytest.raises(KeyboardInterrupt):
            await engine.sync(on_change=interrupt)
    assert 0 < len(entities(notes)) < 450 and not (notes / ".basic-memory/index").exists()
    (notes / "n000.md").unlink()
    report = await sync(notes)
    assert report.rebuilt
    assert len(entities(notes)) == 449 and "n000.md" not in entities(notes)


# SQLite only: yesterday's copy of the SQLite file put back.
async def test_older_copy_of_the_database_is_noticed_and_rebuilt(notes: Path,
                                                                 tmp_path: Path) -> None:
    write(notes, "a.md", "# Old title\n")
    write(notes, "b.md", "# B\n")
    await sync(notes)
    backup = tmp_path / "backup.db"
    with sqlite3.connect(db_path(notes)) as source, sqlite3.connect(backup) as copy:
        source.backup(copy)
    write(notes, "a.md", "# New title\n")
    os.rename(notes / "b.md", notes / "c.md")
    await sync(notes)
    with sqlite3.connect(backup) as copy, sqlite3.connect(db_path(notes)) as target:
        copy.backup(target)  # someone restores yesterday's database
    report = await sync(notes)
    assert report.rebuilt
    rows = entities(notes)
    assert sorted(rows) == ["a.md", "c.md"] and rows["a.md"][2] == "New title"
    assert Detector(notes).status().change_count == 0


@pytest.mark.usefixtures("database")
async def test_rebuild_keeps_a_moved_note_and_its_incoming_relations(notes: Path) -> None:
    write(notes, "a/target.md", "# Target\n")
    write(notes, "src.md", "# Src\n- relates [[Target]]\n")
    await sync(notes)
    target_id = entities(notes)["a/target.md"][0]
    (notes / ".basic-memory" / "index").unlink()  # the index is lost...
    (notes / "b").mkdir()
    os.rename(notes / "a/target.md", notes / "b/target.md")  # ...and the note moved meanwhile
    heard = []
    async with SyncEngine.open(notes) as engine:
        report = await engine.sync(on_change=lambda change: heard.append(
            (change.kind.value, change.old_path, change.path)))
    assert ("moved", "a/target.md", "b/target.md") in heard  # the app hears of the move
    assert report.rebuilt and report.moved == [("a/target.md", "b/target.md")]
    assert "b/target.md" not in report.added and report.deleted == []
    assert entities(notes)["b/target.md"][0] == target_id
    assert relations(notes) == {("src.md", "relates", "Target", "b/target.md")}
    moves = query(notes, "SELECT old_path, path FROM file_change WHERE kind = 'moved'")
    assert moves == [("a/target.md", "b/target.md")]


@pytest.mark.usefixtures("database")
async def test_relations_follow_a_retitled_target(notes: Path) -> None:
    write(notes, "a.md", "# Alpha\n")
    write(notes, "src.md", "# Src\n- relates [[Alpha]]\n")
    await sync(notes)
    assert relations(notes) == {("src.md", "relates", "Alpha", "a.md")}
    write(notes, "a.md", "# Renamed\n")
    write(notes, "b.md", "# Alpha\n")
    await sync(notes)
    assert relations(notes) == {("src.md", "relates", "Alpha", "b.md")}


@pytest.mark.usefixtures("database")
async def test_swapped_permalinks_get_no_suffixes(notes: Path) -> None:
    write(notes, "a.md", "---\npermalink: x\n---\n# A\n")
    write(notes, "b.md", "---\npermalink: y\n---\n# B\n")
    await sync(notes)
    write(notes, "a.md", "---\npermalink: y\n---\n# A\n")
    write(notes, "b.md", "---\npermalink: x\n---\n# B\n")
    await sync(notes)
    rows = entities(notes)
    assert (rows["a.md"][1], rows["b.md"][1]) == ("y", "x")


def test_unusable_database_is_one_line(notes: Path, tmp_path: Path) -> None:
    write(notes, "a.md", "# A\n")
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not a database" * 100)
    broken = run_bm("sync", str(notes), "--db", f"sqlite+aiosqlite:///{garbage}")
    assert broken.returncode == 1 and broken.stderr.startswith("bm: error: database ")
    assert len(broken.stderr.strip().splitlines()) == 1
    typo = run_bm("sync", str(notes), "--db", "not a url")
    assert typo.returncode == 2 and len(typo.stderr.strip().splitlines()) == 1
    assert garbage.read_bytes() == b"this is not a database" * 100  # nothing was lost


def test_library_api_is_importable_and_status_stays_light() -> None:
    code = ("import sys, bm_sync\n"
            "assert 'sqlalchemy' not in sys.modules\n"
            "assert bm_sync.SyncEngine.__name__ == 'SyncEngine'\n"
            "assert set(bm_sync.__all__) >= {'SyncEngine', 'Detector', 'VersionPolicy'}\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


# SQLite only: runs as an unprivileged user (as_unprivileged).
def test_a_file_failing_during_a_rebuild_does_not_rebuild_forever(notes: Path) -> None:
    write(notes, "a.md", "# A\n")
    write(notes, "b.md", "# B\n")
    assert run_bm("sync", str(notes), "--quiet").returncode == 0
    (notes / ".basic-memory" / "index").unlink()  # forces a rebuild...
    (notes / "b.md").chmod(0o000)  # ...during which b.md cannot be read
    share_state_with_everyone(notes)

    def sync_twice():
        import asyncio

        async def run():
            async with SyncEngine.open(notes) as engine:
                first = await engine.sync()
            async with SyncEngine.open(notes) as engine:
                second = await engine.sync()
            return (first.rebuilt, [f.path for f in first.failed], first.deleted,
                    second.rebuilt, second.deleted)

        return asyncio.run(run())

    first_rebuilt, failed, first_deleted, second_rebuilt, second_deleted = as_unprivileged(
        sync_twice)
    assert first_rebuilt and failed == ["b.md"] and first_deleted == []
    assert not second_rebuilt and second_deleted == []
    assert sorted(entities(notes)) == ["a.md", "b.md"]  # the failure deleted nothing
    (notes / "b.md").chmod(0o644)
    report = bm_json("sync", str(notes))
    assert report["failed"] == [] and report["deleted"] == []
    assert Detector(notes).status().change_count == 0


def _many_notes(root: Path, count: int) -> None:
    for number in range(count):
        write(root, f"n{number // 100}/note {number}.md", f"# Note {number}\n- [fact] {number}\n")


def test_progress_bar_on_a_terminal_then_one_summary_line(notes: Path) -> None:
    import pty

    _many_notes(notes, 1500)
    primary, secondary = pty.openpty()
    process = subprocess.Popen([*BM, "sync", str(notes)], stdin=secondary, stdout=secondary,
                               stderr=secondary, env={**os.environ, "COLUMNS": "100"})
    os.close(secondary)
    chunks = []
    while True:
        try:
            chunk = os.read(primary, 65536)
        except OSError:  # the terminal closed: the process is gone
            break
        if not chunk:
            break
        chunks.append(chunk)
    assert process.wait(timeout=120) == 0
    os.close(primary)
    screen = b"".join(chunks).decode(errors="replace")
    assert "sync" in screen and "hashed" in screen and "applied" in screen  # the bar ran
    last = screen.replace("\r", "\n").strip().splitlines()[-1]
    assert "1500 added, 0 modified, 0 deleted, 0 moved, 0 failed in " in last


# SQLite only: waits for memory.db to appear to know the first sync holds the lock.
def test_a_second_real_sync_exits_at_once_while_the_first_runs(notes: Path) -> None:
    _many_notes(notes, 3000)
    first = subprocess.Popen([*BM, "sync", str(notes), "--quiet"], stderr=subprocess.PIPE,
                             text=True)
    database = notes / ".basic-memory" / "memory.db"
    deadline = time.monotonic() + 60
    while not database.exists() and time.monotonic() < deadline:
        time.sleep(0.01)  # the first sync is past its start: it holds the lock
    second = run_bm("sync", str(notes))
    assert first.wait(timeout=120) == 0, first.stderr.read()
    assert second.returncode == 1
    assert "another bm process" in second.stderr and len(second.stderr.splitlines()) == 1
    assert len(entities(notes)) == 3000 and Detector(notes).status().change_count == 0


# SQLite only: runs as an unprivileged user (as_unprivileged).
def test_breaker_retries_after_an_hour_and_the_failure_record_is_capped(notes: Path) -> None:
    write(notes, "ok.md", "# Ok\n")
    for number in range(150):
        write(notes, f"locked/n{number:03}.md", f"# {number}\n").chmod(0o000)
    assert run_bm("sync", str(notes), "--quiet").returncode == 0  # as root: all readable
    for number in range(150):
        write(notes, f"locked/n{number:03}.md", f"# {number} changed\n").chmod(0o000)
    share_state_with_everyone(notes)

    def sync_once():
        import asyncio

        async def run():
            async with SyncEngine.open(notes) as engine:
                report = await engine.sync()
            return len(report.failed), report.failed_total, report.failed[0].error

        return asyncio.run(run())

    for _ in range(3):
        assert as_unprivileged(sync_once) == (100, 150, "permission denied")
    listed, total, error = as_unprivileged(sync_once)
    assert (listed, total) == (100, 150) and error.startswith("skipped")
    with sqlite3.connect(db_path(notes)) as connection:  # an hour and a minute later...
        connection.execute("UPDATE sync_failure SET last_failed_at = last_failed_at - 3660")
    assert as_unprivileged(sync_once)[2] == "permission denied"  # ...it is tried again
    assert len(entities(notes)) == 151  # nothing was deleted along the way


@pytest.mark.usefixtures("database")
async def test_a_crash_then_an_undo_still_converges(notes: Path) -> None:
    """Killed after committing a move and an edit; the user then undoes both before the next
    sync. Against the old index the files look unchanged, so the sync must not trust it."""
    write(notes, "a.md", "# A\n")
    write(notes, "e.md", "# E\n")
    await sync(notes)
    ids = {path: row[0] for path, row in entities(notes).items()}
    os.rename(notes / "a.md", notes / "b.md")
    original = (notes / "e.md").read_bytes()
    write(notes, "e.md", "# E edited\n")

    def interrupt(change):
        raise KeyboardInterrupt  # stands for a kill right after the batch's commit

    async with SyncEngine.open(notes) as engine:
        with pytest.raises(KeyboardInterrupt):
            await engine.sync(on_change=interrupt)
    assert "b.md" in entities(notes)  # the move was committed, the index not written
    os.rename(notes / "b.md", notes / "a.md")  # the user undoes both
    write(notes, "e.md", original)
    report = await sync(notes)
    assert report.rebuilt
    rows = entities(notes)
    assert {path: row[0] for path, row in rows.items()} == ids
    assert rows["e.md"][5] == subprocess.run(["git", "hash-object", str(notes / "e.md")],
                                             capture_output=True, text=True).stdout.strip()
    assert Detector(notes).status().change_count == 0


# SQLite only: runs as an unprivileged user (as_unprivileged).
def test_a_rebuild_never_deletes_below_an_unreadable_folder(notes: Path) -> None:
    write(notes, "sub/a.md", "# A\n")
    write(notes, "b.md", "# B\n- relates [[A]]\n")
    assert run_bm("sync", str(notes), "--quiet").returncode == 0
    (notes / ".basic-memory" / "index").unlink()
    (notes / "sub").chmod(0o000)
    share_state_with_everyone(notes)

    def sync_twice():
        import asyncio

        async def run():
            reports = []
            for _ in range(2):
                async with SyncEngine.open(notes) as engine:
                    report = await engine.sync()
                reports.append((report.rebuilt, report.deleted, [f.path for f in report.failed]))
            return reports

        return asyncio.run(run())

    first, second = as_unprivileged(sync_twice)
    assert first == (True, [], ["sub"]) and second[:2] == (False, [])
    assert sorted(entities(notes)) == ["b.md", "sub/a.md"]
    assert relations(notes) == {("b.md", "relates", "A", "sub/a.md")}


@pytest.mark.usefixtures("database")
async def test_a_rebuilt_move_keeps_its_frontmatter_permalink(notes: Path) -> None:
    write(notes, "a.md", "---\npermalink: foo\n---\n# A\n")
    write(notes, "other.md", "# Other\n- relates [[foo]]\n")
    await sync(notes)
    (notes / ".basic-memory" / "index").unlink()
    os.rename(notes / "a.md", notes / "b.md")
    report = await sync(notes)
    assert report.rebuilt and report.moved == [("a.md", "b.md")]
    assert entities(notes)["b.md"][1] == "foo"
    assert relations(notes) == {("other.md", "relates", "foo", "b.md")}


@pytest.mark.usefixtures("database")
async def test_a_long_lived_engine_keeps_moves_through_a_rebuild(notes: Path) -> None:
    write(notes, "a.md", "# A\n")
    async with SyncEngine.open(notes) as engine:
        await engine.sync()
        first_id = entities(notes)["a.md"][0]
        (notes / ".basic-memory" / "index").unlink()
        os.rename(notes / "a.md", notes / "b.md")
        report = await engine.sync()
    assert report.moved == [("a.md", "b.md")] and entities(notes)["b.md"][0] == first_id


@pytest.mark.usefixtures("database")
async def test_editing_two_notes_together_keeps_their_permalinks(notes: Path) -> None:
    write(notes, "foo.md", "# Foo\n")
    await sync(notes)
    write(notes, "x.md", "---\npermalink: foo\n---\n# X\n")  # wants foo, which is taken
    await sync(notes)
    assert (entities(notes)["foo.md"][1], entities(notes)["x.md"][1]) == ("foo", "foo-1")
    write(notes, "foo.md", "# Foo edited\n")
    write(notes, "x.md", "---\npermalink: foo\n---\n# X edited\n")
    await sync(notes)
    assert (entities(notes)["foo.md"][1], entities(notes)["x.md"][1]) == ("foo", "foo-1")


def test_a_note_edited_after_its_hash_is_not_indexed_with_the_new_content(notes: Path) -> None:
    """The row describes the content whose id is recorded: bytes read after the hash was
    taken that are another version make the file a "changed during sync" failure (not
    indexed, retried by the next sync), never a row mixing two versions."""
    from bm_sync.apply import prepare
    from bm_sync.changes import Change, ChangeKind, HashKind
    from bm_sync.hashing import blob_id

    hashed = b"# Old title\n"
    write(notes, "a.md", "# New title\n")
    change = Change(ChangeKind.ADDED, "a.md", None, blob_id(hashed), HashKind.FULL,
                    len(hashed), 0)
    prepared = prepare(notes, change)
    assert prepared.error is not None and "changed during sync" in prepared.error
    write(notes, "a.md", hashed)
    assert prepare(notes, change).error is None


@pytest.mark.usefixtures("database")
async def test_links_resolve_by_path_order_whatever_the_insertion_order(notes: Path) -> None:
    """Two notes titled alike: `[[Core Service]]` resolves to the first by path, in an
    incremental sync as in a fresh one; an edge named twice is one relation."""
    write(notes, "z/core.md", "# Core Service\n")
    write(notes, "links.md", "# Links\n- uses [[Core Service]]\n")
    await sync(notes)
    write(notes, "a/core.md", "# Core Service\n")
    write(notes, "links.md", "# Links\n- uses [[Core Service]]\n- uses [[a/core]]\n")
    await sync(notes)
    incremental = query(notes, "SELECT e.file_path FROM relation r JOIN entity e "
                               "ON e.id = r.to_id")
    assert incremental == [("a/core.md",)]
