"""Helpers of the fleet tests: registered folders, real `bm worker` subprocesses whose JSON
lines are read as they come, and the registry's recorded runs. No mocks."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bm_sync.db.registry import RegisteredRow, WorkerRunRow
from bm_sync.projects import Registry
from tests import postgres
from tests.helpers import BM, run_bm, write

# How long a test waits for something a worker does within a few intervals; reached only
# when the behaviour is broken.
PATIENCE_S = 60.0

Event = dict[str, Any]


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database of the shared test server."""
    url = postgres.server().create_database()
    yield url
    postgres.drop_database(url)


@pytest.fixture
def user_data(tmp_path: Path) -> dict[str, str]:
    """An environment whose per-user registry lives in the test's folder, with no
    `BM_DATABASE_URL` (so the default registry is used)."""
    data_home = tmp_path / "xdg"
    data_home.mkdir()
    return {"XDG_DATA_HOME": str(data_home), "BM_DATABASE_URL": ""}


def make_notes(folder: Path, count: int) -> Path:
    """A notes folder of `count` small linked notes."""
    for number in range(count):
        write(folder, f"n{number}.md", f"# Note {number}\n\n- links_to [[Note {number + 1}]]\n")
    return folder


def bm_ok(*args: str, env: dict[str, str] | None = None) -> str:
    result = run_bm(*args, env=env)
    assert result.returncode == 0, result.stderr
    return result.stdout


def registry_state(url: str) -> tuple[list[RegisteredRow], list[WorkerRunRow]]:
    """The registered projects and every recorded worker run."""
    async def read() -> tuple[list[RegisteredRow], list[WorkerRunRow]]:
        async with Registry.open(url) as registry:
            return await registry.projects(), await registry.worker_runs()

    return asyncio.run(read())


def entity_paths(url: str, root: Path) -> set[str]:
    """The file paths the database holds for the project at `root`."""
    from sqlalchemy import select

    from bm_sync.db.engine import open_database
    from bm_sync.db.models import Entity, Project

    async def read() -> set[str]:
        engine = await open_database(url)
        async with engine.connect() as connection:
            rows = await connection.execute(
                select(Entity.file_path).join(Project, Project.id == Entity.project_id)
                .where(Project.root_path == str(root.resolve())))
            paths = {str(row[0]) for row in rows}
        await engine.dispose()
        return paths

    return asyncio.run(read())


def ended_runs(url: str) -> dict[str, int]:
    """project name -> how many of its recorded worker runs have ended."""
    counts: dict[str, int] = {}
    for run in registry_state(url)[1]:
        if run.ended_at is not None:
            counts[run.project_name] = counts.get(run.project_name, 0) + 1
    return counts


def files_on_disk(folder: Path) -> set[str]:
    """The names of the notes directly in `folder` (what its project's rows must equal)."""
    return {path.name for path in folder.iterdir() if path.suffix == ".md"}


def register(url: str, folders: list[Path]) -> None:
    """Register these folders in the registry at `url`, in process (no CLI start-up)."""
    async def add() -> None:
        async with Registry.open(url) as registry:
            for folder in folders:
                await registry.add(folder, None)

    asyncio.run(add())


def overlaps(runs: list[WorkerRunRow]) -> list[tuple[WorkerRunRow, WorkerRunRow]]:
    """Pairs of runs of one project that overlapped in time: a run lasts from its start to its
    end, or to its lease's last expiry when its worker was killed."""
    found = []
    by_project: dict[str, list[WorkerRunRow]] = {}
    for run in runs:
        by_project.setdefault(run.project_name, []).append(run)
    for project_runs in by_project.values():
        ordered = sorted(project_runs, key=lambda run: run.started_at)
        for earlier, later in zip(ordered, ordered[1:], strict=False):
            end = earlier.ended_at if earlier.ended_at is not None else earlier.lease_until
            if later.started_at < end:
                found.append((earlier, later))
    return found


class WorkerProcess:
    """A real `bm worker --json` subprocess; its stdout lines parsed into `events` by a
    reader thread."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.process = subprocess.Popen(
            [*BM, "worker", "--json", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, env={**os.environ, **(env or {})})
        self.events: list[Event] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.events.append(json.loads(line))

    def wait_for(self, predicate: Callable[[list[Event]], bool],
                 what: str) -> list[Event]:
        deadline = time.monotonic() + PATIENCE_S
        while not predicate(list(self.events)):
            if self.process.poll() is not None and not predicate(list(self.events)):
                raise AssertionError(f"worker exited ({self.process.returncode}) before "
                                     f"{what}: {self.stderr()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no {what} within {PATIENCE_S} s: {self.events[-5:]}")
            time.sleep(0.05)
        return list(self.events)

    def syncs(self, project: str | None = None) -> list[Event]:
        return [event for event in list(self.events) if event["event"] == "sync"
                and (project is None or event["project"] == project)]

    def terminate(self) -> int:
        """SIGTERM, then the exit code."""
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=PATIENCE_S)
        self._reader.join(timeout=PATIENCE_S)
        return code

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(timeout=PATIENCE_S)

    def stderr(self) -> str:
        if self.process.poll() is None or self.process.stderr is None:
            return ""
        return self.process.stderr.read()


def wait_until(predicate: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + PATIENCE_S
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} within {PATIENCE_S} s")
        time.sleep(0.1)
