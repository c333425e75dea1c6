"""`bm project add/list/remove` and `bm sync --all`, through the real CLI, on the per-user
default registry (SQLite) and on PostgreSQL."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from tests.helpers import run_bm, write
from tests.helpers_fleet import (
    bm_ok,
    entity_paths,
    make_notes,
    registry_state,
    user_data,
)

__all__ = ["user_data"]  # the fixture


def registry_file(env: dict[str, str]) -> Path:
    return Path(env["XDG_DATA_HOME"]) / "bm-sync" / "projects.db"


def listed(env: dict[str, str], *db: str) -> dict[str, dict[str, object]]:
    data = json.loads(bm_ok("project", "list", "--json", *db, env=env))
    return {item["name"]: item for item in data["projects"]}


def test_add_list_sync_all_remove(tmp_path: Path, user_data: dict[str, str]) -> None:
    alpha = make_notes(tmp_path / "alpha", 3)
    beta = make_notes(tmp_path / "beta", 2)
    assert "registered alpha" in bm_ok("project", "add", str(alpha), env=user_data)
    bm_ok("project", "add", str(beta), "--name", "b", env=user_data)
    # A name or a folder registered twice, a missing folder: one line each, nothing added.
    taken = run_bm("project", "add", str(tmp_path / "alpha"), "--name", "b", env=user_data)
    assert taken.returncode == 1 and taken.stderr.count("\n") == 1
    assert "already registered" in taken.stderr
    again = run_bm("project", "add", str(alpha), "--name", "other", env=user_data)
    assert again.returncode == 1 and "already registered as 'alpha'" in again.stderr
    missing = run_bm("project", "add", str(tmp_path / "nowhere"), env=user_data)
    assert missing.returncode == 2 and "not a folder" in missing.stderr
    registry_url = f"sqlite+aiosqlite:///{registry_file(user_data)}"
    rows, _runs = registry_state(registry_url)
    assert [(row.name, row.last_started_at) for row in rows] == [("alpha", None), ("b", None)]

    result = run_bm("sync", "--all", env=user_data)
    assert result.returncode == 0, result.stderr
    lines = sorted(result.stdout.splitlines())
    assert len(lines) == 2 and lines[0].startswith("alpha: ok") and "3 added" in lines[0]
    assert lines[1].startswith("b: ok") and "2 added" in lines[1]

    after = listed(user_data)
    assert after["alpha"]["files"] == 3 and after["b"]["files"] == 2
    last = after["alpha"]["last_sync"]
    assert isinstance(last, dict) and last["result"] == "ok" and last["duration_s"] > 0
    assert after["alpha"]["consecutive_failures"] == 0
    text = bm_ok("project", "list", env=user_data)
    assert "alpha" in text and "3 files" in text and "(" in text
    # The rows went to the registry's database, not to the folders' embedded ones.
    assert not (alpha / ".basic-memory" / "memory.db").exists()
    assert entity_paths(registry_url, alpha) == {"n0.md", "n1.md", "n2.md"}

    refused = run_bm("project", "remove", "alpha", env=user_data)
    assert refused.returncode == 2 and "--yes" in refused.stderr
    assert entity_paths(registry_url, alpha)
    notes_before = sorted(path.name for path in alpha.iterdir())
    assert (alpha / ".basic-memory" / "objects" / "pack").is_dir()
    removed = bm_ok("project", "remove", "alpha", "--yes", env=user_data)
    assert "untouched" in removed
    assert [row.name for row in registry_state(registry_url)[0]] == ["b"]
    assert entity_paths(registry_url, alpha) == set()
    assert entity_paths(registry_url, beta) == {"n0.md", "n1.md"}
    with sqlite3.connect(registry_file(user_data)) as connection:
        assert connection.execute("SELECT count(*) FROM project").fetchone() == (1,)
    assert not (alpha / ".basic-memory" / "objects" / "pack").exists()
    assert sorted(path.name for path in alpha.iterdir()) == notes_before
    assert (alpha / "n0.md").read_text().startswith("# Note 0")
    unknown = run_bm("project", "remove", "alpha", "--yes", env=user_data)
    assert unknown.returncode == 1 and "no project named 'alpha'" in unknown.stderr


def test_sync_all_fails_for_a_missing_folder_and_keeps_its_rows(
        tmp_path: Path, user_data: dict[str, str]) -> None:
    kept = make_notes(tmp_path / "kept", 2)
    gone = make_notes(tmp_path / "gone", 3)
    emptied = make_notes(tmp_path / "emptied", 2)
    for folder in (kept, gone, emptied):
        bm_ok("project", "add", str(folder), env=user_data)
    bm_ok("sync", "--all", env=user_data)
    shutil.move(gone, tmp_path / "elsewhere")
    shutil.rmtree(emptied)
    emptied.mkdir()  # like a mount point whose disk is not mounted
    write(kept, "new.md", "# New\n")

    result = run_bm("sync", "--all", env=user_data)
    assert result.returncode == 1
    assert "kept: ok" in result.stdout and "1 added" in result.stdout
    errors = result.stderr.splitlines()
    assert len(errors) == 2
    assert any(line.startswith("gone: missing:") for line in errors)
    assert any(line.startswith("emptied: missing:") and "not mounted" in line
               for line in errors)
    registry_url = f"sqlite+aiosqlite:///{registry_file(user_data)}"
    assert entity_paths(registry_url, tmp_path / "elsewhere") == set()
    with sqlite3.connect(registry_file(user_data)) as connection:
        counts = dict(connection.execute(
            "SELECT p.root_path, count(e.id) FROM project p JOIN entity e "
            "ON e.project_id = p.id GROUP BY p.root_path").fetchall())
    assert counts[str(gone)] == 3 and counts[str(emptied)] == 2  # never emptied
    failures = {row.name: row.consecutive_failures
                for row in registry_state(registry_url)[0]}
    assert failures == {"kept": 0, "gone": 1, "emptied": 1}

    json_result = run_bm("sync", "--all", "--json", env=user_data)
    assert json_result.returncode == 1
    summary = json.loads(json_result.stdout)
    assert summary["failed"] == 2
    assert {item["project"]: item["result"] for item in summary["projects"]} == {
        "kept": "ok", "gone": "missing", "emptied": "missing"}
    assert listed(user_data)["gone"]["consecutive_failures"] == 2  # the CLI shows it


def test_remove_waits_for_a_sync_in_flight(tmp_path: Path, user_data: dict[str, str]) -> None:
    """Rows deleted under a running sync would be written again by it: remove takes the
    project's lease first, so it waits for the sync holding it to end."""
    import asyncio
    import os
    import subprocess
    import time

    from bm_sync.projects import OK, Registry, SyncOutcome
    from bm_sync.worker import sync_all
    from tests.helpers import BM

    notes = make_notes(tmp_path / "busy", 2)
    registry_file(user_data).parent.mkdir()
    registry_url = f"sqlite+aiosqlite:///{registry_file(user_data)}"

    async def sync_then_hold() -> int:
        async with Registry.open(registry_url) as registry:
            await registry.add(notes, None)
            assert [outcome.result async for outcome in sync_all(registry_url, 1)] == [OK]
            (row,) = await registry.projects()
            run_id = await registry.claim(row, "other:1:abc", time.time(), None, 120.0)
            assert run_id is not None
            return run_id

    async def release(run_id: int) -> None:
        async with Registry.open(registry_url) as registry:
            (row,) = await registry.projects()
            await registry.finish(row, run_id, "other:1:abc", SyncOutcome("busy", "x"), None)

    run_id = asyncio.run(sync_then_hold())
    remove = subprocess.Popen([*BM, "project", "remove", "busy", "--yes"], text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              env={**os.environ, **user_data})
    try:
        remove.wait(timeout=5)  # it would be done by now, had it not waited
    except subprocess.TimeoutExpired:
        pass
    assert remove.poll() is None, remove.communicate()
    assert entity_paths(registry_url, notes) == {"n0.md", "n1.md"}
    asyncio.run(release(run_id))
    assert remove.wait(timeout=60) == 0, remove.communicate()
    assert entity_paths(registry_url, notes) == set()


def test_sync_all_with_a_path_is_a_usage_error(tmp_path: Path,
                                               user_data: dict[str, str]) -> None:
    """`--all` syncs the registry; a PATH beside it would be silently ignored otherwise."""
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "a.md").write_text("# A\n")
    result = run_bm("sync", "--all", str(folder), env=user_data)
    assert result.returncode == 2
    assert "--all syncs every registered project" in result.stderr
    assert not (folder / ".basic-memory").exists()


@pytest.mark.parametrize("option", [
    ["--no-search"], ["--no-versions"], ["--wait"], ["--full-hash-max-mb", "8"],
    ["--partial-hash-max-mb", "1"]])
def test_sync_all_refuses_an_option_it_would_drop(option: list[str],
                                                  user_data: dict[str, str]) -> None:
    """`bm sync --all --no-search` once built every project's index anyway: refused now."""
    result = run_bm("sync", "--all", *option, env=user_data)
    assert result.returncode == 2
    assert f"--all does not take {option[0]}" in result.stderr
