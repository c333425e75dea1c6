"""`bm history`, `bm restore`, `bm prune`: runs, timelines that follow moves, versions."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bm_sync.errors import HistoryError
from bm_sync.hashing import blob_id
from bm_sync.sync import SyncEngine
from bm_sync.versions import MAX_PACKS, VersionPolicy
from tests.helpers import (
    BM,
    REPO,
    as_unprivileged,
    bm_json,
    run_bm,
    share_state_with_everyone,
    write,
)
from tests.helpers_pgfirst import current as current_database


def sync(root: Path, *args: str) -> None:
    """`bm sync` with options in a subprocess; without, the same sync in this process (the
    stories below take many syncs, and a subprocess costs a second of imports)."""
    if not args:
        asyncio.run(sync_once(root))
        return
    result = run_bm("sync", str(root), "--quiet", *args)
    assert result.returncode == 0, result.stderr


async def sync_once(root: Path) -> None:
    """One sync in this process, through its own engine, as `bm sync` does."""
    async with SyncEngine.open(root) as engine:
        await engine.sync()


def objects_bytes(root: Path) -> int:
    folder = root / ".basic-memory" / "objects"
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


@pytest.fixture
def story(notes: Path) -> dict[str, bytes]:
    """Created, edited twice, moved and edited (one sync), moved again: five entries."""
    versions = {}
    for step, (path, text) in enumerate([
        ("inbox/idea.md", "# Idea\nfirst\n"),
        ("inbox/idea.md", "# Idea\nfirst\nsecond\n"),
        ("inbox/idea.md", "# Idea\nfirst\nsecond\nthird\n"),
    ]):
        write(notes, path, text, old=False)
        sync(notes)
        versions[f"v{step + 1}"] = text.encode()
    (notes / "projects").mkdir()
    os.rename(notes / "inbox/idea.md", notes / "projects/idea.md")
    (notes / "projects/idea.md").write_text("# Idea\nfirst\nsecond\nthird\nfourth\n")
    sync(notes)
    versions["v4"] = (notes / "projects/idea.md").read_bytes()
    (notes / "archive").mkdir()
    os.rename(notes / "projects/idea.md", notes / "archive/idea.md")
    sync(notes)
    return versions


@pytest.mark.usefixtures("database")
def test_timeline_follows_moves_with_five_entries(notes: Path, story: dict) -> None:
    """The issue's story: the move to projects/ and the fourth edit land in one sync, so that
    entry is a move that carries new content."""
    data = bm_json("history", str(notes / "archive/idea.md"))
    assert data["path"] == "archive/idea.md"
    entries = data["versions"]
    ids = {name: blob_id(content) for name, content in story.items()}
    assert [(entry["kind"], entry["path"], entry["old_path"], entry["content_id"])
            for entry in entries] == [
        ("moved", "archive/idea.md", "projects/idea.md", ids["v4"]),
        ("moved", "projects/idea.md", "inbox/idea.md", ids["v4"]),
        ("modified", "inbox/idea.md", None, ids["v3"]),
        ("modified", "inbox/idea.md", None, ids["v2"]),
        ("added", "inbox/idea.md", None, ids["v1"]),
    ]
    assert [entry["size"] for entry in entries] == [len(story[name]) for name in
                                                    ("v4", "v4", "v3", "v2", "v1")]
    assert all(entry["stored"] for entry in entries)
    assert len({entry["run_id"] for entry in entries}) == 5  # one sync each
    text = run_bm("history", str(notes / "archive/idea.md")).stdout.splitlines()
    assert [line.split()[0] for line in text] == ["~0", "~0", "~1", "~2", "~3"]
    assert "projects/idea.md -> archive/idea.md" in text[0]


def test_move_and_edit_in_separate_syncs_is_six_entries(notes: Path) -> None:
    """Created, edited twice, moved, edited, moved again, each its own sync: a pure move is an
    entry of its own (sharing the `~N` of the content it carries), so six entries and four
    versions, every one restorable byte for byte."""
    steps = [("inbox/idea.md", "# Idea\nfirst\n"), ("inbox/idea.md", "# Idea\nfirst\nsecond\n"),
             ("inbox/idea.md", "# Idea\nfirst\nsecond\nthird\n")]
    for path, text in steps:
        write(notes, path, text, old=False)
        sync(notes)
    (notes / "projects").mkdir()
    os.rename(notes / "inbox/idea.md", notes / "projects/idea.md")
    sync(notes)
    write(notes, "projects/idea.md", "# Idea\nfirst\nsecond\nthird\nfourth\n", old=False)
    sync(notes)
    (notes / "archive").mkdir()
    os.rename(notes / "projects/idea.md", notes / "archive/idea.md")
    sync(notes)
    contents = [text.encode() for _path, text in steps]
    contents.append(b"# Idea\nfirst\nsecond\nthird\nfourth\n")
    v1, v2, v3, v4 = (blob_id(content) for content in contents)
    target = str(notes / "archive/idea.md")
    entries = bm_json("history", target)["versions"]
    assert [(entry["kind"], entry["path"], entry["old_path"], entry["content_id"])
            for entry in entries] == [
        ("moved", "archive/idea.md", "projects/idea.md", v4),
        ("modified", "projects/idea.md", None, v4),
        ("moved", "projects/idea.md", "inbox/idea.md", v3),
        ("modified", "inbox/idea.md", None, v3),
        ("modified", "inbox/idea.md", None, v2),
        ("added", "inbox/idea.md", None, v1),
    ]
    text = run_bm("history", target).stdout.splitlines()
    assert [line.split()[0] for line in text] == ["~0", "~0", "~1", "~1", "~2", "~3"]
    for back, content in enumerate(reversed(contents)):
        restored = run_bm("restore", target, "--rev", f"~{back}")
        assert restored.returncode == 0, restored.stderr
        assert (notes / "archive/idea.md").read_bytes() == content


def test_every_version_is_restorable_byte_for_byte(notes: Path, story: dict) -> None:
    target = notes / "archive/idea.md"
    for back, name in enumerate(["v4", "v3", "v2", "v1"]):
        shown = subprocess.run([*BM, "history", str(target), "--show", f"~{back}"],
                               capture_output=True)
        assert shown.returncode == 0 and shown.stdout == story[name]
        restored = run_bm("restore", str(target), "--rev", f"~{back}")
        assert restored.returncode == 0, restored.stderr
        assert target.read_bytes() == story[name]
    status = bm_json("status", str(notes))
    assert status["modified"] == ["archive/idea.md"]  # the restore is a modification
    sync(notes)
    latest = bm_json("history", str(target))["versions"][0]
    assert latest["kind"] == "modified"


def test_content_id_prefix_and_diff(notes: Path, story: dict) -> None:
    target = str(notes / "archive/idea.md")
    versions = bm_json("history", target)["versions"]
    first = versions[-1]["content_id"]
    shown = run_bm("history", target, "--show", first[:7])
    assert shown.stdout.encode() == story["v1"]
    diff = run_bm("history", target, "--diff", "~1").stdout
    assert "+fourth" not in diff and "+third" in diff and diff.startswith("---")
    (notes / "archive/idea.md").write_text("# Idea\nrewritten on disk\n")
    against_disk = run_bm("history", target, "--diff").stdout
    assert "+rewritten on disk" in against_disk and "-fourth" in against_disk


def test_unknown_file_or_revision_is_one_line_exit_1(notes: Path, story: dict) -> None:
    for args in (["history", str(notes / "nope.md")],
                 ["history", str(notes / "archive/idea.md"), "--show", "~9"],
                 ["history", str(notes / "archive/idea.md"), "--show", "zzzz"],
                 ["restore", str(notes / "archive/idea.md"), "--rev", "deadbeef"]):
        result = run_bm(*args)
        assert result.returncode == 1, args
        assert len(result.stderr.strip().splitlines()) == 1 and result.stderr.startswith("bm: ")


def test_runs_newest_first_with_counts(notes: Path, story: dict) -> None:
    runs = bm_json("history", str(notes))["runs"]
    assert len(runs) == 5 and runs[0]["id"] > runs[-1]["id"]
    assert runs[0]["moved"] == 1 and runs[-1]["added"] == 1
    assert all(run["status"] == "completed" for run in runs)
    assert set(runs[0]) == {"id", "started_at", "duration_s", "added", "modified", "deleted",
                            "moved", "failed", "status"}
    assert len(run_bm("history", str(notes), "--limit", "2").stdout.splitlines()) == 2


@pytest.mark.usefixtures("database")
async def test_interrupted_run_is_recorded_as_such_and_not_duplicated(notes: Path) -> None:
    for number in range(450):
        write(notes, f"n{number:03}.md", f"# Note {number}\n")

    def interrupt(change):
        raise KeyboardInterrupt

    async with SyncEngine.open(notes) as engine:
        with pytest.raises(KeyboardInterrupt):
            await engine.sync(on_change=interrupt)
    async with SyncEngine.open(notes) as engine:
        await engine.sync()
        runs = await engine.runs()
        assert [run.status for run in runs] == ["completed", "interrupted"]
        assert runs[1].added == 200 and runs[0].added == 250  # the first batch, not twice
        timeline = await engine.history("n000.md")
        assert [entry.kind for entry in timeline] == ["added"]


def test_binary_file_has_a_timeline_but_no_content(notes: Path) -> None:
    write(notes, "photo.png", b"\x89PNG\r\n\x1a\n" + os.urandom(100))
    sync(notes)
    entries = bm_json("history", str(notes / "photo.png"))["versions"]
    assert [(entry["kind"], entry["stored"]) for entry in entries] == [("added", False)]
    shown = run_bm("history", str(notes / "photo.png"), "--show", "~0")
    assert shown.returncode == 1 and "not stored" in shown.stderr


def test_identical_content_is_stored_once_and_git_reads_it(notes: Path) -> None:
    write(notes, "a.md", "# Same\n")
    write(notes, "b.md", "# Same\n")
    write(notes, "c.md", "# Other\n")
    sync(notes)
    objects = notes / ".basic-memory" / "objects"
    packs = list((objects / "pack").glob("*.pack"))
    assert len(packs) == 1  # one sync, one pack
    listing = subprocess.run(["git", "verify-pack", "-v", str(packs[0])], capture_output=True,
                             text=True, check=True).stdout
    assert sum(" blob " in line for line in listing.splitlines()) == 2
    blob = bm_json("history", str(notes / "a.md"))["versions"][0]["content_id"]
    git_dir = notes / ".empty.git"
    subprocess.run(["git", "init", "-q", "--bare", str(git_dir)], check=True)
    shown = subprocess.run(["git", "cat-file", "-p", blob], capture_output=True, check=True,
                           env={**os.environ, "GIT_DIR": str(git_dir),
                                "GIT_OBJECT_DIRECTORY": str(objects)}).stdout
    assert shown == b"# Same\n"


def test_versions_off(notes: Path) -> None:
    write(notes, "a.md", "# A\n")
    sync(notes, "--no-versions")
    assert not list((notes / ".basic-memory").glob("objects/pack/*.pack"))
    entries = bm_json("history", str(notes / "a.md"))["versions"]
    assert entries[0]["kind"] == "added" and entries[0]["stored"] is False


@pytest.mark.usefixtures("database")
async def test_library_history_api(notes: Path) -> None:
    write(notes, "a.md", "# A\n")
    async with SyncEngine.open(notes, versions=VersionPolicy(max_bytes=10)) as engine:
        await engine.sync()
        (version,) = await engine.history("a.md")
        assert version.kind == "added" and version.stored is True
    write(notes, "big.md", "# Big\n" + "x" * 100)
    async with SyncEngine.open(notes, versions=VersionPolicy(max_bytes=10)) as engine:
        await engine.sync()
        (version,) = await engine.history("big.md")
        assert version.stored is False  # above the size limit


def test_prune_keeps_the_last_versions_and_reclaims_space(notes: Path) -> None:
    for round_number in range(6):
        for number in range(20):
            write(notes, f"n{number}.md", f"# Note {number}\n" + f"round {round_number}\n" * 200,
                  old=False)
        sync(notes)
    before = objects_bytes(notes)
    result = run_bm("prune", str(notes), "--keep", "2")
    assert result.returncode == 0, result.stderr
    after = objects_bytes(notes)
    assert after < before / 2
    target = str(notes / "n0.md")
    assert run_bm("history", target, "--show", "~1").returncode == 0
    old = run_bm("history", target, "--show", "~2")
    assert old.returncode == 1 and "not stored" in old.stderr
    entries = bm_json("history", target)["versions"]
    assert len(entries) == 6  # the timeline itself is kept
    assert run_bm("prune", str(notes)).returncode == 2  # says what to keep


def test_history_json_on_a_folder_never_synced(notes: Path) -> None:
    write(notes, "a.md", "# A\n")
    for args in (["history", str(notes)], ["history", str(notes), "--json"],
                 ["history", str(notes / "a.md"), "--json"]):
        result = run_bm(*args)
        assert result.returncode == 1, args
        assert result.stdout == ""  # no half-written JSON on stdout
        assert result.stderr.count("\n") == 1 and "no sync has run" in result.stderr


def _documented_json(heading: str) -> dict:
    """The JSON example that follows `heading` in docs/cli.md."""
    text = (REPO / "docs" / "cli.md").read_text()
    block = text[text.index(heading):]
    block = block[block.index("```json") + len("```json"):]
    return json.loads(block[:block.index("```")])


def test_json_shapes_match_the_docs(notes: Path, story: dict) -> None:
    documented = _documented_json("`bm history FILE --json`")
    data = bm_json("history", str(notes / "archive/idea.md"))
    assert set(data) == set(documented)
    assert all(set(entry) == set(documented["versions"][0]) for entry in data["versions"])
    for key, value in documented["versions"][0].items():
        assert all(type(entry[key]) is type(value) for entry in data["versions"]
                   if entry[key] is not None), key
    runs = _documented_json("`bm history --json` (runs)")
    data = bm_json("history", str(notes))
    assert set(data) == set(runs)
    assert all(set(run) == set(runs["runs"][0]) for run in data["runs"])


def test_moves_back_and_forth_are_all_recorded(notes: Path) -> None:
    """A change that repeats an old row of a completed run is a real change, not a replay."""
    write(notes, "a.md", "# A\n")
    sync(notes)
    for old, new in [("a.md", "b.md"), ("b.md", "a.md"), ("a.md", "b.md")]:
        os.rename(notes / old, notes / new)
        sync(notes)
    entries = bm_json("history", str(notes / "b.md"))["versions"]
    assert [(entry["kind"], entry["old_path"], entry["path"]) for entry in entries] == [
        ("moved", "a.md", "b.md"), ("moved", "b.md", "a.md"), ("moved", "a.md", "b.md"),
        ("added", None, "a.md")]
    assert [run["moved"] for run in bm_json("history", str(notes))["runs"]] == [1, 1, 1, 0]


async def test_copy_back_and_restore_onto_the_old_path_are_recorded(notes: Path) -> None:
    write(notes, "a.md", "# A\n")
    write(notes, "c.md", "# C\n")
    await sync_once(notes)
    os.rename(notes / "a.md", notes / "b.md")
    os.rename(notes / "c.md", notes / "d.md")
    await sync_once(notes)
    write(notes, "a.md", (notes / "b.md").read_bytes())  # cp b.md a.md
    result = run_bm("restore", str(notes / "c.md"), "--rev", "~0")  # where c.md used to be
    assert result.returncode == 0, result.stderr
    await sync_once(notes)
    async with SyncEngine.open(notes) as engine:
        (latest_run, *_rest) = await engine.runs()
        assert latest_run.added == 2
        for path in ("a.md", "c.md"):  # a new file where one used to be: a new timeline
            (entry,) = await engine.history(path)
            assert (entry.kind, entry.run_id) == ("added", latest_run.id)


async def test_many_syncs_keep_the_pack_count_bounded(notes: Path) -> None:
    """One pack per sync, merged past MAX_PACKS: the store never collects hundreds of packs
    (each lookup probes every pack; each open pack holds file descriptors)."""
    contents = []
    for number in range(MAX_PACKS + 6):
        contents.append(f"# Note\nversion {number}\n".encode())
        write(notes, "n.md", contents[-1], old=False)
        os.utime(notes / "n.md", ns=(number * 10**9 + 10**18,) * 2)
        async with SyncEngine.open(notes) as engine:
            await engine.sync()
            open_packs = [os.readlink(f"/proc/self/fd/{fd}") for fd in os.listdir("/proc/self/fd")
                          if os.path.exists(f"/proc/self/fd/{fd}")]
            assert not [name for name in open_packs if name.endswith((".pack", ".idx"))]
        assert len(list((notes / ".basic-memory/objects/pack").glob("*.pack"))) <= MAX_PACKS
    assert len(list((notes / ".basic-memory/objects/pack").glob("*.pack"))) < MAX_PACKS // 2
    async with SyncEngine.open(notes) as engine:
        assert len(await engine.history("n.md")) == len(contents)
        for back, content in enumerate(reversed(contents)):
            assert (await engine.show_version(str(notes / "n.md"), f"~{back}"))[1] == content


async def test_a_killed_syncs_spool_file_is_removed(notes: Path) -> None:
    write(notes, "a.md", "# A\n")
    await sync_once(notes)
    dead = subprocess.Popen(["true"])  # a process that has ended: its pid is free
    dead.wait()
    spool = notes / ".basic-memory" / "objects" / f"spool-{dead.pid}"
    spool.write_bytes(b"x" * 1000)
    write(notes, "a.md", "# A\nedited\n", old=False)
    await sync_once(notes)
    assert not spool.exists()


async def test_several_syncs_on_one_engine_are_one_run_each(notes: Path) -> None:
    async with SyncEngine.open(notes) as engine:
        for number in range(3):
            write(notes, f"n{number}.md", f"# Note {number}\n")
            await engine.sync()
            await asyncio.sleep(0.01)
        runs = await engine.runs()
    assert [(run.added, run.status) for run in runs] == [(1, "completed")] * 3
    assert runs[0].started_at > runs[1].started_at > runs[2].started_at


def test_prune_counts_versions_per_file_across_moves(notes: Path) -> None:
    """Created, moved, edited: with --keep 1 only the newest version stays; the version the
    file had at its old path is not the "current version" of a file."""
    write(notes, "a.md", "# A\nfirst\n")
    sync(notes)
    os.rename(notes / "a.md", notes / "b.md")
    sync(notes)
    write(notes, "b.md", "# A\nfirst\nsecond\n", old=False)
    sync(notes)
    assert run_bm("prune", str(notes), "--keep", "1").returncode == 0
    target = str(notes / "b.md")
    assert [entry["stored"] for entry in bm_json("history", target)["versions"]] == [
        True, False, False]
    assert run_bm("history", target, "--show", "~0").returncode == 0
    assert run_bm("history", target, "--show", "~1").returncode == 1


def test_prune_after_moves_keeps_the_last_versions_of_the_story(notes: Path,
                                                                story: dict) -> None:
    assert run_bm("prune", str(notes), "--keep", "2").returncode == 0
    target = str(notes / "archive/idea.md")
    for back, name in enumerate(["v4", "v3"]):
        shown = subprocess.run([*BM, "history", target, "--show", f"~{back}"],
                               capture_output=True)
        assert shown.returncode == 0 and shown.stdout == story[name]
    for back in (2, 3):
        assert "not stored" in run_bm("history", target, "--show", f"~{back}").stderr
    assert len(bm_json("history", target)["versions"]) == 5


@pytest.mark.usefixtures("database")
def test_prune_days_keeps_what_was_current_in_the_window(notes: Path) -> None:
    """--days 3 keeps every version that was current at some time in the last 3 days: v2,
    replaced one day ago, too; v1, replaced five days ago, goes."""
    for number in range(1, 5):
        write(notes, "n.md", f"# Note\nversion {number}\n", old=False)
        sync(notes)
    day = 86400
    database = current_database()
    ids = [row[0] for row in database.query(notes, "SELECT id FROM sync_run ORDER BY id")]
    for run_id, age in zip(ids, (10 * day, 5 * day, day, 0), strict=True):
        database.execute(notes, "UPDATE sync_run SET started_at = ? WHERE id = ?",
                         time.time() - age, run_id)
    assert run_bm("prune", str(notes), "--days", "3").returncode == 0
    stored = [entry["stored"] for entry in bm_json("history", str(notes / "n.md"))["versions"]]
    assert stored == [True, True, True, False]
    assert run_bm("prune", str(notes), "--days", "0").returncode == 0
    stored = [entry["stored"] for entry in bm_json("history", str(notes / "n.md"))["versions"]]
    assert stored == [True, False, False, False]


def test_history_cli_paths_and_revisions(notes: Path, story: dict) -> None:
    target = notes / "archive/idea.md"
    # `--diff` followed by the file: a bare --diff (the newest version against the disk).
    write(notes, "archive/idea.md", "# Idea\non disk\n", old=False)
    result = run_bm("history", "--diff", "archive/idea.md", cwd=notes)
    assert result.returncode == 0, result.stderr
    assert "+on disk" in result.stdout and "-fourth" in result.stdout
    # From a subfolder without FILE: the runs of the enclosing notes folder.
    runs = bm_json("history", cwd=notes / "archive")["runs"]
    assert len(runs) == 5
    # A path with `.` and `..` in it is the same file.
    entries = bm_json("history", "./archive/../archive/idea.md", cwd=notes)["versions"]
    assert len(entries) == 5 and entries[0]["path"] == "archive/idea.md"
    # An unquoted `~0` reaches us as the working folder: the error says to quote it.
    for option in ("--show", "--diff"):
        result = run_bm("history", str(target), option, str(notes), cwd=notes)
        assert result.returncode == 1, option
        assert result.stderr.count("\n") == 1 and "quote ~N" in result.stderr
    # --json with --show / --diff: a usage error, one line.
    for args in (["--show", "~0"], ["--diff", "~1"], ["--diff"]):
        result = run_bm("history", str(target), *args, "--json")
        assert result.returncode == 2, args
        assert result.stderr.count("\n") == 1 and result.stderr.startswith("bm: error:")


# -- restore never loses words -------------------------------------------------------------------

def _restore(notes: Path, relative: str, *args: str) -> subprocess.CompletedProcess[str]:
    return run_bm("restore", str(notes / relative), *args)


def test_restore_refuses_to_overwrite_changes_no_sync_recorded(notes: Path) -> None:
    """Like `git checkout`: an edit made since the last sync would be lost, so restore says so
    in one line, writes nothing, and --force first records the edit as a version."""
    write(notes, "a.md", "# A\nfirst\n", old=False)
    sync(notes)
    write(notes, "a.md", "# A\nsecond\n", old=False)
    sync(notes)
    write(notes, "a.md", "# A\nmy unsynced words\n", old=False)
    refused = _restore(notes, "a.md", "--rev", "~1")
    assert refused.returncode == 1
    assert refused.stderr.count("\n") == 1 and "--force" in refused.stderr
    assert (notes / "a.md").read_text() == "# A\nmy unsynced words\n"
    assert sorted(path.name for path in notes.iterdir()) == [".basic-memory", "a.md"]

    forced = _restore(notes, "a.md", "--rev", "~1", "--force")
    assert forced.returncode == 0, forced.stderr
    assert (notes / "a.md").read_text() == "# A\nfirst\n"  # ~1 as it was before the restore
    words = blob_id(b"# A\nmy unsynced words\n")
    newest = bm_json("history", str(notes / "a.md"))["versions"][0]
    assert (newest["content_id"], newest["stored"]) == (words, True)
    shown = run_bm("history", str(notes / "a.md"), "--show", words[:8])
    assert shown.stdout == "# A\nmy unsynced words\n"


def test_restore_over_a_stored_version_needs_no_sync(notes: Path) -> None:
    """Restoring twice in a row: what the first restore wrote is a stored version, so nothing
    would be lost; likewise a file deleted since the last sync is simply written back."""
    for text in ("# A\nfirst\n", "# A\nsecond\n", "# A\nthird\n"):
        write(notes, "a.md", text, old=False)
        sync(notes)
    assert _restore(notes, "a.md", "--rev", "~2").returncode == 0
    result = _restore(notes, "a.md", "--rev", "~1")
    assert result.returncode == 0, result.stderr
    assert (notes / "a.md").read_text() == "# A\nsecond\n"
    (notes / "a.md").unlink()
    assert _restore(notes, "a.md", "--rev", "~0").returncode == 0
    assert (notes / "a.md").read_text() == "# A\nthird\n"


def test_restore_onto_a_folder_is_one_line_and_leaves_nothing(notes: Path) -> None:
    write(notes, "a.md", "# A\n")
    sync(notes)
    (notes / "a.md").unlink()
    (notes / "a.md").mkdir()
    write(notes, "a.md/inside.md", "# Inside\n")
    for args in (["--rev", "~0"], ["--rev", "~0", "--force"]):
        result = _restore(notes, "a.md", *args)
        assert result.returncode == 1, args
        assert result.stderr.count("\n") == 1 and "folder" in result.stderr
    assert sorted(path.name for path in notes.iterdir()) == [".basic-memory", "a.md"]
    assert [path.name for path in (notes / "a.md").iterdir()] == ["inside.md"]


def test_restore_into_a_read_only_folder_is_one_line_and_leaves_nothing(notes: Path) -> None:
    write(notes, "sub/a.md", "# A\n")
    sync(notes)
    (notes / "sub/a.md").unlink()
    share_state_with_everyone(notes)  # the lock, the database
    (notes / "sub").chmod(0o555)

    def restore() -> str:
        async def run() -> None:
            async with SyncEngine.open(notes) as engine:
                await engine.restore("sub/a.md", "~0")
        try:
            asyncio.run(run())
        except HistoryError as error:
            return str(error)
        return "restored"

    error = as_unprivileged(restore)
    assert error.count("\n") == 0 and "permission denied" in error
    assert list((notes / "sub").iterdir()) == []


def test_a_deleted_and_recreated_path_keeps_its_earlier_file(notes: Path) -> None:
    """`bm history` shows the earlier file after the current one, marked as such, without
    `~N`; its versions stay showable and restorable by content id."""
    earlier = [b"# Old\nfirst\n", b"# Old\nsecond\n"]
    for content in earlier:
        write(notes, "a.md", content, old=False)
        sync(notes)
    (notes / "a.md").unlink()
    sync(notes)
    write(notes, "a.md", "# New\n", old=False)
    sync(notes)
    target = str(notes / "a.md")
    entries = bm_json("history", target)["versions"]
    assert [(entry["kind"], entry["lifetime"]) for entry in entries] == [
        ("added", 0), ("deleted", 1), ("modified", 1), ("added", 1)]
    lines = run_bm("history", target).stdout.splitlines()
    assert lines[0].split()[0] == "~0" and "earlier file" not in lines[0]
    assert all("(an earlier file at this path)" in line and not line.startswith(" ~")
               for line in lines[1:])
    old_id = blob_id(earlier[0])
    assert run_bm("history", target, "--show", old_id[:8]).stdout.encode() == earlier[0]
    assert "+# Old" in run_bm("history", target, "--diff", old_id[:8]).stdout
    too_far = run_bm("history", target, "--show", "~1")
    assert too_far.returncode == 1 and "has 1 version (" in too_far.stderr
    result = _restore(notes, "a.md", "--rev", blob_id(earlier[1])[:8])
    assert result.returncode == 0, result.stderr
    assert (notes / "a.md").read_bytes() == earlier[1]


def test_history_of_a_file_takes_a_limit(notes: Path, story: dict) -> None:
    target = str(notes / "archive/idea.md")
    lines = run_bm("history", target, "--limit", "2").stdout.splitlines()
    assert [line.split()[0] for line in lines] == ["~0", "~0"]
    assert len(bm_json("history", target, "--limit", "3")["versions"]) == 3


async def test_library_records_are_typed_and_exported(notes: Path) -> None:
    import bm_sync
    from bm_sync.changes import ChangeKind

    write(notes, "a.md", "# A\n")
    async with bm_sync.SyncEngine.open(notes) as engine:
        await engine.sync()
        (run,) = await engine.runs()
        (version,) = await engine.history("a.md")
    assert isinstance(run, bm_sync.RunRecord) and isinstance(version, bm_sync.VersionRecord)
    assert version.kind is ChangeKind.ADDED and version.lifetime == 0


# -- a damaged store is a warning, never a failure ------------------------------------------------

def _damage(index: Path, how: str) -> None:
    data = index.read_bytes()
    index.write_bytes(data[:100] if how == "truncated" else os.urandom(len(data)))


@pytest.mark.parametrize("how", ["truncated", "garbage"])
def test_a_damaged_pack_index_is_a_warning_and_repaired(notes: Path, how: str) -> None:
    write(notes, "a.md", "# A\nfirst\n", old=False)
    sync(notes)
    (index,) = (notes / ".basic-memory/objects/pack").glob("*.idx")
    _damage(index, how)
    target = str(notes / "a.md")
    entries = bm_json("history", target)["versions"]  # the timeline is still there
    assert [(entry["kind"], entry["stored"]) for entry in entries] == [("added", False)]
    lost = run_bm("history", target, "--show", "~0")
    assert lost.returncode == 1 and lost.stderr.count("\n") == 1

    write(notes, "a.md", "# A\nsecond\n", old=False)
    result = run_bm("sync", str(notes), "--quiet")
    assert result.returncode == 0
    assert result.stderr.count("\n") == 1 and "rebuilt" in result.stderr, result.stderr
    shown = run_bm("history", target, "--show", "~1")  # the index was rebuilt from its pack
    assert shown.returncode == 0 and shown.stdout == "# A\nfirst\n"
    write(notes, "a.md", "# A\nthird\n", old=False)
    assert run_bm("sync", str(notes), "--quiet").stderr == ""


def test_a_damaged_pack_is_set_aside_once(notes: Path) -> None:
    write(notes, "a.md", "# A\nfirst\n", old=False)
    sync(notes)
    (pack,) = (notes / ".basic-memory/objects/pack").glob("*.pack")
    pack.write_bytes(b"garbage")
    _damage(pack.with_suffix(".idx"), "garbage")
    write(notes, "a.md", "# A\nsecond\n", old=False)
    result = run_bm("sync", str(notes), "--quiet")
    assert result.returncode == 0
    assert result.stderr.count("\n") == 1 and "lost" in result.stderr, result.stderr
    assert pack.exists()  # kept for whoever wants to look at it
    assert run_bm("history", str(notes / "a.md"), "--show", "~0").stdout == "# A\nsecond\n"
    write(notes, "a.md", "# A\nthird\n", old=False)
    assert run_bm("sync", str(notes), "--quiet").stderr == ""


def test_a_killed_prune_leaves_no_temporary_pack(notes: Path) -> None:
    """SIGKILL while prune rewrites the store; the next prune deletes what it left."""
    for round_number in range(2):
        for number in range(60):
            write(notes, f"n{number}.md", f"# {number} {round_number}\n".encode()
                  + os.urandom(300_000).hex().encode(), old=False)
        sync(notes)
    pack_dir = notes / ".basic-memory/objects/pack"
    prune = subprocess.Popen([*BM, "prune", str(notes), "--keep", "1"])
    leftover = pack_dir / f"tmp_pack_{prune.pid}"
    while prune.poll() is None and not leftover.exists():
        pass
    prune.kill()
    prune.wait()
    assert leftover.exists(), "the prune ended before it could be killed mid-rewrite"
    result = run_bm("prune", str(notes), "--keep", "1")
    assert result.returncode == 0, result.stderr
    assert not list(pack_dir.glob("tmp_*"))
    assert run_bm("history", str(notes / "n0.md"), "--show", "~0").returncode == 0


@pytest.mark.parametrize("command", [["prune", "{notes}", "--keep", "1"],
                                     ["restore", "{notes}/a.md", "--rev", "~0"]])
def test_restore_and_prune_wait_for_a_running_sync(notes: Path, command: list[str]) -> None:
    write(notes, "a.md", "# A\n")
    sync(notes)
    arguments = [part.format(notes=notes) for part in command]
    holder = subprocess.Popen(
        [sys.executable, "-c", "import fcntl, sys; f = open(sys.argv[1], 'w'); "
         "fcntl.flock(f, fcntl.LOCK_EX); print('held', flush=True); sys.stdin.read()",
         str(notes / ".basic-memory" / "lock")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        refused = run_bm(*arguments)
        assert refused.returncode == 1 and "--wait" in refused.stderr
        waiting = subprocess.Popen([*BM, *arguments, "--wait"], stderr=subprocess.PIPE)
        time.sleep(1)
        assert waiting.poll() is None  # still waiting for the lock
    finally:
        holder.communicate("")
    assert waiting.wait(timeout=120) == 0


# -- small things ---------------------------------------------------------------------------------

def test_version_option() -> None:
    import bm_sync

    result = run_bm("--version")
    assert (result.returncode, result.stdout) == (0, f"bm {bm_sync.__version__}\n")


@pytest.mark.parametrize("command", [[], ["status"], ["sync"], ["history"], ["restore"],
                                     ["prune"]])
def test_dash_h_is_help_everywhere(command: list[str]) -> None:
    short, long = run_bm(*command, "-h"), run_bm(*command, "--help")
    assert short.returncode == long.returncode == 0
    assert short.stdout == long.stdout and "Usage: " in short.stdout


def test_forced_restore_refuses_what_no_version_can_hold(notes: Path) -> None:
    """--force stores the overwritten content first; content over the versions' size limit
    cannot be stored, so even --force refuses rather than lose it."""
    write(notes, "a.md", "# A\n", old=False)
    sync(notes)
    big = "# A\n" + "words " * 200_000  # over 1 MiB
    write(notes, "a.md", big, old=False)
    result = _restore(notes, "a.md", "--rev", "~0", "--force")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "could not be stored" in result.stderr
    assert (notes / "a.md").read_text() == big
