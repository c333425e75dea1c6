"""Prototype watcher with an fsmonitor socket: token = instance:seq, cookie flush, dirty set since last batch."""
import json, os, socket, sys, threading, time, uuid
sys.path.insert(0, "/tmp/wr"); from inotify_proto import Inotify
root = os.path.abspath(sys.argv[1]); state = os.path.join(root, ".basic-memory"); cookies = os.path.join(state, "cookies")
os.makedirs(cookies, exist_ok=True)
class W(Inotify):
    def __init__(self, root):
        self.cookie_seen = set(); super().__init__(root)
        self._add(b".basic-memory/cookies")
    def _run(self):  # wrap: peel cookie events off before the normal handling (prototype: via pending)
        super()._run()
w = W(root); w.pending.clear()
instance = uuid.uuid4().hex[:12]; seq = 0; lock = threading.Lock(); n = 0
def wait_cookie():
    global n
    n += 1; name = f"{os.getpid()}-{n}"; path = os.path.join(cookies, name)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600); os.close(fd); os.unlink(path)
    key = f".basic-memory/cookies/{name}".encode()
    with w.cond:
        ok = w.cond.wait_for(lambda: key in w.pending or w.lost, 1.0)
        w.pending.discard(key)
        return ok and not w.lost
def handle(conn):
    global seq
    req = json.loads(conn.makefile().readline())
    with lock:
        ok = wait_cookie()
        with w.cond:
            dirty = sorted(os.fsdecode(p) for p in w.pending if not p.startswith(b".basic-memory/"))
        token = f"{instance}:{seq}"
        trivial = (not ok) or req.get("token", "").split(":")[0] not in ("", instance)
        reply = {"token": token, "trivial": trivial, "dirty": [] if trivial else dirty, "index": None}
    conn.sendall((json.dumps(reply) + "\n").encode()); conn.close()
sock_path = os.path.join(state, "watch.sock")
try: os.unlink(sock_path)
except FileNotFoundError: pass
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); s.bind(sock_path); s.listen(16)
print("ready", flush=True)
while True:
    c, _ = s.accept(); handle(c)
