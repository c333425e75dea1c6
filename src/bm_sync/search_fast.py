"""`bm search` without the full CLI: most of a `bm search` process was start-up (typer,
pydantic, the sync engine's modules: ~0.5 s of CPU against ~0.05 s for the query itself), so
the console entry (`bm_sync.entry`) answers the plain case here, importing only the standard
library and the search modules.

The plain case: a command line this parser fully understands (`bm search QUERY [PATH]
[--json] [--limit N] [--type T] [--tag T]... [--db URL]`, options before or after the
arguments), a well-formed query, a SQLite database file, and a folder whose index names a
project that the database holds at this folder's path, at this bm's revision (the first
rule of `bm_sync.identity.identify`). Then the query runs through the same
`search_reader.find` as `SyncEngine.search`, and `print_result` prints what `bm search`
prints. Anything else (help, an unknown or malformed option, a malformed query, PostgreSQL, a
moved or copied folder, no search index, any error) returns None: the full CLI then does the
work and says what is wrong, with the same words as always.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from bm_sync.search import SearchQueryError

if TYPE_CHECKING:
    from bm_sync.search import SearchResult

PROJECT_META = "project_id"  # bm_sync.identity.PROJECT_META (a test keeps them equal)
STATE_DIR = ".basic-memory"  # bm_sync.detector.STATE_DIR
INDEX_FILE = "index"  # bm_sync.detector.INDEX_FILE
LIMIT_MAX = 1000  # cli_search: --limit's range is 1..1000
_DIGITS = re.compile(r"[0-9]+")


@dataclass
class SearchCommand:
    """A `bm search` command line, as the full CLI would read it."""

    query: str
    path: str = "."
    limit: int = 10
    entity_type: str | None = None
    tags: list[str] = field(default_factory=list)
    json: bool = False
    database: str | None = None


def parse_command(arguments: Sequence[str]) -> SearchCommand | None:
    """The `bm search` command of `arguments` (`sys.argv[1:]`), or None when it is not one
    this parser reads exactly as typer would."""
    if not arguments or arguments[0] != "search":
        return None
    positional: list[str] = []
    values: dict[str, list[str]] = {"--limit": [], "--type": [], "--tag": [], "--db": []}
    as_json = False
    rest = list(arguments[1:])
    while rest:
        argument = rest.pop(0)
        name, equals, value = argument.partition("=")
        if argument == "--json":
            as_json = True
        elif name in values and equals:
            values[name].append(value)
        elif argument in values and rest:
            values[argument].append(rest.pop(0))
        elif argument.startswith("-"):
            return None  # --help, `--`, a query that starts with `-`, a typo: typer's
        else:
            positional.append(argument)
    if not 1 <= len(positional) <= 2 or len(values["--limit"]) > 1:
        return None
    limit = values["--limit"][-1] if values["--limit"] else "10"
    if not _DIGITS.fullmatch(limit) or not 1 <= int(limit) <= LIMIT_MAX:
        return None
    return SearchCommand(
        query=positional[0], path=positional[1] if len(positional) > 1 else ".",
        limit=int(limit), entity_type=values["--type"][-1] if values["--type"] else None,
        tags=values["--tag"], json=as_json,
        database=values["--db"][-1] if values["--db"] else None)


def answer(arguments: Sequence[str]) -> tuple[SearchResult, bool] | None:
    """The result of a plain `bm search` (see the module doc) and whether to print it as
    JSON (`print_result`), or None. Prints nothing: what fails here is redone in full."""
    from bm_sync import fsmonitor
    from bm_sync.db import search as search_rows
    from bm_sync.db.urls import database_url, sqlite_file
    from bm_sync.search_query import parse_query
    from bm_sync.search_reader import find

    command = parse_command(arguments)
    if command is None or not os.path.isdir(command.path):
        return None
    try:
        node = parse_query(command.query)
    except SearchQueryError:
        return None
    target = os.path.realpath(command.path)
    root_name = fsmonitor.find_state_root(target)
    if root_name is None:
        return None
    root = Path(root_name)
    database = sqlite_file(database_url(root / STATE_DIR, command.database))
    if database is None or not database.is_file():
        return None
    project_id = _plain_project(root, database)
    if project_id is None:
        return None
    folder = os.path.relpath(target, root).replace(os.sep, "/") if target != root_name else None
    result = search_rows.run_on_file(database, lambda query: find(
        query, node, command.query, project_id=project_id, sqlite=True, limit=command.limit,
        entity_type=command.entity_type, tags=command.tags, folder=folder))
    return result, command.json


def _plain_project(root: Path, database: Path) -> int | None:
    """The id of the project the folder's index names, when the database holds it at this
    folder's path and at this bm's revision; else None (the full CLI decides)."""
    from bm_sync.db import HEAD_REVISION
    from bm_sync.db import search as search_rows
    from bm_sync.db.state import PROJECT_BY_ID_SQL, REVISION_SQL
    from bm_sync.index_format import read_index

    recorded = read_index(root / STATE_DIR / INDEX_FILE).meta.get(PROJECT_META)
    if not isinstance(recorded, str) or not recorded:
        return None

    def project(query: search_rows.Query) -> int | None:
        if [tuple(row) for row in query(REVISION_SQL, {})] != [(HEAD_REVISION,)]:
            return None
        rows = query(PROJECT_BY_ID_SQL, {"uuid": recorded})
        if len(rows) != 1 or Path(rows[0][2]) != root:
            return None
        return int(rows[0][0])

    return search_rows.run_on_file(database, project)


def print_result(result: SearchResult, as_json: bool) -> None:
    """What `bm search` prints: one JSON object, or a line per hit and its snippet (a note on
    stderr when the ranking was bounded)."""
    if as_json:
        print(json.dumps(result.to_json(), ensure_ascii=False))
        return
    if result.ranking == "bounded":
        print("bm: note: many notes match: the newest were ranked (narrow the query to rank "
              "them all)", file=sys.stderr)
    if not result.hits:
        print("no matches")
    for hit in result.hits:
        print(f"{hit.path}  {hit.title}")
        if hit.snippet:
            print(f"    {hit.snippet}")
