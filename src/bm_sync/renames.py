"""Pairing deleted and added paths into moves, so a moved note keeps its identity.

Rules, applied in this order to what is still unpaired (each rule is stronger evidence than the
next, so it gets first pick):

1. CONTENT: identical content id (a pure rename). Duplicates pair deterministically: same file
   name first, then in path order. `mv notes archive` is N such moves.
2. INODE: same (device, inode) and still similar (>= `inode_threshold` of lines in common) —
   renamed then edited in place. Only for sketched (text) files: a bare inode match is not
   enough, because file systems reuse the inode of a deleted file for the next new one.
3. PERMALINK: markdown on both sides with the same frontmatter `permalink`.
4. SIMILARITY: markdown with at least `similarity_threshold` (git's -M50%) of lines in common,
   best score first. Like git's `diff.renameLimit`, skipped when either side has more than
   `rename_limit` candidates, to keep the run from going quadratic.

This module is pure: sketches come through callables, so it never touches the disk itself.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from bm_sync.hashing import is_markdown, is_sketched
from bm_sync.sketch import similarity

SketchLookup = Callable[["MoveCandidate"], "bytes | None"]


class MoveRule(StrEnum):
    CONTENT = "content"
    INODE = "inode"
    PERMALINK = "permalink"
    SIMILARITY = "similarity"


@dataclass(frozen=True, slots=True)
class MoveCandidate:
    """A deleted or added path with what the rules look at."""

    path: bytes
    content_id: bytes
    dev: int
    ino: int
    permalink: str | None = None


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
    added_by_id: dict[bytes, list[MoveCandidate]] = defaultdict(list)
    for candidate in sorted(remaining_added.values(), key=_path):
        added_by_id[candidate.content_id].append(candidate)
    deleted_by_id: dict[bytes, list[MoveCandidate]] = defaultdict(list)
    for candidate in sorted(remaining_deleted.values(), key=_path):
        if candidate.content_id in added_by_id:
            deleted_by_id[candidate.content_id].append(candidate)
    for content_id, olds in deleted_by_id.items():
        news = added_by_id[content_id]
        for old in list(olds):
            same_name = next((new for new in news if _basename(new.path) == _basename(old.path)),
                             None)
            if same_name is not None:
                take(old, same_name, MoveRule.CONTENT)
                olds.remove(old)
                news.remove(same_name)
        for old, new in zip(olds, news, strict=False):
            take(old, new, MoveRule.CONTENT)


def _pair_by_inode(remaining_deleted, remaining_added, take, old_sketch, new_sketch,
                   threshold) -> None:
    added_by_inode = {(candidate.dev, candidate.ino): candidate
                      for candidate in remaining_added.values() if is_sketched(candidate.path)}
    for old in sorted(remaining_deleted.values(), key=_path):
        new = added_by_inode.get((old.dev, old.ino))
        if new is None or new.path not in remaining_added or not is_sketched(old.path):
            continue
        old_lines, new_lines = old_sketch(old), new_sketch(new)
        if old_lines is not None and new_lines is not None and (
            similarity(old_lines, new_lines) >= threshold
        ):
            take(old, new, MoveRule.INODE)


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
    olds = [c for c in sorted(remaining_deleted.values(), key=_path) if is_markdown(c.path)]
    news = [c for c in sorted(remaining_added.values(), key=_path) if is_markdown(c.path)]
    if not olds or not news or len(olds) > rename_limit or len(news) > rename_limit:
        return
    old_sketches = [(old, old_sketch(old)) for old in olds]
    new_sketches = [(new, new_sketch(new)) for new in news]
    scored = []
    for old, old_lines in old_sketches:
        if not old_lines:
            continue
        for new, new_lines in new_sketches:
            if new_lines:
                score = similarity(old_lines, new_lines)
                if score >= threshold:
                    scored.append((-score, old.path, new.path, old, new))
    scored.sort(key=lambda item: item[:3])
    for _score, old_path, new_path, old, new in scored:
        if old_path in remaining_deleted and new_path in remaining_added:
            take(old, new, MoveRule.SIMILARITY)
