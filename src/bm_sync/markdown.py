"""Parsing a note: the body grammar (observations, relations, tags, code) and `parse_note`.

Pure functions over text, no I/O: the sync engine reads the file, this module says what it
means. It runs on every changed note (thousands per second), so the body is one pass over its
lines, every pattern is compiled once at import, and cheap character tests guard the regexes.
The frontmatter (finding the block, safe YAML, reading its fields as text) is frontmatter.py's,
which imports nothing from here: it is the half that loads YAML, and the hash stage's
`frontmatter_permalink` needs it without the body grammar.

The grammar (frontmatter, title, observations, relations, tasks, tags, code, limits) is written
out in docs/markdown.md; tests/test_markdown.py holds it row by row. In short:

- frontmatter: see frontmatter.py; a broken block never fails the note: it becomes
  `ParsedNote.error` and the title comes from the file name;
- title: the frontmatter's, else the body's first level-1 heading, else the file name's;
- observation: `- [category] text #tag (context)`; task items (`- [ ]`, `- [x]`, `- [-]`) are not;
- relation: `- relation_type [[Target]] rest` or `- "multi word type" [[Target]] rest`: one word
  or one quoted phrase directly before the item's first link. Any other `[[Target]]` is a
  `links_to` relation, so `- met with Bob about [[Roadmap]]` is prose, not a type;
- code blocks and code spans are code: nothing is read from them;
- untrusted input is bounded: NUL characters are dropped, and every stored field has a maximum
  length (`*_MAX`, here for the body's fields, in frontmatter.py for the others).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any

from bm_sync.frontmatter import (
    NAME_MAX,
    TAGS_MAX,
    Report,
    frontmatter_tags,
    note_fields,
    read_frontmatter,
)

# Longest stored values of the body's fields, in characters (the frontmatter's, and the caps
# both share, are in frontmatter.py). A relation target is an indexed column: 500 stays under
# PostgreSQL's ~2,700-byte limit for a btree entry. Longer values are cut (and the note
# reported): a database row is a summary of the file, which keeps every word.
TARGET_MAX = 500
CONTENT_MAX = 10_000  # an observation's text
CONTEXT_MAX = 2_000  # an observation's or a relation's context

_FENCE = re.compile(r"[ \t]*(`{3,}|~{3,})(.*)")
_HEADING = re.compile(r" {0,3}#[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$")
_LIST_ITEM = re.compile(r"[ \t]*[-*+][ \t]+(\S.*)")
_OBSERVATION = re.compile(r"\[([^\[\]]+)\][ \t]+(\S.*)")
# A relation type: one word holding a letter (`uses`, `depends_on`, `part-of`, `see:`), or one
# quoted phrase (`"part of"`, `'part of'`, `“part of”`), then the item's first link.
_RELATION = re.compile(
    r"""(?:(?=[\w-]*?[^\W\d_])([\w-]++):?|"([^"\[\]]+)"|'([^'\[\]]+)'|“([^“”\[\]]+)”)"""
    r"[ \t]*\[\[([^\[\]]+)\]\]")
_WIKILINK = re.compile(r"\[\[([^\[\]]+)\]\]")
# A tag starts after whitespace (so `C#`, `page#anchor` and `&#39;` are not tags) or right
# after another tag (`#one#two`), and holds at least one letter (so `#123` stays an issue
# number, as in Obsidian).
_TAG_NAME = r"[\w/-]*[^\W\d_][\w/-]*"
_TAGS = re.compile(rf"(?<!\S)#{_TAG_NAME}(?:#{_TAG_NAME})*")
_CODE_SPAN = re.compile(r"(`+)(?!`).+?(?<!`)\1(?!`)")
_CODE_MASK = "\0"  # neither a word character, whitespace, bracket nor parenthesis
_CONTEXT_MARK = re.compile(r"(?:#|[:\-–—])[ \t]+")
_NOT_PERMALINK = re.compile(r"[\W_]+")


@dataclass(frozen=True, slots=True)
class Observation:
    """`- [category] content #tag (context)`: one fact the note states about its subject."""

    category: str
    content: str
    tags: tuple[str, ...]
    context: str | None


@dataclass(frozen=True, slots=True)
class Relation:
    """A typed edge to another note, named by its title or permalink (`target`), unresolved."""

    relation_type: str
    target: str
    context: str | None


@dataclass(frozen=True, slots=True)
class ParsedNote:
    """Everything the entity database keeps about one note.

    `error` is one line saying what was wrong with the note (reasons joined by `; `), or None:
    broken or refused frontmatter (then the title is the file name's), or a notice that
    changed nothing but should be known (a value cut to its maximum length, a field that is
    not text, blank lines before the frontmatter). The rest of the note is parsed either way,
    so a typo in YAML never hides a note's observations and links.
    """

    title: str
    entity_type: str
    permalink: str | None
    tags: tuple[str, ...]
    frontmatter: dict[Any, Any]
    observations: tuple[Observation, ...]
    relations: tuple[Relation, ...]
    error: str | None


def parse_note(text: str, path: str) -> ParsedNote:
    """Parse one note; never raises on malformed content.

    `path` is the root-relative, `/`-separated path, used only for the fallback title.
    """
    report = Report()
    frontmatter, broken, body = read_frontmatter(text, report)
    heading, observations, relations = _parse_body(body, report)
    # Broken frontmatter: the file name, as the issue asks; where the block really ends (and
    # so which heading is the note's) cannot be trusted.
    title, entity_type, permalink = note_fields(
        frontmatter, heading if broken is None else None, report)
    tags = frontmatter_tags(frontmatter.get("tags"), report)
    reasons = report.reasons if broken is None else [broken, *report.reasons]
    return ParsedNote(
        title=title or title_from_path(path),
        entity_type=entity_type,
        permalink=permalink,
        tags=tags,
        frontmatter=frontmatter,
        observations=observations,
        relations=relations,
        error="; ".join(reasons) if reasons else None,
    )


def title_from_path(path: str) -> str:
    """The title of a note without one: its file name without the extension.

    `notes/My Idea.md` -> `My Idea`; a leading dot is part of the name, as in pathlib
    (`.env.md` -> `.env`, `.profile` -> `.profile`).
    """
    name = path.rpartition("/")[2]
    dot = name.rfind(".")
    return name[:dot] if dot > 0 else name


def permalink_from_path(path: str) -> str:
    """The permalink a note gets when its frontmatter sets none.

    `Notes/My Idea.md` -> `notes/my-idea`.

    Lowercased and NFC-normalised (macOS stores names decomposed, so `café` would otherwise
    split at its accent), the extension of the file name dropped, and in each folder or file name
    every run of characters other than letters and digits (punctuation, whitespace, `_`,
    symbols) becomes one `-`, trimmed at both ends; names left empty are dropped. Letters and
    digits of any script are kept (`Café/日本.md` -> `café/日本`). The result is `""` when no
    name has a letter or digit.
    """
    folder, _slash, name = path.rpartition("/")
    dot = name.rfind(".")
    if dot > 0:
        name = name[:dot]
    lowered = f"{folder}/{name}".lower()
    if not lowered.isascii():
        lowered = unicodedata.normalize("NFC", lowered)
    segments = (_NOT_PERMALINK.sub("-", segment).strip("-") for segment in lowered.split("/"))
    return "/".join(segment for segment in segments if segment)


def _parse_body(body: str, report: Report) -> tuple[
        str | None, tuple[Observation, ...], tuple[Relation, ...]]:
    """One pass over the body: (first level-1 heading, observations, relations)."""
    heading: str | None = None
    observations: list[Observation] = []
    # Keyed case-insensitively, insertion-ordered: the first spelling wins.
    relations: dict[tuple[str, str], Relation] = {}
    fence: str | None = None  # the opening fence while inside a fenced code block

    def relate(relation_type: str, link: str, context: str | None) -> None:
        target = link.split("|", 1)[0].strip()
        if not target:
            return
        if len(target) > TARGET_MAX:
            target = report.cap(target, TARGET_MAX, "link target")
        key = (relation_type.casefold(), target.casefold())
        if key not in relations:
            relations[key] = Relation(relation_type, target, context)

    for line in body.splitlines():
        first = line.lstrip()[:1]
        if not first:
            continue
        if first in "`~":
            found = _FENCE.match(line)
            if found:
                run, rest = found.groups()
                if fence is None:
                    # A backtick "fence" with a backtick after it is inline code (CommonMark).
                    if run[0] == "~" or "`" not in rest:
                        fence = run
                        continue
                elif run[0] == fence[0] and len(run) >= len(fence) and not rest.strip():
                    fence = None
                    continue
        if fence is not None:
            continue
        if "`" in line:
            # Code spans are masked with a character no pattern matches; same length, so
            # positions found in `masked` slice `line`.
            masked = _CODE_SPAN.sub(lambda span: _CODE_MASK * len(span.group()), line)
        else:
            masked = line
        if heading is None and first == "#":
            found = _HEADING.match(masked)
            if found and found.group(1):
                heading = line[found.start(1):found.end(1)]
        item_link = -1  # where the link of a typed relation starts: not also a `links_to`
        if first in "-*+":
            item = _LIST_ITEM.match(masked)
            if item:
                start = item.start(1)
                observation = _OBSERVATION.match(masked, start)
                if observation:
                    category = line[observation.start(1):observation.end(1)].strip()
                    # A task item: `[ ]`, `[x]`, `[X]`, `[-]`, Obsidian's `[/]`, `[>]`, ...
                    if len(category) > 1 or category.isalnum() and category not in "xX":
                        observations.append(_observation(
                            category, line[observation.start(2):],
                            masked[observation.start(2):], report))
                elif "[[" in masked:
                    relation = _RELATION.match(masked, start)
                    if relation:
                        item_link = relation.start(5)
                        relate(_relation_type(relation, line, report),
                               line[item_link:relation.end(5)],
                               _relation_context(line[relation.end():], report))
        if "[[" in masked:
            for link in _WIKILINK.finditer(masked):
                if link.start(1) != item_link:
                    relate("links_to", line[link.start(1):link.end(1)], None)
    return heading, tuple(observations), tuple(relations.values())


def _relation_type(relation: re.Match[str], line: str, report: Report) -> str:
    """The type a relation item names: the word as written, or the quoted phrase with its
    whitespace collapsed."""
    start, end = relation.span(1)
    if start >= 0:
        relation_type = line[start:end]
    else:  # a quoted phrase: `"..."`, `'...'` or `“...”`
        start, end = relation.span(2 if relation.start(2) >= 0 else
                                   3 if relation.start(3) >= 0 else 4)
        relation_type = " ".join(line[start:end].split())
    if len(relation_type) > NAME_MAX:
        relation_type = report.cap(relation_type, NAME_MAX, "relation type")
    return relation_type


def _relation_context(rest: str, report: Report) -> str | None:
    """What follows the link of a relation item, as its context: `(context)` unwrapped when it
    is the whole rest, a leading comment mark (`# `, `: `, `- `, `— `) dropped."""
    rest = rest.strip()
    if not rest:
        return None
    if _trailing_parenthesis(rest, len(rest)) == 0:
        rest = rest[1:-1].strip()
    else:
        mark = _CONTEXT_MARK.match(rest)
        if mark:
            rest = rest[mark.end():]
    return report.cap(rest, CONTEXT_MAX, "relation context") if rest else None


def _observation(category: str, text: str, masked: str, report: Report) -> Observation:
    """`text #tag #tag (context)` -> the observation, tags removed from its content."""
    end = len(masked.rstrip())
    context = None
    opening = _trailing_parenthesis(masked, end)
    if opening > 0 and masked[opening - 1].isspace():
        context = text[opening + 1:end - 1].strip() or None
        end = opening
    tags: dict[str, None] = {}
    pieces: list[str] = []
    position = 0
    for found in _TAGS.finditer(masked, 0, end):
        pieces.append(text[position:found.start()].rstrip())
        position = found.end()
        for name in text[found.start() + 1:found.end()].split("#"):
            tags[name if len(name) <= NAME_MAX else report.cap(name, NAME_MAX, "tag")] = None
    pieces.append(text[position:end])
    content = "".join(pieces).strip()
    # Caps: tested before calling, the common case costs a comparison.
    if len(category) > NAME_MAX:
        category = report.cap(category, NAME_MAX, "observation category")
    if len(content) > CONTENT_MAX:
        content = report.cap(content, CONTENT_MAX, "observation")
    if context is not None and len(context) > CONTEXT_MAX:
        context = report.cap(context, CONTEXT_MAX, "observation context")
    if len(tags) > TAGS_MAX:
        report.add(f"more than {TAGS_MAX} tags on an observation: the first {TAGS_MAX} kept")
    return Observation(category, content, tuple(tags)[:TAGS_MAX], context)


def _trailing_parenthesis(text: str, end: int) -> int:
    """Where the `(` matching a `)` at `text[end - 1]` is, or -1 (nested parentheses count)."""
    if end == 0 or text[end - 1] != ")":
        return -1
    depth = 0
    for index in range(end - 1, -1, -1):
        character = text[index]
        if character == ")":
            depth += 1
        elif character == "(":
            depth -= 1
            if depth == 0:
                return index
    return -1
