"""The fsmonitor fast path (issue 9): `bm status` answered by a running `bm watch` must be
exactly the full scan's answer; any doubt falls back to the scan.

Comparisons hold the folder lock (as a `bm restore` would): the watcher's batches wait, so the
index both answers read cannot change in between, and the batch held back is the "batch in
flight" the watcher must count as dirty.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bm_sync import fsmonitor
from bm_sync.detector import Detector
from bm_sync.fstype import REMOTE_MAGICS, mount_type, remote_kind
from bm_sync.lock import FolderLock
from tests.helpers import write
from tests.helpers_watch import WatchProcess, eventually, run_entry

NAMES = ["a.md", "b.md", "dir/c.md", "dir/d.md", "other/e.md"]


def _fast_status(root: Path, target: Path | None = None) -> dict[str, Any]:
    request = {"op": "status", "json": True, "target": str(target or root)}
    answer = fsmonitor.ask(str(root), request)
    assert answer is not None, "the watcher did not answer"
    import json

    return dict(json.loads(answer["stdout"]))


def _apply(root: Path, step: tuple[str, int, int]) -> None:
    """One random change: create, edit, same-size edit with the mtime put back, move, folder
    rename, delete (a step that does not apply to the current tree does nothing)."""
    kind, first, second = step
    source, target = root / NAMES[first % len(NAMES)], root / NAMES[second % len(NAMES)]
    if kind == "create" and not source.exists():
        write(root, str(source.relative_to(root)), f"# {first}\n\n- [n] {second}\n", old=False)
    elif kind == "edit" and source.exists():
        with open(source, "a", encoding="utf-8") as note:
            note.write(f"- [edit] {second}\n")
    elif kind == "same-size" and source.exists():
        before = os.stat(source)
        content = bytearray(source.read_bytes())
        content[0:1] = b"#" if content[:1] != b"#" else b"%"
        source.write_bytes(bytes(content))
        os.utime(source, ns=(before.st_atime_ns, before.st_mtime_ns))
    elif kind == "move" and source.exists() and not target.exists():
        target.parent.mkdir(exist_ok=True)
        source.rename(target)
    elif kind == "rename-folder" and (root / "dir").exists() and not (root / "dir2").exists():
        (root / "dir").rename(root / "dir2")
    elif kind == "rename-folder" and (root / "dir2").exists() and not (root / "dir").exists():
        (root / "dir2").rename(root / "dir")
    elif kind == "delete" and source.exists():
        source.unlink()


STEPS = st.lists(st.tuples(
    st.sampled_from(["create", "edit", "same-size", "move", "rename-folder", "delete"]),
    st.integers(0, 4), st.integers(0, 4)), min_size=1, max_size=6)


@pytest.fixture
def watched(notes: Path) -> Any:
    for name in NAMES[:3]:
        write(notes, name, f"# {name}\n\n- [n] {name} first\n")
    with WatchProcess(notes).wait_ready() as watcher:
        yield notes, watcher
        assert watcher.terminate() == 0


@settings(max_examples=6, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=STEPS)
def test_the_fast_path_status_is_the_full_scans(watched: Any,
                                                steps: list[tuple[str, int, int]]) -> None:
    root, _watcher = watched
    lock = FolderLock(root / ".basic-memory")
    for step in steps:
        _apply(root, step)
        with lock.hold(wait=True):
            assert _fast_status(root) == Detector(root).status().to_json()
    # And once the held-back batch has run (the index moved under the dirty set).
    eventually(lambda: fsmonitor.ask(str(root), {"op": "status"}) is not None, "an answer")
    with lock.hold(wait=True):
        assert _fast_status(root) == Detector(root).status().to_json()


def test_bm_status_prints_the_same_with_and_without_the_watcher(notes: Path) -> None:
    # A root too long for sun_path: the socket lives in the runtime folder instead.
    root = notes / ("long-" * 20) / "notes"
    for name in NAMES:
        write(root, name, f"# {name}\n")
    assert not fsmonitor.socket_path(str(root)).startswith(str(root))
    with WatchProcess(root).wait_ready() as watcher:
        write(root, "a.md", "# a, edited\n", old=False)
        (root / "dir" / "c.md").rename(root / "other" / "c.md")
        write(root, "new.md", "# new\n", old=False)
        with FolderLock(root / ".basic-memory").hold(wait=True):
            for arguments in ([str(root)], [str(root / "dir")], [str(root / "other"), "--json"]):
                fast = run_entry("status", *arguments)
                full = run_entry("status", *arguments, env={"BM_NO_FSMONITOR": "1"})
                assert (fast.returncode, fast.stdout, fast.stderr) == (
                    full.returncode, full.stdout, full.stderr), arguments
            assert fsmonitor.ask(str(root), {"op": "status"}) is not None  # it was the watcher
        assert watcher.terminate() == 0


def test_a_lost_token_answers_trivially_until_the_rescan_ends(notes: Path) -> None:
    write(notes, "a.md", "# a\n")
    with WatchProcess(notes).wait_ready() as watcher:
        before = fsmonitor.ask(str(notes), {"op": "status"})
        assert before is not None
        with FolderLock(notes / ".basic-memory").hold(wait=True):  # the rescan waits for it
            assert fsmonitor.ask(str(notes), {"op": "flush"}) is None
            assert fsmonitor.ask(str(notes), {"op": "status"}) is None
        watcher.wait_warning("flush requested; scanning the whole folder")
        eventually(lambda: fsmonitor.ask(str(notes), {"op": "status"}) is not None,
                   "answers again after the rescan")
        after = fsmonitor.ask(str(notes), {"op": "status"})
        assert after is not None
        assert after["token"].split(":")[0] != before["token"].split(":")[0]
        assert watcher.terminate() == 0


@pytest.mark.parametrize(("magic", "mounted_as", "kind"), [
    (0xEF53, None, None),                # ext4
    (0x01021994, None, None),            # tmpfs
    (0x9123683E, None, None),            # btrfs
    (0x6969, None, "nfs"),
    (0xFF534D42, None, "cifs"),
    (0xFE534D42, None, "smb2"),
    (0x65735546, None, "fuse"),          # every FUSE mount, TigrisFS included
    (0x01021997, None, "9p"),
    (0x00C36400, None, "ceph"),
    (None, "nfs4", "nfs4"),              # no statfs: the mountinfo type decides
    (None, "fuse.sshfs", "fuse.sshfs"),
    (None, "ext4", None),
    (None, None, None),
])
def test_network_and_fuse_file_systems_are_polled(magic: int | None, mounted_as: str | None,
                                                  kind: str | None) -> None:
    assert remote_kind(magic, mounted_as) == kind


def test_the_mount_type_is_the_longest_mount_point_above(tmp_path: Path) -> None:
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_text(
        "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
        "40 22 0:40 / /mnt/notes rw,relatime shared:2 - fuse.tigrisfs tigris rw\n"
        "41 22 0:41 / /mnt/notes\\040old rw - nfs4 server:/x rw\n")
    assert mount_type("/mnt/notes/projects", str(mountinfo)) == "fuse.tigrisfs"
    assert mount_type("/mnt/notes old/a", str(mountinfo)) == "nfs4"
    assert mount_type("/mnt/notesx", str(mountinfo)) == "ext4"
    assert set(REMOTE_MAGICS.values()) >= {"nfs", "cifs", "fuse"}
