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
from pathlib import Path

from bm_sync.changes import Change, Failure, Finding, HashKind, StatusReport
from bm_sync.errors import BmSyncError, IndexCorrupt, NotAFolder
from bm_sync.hashing import HashPolicy, HeadInspector
from bm_sync.ignore import IgnoreRules
from bm_sync.index_format import (
    IndexEntry,
    IndexSnapshot,
    corrupt_index_message,
    read_index,
)
from bm_sync.lock import FolderLock
from bm_sync.merge import MergePass
from bm_sync.recording import IndexRecording
from bm_sync.sketch import SketchStore
from bm_sync.sources import FullWalk, PathSource, ReportedPath, explicit_paths

__all__ = ["DetectionRun", "Detector", "StatusReport"]

STATE_DIR = ".basic-memory"
INDEX_FILE = "index"
SKETCH_FILE = "sketches.db"


def frontmatter_permalink(head: bytes) -> str | None:
    """The default head inspector: the note's frontmatter permalink (the parser's reader,
    imported on first use so that a status that hashes no note never loads YAML)."""
    from bm_sync.frontmatter import frontmatter_permalink as read_permalink

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
        self.warnings: list[str] = []
        self.index_rebuilt = False
        self.finished = False
        self._started = False
        self._scan_start_ns = 0
        self._sketches = SketchStore(detector.state_dir / SKETCH_FILE, writable=writable)
        self._recording = IndexRecording(IndexSnapshot.empty(), writable=writable)
        self._pass = self._new_pass()

    def _new_pass(self) -> MergePass:
        detector = self.detector
        return MergePass(detector.root, detector.policy, source=self.source,
                         recording=self._recording, sketches=self._sketches,
                         inspect_head=detector.inspect_head, skip=self._skip,
                         writable=self.writable)

    @property
    def unchanged(self) -> int:
        """Files found unchanged so far (by stat, or by content after hashing)."""
        return self._pass.unchanged

    @property
    def hashed(self) -> int:
        """Files hashed so far."""
        return self._pass.hashed

    @property
    def unexamined_prefixes(self) -> tuple[str, ...]:
        """Folders this run could not examine (unreadable, or their ignore file is): nothing
        below them may be concluded gone. "" is the whole tree."""
        return self._pass.unexamined_prefixes

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
        self._pass = self._new_pass()
        rules = IgnoreRules(self.detector.root, include_hidden=self.detector.include_hidden)
        try:
            yield from self._pass.run(rules)
        except IndexCorrupt as error:
            # Found while walking the entries (see `IndexSnapshot.records`): start over from an
            # empty baseline, by a full walk, as for an index corrupt at load. Deletions are
            # only emitted after the merge, so none has escaped; a few findings may already
            # have streamed out (failures, modified files) and come again, as added.
            self._warn_corrupt(error)
            self._recording.reset(IndexSnapshot.empty())
            self.source = FullWalk()
            self._pass = self._new_pass()
            rules = IgnoreRules(self.detector.root, include_hidden=self.detector.include_hidden)
            yield from self._pass.run(rules)
        for path, reason in rules.errors:
            yield Failure(path, f"cannot read ignore file: {reason}")
        yield from self._pass.pairing.pair_and_emit(self._recording)
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

    # -- recording --------------------------------------------------------------------------

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
