"""Full-text search: the records `SyncEngine.search` and `SyncEngine.show` return, the words
of a text, and the indexed document of a note (what the sync writes). Pure Python, standard
library only: no SQL here (that is `bm_sync.db.search`), so both databases index and query
exactly the same words. The query language is `bm_sync.search_query`; reading the index and
building hits and snippets, `bm_sync.search_reader`.

Words are runs of letters and digits (`[^\\W_]+`), folded (lower case, accents removed: `Café`
is `cafe`), as FTS5's `unicode61 remove_diacritics 2` tokenizer splits and folds them; the
PostgreSQL side is sent the words already split and folded, so its parser cannot disagree.
Chinese, Japanese and Korean runs have no spaces between words: they are also indexed as
overlapping two-character pieces (`東京都` -> `東京 京都`, the `cjk` column), and a query run
becomes the phrase of its pieces, so a word of any length inside a run is found.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
import zlib
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import chain, islice
from typing import Any

from bm_sync.errors import BmSyncError

# The indexed columns, in the order FTS5 holds them (and `SearchDoc.values`).
COLUMNS = ("title", "body", "observations", "tags", "permalink", "path", "cjk", "scope")
BODY_MAX_CHARS = 1 << 20  # PostgreSQL's tsvector holds 1 MB; a longer note is searched in part

WORD = re.compile(r"[^\W_]+")
_ASCII_SEPARATORS = str.maketrans(dict.fromkeys(
    [chr(code) for code in range(128) if not chr(code).isalnum()], " "))
# Scripts written without spaces between words (and Hangul, whose words take particles).
_CJK_RANGES = ("\u1100-\u11ff\u3040-\u30ff\u3130-\u318f\u3400-\u4dbf\u4e00-\u9fff"
               "\uac00-\ud7af\uf900-\ufaff")
CJK_RUN = re.compile(f"[{_CJK_RANGES}]+")
_FRONTMATTER = re.compile(r"---[ \t]*\r?\n.*?^(?:---|\.\.\.)[ \t]*\r?$", re.DOTALL | re.MULTILINE)
_HASH_LETTERS = str.maketrans("0123456789abcdef", "abcdefghijklmnop")


class SearchQueryError(ValueError):
    """A malformed query: one line that says what is wrong and at which column (1-based)."""


class SearchUnavailable(BmSyncError):
    """The folder has no search index (never synced, or synced with search off)."""


class NoteNotFound(BmSyncError):
    """`show` found no note, or several, for the reference it was given."""


# -- records ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SearchHit:
    """One ranked hit: the note (or file), its score (higher is better) and a snippet with
    the matched words in `[brackets]` (empty for a file that is not a note)."""

    path: str
    title: str
    permalink: str | None
    type: str
    score: float
    snippet: str

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "title": self.title, "permalink": self.permalink,
                "type": self.type, "score": round(self.score, 6), "snippet": self.snippet}


@dataclass(frozen=True, slots=True)
class SearchResult:
    """The hits of a query, best first. `ranking` is "full" when every match was ranked, or
    "bounded" when the query matched more than `SEARCH_CAP` notes: then the newest matches
    were ranked (title, tag, path and observation matches first), not all of them."""

    query: str
    hits: list[SearchHit]
    ranking: str = "full"

    def to_json(self) -> dict[str, Any]:
        return {"query": self.query, "ranking": self.ranking,
                "hits": [hit.to_json() for hit in self.hits]}


@dataclass(frozen=True, slots=True)
class ObservationView:
    category: str
    content: str
    tags: tuple[str, ...]
    context: str | None

    def to_json(self) -> dict[str, Any]:
        return {"category": self.category, "content": self.content, "tags": list(self.tags),
                "context": self.context}


@dataclass(frozen=True, slots=True)
class RelationView:
    """An outgoing relation: its target as written, and the path it resolved to (or None)."""

    relation_type: str
    target: str
    target_path: str | None
    context: str | None

    def to_json(self) -> dict[str, Any]:
        return {"type": self.relation_type, "target": self.target,
                "target_path": self.target_path, "context": self.context}


@dataclass(frozen=True, slots=True)
class Backlink:
    """A relation into the note: resolved (it points at the note), or unresolved but naming
    it (its title, permalink or path, in another case: `[[target]]` for "Target")."""

    from_path: str
    from_title: str
    relation_type: str
    resolved: bool

    def to_json(self) -> dict[str, Any]:
        return {"from_path": self.from_path, "from_title": self.from_title,
                "type": self.relation_type, "resolved": self.resolved}


@dataclass(frozen=True, slots=True)
class NoteView:
    """`bm show`: a note's entity row, its observations, outgoing relations and backlinks."""

    path: str
    title: str
    permalink: str | None
    type: str
    tags: tuple[str, ...]
    observations: list[ObservationView] = field(default_factory=list)
    relations: list[RelationView] = field(default_factory=list)
    backlinks: list[Backlink] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "title": self.title, "permalink": self.permalink,
                "type": self.type, "tags": list(self.tags),
                "observations": [item.to_json() for item in self.observations],
                "relations": [item.to_json() for item in self.relations],
                "backlinks": [item.to_json() for item in self.backlinks]}


# -- words ------------------------------------------------------------------------------------


def fold(text: str) -> str:
    """Lower case without accents (`Crème` -> `creme`), as unicode61 remove_diacritics 2."""
    if text.isascii():
        return text.lower()
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(char for char in decomposed if not unicodedata.combining(char)).casefold()


def words(text: str) -> list[str]:
    """The runs of letters and digits (`WORD`); for ASCII text (most notes) by mapping every
    other character to a space and splitting, a third of the regex's time."""
    if text.isascii():
        return text.translate(_ASCII_SEPARATORS).split()
    return WORD.findall(text)


def cjk_bigrams(text: str) -> str:
    """The overlapping two-character pieces of every CJK run (a lone character as itself)."""
    if text.isascii():
        return ""
    pieces: list[str] = []
    for run in CJK_RUN.findall(text):
        if len(run) == 1:
            pieces.append(run)
        else:
            pieces.extend(run[index:index + 2] for index in range(len(run) - 1))
    return " ".join(pieces)


def scope_token(kind: str, value: str) -> str:
    """A filter token: a kind letter and a hash of the folded value, in letters only, so no
    tokenizer splits it (`machine-learning`, `a/b`) and no word can be mistaken for it."""
    digest = hashlib.sha1(fold(value).encode("utf-8")).hexdigest()[:12]
    return kind + digest.translate(_HASH_LETTERS)


def project_token(project_id: int) -> str:
    return "p" + format(project_id, "x").translate(_HASH_LETTERS)


def folders_of(path: str) -> list[str]:
    """Every folder `path` is in: `a/b/c.md` -> `a`, `a/b`."""
    parts = path.split("/")[:-1]
    return ["/".join(parts[:end]) for end in range(1, len(parts) + 1)]


# -- the indexed document ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SearchDoc:
    """What is indexed for one entity: the eight column values (`COLUMNS`) and `z`, the
    compressed JSON of exactly those values. SQLite's contentless index can only forget a row
    when given the values it indexed (`z` keeps them), and snippets are cut from them."""

    values: tuple[str, ...]
    z: bytes

    @classmethod
    def of(cls, values: Sequence[str]) -> SearchDoc:
        return cls(tuple(values), zlib.compress(json.dumps(list(values)).encode("utf-8"), 1))

    @staticmethod
    def unpack(z: bytes) -> tuple[str, ...]:
        return tuple(json.loads(zlib.decompress(z)))


def note_body(text: str) -> str:
    """The text after a frontmatter block that starts on the first line (the note's words
    without its metadata, which is indexed field by field)."""
    if text.startswith("\ufeff"):
        text = text[1:]
    if text.startswith("---"):
        block = _FRONTMATTER.match(text)
        if block is not None:
            return text[block.end():]
    return text


def search_doc(*, project_id: int, path: str, title: str, entity_type: str,
               permalink: str | None, tags: Iterable[str] = (), body: str = "",
               categories: Iterable[str] = ()) -> SearchDoc:
    """The document of one entity. The body keeps its observation lines (their text, category
    and tags are words of the note); `observations` holds the categories once more, so a
    category ranks like a heading word."""
    tags = tuple(tags)
    body = body[:BODY_MAX_CHARS].replace("\0", "")
    scope = [project_token(project_id), scope_token("t", entity_type)]
    scope.extend(scope_token("g", tag) for tag in dict.fromkeys(fold(tag) for tag in tags))
    scope.extend(scope_token("d", folder) for folder in folders_of(path))
    values = (title, body, " ".join(dict.fromkeys(categories)), " ".join(tags),
              permalink or "", path, cjk_bigrams(f"{title}\n{body}"), " ".join(scope))
    return SearchDoc.of(values)


# PostgreSQL's tsvector limits (src/include/tsearch/ts_type.h), as its functions apply them.
PG_MAX_POSITION = 16383  # MAXENTRYPOS - 1: a later position is stored as this one
PG_PARSED_POSITIONS = 255  # to_tsvector keeps a lexeme's first 255 positions
PG_MERGED_POSITIONS = 256  # MAXNUMPOS: `||` keeps up to 256
PG_MAX_WORD_BYTES = 2046  # to_tsvector skips a longer word, and gives it no position
PG_MAX_DATA_BYTES = (1 << 20) - 1  # MAXSTRPOS: lexemes and positions; more is an error
_LONG_WORD_CHARS = PG_MAX_WORD_BYTES // 4  # a word of fewer characters fits in any encoding
_PARSED_BYTES = 2 * PG_PARSED_POSITIONS  # a position takes two bytes
_MERGED_BYTES = 2 * PG_MERGED_POSITIONS
_entries: list[bytes] | None = None  # (position << 2 | weight code) -> its two bytes
# The bytes between a lexeme and its positions (the lexeme's NUL, the count), by their length.
_COUNTS = [b"\0" + (length // 2).to_bytes(2, "big") for length in range(_MERGED_BYTES + 1)]


def _entry_table() -> list[bytes]:
    """Each position and weight as tsvector's binary format holds it (`WordEntryPos`: the
    weight code in the top two bits, the position below), built on first use."""
    global _entries
    if _entries is None:  # bound once whole: two threads' first uses build it twice, no harm
        _entries = [((entry & 3) << 14 | entry >> 2).to_bytes(2, "big")
                    for entry in range((PG_MAX_POSITION + 1) << 2)]
    return _entries


def _last_position(held: bytes) -> int:
    return int.from_bytes(held[-2:], "big") & PG_MAX_POSITION


def postgres_tsvector(values: Sequence[str]) -> bytes:
    """The document's tsvector in PostgreSQL's binary format (`tsvectorrecv`): exactly what
    `setweight(to_tsvector('simple', a), 'A') || ... || to_tsvector('simple', d) ||
    array_to_tsvector(scope)` makes of the words of each column joined by spaces (the
    server's parser then never runs: it split `1e5x`, which no query could match;
    tests/test_tsv.py compares them with the reference in tests/helpers_tsv.py), with
    PostgreSQL's limits applied as its functions apply them: positions stop at 16383, a
    lexeme keeps 255 positions per column and 256 in all, a word over 2046 bytes is skipped.
    Where the server refused the document (over 1 MB of lexemes and positions: the note
    failed), the lexemes that come last (the body's) are left out until it fits.

    A lexeme's positions are held as one `bytes` (two bytes each, ascending), not a list:
    no object per position, nothing for the garbage collector to track."""
    title, body, observations, tags, permalink, path, cjk, scope = values
    merged: dict[str, bytes] = {}  # lexeme -> its positions (`_entry_table`), ascending
    top = 0  # the highest position held: what `||` shifts the next column's positions by
    for weight, text in ((3, title), (2, f"{tags} {permalink}"),
                         (1, f"{observations} {path} {cjk}"), (0, body)):
        column = words(fold(text))
        if column and max(map(len, column)) > _LONG_WORD_CHARS:
            column = [word for word in column if len(word.encode("utf-8")) <= PG_MAX_WORD_BYTES]
        if not column:
            continue
        if top + len(column) < PG_MAX_POSITION:
            top = _append_column(merged, column, top, weight)
        else:
            top = _concatenate(merged, _parsed(column), top, weight)
    filters = ["#" + token for token in dict.fromkeys(scope.split())]
    lexemes = _within_size(merged, filters)
    lexemes.update(dict.fromkeys(filters, b""))
    return tsvector_binary(lexemes)


def _append_column(merged: dict[str, bytes], column: list[str], top: int, weight: int) -> int:
    """`_concatenate(merged, _parsed(column), top, weight)` when no position reaches 16383
    (nearly every note): the entries are made shifted, in one pass over the words."""
    grouped: dict[str, bytes] = {}
    get = grouped.get
    exact = True  # every word's position is held: the last one is the highest
    first = ((top + 1) << 2) | weight
    for entry, word in zip(_entry_table()[first:first + (len(column) << 2):4], column,
                           strict=True):
        held = get(word)
        if held is None:
            grouped[word] = entry
        elif len(held) < _PARSED_BYTES:
            grouped[word] = held + entry
        else:
            exact = False
    for word in grouped.keys() & merged.keys():
        held = merged[word] + grouped[word]
        if len(held) > _MERGED_BYTES:
            exact = False
            held = held[:_MERGED_BYTES]
        grouped[word] = held
    merged.update(grouped)
    if exact:
        return top + len(column)
    return max(map(_last_position, merged.values()))


def _parsed(column: list[str]) -> dict[str, list[int]]:
    """lexeme -> positions, as `to_tsvector('simple', " ".join(column))` keeps them."""
    positions: dict[str, list[int]] = defaultdict(list)
    for position, word in enumerate(column, 1):
        positions[word].append(position)
    for word, held in positions.items():
        held = held[:PG_PARSED_POSITIONS]
        if held[-1] > PG_MAX_POSITION:  # the first clamped position is the last one kept
            held = [*(kept for kept in held if kept < PG_MAX_POSITION), PG_MAX_POSITION]
        positions[word] = held
    return positions


def _concatenate(merged: dict[str, bytes], column: dict[str, list[int]], top: int,
                 weight: int) -> int:
    """`merged || setweight(column, weight)`: the column's positions shifted by `top` (the
    highest position `merged` holds), clamped; a lexeme in both keeps its positions and then
    the column's, up to 256 and never past 16383. Returns the new highest position."""
    entries = _entry_table()
    for word, positions in column.items():
        held = merged.get(word, b"")
        for position in positions:
            if len(held) >= _MERGED_BYTES or (held and _last_position(held) == PG_MAX_POSITION):
                break
            held += entries[(min(position + top, PG_MAX_POSITION) << 2) | weight]
        merged[word] = held
    return max(map(_last_position, merged.values()))


def _within_size(merged: dict[str, bytes], filters: list[str]) -> dict[str, bytes]:
    """`merged` without the lexemes, last first, that would take the tsvector over its size
    limit: each lexeme's bytes, one of padding at most, two for its count, its positions'."""
    size = sum(map(len, filters))  # ASCII, no positions
    if size + 4 * sum(map(len, merged)) + 3 * len(merged) + sum(map(len, merged.values())) <= (
            PG_MAX_DATA_BYTES):
        return merged  # (a character is at most four bytes)
    for index, (word, held) in enumerate(merged.items()):
        size += len(word.encode("utf-8")) + 3 + len(held)
        if size > PG_MAX_DATA_BYTES:
            return dict(islice(merged.items(), index))
    return merged


def tsvector_binary(lexemes: Mapping[str, bytes]) -> bytes:
    """A tsvector in PostgreSQL's binary format: the count, then per lexeme in byte order its
    UTF-8 bytes, a NUL, the count of its positions and the positions (two bytes each, as
    `_entry_table`; none for a filter). Nothing is quoted: a quote or a backslash is a byte
    like any other (a NUL cannot be in a lexeme: no word holds one)."""
    names = sorted(lexemes)  # code point order is UTF-8 byte order, the order tsvector keeps
    held = list(map(lexemes.__getitem__, names))
    return b"".join([len(names).to_bytes(4, "big"), *chain.from_iterable(zip(
        map(str.encode, names), map(_COUNTS.__getitem__, map(len, held)), held,
        strict=True))])
