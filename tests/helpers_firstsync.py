"""A project's rows as a user sees them, keyed by paths rather than row ids: two syncs that
built the same database compare equal, whatever ids their rows were given."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.helpers_pgfirst import Database

ENTITY_COLUMNS = ("file_path", "permalink", "title", "entity_type", "content_type", "checksum",
                  "checksum_kind", "size", "mtime", "tags", "wanted_permalink",
                  "wanted_permalink_explicit")


def project_rows(database: Database, root: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every entity, observation, relation and search document of the project synced from
    `root` (one project per database), in path order and, within a note, in row order."""
    rows = {
        "entity": database.query(
            root, f"SELECT {', '.join(ENTITY_COLUMNS)} FROM entity ORDER BY file_path"),
        "observation": database.query(
            root, "SELECT e.file_path, o.category, o.content, o.tags, o.context "
                  "FROM observation o JOIN entity e ON e.id = o.entity_id "
                  "ORDER BY e.file_path, o.id"),
        "relation": database.query(
            root, "SELECT f.file_path, t.file_path, r.to_name, r.relation_type, r.context "
                  "FROM relation r JOIN entity f ON f.id = r.from_id "
                  "LEFT JOIN entity t ON t.id = r.to_id ORDER BY f.file_path, r.id"),
    }
    if database.is_postgres:
        rows["search"] = database.query(
            root, "SELECT e.file_path, s.z, s.tsv::text FROM search_text s "
                  "JOIN entity e ON e.id = s.entity_id ORDER BY e.file_path")
    else:
        rows["search"] = database.query(
            root, "SELECT e.file_path, s.z FROM search_text s "
                  "JOIN entity e ON e.id = s.entity_id ORDER BY e.file_path")
        rows["search"].append(database.query(root, "SELECT count(*) FROM note_search")[0])
    return {table: [tuple(bytes(value) if isinstance(value, memoryview) else value
                          for value in row) for row in table_rows]
            for table, table_rows in rows.items()}
