"""SQLite FTS5 layout measurements for issue 12 (research, not product code).

    /work/main/.venv/bin/python bench_fts.py CORPUS OUT.json [variant ...]

Loads every note of CORPUS (parsed with bm_sync.markdown, outside the timing), then per variant
writes a fresh database the way the sync would: one transaction per 200 notes, an entity-like
row per note, plus the search row(s). Reports seconds, per-note cost with and without search,
and the on-disk size (after a WAL checkpoint) against the markdown bytes.
"""
from __future__ import annotations

import json
import os
import re
import sqlite3
import sys
import time
import zlib
from pathlib import Path

sys.path.insert(0, "/work/main/src")
from bm_sync.markdown import _FRONTMATTER_CLOSE, _FRONTMATTER_OPEN, parse_note  # noqa: E402

OBS_LINE = re.compile(r"^\s*-\s*\[[^\]]+\]\s.*$", re.MULTILINE)
CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]+")
TOK = "unicode61 remove_diacritics 2"
COLS = "title, body, observations, tags, permalink, path"


def cjk_bigrams(text: str) -> str:
    """Runs of CJK characters as overlapping bigrams ("東京都" -> "東京 京都"); a lone char stays."""
    out = []
    for run in CJK.findall(text):
        out.append(run if len(run) == 1 else " ".join(run[i:i + 2] for i in range(len(run) - 1)))
    return " ".join(out)


def load(root: Path) -> tuple[list[dict], int]:
    rows, total = [], 0
    for dirpath, dirnames, files in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(files):
            if not name.endswith(".md"):
                continue
            full = Path(dirpath, name)
            raw = full.read_bytes()
            total += len(raw)
            text = raw.decode("utf-8", "replace")
            path = str(full.relative_to(root))
            note = parse_note(text, path)
            body = text
            opening = _FRONTMATTER_OPEN.match(text)
            if opening:
                closing = _FRONTMATTER_CLOSE.search(text, opening.end())
                if closing:
                    body = text[closing.end():]
            rows.append({
                "id": len(rows) + 1, "path": path, "title": note.title,
                "type": note.entity_type, "permalink": note.permalink or path[:-3].lower(),
                "tags": " ".join(note.tags), "body": body, "raw": text,
                "observations": "\n".join(
                    f"{o.category} {o.content} {' '.join(o.tags)} {o.context or ''}"
                    for o in note.observations),
            })
    return rows, total


def body_without_obs(body: str) -> str:
    return OBS_LINE.sub("", body)


def connect(path: str) -> sqlite3.Connection:
    if os.path.exists(path):
        os.remove(path)
    for suffix in ("-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=NORMAL")
    con.create_function("bm_unzip", 1, lambda b: zlib.decompress(b).decode() if b else None,
                        deterministic=True)
    con.execute("""CREATE TABLE entity (id INTEGER PRIMARY KEY, project_id INT, file_path TEXT
        UNIQUE, permalink TEXT, title TEXT, entity_type TEXT, content_type TEXT, checksum TEXT,
        size INT, mtime REAL, tags TEXT)""")
    con.execute("CREATE INDEX ix_title ON entity(title)")
    return con


# variant name -> (DDL list, function(row) -> list of (sql, params))
def ins(table: str, ncols: int) -> str:
    return f"INSERT INTO {table} VALUES ({', '.join('?' * ncols)})"


def fts_row(r: dict, split_obs: bool = True) -> tuple:
    body = body_without_obs(r["body"]) if split_obs else r["body"]
    return (r["id"], r["title"], body, r["observations"], r["tags"], r["permalink"], r["path"])


VARIANTS = {
    "none": ([], lambda r: []),
    "regular": ([f"CREATE VIRTUAL TABLE s USING fts5({COLS}, tokenize='{TOK}')"],
                lambda r: [(f"INSERT INTO s(rowid, {COLS}) VALUES (?,?,?,?,?,?,?)", fts_row(r))]),
    "regular_dup_obs": ([f"CREATE VIRTUAL TABLE s USING fts5({COLS}, tokenize='{TOK}')"],
                        lambda r: [(f"INSERT INTO s(rowid, {COLS}) VALUES (?,?,?,?,?,?,?)",
                                    fts_row(r, split_obs=False))]),
    "regular_colsize0": ([f"CREATE VIRTUAL TABLE s USING fts5({COLS}, tokenize='{TOK}', "
                          "columnsize=0)"],
                         lambda r: [(f"INSERT INTO s(rowid, {COLS}) VALUES (?,?,?,?,?,?,?)",
                                     fts_row(r))]),
    "regular_prefix23": ([f"CREATE VIRTUAL TABLE s USING fts5({COLS}, tokenize='{TOK}', "
                          "prefix='2 3')"],
                         lambda r: [(f"INSERT INTO s(rowid, {COLS}) VALUES (?,?,?,?,?,?,?)",
                                     fts_row(r))]),
    "detail_column": ([f"CREATE VIRTUAL TABLE s USING fts5({COLS}, tokenize='{TOK}', "
                       "detail=column)"],
                      lambda r: [(f"INSERT INTO s(rowid, {COLS}) VALUES (?,?,?,?,?,?,?)",
                                  fts_row(r))]),
    "detail_none": ([f"CREATE VIRTUAL TABLE s USING fts5({COLS}, tokenize='{TOK}', "
                     "detail=none)"],
                    lambda r: [(f"INSERT INTO s(rowid, {COLS}) VALUES (?,?,?,?,?,?,?)",
                                fts_row(r))]),
    "contentless": ([f"CREATE VIRTUAL TABLE s USING fts5({COLS}, tokenize='{TOK}', content='')"],
                    lambda r: [(f"INSERT INTO s(rowid, {COLS}) VALUES (?,?,?,?,?,?,?)",
                                fts_row(r))]),
    "external": ([f"CREATE TABLE sc (id INTEGER PRIMARY KEY, {COLS})",
                  f"CREATE VIRTUAL TABLE s USING fts5({COLS}, tokenize='{TOK}', content='sc', "
                  "content_rowid='id')"],
                 lambda r: [(ins("sc", 7), fts_row(r)),
                            (f"INSERT INTO s(rowid, {COLS}) VALUES (?,?,?,?,?,?,?)",
                             fts_row(r))]),
    # external content whose body is stored zlib-compressed, read back through a view
    "external_zlib": ([f"CREATE TABLE sc (id INTEGER PRIMARY KEY, title, zbody BLOB, "
                       "observations, tags, permalink, path)",
                       "CREATE VIEW sv AS SELECT id, title, bm_unzip(zbody) AS body, "
                       "observations, tags, permalink, path FROM sc",
                       f"CREATE VIRTUAL TABLE s USING fts5({COLS}, tokenize='{TOK}', "
                       "content='sv', content_rowid='id')"],
                      lambda r: (lambda row: [
                          (ins("sc", 7), (row[0], row[1], zlib.compress(row[2].encode(), 6),
                                          *row[3:])),
                          (f"INSERT INTO s(rowid, {COLS}) VALUES (?,?,?,?,?,?,?)", row)])(
                          fts_row(r))),
    # trigram over the whole body, as a second table (contentless: size of the index alone)
    "trigram_body": ([f"CREATE VIRTUAL TABLE t USING fts5(title, body, tokenize='trigram', "
                      "content='')"],
                     lambda r: [("INSERT INTO t(rowid, title, body) VALUES (?,?,?)",
                                 (r["id"], r["title"], r["body"]))]),
    # CJK bigram column beside the regular layout (empty for notes without CJK)
    "regular_cjk": ([f"CREATE VIRTUAL TABLE s USING fts5({COLS}, cjk, tokenize='{TOK}')"],
                    lambda r: [(f"INSERT INTO s(rowid, {COLS}, cjk) VALUES (?,?,?,?,?,?,?,?)",
                                (*fts_row(r), cjk_bigrams(r["title"] + " " + r["body"])))]),
}


def run(rows: list[dict], md_bytes: int, name: str, dbdir: str) -> dict:
    ddl, make = VARIANTS[name]
    path = f"{dbdir}/{name}.db"
    con = connect(path)
    for stmt in ddl:
        con.execute(stmt)
    start = time.perf_counter()
    cpu0 = time.process_time()
    for i in range(0, len(rows), 200):
        batch = rows[i:i + 200]
        con.execute("BEGIN")
        con.executemany(
            "INSERT INTO entity VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            [(r["id"], 1, r["path"], r["permalink"], r["title"], r["type"], "text/markdown",
              "0" * 40, len(r["raw"]), 0.0, r["tags"]) for r in batch])
        stmts: dict[str, list] = {}
        for r in batch:
            for sql, params in make(r):
                stmts.setdefault(sql, []).append(params)
        for sql, params in stmts.items():
            con.executemany(sql, params)
        con.execute("COMMIT")
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - cpu0
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    size = os.path.getsize(path)
    con.close()
    return {"variant": name, "notes": len(rows), "seconds": round(elapsed, 3),
            "ms_per_note": round(elapsed * 1000 / len(rows), 4),
            "cpu_ms_per_note": round(cpu * 1000 / len(rows), 4), "db_bytes": size,
            "md_bytes": md_bytes}


def main() -> None:
    corpus, out = Path(sys.argv[1]), sys.argv[2]
    names = sys.argv[3:] or list(VARIANTS)
    t0 = time.perf_counter()
    rows, md_bytes = load(corpus)
    print(f"loaded {len(rows)} notes, {md_bytes / 1e6:.1f} MB in {time.perf_counter() - t0:.1f}s",
          flush=True)
    dbdir = f"/tmp/fts/db-{corpus.name}"
    os.makedirs(dbdir, exist_ok=True)
    results = []
    base = None
    for name in names:
        result = run(rows, md_bytes, name, dbdir)
        if name == "none":
            base = result
        if base:
            result["extra_ms_per_note"] = round(result["ms_per_note"] - base["ms_per_note"], 4)
            result["extra_cpu_ms_per_note"] = round(
                result["cpu_ms_per_note"] - base["cpu_ms_per_note"], 4)
            result["extra_bytes_vs_md"] = round((result["db_bytes"] - base["db_bytes"]) / md_bytes, 3)
        print(json.dumps(result), flush=True)
        results.append(result)
    Path(out).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
