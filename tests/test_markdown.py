"""The note grammar of docs/markdown.md, row by row: what a note says, as the database keeps it."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from pathlib import Path

import pytest

from bm_sync.frontmatter import ALIAS_EXPANSION_MAX, TAGS_MAX, TITLE_MAX, frontmatter_permalink
from bm_sync.markdown import CONTENT_MAX, ParsedNote, parse_note, title_from_path
from tests.helpers import REPO, run_bm, write


def relations(text: str) -> list[tuple[str, str, str | None]]:
    return [(r.relation_type, r.target, r.context) for r in parse_note(text, "n.md").relations]


def observations(text: str) -> list[tuple[str, str, tuple[str, ...], str | None]]:
    return [(o.category, o.content, o.tags, o.context)
            for o in parse_note(text, "n.md").observations]


def alias_bomb(levels: int) -> str:
    """The issue's note: each level a list of nine aliases of the one before, the title the
    last level (six levels: a 35-million-character title before the fix)."""
    lines = ["a0: &a0 [x,x,x,x,x,x,x,x,x]"]
    lines += [f"a{level}: &a{level} [{','.join([f'*a{level - 1}'] * 9)}]"
              for level in range(1, levels + 1)]
    return "---\n" + "\n".join(lines) + f"\ntitle: *a{levels}\n---\n- [fact] body kept\n"


RELATION_ROWS = [
    # A typed relation: one word, or one quoted phrase, directly before the item's first link.
    ("- uses [[Target]]", [("uses", "Target", None)]),
    ("- uses [[Target]] # why", [("uses", "Target", "why")]),
    ("- uses [[Target]] (context) trailing text", [("uses", "Target", "(context) trailing text")]),
    ("- uses [[Target]] (the core)", [("uses", "Target", "the core")]),
    ("- uses [[Target]] (a (nested) aside)", [("uses", "Target", "a (nested) aside")]),
    ("- uses [[Target]] ()", [("uses", "Target", None)]),
    ("- uses [[Target]]: because", [("uses", "Target", "because")]),
    ("- uses [[Target]] — because", [("uses", "Target", "because")]),
    ("- uses [[Target]] - because", [("uses", "Target", "because")]),
    ("- uses [[Target]] #core", [("uses", "Target", "#core")]),
    ('- "part of" [[Epic]]', [("part of", "Epic", None)]),
    ("- 'part of' [[Epic]]", [("part of", "Epic", None)]),
    ("- “part of” [[Epic]]", [("part of", "Epic", None)]),
    ('- "part   of" [[Epic]] (Q3)', [("part of", "Epic", "Q3")]),
    ("- depends_on [[A]]", [("depends_on", "A", None)]),
    ("- part-of [[A]]", [("part-of", "A", None)]),
    ("- related-to: [[A]]", [("related-to", "A", None)]),
    ("- uses[[A]]", [("uses", "A", None)]),
    ("- café [[A]]", [("café", "A", None)]),
    ("- v2 [[A]]", [("v2", "A", None)]),
    ("* uses [[A]]", [("uses", "A", None)]),
    ("+ uses [[A]]", [("uses", "A", None)]),
    ("    - uses [[A]]", [("uses", "A", None)]),
    ("- uses [[A|the alias]]", [("uses", "A", None)]),
    ("- uses [[A]] and [[B]]", [("uses", "A", "and [[B]]"), ("links_to", "B", None)]),
    # Prose: anything else before the link. Every link of the item is then `links_to`.
    ("- met with Bob about [[Roadmap]]", [("links_to", "Roadmap", None)]),
    ("- part of [[Epic]]", [("links_to", "Epic", None)]),
    ("- 2024 [[A]]", [("links_to", "A", None)]),
    ("- → [[A]]", [("links_to", "A", None)]),
    ('- "unclosed [[A]]', [("links_to", "A", None)]),
    ("- [[A]]", [("links_to", "A", None)]),
    ("- [[A]] uses [[B]]", [("links_to", "A", None), ("links_to", "B", None)]),
    ("- `uses` [[A]]", [("links_to", "A", None)]),
    ("uses [[A]]", [("links_to", "A", None)]),
    ("1. uses [[A]]", [("links_to", "A", None)]),
    ("> - uses [[A]]", [("links_to", "A", None)]),
    ("See [[A]], [[B]] and [[C|c]].", [("links_to", "A", None), ("links_to", "B", None),
                                        ("links_to", "C", None)]),
    # Tasks and observations are not relation items; their links still count.
    ("- [ ] uses [[A]]", [("links_to", "A", None)]),
    ("- [x] call [[Bob]]", [("links_to", "Bob", None)]),
    ("- [decision] pick [[A]]", [("links_to", "A", None)]),
    # One relation per type and target, compared case-insensitively; the first spelling wins.
    ("- uses [[A]]\n- uses [[a]]", [("uses", "A", None)]),
    ("- Uses [[A]] (one)\n- uses [[A]] (two)", [("Uses", "A", "one")]),
    ("[[Note]] and [[note]] and [[NOTE|n]]", [("links_to", "Note", None)]),
    ("- uses [[A]]\n- [[A]]", [("uses", "A", None), ("links_to", "A", None)]),
    # Code is not read; empty and unclosed links are not links.
    ("- uses `[[A]]`", []),
    ("```\n- uses [[A]]\n```\n[[B]]", [("links_to", "B", None)]),
    ("~~~\n[[A]]\n~~~", []),
    ("- uses [[ ]]", []),
    ("- uses [[A", []),
    ("[[]]", []),
]


@pytest.mark.parametrize(("body", "expected"), RELATION_ROWS)
def test_relations(body: str, expected: list[tuple[str, str, str | None]]) -> None:
    assert relations(body) == expected


OBSERVATION_ROWS = [
    ("- [fact] Water boils #physics (at sea level)",
     [("fact", "Water boils", ("physics",), "at sea level")]),
    ("- [fact] a #t1#t2 b", [("fact", "a b", ("t1", "t2"), None)]),
    ("- [fact] #a #a #b", [("fact", "", ("a", "b"), None)]),
    ("- [fact] tags #a/b #c-d #é", [("fact", "tags", ("a/b", "c-d", "é"), None)]),
    ("- [fact] C# is a language", [("fact", "C# is a language", (), None)]),
    ("- [fact] see issue #123", [("fact", "see issue #123", (), None)]),
    ("- [fact] page#anchor", [("fact", "page#anchor", (), None)]),
    ("- [fact] `#code` stays", [("fact", "`#code` stays", (), None)]),
    ("- [fact] f(x) holds", [("fact", "f(x) holds", (), None)]),
    ("- [fact] ends with f(x)", [("fact", "ends with f(x)", (), None)]),
    ("- [fact] text (a (nested) context)", [("fact", "text", (), "a (nested) context")]),
    ("- [ fact ] spaced", [("fact", "spaced", (), None)]),
    ("- [a] one letter", [("a", "one letter", (), None)]),
    ("- [1] one digit", [("1", "one digit", (), None)]),
    ("* [idea] star", [("idea", "star", (), None)]),
    ("  - [idea] nested", [("idea", "nested", (), None)]),
    # Task items of GFM and Obsidian are not observations.
    ("- [ ] todo", []),
    ("- [x] done", []),
    ("- [X] done", []),
    ("- [-] cancelled", []),
    ("- [/] in progress", []),
    ("- [>] deferred", []),
    ("- [?] question", []),
    ("- [!] important", []),
    # Not observations at all.
    ("- [fact]no space", []),
    ("- [a link](https://example.com)", []),
    ("- [[Wiki]] link", []),
    ("[fact] not a list item", []),
    ("```\n- [fact] in code\n```", []),
    ("~~~~\n- [fact] in code\n~~~\n- [fact] still code\n~~~~", []),
]


@pytest.mark.parametrize(("body", "expected"), OBSERVATION_ROWS)
def test_observations(body: str,
                      expected: list[tuple[str, str, tuple[str, ...], str | None]]) -> None:
    assert observations(body) == expected


TITLE_ROWS = [
    ("# Heading\n", "dir/My Note.md", "Heading"),
    ("text\n# Later heading\n# Second\n", "n.md", "Later heading"),
    ("# Title with closing hashes ##\n", "n.md", "Title with closing hashes"),
    ("---\ntitle: Front\n---\n# Heading\n", "n.md", "Front"),
    ("---\ntitle: [Only item]\n---\n# Heading\n", "n.md", "Only item"),
    ("---\ntitle:\n  - Block item\n---\n", "n.md", "Block item"),
    ("---\ntitle: [a, b]\n---\n# Heading\n", "n.md", "Heading"),
    ("---\ntitle: {a: 1}\n---\n", "dir/My Note.md", "My Note"),
    ("---\ntitle: 2024-01-01\n---\n", "n.md", "2024-01-01"),
    ("---\ntitle: 42\n---\n", "n.md", "42"),
    ("---\ntitle: '  '\n---\n# Heading\n", "n.md", "Heading"),
    ('---\ntitle: "a\\0b"\n---\n', "n.md", "ab"),
    ("no heading\n", "dir/My Note.md", "My Note"),
    ("## Level two\n", "n.md", "n"),
    ("#hashtag, not a heading\n", "n.md", "n"),
    ("```\n# code\n```\n# Real\n", "n.md", "Real"),
    ("`# code span`\n", "n.md", "n"),
    ("\n\n---\ntitle: After blank lines\n---\n", "n.md", "After blank lines"),
    # After blank lines, `---` that opens no closed mapping is a thematic break: body.
    ("\n---\nAn intro.\n---\n# Heading\n", "n.md", "Heading"),
    ("\n---\nnever closed\n# Heading\n", "n.md", "Heading"),
    ("\n---\n- a list\n---\n# Heading\n", "n.md", "Heading"),
    ("\ufeff---\ntitle: After a BOM\n---\n", "n.md", "After a BOM"),
    ("---\r\ntitle: CRLF\r\n---\r\n", "n.md", "CRLF"),
    ("---\ntitle: Dots\n...\n", "n.md", "Dots"),
    ("---\n---\n# Empty frontmatter\n", "n.md", "Empty frontmatter"),
    # Broken frontmatter: the file name, even with a heading.
    ("---\ntitle: [unclosed\n---\n# Heading\n", "dir/Broken.md", "Broken"),
    ("---\ntitle: never closed\n# Heading\n", "dir/Broken.md", "Broken"),
    ("---\njust text\n---\n# Heading\n", "dir/Broken.md", "Broken"),
    ("---\ndate: 2024-02-30\n---\n# Heading\n", "dir/Broken.md", "Broken"),
    ("# Heading\n", ".hidden.md", "Heading"),
    ("", ".hidden.md", ".hidden"),
    ("", "notes/archive.tar.md", "archive.tar"),
]


@pytest.mark.parametrize(("text", "path", "expected"), TITLE_ROWS)
def test_titles(text: str, path: str, expected: str) -> None:
    assert parse_note(text, path).title == expected


FRONTMATTER_TAG_ROWS = [
    ("tags: [a, b]", ("a", "b")),
    ("tags:\n  - a\n  - b", ("a", "b")),
    ("tags: a, b c", ("a", "b", "c")),
    ("tags: '[\"a\",\"b\"]'", ("a", "b")),
    ("tags: '[a, \"b\"]'", ("a", "b")),
    ("tags: '#a#b'", ("a", "b")),
    ("tags: '#a, #b'", ("a", "b")),
    ("tags: ['#a', '#b#c']", ("a", "b", "c")),
    ("tags: [machine learning]", ("machine learning",)),
    ("tags: [a, a, '#a', A]", ("a", "A")),
    ("tags: [c#, 'f#']", ("c#", "f#")),
    ("tags: 2024", ("2024",)),
    ("tags: [[a], {b: 1}, c]", ("c",)),
    ("tags: {a: 1}", ()),
    ("tags:", ()),
    ("tags: ''", ()),
    ('tags: "a\\0b"', ("ab",)),
]


@pytest.mark.parametrize(("line", "expected"), FRONTMATTER_TAG_ROWS)
def test_frontmatter_tags(line: str, expected: tuple[str, ...]) -> None:
    assert parse_note(f"---\n{line}\n---\n", "n.md").tags == expected


FIELD_ROWS = [
    # (frontmatter lines, permalink, entity type)
    ("", None, "note"),
    ("type: idea", None, "idea"),
    ("type: [idea]", None, "idea"),
    ("type: ''", None, "note"),
    ("permalink: specs/sync", "specs/sync", "note"),
    ("permalink: ' /Specs/Sync Engine/ '", "Specs/Sync Engine", "note"),
    ("permalink: [specs/sync]", "specs/sync", "note"),
    ("permalink: '/'", None, "note"),
    ("permalink: {a: 1}", None, "note"),
    ("permalink: 2024", "2024", "note"),
]


@pytest.mark.parametrize(("lines", "permalink", "entity_type"), FIELD_ROWS)
def test_permalink_and_type(lines: str, permalink: str | None, entity_type: str) -> None:
    note = parse_note(f"---\n{lines}\n---\n", "n.md")
    assert (note.permalink, note.entity_type) == (permalink, entity_type)


ERROR_ROWS = [
    # (text, a part of the one-line error, or None when the note is fine)
    ("# Fine\n- [fact] x\n- uses [[A]]\n", None),
    ("---\ntitle: T\n---\n", None),
    ("---\ntitle: [unclosed\n---\n", "broken YAML frontmatter"),
    ("---\ntitle: a: b\n---\n", "(line 2)"),
    ("---\ntitle: ok\n\nbad: a: b\n---\n", "(line 4)"),
    ("---\ntitle: x\n", "no closing '---' line"),
    ("---\n- a list\n---\n", "not a mapping (found list)"),
    ("---\ndate: 2024-02-30\n---\n", "broken YAML frontmatter"),
    ("---\na: 1\n---\nb: 2\n---\n", None),  # the first closing line ends the block
    ("\n---\ntitle: T\n---\n", "frontmatter after 1 blank line: read"),
    ("\n \n\t\n---\ntitle: T\n---\n", "frontmatter after 3 blank lines: read"),
    ("\n---\nAn intro with [[Link]].\n---\n# Heading\n", None),
    ("\n---\nnever closed\n", None),
    ("---\ntitle: [a, b]\n---\n", "frontmatter 'title' is not text: ignored"),
    ("---\npermalink: {a: 1}\n---\n", "frontmatter 'permalink' is not text: ignored"),
    ("---\ntype: [a, b]\n---\n", "frontmatter 'type' is not text: ignored"),
    ("---\ntags: {a: 1}\n---\n", "frontmatter 'tags' is neither a list nor text"),
    ("---\na: &a [*a]\n---\n", "aliases expand to more than"),
    ("---\nbase: &b {x: 1, y: [1, 2]}\nother: *b\ntitle: T\n---\n", None),
]


def test_a_thematic_break_after_blank_lines_keeps_the_links_below_it() -> None:
    assert relations("\n---\nAn intro with [[Link]].\n---\n- uses [[Tool]]\n") == [
        ("links_to", "Link", None), ("uses", "Tool", None)]


@pytest.mark.parametrize(("text", "expected"), ERROR_ROWS)
def test_errors_are_one_line(text: str, expected: str | None) -> None:
    error = parse_note(text, "n.md").error
    if expected is None:
        assert error is None
    else:
        assert error is not None and expected in error and "\n" not in error


PERMALINK_HEADS = [
    "---\npermalink: a/b\n---\n",
    "\ufeff---\npermalink: a/b\n---\n",
    "\n\n---\npermalink: a/b\n---\n",
    "\n\n---\npermalink: [a/b\n---\n",
    "---\r\npermalink: ' /a/b/ '\r\n---\r\n",
    "---\npermalink: [a/b]\n---\n",
    "---\npermalink: 'a\\0b'\n---\n",
    "---\npermalink: a\0b\n---\n",
    "---\npermalink: {a: 1}\n---\n",
    "---\npermalink: [unclosed\n---\n",
    "---\npermalink: a/b\n",
    "# Title\npermalink: a/b\n",
    "text\n---\npermalink: a/b\n---\n",
    f"---\npermalink: {'p' * 600}\n---\n",
    alias_bomb(3).replace("title:", "permalink:"),
]


@pytest.mark.parametrize("text", PERMALINK_HEADS)
def test_frontmatter_permalink_agrees_with_parse_note(text: str) -> None:
    """The hash stage's permalink (rename pairing) is the one the parsed note gets."""
    assert frontmatter_permalink(text.encode()) == parse_note(text, "n.md").permalink


@pytest.mark.parametrize(("path", "expected"), [
    ("notes/My Idea.md", "My Idea"),
    ("My Idea.markdown", "My Idea"),
    ("a/b/archive.tar.md", "archive.tar"),
    ("a/.hidden.md", ".hidden"),
    ("a/.profile", ".profile"),
    ("README", "README"),
    ("日本/メモ.md", "メモ"),
])
def test_title_from_path(path: str, expected: str) -> None:
    assert title_from_path(path) == expected


def stored_texts(note: ParsedNote) -> list[str]:
    """Every text the database keeps of a parsed note."""
    texts = [note.title, note.entity_type, note.permalink or "", *note.tags]
    for observation in note.observations:
        texts += [observation.category, observation.content, observation.context or "",
                  *observation.tags]
    for relation in note.relations:
        texts += [relation.relation_type, relation.target, relation.context or ""]
    return texts


def test_nul_characters_are_dropped_from_every_stored_field() -> None:
    """PostgreSQL's text type rejects NUL; a NUL in a file never reaches the database."""
    text = ('---\ntype: "i\\0dea"\npermalink: "sp\\0ec"\ntags: ["t\\0a", "tb\\0"]\n---\n'
            "# Ti\0tle\n"
            "- [fa\0ct] con\0tent #ta\0g (con\0text)\n"
            "- us\0es [[Tar\0get]] (why\0 not)\n"
            "- \"part\0 of\" [[Ep\0ic]]\n"
            "See [[Li\0nk]].\n")
    note = parse_note(text, "n.md")
    assert all("\0" not in value for value in stored_texts(note))
    assert (note.title, note.entity_type, note.permalink, note.tags) == (
        "Title", "idea", "spec", ("ta", "tb"))
    assert observations(text) == [("fact", "content", ("tag",), "context")]
    assert relations(text) == [("uses", "Target", "why not"), ("part of", "Epic", None),
                               ("links_to", "Link", None)]


@pytest.mark.parametrize("levels", [6, 7])
def test_yaml_alias_bomb_is_refused(levels: int) -> None:
    """A few hundred bytes of nested aliases once became a 35-million-character title (six
    levels) or 2.2 GB (seven): now the frontmatter is refused, the note still indexed."""
    text = alias_bomb(levels)
    assert len(text) < 400
    note = parse_note(text, "notes/Bomb.md")
    assert note.error is not None
    assert f"aliases expand to more than {ALIAS_EXPANSION_MAX:,} values" in note.error
    assert note.title == "Bomb"
    assert note.frontmatter == {} and note.tags == ()
    assert observations(text) == [("fact", "body kept", (), None)]
    assert sum(len(value) for value in stored_texts(note)) < 100
    assert frontmatter_permalink(text.replace("title:", "permalink:").encode()) is None


def test_yaml_merge_key_bomb_is_refused() -> None:
    """Merge keys (`<<`) copy mappings while PyYAML builds them: refused before building."""
    lines = ["m0: &m0 {" + ", ".join(f"k{index}: v" for index in range(9)) + "}"]
    lines += [f"m{level}: &m{level} {{<<: [{', '.join([f'*m{level - 1}'] * 9)}]}}"
              for level in range(1, 8)]
    note = parse_note("---\n" + "\n".join(lines) + "\ntitle: T\n---\n", "Merge.md")
    assert note.error is not None and "aliases" in note.error
    assert note.title == "Merge"


def test_long_values_are_cut_and_reported() -> None:
    long_word = "w" * (TITLE_MAX + 100)
    text = (f"# {long_word}\n"
            f"- [fact] {'x' * (CONTENT_MAX + 5)}\n"
            f"- uses [[{long_word}]]\n"
            "- [many] " + " ".join(f"#t{index}" for index in range(TAGS_MAX + 10)) + "\n")
    note = parse_note(text, "n.md")
    assert note.title == long_word[:TITLE_MAX]
    assert len(note.observations[0].content) == CONTENT_MAX
    assert note.relations[0].target == long_word[:500]
    assert len(note.observations[1].tags) == TAGS_MAX
    assert note.error is not None
    for reason in ("title longer than 500 characters: cut",
                   "observation longer than 10,000 characters: cut",
                   "link target longer than 500 characters: cut",
                   f"more than {TAGS_MAX} tags on an observation"):
        assert reason in note.error
    tags = parse_note("---\ntags: [" + ", ".join(f"t{index}" for index in range(300))
                      + "]\n---\n", "n.md")
    assert len(tags.tags) == TAGS_MAX and tags.error is not None


@pytest.mark.parametrize("text", [
    "", "\0", "---", "---\n---", "---\n...", "[[", "]]", "- [", "- uses [[", "```", "~~~\n",
    "# ", "#", "- [fact]", "- [fact] ()", "- [fact] (", "- \"\" [[A]]", "- '' [[A]]",
    "---\ntags: '" + "[" * 5000 + "'\n---\n", "---\n" + "[" * 5000 + "\n---\n",
    "---\na: !!python/object:os.system x\n---\n", "- " + "w" * 100_000 + " [[A]]",
    "# " + " " * 100_000 + "x", "- [fact] " + "#a" * 50_000,
])
def test_odd_input_never_raises(text: str) -> None:
    note = parse_note(text, "odd.md")
    assert note.title and (note.error is None or "\n" not in note.error)


def test_a_bomb_is_a_warning_of_bm_sync_and_the_database_stays_small(notes: Path) -> None:
    """End to end: the real CLI indexes the note, says why, and stores nothing blown up."""
    write(notes, "Bomb.md", alias_bomb(7))
    write(notes, "Fine.md", "---\ntitle: Fine note\n---\n- uses [[Bomb]] # the target\n")
    result = run_bm("sync", str(notes), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["added"] == ["Bomb.md", "Fine.md"]
    assert report["failed"] == []  # indexed: a warning, not a failure (issue 7 §6)
    assert report["warnings"] == [{"path": "Bomb.md", "warning": (
        f"frontmatter refused: its YAML aliases expand to more than {ALIAS_EXPANSION_MAX:,} "
        "values")}]
    with sqlite3.connect(notes / ".basic-memory" / "memory.db") as connection:
        titles = dict(connection.execute("SELECT file_path, title FROM entity"))
        edges = connection.execute("SELECT relation_type, to_name, context FROM relation")
        assert (titles, edges.fetchall()) == (
            {"Bomb.md": "Bomb", "Fine.md": "Fine note"}, [("uses", "Bomb", "the target")])
    assert (notes / ".basic-memory" / "memory.db").stat().st_size < 1_000_000


def test_parsed_note_fields_are_stable() -> None:
    """apply.py builds rows from these names: adding fields is fine, renaming is not."""
    assert [field.name for field in dataclasses.fields(ParsedNote)] == [
        "title", "entity_type", "permalink", "tags", "frontmatter", "observations",
        "relations", "error"]


def test_the_example_of_docs_markdown_md_parses_as_documented() -> None:
    document = (REPO / "docs" / "markdown.md").read_text()
    example = document.split("```markdown\n", 1)[1].split("```\n", 1)[0]
    note = parse_note(example, "coffee/Coffee Brewing Methods.md")
    assert (note.title, note.entity_type, note.permalink, note.tags, note.error) == (
        "Coffee Brewing Methods", "guide", "coffee/brewing", ("coffee", "brewing"), None)
    assert observations(example) == [
        ("method", "Pour over gives more clarity than a French press", ("taste",),
         "blind test, 2024")]
    assert relations(example) == [
        ("relates_to", "Coffee Bean Origins", None),
        ("pairs well with", "Breakfast", "mornings only"),
        ("links_to", "Grinders", None),
        ("links_to", "Tea Brewing Methods", None),
    ]


def test_notes_without_frontmatter_never_import_yaml() -> None:
    """The fast path: YAML is imported by the first note that has frontmatter, not before."""
    import subprocess
    import sys

    check = ("import sys\nfrom bm_sync.frontmatter import frontmatter_permalink\n"
             "from bm_sync.markdown import parse_note\n"
             "parse_note('\\n\\n# T\\n- uses [[A]]\\n- [f] x #t\\n---\\n', 'a.md')\n"
             "frontmatter_permalink(b'# T\\npermalink: x\\n')\n"
             "assert 'yaml' not in sys.modules\n"
             "parse_note('---\\ntitle: T\\n---\\n', 'a.md')\n"
             "assert 'yaml' in sys.modules\n")
    subprocess.run([sys.executable, "-c", check], check=True, cwd=REPO)
