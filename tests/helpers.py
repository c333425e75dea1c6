"""Shared test helpers: real folders, real files, real subprocesses. No mocks.

Imported by the tests as `tests.helpers`; conftest.py holds only fixtures."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
BM = [sys.executable, "-m", "bm_sync"]
# An hour ago: far outside the racy window, so the stat fast path applies.
OLD_NS = 1_700_000_000 * 1_000_000_000


def write(root: Path, relative: str, content: str | bytes, *, old: bool = True) -> Path:
    """Write a file (creating folders); `old` backdates its mtime out of the racy window."""
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str):
        content = content.encode()
    path.write_bytes(content)
    if old:
        os.utime(path, ns=(OLD_NS, OLD_NS))
    return path


def backdate(root: Path) -> None:
    """Move every file's mtime an hour into the past (as if edited long ago)."""
    for folder, _dirs, files in os.walk(root):
        if ".basic-memory" in folder:
            continue
        for name in files:
            os.utime(os.path.join(folder, name), ns=(OLD_NS, OLD_NS))


def run_bm(*args: str, cwd: Path | None = None, check: bool = False,
           env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the real `bm` CLI in a subprocess."""
    return subprocess.run([*BM, *args], cwd=cwd, capture_output=True, text=True, check=check,
                          env={**os.environ, **(env or {})}, timeout=300)


def bm_json(*args: str, cwd: Path | None = None) -> dict[str, Any]:
    result = run_bm(*args, "--json", cwd=cwd)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def share_state_with_everyone(root: Path) -> None:
    """Let the unprivileged user of `as_unprivileged` write `.basic-memory/` (made by root)."""
    for folder, _folders, files in os.walk(root / ".basic-memory"):
        os.chmod(folder, 0o777)
        for name in files:
            os.chmod(os.path.join(folder, name), 0o666)


def as_unprivileged(function: Callable[[], Any]) -> Any:
    """Run `function` where file permissions apply, and return its (picklable) result.

    Tests run as root in CI, and root reads everything. So when we are root, fork, drop to
    `nobody` in the child (modules are already imported, nothing is executed from /root) and
    send the result back through a pipe. As an ordinary user, just call it.
    """
    if os.geteuid() != 0:
        return function()
    # Everything a run imports lazily, imported now: the child cannot read /root's stdlib.
    import importlib
    import mimetypes

    for module in ("bm_sync.markdown", "bm_sync.apply", "bm_sync.history", "bm_sync.versions",
                   "bm_sync.db.engine", "bm_sync.db.writes", "concurrent.futures.thread",
                   "sqlalchemy.dialects.sqlite", "sqlalchemy.dialects.sqlite.aiosqlite",
                   "sqlalchemy.ext.asyncio", "aiosqlite", "dulwich.index", "dulwich.pack",
                   "dulwich.object_store", "dulwich.objects", "yaml", "difflib", "uuid",
                   "traceback"):
        importlib.import_module(module)
    mimetypes.init()

    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.close(read_end)
        try:
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            payload = pickle.dumps(("ok", function()))
        except BaseException as error:  # report anything to the parent
            import traceback

            payload = pickle.dumps(("error", repr(error) + "\n" + traceback.format_exc()))
        with os.fdopen(write_end, "wb") as pipe:
            pipe.write(payload)
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        status, value = pickle.loads(pipe.read())
    os.waitpid(pid, 0)
    if status != "ok":
        raise AssertionError(f"unprivileged call failed: {value}")
    return value
