"""Full-text search: the query language, the indexed document of a note, snippets, and the
records `SyncEngine.search` and `SyncEngine.show` return. Pure Python: no SQL here (that is
`bm_sync.db.search`), so both databases index and query exactly the same words.

Words are runs of letters and digits (`[^\\W_]+`), folded (lower case, accents removed: `Café`
is `cafe`), as FTS5's `unicode61 remove_diacritics 2` tokenizer splits and folds them; the
PostgreSQL side is sent the words already split and folded, so its parser cannot disagree.
Chinese, Japanese and Korean runs have no spaces between words: they are also indexed as
overlapping two-character pieces (`東京都` -> `東京 京都`, the `cjk` column), and a query run
becomes the phrase of its pieces, so a word of any length inside a run is found.

The query language (docs/cli.md): words, `"phrases"`, `prefix*`, `AND` (or nothing), `OR`,
`NOT`/`-`, parentheses; the operators are upper case. `parse_query` turns it into a small tree
and the compilers (`to_fts5`, `to_tsquery`) quote every word, so no user text reaches either
database's own syntax. A malformed query is a `SearchQueryError`: one line with a column.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bm_sync.errors import BmSyncError

# The indexed columns, in the order FTS5 holds them (and `SearchDoc.values`).
COLUMNS = ("title", "body", "observations", "tags", "permalink", "path", "cjk", "scope")
BODY_MAX_CHARS = 1 << 20  # PostgreSQL's tsvector holds 1 MB; a longer note is searched in part
SNIPPET_TOKENS = 16
OPERATORS = frozenset({"AND", "OR", "NOT"})

_WORD = re.compile(r"[^\W_]+")
# Scripts written without spaces between words (and Hangul, whose words take particles).
_CJK_RANGES = ("\u1100-\u11ff\u3040-\u30ff\u3130-\u318f\u3400-\u4dbf\u4e00-\u9fff"
               "\uac00-\ud7af\uf900-\ufaff")
_CJK_RUN = re.compile(f"[{_CJK_RANGES}]+")
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
    return _WORD.findall(text)


def cjk_bigrams(text: str) -> str:
    """The overlapping two-character pieces of every CJK run (a lone character as itself)."""
    if text.isascii():
        return ""
    pieces: list[str] = []
    for run in _CJK_RUN.findall(text):
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


def postgres_columns(values: Sequence[str]) -> dict[str, Any]:
    """The words PostgreSQL indexes, split and folded here (its parser never sees raw text):
    weight A the title, B tags and permalink, C observations, path and CJK pieces, D the body,
    and the filter tokens as lexemes of their own (`#` first: no query word can match them)."""
    title, body, observations, tags, permalink, path, cjk, scope = values

    def joined(*texts: str) -> str:
        return " ".join(word for text in texts for word in words(fold(text)))

    return {"a": joined(title), "b": joined(tags, permalink),
            "c": joined(observations, path, cjk), "d": joined(body),
            "scope": ["#" + token for token in scope.split()]}


# -- the query language -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Phrase:
    """Words in a row (one word is a phrase of one); `prefix`: the last one is a prefix.
    `cjk`: CJK pieces, matched in the `cjk` column."""

    words: tuple[str, ...]
    prefix: bool = False
    cjk: bool = False


@dataclass(frozen=True, slots=True)
class All:
    """Every one of `terms`, none of `excluded` (there is always at least one term)."""

    terms: tuple[Node, ...]
    excluded: tuple[Node, ...] = ()


@dataclass(frozen=True, slots=True)
class Any_:
    """At least one of `terms`."""

    terms: tuple[Node, ...]


Node = Phrase | All | Any_

_TOKEN = re.compile(r'\s+|(?P<open>\()|(?P<close>\))|(?P<quote>")|(?P<bare>[^\s()"]+)')


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # "(", ")", "phrase", "word", "AND", "OR", "NOT", "-"
    text: str
    column: int
    prefix: bool = False


def _tokens(query: str) -> list[_Token]:
    tokens: list[_Token] = []
    position = 0
    while position < len(query):
        found = _TOKEN.match(query, position)
        assert found is not None  # the alternatives cover every character
        column = position + 1
        if found.group("open"):
            tokens.append(_Token("(", "(", column))
        elif found.group("close"):
            tokens.append(_Token(")", ")", column))
        elif found.group("quote"):
            end = query.find('"', position + 1)
            if end < 0:
                raise SearchQueryError(f"unterminated phrase at column {column}")
            prefix = query.startswith("*", end + 1)
            tokens.append(_Token("phrase", query[position + 1:end], column, prefix))
            position = end + 1 + prefix
            continue
        elif found.group("bare"):
            text = found.group("bare")
            if text in OPERATORS:
                tokens.append(_Token(text, text, column))
            elif text.startswith("-") and len(text) > 1:
                tokens.append(_Token("-", "-", column))
                found_rest = text[1:]
                tokens.append(_Token("word", found_rest.rstrip("*"), column + 1,
                                     found_rest.endswith("*")))
            elif text == "-":
                tokens.append(_Token("-", "-", column))
            else:
                tokens.append(_Token("word", text.rstrip("*"), column, text.endswith("*")))
        position = found.end()
    return tokens


def _phrases(text: str, prefix: bool) -> list[Phrase]:
    """The phrases a bare term or a quoted phrase stands for: its words in a row, CJK runs as
    their pieces (a lone CJK character as a prefix of the pieces)."""
    pieces: list[Phrase] = []
    plain: list[str] = []
    for word in words(text):
        start = 0
        for run in _CJK_RUN.finditer(word):
            plain.extend(_WORD.findall(word[start:run.start()]))
            if plain:
                pieces.append(Phrase(tuple(plain)))
                plain = []
            chars = run.group()
            if len(chars) == 1:
                pieces.append(Phrase((chars,), prefix=True, cjk=True))
            else:
                pieces.append(Phrase(tuple(chars[i:i + 2] for i in range(len(chars) - 1)),
                                     cjk=True))
            start = run.end()
        plain.extend(_WORD.findall(word[start:]))
    if plain:
        pieces.append(Phrase(tuple(plain)))
    if prefix and pieces and not pieces[-1].cjk:
        pieces[-1] = Phrase(pieces[-1].words, prefix=True)
    return pieces


class _Parser:
    def __init__(self, query: str) -> None:
        self.query = query
        self.tokens = _tokens(query)
        self.position = 0

    def peek(self) -> _Token | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self) -> _Token:
        token = self.tokens[self.position]
        self.position += 1
        return token

    def end_column(self) -> int:
        return len(self.query.rstrip()) + 1

    def parse(self) -> Node:
        if not self.tokens:
            raise SearchQueryError("empty query: give words to search for")
        node = self.any_()
        token = self.peek()
        if token is not None:  # only a stray ")" stops the grammar early
            raise SearchQueryError(f"unbalanced ')' at column {token.column}")
        if node is None:
            raise SearchQueryError("no words to search for: a query needs a letter or digit")
        return node

    def any_(self) -> Node | None:
        terms = []
        first = self.all_()
        if first is not None:
            terms.append(first)
        while (token := self.peek()) is not None and token.kind == "OR":
            self.take()
            if self.peek() is None or self.peek_kind() in ("OR", ")"):
                raise SearchQueryError(f"OR without a term after it at column {token.column}")
            operand = self.all_()
            if operand is not None:
                terms.append(operand)
        if not terms:
            return None
        return terms[0] if len(terms) == 1 else Any_(tuple(terms))

    def peek_kind(self) -> str | None:
        token = self.peek()
        return token.kind if token is not None else None

    def all_(self) -> Node | None:
        terms: list[Node] = []
        excluded: list[Node] = []
        start = self.peek()
        if start is not None and start.kind in ("AND", "OR"):
            raise SearchQueryError(f"{start.kind} without a term before it at column "
                                   f"{start.column}")
        while (token := self.peek()) is not None and token.kind not in ("OR", ")"):
            if token.kind == "AND":
                self.take()
                if self.peek() is None or self.peek_kind() in ("AND", "OR", ")"):
                    raise SearchQueryError(f"AND without a term after it at column "
                                           f"{token.column}")
                continue
            negated = False
            if token.kind in ("NOT", "-"):
                self.take()
                if self.peek() is None or self.peek_kind() in ("AND", "OR", ")", "NOT", "-"):
                    raise SearchQueryError(f"{token.text} without a term after it at column "
                                           f"{token.column}")
                negated = True
            node = self.unary()
            if node is not None:
                (excluded if negated else terms).append(node)
        if not terms:
            if excluded:
                column = start.column if start is not None else 1
                raise SearchQueryError(f"only excluded terms at column {column}: a query needs "
                                       "a term that is not excluded")
            return None
        if len(terms) == 1 and not excluded:
            return terms[0]
        return All(tuple(terms), tuple(excluded))

    def unary(self) -> Node | None:
        token = self.take()
        if token.kind == "(":
            inner = self.any_()
            closing = self.peek()
            if closing is None or closing.kind != ")":
                raise SearchQueryError(f"unbalanced '(' at column {token.column}")
            self.take()
            return inner
        if token.kind == ")":
            raise SearchQueryError(f"unbalanced ')' at column {token.column}")
        pieces = _phrases(token.text, token.prefix)
        if token.kind == "phrase" and len(pieces) > 1:
            # A quoted phrase stays one phrase when it has no CJK: "well-known fact".
            if not any(piece.cjk for piece in pieces):
                flat = tuple(word for piece in pieces for word in piece.words)
                return Phrase(flat, prefix=token.prefix)
        if not pieces:
            return None
        return pieces[0] if len(pieces) == 1 else All(tuple(pieces))


def parse_query(query: str) -> Node:
    """The tree of a query, or `SearchQueryError`."""
    return _Parser(query).parse()


def query_terms(node: Node) -> tuple[frozenset[str], tuple[str, ...]]:
    """(folded words, folded prefixes) a query looks for, excluded ones left out: what a
    snippet marks."""
    exact: set[str] = set()
    prefixes: list[str] = []

    def visit(item: Node) -> None:
        if isinstance(item, Phrase):
            if item.cjk:
                return
            for index, word in enumerate(item.words):
                folded = fold(word)
                if item.prefix and index == len(item.words) - 1:
                    prefixes.append(folded)
                else:
                    exact.add(folded)
        else:
            for term in item.terms:
                visit(term)

    visit(node)
    return frozenset(exact), tuple(prefixes)


def to_fts5(node: Node, *, head_only: bool = False) -> str:
    """The FTS5 MATCH expression of a query: every word quoted, explicit parentheses, the
    user's words kept off the filter column (`- {scope}`); `head_only`: only the short,
    high-weight columns (title, observations, tags, permalink, path, CJK pieces)."""

    def compile_(item: Node) -> str:
        if isinstance(item, Phrase):
            text = '"' + " ".join(word.replace('"', '""') for word in item.words) + '"'
            text += "*" if item.prefix else ""
            return f"(cjk : {text})" if item.cjk else text
        if isinstance(item, Any_):
            return "(" + " OR ".join(compile_(term) for term in item.terms) + ")"
        expression = "(" + " AND ".join(compile_(term) for term in item.terms) + ")"
        for excluded in item.excluded:
            expression = f"({expression} NOT {compile_(excluded)})"
        return expression

    columns = "{title observations tags permalink path cjk}" if head_only else "- {scope}"
    return f"{columns} : ({compile_(node)})"


def to_tsquery(node: Node, *, head_only: bool = False) -> str:
    """The PostgreSQL tsquery text of a query (for `::tsquery`, not `to_tsquery`: the words are
    already folded, so no parser or dictionary runs on them). `head_only`: weights A-C."""
    weights = "ABC" if head_only else ""

    def lexeme(word: str, prefix: bool) -> str:
        text = "'" + fold(word).replace("'", "''").replace("\\", "\\\\") + "'"
        marks = ("*" if prefix else "") + weights
        return f"{text}:{marks}" if marks else text

    def compile_(item: Node) -> str:
        if isinstance(item, Phrase):
            last = len(item.words) - 1
            parts = [lexeme(word, item.prefix and index == last)
                     for index, word in enumerate(item.words)]
            return parts[0] if len(parts) == 1 else "(" + " <-> ".join(parts) + ")"
        if isinstance(item, Any_):
            return "(" + " | ".join(compile_(term) for term in item.terms) + ")"
        expression = "(" + " & ".join(compile_(term) for term in item.terms) + ")"
        for excluded in item.excluded:
            expression = f"({expression} & !{compile_(excluded)})"
        return expression

    return compile_(node)


def scope_query(project_id: int | None, entity_type: str | None, tags: Sequence[str],
                folder: str | None) -> list[str]:
    """The filter tokens a search must match (all of them)."""
    tokens = [project_token(project_id)] if project_id is not None else []
    if entity_type:
        tokens.append(scope_token("t", entity_type))
    tokens.extend(scope_token("g", tag) for tag in tags)
    if folder:
        tokens.append(scope_token("d", folder.strip("/")))
    return tokens


# -- snippets ---------------------------------------------------------------------------------


def make_snippet(text: str, node: Node, size: int = SNIPPET_TOKENS) -> str:
    """The window of `size` words of `text` holding the most distinct query words, matches in
    `[brackets]`, `…` where text was cut. Linear in the text."""
    exact, prefixes = query_terms(node)
    tokens = [(found.start(), found.end(), found.group()) for found in _WORD.finditer(text)]
    if not tokens:
        return ""
    hits: list[tuple[int, str]] = []
    for index, (_start, _stop, token) in enumerate(tokens):
        folded = fold(token)
        if folded in exact or (prefixes and folded.startswith(prefixes)):
            hits.append((index, folded))
    best, best_score, left = 0, 0, 0
    for right in range(len(hits)):
        while hits[right][0] - hits[left][0] >= size:
            left += 1
        score = len({term for _index, term in hits[left:right + 1]})
        if score > best_score:
            best, best_score = max(0, min(hits[left][0] - 2, len(tokens) - size)), score
    end = min(len(tokens), best + size)
    marked = {index for index, _term in hits}
    pieces: list[str] = []
    cursor = tokens[best][0]
    for index in range(best, end):
        start, stop, token = tokens[index]
        pieces.append(text[cursor:start])
        pieces.append(f"[{token}]" if index in marked else token)
        cursor = stop
    snippet = " ".join("".join(pieces).split())
    return ("…" if best > 0 else "") + snippet + ("…" if end < len(tokens) else "")
