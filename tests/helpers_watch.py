"""Helpers of the watch tests: a real `bm watch` subprocess, read line by line, and waits on
conditions (generous timeouts, never a fixed sleep standing in for a condition)."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# The console entry, as `bm` runs it (fast path first, then the full CLI).
ENTRY = [sys.executable, "-m", "bm_sync.entry"]
TIMEOUT_S = 90.0
# The event backends a test runs on (`BM_WATCH_BACKEND`): our inotify reader (Linux) and
# watchfiles (what macOS and Windows use), so the latter is exercised in CI too.
BACKENDS = ["inotify", "watchfiles"]


def backend_env(backend: str) -> dict[str, str]:
    return {"BM_WATCH_BACKEND": backend}


class WatchProcess:
    """`bm watch ROOT --json --debounce-ms 100 ...` in a subprocess. `lines` holds every JSON
    object it printed (the reconcile, `ready`, then one per batch), `stderr` every line it
    wrote there."""

    def __init__(self, root: Path, *args: str, env: dict[str, str] | None = None,
                 debounce_ms: int = 100, prefix: tuple[str, ...] = ()) -> None:
        self.root = root
        self.process = subprocess.Popen(
            [*prefix, *ENTRY, "watch", str(root), "--json", "--debounce-ms", str(debounce_ms),
             *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, **(env or {})})
        self.lines: list[dict[str, Any]] = []
        self.stderr: list[str] = []
        self._changed = threading.Condition()
        self._readers = [threading.Thread(target=self._read, args=(stream, parse), daemon=True)
                         for stream, parse in ((self.process.stdout, True),
                                               (self.process.stderr, False))]
        for reader in self._readers:
            reader.start()

    def _read(self, stream: Any, parse: bool) -> None:
        for line in stream:
            with self._changed:
                if parse:
                    self.lines.append(json.loads(line))
                else:
                    self.stderr.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    @property
    def batches(self) -> list[dict[str, Any]]:
        """The reports after `ready` (the reconcile's is `lines[0]`)."""
        with self._changed:
            ready = next((index for index, line in enumerate(self.lines)
                          if line.get("event") == "ready"), None)
            return [] if ready is None else list(self.lines[ready + 1:])

    def wait_for(self, condition: Callable[[], bool], what: str,
                 timeout: float = TIMEOUT_S) -> None:
        with self._changed:
            if not self._changed.wait_for(
                    lambda: condition() or self.process.poll() is not None, timeout):
                raise AssertionError(f"timed out waiting for {what}: {self.describe()}")
        if not condition():
            raise AssertionError(f"bm watch ended before {what}: {self.describe()}")

    def wait_ready(self) -> WatchProcess:
        self.wait_for(lambda: any(line.get("event") == "ready" for line in self.lines),
                      "ready")
        return self

    def wait_batch(self, condition: Callable[[dict[str, Any]], bool],
                   what: str) -> dict[str, Any]:
        """The first batch report meeting `condition`."""
        self.wait_for(lambda: any(condition(report) for report in self.batches), what)
        return next(report for report in self.batches if condition(report))

    def wait_warning(self, fragment: str) -> str:
        self.wait_for(lambda: any(fragment in line for line in self.stderr),
                      f"a warning with {fragment!r}")
        return next(line for line in self.stderr if fragment in line)

    def describe(self) -> str:
        return f"exit={self.process.poll()} stdout={self.lines} stderr={self.stderr}"

    def terminate(self) -> int:
        """SIGTERM, then the exit code."""
        self.process.send_signal(signal.SIGTERM)
        return self.wait()

    def wait(self) -> int:
        code = self.process.wait(TIMEOUT_S)
        for reader in self._readers:
            reader.join(10)
        return code

    def __enter__(self) -> WatchProcess:
        return self

    def __exit__(self, *_exc: object) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(TIMEOUT_S)


def entities(root: Path) -> dict[str, tuple[int, str | None]]:
    """path -> (entity id, checksum) of the folder's SQLite database."""
    with sqlite3.connect(root / ".basic-memory" / "memory.db") as connection:
        return {path: (entity_id, checksum) for entity_id, path, checksum in connection.execute(
            "SELECT id, file_path, checksum FROM entity")}


def blob_id(content: bytes) -> str:
    import hashlib

    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


def eventually(condition: Callable[[], bool], what: str, timeout: float = TIMEOUT_S) -> None:
    """Poll `condition` (for state outside the watcher's output, e.g. the database)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def run_entry(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The `bm` console entry in a subprocess (the fast path included)."""
    return subprocess.run([*ENTRY, *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})})


def postgres_admin(url: str, *statements: str) -> None:
    """Run `statements` on the server of `url` as its superuser, from its `postgres`
    database (asyncpg, the project's own driver): for tests that take a database away from
    a running watcher and give it back."""
    import asyncio
    from urllib.parse import urlsplit

    import asyncpg  # type: ignore[import-untyped]

    admin = urlsplit(url)._replace(path="/postgres").geturl().replace(
        "postgresql+asyncpg://", "postgresql://", 1)

    async def run() -> None:
        connection = await asyncpg.connect(admin)
        try:
            for statement in statements:
                await connection.execute(statement)
        finally:
            await connection.close()

    asyncio.run(run())


def stop_process(process: subprocess.Popen[str]) -> None:
    """SIGSTOP `process` and wait until every thread of it is stopped: the signal is
    asynchronous, and on a loaded machine an event thread may otherwise go on reading events
    for a while after it was sent."""
    process.send_signal(signal.SIGSTOP)

    def all_stopped() -> bool:
        states = []
        for task in Path(f"/proc/{process.pid}/task").iterdir():
            try:
                states.append((task / "stat").read_text().rsplit(")", 1)[1].split()[0])
            except (OSError, IndexError):
                continue
        return bool(states) and all(state in ("T", "t") for state in states)

    eventually(all_stopped, f"pid {process.pid} stopped")
