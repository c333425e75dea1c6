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

This module is pure: sketches come through callables, so it never touches the disk itself.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from bm_sync.changes import HashKind
from bm_sync.hashing import is_markdown, is_sketched
from bm_sync.sketch import line_counts, similarity

SketchLookup = Callable[["MoveCandidate"], "bytes | None"]


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
) -> tuple[list[Move], list[MoveCandidate], list[MoveCandidate]]:
    """Return (moves, still deleted, still added), each sorted by path."""
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
                   inode_threshold)
    _pair_by_permalink(remaining_deleted, remaining_added, take)
    _pair_by_similarity(remaining_deleted, remaining_added, take, old_sketch, new_sketch,
                        similarity_threshold, rename_limit)
    moves.sort(key=lambda move: move.new.path)
    return (moves, sorted(remaining_deleted.values(), key=_path),
            sorted(remaining_added.values(), key=_path))


def _path(candidate: MoveCandidate) -> bytes:
    return candidate.path


def _pair_by_content(remaining_deleted, remaining_added, take) -> None:
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
        unpaired = []
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


def _pair_by_inode(remaining_deleted, remaining_added, take, old_sketch, new_sketch,
                   threshold) -> None:
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
                similarity(old_lines, new_lines) >= threshold
            ):
                take(old, new, MoveRule.INODE)
                break


def _pair_by_permalink(remaining_deleted, remaining_added, take) -> None:
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


def _pair_by_similarity(remaining_deleted, remaining_added, take, old_sketch, new_sketch,
                        threshold, rename_limit) -> None:
    """Score only pairs that share a line, through an inverted index line hash -> new notes.

    Each side's line counts are built once; the lines in common of every sharing pair are
    summed from the postings (sum of min counts: the multiset intersection `similarity`
    computes), so unrelated notes cost nothing.
    """
    olds = [c for c in sorted(remaining_deleted.values(), key=_path) if is_markdown(c.path)]
    news = [c for c in sorted(remaining_added.values(), key=_path) if is_markdown(c.path)]
    if not olds or not news or len(olds) > rename_limit or len(news) > rename_limit:
        return
    postings: dict[int, list[tuple[int, int]]] = defaultdict(list)
    new_sizes: list[int] = []
    for number, new in enumerate(news):
        counts = line_counts(new_sketch(new))
        new_sizes.append(sum(counts.values()))
        for line, count in counts.items():
            postings[line].append((number, count))
    scored = []
    for old in olds:
        counts = line_counts(old_sketch(old))
        if not counts:
            continue
        old_size = sum(counts.values())
        common: Counter[int] = Counter()
        for line, count in counts.items():
            for number, new_count in postings.get(line, ()):
                common[number] += min(count, new_count)
        for number, shared in common.items():
            score = shared / max(old_size, new_sizes[number])
            if score >= threshold:
                new = news[number]
                scored.append((-score, old.path, new.path, old, new))
    scored.sort(key=lambda item: item[:3])
    for _score, old_path, new_path, old, new in scored:
        if old_path in remaining_deleted and new_path in remaining_added:
            take(old, new, MoveRule.SIMILARITY)
