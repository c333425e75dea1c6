"""`bm watch` (issue 9): a real watcher (`bm watch` subprocesses, real inotify) on real files.

No mocked events and no fixed sleeps standing for a condition: every test waits for the
watcher's own output or for the database, with generous timeouts (CI runs on 2 busy cores).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest

from bm_sync import fsmonitor
from bm_sync.detector import Detector
from tests.helpers import run_bm, write
from tests.helpers_watch import (
    BACKENDS,
    WatchProcess,
    backend_env,
    blob_id,
    entities,
    eventually,
    run_entry,
    stop_process,
)

NOTE = "# Note\n\n- [idea] the first version\n"


def _notes(root: Path, *paths: str) -> None:
    """Notes for a watcher to start on: its reconcile is their first sync."""
    for path in paths:
        write(root, path, NOTE)


def _clean(root: Path) -> None:
    """A full scan finds nothing left to apply: the index holds what is on disk."""
    report = Detector(root).status()
    assert report.change_count == 0 and not report.failed, report


# -- editors' save patterns: each ends as one modification, same entity --------------------

def _vim(root: Path, name: str, text: bytes) -> None:
    """Real vim: write a line at the end and `:wq` (its backup, swap and 4913 probe)."""
    subprocess.run(["vim", "-u", "DEFAULTS", "-i", "NONE", "-Es", "-c", "normal Goadded by vim",
                    "-c", "wq", str(root / name)], check=True, timeout=60,
                   cwd=root, stdin=subprocess.DEVNULL)


def _vim_script(root: Path, name: str, text: bytes) -> None:
    """vim's sequence, step by step: .swp, the 4913 probe, rename to `~`, write, unlink `~`."""
    swap, probe, backup = root / f".{name}.swp", root / "4913", root / f"{name}~"
    swap.write_bytes(b"swap")
    probe.write_bytes(b"")
    probe.unlink()
    (root / name).rename(backup)
    (root / name).write_bytes(text)
    backup.unlink()
    swap.unlink()


def _temp_and_rename(root: Path, name: str, text: bytes) -> None:
    temporary = root / f".{name}.tmp"
    temporary.write_bytes(text)
    temporary.rename(root / name)


def _delete_then_create(root: Path, name: str, text: bytes) -> None:
    (root / name).unlink()
    (root / name).write_bytes(text)


def _delete_pause_create(root: Path, name: str, text: bytes) -> None:
    """The grace for disappearances: 0.3 s between the two steps (past the 50 ms quiet)."""
    import time

    (root / name).unlink()
    time.sleep(0.3)
    (root / name).write_bytes(text)


EDITORS: list[tuple[str, Callable[[Path, str, bytes], None]]] = [
    ("vim.md", _vim),
    ("vim-script.md", _vim_script),
    ("temp-rename.md", _temp_and_rename),
    ("delete-create.md", _delete_then_create),
    ("delete-pause-create.md", _delete_pause_create),
]


@pytest.mark.parametrize("backend", BACKENDS)
def test_editor_save_patterns_are_one_modification_of_the_same_entity(notes: Path,
                                                                       backend: str) -> None:
    _notes(notes, *(name for name, _save in EDITORS))
    with WatchProcess(notes, env=backend_env(backend)).wait_ready() as watcher:
        before = entities(notes)
        for name, save in EDITORS:
            text = NOTE.encode() + f"- [fact] saved by {save.__name__}\n".encode()
            save(notes, name, text)
            watcher.wait_batch(lambda report, name=name: name in report["modified"],
                               f"{name} modified")
            after = entities(notes)
            if save is not _vim:
                assert after[name][1] == blob_id(text)
            assert after[name][0] == before[name][0], f"{name} lost its entity id"
        for report in watcher.batches:
            touched = report["added"] + report["deleted"] + [move["to"] for move in
                                                             report["moved"]]
            assert not set(touched) & {name for name, _save in EDITORS}, watcher.describe()
        assert set(entities(notes)) == {name for name, _save in EDITORS}
        assert watcher.terminate() == 0
    _clean(notes)


# -- folders -------------------------------------------------------------------------------

@pytest.mark.parametrize("backend", BACKENDS)
def test_a_folder_rename_is_moves_in_one_batch_and_folders_in_and_out(notes: Path,
                                                                       backend: str) -> None:
    _notes(notes, *(f"projects/n{number:03}.md" for number in range(100)))
    outside = Path(tempfile.mkdtemp(prefix="bm-outside-"))
    try:
        with WatchProcess(notes, env=backend_env(backend)).wait_ready() as watcher:
            ids = entities(notes)
            (notes / "projects").rename(notes / "archive")
            report = watcher.wait_batch(lambda report: report["moved"], "the folder's moves")
            assert len(report["moved"]) == 100 and not report["added"] + report["deleted"]
            assert all(entities(notes)[f"archive/n{number:03}.md"][0]
                       == ids[f"projects/n{number:03}.md"][0] for number in range(100))

            (notes / "archive").rename(outside / "archive")  # out of the root: deletions
            watcher.wait_batch(lambda report: len(report["deleted"]) == 100, "100 deletions")

            write(outside, "incoming/deep/a.md", NOTE)
            (outside / "incoming").rename(notes / "incoming")  # in: adds, and watched
            watcher.wait_batch(lambda report: report["added"] == ["incoming/deep/a.md"],
                               "the folder moved in")
            write(notes, "incoming/deep/b.md", NOTE, old=False)
            watcher.wait_batch(lambda report: report["added"] == ["incoming/deep/b.md"],
                               "a note written in the folder moved in")
            assert watcher.terminate() == 0
    finally:
        shutil.rmtree(outside)
    _clean(notes)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_big_folder_moved_in_is_one_batch_not_lost_history(notes: Path, backend: str) -> None:
    """1,100 files in a folder moved in are one reported path (the folder), not 1,100 paths
    over the 1,000-path limit: no warning, one batch."""
    _notes(notes, "a.md")
    outside = Path(tempfile.mkdtemp(prefix="bm-outside-"))
    try:
        for number in range(1100):
            (outside / f"f{number:04}.txt").write_bytes(b"x")
        with WatchProcess(notes, env=backend_env(backend)).wait_ready() as watcher:
            outside.rename(notes / "imported")
            report = watcher.wait_batch(lambda report: report["added"], "the imported folder")
            assert len(report["added"]) == 1100
            assert watcher.terminate() == 0
            assert not [line for line in watcher.stderr if "more than" in line]
    finally:
        shutil.rmtree(outside, ignore_errors=True)


def test_a_hidden_folder_above_the_root_hides_nothing(notes: Path) -> None:
    """basic-memory #798: only paths below the root are filtered."""
    root = notes / ".hidden" / ".venv" / "notes"
    _notes(root, "a.md")
    with WatchProcess(root).wait_ready() as watcher:
        write(root, "b.md", NOTE, old=False)
        watcher.wait_batch(lambda report: report["added"] == ["b.md"], "b.md added")
        assert watcher.terminate() == 0


# -- lost history: a full scan, with one warning -------------------------------------------

def _queue_limit() -> int:
    return int(Path("/proc/sys/fs/inotify/max_queued_events").read_text())


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_edit_lost_in_a_queue_overflow_is_applied(notes: Path, backend: str) -> None:
    """The kernel queue overflows while the watcher is stopped (SIGSTOP), and only then is the
    note edited: its event is dropped. Our inotify reader sees the overflow, says so and scans
    the whole folder. watchfiles drops the overflow without a word (notify's `Rescan` event
    has no path, and watchfiles keeps only events with one): there the periodic rescan
    repairs it, here made short."""
    write(notes, ".gitignore", "junk/\n")
    write(notes, "junk/a", "a")
    write(notes, "junk/b", "b")
    _notes(notes, "note.md")
    rescan = ("--rescan-minutes", "0.05") if backend == "watchfiles" else ()
    with WatchProcess(notes, *rescan, env=backend_env(backend)).wait_ready() as watcher:
        stop_process(watcher.process)
        try:
            for number in range(_queue_limit() // 2 + 1000):  # ATTRIB events, never merged
                os.utime(notes / "junk" / "a", ns=(number, number))
                os.utime(notes / "junk" / "b", ns=(number, number))
            write(notes, "note.md", NOTE + "- [fact] edited after the overflow\n", old=False)
        finally:
            watcher.process.send_signal(signal.SIGCONT)
        if backend == "inotify":
            assert "scanning the whole folder" in watcher.wait_warning("overflow")
        else:
            watcher.wait_warning("rescan found 1 changes the watcher missed")
        watcher.wait_batch(lambda report: report["modified"] == ["note.md"], "note.md")
        assert watcher.terminate() == 0
    _clean(notes)


@pytest.mark.parametrize("backend", BACKENDS)
def test_more_than_1000_paths_at_once_is_a_full_scan(notes: Path, backend: str) -> None:
    write(notes, ".gitignore", "build/\n")
    _notes(notes, "note.md")
    (notes / "build").mkdir()
    with WatchProcess(notes, env=backend_env(backend)).wait_ready() as watcher:
        stop_process(watcher.process)  # so that they arrive as one batch
        try:
            for number in range(1100):
                (notes / "build" / f"o{number}").write_bytes(b"")
            write(notes, "note.md", NOTE + "- [fact] edited with the build\n", old=False)
        finally:
            watcher.process.send_signal(signal.SIGCONT)
        watcher.wait_warning("more than 1,000 paths changed at once")
        eventually(lambda: entities(notes)["note.md"][1] == blob_id(
            (notes / "note.md").read_bytes()), "note.md applied")
        assert watcher.terminate() == 0
    _clean(notes)


# -- life cycle ----------------------------------------------------------------------------

def test_a_restart_reconciles_what_changed_while_killed(notes: Path) -> None:
    _notes(notes, "keep.md", "edit.md", "gone.md")
    watcher = WatchProcess(notes).wait_ready()
    watcher.process.kill()  # SIGKILL: no cleanup, a stale socket stays behind
    watcher.wait()
    write(notes, "edit.md", NOTE + "- [fact] edited while nobody watched\n")
    (notes / "gone.md").unlink()
    write(notes, "new.md", "# New\n\nnothing like the others\n")
    # No watcher: the stale socket is refused and `bm status` scans, silently.
    status = run_entry("status", str(notes))
    assert status.returncode == 0 and status.stderr == ""
    assert status.stdout.splitlines()[-1].startswith("1 added, 1 modified, 1 deleted")
    with WatchProcess(notes).wait_ready() as restarted:
        first = restarted.lines[0]
        assert (first["added"], first["modified"], first["deleted"]) == (
            ["new.md"], ["edit.md"], ["gone.md"])
        assert restarted.terminate() == 0
    _clean(notes)


def test_sigterm_finishes_the_batch_and_exits_0_and_a_second_watcher_is_refused(
        notes: Path) -> None:
    _notes(notes, "a.md")
    with WatchProcess(notes).wait_ready() as watcher:
        second = run_entry("watch", str(notes))
        assert second.returncode == 1
        assert second.stderr.strip() == (
            f"bm: error: already watching {notes} (pid {watcher.process.pid})")
        write(notes, "b.md", NOTE, old=False)
        # Once the watcher has seen the event (pending in its batch, or applied already), a
        # stop applies it before the exit. Waiting for that keeps a loaded machine's late
        # event delivery out of the test.
        eventually(lambda: "b.md" in _seen_by(notes), "the watcher seeing b.md")
        code = watcher.terminate()
        assert code == 0, watcher.describe()
    assert "b.md" in entities(notes)  # the batch in flight was applied before the exit
    assert not (notes / ".basic-memory" / "watch.sock").exists()
    _clean(notes)
    with WatchProcess(notes).wait_ready() as again:  # the watch lock was released
        assert again.terminate() == 0


def test_the_root_moved_away_stops_the_watcher_with_exit_1(notes: Path) -> None:
    root = notes / "notes"
    _notes(root, "a.md")
    with WatchProcess(root).wait_ready() as watcher:
        root.rename(notes / "elsewhere")
        assert watcher.wait() == 1
        assert len(watcher.stderr) == 1 and "was moved" in watcher.stderr[0], watcher.describe()


def test_polling_mode_applies_changes_and_says_so(notes: Path) -> None:
    _notes(notes, "a.md")
    with WatchProcess(notes, "--poll-seconds", "0.2",
                      env={"BM_WATCH_FORCE_POLL": "1"}).wait_ready() as watcher:
        watcher.wait_warning("polling every 0.2 s: BM_WATCH_FORCE_POLL is set")
        write(notes, "b.md", NOTE, old=False)
        watcher.wait_batch(lambda report: report["added"] == ["b.md"], "b.md added by a poll")
        # No fast path while polling: a poller cannot vouch for the time since its last pass.
        assert fsmonitor.ask(str(notes), {"op": "status", "json": True}) is None
        assert watcher.terminate() == 0


@pytest.mark.parametrize(("limit", "when"), [(3, "at start"), (6, "at run time")])
def test_the_inotify_watch_limit_switches_to_polling(notes: Path, limit: int, when: str) -> None:
    """In a user namespace of its own, the watcher gets room for `limit` watches: 3 is less
    than the cookie folder, the root and its 3 folders; 6 leaves 1 spare, and `mkdir -p` of 3
    more reaches it at run time. The limit is per user namespace: nothing outside the test is
    touched."""
    if subprocess.run(["unshare", "-U", "-r", "true"]).returncode != 0:
        pytest.fail("unprivileged user namespaces are needed for this test (unshare -U -r)")
    _notes(notes, "a/1.md", "b/2.md", "c/3.md")
    limited = ("unshare", "-U", "-r", "sh", "-c",
               f'echo {limit} > /proc/sys/user/max_inotify_watches && exec "$@"', "sh")
    with WatchProcess(notes, "--poll-seconds", "0.2", prefix=limited).wait_ready() as watcher:
        if when == "at run time":
            (notes / "new" / "x" / "y").mkdir(parents=True)
        warning = watcher.wait_warning("inotify watch limit reached")
        assert f"fs.inotify.max_user_watches = {limit})" in warning and "polling" in warning
        write(notes, "new/x/y/deep.md", NOTE, old=False)
        watcher.wait_batch(lambda report: "new/x/y/deep.md" in report["added"],
                           "a note below the limit, found by polling")
        assert watcher.terminate() == 0
    _clean(notes)


@pytest.mark.parametrize("how", ["console entry", "library"])
def test_bm_sync_under_a_watcher_is_the_watchers_batch(notes: Path, how: str) -> None:
    _notes(notes, "a.md")
    with WatchProcess(notes, debounce_ms=60_000).wait_ready() as watcher:
        write(notes, "a.md", NOTE + "- [fact] edited\n", old=False)
        if how == "console entry":  # the watcher runs its batch now and reports it
            result = run_entry("sync", str(notes), "--json")
            assert result.returncode == 0, result.stderr
            assert '"via": "watcher"' in result.stdout
        else:  # the plain CLI (`python -m bm_sync`) takes the folder lock between batches
            result = run_bm("sync", str(notes), "--json", "--wait")
            assert result.returncode == 0, result.stderr
        # Either way, when `bm sync` returns, the edit is in the database.
        assert entities(notes)["a.md"][1] == blob_id((notes / "a.md").read_bytes())
        assert watcher.terminate() == 0
    _clean(notes)


def test_restore_while_watching_is_recorded_once_as_a_modification(notes: Path) -> None:
    _notes(notes, "a.md")
    with WatchProcess(notes).wait_ready() as watcher:
        write(notes, "a.md", NOTE + "- [fact] second version\n", old=False)
        watcher.wait_batch(lambda report: report["modified"] == ["a.md"], "the edit")
        restored = run_bm("restore", str(notes / "a.md"), "--rev", "~1")
        assert restored.returncode == 0, restored.stderr
        watcher.wait_for(lambda: len([report for report in watcher.batches
                                      if report["modified"] == ["a.md"]]) == 2, "the restore")
        assert watcher.terminate() == 0
    assert (notes / "a.md").read_text() == NOTE
    history = run_bm("history", str(notes / "a.md"), "--json")
    kinds = [version["kind"] for version in __import__("json").loads(history.stdout)["versions"]]
    assert kinds == ["modified", "modified", "added"]


def _seen_by(root: Path) -> set[str]:
    """The paths the watcher of `root` has taken in: added in its pending batch (its fast-path
    status) or already in the database."""
    answer = fsmonitor.ask(str(root), {"op": "status", "json": True})
    pending = set(json.loads(answer["stdout"])["added"]) if answer is not None else set()
    return pending | set(entities(root))
