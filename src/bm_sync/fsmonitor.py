"""The fsmonitor fast path: `bm status` and `bm sync` ask a running `bm watch` instead of
walking the tree (git's fsmonitor protocol, on a Unix socket).

The client half (`ask`, `socket_path`, `find_state_root`) imports only the standard library's
`os`, `socket`, `json` and `sys`: it runs before typer and before bm_sync's heavy modules
(`bm_sync.entry`), because interpreter start-up is most of what a no-change status costs.
Any doubt (no socket, a stale one after a SIGKILL, a timeout, a malformed reply, another
folder's watcher, a `trivial` answer) returns None, and the caller scans as it would have
without a watcher: silently and correctly.

One request per connection, one JSON line each way, `"v": 1`:

- `{"op": "status", "target": PATH, "json": BOOL}` -> `{"token", "root_id", "trivial",
  "stdout", "stderr", "exit"}`: what `bm status` prints, computed by the watcher from the paths
  dirtied since its index (`watching.Watcher.answer_status`);
- `{"op": "sync", "target", "json", "db", "versions"}` -> the same, after the watcher has run
  its pending batch at once (or `"refused"` when `db`/`versions` differ from the watcher's);
- `{"op": "flush"}` -> a new token instance and a full scan, as git's `flush` (tests use it to
  lose the token on purpose).

The token is `<instance>:<seq>`: the instance changes at every start and every loss of
history, `seq` counts applied batches, so a caller can tell that a rescan happened between two
answers.
"""

from __future__ import annotations

import json
import os
import socket
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bm_sync.watching import Watcher

PROTOCOL = 1
STATE_DIR = ".basic-memory"
SOCKET_NAME = "watch.sock"
# sun_path holds 108 bytes on Linux, 104 on macOS: longer paths move to a runtime folder.
MAX_SOCKET_PATH = 100
CONNECT_TIMEOUT_S = 0.2
REPLY_TIMEOUT_S = 5.0
MAX_LINE = 1 << 24
DISABLE_ENV = "BM_NO_FSMONITOR"


def socket_path(root: str) -> str:
    """Where the watcher of `root` (a resolved path) listens."""
    inside = os.path.join(root, STATE_DIR, SOCKET_NAME)
    if len(os.fsencode(inside)) <= MAX_SOCKET_PATH:
        return inside
    import hashlib

    digest = hashlib.sha256(os.fsencode(root)).hexdigest()[:24]
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    folder = (os.path.join(runtime, "bm-sync") if runtime
              else os.path.join("/tmp", f"bm-sync-{os.getuid()}"))
    return os.path.join(folder, f"{digest}.sock")


def find_state_root(target: str) -> str | None:
    """The notes folder `target` belongs to (the nearest folder upward holding
    `.basic-memory/`, as `roots.find_root`), resolved; None when there is none."""
    folder = os.path.abspath(target)
    while True:
        if os.path.isdir(os.path.join(folder, STATE_DIR)):
            return os.path.realpath(folder)
        parent = os.path.dirname(folder)
        if parent == folder:
            return None
        folder = parent


def ask(root: str, request: dict[str, Any],
        timeout: float = REPLY_TIMEOUT_S) -> dict[str, Any] | None:
    """Send one request to the watcher of `root`; its reply, or None when the caller must do
    the work itself (no watcher, a stale or foreign one, a trivial answer, any error)."""
    if os.environ.get(DISABLE_ENV):
        return None
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
            connection.settimeout(CONNECT_TIMEOUT_S)
            connection.connect(socket_path(root))
            connection.settimeout(timeout)
            connection.sendall(json.dumps({"v": PROTOCOL, **request}).encode() + b"\n")
            reply = _read_line(connection)
        answer = json.loads(reply)
        identity = os.stat(root)
    except (OSError, ValueError):
        return None
    if (not isinstance(answer, dict) or answer.get("v") != PROTOCOL or answer.get("trivial")
            or answer.get("refused") or answer.get("root_id") != [identity.st_dev,
                                                                   identity.st_ino]):
        return None
    return answer


def _read_line(connection: socket.socket) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = connection.recv(65536)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
        if chunk.endswith(b"\n") or size > MAX_LINE:
            break
    return b"".join(chunks)


def print_answer(answer: dict[str, Any], *, quiet: bool = False) -> int:
    """Print a watcher's answer as the command itself would have; return the exit code."""
    if answer.get("stderr"):
        sys.stderr.write(str(answer["stderr"]))
    if answer.get("stdout") and not quiet:
        sys.stdout.write(str(answer["stdout"]))
    exit_code = answer.get("exit", 0)
    return exit_code if isinstance(exit_code, int) else 1


# -- the server (in the watcher's process) ---------------------------------------------------


async def serve(watcher: Watcher) -> Any:
    """Listen on the folder's socket for the watcher's lifetime; returns the asyncio server.
    Called under the watcher's `watch.lock`, so a socket already there is a dead watcher's."""
    import asyncio

    path = socket_path(str(watcher.root))
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), REPLY_TIMEOUT_S)
            request = json.loads(line)
            reply = await watcher.answer(request if isinstance(request, dict) else {})
        except (ValueError, OSError, TimeoutError) as error:
            reply = {"trivial": True, "why": f"bad request: {type(error).__name__}"}
        reply["v"] = PROTOCOL
        try:
            writer.write(json.dumps(reply).encode() + b"\n")
            await writer.drain()
            writer.close()
            await writer.wait_closed()
        except OSError:
            pass  # the client gave up: it scans by itself

    server = await asyncio.start_unix_server(handle, path=path, limit=MAX_LINE)
    os.chmod(path, 0o600)
    return server


def remove_socket(root: str) -> None:
    try:
        os.unlink(socket_path(root))
    except OSError:
        pass
