"""Linux file events through inotify (stdlib ctypes): the paths that may have changed.

Why not watchfiles here: it drops a queue overflow and a reached watch limit without a word
(docs/design/watch.md, section 8), and a watcher that loses history silently is basic-memory's
"goes stale after hours". This reader reports both, and costs nothing while idle: its thread
blocks in `poll(2)` with the GIL released.

- One watch per folder (no `IN_OPEN`: reading a note, our own hashing included, is not an
  event). `.git/` and `.basic-memory/` at the top are not watched, nor hidden folders unless
  asked; only names *below* the root are looked at, so a hidden folder above it hides nothing.
- A folder created or moved in is armed at once and everything found in it joins the pending
  paths: those files may predate their watch. A folder moved away is disarmed.
- The pending set holds root-relative paths (bytes). History is *lost* (`lost` set, pending
  cleared) on a queue overflow, on the watch limit (`limit_reached` too), on more than
  `max_pending` paths, on an error; the caller then scans the whole tree.
- Cookies: a file created in the cookie folder is seen in queue order, so once its event is
  read, every event before it is in `pending` (git fsmonitor's cookie).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import select
import struct
import threading
from collections.abc import Callable

IN_MODIFY, IN_ATTRIB, IN_CLOSE_WRITE = 0x2, 0x4, 0x8
IN_MOVED_FROM, IN_MOVED_TO, IN_CREATE, IN_DELETE = 0x40, 0x80, 0x100, 0x200
IN_DELETE_SELF, IN_MOVE_SELF = 0x400, 0x800
IN_UNMOUNT, IN_Q_OVERFLOW, IN_IGNORED = 0x2000, 0x4000, 0x8000
IN_ONLYDIR, IN_DONT_FOLLOW, IN_EXCL_UNLINK = 0x01000000, 0x02000000, 0x04000000
IN_ISDIR = 0x40000000
IN_CLOEXEC, IN_NONBLOCK = 0o2000000, 0o4000
MASK = (IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE
        | IN_DELETE | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR | IN_DONT_FOLLOW
        | IN_EXCL_UNLINK)
_HEADER = struct.Struct("iIII")
READ_SIZE = 256 * 1024

OVERFLOW = "the inotify queue overflowed (fs.inotify.max_queued_events)"
ROOT_GONE = "the watched folder was moved or deleted"


def watch_limit_message() -> str:
    """The limit in force for this process: its user namespace's (the same value as the
    sysctl in the initial namespace)."""
    value = "?"
    for source in ("/proc/sys/user/max_inotify_watches", "/proc/sys/fs/inotify/max_user_watches"):
        try:
            with open(source, encoding="ascii") as limit:
                value = limit.read().strip()
            break
        except OSError:
            continue
    return f"inotify watch limit reached (fs.inotify.max_user_watches = {value})"


class InotifyUnavailable(OSError):
    """inotify cannot start here (not Linux, no more instances: EMFILE)."""


class InotifyWatch:
    """A recursive inotify watch of `root`, read by a thread. `notify` is called (from that
    thread) after anything new: paths, a loss, a cookie."""

    def __init__(self, root: bytes, *, notify: Callable[[], None], cookie_dir: bytes,
                 skip_top: frozenset[bytes], include_hidden: bool = False,
                 max_pending: int = 1000) -> None:
        self.root = root
        self.notify = notify
        self.cookie_dir = cookie_dir
        self.skip_top = skip_top
        self.include_hidden = include_hidden
        self.max_pending = max_pending
        self.lock = threading.Lock()
        self.pending: set[bytes] = set()
        self.lost: str | None = None
        self.limit_reached = False
        self.root_gone = False
        self.cookies_seen: set[bytes] = set()
        self._folders: dict[int, bytes] = {}  # watch descriptor -> root-relative folder
        self._descriptors: dict[bytes, int] = {}
        self._cookie_descriptor = -1
        try:
            self._libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6",
                                     use_errno=True)
            self._libc.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p,
                                                     ctypes.c_uint32]
            self._fd = self._libc.inotify_init1(IN_CLOEXEC | IN_NONBLOCK)
        except (OSError, AttributeError) as error:
            raise InotifyUnavailable(errno.ENOSYS, f"inotify is not available: {error}") from None
        if self._fd < 0:
            code = ctypes.get_errno()
            raise InotifyUnavailable(code, f"inotify_init1: {os.strerror(code)}")
        self._wake_read, self._wake_write = os.pipe()
        self._thread = threading.Thread(target=self._read_loop, name="bm-inotify", daemon=True)

    @property
    def watched_folders(self) -> int:
        return len(self._descriptors)

    def start(self) -> None:
        """Arm the watches of the whole tree and the cookie folder, then start reading."""
        os.makedirs(os.path.join(self.root, self.cookie_dir), exist_ok=True)
        self._cookie_descriptor = self._add_watch(os.path.join(self.root, self.cookie_dir))
        self.add_tree(b"", report=False)
        self._thread.start()

    def take(self) -> tuple[set[bytes], str | None]:
        """The pending paths and the loss since the last call (both cleared)."""
        with self.lock:
            paths, self.pending = self.pending, set()
            lost, self.lost = self.lost, None
        return paths, lost

    def close(self) -> None:
        os.write(self._wake_write, b"x")
        if self._thread.is_alive():
            self._thread.join(5)
        for descriptor in (self._fd, self._wake_read, self._wake_write):
            os.close(descriptor)

    # -- watches ----------------------------------------------------------------------------

    def _add_watch(self, path: bytes) -> int:
        descriptor = int(self._libc.inotify_add_watch(self._fd, path, MASK))
        if descriptor < 0:
            code = ctypes.get_errno()
            if code == errno.ENOSPC:
                self.limit_reached = True
                self._lose(watch_limit_message())
            elif code not in (errno.ENOENT, errno.ENOTDIR, errno.EACCES):
                # Gone already (its deletion is an event) or unreadable (the scan reports
                # it); anything else means events may be missing from now on.
                self._lose(f"inotify_add_watch {os.fsdecode(path)}: {os.strerror(code)}")
        return descriptor

    def add_tree(self, folder: bytes, *, report: bool = True) -> None:
        """Watch `folder` and every folder below it. With `report`, `folder` joins the pending
        paths once armed: files written in it before their folder was watched raised no event,
        and the batch walks a reported folder (one path for the whole subtree, so a folder of
        5,000 notes moved in is one path, not 5,000)."""
        stack = [folder]
        while stack and not self.limit_reached:
            current = stack.pop()
            descriptor = self._add_watch(os.path.join(self.root, current) if current
                                         else self.root)
            if descriptor < 0:
                continue
            previous = self._folders.get(descriptor)
            if previous is not None and previous != current:
                self._descriptors.pop(previous, None)
            self._folders[descriptor] = current
            self._descriptors[current] = descriptor
            try:
                with os.scandir(os.path.join(self.root, current) if current else self.root) as it:
                    for entry in it:
                        name = os.fsencode(entry.name)
                        if not current and name in self.skip_top:
                            continue
                        if self._watched_folder(name, entry.is_dir(follow_symlinks=False)):
                            stack.append(current + b"/" + name if current else name)
            except OSError:
                continue  # gone or unreadable: its own event, or the scan's failure
        if report:
            self._add_pending([folder])

    def _watched_folder(self, name: bytes, is_dir: bool) -> bool:
        return is_dir and (self.include_hidden or not name.startswith(b"."))

    def _forget_tree(self, folder: bytes) -> None:
        """Disarm `folder` and everything below (it moved away; if it moved within the root,
        its new name is armed again by its MOVED_TO)."""
        prefix = folder + b"/"
        for path in [path for path in self._descriptors
                     if path == folder or path.startswith(prefix)]:
            descriptor = self._descriptors.pop(path)
            self._folders.pop(descriptor, None)
            self._libc.inotify_rm_watch(self._fd, descriptor)

    # -- reading ----------------------------------------------------------------------------

    def _lose(self, why: str) -> None:
        with self.lock:
            self.lost = self.lost or why
            self.pending.clear()

    def _add_pending(self, paths: list[bytes]) -> None:
        with self.lock:
            if self.lost is None:
                self.pending.update(paths)
                if len(self.pending) > self.max_pending:
                    self.lost = f"more than {self.max_pending:,} paths changed at once"
                    self.pending.clear()

    def _read_loop(self) -> None:
        poller = select.poll()
        poller.register(self._fd, select.POLLIN)
        poller.register(self._wake_read, select.POLLIN)
        while True:
            ready = {descriptor for descriptor, _mask in poller.poll()}
            if self._wake_read in ready:
                return
            try:
                buffer = os.read(self._fd, READ_SIZE)
            except BlockingIOError:
                continue
            except OSError as error:
                self._lose(f"reading inotify events failed: {error.strerror}")
                self.notify()
                return
            try:
                self._handle(buffer)
            except Exception as error:  # never die silently: the caller rescans
                self._lose(f"watcher error: {type(error).__name__}: {error}")
            self.notify()

    def _handle(self, buffer: bytes) -> None:
        paths: list[bytes] = []
        new_folders: list[bytes] = []
        offset = 0
        while offset < len(buffer):
            descriptor, mask, _cookie, length = _HEADER.unpack_from(buffer, offset)
            name = buffer[offset + 16:offset + 16 + length].rstrip(b"\0")
            offset += 16 + length
            if mask & IN_Q_OVERFLOW:
                self._lose(OVERFLOW)
                new_folders.append(b"")  # re-arm whatever was created meanwhile
                continue
            if descriptor == self._cookie_descriptor:
                if name and mask & IN_CREATE:
                    with self.lock:
                        self.cookies_seen.add(name)
                continue
            folder = self._folders.get(descriptor)
            if folder is None:
                continue
            if mask & IN_IGNORED:
                self._folders.pop(descriptor, None)
                if self._descriptors.get(folder) == descriptor:
                    self._descriptors.pop(folder, None)
                continue
            if mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_UNMOUNT):
                if folder == b"":
                    self.root_gone = True
                    self._lose(ROOT_GONE)
                continue
            if not name or (not folder and name in self.skip_top):
                continue  # an event of the folder itself: its parent reports it by name
            path = folder + b"/" + name if folder else name
            paths.append(path)
            if mask & IN_ISDIR:
                if mask & IN_MOVED_FROM:
                    self._forget_tree(path)
                elif mask & (IN_CREATE | IN_MOVED_TO) and self._watched_folder(name, True):
                    new_folders.append(path)
        self._add_pending(paths)
        for folder in new_folders:
            self.add_tree(folder, report=bool(folder))
