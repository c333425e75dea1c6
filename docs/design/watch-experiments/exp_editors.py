import os, shutil, subprocess, sys, time, json
sys.path.insert(0, "/tmp/wr"); from lib import *
root = "/tmp/wr/small"; shutil.rmtree(root, ignore_errors=True); os.makedirs(root + "/folder/sub")
for i in range(100): open(f"{root}/folder/sub/n{i}.md", "w").write(f"note {i}\n")
open(f"{root}/note.md", "w").write("hello\n")
p = Probe(root, debounce=1600, step=50); print("ready in", round(p.wait_ready(), 2), "s")
def case(name, fn):
    t = time.time(); fn(); bs = p.drain(quiet=1.0)
    print(f"\n## {name}: {len(bs)} batch(es); first after {round(bs[0]['t']-t,3) if bs else None}s")
    for b in bs: print("  ", b.get("n"), b.get("changes"))
def w(path, text):
    with open(path, "w") as f: f.write(text)
case("single write (open O_TRUNC + write)", lambda: w(f"{root}/note.md", "v2\n"))
case("real vim :wq (default options)", lambda: subprocess.run(["vim", "-u", "NONE", "-N", "-i", "NONE", "-Es", "-c", "set backup writebackup", "-c", "normal Gox", "-c", "wq", f"{root}/note.md"]))
case("real vim :wq (-u DEFAULTS, i.e. nobackup writebackup)", lambda: subprocess.run(["vim", "-u", "DEFAULTS", "-i", "NONE", "-Es", "-c", "normal Goy", "-c", "wq", f"{root}/note.md"]))
def vim_sim():
    n = f"{root}/note.md"
    w(f"{root}/.note.md.swp", "swap"); w(f"{root}/4913", ""); os.unlink(f"{root}/4913")
    os.rename(n, n + "~"); w(n, "v3\n"); os.unlink(n + "~"); os.unlink(f"{root}/.note.md.swp")
case("vim pattern by hand (swp, 4913, rename to ~, write, delete ~)", vim_sim)
def atomic():
    w(f"{root}/.note.md.tmp123", "v4\n"); os.replace(f"{root}/.note.md.tmp123", f"{root}/note.md")
case("atomic temp + rename over", atomic)
def delcreate(): os.unlink(f"{root}/note.md"); w(f"{root}/note.md", "v5\n")
case("delete then create", delcreate)
case("touch (mtime only)", lambda: os.utime(f"{root}/note.md"))
case("folder rename folder -> folder2 (100 notes in folder/sub)", lambda: os.rename(f"{root}/folder", f"{root}/folder2"))
case("write in renamed folder", lambda: w(f"{root}/folder2/sub/n1.md", "x\n"))
case("mkdir -p new/a/b + file immediately", lambda: (os.makedirs(f"{root}/new/a/b"), w(f"{root}/new/a/b/x.md", "x")))
case("move folder out of root", lambda: shutil.move(f"{root}/new", "/tmp/wr/outside-new"))
shutil.rmtree("/tmp/wr/outside-new", ignore_errors=True)
os.makedirs("/tmp/wr/outside-in/a"); w("/tmp/wr/outside-in/a/y.md", "y")
case("move folder into root", lambda: shutil.move("/tmp/wr/outside-in", f"{root}/inside"))
case("write in moved-in folder", lambda: w(f"{root}/inside/a/y.md", "y2"))
p.stop()
