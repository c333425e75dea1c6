"""The frontmatter fast path (`frontmatter.simple_mapping`) must build exactly what the YAML
loader builds, or decline. Each block below is read both ways: when the fast path answers,
its mapping equals the C loader's value for value and type for type (`True` is not `1`, a
date is not its text); the rows marked `fast` must be answered by it (else the path would be
dead code and the comparison empty), the rows marked `yaml` must be left to the loader."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from bm_sync.frontmatter import Report, read_frontmatter, simple_mapping
from bm_sync.markdown import parse_note

REPO = Path(__file__).resolve().parent.parent


def typed(value: Any) -> Any:
    """`value` with the type of every part spelled out, so equal means the same YAML."""
    if isinstance(value, dict):
        return ("dict", [(typed(key), typed(item)) for key, item in value.items()])
    if isinstance(value, list):
        return ("list", [typed(item) for item in value])
    return (type(value).__name__, value)


def loaded(block: str) -> Any:
    """What the C loader makes of `block`, or the exception it raised."""
    try:
        return typed(yaml.load(block, Loader=yaml.CSafeLoader))  # noqa: S506 (a safe loader)
    except yaml.YAMLError as error:
        return type(error)


def assert_same(block: str) -> dict[str, Any] | None:
    fast = simple_mapping(block)
    if fast is not None:
        assert typed(fast) == loaded(block), block
    return fast


FAST = [
    "title: Light Journal Retrospective\ntype: project\ntags: [decision]\n",
    "title: Old Beacon\ntype: idea\ntags: [deploy]\npermalink: archive/late-library/old-beacon\n",
    "title: 2024-W03\ntype: weekly-review\ntags: [review, weekly]\n",
    "title: Bob's notes (draft)\n",
    "title: What now? Plans, ideas & more!\n",
    "title: a - b + c / d.e\n",
    "title:    spaces before   \n",
    "title: Café 日本 Ωmega\n",
    "tags: []\n",
    "tags: [ ]\n",
    "tags: [a , b,c]\n",
    "tags: [two words, x-y, a/b, v1.2]\n",
    "permalink: specs/sync-engine\n",
    "_private: x\n",
    "a: x\n\nb: y\n",
    "type: note\ntitle: Yesterday\n",  # starts like `yes`, is not
    "title: 1st place\n",  # starts like a number, is not
    "title: nothing\n",  # starts like `no` / `null`
    "title: Trueish\n",
    "title: on-call\n",
    "title: offline\n",
    "key-with-dash: value\n",
    "title: .\n".replace(".", "x."),
]

YAML_ONLY = [
    "",  # empty: None, read as {}
    "\n\n",
    "title: 2024-01-02\n",  # a date
    "title: 12\n",
    "title: 1.5\n",
    "title: 0x1F\n",
    "title: 1_000\n",
    "title: 12:30\n",  # sexagesimal in YAML 1.1
    "title: yes\n",
    "title: No\n",
    "title: on\n",
    "title: OFF\n",
    "title: true\n",
    "title: null\n",
    "title: ~\n",
    "title: .inf\n",
    "title: -1\n",
    "title: +1\n",
    "on: x\n",  # a key YAML makes a bool
    "yes: x\n",
    "null: x\n",
    "title:\n",  # null value
    "title: x\ntitle: y\n",  # repeated key
    "title: a: b\n",  # YAML error
    "title: a #comment\n",
    "# comment\ntitle: x\n",
    "title: 'quoted'\n",
    'title: "quoted"\n',
    "title: x\n  continued\n",  # a multi-line plain scalar
    " title: x\n",
    "title: x\r\n",
    "title:\tx\n",
    "title: [a, [b]]\n",
    "tags: [a, b,]\n",
    "tags: [a: b]\n",
    "tags: [yes, no]\n",
    "tags: [1, 2]\n",
    "tags: [a] trailing\n",
    "tags:\n  - a\n  - b\n",
    "title: &anchor x\nother: *anchor\n",
    "title: !!str 12\n",
    "title: {a: b}\n",
    "title: |\n  block\n",
    "title: >\n  folded\n",
    "title: x]\n",
    "title: %x\n",
    "title: @x\n",
    "title: `x`\n",
    "<<: {a: b}\n",
    "=: x\n",
    "key: x\n---\n",
    "title: e\u0301\n",  # a combining mark: not a word character on its own
    "title: x\u2028y\n",  # a YAML line break
    "title: x\u0085y\n",
    "title: \ufeffx\n",
    "x" * 129 + ": long key\n",
]


@pytest.mark.parametrize("block", FAST)
def test_simple_blocks_take_the_fast_path_and_equal_yaml(block: str) -> None:
    assert assert_same(block) is not None


@pytest.mark.parametrize("block", YAML_ONLY)
def test_other_blocks_are_left_to_the_yaml_loader(block: str) -> None:
    assert simple_mapping(block) is None


def test_a_generated_corpus_reads_the_same_both_ways(tmp_path: Path) -> None:
    """Every frontmatter block of the benchmark corpus (its notes, daily notes and weekly
    reviews) and of the examples: the same mapping, and the same parsed note, as the loader."""
    corpus = tmp_path / "corpus"
    subprocess.run([sys.executable, str(REPO / "bench" / "make_corpus.py"), str(corpus),
                    "--notes", "400", "--daily", "60", "--binaries", "0"],
                   check=True, stdout=subprocess.DEVNULL)
    fast = 0
    notes = sorted([*corpus.rglob("*.md"), *(REPO / "examples").rglob("*.md")])
    assert len(notes) > 400
    for note in notes:
        text = note.read_text(encoding="utf-8")
        report = Report()
        frontmatter, broken, _body = read_frontmatter(text, report)
        assert broken is None, note
        block = text.split("---\n", 2)[1] if text.startswith("---\n") else ""
        if assert_same(block) is not None:
            fast += 1
            assert typed(frontmatter) == loaded(block)
            # The note as the sync stores it: the same as through the loader alone.
            assert parse_note(text, note.name) == parse_note(
                text.replace("---\n", "---\n#\n", 1), note.name), note
    assert fast > 350


SCALAR_PIECES = ["a", "Z", "x1", "_", "9", "12", "2024-01-02", "yes", "no", "on", "null",
                 "true", "~", " ", "  ", "-", ".", ",", ":", ": ", "#", " #", "'", '"', "[",
                 "]", "{", "}", "!", "&", "*", "?", "|", ">", "%", "@", "`", "/", "(", ")",
                 "+", "=", "<<", "\t", "\r", "é", "\u0301", "日", "\u2028", "0x1F", ".inf"]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(
    st.sampled_from(["title", "type", "tags", "on", "yes", "_k", "a-b", "permalink", "x"]),
    st.sampled_from([": ", ":", ":  ", " : "]),
    st.lists(st.sampled_from(SCALAR_PIECES), max_size=6).map("".join),
    st.booleans()), min_size=1, max_size=4))
def test_generated_blocks_never_differ(lines: list[tuple[str, str, str, bool]]) -> None:
    block = "".join(f"{key}{colon}{'[' + value + ']' if as_list else value}\n"
                    for key, colon, value, as_list in lines)
    assert_same(block)
