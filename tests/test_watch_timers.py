"""The watcher's timers and its stop (issue 9), on both event backends: the periodic rescan
repairs a change no event reported, the heartbeat replaces a deaf event source, a failed
batch is retried after a growing pause, and a stop drains what the kernel still holds.

Real `bm watch` subprocesses on real files; the timers are made short with the CLI's own
options (`--rescan-minutes` takes fractions; `--heartbeat-seconds` is a hidden option).
"""

from __future__ import annotations

import shutil
import signal
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from bm_sync import fsmonitor
from tests import postgres
from tests.helpers import write
from tests.helpers_watch import (
    BACKENDS,
    WatchProcess,
    backend_env,
    blob_id,
    entities,
    eventually,
    postgres_admin,
)

NOTE = "# Note\n\n- [idea] the first version\n"


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_periodic_rescan_repairs_a_change_no_event_reported(notes: Path,
                                                                backend: str) -> None:
    """A note written through a hard link that lives outside the watched folder: the kernel
    reports the write to the link's folder only, so no watcher hears it. The jittered rescan
    (every 0.02 min = 1.2 s here) finds it and says so."""
    write(notes, "linked.md", NOTE)
    outside = Path(tempfile.mkdtemp(prefix="bm-outside-"))
    try:
        (outside / "linked.md").hardlink_to(notes / "linked.md")
        with WatchProcess(notes, "--rescan-minutes", "0.02",
                          env=backend_env(backend)).wait_ready() as watcher:
            text = NOTE + "- [fact] written through the hard link\n"
            (outside / "linked.md").write_text(text)
            report = watcher.wait_batch(lambda report: report["modified"] == ["linked.md"],
                                        "the rescan applying linked.md")
            assert not report["added"] + report["deleted"]
            watcher.wait_warning("rescan found 1 changes the watcher missed")
            assert entities(notes)["linked.md"][1] == blob_id(text.encode())
            assert watcher.terminate() == 0
    finally:
        shutil.rmtree(outside)


def test_without_the_rescan_the_hard_link_write_stays_unseen(notes: Path) -> None:
    """The control of the test above: the same write, no rescan, and a later ordinary save
    in the same folder is applied on its own, the linked note still behind. So the rescan
    is what repaired it there, not an event."""
    write(notes, "linked.md", NOTE)
    write(notes, "other.md", NOTE)
    outside = Path(tempfile.mkdtemp(prefix="bm-outside-"))
    try:
        (outside / "linked.md").hardlink_to(notes / "linked.md")
        with WatchProcess(notes, "--rescan-minutes", "0").wait_ready() as watcher:
            before = entities(notes)["linked.md"]
            (outside / "linked.md").write_text(NOTE + "- [fact] unseen\n")
            write(notes, "other.md", NOTE + "- [fact] seen\n", old=False)
            watcher.wait_batch(lambda report: report["modified"] == ["other.md"], "other.md")
            assert entities(notes)["linked.md"] == before
            assert watcher.terminate() == 0
    finally:
        shutil.rmtree(outside)


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_heartbeat_restarts_a_deaf_event_source(notes: Path, backend: str) -> None:
    """The cookie folder deleted under a running watcher takes its watch with it: the
    heartbeat's cookie (every 0.3 s here) does not come back. The watcher says so once,
    replaces its event source and scans; events and the fast path work again afterwards."""
    write(notes, "a.md", NOTE)
    with WatchProcess(notes, "--heartbeat-seconds", "0.3",
                      env=backend_env(backend)).wait_ready() as watcher:
        shutil.rmtree(notes / ".basic-memory" / "cookies")
        if backend == "inotify":  # watchfiles may arm the re-created folder in time
            watcher.wait_warning("no file event came back for the heartbeat")
        write(notes, "b.md", NOTE, old=False)
        watcher.wait_batch(lambda report: report["added"] == ["b.md"], "b.md by events")
        # The fast path answers again (it needs a cookie that comes back).
        eventually(lambda: fsmonitor.ask(str(notes), {"op": "status", "json": True})
                   is not None, "a fast-path answer")
        assert len([line for line in watcher.stderr if "heartbeat" in line]) <= 1
        assert watcher.terminate() == 0


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_save_just_before_sigterm_is_in_the_database_at_exit(notes: Path,
                                                               backend: str) -> None:
    """Notes written, then SIGTERM at once: the stop's cookie round trip drains the kernel's
    queue, so every one is applied before the exit (0). Several rounds, several notes each:
    without the drain, the last writes are often still unread when the signal lands."""
    write(notes, "start.md", NOTE)
    for round_number in range(4):
        with WatchProcess(notes, env=backend_env(backend)).wait_ready() as watcher:
            saved = [f"r{round_number}-{number}.md" for number in range(5)]
            for name in saved:
                write(notes, name, NOTE + f"- [fact] {name}\n", old=False)
            watcher.process.send_signal(signal.SIGTERM)
            assert watcher.wait() == 0, watcher.describe()
        missing = set(saved) - set(entities(notes))
        assert not missing, f"round {round_number}: {sorted(missing)} not applied at exit"


def test_a_failed_batch_is_retried_by_a_full_scan_after_a_pause(notes: Path) -> None:
    """The database goes away under a running watcher (PostgreSQL: connections refused, the
    watcher's own ended): the batch fails, the watcher says so and keeps retrying with a
    full scan after a growing pause; once the database is back, the retry applies the note
    saved meanwhile. Nothing is lost, the watcher never exits."""
    url = postgres.server().create_database()
    name = urlsplit(url).path.lstrip("/")
    write(notes, "a.md", NOTE)
    try:
        with WatchProcess(notes, "--db", url).wait_ready() as watcher:
            postgres_admin(url, f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false',
                           "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                           f" WHERE datname = '{name}'")
            try:
                write(notes, "b.md", NOTE, old=False)
                watcher.wait_warning("; retrying with a full scan in 1 s")
                watcher.wait_warning("; retrying with a full scan in 2 s")  # it grows
            finally:
                postgres_admin(url, f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
            watcher.wait_batch(lambda report: "b.md" in report["added"], "the retry")
            assert watcher.process.poll() is None
            assert watcher.terminate() == 0
    finally:
        postgres.drop_database(url)
