"""Prototype: a recursive inotify watcher in stdlib ctypes, reader thread + poll, explicit overflow/ENOSPC."""
from __future__ import annotations
import ctypes, ctypes.util, errno, os, select, struct, threading, time

IN_MODIFY, IN_ATTRIB, IN_CLOSE_WRITE = 0x2, 0x4, 0x8
IN_MOVED_FROM, IN_MOVED_TO, IN_CREATE, IN_DELETE = 0x40, 0x80, 0x100, 0x200
IN_DELETE_SELF, IN_MOVE_SELF = 0x400, 0x800
IN_UNMOUNT, IN_Q_OVERFLOW, IN_IGNORED = 0x2000, 0x4000, 0x8000
IN_ONLYDIR, IN_DONT_FOLLOW, IN_EXCL_UNLINK, IN_ISDIR = 0x01000000, 0x02000000, 0x04000000, 0x40000000
IN_CLOEXEC, IN_NONBLOCK = 0o2000000, 0o4000
MASK = (IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE
        | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR | IN_DONT_FOLLOW | IN_EXCL_UNLINK)
_HDR = struct.Struct("iIII")
_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)

class LostEvents(Exception):
    pass

class Inotify:
    """Changed paths (bytes, root-relative) accumulate in `pending`; `lost` is set on overflow/limits."""
    def __init__(self, root: str, skip=(b".git", b".basic-memory")):
        self.root = os.fsencode(os.path.abspath(root)); self.skip = set(skip)
        self.fd = _libc.inotify_init1(IN_CLOEXEC | IN_NONBLOCK)
        if self.fd < 0: raise OSError(ctypes.get_errno(), "inotify_init1")
        self.wd_path: dict[int, bytes] = {}; self.path_wd: dict[bytes, int] = {}
        self.pending: set[bytes] = set(); self.lost: str | None = None
        self.cond = threading.Condition(); self.events = 0; self.seq = 0
        self._r, self._w = os.pipe()
        self.add_tree(b"")
        self.thread = threading.Thread(target=self._run, daemon=True, name="bm-inotify"); self.thread.start()

    def _add(self, rel: bytes) -> bool:
        wd = _libc.inotify_add_watch(self.fd, os.path.join(self.root, rel) if rel else self.root, MASK)
        if wd < 0:
            e = ctypes.get_errno()
            if e == errno.ENOSPC: self._lose("inotify watch limit reached (fs.inotify.max_user_watches)")
            elif e in (errno.ENOENT, errno.ENOTDIR): pass     # gone already: its deletion is an event
            else: self._lose(f"inotify_add_watch: {os.strerror(e)}")
            return False
        old = self.wd_path.get(wd)
        if old is not None and old != rel: self.path_wd.pop(old, None)   # same inode seen under a new name
        self.wd_path[wd] = rel; self.path_wd[rel] = wd
        return True

    def add_tree(self, rel: bytes) -> None:
        """Watch `rel` and every folder below it (depth first, os.scandir, no symlinks)."""
        stack = [rel]
        while stack:
            d = stack.pop()
            if not self._add(d): continue
            try:
                with os.scandir(os.path.join(self.root, d) if d else self.root) as it:
                    for e in it:
                        if e.name in self.skip and not d: continue
                        p = os.path.join(d, e.name) if d else e.name
                        self.pending.add(p)                # created before its folder was watched
                        if e.is_dir(follow_symlinks=False): stack.append(p)
            except OSError: pass

    def _lose(self, why: str) -> None:
        with self.cond:
            if self.lost is None: self.lost = why
            self.cond.notify_all()

    def _run(self) -> None:
        p = select.poll(); p.register(self.fd, select.POLLIN); p.register(self._r, select.POLLIN)
        while True:
            p.poll()                                   # blocks with the GIL released: no idle wake-ups
            try: buf = os.read(self.fd, 256 * 1024)
            except BlockingIOError: buf = b""
            except OSError: return
            if not buf:
                if os.read(self._r, 1) is not None: return
            new_dirs = []; paths = []
            off = 0
            while off < len(buf):
                wd, mask, cookie, ln = _HDR.unpack_from(buf, off)
                name = buf[off + 16: off + 16 + ln].rstrip(b"\0"); off += 16 + ln
                self.events += 1
                if mask & IN_Q_OVERFLOW: self._lose("inotify queue overflow (fs.inotify.max_queued_events)"); continue
                base = self.wd_path.get(wd)
                if base is None: continue
                if mask & IN_IGNORED:
                    self.wd_path.pop(wd, None)
                    if self.path_wd.get(base) == wd: self.path_wd.pop(base, None)
                    continue
                if mask & (IN_DELETE_SELF | IN_MOVE_SELF):
                    if base == b"": self._lose("the watched folder was moved or deleted")
                    continue
                rel = os.path.join(base, name) if base and name else (name or base)
                if name and not base and name in self.skip: continue
                paths.append(rel)
                if mask & IN_ISDIR and mask & (IN_CREATE | IN_MOVED_TO): new_dirs.append(rel)
            for d in new_dirs: self.add_tree(d)        # also lists what appeared before the watch existed
            if paths or new_dirs:
                with self.cond:
                    self.pending.update(paths); self.seq += 1; self.cond.notify_all()

    def take(self, quiet: float = 0.05, max_wait: float = 1.0, timeout: float | None = None):
        """Wait for events, then until `quiet` s pass without new ones (at most `max_wait`); return them."""
        with self.cond:
            if not self.cond.wait_for(lambda: self.pending or self.lost, timeout): return set(), None
            start = time.monotonic(); n = -1
            while self.seq != n and time.monotonic() - start < max_wait and not self.lost:
                n = self.seq
                while self.seq == n and self.cond.wait(quiet): pass   # a wake-up without news is not news
            out, self.pending = self.pending, set(); lost, self.lost = self.lost, None
            return out, lost

    def close(self) -> None:
        os.write(self._w, b"x"); self.thread.join(2); os.close(self.fd)
