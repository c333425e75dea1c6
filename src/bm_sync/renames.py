"""Pairing deleted and added paths into moves, so a moved note keeps its identity.

Rules, applied in this order to what is still unpaired (each rule is stronger evidence than the
next, so it gets first pick):

1. CONTENT: identical content id (a pure rename). Duplicates pair deterministically: same file
   name first, then in path order. `mv notes archive` is N such moves.
2. INODE: same (device, inode), and either
   a. the same size and mtime (a rename keeps both), for any file type, unless both content
      ids are full blob ids: those are exact, so differing ones mean different content (an
      inode reused by a new file that happens to get the same size and mtime, as `cp -p` or
      `tar x` can give). This is what keeps a move whose content id changed representation
      (the hash thresholds changed: partial -> full) from turning into add + delete; or
   b. for sketched (text) files, still similar (>= `inode_threshold` of lines in common):
      renamed then edited in place.
   A bare inode match is not enough, because file systems reuse the inode of a deleted file
   for the next new one.
3. PERMALINK: markdown on both sides with the same frontmatter `permalink`.
4. SIMILARITY: markdown with at least `similarity_threshold` (git's -M50%) of lines in common,
   best score first. Like git's `diff.renameLimit`, skipped when either side has more than
   `rename_limit` candidates, to keep the run from going quadratic.

Rules 2b and 4 count each line at `line_weight(line hash)` (see `sketch.similarity`): with the
weights of `SketchStore.line_weights()`, lines many notes share (a template's frontmatter keys
and headings) barely count, so two daily notes made from one template are not a move while the
same note with a few lines changed still is; lines in common must also weigh at least one
line no other note holds (MIN_SHARED_WEIGHT). Without weights every line counts 1.

This module is pure: sketches and weights come through callables, so it never touches the disk
itself. Results depend only on the candidates, sketches and weights: every tie is broken by
path, every sum is taken in line-hash order.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from bm_sync.changes import HashKind
from bm_sync.hashing import is_markdown, is_sketched
from bm_sync.sketch import (
    MIN_SHARED_WEIGHT,
    LineWeight,
    line_counts,
    similarity,
    weighted_size,
)

SketchLookup = Callable[["MoveCandidate"], "bytes | None"]
Take = Callable[["MoveCandidate", "MoveCandidate", "MoveRule"], None]
Remaining = dict[bytes, "MoveCandidate"]
# Slack on the candidate filter's bound, so float rounding can only add candidates, never lose one.
_BOUND_SLACK = 1e-9


class MoveRule(StrEnum):
    CONTENT = "content"
    INODE = "inode"
    PERMALINK = "permalink"
    SIMILARITY = "similarity"


@dataclass(frozen=True, slots=True)
class MoveCandidate:
    """A deleted or added path with what the rules look at.

    `size` and `mtime_ns` are compared for equality only, so both sides must hold them the
    same way (the detector gives them as the index stores them); None disables that evidence.
    `hash_kind` says how `content_id` was made (None: unknown).
    """

    path: bytes
    content_id: bytes
    dev: int
    ino: int
    permalink: str | None = None
    size: int | None = None
    mtime_ns: int | None = None
    hash_kind: HashKind | None = None


@dataclass(frozen=True, slots=True)
class Move:
    old: MoveCandidate
    new: MoveCandidate
    rule: MoveRule


def _basename(path: bytes) -> bytes:
    return path.rsplit(b"/", 1)[-1]


def pair_moves(
    deleted: list[MoveCandidate],
    added: list[MoveCandidate],
    *,
    old_sketch: SketchLookup,
    new_sketch: SketchLookup,
    similarity_threshold: float = 0.5,
    inode_threshold: float = 0.3,
    rename_limit: int = 1000,
    line_weight: LineWeight | None = None,
) -> tuple[list[Move], list[MoveCandidate], list[MoveCandidate]]:
    """Return (moves, still deleted, still added), each sorted by path.

    `line_weight` weighs each line hash in the similarity rules (None: every line counts 1).
    """
    moves: list[Move] = []
    if not deleted or not added:
        return moves, sorted(deleted, key=_path), sorted(added, key=_path)
    remaining_deleted = {candidate.path: candidate for candidate in deleted}
    remaining_added = {candidate.path: candidate for candidate in added}

    def take(old: MoveCandidate, new: MoveCandidate, rule: MoveRule) -> None:
        moves.append(Move(old, new, rule))
        del remaining_deleted[old.path]
        del remaining_added[new.path]

    _pair_by_content(remaining_deleted, remaining_added, take)
    _pair_by_inode(remaining_deleted, remaining_added, take, old_sketch, new_sketch,
                   inode_threshold, line_weight)
    _pair_by_permalink(remaining_deleted, remaining_added, take)
    _pair_by_similarity(remaining_deleted, remaining_added, take, old_sketch, new_sketch,
                        similarity_threshold, rename_limit, line_weight)
    moves.sort(key=lambda move: move.new.path)
    return (moves, sorted(remaining_deleted.values(), key=_path),
            sorted(remaining_added.values(), key=_path))


def _path(candidate: MoveCandidate) -> bytes:
    return candidate.path


def _pair_by_content(remaining_deleted: Remaining, remaining_added: Remaining,
                     take: Take) -> None:
    """Per content id: same file name first (in path order), then the rest in path order.

    Added candidates are indexed by (content id, file name), so `mv notes archive` with
    thousands of identical files stays linear.
    """
    added_by_id: dict[bytes, list[MoveCandidate]] = defaultdict(list)
    added_by_name: dict[tuple[bytes, bytes], list[MoveCandidate]] = defaultdict(list)
    for candidate in sorted(remaining_added.values(), key=_path):
        added_by_id[candidate.content_id].append(candidate)
        added_by_name[candidate.content_id, _basename(candidate.path)].append(candidate)
    for name_list in added_by_name.values():
        name_list.reverse()  # pop() from the end gives the first in path order
    deleted_by_id: dict[bytes, list[MoveCandidate]] = defaultdict(list)
    for candidate in sorted(remaining_deleted.values(), key=_path):
        if candidate.content_id in added_by_id:
            deleted_by_id[candidate.content_id].append(candidate)
    for content_id, olds in deleted_by_id.items():
        taken: set[bytes] = set()
        unpaired: list[MoveCandidate] = []
        for old in olds:
            same_name = added_by_name.get((content_id, _basename(old.path)))
            if same_name:
                new = same_name.pop()
                taken.add(new.path)
                take(old, new, MoveRule.CONTENT)
            else:
                unpaired.append(old)
        news = [new for new in added_by_id[content_id] if new.path not in taken]
        for old, new in zip(unpaired, news, strict=False):
            take(old, new, MoveRule.CONTENT)


def _pair_by_inode(remaining_deleted: Remaining, remaining_added: Remaining, take: Take,
                   old_sketch: SketchLookup, new_sketch: SketchLookup, threshold: float,
                   line_weight: LineWeight | None) -> None:
    """Same (dev, ino): first with the same size and mtime (rule 2a), then by similarity (2b).

    Built from path-sorted candidates, so hard links (one inode, several added paths) pair
    the same way every run.
    """
    added_by_inode: dict[tuple[int, int], list[MoveCandidate]] = defaultdict(list)
    for candidate in sorted(remaining_added.values(), key=_path):
        added_by_inode[candidate.dev, candidate.ino].append(candidate)
    olds = sorted(remaining_deleted.values(), key=_path)
    for old in olds:
        if old.size is None or old.mtime_ns is None:
            continue
        for new in added_by_inode.get((old.dev, old.ino), ()):
            if (new.path in remaining_added and new.size == old.size
                    and new.mtime_ns == old.mtime_ns
                    and not (old.hash_kind is HashKind.FULL and new.hash_kind is HashKind.FULL)):
                take(old, new, MoveRule.INODE)
                break
    for old in olds:
        if old.path not in remaining_deleted or not is_sketched(old.path):
            continue
        for new in added_by_inode.get((old.dev, old.ino), ()):
            if new.path not in remaining_added or not is_sketched(new.path):
                continue
            old_lines, new_lines = old_sketch(old), new_sketch(new)
            if old_lines is not None and new_lines is not None and (
                similarity(old_lines, new_lines, line_weight) >= threshold
            ):
                take(old, new, MoveRule.INODE)
                break


def _pair_by_permalink(remaining_deleted: Remaining, remaining_added: Remaining,
                       take: Take) -> None:
    added_by_permalink: dict[str, MoveCandidate] = {}
    for candidate in sorted(remaining_added.values(), key=_path):
        if candidate.permalink and is_markdown(candidate.path):
            added_by_permalink.setdefault(candidate.permalink, candidate)
    for old in sorted(remaining_deleted.values(), key=_path):
        if not old.permalink or not is_markdown(old.path):
            continue
        new = added_by_permalink.get(old.permalink)
        if new is not None and new.path in remaining_added:
            take(old, new, MoveRule.PERMALINK)


def _pair_by_similarity(remaining_deleted: Remaining, remaining_added: Remaining, take: Take,
                        old_sketch: SketchLookup, new_sketch: SketchLookup, threshold: float,
                        rename_limit: int, line_weight: LineWeight | None) -> None:
    """Score only pairs that can reach the threshold, best score first.

    The smaller side goes into an inverted index (line hash -> its notes); the other side is
    streamed, one sketch at a time, so memory follows the smaller side. A pair scores at least
    the threshold t only if the lines in common weigh at least t times the streamed note's own
    weight. So the streamed note's lines, rarest in the index first, are taken until those
    left weigh less than that: a note sharing none of the lines taken cannot qualify. Only
    notes sharing one of them are scored, exactly, which leaves unrelated notes and lines every
    note shares (frontmatter keys, template headings) out of the work.
    """
    olds = [c for c in sorted(remaining_deleted.values(), key=_path) if is_markdown(c.path)]
    news = [c for c in sorted(remaining_added.values(), key=_path) if is_markdown(c.path)]
    if not olds or not news or len(olds) > rename_limit or len(news) > rename_limit:
        return
    index_olds = len(olds) <= len(news)
    indexed, streamed = (olds, news) if index_olds else (news, olds)
    indexed_sketch, streamed_sketch = ((old_sketch, new_sketch) if index_olds
                                       else (new_sketch, old_sketch))
    weigh = line_weight or _unit_weight
    postings: dict[int, list[int]] = defaultdict(list)
    indexed_counts: list[Counter[int]] = []
    indexed_sizes: list[float] = []
    for number, candidate in enumerate(indexed):
        counts = line_counts(indexed_sketch(candidate))
        indexed_counts.append(counts)
        indexed_sizes.append(_size(counts, line_weight))
        for line in counts:
            postings[line].append(number)
    scored: list[tuple[float, bytes, bytes, MoveCandidate, MoveCandidate]] = []
    for candidate in streamed:
        counts = line_counts(streamed_sketch(candidate))
        weights = {line: weigh(line) for line in counts}
        size = _size(counts, line_weight)
        if size <= 0:
            continue
        for number in _could_qualify(counts, weights, size, threshold, postings):
            other = indexed_counts[number]
            shared = 0.0
            for line, count in counts.items():
                other_count = other.get(line)
                if other_count:
                    shared += min(count, other_count) * weights[line]
            score = shared / max(size, indexed_sizes[number])
            if score >= threshold and shared >= MIN_SHARED_WEIGHT:
                old, new = ((indexed[number], candidate) if index_olds
                            else (candidate, indexed[number]))
                scored.append((-score, old.path, new.path, old, new))
    scored.sort(key=lambda item: item[:3])
    for _score, old_path, new_path, old, new in scored:
        if old_path in remaining_deleted and new_path in remaining_added:
            take(old, new, MoveRule.SIMILARITY)


def _unit_weight(_line: int) -> float:
    return 1.0


def _size(counts: Counter[int], line_weight: LineWeight | None) -> float:
    """A sketch's weight: its line count without weights (an exact integer, as before)."""
    return counts.total() if line_weight is None else weighted_size(counts, line_weight)


def _could_qualify(counts: Counter[int], weights: dict[int, float], size: float,
                   threshold: float, postings: dict[int, list[int]]) -> list[int]:
    """The indexed notes that share one of the lines a qualifying partner must share (in
    ascending order): lines absent from the index come first (they narrow for free), then the
    rarest, until the lines not taken weigh less than `threshold` of `size`."""
    needed = (1.0 - threshold) * size + _BOUND_SLACK * size
    taken = 0.0
    candidates: set[int] = set()
    no_notes: list[int] = []
    for line in sorted(counts, key=lambda line: (len(postings.get(line, no_notes)), line)):
        if taken > needed:
            break
        weight = counts[line] * weights[line]
        if weight <= 0:
            continue
        taken += weight
        candidates.update(postings.get(line, no_notes))
    return sorted(candidates)
