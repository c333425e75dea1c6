"""A throwaway PostgreSQL server for the tests: real `initdb` + `pg_ctl`, nothing mocked.

The server lives in a temporary folder (data directory, log, unix socket) and listens on that
socket only, with durability off (fsync, synchronous commit, full-page writes): a crash loses
a test database, never anything else, and each test gets a fresh database of its own.

Three ways in:
- `BM_TEST_POSTGRES_URL` set (`.ci/run` starts one server for the whole run): that server is
  used; this process neither starts nor stops it.
- Otherwise the first caller of `server()` starts one, and it is stopped and removed when the
  session ends (`shutdown()`, also registered with `atexit`, so a failing test run cleans up).
- `python3 -m tests.postgres start` prints the URL of a new server and leaves it running;
  `python3 -m tests.postgres stop URL` stops it and removes its folder. Starting and stopping
  need only the standard library (CI calls them before the project is installed); creating
  databases uses `asyncpg`, the driver the project itself uses.

A test that needs the server and cannot get one fails with the reason (binaries missing,
`initdb` or start failed with the server's log); it is never skipped.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import glob
import os
import pwd
import re
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Coroutine
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

URL_VARIABLE = "BM_TEST_POSTGRES_URL"
SUPERUSER = "postgres"
# Marks a folder as one of ours: `stop` removes nothing else.
MARKER = "bm-test-postgres"
# Durability off: a throwaway server only needs to survive the test run, not a power cut.
SETTINGS = {
    "listen_addresses": "''",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "wal_level": "minimal",
    "max_wal_senders": "0",
    "max_connections": "200",
    "shared_buffers": "128MB",
    "log_min_messages": "warning",
    "timezone": "'UTC'",
}
START_TIMEOUT_S = 60
SOCKET_PARENT = "/tmp" if os.path.isdir("/tmp") else None


class PostgresUnavailable(RuntimeError):
    """The throwaway server cannot be had; the message says why and what to do."""


def find_bindir() -> Path:
    """The newest installed PostgreSQL server's binaries (`initdb`, `pg_ctl`)."""
    installed = sorted((Path(found).parent for found
                        in glob.glob("/usr/lib/postgresql/*/bin/initdb")),
                       key=lambda bindir: _version_key(bindir.parent.name))
    on_path = shutil.which("initdb")
    candidates = [*reversed(installed), *([Path(on_path).resolve().parent] if on_path else [])]
    for bindir in candidates:
        if (bindir / "pg_ctl").exists():
            return bindir
    raise PostgresUnavailable(
        "PostgreSQL server binaries (initdb, pg_ctl) not found in /usr/lib/postgresql/*/bin "
        "or on PATH: install them with `apt-get install -y postgresql`")


def _version_key(name: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", name)) or (0,)


class Server:
    """One running throwaway server, reached through the unix socket in `folder`."""

    def __init__(self, folder: Path, *, owned: bool) -> None:
        self.folder = folder
        self.owned = owned  # started by this process, so stopped by it

    @property
    def url(self) -> str:
        """The SQLAlchemy URL of the maintenance database `postgres`."""
        return database_url(self.folder, "postgres")

    def create_database(self) -> str:
        """A new empty database; its `postgresql+asyncpg://` URL."""
        return create_database(self.url)


def database_url(socket_dir: Path, database: str) -> str:
    return f"postgresql+asyncpg://{SUPERUSER}@/{database}?host={quote(str(socket_dir))}"


def start() -> Server:
    """initdb + pg_ctl start in a new temporary folder; returns once the server accepts
    connections. Run as the `postgres` system user when we are root (PostgreSQL refuses to
    run as root), as ourselves otherwise. On failure nothing is left behind."""
    bindir = find_bindir()
    user = _server_user()
    # Under /tmp itself: every user can reach it (the server runs as `postgres`), and the
    # socket's path stays far below the 107-byte limit of unix socket addresses.
    folder = Path(tempfile.mkdtemp(prefix="bm-pg-", dir=SOCKET_PARENT))
    try:
        (folder / MARKER).write_text("a throwaway PostgreSQL server of the bm-sync tests\n")
        folder.chmod(0o755)  # other users (the socket's clients) may enter
        if user is not None:
            os.chown(folder, user.pw_uid, user.pw_gid)
        data = folder / "data"
        _run_as(user, [str(bindir / "initdb"), "--pgdata", str(data), "--username", SUPERUSER,
                       "--auth", "trust", "--encoding", "UTF8", "--locale", "C",
                       "--no-sync", "--no-instructions"], cwd=folder, what="initdb")
        with open(data / "postgresql.conf", "a", encoding="utf-8") as conf:
            conf.write("\n# bm-sync tests: throwaway server\n")
            conf.write(f"unix_socket_directories = '{folder}'\n")
            for name, value in SETTINGS.items():
                conf.write(f"{name} = {value}\n")
        _run_as(user, [str(bindir / "pg_ctl"), "start", "--pgdata", str(data),
                       "--log", str(folder / "server.log"), "--wait",
                       "--timeout", str(START_TIMEOUT_S)], cwd=folder, what="pg_ctl start",
                log=folder / "server.log")
    except BaseException:
        stop(folder)
        raise
    return Server(folder, owned=True)


def stop(folder: Path) -> None:
    """Stop the server in `folder` (if it runs) and remove the folder; only ours, ever."""
    if not (folder / MARKER).exists():
        return
    data = folder / "data"
    if (data / "postmaster.pid").exists():
        user = _server_user()
        subprocess.run([str(find_bindir() / "pg_ctl"), "stop", "--pgdata", str(data),
                        "--mode", "immediate", "--wait"], cwd=folder, capture_output=True,
                       check=False, timeout=START_TIMEOUT_S, **_as_user(user))
    shutil.rmtree(folder, ignore_errors=True)


def _server_user() -> pwd.struct_passwd | None:
    """Whom the server runs as: `postgres` when we are root, else nobody else (None)."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(SUPERUSER)
    except KeyError as error:
        raise PostgresUnavailable(
            "running as root, and there is no `postgres` system user to run the server as "
            "(PostgreSQL refuses to run as root): `apt-get install -y postgresql` creates it"
        ) from error


def _as_user(user: pwd.struct_passwd | None) -> dict[str, Any]:
    """`subprocess` options that run a command as `user` (no supplementary groups)."""
    if user is None:
        return {}
    return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}


def _run_as(user: pwd.struct_passwd | None, command: list[str], *, cwd: Path, what: str,
            log: Path | None = None) -> None:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False,
                            timeout=START_TIMEOUT_S + 30, env={**os.environ, "LC_ALL": "C"},
                            **_as_user(user))
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip()
        if log is not None and log.exists():
            detail += "\n" + log.read_text(errors="replace").strip()
        raise PostgresUnavailable(f"{what} failed (exit {result.returncode}): {detail}")


def _run_coroutine(coroutine: Coroutine[Any, Any, Any]) -> Any:
    """Run `coroutine` to completion from sync code, even inside a running event loop (an
    async test): on a fresh loop in a worker thread."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def _driver_dsn(url: str) -> str:
    """asyncpg's DSN for a SQLAlchemy URL (the same URL without `+asyncpg`)."""
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


def create_database(server_url: str) -> str:
    """A new empty database on the server at `server_url`; its SQLAlchemy URL. A file copy
    of `template0` (with fsync off, a few times quicker than the default WAL strategy)."""
    name = f"bm_test_{uuid.uuid4().hex[:16]}"
    _execute(server_url, f'CREATE DATABASE "{name}" TEMPLATE template0 STRATEGY FILE_COPY')
    return _with_database(server_url, name)


def drop_database(url: str) -> None:
    """Drop the database of `url`, closing whatever a test left connected to it."""
    name = urlsplit(url).path.lstrip("/")
    _execute(_with_database(url, "postgres"), f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _execute(url: str, sql: str) -> None:
    """Run one statement with asyncpg (the project's own driver), from sync code."""

    async def execute() -> None:
        import asyncpg  # type: ignore[import-untyped]

        connection = await asyncpg.connect(_driver_dsn(url))
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    try:
        _run_coroutine(execute())
    except (OSError, ImportError) as error:
        raise PostgresUnavailable(f"cannot reach the test server at {url}: {error}") from error


def _with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return parts._replace(path="/" + database).geturl()


def socket_dir(url: str) -> Path:
    """The folder of a server started by this module, from its URL (`?host=/folder`)."""
    hosts = parse_qs(urlsplit(url).query).get("host")
    if not hosts:
        raise PostgresUnavailable(f"{url!r} is not the URL of a server this module started")
    return Path(hosts[0])


_server: Server | None = None


def server() -> Server:
    """The session's server: `BM_TEST_POSTGRES_URL`'s, or one started now (and stopped when
    the process ends)."""
    global _server
    if _server is None:
        given = os.environ.get(URL_VARIABLE)
        if given:
            _server = Server(socket_dir(given), owned=False)
        else:
            _server = start()
            atexit.register(shutdown)
    return _server


def shutdown() -> None:
    """Stop the session's server if this process started it."""
    global _server
    if _server is not None and _server.owned:
        stop(_server.folder)
    _server = None


def main(arguments: list[str]) -> int:
    """`start` prints the URL of a new server left running; `stop URL` stops and removes it."""
    if arguments[:1] == ["start"] and len(arguments) == 1:
        try:
            print(start().url)
        except PostgresUnavailable as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        return 0
    if arguments[:1] == ["stop"] and len(arguments) == 2:
        stop(socket_dir(arguments[1]))
        return 0
    print("usage: python3 -m tests.postgres start | stop URL", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
