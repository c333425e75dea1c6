"""What changed in this folder since the last recorded state?

`Detector(root).detect()` returns a `DetectionRun`: iterate it to receive `Change` and
`Failure` findings as a stream, then (for a recording run) call `record()` to write the new
state into the index. The stages are separate modules; this one only wires them:

    index_format.read_index ──┐
                              ├─ sorted merge ─ compare.is_unchanged ─┬─ unchanged (never opened)
    sources: walk or paths ───┘                                       └─ hashing pool (bounded)
                                                                          │
                   renames.pair_moves  <─ deleted + added (held until the pass ends)
                                                                          │
                                       MODIFIED streams out as soon as its hash is known
                                                                          │
                             recording.IndexRecording ─ the next index, written by record()

The candidate paths come from a source (`sources.py`): the full walk, or the paths a watcher
reported (`detect(paths=...)`), which covers only their entries; every other entry is carried
over untouched. Memory: the index buffer, the files in flight in the pool, and the
added/deleted candidates (a move can only be paired once every deletion is known; they do not
keep the bytes read). Unchanged files cost nothing.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path

from bm_sync.changes import Change, ChangeKind, Failure, Finding, HashKind, StatusReport
from bm_sync.compare import git_mode, index_time_ns, is_racy, is_unchanged, racy_threshold
from bm_sync.errors import BmSyncError, IndexCorrupt, NotAFolder
from bm_sync.hashing import HashedFile, HashPolicy, HeadInspector, hash_file, is_sketched
from bm_sync.ignore import IgnoreRules
from bm_sync.index_format import (
    MAX_PATH_BYTES,
    IndexEntry,
    IndexSnapshot,
    RawEntry,
    corrupt_index_message,
    read_index,
)
from bm_sync.lock import FolderLock
from bm_sync.recording import IndexRecording, smudged
from bm_sync.renames import MoveCandidate, pair_moves
from bm_sync.scan import EventKind, ScanTuple, describe_os_error
from bm_sync.sketch import SketchStore, compute_sketch
from bm_sync.sources import FullWalk, PathSource, ReportedPath, explicit_paths

__all__ = ["DetectionRun", "Detector", "StatusReport"]

STATE_DIR = ".basic-memory"
INDEX_FILE = "index"
SKETCH_FILE = "sketches.db"
_U32 = 0xFFFFFFFF
_FULL = HashKind.FULL


def frontmatter_permalink(head: bytes) -> str | None:
    """The default head inspector: the note's frontmatter permalink (the parser's reader,
    imported on first use so that a status that hashes no note never loads YAML)."""
    from bm_sync.markdown import frontmatter_permalink as read_permalink

    return read_permalink(head)


class Detector:
    """The change detector of one folder.

    `policy` sets the hashing thresholds and parallelism; `include_hidden` also tracks names
    starting with a dot; `inspect_head` reads a permalink from a markdown file's first bytes
    (the frontmatter's, by default). The root is resolved (symlinks included), so a folder
    reached through a link is the same folder. A detector is cheap to create; each
    `detect()` is one pass.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        policy: HashPolicy | None = None,
        include_hidden: bool = False,
        inspect_head: HeadInspector | None = frontmatter_permalink,
    ) -> None:
        self.root = Path(os.path.realpath(root))
        if not self.root.is_dir():
            raise NotAFolder(f"not a folder: {root}")
        self.policy = policy or HashPolicy()
        self.include_hidden = include_hidden
        self.inspect_head = inspect_head
        self.state_dir = self.root / STATE_DIR
        self.index_path = self.state_dir / INDEX_FILE
        self.lock = FolderLock(self.state_dir)

    def load_snapshot(self) -> IndexSnapshot:
        """Read the recorded index (raises `IndexCorrupt`); `detect(snapshot=...)` reuses it."""
        return read_index(self.index_path)

    def detect(self, *, writable: bool = False, rebuild: bool = False,
               snapshot: IndexSnapshot | None = None,
               skip: Mapping[str, str] | None = None,
               paths: Iterable[ReportedPath] | None = None) -> DetectionRun:
        """Start a run. Only a `writable` run can `record()`; `bm status` uses a read-only one,
        which writes nothing at all (not the index, not the sketch cache).

        `rebuild` ignores the recorded index: every file is reported added, none deleted (the
        sync engine uses it when its database and the index disagree). `skip` maps paths not to
        open this run (the sync engine's circuit breaker) to the reason reported for them.
        `paths` (root-relative or absolute; files or folders, present or gone) limits the run
        to what a file watcher reported: their entries are examined as a full scan would,
        every other entry is carried over. Without a recorded baseline (no index, a rebuild, a
        corrupt index) the run walks the whole tree instead: there is nothing to carry over.
        """
        source: PathSource = FullWalk()
        if paths is not None:
            source = explicit_paths(self.root, paths) or source
        return DetectionRun(self, writable=writable, rebuild=rebuild, snapshot=snapshot,
                            skip=skip, source=source)

    def changes(self) -> Iterator[Change]:
        """Stream the changes a sync would apply (read-only; failures are left out)."""
        for finding in self.detect():
            if isinstance(finding, Change):
                yield finding

    def status(self, paths: Iterable[ReportedPath] | None = None) -> StatusReport:
        """Collect one read-only run (of the whole tree, or of `paths`) into a report."""
        return self.detect(paths=paths).collect()

    def record(self) -> StatusReport:
        """Detect and write the current state into the index; return what was found.

        This is what the sync engine does after its database commit; on its own it makes
        "now" the baseline of the next `status`.
        """
        with self.lock.hold():
            run = self.detect(writable=True)
            report = run.collect()
            run.record()
            run.close()
        return report


class DetectionRun:
    """One pass over the candidate paths. Iterate it once; counters are final when it is
    exhausted. The index it would write is kept by an `IndexRecording` (`recording.py`)."""

    def __init__(self, detector: Detector, *, writable: bool, rebuild: bool = False,
                 snapshot: IndexSnapshot | None = None,
                 skip: Mapping[str, str] | None = None,
                 source: PathSource | None = None) -> None:
        self.detector = detector
        self._skip = {os.fsencode(path): reason for path, reason in (skip or {}).items()}
        self.writable = writable
        self.rebuild = rebuild
        self.source = source or FullWalk()
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
        self._sketches = SketchStore(detector.state_dir / SKETCH_FILE, writable=writable)
        self._recording = IndexRecording(IndexSnapshot.empty(), writable=writable)
        self._pairing = _MovePairing(detector, self._sketches)

    # -- the pass ---------------------------------------------------------------------------

    def __iter__(self) -> Iterator[Finding]:
        if self._started:
            raise BmSyncError("a detection run can be iterated only once")
        self._started = True
        self._scan_start_ns = time.time_ns()
        snapshot = self._load_snapshot()
        if not snapshot.entry_count:
            self.source = FullWalk()  # nothing recorded to carry over
        self._recording.reset(snapshot)
        rules = IgnoreRules(self.detector.root, include_hidden=self.detector.include_hidden)
        try:
            yield from self._merge(rules)
        except IndexCorrupt as error:
            # Found while walking the entries (see `IndexSnapshot.records`): start over from an
            # empty baseline, by a full walk, as for an index corrupt at load. Deletions are
            # only emitted after the merge, so none has escaped; a few findings may already
            # have streamed out (failures, modified files) and come again, as added.
            self._warn_corrupt(error)
            self._recording.reset(IndexSnapshot.empty())
            self._pairing = _MovePairing(self.detector, self._sketches)
            self.unchanged = self.hashed = 0
            self.source = FullWalk()
            rules = IgnoreRules(self.detector.root, include_hidden=self.detector.include_hidden)
            yield from self._merge(rules)
        for path, reason in rules.errors:
            yield Failure(path, f"cannot read ignore file: {reason}")
        yield from self._pairing.pair_and_emit(self._recording)
        self.finished = True

    def collect(self) -> StatusReport:
        """Drain the run into a `StatusReport`."""
        report = StatusReport()
        for finding in self:
            report.add(finding)
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
        self.warnings.append(corrupt_index_message(self.detector.index_path, error))
        self.index_rebuilt = True

    def _covered(self, snapshot: IndexSnapshot,
                 threshold: int) -> Iterator[tuple[bytes, RawEntry]]:
        """The recorded entries the source speaks for; the others are carried over as they
        are, except racy ones: they are smudged, because the new racy threshold written with
        the index would otherwise vouch for them without anyone having looked."""
        if self.source.whole_tree:
            yield from snapshot.records()
            return
        covers = self.source.covers
        keep = self._recording.keep
        for path, raw in snapshot.records():
            if covers(path):
                yield path, raw
            elif is_racy(raw, threshold):
                keep(snapshot.entry(path, raw))

    def _merge(self, rules: IgnoreRules) -> Iterator[Finding]:
        """Merge the sorted entries with the sorted scan events; hash what the stat cannot
        vouch for.

        This loop runs once per file of the tree, so it works on raw index entries and plain
        scan tuples, and builds an `IndexEntry` only for paths that need attention.
        """
        policy = self.detector.policy
        snapshot = self._recording.snapshot
        threshold = racy_threshold(snapshot.file_mtime_ns, snapshot.meta.get("racy_after_ns"))
        root = os.fsencode(self.detector.root)
        entries = self._covered(snapshot, threshold)
        current = next(entries, None)
        to_entry = snapshot.entry
        kinds = snapshot.kinds
        # Prefixes whose recorded entries are kept (folders we could not examine).
        failed_prefixes: tuple[bytes, ...] = ()
        pending: dict[Future[HashedFile], tuple[bytes, IndexEntry | None]] = {}
        pool: ThreadPoolExecutor | None = None
        limit = policy.max_in_flight
        unchanged = 0
        FILE = EventKind.FILE
        try:
            for event in self.source.events(root, rules):
                kind, path, stat_result, error = event
                while current is not None and current[0] < path:
                    self._vanished(to_entry(*current), failed_prefixes)
                    current = next(entries, None)
                old: IndexEntry | None = None
                if current is not None and current[0] == path:
                    raw = current[1]
                    current = next(entries, None)
                    if kind is FILE and is_unchanged(
                            raw, stat_result,  # type: ignore[arg-type]
                            racy_after_ns=threshold, policy=policy,
                            recorded_kind=kinds[path][0] if path in kinds else _FULL):
                        unchanged += 1
                        continue
                    old = to_entry(path, raw)
                if kind is not FILE:
                    failed_prefixes = self._failed(event, old, failed_prefixes)
                    if kind is not EventKind.FAILED_RULES:  # reported by `rules.errors`
                        yield Failure(_display(path.rstrip(b"/")) or ".", error or "unreadable")
                    continue
                reason = self._not_hashed(path)
                if reason is not None:
                    if old is not None:
                        self._recording.keep(old)
                    yield Failure(_display(path), reason, skipped=path in self._skip)
                    continue
                if pool is None:
                    pool = ThreadPoolExecutor(policy.workers, thread_name_prefix="bm-hash")
                future = pool.submit(hash_file, os.path.join(root, path), policy,
                                     self.detector.inspect_head)
                pending[future] = (path, old)
                if len(pending) >= limit:
                    done, _ = wait(pending, return_when=FIRST_COMPLETED)
                    for finished in done:
                        yield from self._collect_hash(finished, *pending.pop(finished))
            while current is not None:
                self._vanished(to_entry(*current), failed_prefixes)
                current = next(entries, None)
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

    def _failed(self, event: ScanTuple, old: IndexEntry | None,
                failed_prefixes: tuple[bytes, ...]) -> tuple[bytes, ...]:
        """Keep what a failed scan event stands for; return the prefixes kept from now on."""
        kind, path = event[0], event[1]
        if kind is EventKind.FAILED_DIR or kind is EventKind.FAILED_RULES:
            return _add_prefix(failed_prefixes, path)
        if kind is EventKind.FAILED_ENTRY:  # a file or a folder: keep both
            failed_prefixes = _add_prefix(failed_prefixes, path + b"/")
        if old is not None:
            self._recording.keep(old)
        return failed_prefixes

    def _not_hashed(self, path: bytes) -> str | None:
        """Why a file the scan found is not hashed this run (None: it is)."""
        if not _is_utf8(path):
            # Text everywhere downstream (JSON, the database): never hashed nor added.
            return "file name is not valid UTF-8"
        if len(path) > MAX_PATH_BYTES:
            return "path too long for the index"
        return self._skip.get(path)

    def _vanished(self, entry: IndexEntry, failed_prefixes: tuple[bytes, ...]) -> None:
        """A covered entry the scan did not yield: deleted, unless its folder was unreadable.

        A recorded name that is not UTF-8 was never reported (see `_merge`), so it leaves the
        index without a deletion no consumer could apply.
        """
        if failed_prefixes and entry.path.startswith(failed_prefixes):
            self._recording.keep(entry)
        elif not _is_utf8(entry.path):
            self._recording.remove(entry.path)
        else:
            self._pairing.deleted.append(entry)

    def _collect_hash(
        self, future: Future[HashedFile], path: bytes, old: IndexEntry | None
    ) -> Iterator[Finding]:
        try:
            hashed = future.result()
        except Exception as error:  # one file's problem never aborts the run
            if old is not None:
                self._recording.keep(old)
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
            entry = smudged(entry)
        if hashed.sketch is not None and self.writable:
            self._sketches.put(hashed.content_id, hashed.permalink, hashed.sketch)
        if old is None:
            if not self._recording.snapshot.entry_count:
                # Nothing recorded, so nothing can have moved: stream the add right away
                # instead of holding every candidate until the walk ends (a first sync).
                self._recording.add(entry)
                yield _change(ChangeKind.ADDED, entry, permalink=hashed.permalink,
                              content=hashed.content)
                return
            self._pairing.added.append((_candidate(entry, hashed.permalink), entry))
            return
        if hashed.content_id == old.content_id and hashed.hash_kind is old.hash_kind:
            self.unchanged += 1
            if self.writable:
                # The stat could not vouch for this file (touched, racy or smudged), the content
                # did. Rewrite the index even if the stat is the same: its new racy threshold is
                # what lets the next run trust the stat instead of reading the file again.
                self._recording.update(entry)
            return
        self._recording.update(entry)
        yield _change(ChangeKind.MODIFIED, entry, permalink=hashed.permalink,
                      content=hashed.content)

    # -- recording --------------------------------------------------------------------------

    @property
    def has_changes(self) -> bool:
        """Whether recording would rewrite the index (a change, or refreshed stat data)."""
        return self._recording.changed or self.index_rebuilt

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
        if self.index_rebuilt:
            self._recording.changed = True
        return self._recording.write(
            self.detector.index_path, self.detector.lock, self._sketches,
            policy=self.detector.policy, scan_start_ns=self._scan_start_ns,
            exclude={os.fsencode(path) for path in exclude}, meta=meta)

    def keep_unexamined(self, path: str, content_id: str, hash_kind: HashKind, size: int,
                        mtime_ns: int) -> None:
        """Record a path this run could not examine and has no entry for, as the caller knows
        it (the sync engine, from its database row, in a rebuild that failed to read the
        file). Smudged, so the next run hashes the file again; meanwhile the index and the
        database count the same files, instead of disagreeing (and rebuilding) forever.
        Only on an empty baseline: otherwise the recorded entry is kept (smudged) already."""
        if self._recording.snapshot.entry_count:
            return
        raw = os.fsencode(path)
        self._recording.add_placeholder(IndexEntry(raw, 0, mtime_ns, 0, 0, 0o100644, 0, 0, size,
                                                   bytes.fromhex(content_id), hash_kind))

    def close(self) -> None:
        self._sketches.close()


class _MovePairing:
    """The deleted and added candidates of a run, paired into moves once the pass ends."""

    def __init__(self, detector: Detector, sketches: SketchStore) -> None:
        self.detector = detector
        self.sketches = sketches
        self.deleted: list[IndexEntry] = []
        self.added: list[tuple[MoveCandidate, IndexEntry]] = []

    def pair_and_emit(self, recording: IndexRecording) -> Iterator[Finding]:
        deleted, added = self.deleted, self.added
        entries_by_path = {candidate.path: entry for candidate, entry in added}
        store = self.sketches
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
            recording.add(entry)
            recording.remove(move.old.path)
            yield _change(ChangeKind.MOVED, entry, old_path=os.fsdecode(move.old.path),
                          permalink=move.new.permalink,
                          old_content_id=move.old.content_id.hex())
        # Deletions before additions: an added note may take a permalink a deleted one frees.
        for candidate in still_deleted:
            recording.remove(candidate.path)
            yield Change(ChangeKind.DELETED, os.fsdecode(candidate.path))
        for candidate in still_added:
            recording.add(entries_by_path[candidate.path])
            yield _change(ChangeKind.ADDED, entries_by_path[candidate.path],
                          permalink=candidate.permalink)
        self.deleted = []
        self.added = []

    def _recorded_permalink(self, entry: IndexEntry) -> str | None:
        if not is_sketched(entry.path):
            return None
        recorded = self.sketches.get(entry.content_id)
        return recorded[0] if recorded else None

    def _new_sketch(self, candidate: MoveCandidate) -> bytes | None:
        stored = _sketch_of(self.sketches.get(candidate.content_id))
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


def _sketch_of(recorded: tuple[str | None, bytes] | None) -> bytes | None:
    return recorded[1] if recorded else None


def _change(kind: ChangeKind, entry: IndexEntry, *, old_path: str | None = None,
            permalink: str | None = None, old_content_id: str | None = None,
            content: bytes | None = None) -> Change:
    return Change(kind, os.fsdecode(entry.path), old_path, entry.content_id.hex(),
                  entry.hash_kind, entry.size, entry.mtime_ns, permalink, old_content_id,
                  content)
