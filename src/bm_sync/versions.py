"""Note versions as git blobs in a hidden object store, `<root>/.basic-memory/objects`.

The index already holds the git blob id of every note, so a version costs no extra hashing:
the sync engine hands over the bytes it read to parse the note, and they are stored under that
id (only when they still hash to it). Identical content is stored once.

Bounded memory and few files: during a sync, new blobs are appended to a spool file; at the
end, one pack and its index are streamed from it in one pass (`_write_pack`), so a sync writes
one pack, not thousands of loose objects, whatever the number of notes.

Packs are merged as they accumulate: every lookup probes every pack and every open pack holds
file descriptors, so after a few hundred syncs an unmerged store made `bm sync` fail with "Too
many open files". Past `MAX_PACKS`, the flush rewrites the whole store as one pack (like `git gc
--auto`), streamed object by object: dulwich's own `repack` holds every object in memory.
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

OBJECTS_DIR = "objects"
MAX_PACKS = 16  # more than this after a sync: merge them all into one
_SPOOL_PREFIX = "spool-"
_LENGTH = struct.Struct(">Q")


@dataclass(frozen=True)
class VersionPolicy:
    """Which files get their versions stored: markdown up to 1 MiB by default."""

    enabled: bool = True
    max_bytes: int = 1 << 20
    suffixes: tuple[str, ...] = (".md", ".markdown")

    def wants(self, path: str, size: int | None) -> bool:
        return (self.enabled and size is not None and size <= self.max_bytes
                and path.lower().endswith(self.suffixes))


def blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class VersionStore:
    """A dulwich object store of note contents, keyed by git blob id."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / OBJECTS_DIR
        self._store: Any = None
        self._spool_path = self.path / f"{_SPOOL_PREFIX}{os.getpid()}"
        self._spool: Any = None
        self._staged: set[str] = set()

    def _objects(self, *, create: bool = False) -> Any:
        if self._store is None:
            from dulwich.object_store import DiskObjectStore

            if (self.path / "pack").is_dir():
                self._store = DiskObjectStore(str(self.path))
            elif create:
                self._store = DiskObjectStore.init(str(self.path))
        return self._store

    def has(self, content_id: str) -> bool:
        store = self._objects()
        return store is not None and content_id.encode() in store

    def stage(self, content_id: str, data: bytes) -> bool:
        """Queue `data` for the sync's pack, unless stored already; True if queued."""
        if content_id in self._staged or self.has(content_id):
            return False
        if self._spool is None:
            self._objects(create=True)
            self._remove_stale_spools()
            self._spool = open(self._spool_path, "wb")  # noqa: SIM115 - closed in flush()
        self._spool.write(_LENGTH.pack(len(data)))
        self._spool.write(data)
        self._staged.add(content_id)
        return True

    def flush(self) -> int:
        """Write what was staged as one pack, merge the packs when there are more than
        `MAX_PACKS`, and close the store (a long-lived engine keeps no pack open between
        syncs); return the number of blobs written."""
        self._remove_stale_spools()
        if self._spool is None:
            self._close_store()
            return 0
        self._spool.close()
        self._spool = None
        count = len(self._staged)
        self._staged = set()
        try:
            from dulwich.pack import full_unpacked_object

            records = (full_unpacked_object(blob) for blob in self._spooled_blobs())
            _write_pack(self._objects(create=True), count, records)
        finally:
            self._spool_path.unlink(missing_ok=True)
        try:
            if self.pack_count() > MAX_PACKS:
                self._rewrite()
        finally:
            self._close_store()
        return count

    def _spooled_blobs(self) -> Iterator[Any]:
        from dulwich.objects import Blob

        with open(self._spool_path, "rb") as spool:
            while header := spool.read(_LENGTH.size):
                (length,) = _LENGTH.unpack(header)
                yield Blob.from_string(spool.read(length))

    def read(self, content_id: str) -> bytes | None:
        """The stored content of a version, or None when it was not stored."""
        store = self._objects()
        if store is None or content_id.encode() not in store:
            return None
        return store[content_id.encode()].as_raw_string()

    def prune(self, keep: Iterable[str]) -> tuple[int, int]:
        """Rewrite the store with only the `keep` blobs; return (bytes before, bytes after)."""
        if self._objects() is None:
            return 0, 0
        self._remove_stale_spools()
        before = self.disk_bytes()
        try:
            self._rewrite({content_id.encode() for content_id in keep})
        finally:
            self._close_store()
        return before, self.disk_bytes()

    def pack_count(self) -> int:
        folder = self.path / "pack"
        return len(list(folder.glob("*.pack"))) if folder.is_dir() else 0

    def _rewrite(self, keep: set[bytes] | None = None) -> None:
        """Replace every pack by one holding the stored blobs (those in `keep`, if given).

        Streamed: only the set of ids is in memory, blobs go one at a time from the old packs to
        the new one. The new pack is complete (its index written) before an old one is deleted,
        so a crash leaves duplicates at worst, never a lost version.
        """
        from dulwich.pack import full_unpacked_object

        store = self._objects()
        old = list(store.packs)
        old_names = ["pack-" + pack.name().decode("ascii") for pack in old]
        wanted: set[bytes] = set()
        for pack in old:
            wanted.update(sha for sha in pack if keep is None or sha in keep)

        def records() -> Iterator[Any]:
            written: set[bytes] = set()
            for pack in old:
                for blob in pack.iterobjects():
                    if blob.id in wanted and blob.id not in written:
                        written.add(blob.id)
                        yield full_unpacked_object(blob)

        new_name = _write_pack(store, len(wanted), records()) if wanted else None
        self._close_store()
        for name in old_names:
            if name != new_name:  # the same blobs give the same name: that pack stays
                for suffix in (".pack", ".idx", ".rev", ".bitmap"):
                    (self.path / "pack" / (name + suffix)).unlink(missing_ok=True)

    def _remove_stale_spools(self) -> None:
        """Delete spool files left by a killed sync (their process is gone). Called under the
        folder's sync lock, by the one process that may write the store."""
        if not self.path.is_dir():
            return
        for spool in self.path.glob(f"{_SPOOL_PREFIX}*"):
            pid = spool.name[len(_SPOOL_PREFIX):]
            if spool != self._spool_path and pid.isdigit() and not _alive(int(pid)):
                spool.unlink(missing_ok=True)

    def disk_bytes(self) -> int:
        total = 0
        for folder, _dirs, files in os.walk(self.path):
            total += sum(os.path.getsize(os.path.join(folder, name)) for name in files)
        return total

    def _close_store(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    def close(self) -> None:
        if self._spool is not None:
            self._spool.close()
            self._spool = None
            self._spool_path.unlink(missing_ok=True)
        self._staged = set()
        self._close_store()


def _write_pack(store: Any, count: int, records: Iterator[Any]) -> str:
    """Stream `count` objects into a new pack and write its index in the same pass; return the
    pack's name (`pack-<id>`).

    dulwich's `add_pack_data` writes the pack, then reads it all back to build the index: for a
    first sync of 100k notes that doubled the time of storing versions and peaked at the
    pack's size in memory. `write_pack_data` already returns each object's offset and CRC,
    which is all a version 2 index needs. Both files are written under temporary names and
    renamed into place, the index last (readers find packs by their index), so a crash leaves
    no half pack behind a valid name.
    """
    from dulwich.pack import iter_sha1, write_pack_data, write_pack_index

    pack_dir = Path(store.pack_dir)
    temporary = pack_dir / f"tmp_pack_{os.getpid()}"
    temporary_index = pack_dir / f"tmp_idx_{os.getpid()}"
    try:
        with open(temporary, "wb") as pack:
            entries, checksum = write_pack_data(
                pack.write, records, num_records=count,
                compression_level=store.pack_compression_level,
                object_format=store.object_format)
            pack.flush()
            os.fsync(pack.fileno())
        ordered = sorted((sha, offset, crc) for sha, (offset, crc) in entries.items())
        name = "pack-" + iter_sha1(sha for sha, _offset, _crc in ordered).decode("ascii")
        with open(temporary_index, "wb") as index:
            write_pack_index(index, ordered, checksum)
            index.flush()
            os.fsync(index.fileno())
        os.replace(temporary, pack_dir / f"{name}.pack")
        os.replace(temporary_index, pack_dir / f"{name}.idx")
    finally:
        temporary.unlink(missing_ok=True)
        temporary_index.unlink(missing_ok=True)
    return name


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True
