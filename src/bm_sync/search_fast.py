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

import hashlib
import json
import os
import re
import struct
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from bm_sync.search import SearchQueryError

if TYPE_CHECKING:
    from bm_sync.search import SearchResult

# What the engine's modules name, which this one must not import (a test keeps them equal).
PROJECT_META = "project_id"  # bm_sync.identity.PROJECT_META
STATE_DIR = ".basic-memory"  # bm_sync.detector.STATE_DIR
INDEX_FILE = "index"  # bm_sync.detector.INDEX_FILE
META_EXTENSION = b"BMMT"  # bm_sync.index_format.META_EXTENSION
REVISION_SQL = "SELECT version_num FROM alembic_version"  # bm_sync.db.state.REVISION_SQL
PROJECT_SQL = "SELECT id, root_path FROM project WHERE uuid = :uuid"
_HEADER_SIZE = 12  # DIRC, version, entry count
_SHA_LEN = 20
_EOIE = struct.Struct(">4sLL20s")  # git's End Of Index Entries: where the extensions start
_EXTENSION = struct.Struct(">4sL")
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

    recorded = recorded_project_id(root / STATE_DIR / INDEX_FILE)
    if recorded is None:
        return None

    def project(query: search_rows.Query) -> int | None:
        if [tuple(row) for row in query(REVISION_SQL, {})] != [(HEAD_REVISION,)]:
            return None
        rows = query(PROJECT_SQL, {"uuid": recorded})
        if len(rows) != 1 or Path(rows[0][1]) != root:
            return None
        return int(rows[0][0])

    return search_rows.run_on_file(database, project)


def recorded_project_id(index_path: Path) -> str | None:
    """The project id the index records (its `BMMT` extension), read from the end of the file
    through git's EOIE extension: the tail only, not the entries (12 MB and a checksum at 100k
    notes). None when the file has no valid EOIE or no id: the full CLI then reads it whole."""
    try:
        with open(index_path, "rb") as index_file:
            size = index_file.seek(0, os.SEEK_END)
            eoie_start = size - _SHA_LEN - _EOIE.size
            if eoie_start < _HEADER_SIZE:
                return None
            index_file.seek(eoie_start)
            signature, length, offset, extensions_hash = _EOIE.unpack(
                index_file.read(_EOIE.size))
            if (signature != b"EOIE" or length != _EOIE.size - 8
                    or not _HEADER_SIZE <= offset <= eoie_start):
                return None
            index_file.seek(offset)
            extensions = index_file.read(eoie_start - offset)
    except OSError:
        return None
    headers, meta, position = hashlib.sha1(), None, 0
    while position < len(extensions):
        header = extensions[position:position + _EXTENSION.size]
        if len(header) < _EXTENSION.size:
            return None
        headers.update(header)
        name, length = _EXTENSION.unpack(header)
        if name == META_EXTENSION:
            meta = extensions[position + _EXTENSION.size:position + _EXTENSION.size + length]
        position += _EXTENSION.size + length
    if position != len(extensions) or headers.digest() != extensions_hash or meta is None:
        return None
    try:
        recorded = json.loads(meta).get(PROJECT_META)
    except (ValueError, AttributeError):
        return None
    return recorded if isinstance(recorded, str) and recorded else None


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
