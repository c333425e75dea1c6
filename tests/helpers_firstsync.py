"""A project's rows as a user sees them, keyed by paths rather than row ids: two syncs that
built the same database compare equal, whatever ids their rows were given."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bm_sync.search import SearchDoc, project_token
from tests.helpers_pgfirst import Database

ENTITY_COLUMNS = ("file_path", "permalink", "title", "entity_type", "content_type", "checksum",
                  "checksum_kind", "size", "mtime", "tags", "wanted_permalink",
                  "wanted_permalink_explicit")


def project_rows(database: Database, root: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every entity, observation, relation and search document of the project synced from
    `root`, in path order and, within a note, in row order."""
    project = database.query(root, "SELECT id FROM project WHERE root_path = ?",
                             str(root.resolve()))[0][0]
    rows = {
        "entity": database.query(
            root, f"SELECT {', '.join(ENTITY_COLUMNS)} FROM entity WHERE project_id = ? "
                  "ORDER BY file_path", project),
        "observation": database.query(
            root, "SELECT e.file_path, o.category, o.content, o.tags, o.context "
                  "FROM observation o JOIN entity e ON e.id = o.entity_id "
                  "WHERE e.project_id = ? ORDER BY e.file_path, o.id", project),
        "relation": database.query(
            root, "SELECT f.file_path, t.file_path, r.to_name, r.relation_type, r.context "
                  "FROM relation r JOIN entity f ON f.id = r.from_id "
                  "LEFT JOIN entity t ON t.id = r.to_id WHERE f.project_id = ? "
                  "ORDER BY f.file_path, r.id", project),
    }
    if database.is_postgres:
        rows["search"] = database.query(
            root, "SELECT e.file_path, s.z, s.tsv::text FROM search_text s "
                  "JOIN entity e ON e.id = s.entity_id WHERE s.project_id = ? "
                  "ORDER BY e.file_path", project)
    else:
        rows["search"] = database.query(
            root, "SELECT e.file_path, s.z FROM search_text s "
                  "JOIN entity e ON e.id = s.entity_id WHERE s.project_id = ? "
                  "ORDER BY e.file_path", project)
        # The FTS index of a SQLite database file holds this project alone.
        rows["search"].append(database.query(root, "SELECT count(*) FROM note_search")[0])
    token = project_token(project)
    rows["search"] = [_without_project(row, token) for row in rows["search"]]
    return rows


def _without_project(row: tuple[Any, ...], token: str) -> tuple[Any, ...]:
    """A search row with the project's filter token taken out of its values (two projects of
    one database index the same note under different tokens)."""
    if len(row) == 1:  # the FTS row count
        return row
    path, z, *tsv = row
    values = list(SearchDoc.unpack(bytes(z)))
    values[-1] = " ".join(part for part in values[-1].split() if part != token)
    return (path, values, *(" ".join(part for part in text.split() if part != f"'#{token}'")
                            for text in tsv))
