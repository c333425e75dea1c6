"""The end of a detection pass: deleted and added paths paired into moves.

A move can only be paired once every deletion is known, so the pass hands its candidates here
as it finds them (without the bytes read: memory stays bounded) and `pair_and_emit` runs once
it ends, with `renames.pair_moves` deciding and the sketch store supplying what the rules
compare. What it finds goes into the run's `IndexRecording`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from bm_sync.changes import Change, ChangeKind, Finding
from bm_sync.compare import index_time_ns
from bm_sync.hashing import HashPolicy, is_sketched
from bm_sync.index_format import IndexEntry
from bm_sync.recording import IndexRecording
from bm_sync.renames import MoveCandidate, pair_moves
from bm_sync.sketch import SketchStore, compute_sketch

_U32 = 0xFFFFFFFF


class MovePairing:
    """The deleted and added candidates of a run, paired into moves once the pass ends."""

    def __init__(self, root: Path, policy: HashPolicy, sketches: SketchStore) -> None:
        self.root = root
        self.policy = policy
        self.sketches = sketches
        self.deleted: list[IndexEntry] = []
        self.added: list[tuple[MoveCandidate, IndexEntry]] = []

    def pair_and_emit(self, recording: IndexRecording) -> Iterator[Finding]:
        deleted, added = self.deleted, self.added
        entries_by_path = {candidate.path: entry for candidate, entry in added}
        store = self.sketches
        deleted_candidates = [
            candidate_of(entry, self._recorded_permalink(entry) if added else None)
            for entry in deleted
        ]
        moves, still_deleted, still_added = pair_moves(
            deleted_candidates,
            [candidate for candidate, _entry in added],
            old_sketch=lambda candidate: _sketch_of(store.get(candidate.content_id)),
            new_sketch=self._new_sketch,
            line_weight=store.line_weights(),
        )
        for move in moves:
            entry = entries_by_path[move.new.path]
            recording.add(entry)
            recording.remove(move.old.path)
            yield change_of(ChangeKind.MOVED, entry, old_path=os.fsdecode(move.old.path),
                          permalink=move.new.permalink,
                          old_content_id=move.old.content_id.hex())
        # Deletions before additions: an added note may take a permalink a deleted one frees.
        for candidate in still_deleted:
            recording.remove(candidate.path)
            yield Change(ChangeKind.DELETED, os.fsdecode(candidate.path))
        for candidate in still_added:
            recording.add(entries_by_path[candidate.path])
            yield change_of(ChangeKind.ADDED, entries_by_path[candidate.path],
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
        file_path = os.path.join(os.fsencode(self.root), candidate.path)
        try:
            if os.path.getsize(file_path) > self.policy.sketch_max_bytes:
                return None
            with open(file_path, "rb") as note:
                return compute_sketch(note.read())
        except OSError:
            return None


def candidate_of(entry: IndexEntry, permalink: str | None) -> MoveCandidate:
    """A move candidate; size and mtime as the index holds them, so both sides compare."""
    return MoveCandidate(entry.path, entry.content_id, entry.dev, entry.ino, permalink,
                         entry.size & _U32, index_time_ns(entry.mtime_ns), entry.hash_kind)


def _sketch_of(recorded: tuple[str | None, bytes] | None) -> bytes | None:
    return recorded[1] if recorded else None


def change_of(kind: ChangeKind, entry: IndexEntry, *, old_path: str | None = None,
              permalink: str | None = None, old_content_id: str | None = None,
              content: bytes | None = None) -> Change:
    """The `Change` that reports a new or changed entry."""
    return Change(kind, os.fsdecode(entry.path), old_path, entry.content_id.hex(),
                  entry.hash_kind, entry.size, entry.mtime_ns, permalink, old_content_id,
                  content)
