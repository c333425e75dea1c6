"""Chosen SQLite layout vs the plain FTS5 table: build, edit/move/delete exactness, queries.

    /work/main/.venv/bin/python bench_query.py CORPUS LAYOUT [--edits]

LAYOUT: "side" = contentless FTS5 (content='') + a side table holding the indexed values
zlib-compressed (for exact deletes and for snippets); "regular" = FTS5 storing its own content.
"""
from __future__ import annotations

import json
import os
import random
import statistics
import sys
import time
import zlib

sys.path.insert(0, "/work/research")
from bench_fts import COLS, TOK, body_without_obs, cjk_bigrams, connect, load  # noqa: E402

from snippet import make_snippet  # noqa: E402

ALL = COLS + ", cjk"
WEIGHTS = "10.0, 1.0, 2.0, 5.0, 3.0, 1.0, 1.0"  # title body observations tags permalink path cjk


def values(r: dict) -> tuple:
    return (r["title"], body_without_obs(r["body"]), r["observations"], r["tags"],
            r["permalink"], r["path"], cjk_bigrams(r["title"] + " " + r["body"]))


def create(con, layout: str) -> None:
    if layout == "side":
        con.execute(f"CREATE VIRTUAL TABLE note_search USING fts5({ALL}, tokenize='{TOK}', "
                    "content='')")
        con.execute("CREATE TABLE note_search_text (entity_id INTEGER PRIMARY KEY, z BLOB)")
    else:
        con.execute(f"CREATE VIRTUAL TABLE note_search USING fts5({ALL}, tokenize='{TOK}')")


def insert(con, layout: str, items: list[tuple[int, tuple]]) -> None:
    con.executemany(f"INSERT INTO note_search(rowid, {ALL}) VALUES (?,?,?,?,?,?,?,?)",
                    [(i, *v) for i, v in items])
    if layout == "side":
        con.executemany("INSERT INTO note_search_text VALUES (?, ?)",
                        [(i, zlib.compress(json.dumps(v).encode(), 1)) for i, v in items])


def delete(con, layout: str, ids: list[int]) -> None:
    if layout == "side":
        marks = ",".join("?" * len(ids))
        old = con.execute(f"SELECT entity_id, z FROM note_search_text WHERE entity_id IN ({marks})",
                          ids).fetchall()
        con.executemany(
            f"INSERT INTO note_search(note_search, rowid, {ALL}) VALUES ('delete',?,?,?,?,?,?,?,?)",
            [(i, *json.loads(zlib.decompress(z))) for i, z in old])
        con.execute(f"DELETE FROM note_search_text WHERE entity_id IN ({marks})", ids)
    else:
        con.execute(f"DELETE FROM note_search WHERE rowid IN ({','.join('?' * len(ids))})", ids)


def queries(rows: list[dict]) -> list[tuple[str, str | None]]:
    rng = random.Random(3)
    words = ["sync", "budget", "latency", "garden", "coffee", "release", "keyboard", "winter",
             "harbor", "lantern", "orchard", "retrospective", "quarterly", "meadow", "beacon",
             "schema", "ledger", "brainstorm", "compass", "puzzle"]
    phrases = ['"sync index"', '"coffee morning"', '"quiet harbor"', '"release plan"',
               '"the graph"', '"memory stream"', '"open garden"', '"daily journal"',
               '"budget review"', '"hidden lantern"']
    prefixes = ["syn*", "lat*", "gard*", "retro*", "quart*", "lant*", "budg*", "key*", "orch*",
                "sched*"]
    tagged = [(w, t) for w, t in zip(rng.sample(words, 10),
              ["garden", "coffee", "travel", "habit", "metric", "release", "server", "laptop",
               "summer", "winter"])]
    return ([(w, None) for w in words] + [(p, None) for p in phrases]
            + [(p, None) for p in prefixes] + tagged)


def search(con, layout: str, q: str, tag: str | None, limit: int = 10):
    match = q if tag is None else f'({q}) AND tags : "{tag}"'
    sql = (f"SELECT s.rowid, e.file_path, e.title, e.permalink, bm25(note_search, {WEIGHTS}) AS r"
           + (", snippet(note_search, 1, '[', ']', '…', 12)" if layout == "regular" else "")
           + " FROM note_search s JOIN entity e ON e.id = s.rowid WHERE note_search MATCH ?"
           " AND e.project_id = 1 ORDER BY r LIMIT ?")
    hits = con.execute(sql, (match, limit)).fetchall()
    if layout == "side" and hits:
        ids = [h[0] for h in hits]
        texts = dict(con.execute(
            f"SELECT entity_id, z FROM note_search_text WHERE entity_id IN "
            f"({','.join('?' * len(ids))})", ids).fetchall())
        hits = [(*h, make_snippet(json.loads(zlib.decompress(texts[h[0]]))[1], q))
                for h in hits]
    return hits


def main() -> None:
    corpus, layout = sys.argv[1], sys.argv[2]
    edits = "--edits" in sys.argv
    rows, md_bytes = load(corpus)
    print(f"loaded {len(rows)} notes {md_bytes / 1e6:.1f} MB", flush=True)
    path = f"/tmp/fts/q-{os.path.basename(corpus)}-{layout}.db"
    con = connect(path)
    create(con, layout)
    t0, c0 = time.perf_counter(), time.process_time()
    for i in range(0, len(rows), 200):
        batch = rows[i:i + 200]
        con.execute("BEGIN")
        con.executemany("INSERT INTO entity VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                        [(r["id"], 1, r["path"], r["permalink"], r["title"], r["type"],
                          "text/markdown", "0" * 40, len(r["raw"]), 0.0, r["tags"])
                         for r in batch])
        insert(con, layout, [(r["id"], values(r)) for r in batch])
        con.execute("COMMIT")
    build = time.perf_counter() - t0, time.process_time() - c0
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    out = {"corpus": corpus, "layout": layout, "notes": len(rows), "md_bytes": md_bytes,
           "build_s": round(build[0], 2), "build_cpu_s": round(build[1], 2),
           "db_bytes": os.path.getsize(path)}
    out["fts_bytes"] = con.execute(
        "SELECT sum(pgsize) FROM dbstat WHERE name LIKE 'note_search%'").fetchone()[0]
    out["fts_vs_md"] = round(out["fts_bytes"] / md_bytes, 3)
    print(json.dumps(out), flush=True)

    if edits:  # 10% edited (new text), 5% moved, 5% deleted, in batches of 200
        rng = random.Random(5)
        ids = rng.sample(range(1, len(rows) + 1), len(rows) // 5)
        edit, move, gone = ids[: len(ids) // 2], ids[len(ids) // 2: 3 * len(ids) // 4], ids[3 * len(ids) // 4:]
        t0, c0 = time.perf_counter(), time.process_time()
        for group, kind in ((edit, "edit"), (move, "move"), (gone, "delete")):
            for i in range(0, len(group), 200):
                chunk = group[i:i + 200]
                con.execute("BEGIN")
                delete(con, layout, chunk)
                if kind != "delete":
                    new = []
                    for n in chunk:
                        r = dict(rows[n - 1])
                        if kind == "edit":
                            r["body"] = "zebraword " + r["body"][::-1]
                        else:
                            r["path"] = "Moved Folder/" + r["path"]
                        rows[n - 1] = r
                        new.append((n, values(r)))
                    insert(con, layout, new)
                else:
                    con.execute(f"DELETE FROM entity WHERE id IN ({','.join('?' * len(chunk))})",
                                chunk)
                con.execute("COMMIT")
        took = time.perf_counter() - t0, time.process_time() - c0
        n = len(edit) + len(move) + len(gone)
        check = {
            "changes": n, "ms_per_change": round(took[0] * 1000 / n, 3),
            "cpu_ms_per_change": round(took[1] * 1000 / n, 3),
            "zebra_hits": con.execute("SELECT count(*) FROM note_search WHERE note_search MATCH "
                                      "'zebraword'").fetchone()[0], "zebra_expected": len(edit),
            "moved_hits": con.execute("SELECT count(*) FROM note_search WHERE note_search MATCH "
                                      "'path : moved'").fetchone()[0], "moved_expected": len(move),
            "rows": con.execute("SELECT count(*) FROM note_search WHERE note_search MATCH "
                                "'path : md'").fetchone()[0],
            "rows_expected": len(rows) - len(gone),
        }
        # a word only in the old (pre-edit) text of an edited note must no longer find it
        if layout == "regular":
            check["integrity"] = str(con.execute(
                "INSERT INTO note_search(note_search) VALUES ('integrity-check')").fetchall())
        print(json.dumps(check), flush=True)
        out["edits"] = check

    qs = queries(rows)
    for q, tag in qs[:5]:  # warm the page cache
        search(con, layout, q, tag)
    lat, kinds = [], {}
    for q, tag in qs:
        t = time.perf_counter()
        hits = search(con, layout, q, tag)
        ms = (time.perf_counter() - t) * 1000
        lat.append(ms)
        kind = "tag" if tag else ("phrase" if q.startswith('"') else
                                  ("prefix" if q.endswith("*") else "word"))
        kinds.setdefault(kind, []).append(ms)
    lat.sort()
    out["queries"] = len(qs)
    out["p50_ms"] = round(statistics.median(lat), 2)
    out["p95_ms"] = round(lat[int(len(lat) * 0.95) - 1], 2)
    out["max_ms"] = round(lat[-1], 2)
    out["by_kind_p50"] = {k: round(statistics.median(v), 2) for k, v in kinds.items()}
    out["example"] = [list(map(str, h)) for h in search(con, layout, '"sync index"', None, 2)]
    print(json.dumps(out), flush=True)
    with open(f"/work/research/query-{os.path.basename(corpus)}-{layout}.json", "w") as f:
        json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
