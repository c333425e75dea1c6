import sqlite3, time, statistics, sys
db = sys.argv[1]
con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
W = "10.0, 1.0, 2.0, 5.0, 3.0, 1.0, 1.0"
qs = ["sync", "budget", "harbor", '"sync index"', "syn*", "retrospective", "lantern", '"quiet harbor"', "zebraword", "orch*"]
forms = {
 "join_bm25": f"SELECT s.rowid, e.file_path, bm25(note_search, {W}) r FROM note_search s JOIN entity e ON e.id=s.rowid WHERE note_search MATCH ? AND e.project_id=1 ORDER BY r LIMIT 10",
 "sub_bm25": f"SELECT h.id, e.file_path FROM (SELECT rowid id, bm25(note_search, {W}) r FROM note_search WHERE note_search MATCH ? ORDER BY r LIMIT 10) h JOIN entity e ON e.id=h.id",
 "sub_rank": "SELECT h.id, e.file_path FROM (SELECT rowid id, rank r FROM note_search WHERE note_search MATCH ? ORDER BY rank LIMIT 10) h JOIN entity e ON e.id=h.id",
 "count": "SELECT count(*) FROM note_search WHERE note_search MATCH ?",
 "unranked_limit": "SELECT rowid FROM note_search WHERE note_search MATCH ? LIMIT 10",
}
for name, sql in forms.items():
    for q in qs[:2]: con.execute(sql, (q,)).fetchall()
    lat = []
    for q in qs:
        t = time.process_time(); con.execute(sql, (q,)).fetchall(); lat.append((time.process_time()-t)*1000)
    lat.sort()
    print(name.ljust(15), "p50 %.1f max %.1f ms" % (statistics.median(lat), lat[-1]), [round(x) for x in lat])
print("matches per query:", [con.execute(forms["count"], (q,)).fetchone()[0] for q in qs])
