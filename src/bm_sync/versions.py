"""Note versions as git blobs in a hidden object store, `<root>/.basic-memory/objects`.

The index already holds the git blob id of every note, so a version costs no extra hashing:
the sync engine hands over the bytes it read to parse the note, and they are stored under that
id (only when they still hash to it). Identical content is stored once.

Bounded memory and few files: during a sync, new blobs are appended to a spool file; at the
end, one pack is streamed from it (dulwich's `add_pack_data` takes an iterator), so a sync
writes one pack, not thousands of loose objects, whatever the number of notes.
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
        self._spool_path = self.path / f"spool-{os.getpid()}"
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
            self._spool = open(self._spool_path, "wb")  # noqa: SIM115 - closed in flush()
        self._spool.write(_LENGTH.pack(len(data)))
        self._spool.write(data)
        self._staged.add(content_id)
        return True

    def flush(self) -> int:
        """Write what was staged as one pack; return the number of blobs written."""
        if self._spool is None:
            return 0
        self._spool.close()
        self._spool = None
        count = len(self._staged)
        self._staged = set()
        try:
            from dulwich.pack import full_unpacked_object

            records = (full_unpacked_object(blob) for blob in self._spooled_blobs())
            self._objects(create=True).add_pack_data(count, records)
        finally:
            self._spool_path.unlink(missing_ok=True)
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
        store = self._objects()
        if store is None:
            return 0, 0
        before = self.disk_bytes()
        wanted = {content_id.encode() for content_id in keep}
        stored = set()
        for pack in store.packs:
            stored.update(sha for sha in pack)
        store.repack(exclude={sha for sha in stored if sha not in wanted})
        return before, self.disk_bytes()

    def disk_bytes(self) -> int:
        total = 0
        for folder, _dirs, files in os.walk(self.path):
            total += sum(os.path.getsize(os.path.join(folder, name)) for name in files)
        return total

    def close(self) -> None:
        if self._spool is not None:
            self._spool.close()
            self._spool = None
            self._spool_path.unlink(missing_ok=True)
        if self._store is not None:
            self._store.close()
            self._store = None
