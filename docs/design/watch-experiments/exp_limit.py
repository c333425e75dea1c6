import os, shutil, sys, time
sys.path.insert(0, "/tmp/wr"); from lib import *
backend = sys.argv[1]
def setlimit(n): open("/proc/sys/user/max_inotify_watches", "w").write(str(n))
root = "/tmp/wr/lim"; shutil.rmtree(root, ignore_errors=True)
for i in range(10): os.makedirs(f"{root}/d{i}")
setlimit(5)
p = Probe(root, debounce=800, step=50) if backend == "watchfiles" else Probe(root, script="/tmp/wr/inprobe.py")
time.sleep(3); print("startup with limit 5 < 11 folders:", [l for l in p.lines if "error" in l or "lost" in l] or p.lines, "alive:", p.p.poll() is None)
p.stop()
setlimit(13)    # 11 folders + 2 spare
p = Probe(root, debounce=800, step=50) if backend == "watchfiles" else Probe(root, script="/tmp/wr/inprobe.py")
print("ready", round(p.wait_ready(), 2))
os.makedirs(f"{root}/new/a/b/c/d"); time.sleep(1.0)
with open(f"{root}/new/a/b/c/d/deep.md", "w") as f: f.write("x")
bs = p.drain(quiet=1.5); print("runtime: mkdir -p new/a/b/c/d (5 folders, 2 watches left) then write deep.md ->", [(b.get("changes"), b.get("lost"), b.get("error")) for b in bs])
with open(f"{root}/new/a/b/c/d/deep.md", "w") as f: f.write("y")
bs = p.drain(quiet=1.5); print("second write to deep.md ->", [(b.get("changes"), b.get("lost"), b.get("error")) for b in bs])
p.stop()
