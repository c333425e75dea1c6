"""What changed in this folder since the last recorded state?

`Detector(root).detect()` returns a `DetectionRun`: iterate it to receive `Change` and
`Failure` records as a stream, then (for a recording run) call `record()` to write the new state
into the index. The stages are separate modules; this one only wires them:

    index_format.read_index ─┐
                             ├─ sorted merge ─ compare.stat_matches ─┬─ unchanged (never opened)
    scan.walk ───────────────┘                                       └─ hashing pool (bounded)
                                                                          │
                   renames.pair_moves  <─ deleted + added (held until the walk ends)
                                                                          │
                                       MODIFIED streams out as soon as its hash is known

Memory: the index buffer, the files in flight in the pool, and the added/deleted candidates
(a move can only be paired once every deletion is known). Unchanged files cost nothing.
"""

from __future__ import annotations

import os
import struct
import time
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

from bm_sync.changes import Change, ChangeKind, Failure, HashKind
from bm_sync.compare import (
    RACY_SLACK_NS,
    git_mode,
    index_time_ns,
    is_racy,
    racy_threshold,
    stat_matches,
)
from bm_sync.errors import BmSyncError, IndexCorrupt, NotAFolder
from bm_sync.hashing import HashedFile, HashPolicy, hash_file, is_sketched
from bm_sync.ignore import IgnoreRules
from bm_sync.index_format import (
    MAX_PATH_BYTES,
    IndexEntry,
    IndexSnapshot,
    read_index,
    write_index,
)
from bm_sync.lock import FolderLock
from bm_sync.renames import MoveCandidate, pair_moves
from bm_sync.scan import EventKind, describe_os_error, walk
from bm_sync.sketch import SketchStore, compute_sketch

STATE_DIR = ".basic-memory"
INDEX_FILE = "index"
SKETCH_FILE = "sketches.db"
INDEX_FORMAT = 1
_U32 = 0xFFFFFFFF

Record = Change | Failure


@dataclass
class StatusReport:
    """Everything one run found, collected (what `bm status` prints)."""

    added: list[str] = field(default_factory=list)
    modified: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    moved: list[tuple[str, str]] = field(default_factory=list)
    failed: list[Failure] = field(default_factory=list)
    unchanged: int = 0
    hashed: int = 0
    warnings: list[str] = field(default_factory=list)

    @property
    def change_count(self) -> int:
        return len(self.added) + len(self.modified) + len(self.deleted) + len(self.moved)

    def add(self, record: Record) -> None:
        if isinstance(record, Failure):
            self.failed.append(record)
        elif record.kind is ChangeKind.MOVED:
            self.moved.append((record.old_path or "", record.path))
        else:
            getattr(self, record.kind.value).append(record.path)

    def sort(self) -> None:
        """Path order, whatever order the records streamed in (hashing runs in parallel)."""
        self.added.sort()
        self.modified.sort()
        self.deleted.sort()
        self.moved.sort(key=lambda pair: pair[1])
        self.failed.sort(key=lambda failure: failure.path)

    def to_json(self) -> dict[str, object]:
        """The documented JSON shape of `bm status --json`."""
        return {
            "added": self.added,
            "modified": self.modified,
            "deleted": self.deleted,
            "moved": [{"from": old, "to": new} for old, new in self.moved],
            "failed": [{"path": failure.path, "error": failure.error} for failure in self.failed],
            "unchanged": self.unchanged,
        }


class Detector:
    """The change detector of one folder.

    `policy` sets the hashing thresholds and parallelism; `include_hidden` also tracks names
    starting with a dot. A detector is cheap to create; each `detect()` is one pass.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        policy: HashPolicy | None = None,
        include_hidden: bool = False,
    ) -> None:
        self.root = Path(os.path.abspath(root))
        if not self.root.is_dir():
            raise NotAFolder(f"not a folder: {root}")
        self.policy = policy or HashPolicy()
        self.include_hidden = include_hidden
        self.state_dir = self.root / STATE_DIR
        self.index_path = self.state_dir / INDEX_FILE
        self.lock = FolderLock(self.state_dir)

    def load_snapshot(self) -> IndexSnapshot:
        """Read the recorded index (raises `IndexCorrupt`); `detect(snapshot=...)` reuses it."""
        return read_index(self.index_path)

    def detect(self, *, writable: bool = False, rebuild: bool = False,
               snapshot: IndexSnapshot | None = None,
               skip: Mapping[str, str] | None = None) -> DetectionRun:
        """Start a run. Only a `writable` run can `record()`; `bm status` uses a read-only one,
        which writes nothing at all (not the index, not the sketch cache).

        `rebuild` ignores the recorded index: every file is reported added, none deleted (the
        sync engine uses it when its database and the index disagree). `skip` maps paths not to
        open this run (the sync engine's circuit breaker) to the reason reported for them.
        """
        return DetectionRun(self, writable=writable, rebuild=rebuild, snapshot=snapshot,
                            skip=skip)

    def changes(self) -> Iterator[Change]:
        """Stream the changes a sync would apply (read-only; failures are left out)."""
        for record in self.detect():
            if isinstance(record, Change):
                yield record

    def status(self) -> StatusReport:
        """Collect one read-only run into a report."""
        return self.detect().collect()

    def record(self) -> StatusReport:
        """Detect and write the current state into the index; return what was found.

        This is what the sync engine does after its database commit; on its own it makes
        "now" the baseline of the next `status`.
        """
        with self.lock.hold():
            run = self.detect(writable=True)
            report = run.collect()
            run.record()
        return report

    def index_meta(self) -> dict[str, object]:
        """The metadata recorded in the index (empty when there is no readable index)."""
        try:
            return dict(read_index(self.index_path).meta)
        except IndexCorrupt:
            return {}


class DetectionRun:
    """One pass over the folder. Iterate it once; counters are final when it is exhausted."""

    def __init__(self, detector: Detector, *, writable: bool, rebuild: bool = False,
                 snapshot: IndexSnapshot | None = None,
                 skip: Mapping[str, str] | None = None) -> None:
        self.detector = detector
        self._skip = {os.fsencode(path): reason for path, reason in (skip or {}).items()}
        self.writable = writable
        self.rebuild = rebuild
        self._given_snapshot = snapshot
        self.unchanged = 0
        self.hashed = 0
        self.warnings: list[str] = []
        self.index_rebuilt = False
        # Folders this run could not examine (unreadable, or their ignore file is): nothing
        # below them may be concluded gone. "" is the whole tree.
        self.unexamined_prefixes: tuple[str, ...] = ()
        self.finished = False
        self._started = False
        self._scan_start_ns = 0
        self._snapshot = IndexSnapshot.empty()
        self._sketches = SketchStore(detector.state_dir / SKETCH_FILE, writable=writable)
        # What record() writes: new entries by path, removed paths, added paths.
        self._updates = _EntryTable()
        self._removed: set[bytes] = set()
        self._new_paths: list[bytes] = []
        self._placeholders: dict[bytes, IndexEntry] = {}
        self._changed = False
        self._deleted: list[IndexEntry] = []
        self._added: list[tuple[MoveCandidate, IndexEntry]] = []

    # -- the pass ---------------------------------------------------------------------------

    def __iter__(self) -> Iterator[Record]:
        if self._started:
            raise BmSyncError("a detection run can be iterated only once")
        self._started = True
        self._scan_start_ns = time.time_ns()
        self._snapshot = self._load_snapshot()
        rules = IgnoreRules(self.detector.root, include_hidden=self.detector.include_hidden)
        try:
            yield from self._merge(rules)
        except IndexCorrupt as error:
            # Found while walking the entries (see `IndexSnapshot.records`): start over from an
            # empty baseline, as for an index corrupt at load. Deletions are only emitted after
            # the merge, so none has escaped; a few records may already have streamed out
            # (failures, modified files) and come again, as added.
            self._forget_snapshot(error)
            rules = IgnoreRules(self.detector.root, include_hidden=self.detector.include_hidden)
            yield from self._merge(rules)
        for path, reason in rules.errors:
            yield Failure(path, f"cannot read ignore file: {reason}")
        yield from self._pair_and_emit()
        self.finished = True

    def collect(self) -> StatusReport:
        """Drain the run into a `StatusReport`."""
        report = StatusReport()
        for record in self:
            report.add(record)
        report.unchanged = self.unchanged
        report.hashed = self.hashed
        report.warnings = list(self.warnings)
        report.sort()
        return report

    def _load_snapshot(self) -> IndexSnapshot:
        if self.rebuild:
            self.index_rebuilt = True
            return IndexSnapshot.empty()
        if self._given_snapshot is not None:
            return self._given_snapshot
        try:
            return read_index(self.detector.index_path)
        except IndexCorrupt as error:
            self._warn_corrupt(error)
            return IndexSnapshot.empty()

    def _warn_corrupt(self, error: IndexCorrupt) -> None:
        self.warnings.append(f"index {self.detector.index_path} is corrupt ({error}); "
                             "rebuilding it by a full scan")
        self.index_rebuilt = True

    def _forget_snapshot(self, error: IndexCorrupt) -> None:
        """Drop everything the merge derived from a snapshot that turned out corrupt."""
        self._warn_corrupt(error)
        self._snapshot = IndexSnapshot.empty()
        self._updates.clear()
        self._removed.clear()
        self._new_paths.clear()
        self._deleted = []
        self._added = []
        self.unchanged = self.hashed = 0

    def _merge(self, rules: IgnoreRules) -> Iterator[Record]:
        """Merge the sorted index with the sorted walk; hash what the stat cannot vouch for.

        This loop runs once per file of the tree, so it works on raw index records and plain
        scan tuples, and builds an `IndexEntry` only for paths that need attention.
        """
        detector = self.detector
        policy = detector.policy
        snapshot = self._snapshot
        threshold = racy_threshold(snapshot.file_mtime_ns, snapshot.meta.get("racy_after_ns"))
        root = os.fsencode(detector.root)
        records = snapshot.records()
        current = next(records, None)
        to_entry = snapshot.entry
        kinds = snapshot.kinds
        full_max = policy.full_hash_max_bytes
        # Prefixes whose recorded entries are kept (folders we could not examine).
        failed_prefixes: tuple[bytes, ...] = ()
        pending: dict[Future[HashedFile], tuple[bytes, IndexEntry | None]] = {}
        pool: ThreadPoolExecutor | None = None
        limit = policy.max_in_flight
        unchanged = 0
        FILE, FAILED_DIR, FAILED_RULES = (EventKind.FILE, EventKind.FAILED_DIR,
                                          EventKind.FAILED_RULES)
        try:
            for kind, path, stat_result, error in walk(root, rules):
                while current is not None and current[0] < path:
                    self._vanished(to_entry(*current), failed_prefixes)
                    current = next(records, None)
                if current is not None and current[0] == path:
                    recorded_path, record = current
                    current = next(records, None)
                    if (kind is FILE and stat_matches(record, stat_result)
                            and not is_racy(record, threshold)
                            and (stat_result.st_size <= full_max and not kinds
                                 or policy.kind_for(stat_result.st_size)
                                 is to_entry(recorded_path, record).hash_kind)):
                        unchanged += 1
                        continue
                    old: IndexEntry | None = to_entry(recorded_path, record)
                else:
                    old = None
                if kind is FAILED_DIR or kind is FAILED_RULES:
                    failed_prefixes = _add_prefix(failed_prefixes, path)
                    if kind is FAILED_DIR:  # FAILED_RULES: reported by `rules.errors`
                        yield Failure(_display(path.rstrip(b"/")) or ".", error or "unreadable")
                    continue
                if kind is not FILE:
                    if kind is EventKind.FAILED_ENTRY:  # a file or a folder: keep both
                        failed_prefixes = _add_prefix(failed_prefixes, path + b"/")
                    if old is not None:
                        self._keep(old)
                    yield Failure(_display(path), error or "unreadable")
                    continue
                if not _is_utf8(path):
                    # Text everywhere downstream (JSON, the database): never hashed nor added.
                    if old is not None:
                        self._keep(old)
                    yield Failure(_display(path), "file name is not valid UTF-8")
                    continue
                if len(path) > MAX_PATH_BYTES:
                    yield Failure(_display(path), "path too long for the index")
                    continue
                if path in self._skip:
                    if old is not None:
                        self._keep(old)
                    yield Failure(_display(path), self._skip[path])
                    continue
                if pool is None:
                    pool = ThreadPoolExecutor(policy.workers, thread_name_prefix="bm-hash")
                future = pool.submit(hash_file, os.path.join(root, path), policy)
                pending[future] = (path, old)
                if len(pending) >= limit:
                    done, _ = wait(pending, return_when=FIRST_COMPLETED)
                    for finished in done:
                        yield from self._collect_hash(finished, *pending.pop(finished))
            while current is not None:
                self._vanished(to_entry(*current), failed_prefixes)
                current = next(records, None)
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for finished in done:
                    yield from self._collect_hash(finished, *pending.pop(finished))
        finally:
            self.unchanged += unchanged
            self.unexamined_prefixes = tuple(os.fsdecode(prefix) for prefix in failed_prefixes)
            if pool is not None:
                for future in pending:
                    future.cancel()
                pool.shutdown(wait=True)

    def _vanished(self, entry: IndexEntry, failed_prefixes: tuple[bytes, ...]) -> None:
        """A recorded path the walk did not yield: deleted, unless its folder was unreadable.

        A recorded name that is not UTF-8 was never reported (see `_merge`), so it leaves the
        index without a deletion no consumer could apply.
        """
        if failed_prefixes and entry.path.startswith(failed_prefixes):
            self._keep(entry)
        elif not _is_utf8(entry.path):
            self._removed.add(entry.path)
            self._changed = True
        else:
            self._deleted.append(entry)

    def _collect_hash(
        self, future: Future[HashedFile], path: bytes, old: IndexEntry | None
    ) -> Iterator[Record]:
        try:
            hashed = future.result()
        except Exception as error:  # one file's problem never aborts the run
            if old is not None:
                self._keep(old)
            reason = (describe_os_error(error) if isinstance(error, OSError)
                      else f"cannot hash: {type(error).__name__}: {error}")
            yield Failure(_display(path), reason)
            return
        self.hashed += 1
        stat_result = hashed.stat_result
        entry = IndexEntry(
            path, stat_result.st_ctime_ns, stat_result.st_mtime_ns, stat_result.st_dev & _U32,
            stat_result.st_ino & _U32, git_mode(stat_result.st_mode), stat_result.st_uid,
            stat_result.st_gid, stat_result.st_size, hashed.content_id, hashed.hash_kind)
        if not hashed.stable:
            # Changed while we read it: report it, but never record it as clean.
            entry = _smudged(entry)
        if hashed.sketch is not None and self.writable:
            self._sketches.put(hashed.content_id, hashed.permalink, hashed.sketch)
        if old is None:
            if not self._snapshot.entry_count:
                # Nothing recorded, so nothing can have moved: stream the add right away
                # instead of holding every candidate until the walk ends (a first sync).
                self._record_new(entry)
                self._changed = True
                yield _change(ChangeKind.ADDED, entry, permalink=hashed.permalink)
                return
            self._added.append((_candidate(entry, hashed.permalink), entry))
            return
        if hashed.content_id == old.content_id and hashed.hash_kind is old.hash_kind:
            self.unchanged += 1
            if self.writable:
                # The stat could not vouch for this file (touched, racy or smudged), the content
                # did. Rewrite the index even if the stat is the same: its new racy threshold is
                # what lets the next run trust the stat instead of reading the file again.
                self._updates[path] = entry
                self._changed = True
            return
        if self.writable:
            self._updates[path] = entry
        self._changed = True
        yield _change(ChangeKind.MODIFIED, entry, permalink=hashed.permalink)

    def _keep(self, entry: IndexEntry) -> None:
        """Keep a recorded entry we could not examine; smudge it so the next run re-checks it."""
        if self.writable:
            self._updates[entry.path] = _smudged(entry)

    def _pair_and_emit(self) -> Iterator[Record]:
        deleted = self._deleted
        added = self._added
        entries_by_path = {candidate.path: entry for candidate, entry in added}
        old_by_path = {entry.path: entry for entry in deleted}
        store = self._sketches
        deleted_candidates = [
            _candidate(entry, self._recorded_permalink(entry) if added else None)
            for entry in deleted
        ]
        moves, still_deleted, still_added = pair_moves(
            deleted_candidates,
            [candidate for candidate, _entry in added],
            old_sketch=lambda candidate: _sketch_of(store.get(candidate.content_id)),
            new_sketch=self._new_sketch,
        )
        for move in moves:
            entry = entries_by_path[move.new.path]
            self._record_new(entry)
            self._removed.add(move.old.path)
            yield _change(ChangeKind.MOVED, entry, old_path=os.fsdecode(move.old.path),
                          permalink=move.new.permalink,
                          old_content_id=move.old.content_id.hex())
        # Deletions before additions: an added note may take a permalink a deleted one frees.
        for candidate in still_deleted:
            self._removed.add(candidate.path)
            old = old_by_path[candidate.path]
            yield Change(ChangeKind.DELETED, os.fsdecode(old.path))
        for candidate in still_added:
            entry = entries_by_path[candidate.path]
            self._record_new(entry)
            yield _change(ChangeKind.ADDED, entry, permalink=candidate.permalink)
        if moves or still_added or still_deleted:
            self._changed = True
        self._deleted = []
        self._added = []

    def _record_new(self, entry: IndexEntry) -> None:
        if self.writable:
            self._updates[entry.path] = entry
            self._new_paths.append(entry.path)

    def _recorded_permalink(self, entry: IndexEntry) -> str | None:
        if not is_sketched(entry.path):
            return None
        recorded = self._sketches.get(entry.content_id)
        return recorded[0] if recorded else None

    def _new_sketch(self, candidate: MoveCandidate) -> bytes | None:
        stored = _sketch_of(self._sketches.get(candidate.content_id))
        if stored is not None:
            return stored
        file_path = os.path.join(os.fsencode(self.detector.root), candidate.path)
        try:
            if os.path.getsize(file_path) > self.detector.policy.sketch_max_bytes:
                return None
            with open(file_path, "rb") as note:
                return compute_sketch(note.read())
        except OSError:
            return None

    # -- recording --------------------------------------------------------------------------

    @property
    def expected_files(self) -> int:
        """How many files the last recorded state had: the progress bar's estimate."""
        return self._snapshot.entry_count

    @property
    def has_changes(self) -> bool:
        """Whether recording would rewrite the index (a change, or refreshed stat data)."""
        return self._changed or self.index_rebuilt

    def record(
        self, *, exclude: Iterable[str] = (), meta: dict[str, object] | None = None
    ) -> bool:
        """Write the state this run saw into the index; return whether the index was written.

        `exclude` names paths whose changes were *not* applied (the sync engine failed on
        them): they keep their previous entry, smudged, so the next run offers them again.
        Nothing is written when nothing changed and `meta` adds nothing new.
        Call it only after the database commit: a crash in between leaves the index behind the
        database, and the next run re-detects and re-applies.
        """
        if not self.writable:
            raise BmSyncError("this detection run is read-only; use detect(writable=True)")
        if not self.finished:
            raise BmSyncError("iterate the detection run to the end before recording it")
        excluded = {os.fsencode(path) for path in exclude}
        old_meta = dict(self._snapshot.meta)
        new_meta = {**old_meta, **(meta or {})}
        if not self.has_changes and not excluded and new_meta == old_meta:
            return False
        for path in excluded:
            self._updates.pop(path, None)
            self._removed.discard(path)
        new_paths = [path for path in self._new_paths if path not in excluded]
        for path, entry in self._placeholders.items():
            self._updates[path] = entry
            new_paths.append(path)
        new_paths.sort()
        new_meta.update(
            format=INDEX_FORMAT,
            racy_after_ns=self._scan_start_ns - RACY_SLACK_NS,
            full_hash_max_bytes=self.detector.policy.full_hash_max_bytes,
            partial_hash_max_bytes=self.detector.policy.partial_hash_max_bytes,
        )
        merged = _MergedEntries(self._snapshot, self._updates, self._removed, new_paths,
                                excluded)
        with self.detector.lock.hold():
            write_index(self.detector.index_path, merged, merged.count, new_meta,
                        merged.non_full())
            self._sketches.commit((entry.content_id for entry in merged), merged.count)
        return True

    def keep_unexamined(self, path: str, content_id: str, hash_kind: HashKind, size: int,
                        mtime_ns: int) -> None:
        """Record a path this run could not examine and has no entry for, as the caller knows
        it (the sync engine, from its database row, in a rebuild that failed to read the
        file). Smudged, so the next run hashes the file again; meanwhile the index and the
        database count the same files, instead of disagreeing (and rebuilding) forever.
        Only on an empty baseline: otherwise the recorded entry is kept (smudged) already."""
        raw = os.fsencode(path)
        if not self.writable or self._snapshot.entry_count:
            return
        self._placeholders[raw] = IndexEntry(raw, 0, mtime_ns, 0, 0, 0o100644, 0, 0, size,
                                             bytes.fromhex(content_id), hash_kind)
        self._changed = True

    def close(self) -> None:
        self._sketches.close()


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

    def __contains__(self, path: object) -> bool:
        return path in self._rows

    def __len__(self) -> int:
        return len(self._rows)

    def get(self, path: bytes, default: IndexEntry | None = None) -> IndexEntry | None:
        row = self._rows.get(path)
        return default if row is None else _unpacked(path, row)

    def pop(self, path: bytes, default: IndexEntry | None = None) -> IndexEntry | None:
        row = self._rows.pop(path, None)
        return default if row is None else _unpacked(path, row)

    def clear(self) -> None:
        self._rows.clear()


_PACKED = struct.Struct("<qqqqQQQq20sB")
_KINDS = tuple(HashKind)
_KIND_NUMBER = {kind: number for number, kind in enumerate(_KINDS)}


def _unpacked(path: bytes, row: bytes | IndexEntry) -> IndexEntry:
    if isinstance(row, IndexEntry):
        return row
    *stat_fields, content_id, kind = _PACKED.unpack(row)
    return IndexEntry(path, *stat_fields, content_id, _KINDS[kind])


class _MergedEntries:
    """The new index: the old entries, minus removed, with updates, plus new paths, in order."""

    def __init__(self, snapshot: IndexSnapshot, updates: _EntryTable,
                 removed: set[bytes], new_paths: list[bytes], excluded: set[bytes]) -> None:
        self.snapshot = snapshot
        self.updates = updates
        self.removed = removed
        self.new_paths = new_paths
        self.excluded = excluded
        self.count = snapshot.entry_count - len(removed) + len(new_paths)

    def __iter__(self) -> Iterator[IndexEntry]:
        updates, removed, excluded = self.updates, self.removed, self.excluded
        new_paths = iter(self.new_paths)
        next_new = next(new_paths, None)
        for old in self.snapshot.entries():
            while next_new is not None and next_new < old.path:
                yield updates[next_new]
                next_new = next(new_paths, None)
            if old.path in removed:
                continue
            if old.path in excluded:
                yield _smudged(old)
            else:
                yield updates.get(old.path, old)
        while next_new is not None:
            yield updates[next_new]
            next_new = next(new_paths, None)

    def non_full(self) -> Iterator[IndexEntry]:
        return (entry for entry in self if entry.hash_kind is not HashKind.FULL)


def _candidate(entry: IndexEntry, permalink: str | None) -> MoveCandidate:
    """A move candidate; size and mtime as the index holds them, so both sides compare."""
    return MoveCandidate(entry.path, entry.content_id, entry.dev, entry.ino, permalink,
                         entry.size & _U32, index_time_ns(entry.mtime_ns), entry.hash_kind)


def _add_prefix(prefixes: tuple[bytes, ...], prefix: bytes) -> tuple[bytes, ...]:
    """Add a failed prefix, dropping those the walk (in path order) has passed for good.

    A prefix `old` can still match a later path only if it sorts after `prefix` or is a
    prefix of it; otherwise every path starting with `old` sorts before `prefix`.
    """
    return (*(old for old in prefixes if old > prefix or prefix.startswith(old)), prefix)


def _is_utf8(path: bytes) -> bool:
    try:
        path.decode()
    except UnicodeDecodeError:
        return False
    return True


def _display(path: bytes) -> str:
    """A path as text for a failure line: always valid UTF-8 (raw bytes shown as \\xNN)."""
    return path.decode("utf-8", "backslashreplace")


def _smudged(entry: IndexEntry) -> IndexEntry:
    """An entry whose stat can never match (ctime 0), so the next run hashes the file again."""
    return entry._replace(ctime_ns=0)


def _sketch_of(recorded: tuple[str | None, bytes] | None) -> bytes | None:
    return recorded[1] if recorded else None


def _change(kind: ChangeKind, entry: IndexEntry, *, old_path: str | None = None,
            permalink: str | None = None, old_content_id: str | None = None) -> Change:
    return Change(kind, os.fsdecode(entry.path), old_path, entry.content_id.hex(),
                  entry.hash_kind, entry.size, entry.mtime_ns, permalink, old_content_id)
