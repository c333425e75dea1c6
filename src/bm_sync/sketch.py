"""Line-hash sketches: enough of a text file to score "moved and edited" without its old text.

A sketch is the sorted multiset of the crc32 of every non-blank, whitespace-stripped line, as
packed little-endian uint32 (400 bytes for a 100-line note). Similarity is git's `-M` idea at
line granularity: lines in common divided by the line count of the larger side, so 0.5 means
"at least half of the lines survived".

Lines are not equally telling. Notes made from one template share its frontmatter keys and
headings, so two different daily notes can have half their lines in common without being the
same note. Two discounts set such boilerplate aside:

- by shape, at once: lines that are structure rather than words (the frontmatter block but
  its title and date, headings but the note's `# title`, empty list and checkbox items,
  label-only lines such as `- Mood:`, rules, code fences, tag-only lines, lines without a
  letter or digit) are left out of the sketch. This needs no other note, so it holds for the
  first two notes made from a template. A note's title and date are kept: they differ
  between two notes of one template, and a moved note keeps them;
- by rarity, once a tree has several notes: a line's *weight* is 1 for a line at most one note
  holds, 1/n for a line n notes hold (the line census). Weighted similarity is the same ratio
  with each line counted at its weight; with every weight 1 it is the plain ratio above.

Sketches of recorded content live in a small SQLite side file keyed by content id
(`.basic-memory/sketches.db`), written only by a recording run, read only when an unpaired
deletion needs one. The index stays lean: the no-change hot path never loads a sketch. The same
file keeps the line census behind the weights (see `SketchStore.commit`).
"""

from __future__ import annotations

import re
import sqlite3
import zlib
from array import array
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path

MAX_LINES = 8192
# The line census reads at most this many live sketches (those with the smallest content ids: a
# uniform sample, since content ids are hashes). Up to that many notes, counts are exact; past
# it, a line must be in about 2/4096 of the notes to be seen as shared (50 notes of 100k).
CENSUS_SAMPLE = 4096
# A new census once this share of the last census's notes has been re-sketched since.
CENSUS_CHURN = 0.1
# The census keeps at most this many shared lines (the most shared first): ~1 MB in memory.
MAX_COMMON_LINES = 65536

# Weighted similarity needs lines in common worth at least one line no other note holds.
MIN_SHARED_WEIGHT = 1.0

LineWeight = Callable[[int], float]


# A line that is a template's shape rather than a note's words (matched whole, stripped):
_STRUCTURE = re.compile(rb"""
    [^0-9A-Za-z\x80-\xff]*                  # no letter or digit (non-ASCII bytes are text):
                                            # rules, table rules, fences, `- [ ]`, `>`
  | (?:```|~~~).*                           # a code fence with its language
  | \#{2,6}(?:\s.*)?                         # a subheading (`# Title` names the note)
  | \#[^\s#]\S*(?:\s+\#\S+)*                  # tags only: `#daily #journal`
  | (?:(?:[-*+]|\d{1,9}[.)])(?:\s+|\Z))?     # an optional list marker,
    (?:\[.\](?:\s+|\Z))?                     # an optional task checkbox,
    (?:[*_\s]*.{1,32}?:[*_\s]*)?              # then nothing, or a label waiting for its value
                                            # (`Mood:`, `**Attendees:**`, `Actions::`)
""", re.VERBOSE | re.DOTALL)
_LETTERS = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
_LABEL_ENDS = frozenset(b":*_")
_FRONTMATTER_ENDS = (b"---", b"...")
# Frontmatter keys whose values name this note (kept in the sketch); every other key is metadata
# a template may repeat (`type: daily`, `tags: [...]`).
_NAMING_KEYS = re.compile(rb"(?:title|date|created|id|aliases)\s*:\s*\S", re.IGNORECASE)


def compute_sketch(content: bytes) -> bytes:
    """The sketch of `content`: the crc32 of each line that says something (`is_structure`
    and the frontmatter block are left out). Very long files keep their MAX_LINES smallest
    line hashes."""
    crc32 = zlib.crc32
    lines = content.split(b"\n")
    body = _body_start(lines)
    hashes = sorted(crc32(stripped) for line in lines[:body]
                    if _NAMING_KEYS.match(stripped := line.strip()))
    structure = _STRUCTURE.fullmatch
    # Most lines start with a letter and end like a sentence: words, no need for the regex.
    hashes += (crc32(stripped) for line in lines[body:]
               if (stripped := line.strip()) and (
                   (stripped[0] in _LETTERS and stripped[-1] not in _LABEL_ENDS)
                   or not structure(stripped)))
    hashes.sort()
    return array("I", hashes[:MAX_LINES]).tobytes()


def is_structure(line: bytes) -> bool:
    """Whether a stripped, non-blank line is a template's shape rather than a note's words: a
    subheading, a rule or fence, an empty list or task item, a label with no value, tags only.

    Two notes made from one template share these and little else, and a note moved and
    edited keeps its sentences, so similarity is measured on the sentences (and a note's
    `# title`) alone.
    """
    return _STRUCTURE.fullmatch(line) is not None


def _body_start(lines: list[bytes]) -> int:
    """The index of the first line after a closed frontmatter block (0 if there is none).

    Frontmatter is metadata, mostly keys a template repeats (`type: daily`, `tags: [...]`);
    the permalink in it is evidence of its own (rule 3 of `renames`).
    """
    first = 0
    while first < len(lines) and not lines[first].strip():
        first += 1
    if first == len(lines) or lines[first].strip() != b"---":
        return 0
    for number in range(first + 1, len(lines)):
        if lines[number].strip() in _FRONTMATTER_ENDS:
            return number + 1
    return 0


def similarity(old_sketch: bytes, new_sketch: bytes,
               line_weight: LineWeight | None = None) -> float:
    """Lines in common / lines of the larger side, from 0.0 to 1.0 (0.0 if either is empty).

    With `line_weight`, every line counts at its weight (in common and in the sizes), so lines
    many notes share say little. Lines in common that weigh less than one line no other note
    holds (MIN_SHARED_WEIGHT) score 0.0: two notes made of nothing but template lines have a
    high ratio and no evidence. Unweighted, any line in common weighs that much.
    """
    old_counts = line_counts(old_sketch)
    new_counts = line_counts(new_sketch)
    if not old_counts or not new_counts:
        return 0.0
    if line_weight is None:
        common = sum((old_counts & new_counts).values())
        return common / max(old_counts.total(), new_counts.total())
    shared = 0.0
    for line, count in old_counts.items():
        if line in new_counts:
            shared += min(count, new_counts[line]) * line_weight(line)
    if shared < MIN_SHARED_WEIGHT:
        return 0.0
    largest = max(weighted_size(old_counts, line_weight), weighted_size(new_counts, line_weight))
    return shared / largest


def line_counts(sketch: bytes | None) -> Counter[int]:
    """How often each line hash occurs in a sketch (empty for None): what scoring many pairs
    builds once per side instead of once per pair. Keys come in ascending order."""
    return Counter(array("I", sketch)) if sketch else Counter()


def weighted_size(counts: Counter[int], line_weight: LineWeight) -> float:
    """The size of a sketch when each line counts at its weight (summed in key order)."""
    return sum(count * line_weight(line) for line, count in counts.items())


class LineWeights:
    """A line hash's weight: 1.0, or 1/n for a line the census found in n > 1 notes.

    Loads the census on first call, so handing one to `pair_moves` costs nothing when no
    pair is ever scored (the no-change path). An empty census weighs every line 1.0.
    """

    __slots__ = ("_load", "_weights")

    def __init__(self, load: Callable[[], dict[int, float]]) -> None:
        self._load = load
        self._weights: dict[int, float] | None = None

    def __call__(self, line: int) -> float:
        weights = self._weights
        if weights is None:
            weights = self._weights = self._load()
        return weights.get(line, 1.0)


class SketchStore:
    """Content id -> (permalink, sketch), in SQLite, plus the line census behind the weights.
    Read-only unless opened `writable`.

    The store is a cache derived from content: losing it, or failing to write it, only weakens
    move+edit detection (and brings back unweighted scores until the next census). No error of
    the cache file ever escapes.
    """

    def __init__(self, path: Path, *, writable: bool) -> None:
        self.path = path
        self.writable = writable
        self._connection: sqlite3.Connection | None = None
        self._pending: list[tuple[bytes, str | None, bytes]] = []
        self._puts = 0

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
                self._connection.execute(
                    "CREATE TABLE IF NOT EXISTS common_line (line INTEGER PRIMARY KEY, "
                    "notes REAL NOT NULL)")
                self._connection.execute(
                    "CREATE TABLE IF NOT EXISTS census (key TEXT PRIMARY KEY, "
                    "value INTEGER NOT NULL)")
            elif self.path.exists():
                # A real file URI: a folder named like "a?b#c" must not turn the rest of the
                # path into a query or fragment (sqlite would then create a file elsewhere).
                self._connection = sqlite3.connect(self.path.absolute().as_uri() + "?mode=ro",
                                                   uri=True, check_same_thread=False)
        except sqlite3.Error:
            self.close()
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
        if not row or not isinstance(row[1], bytes) or len(row[1]) % 4:
            return None  # absent, or not a sketch (a damaged cache file): no evidence
        return row[0], row[1]

    def line_weights(self) -> LineWeights:
        """The weight of each line hash in the tree of the last census: what `pair_moves` takes
        as `line_weight`. Lazy: the census is read on the first call of the result."""
        return LineWeights(self._common_lines)

    def _common_lines(self) -> dict[int, float]:
        connection = self._connect()
        if connection is None:
            return {}
        try:
            rows = connection.execute("SELECT line, notes FROM common_line").fetchall()
        except sqlite3.Error:
            return {}  # no census table (a file from before the census) or a damaged file
        return {line: 1.0 / notes for line, notes in rows
                if isinstance(line, int) and isinstance(notes, float) and notes > 1}

    def put(self, content_id: bytes, permalink: str | None, sketch: bytes) -> None:
        """Queue a sketch; written and committed in batches of 500, the rest by `commit()`."""
        if not self.writable:
            return
        self._pending.append((content_id, permalink, sketch))
        self._puts += 1
        if len(self._pending) >= 500:
            self._flush()

    def _flush(self) -> None:
        connection = self._connect()
        pending, self._pending = self._pending, []
        if connection is None or not pending:
            return
        try:
            connection.executemany("INSERT OR REPLACE INTO sketch VALUES (?, ?, ?)", pending)
            # Committed at once, never left open until the run's end: a batch larger than the
            # page cache spills, which takes the file's exclusive lock, and every reader of
            # the file (a rebuild's sweep reads it while this run is still open) would wait
            # on it, 5 s per read. The sketches are content-derived: one kept from a run that
            # is later killed is still true.
            connection.commit()
        except sqlite3.Error:
            self._give_up(connection)

    def _give_up(self, connection: sqlite3.Connection) -> None:
        """Drop this run's writes (disk full, file damaged or locked): the cache only lags."""
        try:
            connection.rollback()
        except sqlite3.Error:
            pass
        self.writable = False

    def commit(self, live_ids: Iterable[bytes] | None = None, live_count: int = 0) -> None:
        """Write what is queued; prune sketches of content no longer recorded when they pile up;
        take a new line census when enough notes were re-sketched since the last one.

        `live_ids` (the content ids the index now records, `live_count` of them) is iterated
        only when the store holds more than twice `live_count` (+1000), or for a census.

        The census counts, for every line hash, how many live notes hold it, over a sample of
        at most CENSUS_SAMPLE live sketches (scaled to the whole when sampled), and keeps the
        lines more than one note holds. It counts live content only: old versions of a note
        edited a hundred times must not make its own lines look like boilerplate. It runs
        after CENSUS_CHURN of the notes changed, so at 100k notes once per ~10k new sketches.
        """
        if not self.writable:
            return
        self._flush()
        connection = self._connect()
        if connection is None or not self.writable:
            return
        try:
            self._commit(connection, live_ids, live_count)
        except sqlite3.Error:
            self._give_up(connection)
        self._puts = 0

    def _commit(self, connection: sqlite3.Connection, live_ids: Iterable[bytes] | None,
                live_count: int) -> None:
        (stored,) = connection.execute("SELECT count(*) FROM sketch").fetchone()
        census = dict(connection.execute("SELECT key, value FROM census").fetchall())
        churn = census.get("churn", 0) + self._puts
        population = census.get("population")
        prune = stored > 2 * live_count + 1000
        recount = stored > 0 and (population is None
                                  or churn >= max(1, CENSUS_CHURN * population))
        if live_ids is not None and (prune or recount):
            # Sorted: B-tree inserts in key order, and the census's sample in one pass.
            live = sorted(set(live_ids))
            if prune:
                connection.execute("CREATE TEMP TABLE live (content_id BLOB PRIMARY KEY)")
                connection.executemany("INSERT INTO live VALUES (?)",
                                       ((content_id,) for content_id in live))
                connection.execute(
                    "DELETE FROM sketch WHERE content_id NOT IN (SELECT content_id FROM live)")
                connection.execute("DROP TABLE live")
            if recount:
                self._take_census(connection, live)
                churn = 0
        connection.execute("INSERT OR REPLACE INTO census VALUES ('churn', ?)", (churn,))
        connection.commit()

    def _take_census(self, connection: sqlite3.Connection, live: list[bytes]) -> None:
        """Count the notes holding each line, over the first CENSUS_SAMPLE live sketches in
        content id order; the counts are scaled by how many live ids that sample covered."""
        notes_with: Counter[int] = Counter()
        sampled = examined = 0
        chunk = 500
        while examined < len(live) and sampled < CENSUS_SAMPLE:
            ids = live[examined:examined + chunk]
            rows = connection.execute(
                "SELECT content_id, lines FROM sketch WHERE content_id IN "
                f"({','.join('?' * len(ids))}) ORDER BY content_id", ids).fetchall()
            examined += len(ids)
            for row_id, lines in rows:
                if isinstance(lines, bytes) and len(lines) % 4 == 0:
                    notes_with.update(set(memoryview(lines).cast("I")))
                    sampled += 1
                    if sampled == CENSUS_SAMPLE:  # the sample covers the ids up to this one
                        examined += bisect_right(ids, row_id) - len(ids)
                        break
        scale = len(live) / examined if examined < len(live) else 1.0
        shared = sorted((-count, line) for line, count in notes_with.items() if count > 1)
        connection.execute("DELETE FROM common_line")
        connection.executemany("INSERT INTO common_line VALUES (?, ?)",
                               ((line, -negative * scale)
                                for negative, line in shared[:MAX_COMMON_LINES]))
        population = round(sampled * scale)
        connection.execute("INSERT OR REPLACE INTO census VALUES ('population', ?)",
                           (population,))

    def close(self) -> None:
        if self._connection is not None:
            try:
                self._connection.close()
            except sqlite3.Error:
                pass
            self._connection = None
