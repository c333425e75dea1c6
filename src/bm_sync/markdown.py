"""Parsing a note: frontmatter, title, permalink, observations and relations.

Pure functions over text, no I/O: the sync engine reads the file, this module says what it
means. It runs on every changed note (thousands per second), so the body is one pass over its
lines, every pattern is compiled once at import, cheap character tests guard the regexes, and
YAML is parsed only when a note has frontmatter (with PyYAML's C loader when present).

Conventions (those of the knowledge base this engine serves):

- frontmatter: a `---` line first (a UTF-8 BOM allowed, `\\r\\n` allowed), closed by the next
  `---` or `...` line. A broken block never fails the note: it becomes `ParsedNote.error`;
- title: frontmatter `title`, else the first level-1 `# heading`, else the file name (always
  the file name when the frontmatter is broken);
- observation: a list item `- [category] text #tag (context)`; `- [ ]` / `- [x]` checkboxes are
  tasks, not observations;
- relation: a list item `- relation_type [[Target]] (context)`; any other `[[Target]]`, anywhere
  in the body, is a `links_to` relation;
- fenced code blocks and inline code spans are code: no heading, observation, tag or link is
  read from them.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any


def _yaml() -> tuple[Any, Any]:
    """PyYAML and its loader, imported on the first note with frontmatter: `bm status` on a
    tree without any never pays for it. The C loader is several times faster; both are safe
    loaders (no arbitrary objects)."""
    import yaml

    return yaml, getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_BOM = "\ufeff"
_BOM_BYTES = b"\xef\xbb\xbf"
# The same two patterns serve `parse_note` (text) and `frontmatter_permalink` (bytes), so both
# agree on where a frontmatter block starts and ends.
_OPEN = r"---[ \t]*(?:\r?\n|\Z)"
_CLOSE = r"^(?:---|\.\.\.)[ \t]*\r?$"
_FRONTMATTER_OPEN = re.compile(_OPEN)
_FRONTMATTER_CLOSE = re.compile(_CLOSE, re.MULTILINE)
_FRONTMATTER_OPEN_BYTES = re.compile(_OPEN.encode())
_FRONTMATTER_CLOSE_BYTES = re.compile(_CLOSE.encode(), re.MULTILINE)

_FENCE = re.compile(r"[ \t]*(`{3,}|~{3,})(.*)")
_HEADING = re.compile(r" {0,3}#[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$")
_LIST_ITEM = re.compile(r"[ \t]*[-*+][ \t]+(\S.*)")
_OBSERVATION = re.compile(r"\[([^\[\]]+)\][ \t]+(\S.*)")
_RELATION = re.compile(r"(\w[\w-]*(?:[ \t]+\w[\w-]*)*)[ \t]*\[\[([^\[\]]+)\]\][ \t]*(.*)")
_WIKILINK = re.compile(r"\[\[([^\[\]]+)\]\]")
# A tag starts after whitespace (so `C#`, `page#anchor` and `&#39;` are not tags) and holds at
# least one letter (so `#123` stays an issue number, as in Obsidian).
_TAG = re.compile(r"(?<!\S)#([\w/-]*[^\W\d_][\w/-]*)")
_CODE_SPAN = re.compile(r"(`+)(?!`).+?(?<!`)\1(?!`)")
_CODE_MASK = "\0"  # neither a word character, whitespace, bracket nor parenthesis
_CHECKBOXES = frozenset({" ", "x", "X"})
_TAG_SEPARATORS = re.compile(r"[,\s]+")
_NOT_PERMALINK = re.compile(r"[\W_]+")
_PERMALINK_TRIM = re.compile(r"^[\s/]+|[\s/]+$")


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

    `error` is a one-line reason when the frontmatter is broken; the rest of the note is still
    parsed, so a typo in YAML never hides a note's observations and links.
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
    if text.startswith(_BOM):
        text = text[1:]
    frontmatter: dict[Any, Any] = {}
    error = None
    body = text
    opening = _FRONTMATTER_OPEN.match(text)
    if opening:
        closing = _FRONTMATTER_CLOSE.search(text, opening.end())
        if closing is None:
            error = "broken frontmatter: no closing '---' line"
        else:
            frontmatter, error = _load_frontmatter(text[opening.end():closing.start()])
            body = text[closing.end():]
    heading, observations, relations = _parse_body(body)
    permalink = frontmatter.get("permalink")
    if permalink is not None:
        permalink = normalize_permalink(str(permalink)) or None
    return ParsedNote(
        # Broken frontmatter: the file name, as the issue asks; where the block really ends
        # (and so which heading is the note's) cannot be trusted.
        title=_text_value(frontmatter.get("title")) or (None if error else heading)
        or _file_stem(path),
        entity_type=_text_value(frontmatter.get("type")) or "note",
        permalink=permalink,
        tags=_frontmatter_tags(frontmatter.get("tags")),
        frontmatter=frontmatter,
        observations=observations,
        relations=relations,
        error=error,
    )


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
    same answer as `parse_note(...).permalink` whenever the frontmatter fits in `head`. None
    when the file has no frontmatter, the block is not closed within `head`, is not UTF-8, is
    broken YAML or has no (or an empty) `permalink`. Never raises.
    """
    try:
        if b"permalink" not in head:
            return None
        if head.startswith(_BOM_BYTES):
            head = head[len(_BOM_BYTES):]
        opening = _FRONTMATTER_OPEN_BYTES.match(head)
        if opening is None:
            return None
        closing = _FRONTMATTER_CLOSE_BYTES.search(head, opening.end())
        if closing is None:
            return None
        # Only the block is decoded: the body may be cut mid-character by the caller's limit.
        block = head[opening.end():closing.start()].decode("utf-8")
        frontmatter, error = _load_frontmatter(block)
        value = frontmatter.get("permalink")
        if error is not None or value is None:
            return None
        return normalize_permalink(str(value)) or None
    except Exception:  # a user's file is data: anything odd in it means "no permalink"
        return None


def _load_frontmatter(block: str) -> tuple[dict[Any, Any], str | None]:
    """(mapping, None), or ({}, one-line reason) when the block is not a YAML mapping."""
    yaml, loader = _yaml()
    try:
        loaded = yaml.load(block, Loader=loader)  # noqa: S506 - a safe loader
    except yaml.MarkedYAMLError as error:
        problem = error.problem or error.context or type(error).__name__
        # The block starts on the file's second line; marks count lines from 0.
        where = f" (line {error.problem_mark.line + 2})" if error.problem_mark else ""
        return {}, f"broken YAML frontmatter: {_one_line(problem)}{where}"
    except Exception as error:  # e.g. ValueError for `date: 2024-02-30`, RecursionError
        return {}, f"broken YAML frontmatter: {_one_line(str(error) or type(error).__name__)}"
    if loaded is None:  # an empty block
        return {}, None
    if not isinstance(loaded, dict):
        return {}, f"broken frontmatter: not a mapping (found {type(loaded).__name__})"
    return loaded, None


def _parse_body(body: str) -> tuple[str | None, tuple[Observation, ...], tuple[Relation, ...]]:
    """One pass over the body: (first level-1 heading, observations, relations)."""
    heading: str | None = None
    observations: list[Observation] = []
    relations: dict[tuple[str, str], Relation] = {}  # insertion-ordered: first one wins
    fence: str | None = None  # the opening fence while inside a fenced code block

    def relate(relation_type: str, link: str, context: str | None) -> None:
        target = link.split("|", 1)[0].strip()
        if target and (relation_type, target) not in relations:
            relations[relation_type, target] = Relation(relation_type, target, context)

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
        item_link = None  # the link a relation item is made of is not also a `links_to`
        if first in "-*+":
            item = _LIST_ITEM.match(masked)
            if item:
                start = item.start(1)
                observation = _OBSERVATION.match(masked, start)
                if observation:
                    category = line[observation.start(1):observation.end(1)].strip()
                    if category and category not in _CHECKBOXES:
                        observations.append(_observation(
                            category, line[observation.start(2):], masked[observation.start(2):]))
                else:
                    relation = _RELATION.match(masked, start)
                    if relation:
                        context = _item_context(line, masked, relation.start(3))
                        if context is not False:
                            relate("_".join(relation.group(1).split()),
                                   line[relation.start(2):relation.end(2)], context)
                            item_link = relation.start(2)
        if "[[" in masked:
            for link in _WIKILINK.finditer(masked):
                if link.start(1) != item_link:
                    relate("links_to", line[link.start(1):link.end(1)], None)
    return heading, tuple(observations), tuple(relations.values())


def _observation(category: str, text: str, masked: str) -> Observation:
    """`text #tag #tag (context)` -> the observation, tags removed from its content."""
    end = len(masked.rstrip())
    context = None
    opening = _trailing_parenthesis(masked, end)
    if opening > 0 and masked[opening - 1].isspace():
        context = text[opening + 1:end - 1].strip() or None
        end = opening
    tags: list[str] = []
    pieces: list[str] = []
    position = 0
    for tag in _TAG.finditer(masked, 0, end):
        pieces.append(text[position:tag.start()].rstrip())
        position = tag.end()
        name = text[tag.start(1):tag.end(1)]
        if name not in tags:
            tags.append(name)
    pieces.append(text[position:end])
    return Observation(category, "".join(pieces).strip(), tuple(tags), context)


def _item_context(line: str, masked: str, start: int) -> str | None | bool:
    """What follows `[[Target]]` in a relation item: None when nothing, the context when it is
    one `(context)`, False when it is anything else (then the item is prose, not a relation)."""
    end = len(masked.rstrip())
    if start == end:
        return None
    if _trailing_parenthesis(masked, end) != start:
        return False
    return line[start + 1:end - 1].strip() or None


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


def _frontmatter_tags(value: Any) -> tuple[str, ...]:
    """`tags` as a YAML list or a comma/space separated string, `#` dropped, duplicates once."""
    if value is None:
        return ()
    if isinstance(value, list | tuple):
        items = [str(item) for item in value if item is not None]
    elif isinstance(value, dict):
        return ()
    else:
        items = _TAG_SEPARATORS.split(str(value))
    tags: dict[str, None] = {}
    for item in items:
        tag = item.strip().lstrip("#").strip()
        if tag:
            tags[tag] = None
    return tuple(tags)


def _text_value(value: Any) -> str | None:
    """A frontmatter scalar as stripped text (YAML may give a number or a date), None if blank."""
    if value is None:
        return None
    return str(value).strip() or None


def _file_stem(path: str) -> str:
    """`notes/My Idea.md` -> `My Idea` (a leading dot is part of the name, as in pathlib)."""
    name = path.rpartition("/")[2]
    dot = name.rfind(".")
    return name[:dot] if dot > 0 else name


def _one_line(message: str) -> str:
    return " ".join(message.split())
