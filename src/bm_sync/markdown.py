"""Parsing a note: frontmatter, title, permalink, tags, observations and relations.

Pure functions over text, no I/O: the sync engine reads the file, this module says what it
means. It runs on every changed note (thousands per second), so the body is one pass over its
lines, every pattern is compiled once at import, cheap character tests guard the regexes, and
YAML is parsed only when a note has frontmatter (with PyYAML's C loader when present).

The grammar (frontmatter, title, observations, relations, tasks, tags, code, limits) is written
out in docs/markdown.md; tests/test_markdown.py holds it row by row. In short:

- frontmatter: a `---` first line, closed by the next `---` or `...` line (after blank lines,
  only a closed YAML mapping is frontmatter; anything else is body). A broken block never fails
  the note: it becomes `ParsedNote.error` and the title comes from the file name;
- observation: `- [category] text #tag (context)`; task items (`- [ ]`, `- [x]`, `- [-]`) are not;
- relation: `- relation_type [[Target]] rest` or `- "multi word type" [[Target]] rest`: one word
  or one quoted phrase directly before the item's first link. Any other `[[Target]]` is a
  `links_to` relation, so `- met with Bob about [[Roadmap]]` is prose, not a type;
- code blocks and code spans are code: nothing is read from them;
- untrusted input is bounded: YAML aliases may not expand past `ALIAS_EXPANSION_MAX` nodes, NUL
  characters are dropped, and every stored field has a maximum length (`*_MAX`).
"""

from __future__ import annotations

import datetime
import json
import re
import unicodedata
from dataclasses import dataclass
from typing import Any

# Longest stored values, in characters. Title, permalink and relation target are indexed
# columns: at 4 UTF-8 bytes a character, 500 stays under PostgreSQL's ~2,700-byte limit for a
# btree entry. Longer values are cut (and the note reported): a database row is a summary of
# the file, which keeps every word.
TITLE_MAX = 500
PERMALINK_MAX = 500
TARGET_MAX = 500
NAME_MAX = 200  # entity type, a tag, an observation category, a relation type
CONTENT_MAX = 10_000  # an observation's text
CONTEXT_MAX = 2_000  # an observation's or a relation's context
TAGS_MAX = 256  # tags of a note, tags of an observation
# How many nodes YAML aliases may add to the frontmatter once expanded. Real frontmatter reuses
# a handful of values; a "billion laughs" block of a few hundred bytes expands to millions.
ALIAS_EXPANSION_MAX = 10_000


def _yaml() -> tuple[Any, Any]:
    """PyYAML and its loader, imported on the first note with frontmatter: `bm status` on a
    tree without any never pays for it. The C loader is several times faster; both are safe
    loaders (no arbitrary objects)."""
    import yaml

    return yaml, getattr(yaml, "CSafeLoader", yaml.SafeLoader)


_BOM = "\ufeff"
_BOM_BYTES = b"\xef\xbb\xbf"
# The same two patterns serve `parse_note` (text) and `frontmatter_permalink` (bytes), so both
# agree on where a frontmatter block starts and ends. Blank lines may come before the opening
# line (group 1 holds them; the note is then reported, since other tools will not read it).
_OPEN = r"((?:[ \t]*\r?\n)*)---[ \t]*(?:\r?\n|\Z)"
_CLOSE = r"^(?:---|\.\.\.)[ \t]*\r?$"
_FRONTMATTER_OPEN = re.compile(_OPEN)
_FRONTMATTER_CLOSE = re.compile(_CLOSE, re.MULTILINE)
_FRONTMATTER_OPEN_BYTES = re.compile(_OPEN.encode())
_FRONTMATTER_CLOSE_BYTES = re.compile(_CLOSE.encode(), re.MULTILINE)

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
# Separators inside a frontmatter tag string; a `#` that starts a tag separates too.
_TAG_SEPARATORS = re.compile(r"[,\s]+|#(?=[^\s,#])")
_TAG_HASH = re.compile(r"#(?=[^\s,#])")
_CONTEXT_MARK = re.compile(r"(?:#|[:\-–—])[ \t]+")
_NOT_PERMALINK = re.compile(r"[\W_]+")
_PERMALINK_TRIM = re.compile(r"^[\s/]+|[\s/]+$")
_TEXT_TYPES = (str, int, float, datetime.date)


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


class _Report:
    """The reasons a note is reported, each once, in the order they were found."""

    __slots__ = ("reasons",)

    def __init__(self) -> None:
        self.reasons: list[str] = []

    def add(self, reason: str) -> None:
        if reason not in self.reasons:
            self.reasons.append(reason)

    def cap(self, value: str, limit: int, what: str) -> str:
        """`value`, cut to `limit` characters (and reported) when longer."""
        if len(value) <= limit:
            return value
        self.add(f"{what} longer than {limit:,} characters: cut")
        return value[:limit].rstrip()


def parse_note(text: str, path: str) -> ParsedNote:
    """Parse one note; never raises on malformed content.

    `path` is the root-relative, `/`-separated path, used only for the fallback title.
    """
    if text.startswith(_BOM):
        text = text[1:]
    if "\0" in text:
        text = text.replace("\0", "")  # PostgreSQL's text type cannot hold NUL
    report = _Report()
    frontmatter: dict[Any, Any] = {}
    broken = None
    body = text
    opening = _FRONTMATTER_OPEN.match(text)
    if opening:
        # After blank lines, `---` may as well be a thematic break: the block is frontmatter
        # only when it is closed and a YAML mapping; otherwise it is body, and no error.
        blank_lines = opening.group(1).count("\n")
        closing = _FRONTMATTER_CLOSE.search(text, opening.end())
        if closing is None:
            if not blank_lines:
                broken = "broken frontmatter: no closing '---' line"
        else:
            loaded, problem = _load_frontmatter(text[opening.end():closing.start()],
                                                blank_lines + 2)
            if not blank_lines or problem is None:
                frontmatter, broken, body = loaded, problem, text[closing.end():]
            if blank_lines and problem is None:
                report.add(f"frontmatter after {blank_lines} blank line"
                           f"{'s' if blank_lines > 1 else ''}: read, but other tools want "
                           "'---' on the first line")
    heading, observations, relations = _parse_body(body, report)
    permalink = _text_field(frontmatter, "permalink", report)
    if permalink is not None:
        permalink = report.cap(normalize_permalink(permalink), PERMALINK_MAX, "permalink") or None
    title = _text_field(frontmatter, "title", report)
    if title is None and broken is None and heading is not None:
        title = heading
    entity_type = _text_field(frontmatter, "type", report)
    reasons = report.reasons if broken is None else [broken, *report.reasons]
    return ParsedNote(
        # Broken frontmatter: the file name, as the issue asks; where the block really ends
        # (and so which heading is the note's) cannot be trusted.
        title=(title if len(title) <= TITLE_MAX else report.cap(title, TITLE_MAX, "title"))
        if title else title_from_path(path),
        entity_type=(entity_type if len(entity_type) <= NAME_MAX
                     else report.cap(entity_type, NAME_MAX, "type")) if entity_type else "note",
        permalink=permalink,
        tags=_frontmatter_tags(frontmatter.get("tags"), report),
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


def normalize_permalink(value: str) -> str:
    """A permalink set by the user, trimmed of whitespace and `/` at both ends, nothing else.

    The user chose it (other notes and URLs may spell it exactly), so case, inner spaces and
    punctuation are kept: `" /Specs/Sync Engine/ "` -> `"Specs/Sync Engine"`. Idempotent.
    """
    return _PERMALINK_TRIM.sub("", value)


def frontmatter_permalink(head: bytes) -> str | None:
    """The normalised frontmatter permalink from a file's first bytes (up to 64 KiB), or None.

    Cheap enough for the hash stage, which calls it on every markdown file it reads, and the
    same answer as `parse_note(...).permalink` whenever the frontmatter fits in `head` (blank
    lines before the block, NUL characters, caps and all). None when the file has no
    frontmatter, the block is not closed within `head`, is not UTF-8, is broken or refused YAML
    or has no (or an empty) `permalink`. Never raises.
    """
    try:
        if b"permalink" not in head:
            return None
        if head.startswith(_BOM_BYTES):
            head = head[len(_BOM_BYTES):]
        if b"\0" in head:
            head = head.replace(b"\0", b"")
        opening = _FRONTMATTER_OPEN_BYTES.match(head)
        if opening is None:
            return None
        closing = _FRONTMATTER_CLOSE_BYTES.search(head, opening.end())
        if closing is None:
            return None
        # Only the block is decoded: the body may be cut mid-character by the caller's limit.
        block = head[opening.end():closing.start()].decode("utf-8")
        frontmatter, broken = _load_frontmatter(block, 2)
        if broken is not None:
            return None
        value = _text_field(frontmatter, "permalink", _Report())
        if value is None:
            return None
        return normalize_permalink(value)[:PERMALINK_MAX].rstrip() or None
    except Exception:  # a user's file is data: anything odd in it means "no permalink"
        return None


def _load_frontmatter(block: str, first_line: int) -> tuple[dict[Any, Any], str | None]:
    """(mapping, None), or ({}, one-line reason) when the block is not a usable YAML mapping.

    `first_line` is the file's line number of the block's first line, for error messages.
    """
    yaml, loader_class = _yaml()
    loader = loader_class(block)
    try:
        node = loader.get_single_node()
        if node is None:  # an empty block
            return {}, None
        # Expanding aliases is what turns a few hundred bytes into gigabytes (in PyYAML's
        # merge keys, or in whoever walks the values): judge the node graph before building.
        if "*" in block and _alias_expansion(node) > ALIAS_EXPANSION_MAX:
            return {}, (f"frontmatter refused: its YAML aliases expand to more than "
                        f"{ALIAS_EXPANSION_MAX:,} values")
        loaded = loader.construct_document(node)
    except yaml.MarkedYAMLError as error:
        problem = error.problem or error.context or type(error).__name__
        # Marks count lines from 0.
        where = f" (line {error.problem_mark.line + first_line})" if error.problem_mark else ""
        return {}, f"broken YAML frontmatter: {_one_line(problem)}{where}"
    except Exception as error:  # e.g. ValueError for `date: 2024-02-30`, RecursionError
        return {}, f"broken YAML frontmatter: {_one_line(str(error) or type(error).__name__)}"
    finally:
        loader.dispose()
    if not isinstance(loaded, dict):
        return {}, f"broken frontmatter: not a mapping (found {type(loaded).__name__})"
    return loaded, None


def _alias_expansion(root: Any) -> int:
    """How many nodes expanding every alias would add to a composed YAML document.

    The composer shares one node object for an anchor and its aliases, so the document is a
    graph; its expanded size is computed bottom-up, each distinct node once (linear in the
    block's size). A node that contains itself expands without end.
    """
    sizes: dict[int, int] = {}
    expanding: set[int] = set()
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        value = node.value
        if children_done:
            expanding.discard(key)
            total = 1
            for child in value:
                if isinstance(child, tuple):  # a mapping's (key, value) pair
                    total += sizes[id(child[0])] + sizes[id(child[1])]
                else:
                    total += sizes[id(child)]
            sizes[key] = total
            continue
        if key in sizes:
            continue
        if not isinstance(value, list):  # a scalar
            sizes[key] = 1
            continue
        if key in expanding:
            return ALIAS_EXPANSION_MAX + 1  # an alias inside its own anchor: endless
        expanding.add(key)
        stack.append((node, True))
        for child in value:
            stack.extend((item, False) for item in (child if isinstance(child, tuple)
                                                     else (child,)))
    return sizes[id(root)] - len(sizes)


def _parse_body(body: str, report: _Report) -> tuple[
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


def _relation_type(relation: re.Match[str], line: str, report: _Report) -> str:
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


def _relation_context(rest: str, report: _Report) -> str | None:
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


def _observation(category: str, text: str, masked: str, report: _Report) -> Observation:
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


def _frontmatter_tags(value: Any, report: _Report) -> tuple[str, ...]:
    """`tags` as a YAML list, a JSON list in a string (`'["a", "b"]'`) or a comma/space
    separated string; a `#` that starts a tag separates too (`#a#b`), duplicates once."""
    if value is None:
        return ()
    pieces: list[str] = []
    if isinstance(value, str):
        stripped = value.strip()
        if stripped.startswith("[") and stripped.endswith("]"):
            try:
                value = json.loads(stripped)
            except (ValueError, RecursionError):  # `[a, b]` quoted: a list without JSON's quotes
                value = [item.strip().strip("'\"") for item in stripped[1:-1].split(",")]
    if isinstance(value, list | tuple):
        for item in value:
            if type(item) is not str:
                if not isinstance(item, _TEXT_TYPES) or isinstance(item, bool):
                    continue  # a nested list or mapping is no tag
                item = str(item)
            if "#" in item:
                pieces.extend(_TAG_HASH.split(item))
            else:
                pieces.append(item)
    elif isinstance(value, _TEXT_TYPES) and not isinstance(value, bool):
        pieces.extend(_TAG_SEPARATORS.split(str(value)))
    else:
        report.add("frontmatter 'tags' is neither a list nor text: ignored")
    tags: dict[str, None] = {}
    for piece in pieces:
        tag = piece.strip().lstrip("#").strip()
        if tag:
            if "\0" in tag:
                tag = tag.replace("\0", "")
            tags[tag if len(tag) <= NAME_MAX else report.cap(tag, NAME_MAX, "tag")] = None
    if len(tags) > TAGS_MAX:
        report.add(f"more than {TAGS_MAX} tags: the first {TAGS_MAX} kept")
    return tuple(tags)[:TAGS_MAX]


def _text_field(frontmatter: dict[Any, Any], key: str, report: _Report) -> str | None:
    """A frontmatter field as stripped text, None when absent or blank.

    YAML may give a number or a date (written as YAML wrote it) or a one-item list (its item).
    Anything else (a mapping, a longer list) is no text: ignored and reported.
    """
    value = frontmatter.get(key)
    if value is None:
        return None
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if not isinstance(value, _TEXT_TYPES):
        report.add(f"frontmatter '{key}' is not text: ignored")
        return None
    return _clean(str(value)).strip() or None


def _clean(text: str) -> str:
    """`text` without NUL characters (a YAML `\\0` escape makes them; PostgreSQL rejects them)."""
    return text.replace("\0", "") if "\0" in text else text


def _one_line(message: str) -> str:
    return " ".join(message.split())
