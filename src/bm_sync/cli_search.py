"""`bm search` and `bm show`: thin commands over `SyncEngine.search` and `SyncEngine.show`.

They only read; on SQLite through the stdlib driver (no SQLAlchemy import). A plain `bm
search` never gets here: the console entry answers it without typer (`bm_sync.search_fast`,
whose `print_result` this command shares), and sends here only what it cannot answer.
A malformed query is one line and exit 2 (`bm search: unterminated phrase at column 7`); a
folder without a search index, or a note `bm show` cannot name, is one line and exit 1.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from bm_sync.roots import find_root
from bm_sync.search_fast import print_result

if TYPE_CHECKING:
    from bm_sync.search import NoteView, SearchResult

DatabaseOption = Annotated[
    str | None,
    typer.Option("--db", envvar="BM_DATABASE_URL",
                 help="SQLAlchemy async URL (default: SQLite in <PATH>/.basic-memory/memory.db)."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]


def register(app: typer.Typer) -> None:
    app.command("search")(search)
    app.command("show")(show)


def search(
    query: Annotated[str, typer.Argument(
        help='Words, "phrases", prefix*, AND, OR, NOT or -word, (groups).')],
    path: Annotated[Path, typer.Argument(
        help="The notes folder, or a folder in it to search below (default: .).")] = Path("."),
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000,
                                       help="How many hits (default 10).")] = 10,
    entity_type: Annotated[str | None, typer.Option(
        "--type", help="Only notes of this type (frontmatter `type`; `file` for others).")
    ] = None,
    tags: Annotated[list[str] | None, typer.Option(
        "--tag", help="Only notes with this frontmatter tag (repeat: all of them).")] = None,
    json_output: JsonOption = False,
    database_url: DatabaseOption = None,
) -> None:
    """Full-text search of the notes the last sync indexed, best match first."""
    from bm_sync.search import SearchQueryError
    from bm_sync.sync import SyncEngine

    if not path.is_dir():
        raise typer.BadParameter(f"not a folder: {path}")
    root = find_root(os.path.realpath(path))
    below = os.path.realpath(path) if Path(os.path.realpath(path)) != root else None

    async def run() -> SearchResult:
        async with SyncEngine.open(root, database_url) as engine:
            return await engine.search(query, limit=limit, type=entity_type, tag=tags or (),
                                       path=below)

    try:
        result = asyncio.run(run())
    except SearchQueryError as error:
        print(f"bm search: {error}", file=sys.stderr)
        raise typer.Exit(2) from None
    print_result(result, json_output)


def show(
    note: Annotated[str, typer.Argument(
        help="A note: its path, permalink or title.")],
    root: Annotated[Path | None, typer.Option(
        "--root", help="The notes folder (default: found upward from NOTE or here).")] = None,
    json_output: JsonOption = False,
    database_url: DatabaseOption = None,
) -> None:
    """A note's entity, observations, outgoing relations and backlinks."""
    from bm_sync.sync import SyncEngine

    on_disk = os.path.realpath(note) if os.path.exists(note) else None
    notes_root = root if root is not None else find_root(on_disk or os.getcwd())
    if not notes_root.is_dir():
        raise typer.BadParameter(f"not a folder: {notes_root}")
    reference = on_disk or note

    async def run() -> NoteView:
        async with SyncEngine.open(notes_root, database_url) as engine:
            return await engine.show(reference)

    view = asyncio.run(run())
    if json_output:
        print(json.dumps(view.to_json(), ensure_ascii=False))
        return
    print("\n".join(note_lines(view)))


def note_lines(view: NoteView) -> list[str]:
    """`bm show`'s text: a header line, then a section per kind of row, empty ones left out."""
    lines = [view.title, f"  path: {view.path}", f"  permalink: {view.permalink or '-'}",
             f"  type: {view.type}"]
    if view.tags:
        lines.append(f"  tags: {', '.join(view.tags)}")
    if view.observations:
        lines.append("observations:")
        for item in view.observations:
            tags = "".join(f" #{tag}" for tag in item.tags)
            context = f" ({item.context})" if item.context else ""
            lines.append(f"  - [{item.category}] {item.content}{tags}{context}")
    if view.relations:
        lines.append("relations:")
        for relation in view.relations:
            target = relation.target_path or "unresolved"
            lines.append(f"  - {relation.relation_type} [[{relation.target}]] -> {target}")
    if view.backlinks:
        lines.append("backlinks:")
        for link in view.backlinks:
            state = "" if link.resolved else " (unresolved: names it in another case)"
            lines.append(f"  - {link.from_path} ({link.from_title}) {link.relation_type}{state}")
    return lines
