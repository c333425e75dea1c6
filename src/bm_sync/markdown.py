"""Parsing a note: frontmatter, title, permalink, observations and relations.

Pure functions over text, no I/O: the sync engine reads the file, this module says what it
means. It runs on every changed note, so it is one pass over the lines with precompiled
patterns, and YAML is parsed only when a note has frontmatter (with PyYAML's C loader when
present).

Conventions (those of the knowledge base this engine serves):

- frontmatter: a `---` line first (a UTF-8 BOM allowed), closed by `---` or `...`;
- title: frontmatter `title`, else the first `# heading`, else the file name;
- observation: a list item `- [category] text #tag (context)`; `- [ ]` / `- [x]` checkboxes are
  tasks, not observations;
- relation: a list item `- relation_type [[Target]] (context)`; any other `[[Target]]`, anywhere
  in the body, is a `links_to` relation. Fenced code blocks are skipped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

_BOM = "\ufeff"
_FENCE = re.compile(r"^\s*(```|~~~)")
_HEADING = re.compile(r"^#\s+(.+?)\s*#*\s*$")
_LIST_ITEM = re.compile(r"^\s*[-*+]\s+(.*)$")
_OBSERVATION = re.compile(r"^\[([^\[\]]+)\]\s+(.+)$")
_CHECKBOX = re.compile(r"^\[[ xX]\]")
_TAG = re.compile(r"(?<![\w&])#([\w/-]+)")
_TRAILING_CONTEXT = re.compile(r"\s*\(([^()]*)\)\s*$")
_WIKILINK = re.compile(r"\[\[([^\[\]]+?)\]\]")
_RELATION = re.compile(r"^([^\[\]()#]+?)\s*\[\[([^\[\]]+?)\]\](.*)$")
_NOT_PERMALINK = re.compile(r"[^\w/]+")
_DASHES = re.compile(r"-{2,}")


@dataclass(frozen=True, slots=True)
class Observation:
    category: str
    content: str
    tags: tuple[str, ...]
    context: str | None


@dataclass(frozen=True, slots=True)
class Relation:
    relation_type: str
    target: str
    context: str | None


@dataclass(frozen=True, slots=True)
class ParsedNote:
    title: str
    entity_type: str
    permalink: str | None
    tags: tuple[str, ...]
    frontmatter: dict[str, Any] = field(default_factory=dict)
    observations: tuple[Observation, ...] = ()
    relations: tuple[Relation, ...] = ()
    error: str | None = None


def _loader() -> Any:
    import yaml

    return getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def split_frontmatter(text: str) -> tuple[str | None, str, bool]:
    """(frontmatter text or None, body, closed?) — an unclosed block leaves the whole text as
    the body."""
    if text.startswith(_BOM):
        text = text[1:]
    if not (text.startswith("---\n") or text.startswith("---\r\n") or text == "---"):
        return None, text, True
    lines = text.splitlines(keepends=True)
    for number in range(1, len(lines)):
        if lines[number].rstrip("\r\n") in ("---", "..."):
            return "".join(lines[1:number]), "".join(lines[number + 1 :]), True
    return "".join(lines[1:]), text, False


def _load_frontmatter(block: str) -> tuple[dict[str, Any], str | None]:
    import yaml

    try:
        loaded = yaml.load(block, Loader=_loader())  # noqa: S506 - a safe loader
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        where = f" (line {mark.line + 2})" if mark is not None else ""
        return {}, f"broken YAML frontmatter: {problem}{where}"
    if loaded is None:
        return {}, None
    if not isinstance(loaded, dict):
        return {}, f"frontmatter is not a mapping (got {type(loaded).__name__})"
    return loaded, None


def _tags(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    items = value if isinstance(value, list) else re.split(r"[,\s]+", str(value))
    return tuple(str(item).strip().lstrip("#") for item in items if str(item).strip())


def normalize_permalink(value: str) -> str:
    """A user-given permalink, trimmed of whitespace and surrounding slashes."""
    return str(value).strip().strip("/")


def permalink_from_path(path: str) -> str:
    """`Notes/My Idea.md` -> `notes/my-idea`: lowercase, no extension, punctuation to `-`."""
    stem = path.rsplit(".", 1)[0] if "." in path.rsplit("/", 1)[-1] else path
    segments = []
    for segment in stem.lower().split("/"):
        cleaned = _DASHES.sub("-", _NOT_PERMALINK.sub("-", segment.replace("_", "-"))).strip("-")
        if cleaned:
            segments.append(cleaned)
    return "/".join(segments)


def frontmatter_permalink(head: bytes) -> str | None:
    """The frontmatter permalink from a file's first bytes, or None. Never raises."""
    if b"permalink" not in head:
        return None
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return None
    block, _body, closed = split_frontmatter(text)
    if block is None or not closed:
        return None
    try:
        frontmatter, error = _load_frontmatter(block)
    except Exception:  # any oddity in a user's file means "no permalink"
        return None
    value = frontmatter.get("permalink") if error is None else None
    return normalize_permalink(str(value)) if value not in (None, "") else None


def parse_note(text: str, path: str) -> ParsedNote:
    """Everything the entity database keeps about one note."""
    block, body, closed = split_frontmatter(text)
    frontmatter: dict[str, Any] = {}
    error = None
    if block is not None:
        if not closed:
            error = "frontmatter has no closing '---' line"
        else:
            frontmatter, error = _load_frontmatter(block)
    observations: list[Observation] = []
    relations: list[Relation] = []
    seen: set[tuple[str, str]] = set()
    heading = None
    in_fence = False

    def relate(relation_type: str, target: str, context: str | None) -> None:
        target = target.split("|", 1)[0].strip()
        if target and (relation_type, target) not in seen:
            seen.add((relation_type, target))
            relations.append(Relation(relation_type, target, context))

    for line in body.splitlines():
        if _FENCE.match(line):
            in_fence = not in_fence
            continue
        if in_fence:
            continue
        if heading is None and line.startswith("# "):
            found = _HEADING.match(line)
            if found:
                heading = found.group(1)
        consumed = None  # the wikilink a relation item is made of is not also a links_to
        item = _LIST_ITEM.match(line)
        if item:
            content = item.group(1).strip()
            observation = _OBSERVATION.match(content)
            if observation and not _CHECKBOX.match(content):
                observations.append(_observation(observation.group(1), observation.group(2)))
            else:
                relation = _RELATION.match(content)
                if relation and relation.group(1).strip():
                    context = _TRAILING_CONTEXT.search(relation.group(3))
                    relate("_".join(relation.group(1).split()), relation.group(2),
                           context.group(1).strip() if context else None)
                    consumed = relation.group(2)
        for link in _WIKILINK.findall(line):
            if link == consumed:
                consumed = None
                continue
            relate("links_to", link, None)
    name = path.rsplit("/", 1)[-1]
    title = frontmatter.get("title") or heading or (name.rsplit(".", 1)[0] if "." in name
                                                    else name)
    permalink = frontmatter.get("permalink")
    return ParsedNote(
        title=str(title),
        entity_type=str(frontmatter.get("type") or "note"),
        permalink=normalize_permalink(str(permalink)) if permalink not in (None, "") else None,
        tags=_tags(frontmatter.get("tags")),
        frontmatter=frontmatter,
        observations=tuple(observations),
        relations=tuple(relations),
        error=error,
    )


def _observation(category: str, text: str) -> Observation:
    context = None
    found = _TRAILING_CONTEXT.search(text)
    if found:
        context = found.group(1).strip() or None
        text = text[: found.start()]
    tags = tuple(_TAG.findall(text))
    content = _TAG.sub("", text)
    return Observation(category.strip(), " ".join(content.split()), tags, context)
