"""A throwaway PgBouncer in transaction pooling mode, in front of the test PostgreSQL server
(tests/postgres.py): the real `/usr/sbin/pgbouncer`, nothing mocked, standard library only.

Why a real one: the fleet's statements are written to work behind a transaction-pooling proxy
(docs/deploy.md); only a real PgBouncer shows what breaks there (prepared statements, startup
parameters, session state) once two clients share one server connection. The pool is small
(`POOL_SIZE` server connections per database) so that the clients of a test do share them.

The bouncer listens on a unix socket in a temporary folder of its own; it reaches the server
through the server's socket, any database name (`* =`, so every fresh test database is
reachable), as the server's superuser, with `trust` authentication on both sides (the user
must still be listed in the auth file). As root it runs as the `postgres` system user
(PgBouncer refuses to run as root). It is started by the first caller of `bouncer()` and
stopped when the process ends.

A test that needs PgBouncer and cannot get it fails with the reason (binary missing: `.ci/run`
installs it with apt), never skips.
"""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

from tests import postgres

BINARY = Path("/usr/sbin/pgbouncer")
PORT = 6432  # names the socket file (`.s.PGSQL.6432`); nothing listens on TCP
POOL_SIZE = 4
START_TIMEOUT_S = 30.0
MARKER = "bm-test-pgbouncer"


class PgBouncerUnavailable(RuntimeError):
    """The bouncer cannot be had; the message says why and what to do."""


class Bouncer:
    """One running PgBouncer, reached through the unix socket in `folder`."""

    def __init__(self, folder: Path, process: subprocess.Popen[bytes]) -> None:
        self.folder = folder
        self.process = process

    def url(self, server_url: str) -> str:
        """`server_url` (a database of the test server) as the user writes it to go through
        the bouncer (docs/deploy.md): its socket, and `prepared_statement_cache_size=0`."""
        parts = urlsplit(server_url)
        query = dict(parse_qsl(parts.query))
        query.update(host=str(self.folder), port=str(PORT), prepared_statement_cache_size="0")
        return parts._replace(query=urlencode(query, quote_via=quote, safe="/")).geturl()

    def log(self) -> str:
        try:
            return (self.folder / "pgbouncer.log").read_text(errors="replace")
        except OSError:
            return ""


def start(server_socket: Path) -> Bouncer:
    """Write a configuration and start PgBouncer in the foreground of a child process;
    returns once its socket accepts connections. On failure nothing is left behind."""
    if not BINARY.exists():
        raise PgBouncerUnavailable(
            f"{BINARY} not found: install it with `apt-get install -y pgbouncer`")
    user = postgres._server_user()  # noqa: SLF001 (the same rule as the server's)
    folder = Path(tempfile.mkdtemp(prefix="bm-pgb-", dir=postgres.SOCKET_PARENT))
    process: subprocess.Popen[bytes] | None = None
    try:
        (folder / MARKER).write_text("a throwaway PgBouncer of the bm-sync tests\n")
        (folder / "userlist.txt").write_text(f'"{postgres.SUPERUSER}" ""\n')
        (folder / "pgbouncer.ini").write_text(_configuration(folder, server_socket))
        folder.chmod(0o755)
        if user is not None:
            for path in (folder, *folder.iterdir()):
                os.chown(path, user.pw_uid, user.pw_gid)
        process = subprocess.Popen([str(BINARY), str(folder / "pgbouncer.ini")], cwd=folder,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                   **postgres._as_user(user))  # noqa: SLF001
        _wait_for_socket(folder, process)
    except BaseException:
        _stop(folder, process)
        raise
    return Bouncer(folder, process)


def _configuration(folder: Path, server_socket: Path) -> str:
    return f"""\
[databases]
* = host={server_socket} port=5432 user={postgres.SUPERUSER}

[pgbouncer]
pool_mode = transaction
listen_addr =
listen_port = {PORT}
unix_socket_dir = {folder}
auth_type = trust
auth_file = {folder / "userlist.txt"}
logfile = {folder / "pgbouncer.log"}
pidfile = {folder / "pgbouncer.pid"}
default_pool_size = {POOL_SIZE}
max_client_conn = 1000
max_db_connections = 0
server_reset_query =
log_connections = 0
log_disconnections = 0
"""


def _wait_for_socket(folder: Path, process: subprocess.Popen[bytes]) -> None:
    path = folder / f".s.PGSQL.{PORT}"
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        if process.poll() is not None:
            log = folder / "pgbouncer.log"
            raise PgBouncerUnavailable(
                f"pgbouncer exited ({process.returncode}) at start: "
                f"{log.read_text(errors='replace') if log.exists() else '(no log)'}")
        if path.exists():
            with socket.socket(socket.AF_UNIX) as probe:
                try:
                    probe.connect(str(path))
                    return
                except OSError:
                    pass
        if time.monotonic() > deadline:
            raise PgBouncerUnavailable(f"pgbouncer did not open {path} in {START_TIMEOUT_S} s")
        time.sleep(0.02)


def _stop(folder: Path, process: subprocess.Popen[bytes] | None) -> None:
    if process is not None and process.poll() is None:
        process.terminate()  # SIGTERM: PgBouncer closes every connection and exits
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    if (folder / MARKER).exists():
        shutil.rmtree(folder, ignore_errors=True)


_bouncer: Bouncer | None = None


def bouncer() -> Bouncer:
    """The session's bouncer, in front of the session's test server (started now, stopped
    when the process ends)."""
    global _bouncer
    if _bouncer is None:
        _bouncer = start(postgres.socket_dir(postgres.server().url))
        atexit.register(shutdown)
    return _bouncer


def shutdown() -> None:
    global _bouncer
    if _bouncer is not None:
        _stop(_bouncer.folder, _bouncer.process)
    _bouncer = None
