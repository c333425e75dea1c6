"""A backend-independent snippet with the folding of FTS5 `unicode61 remove_diacritics 2`.

Sketch for the design doc: the window of `size` tokens holding the most distinct query terms,
matches wrapped in [ ], "…" where text was cut. Linear in the text; only non-ASCII tokens pay
for Unicode normalisation.
"""
from __future__ import annotations

import re
import unicodedata

WORD = re.compile(r"\w+")
OPERATORS = {"AND", "OR", "NOT", "NEAR"}


def fold(token: str) -> str:
    if token.isascii():
        return token.lower()
    decomposed = unicodedata.normalize("NFKD", token)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def query_terms(query: str) -> tuple[frozenset[str], tuple[str, ...]]:
    """(exact terms, prefixes) named by a query, operators and column names left out."""
    exact, prefixes = set(), []
    for match in re.finditer(r"(\w+)(\*?)", query):
        word, star = match.groups()
        if word in OPERATORS or query[match.end():match.end() + 2].lstrip().startswith(":"):
            continue
        (prefixes.append(fold(word)) if star else exact.add(fold(word)))
    return frozenset(exact), tuple(prefixes)


def make_snippet(text: str, query: str, size: int = 16) -> str:
    exact, prefixes = query_terms(query)
    tokens = [(m.start(), m.end(), m.group()) for m in WORD.finditer(text)]
    if not tokens:
        return ""
    hits = []  # (token index, folded term)
    for index, (_, _, token) in enumerate(tokens):
        folded = fold(token)
        if folded in exact or (prefixes and folded.startswith(prefixes)):
            hits.append((index, folded))
    best, best_score, left = 0, 0, 0
    for right in range(len(hits)):  # two pointers over the hits only
        while hits[right][0] - hits[left][0] >= size:
            left += 1
        score = len({term for _, term in hits[left:right + 1]})
        if score > best_score:
            best, best_score = max(0, hits[left][0] - 2), score
    end = min(len(tokens), best + size)
    marked = {index for index, _ in hits}
    pieces, cursor = [], tokens[best][0]
    for index in range(best, end):
        start, stop, token = tokens[index]
        pieces.append(text[cursor:start])
        pieces.append(f"[{token}]" if index in marked else token)
        cursor = stop
    snippet = " ".join("".join(pieces).split())
    return ("…" if best > 0 else "") + snippet + ("…" if end < len(tokens) else "")
