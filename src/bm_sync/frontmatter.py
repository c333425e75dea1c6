"""A note's frontmatter: finding the block, loading its YAML safely, reading its fields as text.

Apart from markdown.py (the body grammar and `parse_note`) because this is the half of note
parsing that loads YAML, and the half `frontmatter_permalink` (the hash stage's reader of every
markdown file's first bytes) needs without the body grammar. It imports nothing of markdown.py;
markdown.py imports from it `read_frontmatter`, `note_fields`, `frontmatter_tags`, the `Report`
both halves write their notices to, and the two caps both apply (`NAME_MAX`, `TAGS_MAX`).

- the block: a `---` first line, closed by the next `---` or `...` line (after blank lines,
  only a closed YAML mapping is frontmatter; anything else is body). A broken block never fails
  the note: it becomes `ParsedNote.error` and the title comes from the file name;
- YAML is imported by the first note that has a block, never before (`_yaml`), and its aliases
  may not expand past `ALIAS_EXPANSION_MAX` nodes;
- `title`, `type`, `permalink` and `tags` are read as text whatever YAML made of them (numbers,
  dates, one-item lists), NUL characters dropped and lengths capped (`*_MAX`).
"""

from __future__ import annotations

import datetime
import json
import re
from typing import Any

# Longest stored values, in characters (markdown.py holds the caps of the body's fields). Title
# and permalink are indexed columns: at 4 UTF-8 bytes a character, 500 stays under PostgreSQL's
# ~2,700-byte limit for a btree entry. Longer values are cut (and the note reported): a database
# row is a summary of the file, which keeps every word.
TITLE_MAX = 500
PERMALINK_MAX = 500
NAME_MAX = 200  # entity type, a tag, an observation category, a relation type
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
# The same two patterns serve `read_frontmatter` (text) and `frontmatter_permalink` (bytes), so
# both agree on where a frontmatter block starts and ends. Blank lines may come before the
# opening line (group 1 holds them; the note is then reported, since other tools will not read
# it).
_OPEN = r"((?:[ \t]*\r?\n)*)---[ \t]*(?:\r?\n|\Z)"
_CLOSE = r"^(?:---|\.\.\.)[ \t]*\r?$"
_FRONTMATTER_OPEN = re.compile(_OPEN)
_FRONTMATTER_CLOSE = re.compile(_CLOSE, re.MULTILINE)
_FRONTMATTER_OPEN_BYTES = re.compile(_OPEN.encode())
_FRONTMATTER_CLOSE_BYTES = re.compile(_CLOSE.encode(), re.MULTILINE)
# Separators inside a frontmatter tag string; a `#` that starts a tag separates too.
_TAG_SEPARATORS = re.compile(r"[,\s]+|#(?=[^\s,#])")
_TAG_HASH = re.compile(r"#(?=[^\s,#])")
_PERMALINK_TRIM = re.compile(r"^[\s/]+|[\s/]+$")
_TEXT_TYPES = (str, int, float, datetime.date)


class Report:
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


def read_frontmatter(text: str, report: Report) -> tuple[dict[Any, Any], str | None, str]:
    """(frontmatter, broken, body) of a note's whole text; never raises.

    `broken` is the one-line reason the block was refused (then the frontmatter is `{}`), or
    None. The body is the text after the block, or all of it when there is none; a leading BOM
    and every NUL character are dropped from it first (PostgreSQL's text type cannot hold NUL).
    """
    if text.startswith(_BOM):
        text = text[1:]
    if "\0" in text:
        text = text.replace("\0", "")
    opening = _FRONTMATTER_OPEN.match(text)
    if opening is None:
        return {}, None, text
    # After blank lines, `---` may as well be a thematic break: the block is frontmatter only
    # when it is closed and a YAML mapping; otherwise it is body, and no error.
    blank_lines = opening.group(1).count("\n")
    closing = _FRONTMATTER_CLOSE.search(text, opening.end())
    if closing is None:
        return {}, None if blank_lines else "broken frontmatter: no closing '---' line", text
    loaded, problem = _load_frontmatter(text[opening.end():closing.start()], blank_lines + 2)
    if not blank_lines:
        return loaded, problem, text[closing.end():]
    if problem is not None:
        return {}, None, text
    report.add(f"frontmatter after {blank_lines} blank line{'s' if blank_lines > 1 else ''}: "
               "read, but other tools want '---' on the first line")
    return loaded, None, text[closing.end():]


def note_fields(frontmatter: dict[Any, Any], fallback_title: str | None,
                report: Report) -> tuple[str | None, str, str | None]:
    """(title, entity type, permalink) of a note, as stored.

    The title is the frontmatter's, else `fallback_title` (the body's first heading), capped
    either way; None when neither exists. The type defaults to `note`. The permalink is
    normalised and None when absent or blank. Notices are reported in the order: permalink,
    title, type.
    """
    permalink = _text_field(frontmatter, "permalink", report)
    if permalink is not None:
        permalink = report.cap(normalize_permalink(permalink), PERMALINK_MAX, "permalink") or None
    title = _text_field(frontmatter, "title", report)
    if title is None:
        title = fallback_title
    entity_type = _text_field(frontmatter, "type", report)
    if title is not None and len(title) > TITLE_MAX:
        title = report.cap(title, TITLE_MAX, "title")
    if entity_type is None:
        entity_type = "note"
    elif len(entity_type) > NAME_MAX:
        entity_type = report.cap(entity_type, NAME_MAX, "type")
    return title, entity_type, permalink


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
        value = _text_field(frontmatter, "permalink", Report())
        if value is None:
            return None
        return normalize_permalink(value)[:PERMALINK_MAX].rstrip() or None
    except Exception:  # a user's file is data: anything odd in it means "no permalink"
        return None


def _load_frontmatter(block: str, first_line: int) -> tuple[dict[Any, Any], str | None]:
    """(mapping, None), or ({}, one-line reason) when the block is not a usable YAML mapping.

    `first_line` is the file's line number of the block's first line, for error messages.
    """
    simple = simple_mapping(block)
    if simple is not None:
        return simple, None
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


# The shapes nearly every frontmatter block has, read without a YAML parser (`simple_mapping`):
# `key: plain text` and `key: [plain, text]` lines, nothing else. A value's characters are
# those a plain scalar may hold anywhere in it (no `:`, `#`, quotes first, brackets inside a
# list, tabs, ...), starting with a letter, digit or `_`, so where it ends and what it holds
# are never in doubt; what type YAML gives it is asked of PyYAML's own resolver. Keys are
# short ASCII names (YAML refuses an implicit key longer than 1,024 characters).
_SIMPLE_LINE = re.compile(
    r"([A-Za-z_][A-Za-z0-9_-]{0,127}):[ ]+(?:(\w[\w .,/()'&!?+-]*)|\[([\w .,/()'+-]*)\][ ]*)")
_SIMPLE_ITEM = re.compile(r"\w[\w ./()'+-]*")
# First character -> the patterns of PyYAML's implicit resolvers that may claim such a scalar.
_SCALAR_RESOLVERS: dict[str, tuple[Any, ...]] | None = None


def simple_mapping(block: str) -> dict[str, Any] | None:
    """The mapping of a frontmatter block made only of `key: text` and `key: [text, ...]`
    lines (each key once, no indentation, comments, quotes, tabs or CR), exactly as the
    YAML loader would build it; None for any other block, which then goes to the loader.

    Five to ten times faster than the C loader on such blocks, and the hash stage and the
    parser read the frontmatter of every changed note. Exactness: every value is a plain
    scalar that no other YAML syntax can claim (`_SIMPLE_LINE`), and a key or value that
    PyYAML's resolver would make anything but a string (`yes`, `12`, `2024-01-02`, `~`, ...)
    sends the whole block to the loader (tests/test_frontmatter_fast.py compares both on a
    table, a corpus and generated blocks).
    """
    if "\r" in block or "\t" in block:
        return None
    mapping: dict[str, Any] = {}
    for line in block.split("\n"):
        if not line:
            continue
        found = _SIMPLE_LINE.fullmatch(line)
        if found is None:
            return None
        key, text, items = found.groups()
        if key in mapping or not _is_text(key):
            return None
        if text is not None:
            text = text.rstrip(" ")
            if not _is_text(text):
                return None
            mapping[key] = text
            continue
        values = [item.strip() for item in items.split(",")] if items.strip() else []
        for item in values:
            if _SIMPLE_ITEM.fullmatch(item) is None or not _is_text(item):
                return None
        mapping[key] = values
    return mapping or None


def _is_text(scalar: str) -> bool:
    """Whether YAML resolves this plain scalar (not empty) to a string: none of PyYAML's
    implicit resolvers (bool, int, float, null, timestamp, merge, ...) for its first
    character matches it."""
    global _SCALAR_RESOLVERS
    if _SCALAR_RESOLVERS is None:
        from yaml.resolver import Resolver

        table = Resolver.yaml_implicit_resolvers
        _SCALAR_RESOLVERS = {first: tuple(pattern for _tag, pattern in
                                          [*resolvers, *table.get(None, [])])
                             for first, resolvers in table.items() if first}
    for pattern in _SCALAR_RESOLVERS.get(scalar[0], ()):
        if pattern.match(scalar):
            return False
    return True


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


def frontmatter_tags(value: Any, report: Report) -> tuple[str, ...]:
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


def _text_field(frontmatter: dict[Any, Any], key: str, report: Report) -> str | None:
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
