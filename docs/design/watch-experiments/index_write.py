"""Index write cost at 100k: dulwich write_index (bm today) vs a byte splice + SHA-1 (proposed).
Run with /work/main/.venv/bin/python index_write.py /path/to/.basic-memory/index (copy it first)."""
import hashlib, os, struct, sys, time
from pathlib import Path
from bm_sync.index_format import read_index, write_index
src = sys.argv[1]; buf = open(src, "rb").read()
snap = read_index(Path(src)); entries = list(snap.entries())
c = time.process_time(); write_index(Path("/tmp/index-out"), entries, len(entries), {}, [])
print(f"dulwich write_index: {1000*(time.process_time()-c):.0f} ms cpu for {len(entries)} entries")
n = struct.unpack(">I", buf[8:12])[0]; off = 12; offs = []
for _ in range(n):
    nl = struct.unpack_from(">H", buf, off + 60)[0] & 0xFFF; ln = 62 + nl; ln += 8 - ln % 8
    offs.append((off, off + ln)); off += ln
c = time.process_time(); mv = memoryview(buf)
body = b"".join([buf[:12], *(mv[a:b] for a, b in offs), buf[off:-20]]); out = body + hashlib.sha1(body).digest()
print(f"splice of {n} slices + sha1: {1000*(time.process_time()-c):.0f} ms cpu; identical={out == buf}")
