"""The search query language (docs/cli.md): words, `"phrases"`, `prefix*`, `AND` (or nothing),
`OR`, `NOT`/`-`, parentheses; the operators are upper case. `parse_query` turns a query into a
small tree and the compilers (`to_fts5`, `to_tsquery`) quote every word, so no user text
reaches either database's own syntax. A malformed query is a `SearchQueryError`: one line with
a column. Pure Python, standard library only: the `bm search` fast path imports it.

A run of CJK characters (no spaces between words) becomes the phrase of its overlapping
two-character pieces, matched in the `cjk` column (`bm_sync.search.cjk_bigrams`), so a word of
any length inside a run is found.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from bm_sync.search import CJK_RUN, SearchQueryError, fold, project_token, scope_token, words

OPERATORS = frozenset({"AND", "OR", "NOT"})



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
        for run in CJK_RUN.finditer(word):
            plain.extend(words(word[start:run.start()]))
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
        plain.extend(words(word[start:]))
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


def positive(node: Node) -> Node:
    """`node` without its excluded terms: what a match is ranked on (PostgreSQL's `ts_rank`
    scores a query with a negation near zero for every document)."""
    if isinstance(node, Phrase):
        return node
    if isinstance(node, Any_):
        return Any_(tuple(positive(term) for term in node.terms))
    terms = tuple(positive(term) for term in node.terms)
    return terms[0] if len(terms) == 1 else All(terms)


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


HEAD_COLUMNS = "{title observations tags permalink path cjk}"
ALL_COLUMNS = "- {scope}"


def to_fts5(node: Node, *, head_only: bool = False) -> str:
    """The FTS5 MATCH expression of a query: every word quoted, explicit parentheses, the
    user's words kept off the filter column (`- {scope}`). `head_only`: the words a note must
    have are looked for in the short, high-weight columns only (title, observations, tags,
    permalink, path, CJK pieces), while an excluded word still excludes a note wherever it is
    (`sync -racy` never finds a note with "racy" in its body)."""

    def compile_(item: Node, columns: str) -> str:
        """`item`, its phrases looked for in `columns` (all of them when empty)."""
        if isinstance(item, Phrase):
            text = '"' + " ".join(word.replace('"', '""') for word in item.words) + '"'
            text += "*" if item.prefix else ""
            if item.cjk:  # the CJK column is a head column: the same in both forms
                return f"(cjk : {text})"
            return f"({columns} : {text})" if columns else text
        if isinstance(item, Any_):
            return "(" + " OR ".join(compile_(term, columns) for term in item.terms) + ")"
        expression = "(" + " AND ".join(compile_(term, columns) for term in item.terms) + ")"
        for excluded in item.excluded:
            excluded_in = ALL_COLUMNS if head_only else columns
            expression = f"({expression} NOT {compile_(excluded, excluded_in)})"
        return expression

    if head_only:
        return compile_(node, HEAD_COLUMNS)
    return f"{ALL_COLUMNS} : ({compile_(node, '')})"


def to_tsquery(node: Node, *, head_only: bool = False) -> str:
    """The PostgreSQL tsquery text of a query (for `::tsquery`, not `to_tsquery`: the words are
    already folded, so no parser or dictionary runs on them). `head_only`: the words a note
    must have carry weights A-C; an excluded word excludes a note at any weight."""

    def lexeme(word: str, prefix: bool, weights: str) -> str:
        text = "'" + fold(word).replace("'", "''").replace("\\", "\\\\") + "'"
        marks = ("*" if prefix else "") + weights
        return f"{text}:{marks}" if marks else text

    def compile_(item: Node, weights: str) -> str:
        if isinstance(item, Phrase):
            last = len(item.words) - 1
            parts = [lexeme(word, item.prefix and index == last, weights)
                     for index, word in enumerate(item.words)]
            return parts[0] if len(parts) == 1 else "(" + " <-> ".join(parts) + ")"
        if isinstance(item, Any_):
            return "(" + " | ".join(compile_(term, weights) for term in item.terms) + ")"
        expression = "(" + " & ".join(compile_(term, weights) for term in item.terms) + ")"
        for excluded in item.excluded:
            expression = f"({expression} & !{compile_(excluded, '')})"
        return expression

    return compile_(node, "ABC" if head_only else "")


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

