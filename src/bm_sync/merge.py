"""The detection pass proper: the sorted merge of recorded entries with a source's events.

This loop runs once per candidate path, so it works on raw index entries and plain scan tuples,
and builds an `IndexEntry` only for paths that need attention. Per path it decides (with
`compare.is_unchanged`) whether the stat vouches for the entry; if not, the file goes to the
bounded hashing pool, and the result becomes a finding (MODIFIED streams out at once), a move
candidate (held by `MovePairing`), or refreshed stat data; each decision is also told to the
run's `IndexRecording`. Failures are findings, never exceptions, and never deletions.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from bm_sync.changes import ChangeKind, Failure, Finding, HashKind
from bm_sync.compare import git_mode, is_racy, is_unchanged, racy_threshold
from bm_sync.errors import describe_os_error
from bm_sync.hashing import HashedFile, HashPolicy, HeadInspector, hash_file
from bm_sync.ignore import IgnoreRules
from bm_sync.index_format import MAX_PATH_BYTES, IndexEntry, IndexSnapshot, RawEntry
from bm_sync.pairing import MovePairing, candidate_of, change_of
from bm_sync.recording import IndexRecording, smudged
from bm_sync.scan import EventKind
from bm_sync.sketch import SketchStore
from bm_sync.sources import PathSource

_U32 = 0xFFFFFFFF
_FULL = HashKind.FULL


class MergePass:
    """One pass of a source's events against the entries it covers. Iterate `run()` once."""

    def __init__(self, root: Path, policy: HashPolicy, *, source: PathSource,
                 recording: IndexRecording, sketches: SketchStore,
                 inspect_head: HeadInspector | None, skip: Mapping[bytes, str],
                 writable: bool) -> None:
        self.root = root
        self.policy = policy
        self.source = source
        self.recording = recording
        self.sketches = sketches
        self.inspect_head = inspect_head
        self.skip = skip
        self.writable = writable
        self.pairing = MovePairing(root, policy, sketches)
        self.unchanged = 0
        self.hashed = 0
        # Folders this pass could not examine (unreadable, or their ignore file is): nothing
        # below them may be concluded gone. "" is the whole tree.
        self.unexamined_prefixes: tuple[str, ...] = ()

    def _covered(self, snapshot: IndexSnapshot,
                 threshold: int) -> Iterator[tuple[bytes, RawEntry]]:
        """The recorded entries the source speaks for (all of them for the full walk, with no
        layer in between: this is the hot path)."""
        if self.source.whole_tree:
            return snapshot.records()
        return self._filtered(snapshot, threshold)

    def _filtered(self, snapshot: IndexSnapshot,
                  threshold: int) -> Iterator[tuple[bytes, RawEntry]]:
        """The entries an explicit source covers. The others are carried over as they are,
        except racy ones: they are smudged, because the new racy threshold written with the
        index would otherwise vouch for them without anyone having looked."""
        covers = self.source.covers
        keep = self.recording.keep
        for path, raw in snapshot.records():
            if covers(path):
                yield path, raw
            elif is_racy(raw, threshold):
                keep(snapshot.entry(path, raw))

    def run(self, rules: IgnoreRules) -> Iterator[Finding]:
        """Merge the sorted entries with the sorted scan events; hash what the stat cannot
        vouch for.

        This loop runs once per file of the tree, so it works on raw index entries and plain
        scan tuples, and builds an `IndexEntry` only for paths that need attention.
        """
        policy = self.policy
        snapshot = self.recording.snapshot
        threshold = racy_threshold(snapshot.file_mtime_ns, snapshot.meta.get("racy_after_ns"))
        root = os.fsencode(self.root)
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
            for kind, path, stat_result, error in self.source.events(root, rules):
                while current is not None and current[0] < path:
                    self._vanished(to_entry(*current), failed_prefixes)
                    current = next(entries, None)
                if current is not None and current[0] == path:
                    raw = current[1]
                    current = next(entries, None)
                    if kind is FILE and is_unchanged(
                            raw, stat_result, threshold,  # type: ignore[arg-type]  # FILE: has a stat
                            kinds[path][0] if kinds and path in kinds else _FULL, policy):
                        unchanged += 1
                        continue
                    old: IndexEntry | None = to_entry(path, raw)
                else:
                    old = None
                if kind is not FILE:
                    failed_prefixes = self._failed(kind, path, old, failed_prefixes)
                    if kind is not EventKind.FAILED_RULES:  # reported by `rules.errors`
                        yield Failure(_display(path.rstrip(b"/")) or ".", error or "unreadable")
                    continue
                reason = self._not_hashed(path)
                if reason is not None:
                    if old is not None:
                        self.recording.keep(old)
                    yield Failure(_display(path), reason, skipped=path in self.skip)
                    continue
                if pool is None:
                    pool = ThreadPoolExecutor(policy.workers, thread_name_prefix="bm-hash")
                future = pool.submit(hash_file, os.path.join(root, path), policy,
                                     self.inspect_head)
                pending[future] = (path, old)
                if len(pending) >= limit:
                    # Collected in the order submitted (path order), not as they finish: the
                    # stream, and so the batches and the entity ids they get, is the same on
                    # every run over the same tree.
                    oldest = next(iter(pending))
                    yield from self._collect_hash(oldest, *pending.pop(oldest))
            while current is not None:
                self._vanished(to_entry(*current), failed_prefixes)
                current = next(entries, None)
            while pending:
                oldest = next(iter(pending))
                yield from self._collect_hash(oldest, *pending.pop(oldest))
        finally:
            self.unchanged += unchanged
            self.unexamined_prefixes = tuple(os.fsdecode(prefix) for prefix in failed_prefixes)
            if pool is not None:
                for future in pending:
                    future.cancel()
                pool.shutdown(wait=True)

    def _failed(self, kind: EventKind, path: bytes, old: IndexEntry | None,
                failed_prefixes: tuple[bytes, ...]) -> tuple[bytes, ...]:
        """Keep what a failed scan event stands for; return the prefixes kept from now on."""
        if kind is EventKind.FAILED_DIR or kind is EventKind.FAILED_RULES:
            return _add_prefix(failed_prefixes, path)
        if kind is EventKind.FAILED_ENTRY:  # a file or a folder: keep both
            failed_prefixes = _add_prefix(failed_prefixes, path + b"/")
        if old is not None:
            self.recording.keep(old)
        return failed_prefixes

    def _not_hashed(self, path: bytes) -> str | None:
        """Why a file the scan found is not hashed this run (None: it is)."""
        if not _is_utf8(path):
            # Text everywhere downstream (JSON, the database): never hashed nor added.
            return "file name is not valid UTF-8"
        if len(path) > MAX_PATH_BYTES:
            return "path too long for the index"
        return self.skip.get(path)

    def _vanished(self, entry: IndexEntry, failed_prefixes: tuple[bytes, ...]) -> None:
        """A covered entry the scan did not yield: deleted, unless its folder was unreadable.

        A recorded name that is not UTF-8 was never reported (see `_merge`), so it leaves the
        index without a deletion no consumer could apply.
        """
        if failed_prefixes and entry.path.startswith(failed_prefixes):
            self.recording.keep(entry)
        elif not _is_utf8(entry.path):
            self.recording.remove(entry.path)
        else:
            self.pairing.deleted.append(entry)

    def _collect_hash(
        self, future: Future[HashedFile], path: bytes, old: IndexEntry | None
    ) -> Iterator[Finding]:
        try:
            hashed = future.result()
        except Exception as error:  # one file's problem never aborts the run
            if old is not None:
                self.recording.keep(old)
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
            self.sketches.put(hashed.content_id, hashed.permalink, hashed.sketch)
        if old is None:
            if not self.recording.snapshot.entry_count:
                # Nothing recorded, so nothing can have moved: stream the add right away
                # instead of holding every candidate until the walk ends (a first sync).
                self.recording.add(entry)
                yield change_of(ChangeKind.ADDED, entry, permalink=hashed.permalink,
                              content=hashed.content)
                return
            self.pairing.added.append((candidate_of(entry, hashed.permalink), entry))
            return
        if hashed.content_id == old.content_id and hashed.hash_kind is old.hash_kind:
            self.unchanged += 1
            if self.writable:
                # The stat could not vouch for this file (touched, racy or smudged), the content
                # did. Rewrite the index even if the stat is the same: its new racy threshold is
                # what lets the next run trust the stat instead of reading the file again.
                self.recording.update(entry)
            return
        self.recording.update(entry)
        yield change_of(ChangeKind.MODIFIED, entry, permalink=hashed.permalink,
                      content=hashed.content)


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
