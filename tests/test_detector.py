"""Change classification on real folders: what is unchanged, added, modified, deleted."""

from __future__ import annotations

import hashlib
import json
import os
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from bm_sync import ChangeKind, Detector, HashKind, HashPolicy
from bm_sync.hashing import blob_id, hash_file
from bm_sync.index_format import IndexEntry, read_index, write_index
from tests.helpers import OLD_NS, as_unprivileged, backdate, run_bm, write

# Large enough that a file growing under a writer thread stays fully hashed.
NEVER_PARTIAL = HashPolicy(full_hash_max_bytes=1 << 40, chunk_bytes=4096)


def recorded(root: Path, **kwargs) -> Detector:
    detector = Detector(root, **kwargs)
    detector.record()
    return detector


def rewrite_index(detector: Detector,
                  change: Callable[[IndexEntry], IndexEntry] = lambda entry: entry,
                  **meta: object) -> None:
    """Craft a recorded state: the current index with entries and metadata changed."""
    snapshot = read_index(detector.index_path)
    entries = [change(entry) for entry in snapshot.entries()]
    write_index(detector.index_path, entries, len(entries), {**snapshot.meta, **meta},
                [entry for entry in entries if entry.hash_kind is not HashKind.FULL])


def with_sha1_trailer(data: bytes) -> bytes:
    """An index whose checksum is right for whatever its body now says."""
    return data[:-20] + hashlib.sha1(data[:-20]).digest()


def test_never_synced_folder_is_all_added(notes: Path) -> None:
    write(notes, "a.md", "# A\n")
    write(notes, "sub/b.md", "# B\n")
    write(notes, "sub/deeper/c.pdf", b"%PDF-1.4 binary")
    report = Detector(notes).status()
    assert report.added == ["a.md", "sub/b.md", "sub/deeper/c.pdf"]
    assert (report.modified, report.deleted, report.moved, report.failed) == ([], [], [], [])


def test_unchanged_files_are_not_opened(notes: Path) -> None:
    for number in range(50):
        write(notes, f"folder{number % 5}/note{number}.md", f"# Note {number}\n")
    recorded(notes)
    report = Detector(notes).status()
    assert report.change_count == 0
    assert report.unchanged == 50
    assert report.hashed == 0


def test_unreadable_unchanged_file_is_still_unchanged(notes: Path) -> None:
    """Proof that the stat fast path does not open the file: it cannot be opened at all."""
    path = write(notes, "secret.md", "# Secret\n")
    path.chmod(0o000)
    os.utime(path, ns=(OLD_NS, OLD_NS))
    recorded(notes)  # as root: can read it
    report = as_unprivileged(lambda: Detector(notes).status())
    assert report.failed == []
    assert report.unchanged == 1 and report.change_count == 0


def test_modified_added_deleted(notes: Path) -> None:
    write(notes, "keep.md", "keep\n")
    write(notes, "edit.md", "before\n")
    write(notes, "gone.md", "bye\n")
    recorded(notes)
    write(notes, "edit.md", "after, longer\n")
    (notes / "gone.md").unlink()
    write(notes, "new.md", "brand new\n")
    report = Detector(notes).status()
    assert report.added == ["new.md"]
    assert report.modified == ["edit.md"]
    assert report.deleted == ["gone.md"]
    assert report.unchanged == 1


def test_touch_is_unchanged_and_refreshes_stat(notes: Path) -> None:
    write(notes, "a.md", "same\n")
    recorded(notes)
    os.utime(notes / "a.md", ns=(OLD_NS + 10**9, OLD_NS + 10**9))
    first = Detector(notes).record()
    assert first.change_count == 0 and first.hashed == 1 and first.unchanged == 1
    second = Detector(notes).status()
    assert second.hashed == 0 and second.change_count == 0


def test_same_size_edit_with_mtime_put_back_is_detected(notes: Path) -> None:
    path = write(notes, "a.md", "aaaa\n")
    recorded(notes)
    path.write_bytes(b"bbbb\n")
    os.utime(path, ns=(OLD_NS, OLD_NS))  # touch -r / cp -p style: size and mtime as before
    report = Detector(notes).status()
    assert report.modified == ["a.md"]


def test_racy_same_size_edit_right_after_record_is_detected(notes: Path) -> None:
    """Recorded and edited within the same timestamp tick: size and mtime can look equal."""
    path = notes / "a.md"
    path.write_bytes(b"one\n")
    Detector(notes).record()
    stat_before = path.stat()
    path.write_bytes(b"two\n")
    os.utime(path, ns=(stat_before.st_atime_ns, stat_before.st_mtime_ns))
    assert Detector(notes).status().modified == ["a.md"]


def test_recent_unchanged_file_is_rehashed_but_unchanged(notes: Path) -> None:
    (notes / "a.md").write_bytes(b"fresh\n")  # mtime is now: racy
    Detector(notes).record()
    report = Detector(notes).status()
    assert report.change_count == 0 and report.unchanged == 1
    assert report.hashed == 1  # racy entries are verified by content


def test_racy_entries_clear_after_one_writable_run(notes: Path) -> None:
    """A bulk import recorded within the racy window must not be re-read on every later run."""
    for number in range(20):
        write(notes, f"n{number}.md", f"note {number}\n")
    detector = recorded(notes)
    rewrite_index(detector, racy_after_ns=0)  # as if recorded right after the import
    assert Detector(notes).record().hashed == 20  # verified by content once...
    report = Detector(notes).status()
    assert report.hashed == 0 and report.unchanged == 20  # ...and trusted by stat after


def test_racy_entry_with_matching_stat_but_other_content_is_modified(notes: Path) -> None:
    """Only the racy rule can catch this: size, mtime, ctime and inode all match the entry."""
    write(notes, "a.md", "now\n")
    detector = recorded(notes)
    rewrite_index(detector, lambda entry: entry._replace(content_id=b"\1" * 20),
                  racy_after_ns=OLD_NS - 1)
    assert Detector(notes).status().modified == ["a.md"]


def test_pre_1970_mtime_is_trusted_by_stat(notes: Path) -> None:
    path = write(notes, "old.md", "from the sixties\n")
    os.utime(path, ns=(-5 * 10**9 - 7, -5 * 10**9 - 7))
    Detector(notes).record()
    run = Detector(notes).detect(writable=True)
    report = run.collect()
    assert report.hashed == 0 and report.unchanged == 1
    assert run.record() is False


def test_mode_change_alone_is_not_a_content_change(notes: Path) -> None:
    path = write(notes, "run.md", "x\n")
    recorded(notes)
    path.chmod(0o755)
    report = Detector(notes).status()
    assert report.change_count == 0 and report.hashed == 1


def test_recording_twice_without_changes_does_not_rewrite_index(notes: Path) -> None:
    write(notes, "a.md", "x\n")
    detector = recorded(notes)
    before = detector.index_path.stat()
    run = detector.detect(writable=True)
    list(run)
    assert run.record() is False
    after = detector.index_path.stat()
    assert (before.st_ino, before.st_mtime_ns) == (after.st_ino, after.st_mtime_ns)


def test_status_writes_nothing(notes: Path) -> None:
    write(notes, "a.md", "x\n")
    Detector(notes).status()
    assert not (notes / ".basic-memory").exists()
    recorded(notes)
    write(notes, "b.md", "y\n")
    listing_before = sorted((p.name, p.stat().st_mtime_ns) for p in
                            (notes / ".basic-memory").iterdir())
    Detector(notes).status()
    listing_after = sorted((p.name, p.stat().st_mtime_ns) for p in
                           (notes / ".basic-memory").iterdir())
    assert listing_before == listing_after


def test_changes_stream_typed_records(notes: Path) -> None:
    write(notes, "a.md", "---\npermalink: notes/alpha\n---\n# A\n")
    changes = list(Detector(notes).changes())
    assert len(changes) == 1
    change = changes[0]
    assert change.kind is ChangeKind.ADDED and change.path == "a.md"
    assert change.hash_kind is HashKind.FULL and change.permalink == "notes/alpha"
    expected = subprocess.run(["git", "hash-object", str(notes / "a.md")], capture_output=True,
                              text=True, check=True).stdout.strip()
    assert change.content_id == expected


# -- failures -------------------------------------------------------------------------------


def test_unreadable_directory_keeps_its_entries(notes: Path) -> None:
    write(notes, "open.md", "o\n")
    write(notes, "locked/inside.md", "i\n")
    write(notes, "locked/deeper/more.md", "m\n")
    recorded(notes)
    (notes / "locked").chmod(0o000)
    report = as_unprivileged(lambda: Detector(notes).status())
    assert report.deleted == [] and report.added == []
    assert [(failure.path, failure.error) for failure in report.failed] == [
        ("locked", "permission denied")]

    def record_then_status():
        Detector(notes).record()
        return Detector(notes).status()

    # Recording while the folder is unreadable must not forget its notes either.
    (notes / ".basic-memory").chmod(0o777)
    for child in (notes / ".basic-memory").iterdir():
        child.chmod(0o666)
    as_unprivileged(record_then_status)
    (notes / "locked").chmod(0o755)
    report = Detector(notes).status()
    assert report.change_count == 0 and report.failed == []


def test_unreadable_file_is_a_failure_not_a_deletion(notes: Path) -> None:
    write(notes, "a.md", "a\n")
    recorded(notes)
    path = write(notes, "a.md", "changed\n")
    path.chmod(0o000)
    report = as_unprivileged(lambda: Detector(notes).status())
    assert report.deleted == [] and report.modified == []
    assert [(f.path, f.error) for f in report.failed] == [("a.md", "permission denied")]


def test_new_unreadable_file_is_reported_and_not_added(notes: Path) -> None:
    write(notes, "a.md", "a\n").chmod(0o000)
    report = as_unprivileged(lambda: Detector(notes).status())
    assert report.added == []
    assert [f.path for f in report.failed] == ["a.md"]


def test_unreadable_root_is_reported_as_dot(notes: Path) -> None:
    write(notes, "a.md", "a\n")
    recorded(notes)
    notes.chmod(0o311)  # can be entered, not listed
    try:
        report = as_unprivileged(lambda: Detector(notes).status())
    finally:
        notes.chmod(0o755)
    assert [(f.path, f.error) for f in report.failed] == [(".", "permission denied")]
    assert report.deleted == [] and report.added == []


def test_file_name_not_utf8_is_a_failure_never_added(notes: Path) -> None:
    write(notes, "good.md", "g\n")
    raw = os.path.join(os.fsencode(notes), b"caf\xe9.md")
    with open(raw, "wb") as handle:
        handle.write(b"latin-1 name\n")
    report = Detector(notes).record()
    assert report.added == ["good.md"]
    assert [(f.path, f.error) for f in report.failed] == [
        ("caf\\xe9.md", "file name is not valid UTF-8")]
    assert [entry.path for entry in read_index(Detector(notes).index_path).entries()] == [
        b"good.md"]
    status = run_bm("status", str(notes), "--json")
    assert status.returncode == 0, status.stderr
    status.stdout.encode("utf-8")  # no lone surrogate in the output
    assert json.loads(status.stdout)["failed"] == [
        {"path": "caf\\xe9.md", "error": "file name is not valid UTF-8"}]


def test_recorded_file_name_not_utf8_keeps_its_entry(notes: Path) -> None:
    raw = os.path.join(os.fsencode(notes), b"caf\xe9.md")
    with open(raw, "wb") as handle:
        handle.write(b"latin-1 name\n")
    stat_result = os.lstat(raw)
    detector = Detector(notes)
    entry = IndexEntry(b"caf\xe9.md", 0, stat_result.st_mtime_ns, 0, 0, 0o100644, 0, 0,
                       stat_result.st_size, b"\2" * 20, HashKind.FULL)  # as if recorded
    detector.state_dir.mkdir()
    write_index(detector.index_path, [entry], 1, {})
    report = Detector(notes).record()
    assert report.change_count == 0
    assert [f.path for f in report.failed] == ["caf\\xe9.md"]
    assert [entry.path for entry in read_index(detector.index_path).entries()] == [
        b"caf\xe9.md"]
    os.unlink(raw)  # gone: leaves the index without a deletion nobody could apply
    report = Detector(notes).record()
    assert report.change_count == 0 and report.failed == []
    assert list(read_index(detector.index_path).entries()) == []


@contextmanager
def being_appended(path: Path, chunk: bytes) -> Iterator[None]:
    """A real writer thread appending to `path` for as long as the block runs."""
    stop = threading.Event()

    def keep_appending() -> None:
        with open(path, "ab") as handle:
            while not stop.is_set():
                handle.write(chunk)
                handle.flush()

    writer = threading.Thread(target=keep_appending)
    writer.start()
    try:
        time.sleep(0.05)
        yield
    finally:
        stop.set()
        writer.join()


def test_file_changing_while_hashed_is_not_recorded_clean(notes: Path) -> None:
    path = notes / "growing.bin"
    path.write_bytes(b"\0" * (8 << 20))
    with being_appended(path, b"x" * 4096):
        hashed = hash_file(path, NEVER_PARTIAL)
    assert hashed.stable is False


def test_file_changing_while_recorded_is_smudged(notes: Path) -> None:
    """The index must never vouch for a stat taken while the file was being written."""
    path = notes / "growing.txt"
    path.write_bytes(b"line\n" * (1 << 20))
    with being_appended(path, b"more\n" * 800):
        report = Detector(notes, policy=NEVER_PARTIAL).record()
    assert report.added == ["growing.txt"]
    (entry,) = read_index(Detector(notes).index_path).entries()
    assert entry.ctime_ns == 0  # smudged: no stat can ever match it
    again = Detector(notes, policy=NEVER_PARTIAL).status()
    assert again.hashed == 1 and again.modified == ["growing.txt"]


def test_symlinks_are_not_followed_and_loops_are_harmless(notes: Path) -> None:
    write(notes, "real/a.md", "a\n")
    os.symlink(notes, notes / "real" / "loop")
    os.symlink(notes / "real" / "a.md", notes / "link.md")
    os.symlink("/nonexistent/target", notes / "dangling.md")
    report = Detector(notes).status()
    assert report.added == ["real/a.md"]
    assert report.failed == []


def test_corrupt_index_is_reported_and_rebuilt_without_deletions(notes: Path) -> None:
    write(notes, "a.md", "a\n")
    write(notes, "b.md", "b\n")
    detector = recorded(notes)
    data = bytearray(detector.index_path.read_bytes())
    data[40] ^= 0xFF
    detector.index_path.write_bytes(bytes(data))
    report = Detector(notes).status()
    assert report.deleted == []
    assert report.added == ["a.md", "b.md"]
    assert len(report.warnings) == 1 and "corrupt" in report.warnings[0]
    Detector(notes).record()
    clean = Detector(notes).status()
    assert clean.change_count == 0 and clean.warnings == []


@pytest.mark.parametrize("count_delta", [-1, 1, -4])
def test_index_with_valid_checksum_but_wrong_entry_count(notes: Path, count_delta: int) -> None:
    """A buggy writer, not a torn write: the sha1 is right, the entries are not."""
    for name in ("a.md", "b.md", "c.md", "d.md", "e.md"):
        write(notes, name, f"{name}\n")
    detector = recorded(notes)
    data = bytearray(detector.index_path.read_bytes())
    (count,) = struct.unpack_from(">L", data, 8)
    struct.pack_into(">L", data, 8, count + count_delta)
    detector.index_path.write_bytes(with_sha1_trailer(bytes(data)))
    report = Detector(notes).status()
    assert report.deleted == [] and report.modified == []
    assert report.added == ["a.md", "b.md", "c.md", "d.md", "e.md"]
    assert len(report.warnings) == 1 and "corrupt" in report.warnings[0]
    cli = run_bm("status", str(notes), "--json")
    assert cli.returncode == 0 and "Traceback" not in cli.stderr
    assert len(cli.stderr.strip().splitlines()) == 1
    Detector(notes).record()
    clean = Detector(notes).status()
    assert clean.change_count == 0 and clean.warnings == []


@pytest.mark.parametrize("length", [0, 5, 30])
def test_truncated_index_is_rebuilt(notes: Path, length: int) -> None:
    write(notes, "a.md", "a\n")
    detector = recorded(notes)
    detector.index_path.write_bytes(detector.index_path.read_bytes()[:length])
    report = Detector(notes).status()
    assert report.added == ["a.md"] and report.deleted == []
    assert "corrupt" in report.warnings[0]


# -- hashing policy -------------------------------------------------------------------------


def test_large_files_get_partial_and_stat_only_ids(notes: Path) -> None:
    write(notes, "small.md", "small\n")
    write(notes, "big.bin", os.urandom(300_000))
    write(notes, "huge.bin", os.urandom(600_000))
    policy = HashPolicy(full_hash_max_bytes=100_000, partial_hash_max_bytes=500_000)
    kinds = {change.path: change.hash_kind for change in Detector(notes, policy=policy).changes()}
    assert kinds == {"small.md": HashKind.FULL, "big.bin": HashKind.PARTIAL,
                     "huge.bin": HashKind.NONE}


def test_partial_hash_sees_an_edit_in_a_sampled_block(notes: Path) -> None:
    data = bytearray(os.urandom(1_000_000))
    path = write(notes, "big.bin", bytes(data))
    policy = HashPolicy(full_hash_max_bytes=100_000)
    recorded(notes, policy=policy)
    data[-10] ^= 0xFF  # the last block is always sampled
    path.write_bytes(bytes(data))
    assert Detector(notes, policy=policy).status().modified == ["big.bin"]


def test_changing_thresholds_rehashes_without_losing_track(notes: Path) -> None:
    write(notes, "big.bin", os.urandom(300_000))
    write(notes, "a.md", "a\n")
    recorded(notes, policy=HashPolicy(full_hash_max_bytes=100_000))
    report = Detector(notes).status()  # default policy: 300 KB is now fully hashed
    assert report.modified == ["big.bin"]
    assert report.added == [] and report.deleted == []
    Detector(notes).record()
    changes = list(Detector(notes).changes())
    assert changes == []


def test_moved_large_stat_only_file_keeps_its_id(notes: Path) -> None:
    write(notes, "video.bin", os.urandom(200_000))
    policy = HashPolicy(full_hash_max_bytes=1000, partial_hash_max_bytes=1000)
    recorded(notes, policy=policy)
    (notes / "archive").mkdir()
    os.rename(notes / "video.bin", notes / "archive" / "video.bin")
    report = Detector(notes, policy=policy).status()
    assert report.moved == [("video.bin", "archive/video.bin")]


def test_pool_bounds_are_respected_for_many_changes(notes: Path) -> None:
    for number in range(300):
        write(notes, f"n{number:03}.md", f"note {number}\n")
    policy = HashPolicy(workers=2, files_in_flight=3)
    report = Detector(notes, policy=policy).status()
    assert len(report.added) == 300 and report.hashed == 300


def test_backdate_helper_makes_state_stable(notes: Path) -> None:
    (notes / "a.md").write_text("x\n")
    backdate(notes)
    recorded(notes)
    assert Detector(notes).status().hashed == 0


# -- what the detector hands downstream ------------------------------------------------------


def test_streamed_changes_carry_the_bytes_whose_id_they_name(notes: Path) -> None:
    """A first sync's adds and later modifications carry the markdown bytes read for the hash
    (the parse stage must parse exactly what was hashed); other files, moves and the adds held
    for move pairing do not (memory stays bounded)."""
    write(notes, "a.md", "# A\n")
    write(notes, "big.md", "x" * ((1 << 20) + 1))
    write(notes, "data.txt", "plain\n")
    first = {change.path: change for change in Detector(notes).changes()}
    assert first["a.md"].content == b"# A\n"
    assert blob_id(first["a.md"].content) == first["a.md"].content_id
    assert first["big.md"].content is None and first["data.txt"].content is None
    assert "content" not in first["a.md"].to_json()
    recorded(notes)
    write(notes, "a.md", "# A, edited\n")
    write(notes, "new.md", "# New\n")
    os.rename(notes / "data.txt", notes / "moved.txt")
    later = {change.path: change for change in Detector(notes).changes()}
    assert later["a.md"].kind is ChangeKind.MODIFIED and later["a.md"].content == b"# A, edited\n"
    assert later["new.md"].kind is ChangeKind.ADDED and later["new.md"].content is None
    assert later["moved.txt"].kind is ChangeKind.MOVED and later["moved.txt"].content is None


def test_blob_id_is_git_hash_object(notes: Path) -> None:
    path = write(notes, "a.md", "some words\n")
    expected = subprocess.run(["git", "hash-object", str(path)], capture_output=True,
                              text=True, check=True).stdout.strip()
    assert blob_id(path.read_bytes()) == expected


def test_hashing_knows_nothing_of_markdown_syntax(notes: Path) -> None:
    """The hash stage asks the caller what a note's head says; it never imports the parser."""
    write(notes, "a.md", "---\npermalink: alpha\n---\n")
    code = ("import sys; from bm_sync.hashing import hash_file, HashPolicy; "
            f"hashed = hash_file({str(notes / 'a.md')!r}, HashPolicy()); "
            "assert hashed.permalink is None and hashed.content, hashed; "
            "assert 'bm_sync.markdown' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)
    assert hash_file(notes / "a.md", HashPolicy(), lambda head: "seen").permalink == "seen"
    assert Detector(notes, inspect_head=None).status().added == ["a.md"]


def test_skipped_paths_are_typed_failures(notes: Path) -> None:
    write(notes, "a.md", "a\n")
    write(notes, "b.md", "b\n")
    recorded(notes)
    write(notes, "a.md", "a, edited\n")
    write(notes, "b.md", "b, edited\n")
    (notes / "b.md").chmod(0o000)
    report = as_unprivileged(lambda: Detector(notes).detect(skip={"a.md": "not now"}).collect())
    assert [(f.path, f.error, f.skipped) for f in report.failed] == [
        ("a.md", "not now", True), ("b.md", "permission denied", False)]


def test_a_root_reached_through_a_symlink_is_the_same_root(notes: Path) -> None:
    write(notes, "a.md", "a\n")
    recorded(notes)
    link = notes.parent / (notes.name + "-link")
    os.symlink(notes, link)
    try:
        assert Detector(link).root == Detector(notes).root == Path(os.path.realpath(notes))
        assert Detector(link).index_path == Detector(notes).index_path
        result = run_bm("status", "--json", str(link))
        assert result.returncode == 0 and json.loads(result.stdout)["unchanged"] == 1
    finally:
        link.unlink()


def test_status_works_in_a_read_only_folder(notes: Path) -> None:
    write(notes, "a.md", "a\n")
    write(notes, "b.md", "b\n")
    recorded(notes)
    write(notes, "a.md", "a, edited\n")
    write(notes, "c.md", "c\n")
    os.unlink(notes / "b.md")
    for folder in (notes, notes / ".basic-memory"):
        folder.chmod(0o555)
    try:
        report = as_unprivileged(lambda: Detector(notes).status())
    finally:
        for folder in (notes, notes / ".basic-memory"):
            folder.chmod(0o755)
    assert (report.added, report.modified, report.deleted, report.failed) == (
        ["c.md"], ["a.md"], ["b.md"], [])
