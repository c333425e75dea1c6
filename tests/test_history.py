"""`bm history`, `bm restore`, `bm prune`: runs, timelines that follow moves, versions."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from bm_sync.sync import SyncEngine
from bm_sync.versions import VersionPolicy
from tests.conftest import BM, bm_json, run_bm, write


def sync(root: Path, *args: str) -> None:
    result = run_bm("sync", str(root), "--quiet", *args)
    assert result.returncode == 0, result.stderr


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


def test_timeline_follows_moves_with_five_entries(notes: Path, story: dict) -> None:
    data = bm_json("history", str(notes / "archive/idea.md"))
    entries = data["versions"]
    assert [(entry["kind"], entry["path"], entry["old_path"]) for entry in entries] == [
        ("moved", "archive/idea.md", "projects/idea.md"),
        ("moved", "projects/idea.md", "inbox/idea.md"),
        ("modified", "inbox/idea.md", None),
        ("modified", "inbox/idea.md", None),
        ("added", "inbox/idea.md", None),
    ]
    assert all(entry["stored"] for entry in entries)
    text = run_bm("history", str(notes / "archive/idea.md")).stdout.splitlines()
    assert len(text) == 5 and text[0].lstrip().startswith("~0")


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
    assert not (notes / ".basic-memory" / "objects").exists()
    entries = bm_json("history", str(notes / "a.md"))["versions"]
    assert entries[0]["kind"] == "added" and entries[0]["stored"] is False


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
    result = run_bm("history", str(notes))
    assert result.returncode == 1 and "no sync has run" in result.stderr
    assert json.loads(json.dumps({"ok": True}))
