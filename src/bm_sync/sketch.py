"""Line-hash sketches: enough of a text file to score "moved and edited" without its old text.

A sketch is the sorted multiset of the crc32 of every non-blank, whitespace-stripped line, as
packed little-endian uint32 (400 bytes for a 100-line note). Similarity is git's `-M` idea at
line granularity: lines in common divided by the line count of the larger side, so 0.5 means
"at least half of the lines survived".

Sketches of recorded content live in a small SQLite side file keyed by content id
(`.basic-memory/sketches.db`), written only by a recording run, read only when an unpaired
deletion needs one. The index stays lean: the no-change hot path never loads a sketch.
"""

from __future__ import annotations

import sqlite3
import zlib
from array import array
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

MAX_LINES = 8192


def compute_sketch(content: bytes) -> bytes:
    """The sketch of `content`; very long files keep their MAX_LINES smallest line hashes."""
    crc32 = zlib.crc32
    hashes = sorted(crc32(stripped) for line in content.split(b"\n")
                    if (stripped := line.strip()))
    return array("I", hashes[:MAX_LINES]).tobytes()


def similarity(old_sketch: bytes, new_sketch: bytes) -> float:
    """Lines in common / lines of the larger side, from 0.0 to 1.0 (0.0 if either is empty)."""
    old_lines = array("I", old_sketch)
    new_lines = array("I", new_sketch)
    if not old_lines or not new_lines:
        return 0.0
    common = sum((Counter(old_lines) & Counter(new_lines)).values())
    return common / max(len(old_lines), len(new_lines))


def line_counts(sketch: bytes | None) -> Counter[int]:
    """How often each line hash occurs in a sketch (empty for None): what scoring many pairs
    builds once per side instead of once per pair."""
    return Counter(array("I", sketch)) if sketch else Counter()


class SketchStore:
    """Content id -> (permalink, sketch), in SQLite. Read-only unless opened `writable`.

    The store is a cache derived from content: losing it only weakens move+edit detection.
    """

    def __init__(self, path: Path, *, writable: bool) -> None:
        self.path = path
        self.writable = writable
        self._connection: sqlite3.Connection | None = None
        self._pending: list[tuple[bytes, str | None, bytes]] = []

    def _connect(self) -> sqlite3.Connection | None:
        if self._connection is not None:
            return self._connection
        try:
            # One run uses the store from whichever worker thread iterates it, never from two
            # at once: the same-thread check would only get in the way.
            if self.writable:
                self._connection = sqlite3.connect(self.path, check_same_thread=False)
                self._connection.execute(
                    "CREATE TABLE IF NOT EXISTS sketch (content_id BLOB PRIMARY KEY, "
                    "permalink TEXT, lines BLOB NOT NULL) WITHOUT ROWID")
            elif self.path.exists():
                # A real file URI: a folder named like "a?b#c" must not turn the rest of the
                # path into a query or fragment (sqlite would then create a file elsewhere).
                self._connection = sqlite3.connect(self.path.absolute().as_uri() + "?mode=ro",
                                                   uri=True, check_same_thread=False)
        except sqlite3.Error:
            self._connection = None
        return self._connection

    def get(self, content_id: bytes) -> tuple[str | None, bytes] | None:
        """The recorded permalink and sketch of a content id, or None."""
        for pending_id, permalink, lines in self._pending:
            if pending_id == content_id:
                return permalink, lines
        connection = self._connect()
        if connection is None:
            return None
        try:
            row = connection.execute(
                "SELECT permalink, lines FROM sketch WHERE content_id = ?", (content_id,)
            ).fetchone()
        except sqlite3.Error:
            return None
        return (row[0], row[1]) if row else None

    def put(self, content_id: bytes, permalink: str | None, sketch: bytes) -> None:
        """Queue a sketch; written in batches, committed by `commit()`."""
        if not self.writable:
            return
        self._pending.append((content_id, permalink, sketch))
        if len(self._pending) >= 500:
            self._flush()

    def _flush(self) -> None:
        connection = self._connect()
        if connection is not None and self._pending:
            connection.executemany(
                "INSERT OR REPLACE INTO sketch VALUES (?, ?, ?)", self._pending)
        self._pending.clear()

    def commit(self, live_ids: Iterable[bytes] | None = None, live_count: int = 0) -> None:
        """Write what is queued; prune sketches of content no longer recorded when they pile up.

        `live_ids` is only iterated when the store holds more than twice `live_count` (+1000).
        """
        if not self.writable:
            return
        self._flush()
        connection = self._connect()
        if connection is None:
            return
        (stored,) = connection.execute("SELECT count(*) FROM sketch").fetchone()
        if live_ids is not None and stored > 2 * live_count + 1000:
            connection.execute("CREATE TEMP TABLE live (content_id BLOB PRIMARY KEY)")
            connection.executemany("INSERT OR IGNORE INTO live VALUES (?)",
                                   ((content_id,) for content_id in live_ids))
            connection.execute(
                "DELETE FROM sketch WHERE content_id NOT IN (SELECT content_id FROM live)")
            connection.execute("DROP TABLE live")
        connection.commit()

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
