"""Same JSON lines as probe.py, from the ctypes inotify prototype."""
import json, os, sys, time
sys.path.insert(0, "/tmp/wr"); from inotify_proto import Inotify
root = sys.argv[1]
print(json.dumps({"t": time.time(), "start": True, "pid": os.getpid()}), flush=True)
t = time.time(); w = Inotify(root); w.pending.clear()
print(json.dumps({"t": time.time(), "watching_dirs": len(w.wd_path), "setup_s": round(time.time() - t, 3)}), flush=True)
while True:
    paths, lost = w.take(timeout=None)
    items = sorted(["changed", os.fsdecode(p)] for p in paths)
    out = {"t": time.time(), "n": len(items), "changes": items if len(items) <= 60 else items[:20], "events": w.events}
    if lost: out["lost"] = lost
    print(json.dumps(out), flush=True)
