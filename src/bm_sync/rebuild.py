"""A rebuild's sweep: settle the entities whose file the new index does not track.

A rebuild starts from an empty baseline (why one happens: `bm_sync.runs`), so a file moved while
the index was lost, or behind after a crash, came back as a new row. The detector's own move
rules (`renames.pair_moves`) pair those stale rows with the rows inserted since the last
completed sync: same content id, same frontmatter permalink, or similar lines (the recorded
sketch of the stale row's content against the file on disk). The inode rule needs the lost
index, so it sits this one out. A paired old row keeps its id, incoming relations and history
and takes the new row's path and content (`db.writes.adopt_entity`); every other stale row is
deleted. Both are recorded in the run's history. Rows below a folder the scan could not examine
are kept whatever: a failure never turns into a deletion.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from bm_sync.changes import Change, ChangeKind, HashKind
from bm_sync.db import runs as run_rows
from bm_sync.db import search as search_rows
from bm_sync.db import writes
from bm_sync.db.session import ProjectDatabase
from bm_sync.detector import DetectionRun
from bm_sync.frontmatter import frontmatter_permalink
from bm_sync.hashing import is_markdown
from bm_sync.renames import MoveCandidate, pair_moves
from bm_sync.runs import RunLog
from bm_sync.sketch import SketchStore, compute_sketch

ADOPTIONS_PER_TRANSACTION = 200
DELETIONS_PER_TRANSACTION = 500
PERMALINK_HEADS_MAX = 10_000  # the permalink rule reads each new note's head: up to this many
PERMALINK_HEAD_BYTES = 64 << 10
SKETCH_BYTES = 1 << 20


@dataclass
class SweepResult:
    """(old path, new path) moves, deleted paths, and stale paths kept (below an unexamined
    folder): all sorted."""

    moves: list[tuple[str, str]] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)


async def sweep(database: ProjectDatabase, run_log: RunLog, root: Path, sketch_file: Path,
                tracked: set[str], unexamined: tuple[str, ...] = ()) -> SweepResult:
    """Pair, adopt and delete the rows not in `tracked` (see the module doc)."""
    project_id = database.project_id
    async with database.sessions() as session:
        untracked = {path: checksum for path, checksum in
                     (await writes.checksums(session, project_id)).items()
                     if path not in tracked}
    result = SweepResult()
    result.kept = sorted(path for path in untracked if unexamined and path.startswith(unexamined))
    stale = {path: checksum for path, checksum in untracked.items() if path not in result.kept}
    if not stale:
        return result
    since = run_log.last_completed_at or datetime.fromtimestamp(0, UTC)
    async with database.sessions() as session:
        recent = await writes.checksums(session, project_id, created_since=since)
        fresh = {path: checksum for path, checksum in recent.items() if path not in stale}
        # A stale row that is itself recent was inserted by an interrupted run: no completed
        # sync ever confirmed its identity, so it is swept, never the one that lives on.
        confirmed = {path: checksum for path, checksum in stale.items() if path not in recent}
        earlier = await run_rows.recorded_contents(session, project_id, list(confirmed))
    result.moves = await asyncio.to_thread(pair_stale_rows, root, sketch_file, confirmed,
                                           fresh, earlier)
    moved_from = {old for old, _new in result.moves}
    result.deleted = sorted(path for path in stale if path not in moved_from)
    for start in range(0, len(result.moves), ADOPTIONS_PER_TRANSACTION):
        chunk = result.moves[start:start + ADOPTIONS_PER_TRANSACTION]
        async with database.sessions() as session, session.begin():
            await run_log.mark_in_progress(session)
            unsettled = await writes.wanted_permalinks(session, project_id)
            for old, new in chunk:
                # The old row keeps its id and takes the new row's content: its document too,
                # and the permalink it wants if it did not get it (the row is now at `new`).
                ids = await search_rows.ids_at(session, project_id, [old, new])
                if old in ids and new in ids:
                    await search_rows.move_doc(session, project_id, ids[new], ids[old])
                await writes.adopt_entity(session, project_id, old, new)
                wants = {new: unsettled[new]} if new in unsettled else {}
                await writes.set_wanted_permalinks(session, project_id, wants,
                                                   [] if wants else [new])
            await run_log.forget_added(session, [new for _old, new in chunk])
            await run_log.record(session, [Change(ChangeKind.MOVED, new, old, fresh[new])
                                           for old, new in chunk])
    for start in range(0, len(result.deleted), DELETIONS_PER_TRANSACTION):
        deleted = result.deleted[start:start + DELETIONS_PER_TRANSACTION]
        async with database.sessions() as session, session.begin():
            await run_log.mark_in_progress(session)
            await search_rows.delete_docs_at(session, project_id, deleted)
            await writes.delete_entities(session, project_id, deleted)
            await run_log.record(session, [Change(ChangeKind.DELETED, path) for path in deleted])
    return result


async def keep_in_index(database: ProjectDatabase, run: DetectionRun,
                        paths: list[str]) -> None:
    """Give the rows at `paths` (files that failed, or below an unexamined folder) smudged
    entries in the new index, from what their rows say, so the index and the database keep
    counting the same files."""
    async with database.sessions() as session:
        stored = await writes.stored_files(session, database.project_id, paths)
    for row in stored:
        if row.checksum and len(row.checksum) == 40:
            run.keep_unexamined(row.path, row.checksum, HashKind(row.checksum_kind or "full"),
                                row.size or 0, int((row.mtime or 0) * 1e9))


def pair_stale_rows(root: Path, sketch_file: Path, stale: dict[str, str | None],
                    fresh: dict[str, str | None],
                    earlier: dict[str, list[str]]) -> list[tuple[str, str]]:
    """(old path, new path) moves among stale and fresh rows, by `renames.pair_moves`.

    A stale row's own checksum may come from an edit a killed sync committed, whose sketch was
    never recorded: the content ids its history recorded (`earlier`, newest first) still tell
    what its lines looked like.
    """
    if not fresh:
        return []
    sketches = SketchStore(sketch_file, writable=False)
    read_heads = len(fresh) <= PERMALINK_HEADS_MAX

    def new_permalink(path: str) -> str | None:
        if not read_heads or not is_markdown(_encoded(path)):
            return None
        try:
            with open(root / path, "rb") as note:
                return frontmatter_permalink(note.read(PERMALINK_HEAD_BYTES))
        except OSError:
            return None

    def old_sketch(candidate: MoveCandidate) -> bytes | None:
        for checksum in (candidate.content_id.hex(),
                         *earlier.get(os.fsdecode(candidate.path), ())):
            known = sketches.get(_content_id(checksum))
            if known is not None:
                return known[1]
        return None

    def new_sketch(candidate: MoveCandidate) -> bytes | None:
        try:
            with open(root / os.fsdecode(candidate.path), "rb") as note:
                return compute_sketch(note.read(SKETCH_BYTES))
        except OSError:
            return None

    try:
        # dev/ino -1 and -2: never equal, the inode rule cannot apply without the index.
        olds = []
        for path, checksum in stale.items():
            old_id = _content_id(checksum)
            known = sketches.get(old_id) if old_id else None
            olds.append(MoveCandidate(_encoded(path), old_id, -1, -1,
                                      permalink=known[0] if known else None))
        news = [MoveCandidate(_encoded(path), _content_id(checksum), -2, -2,
                              permalink=new_permalink(path))
                for path, checksum in fresh.items()]
        # Few stale rows against many new ones (everything an interrupted rebuild inserted)
        # costs stale x postings with the inverted index: the cap applies to the stale side.
        limit = max(1000, len(news)) if len(olds) <= 1000 and len(news) <= 50_000 else 1000
        moves, _deleted, _added = pair_moves(
            olds, news, old_sketch=old_sketch, new_sketch=new_sketch, rename_limit=limit,
            line_weight=sketches.line_weights())
    finally:
        sketches.close()
    return [(os.fsdecode(move.old.path), os.fsdecode(move.new.path)) for move in moves]


def _content_id(checksum: str | None) -> bytes:
    try:
        return bytes.fromhex(checksum or "")
    except ValueError:
        return b""


def _encoded(path: str) -> bytes:
    return path.encode("utf-8", "surrogateescape")
