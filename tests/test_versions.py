"""`VersionStore` directly: blobs in, blobs out, and what it does with a damaged store."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from bm_sync.hashing import blob_id
from bm_sync.versions import VersionStore, _index_problem


def store_with(state_dir: Path, *contents: bytes) -> VersionStore:
    """A store holding `contents`, written as one pack (what one sync does)."""
    store = VersionStore(state_dir)
    for content in contents:
        store.stage(blob_id(content), content)
    store.flush()
    return store


def dead_pid() -> int:
    ended = subprocess.Popen(["true"])
    ended.wait()
    return ended.pid


def test_blobs_round_trip_and_identical_content_is_stored_once(tmp_path: Path) -> None:
    store = VersionStore(tmp_path)
    assert store.read(blob_id(b"a")) is None and not store.has(blob_id(b"a"))
    assert store.stage(blob_id(b"a"), b"a") is True
    assert store.stage(blob_id(b"a"), b"a") is False  # staged already
    assert store.flush() == 1
    assert store.stage(blob_id(b"a"), b"a") is False  # stored already
    assert store.stage(blob_id(b"b"), b"b") is True
    assert store.flush() == 1
    assert store.pack_count() == 2
    assert (store.read(blob_id(b"a")), store.read(blob_id(b"b"))) == (b"a", b"b")
    store.close()


def test_prune_keeps_only_what_it_is_told(tmp_path: Path) -> None:
    store = store_with(tmp_path, b"old", b"new")
    store.prune([blob_id(b"new")])
    assert store.read(blob_id(b"new")) == b"new" and store.read(blob_id(b"old")) is None
    assert store.pack_count() == 1
    store.close()


def _truncate(index: Path) -> None:
    index.write_bytes(index.read_bytes()[:100])


def _garbage(index: Path) -> None:
    index.write_bytes(os.urandom(index.stat().st_size))


def _empty(index: Path) -> None:
    index.write_bytes(b"")


def _cut_entries(index: Path) -> None:
    """Right header, entries missing: what a write cut short by a full disk leaves."""
    index.write_bytes(index.read_bytes()[:-41])


def _version_1(index: Path) -> None:
    data = index.read_bytes()
    index.write_bytes(data[:4] + b"\x00\x00\x00\x01" + data[8:])


@pytest.mark.parametrize(("damage", "problem"), [
    (_truncate, "truncated"),
    (_garbage, "not a version 2 pack index"),
    (_empty, "truncated"),
    (_cut_entries, "truncated"),
    (_version_1, "not a version 2 pack index"),
])
def test_a_damaged_index_is_skipped_by_readers_and_rebuilt_by_writers(
        tmp_path: Path, damage: Callable[[Path], None], problem: str) -> None:
    store_with(tmp_path, b"first").close()
    (index,) = (tmp_path / "objects/pack").glob("*.idx")
    assert _index_problem(index) is None
    damage(index)
    assert _index_problem(index) == problem

    reader = VersionStore(tmp_path)
    assert reader.read(blob_id(b"first")) is None  # not stored, as far as a reader can tell
    (warning,) = reader.take_warnings()
    assert index.name in warning and problem in warning
    reader.close()

    writer = store_with(tmp_path, b"second")  # a sync's flush repairs the store
    (warning,) = writer.take_warnings()
    assert "rebuilt" in warning and _index_problem(index) is None
    assert writer.read(blob_id(b"first")) == b"first"
    assert writer.take_warnings() == []  # said once
    writer.close()


def test_an_unreadable_pack_is_set_aside_and_not_reported_again(tmp_path: Path) -> None:
    store_with(tmp_path, b"first").close()
    (pack,) = (tmp_path / "objects/pack").glob("*.pack")
    pack.write_bytes(b"not a pack")
    _truncate(pack.with_suffix(".idx"))
    store = store_with(tmp_path, b"second")
    (warning,) = store.take_warnings()
    assert "lost" in warning
    assert pack.exists() and pack.with_suffix(".idx.damaged").exists()
    store.stage(blob_id(b"third"), b"third")
    store.flush()
    assert store.take_warnings() == []
    assert store.read(blob_id(b"second")) == b"second"
    store.close()


@pytest.mark.parametrize("writer", ["flush", "prune"])
def test_writers_delete_what_killed_writers_left(tmp_path: Path, writer: str) -> None:
    store = store_with(tmp_path, b"first")
    pack_dir = tmp_path / "objects/pack"
    dead, alive = dead_pid(), os.getppid()
    leftovers = [pack_dir / f"tmp_pack_{dead}", pack_dir / f"tmp_idx_{dead}",
                 tmp_path / "objects" / f"spool-{dead}"]
    someone_elses = [pack_dir / f"tmp_pack_{alive}", tmp_path / "objects" / f"spool-{alive}"]
    for path in leftovers + someone_elses:
        path.write_bytes(b"x" * 100)
    if writer == "flush":
        store.stage(blob_id(b"second"), b"second")
        store.flush()
    else:
        store.prune([blob_id(b"first")])
    assert [path for path in leftovers if path.exists()] == []
    assert all(path.exists() for path in someone_elses)  # a live process may still write them
    assert store.read(blob_id(b"first")) == b"first"
    store.close()
