"""The recording of a detection run: what its pass decided, turned into the next index.

The pass (`detector.DetectionRun`) only tells an `IndexRecording` what it saw: an entry found
anew (`add`), a recorded entry re-verified or changed (`update`), one gone (`remove`), one it
could not examine (`keep`, smudged), a placeholder the sync engine vouches for
(`add_placeholder`). `write` merges that with the recorded snapshot into the new index in one
streaming pass (entries the run never looked at are carried over as they are), with the
metadata the next run needs, and commits the sketches of the recorded content.

Held until the write: one packed row per new or updated entry (about 100 bytes), and the paths
removed. A run that records nothing costs nothing here.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Mapping
from pathlib import Path

from bm_sync.changes import HashKind
from bm_sync.compare import RACY_SLACK_NS
from bm_sync.gitdir import ensure_git_dir
from bm_sync.hashing import HashPolicy
from bm_sync.index_format import IndexEntry, IndexSnapshot, splice_index, write_index
from bm_sync.lock import FolderLock
from bm_sync.sketch import SketchStore

INDEX_FORMAT = 1


def smudged(entry: IndexEntry) -> IndexEntry:
    """An entry whose stat can never match (ctime 0), so the next run hashes the file again."""
    return entry._replace(ctime_ns=0)


class IndexRecording:
    """The changes one run makes to the recorded index, applied by `write`."""

    def __init__(self, snapshot: IndexSnapshot, *, writable: bool) -> None:
        self.snapshot = snapshot
        self.writable = writable
        # Whether writing would change the index (a change, or refreshed stat data).
        self.changed = False
        self._entries = _EntryTable()
        self._removed: set[bytes] = set()
        self._new_paths: list[bytes] = []
        self._placeholders: dict[bytes, IndexEntry] = {}

    def reset(self, snapshot: IndexSnapshot) -> None:
        """Forget everything: the pass starts over against `snapshot` (a corrupt index)."""
        self.snapshot = snapshot
        self._entries.clear()
        self._removed.clear()
        self._new_paths.clear()

    def add(self, entry: IndexEntry) -> None:
        """A path the recorded index does not hold."""
        self.changed = True
        if self.writable:
            self._entries[entry.path] = entry
            self._new_paths.append(entry.path)

    def update(self, entry: IndexEntry) -> None:
        """New stat data or content for a recorded path."""
        self.changed = True
        if self.writable:
            self._entries[entry.path] = entry

    def remove(self, path: bytes) -> None:
        """A recorded path that leaves the index (deleted, or moved away)."""
        self.changed = True
        self._removed.add(path)

    def keep(self, entry: IndexEntry) -> None:
        """A recorded entry that could not be examined: kept, smudged, so the next run
        re-checks it (without counting as a change)."""
        if self.writable:
            self._entries[entry.path] = smudged(entry)

    def add_placeholder(self, entry: IndexEntry) -> None:
        """A path the caller knows of that this run could not examine (see
        `DetectionRun.keep_unexamined`); written smudged, whatever `exclude` says."""
        if self.writable:
            self._placeholders[entry.path] = smudged(entry)
            self.changed = True

    def write(self, index_path: Path, lock: FolderLock, sketches: SketchStore, *,
              policy: HashPolicy, scan_start_ns: int, exclude: set[bytes],
              meta: Mapping[str, object] | None) -> bool:
        """Write the new index; return whether it was written.

        `exclude` names paths whose changes were *not* applied (the sync engine failed on
        them): they keep their previous entry, smudged, so the next run offers them again.
        Nothing is written when nothing changed and `meta` adds nothing new.
        """
        old_meta = dict(self.snapshot.meta)
        new_meta = {**old_meta, **(meta or {})}
        if not self.changed and not exclude and new_meta == old_meta:
            if index_path.exists():  # an index written before git could read it
                ensure_git_dir(index_path.parent)
            return False
        for path in exclude:
            self._entries.pop(path)
            self._removed.discard(path)
        new_paths = [path for path in self._new_paths if path not in exclude]
        for path, entry in self._placeholders.items():
            self._entries[path] = entry
            new_paths.append(path)
        new_paths.sort()
        new_meta.update(
            format=INDEX_FORMAT,
            racy_after_ns=scan_start_ns - RACY_SLACK_NS,
            full_hash_max_bytes=policy.full_hash_max_bytes,
            partial_hash_max_bytes=policy.partial_hash_max_bytes,
        )
        merged = _MergedEntries(self.snapshot, self._entries, self._removed, new_paths,
                                exclude)
        with lock.hold():
            # Most writes change a few entries of a large index (a watcher writes one per
            # batch): copy the rest of the old file's bytes rather than repack every entry.
            spliced = splice_index(
                index_path, self.snapshot, touched=merged.touched(), rewrite=merged.rewritten,
                added=map(self._entries.__getitem__, new_paths), entry_count=merged.count,
                meta=new_meta)
            if not spliced:
                write_index(index_path, merged, merged.count, new_meta, merged.non_full())
            sketches.commit((entry.content_id for entry in merged), merged.count)
        ensure_git_dir(index_path.parent)
        return True


class _EntryTable:
    """path -> `IndexEntry` of everything a run will write, packed.

    A first sync of 100k notes holds an entry per file until the index is written at the end;
    as named tuples (eleven fields, two big ints, two bytes objects) that is about 400 bytes
    each, packed about 100: some 30 MB less at the peak. Entries whose content id is not a
    20-byte digest (none today) are kept as they are.
    """

    __slots__ = ("_rows",)

    def __init__(self) -> None:
        self._rows: dict[bytes, bytes | IndexEntry] = {}

    def __setitem__(self, path: bytes, entry: IndexEntry) -> None:
        if len(entry.content_id) != 20:
            self._rows[path] = entry
            return
        self._rows[path] = _PACKED.pack(
            entry.ctime_ns, entry.mtime_ns, entry.dev, entry.ino, entry.mode, entry.uid,
            entry.gid, entry.size, entry.content_id, _KIND_NUMBER[entry.hash_kind])

    def __getitem__(self, path: bytes) -> IndexEntry:
        return _unpacked(path, self._rows[path])

    def get(self, path: bytes, default: IndexEntry) -> IndexEntry:
        row = self._rows.get(path)
        return default if row is None else _unpacked(path, row)

    def pop(self, path: bytes) -> None:
        self._rows.pop(path, None)

    def paths(self) -> Iterator[bytes]:
        return iter(self._rows)

    def clear(self) -> None:
        self._rows.clear()


_PACKED = struct.Struct("<qqqqQQQq20sB")
_KINDS = tuple(HashKind)
_KIND_NUMBER = {kind: number for number, kind in enumerate(_KINDS)}


def _unpacked(path: bytes, row: bytes | IndexEntry) -> IndexEntry:
    if isinstance(row, IndexEntry):
        return row
    (ctime_ns, mtime_ns, dev, ino, mode, uid, gid, size, content_id,
     kind) = _PACKED.unpack(row)
    return IndexEntry(path, ctime_ns, mtime_ns, dev, ino, mode, uid, gid, size, content_id,
                      _KINDS[kind])


class _MergedEntries:
    """The new index: the old entries, minus removed, with updates, plus new paths, in order.

    Re-iterable and sized, because dulwich's writer takes `len()` and walks it twice. The
    splice writer takes its parts instead (`touched`, `rewritten`, the new paths).
    """

    def __init__(self, snapshot: IndexSnapshot, updates: _EntryTable,
                 removed: set[bytes], new_paths: list[bytes], excluded: set[bytes]) -> None:
        self.snapshot = snapshot
        self.updates = updates
        self.removed = removed
        self.new_paths = new_paths
        self.excluded = excluded
        self.count = snapshot.entry_count - len(removed) + len(new_paths)

    def __iter__(self) -> Iterator[IndexEntry]:
        updates, rewritten = self.updates, self.rewritten
        new_paths = iter(self.new_paths)
        next_new = next(new_paths, None)
        for old in self.snapshot.entries():
            while next_new is not None and next_new < old.path:
                yield updates[next_new]
                next_new = next(new_paths, None)
            entry = rewritten(old)
            if entry is not None:
                yield entry
        while next_new is not None:
            yield updates[next_new]
            next_new = next(new_paths, None)

    def rewritten(self, old: IndexEntry) -> IndexEntry | None:
        """What becomes of a recorded entry: dropped, kept smudged, updated or carried."""
        if old.path in self.removed:
            return None
        if old.path in self.excluded:
            return smudged(old)
        return self.updates.get(old.path, old)

    def touched(self) -> set[bytes]:
        """The recorded paths `rewritten` may change (and new paths, which it never sees)."""
        return {*self.updates.paths(), *self.removed, *self.excluded}

    def non_full(self) -> Iterator[IndexEntry]:
        return (entry for entry in self if entry.hash_kind is not HashKind.FULL)

