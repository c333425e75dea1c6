"""One writer per folder: an advisory `flock` on `<root>/.basic-memory/lock`.

Readers (`bm status`) never take it: the index is replaced by an atomic rename, so they always
see a whole old or a whole new index. Writers (record, sync) take it for their whole run, so a
second concurrent sync fails at once with `SyncLocked` (or waits, when asked to). The kernel
drops the lock when the process dies, so a crash never leaves a stale lock behind.
"""

from __future__ import annotations

import errno
import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bm_sync.errors import LockUnavailable, SyncLocked

LOCK_FILE = "lock"


class FolderLock:
    """A re-entrant (within one object) exclusive lock on a folder's state directory."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.path = state_dir / LOCK_FILE
        self._depth = 0
        self._descriptor: int | None = None

    @contextmanager
    def hold(self, *, wait: bool = False) -> Iterator[None]:
        """Hold the lock for the `with` block; raise `SyncLocked` if another process has it."""
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        try:
            self.state_dir.mkdir(exist_ok=True)
            descriptor = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:
            raise _unavailable(self.path, error, _owner_of(self.state_dir)) from None
        holder = lock_with_pid(descriptor, wait=wait)
        if holder is not None:
            raise SyncLocked(
                f"another bm process{holder} is syncing {self.state_dir.parent}; "
                "try again when it ends, or pass --wait"
            )
        self._descriptor = descriptor
        self._depth = 1
        try:
            yield
        finally:
            self._depth = 0
            self._descriptor = None
            fcntl.flock(descriptor, fcntl.LOCK_UN)
            os.close(descriptor)


def _unavailable(path: Path, error: OSError, owner: int | None) -> LockUnavailable:
    """One line: the cause, then what to do (for a folder of another user: ownership)."""
    reason = (error.strerror or type(error).__name__).lower()
    hint = _LOCK_HINTS.get(error.errno or 0, "try again once the cause is gone")
    if error.errno in (errno.EACCES, errno.EPERM) and owner not in (None, os.geteuid()):
        hint = (f"{path.parent} belongs to another user (uid {owner}); run bm as that "
                f"user, or give it to yours (chown -R {os.geteuid()} {path.parent})")
    return LockUnavailable(f"cannot take the lock {path}: {reason}; {hint}")


_LOCK_HINTS = {
    errno.EISDIR: "remove it (bm makes it again as a file)",
    errno.ENOTDIR: ".basic-memory is not a folder; move it away",
    errno.EEXIST: ".basic-memory is a file, not a folder; move it away",
    errno.EACCES: "check the permissions and the owner of the notes folder and .basic-memory",
    errno.EPERM: "check the permissions and the owner of the notes folder and .basic-memory",
    errno.EROFS: "bm status and bm history still work there",
    errno.ENOSPC: "free some space, then try again",
}


def _owner_of(folder: Path) -> int | None:
    """The uid owning `folder` (or, when it is not there, its parent), None if unknown."""
    for path in (folder, folder.parent):
        try:
            return os.stat(path).st_uid
        except OSError:
            continue
    return None


def lock_with_pid(descriptor: int, *, wait: bool = False) -> str | None:
    """Take an exclusive `flock` on the open lock file `descriptor` and write our pid in it:
    None once held. When another process holds it (and `wait` is off), close `descriptor`
    and return who: " (pid N)", or "" when its pid cannot be read."""
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
    except BlockingIOError:
        holder = _read_holder(descriptor)
        os.close(descriptor)
        return holder
    os.ftruncate(descriptor, 0)
    os.write(descriptor, str(os.getpid()).encode())
    return None


def _read_holder(descriptor: int) -> str:
    try:
        pid = os.pread(descriptor, 32, 0).decode().strip()
    except (OSError, UnicodeDecodeError):
        return ""
    return f" (pid {pid})" if pid.isdigit() else ""


WATCH_LOCK_FILE = "watch.lock"


class AlreadyWatching(SyncLocked):
    """Another `bm watch` holds this folder."""


class WatchLock:
    """One watcher per folder: a `flock` on `<root>/.basic-memory/watch.lock` held for the
    watcher's whole life (the pid inside names it). Separate from the folder lock, which the
    watcher takes per batch so that `bm sync`, `bm restore` and `bm prune` interleave."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.path = state_dir / WATCH_LOCK_FILE
        self._descriptor: int | None = None

    def acquire(self) -> None:
        """Take it, or raise `AlreadyWatching` naming the holder."""
        try:
            self.state_dir.mkdir(exist_ok=True)
            descriptor = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:
            raise _unavailable(self.path, error, _owner_of(self.state_dir)) from None
        holder = lock_with_pid(descriptor)
        if holder is not None:
            raise AlreadyWatching(f"already watching {self.state_dir.parent}{holder}")
        self._descriptor = descriptor

    def release(self) -> None:
        if self._descriptor is not None:
            os.ftruncate(self._descriptor, 0)
            fcntl.flock(self._descriptor, fcntl.LOCK_UN)
            os.close(self._descriptor)
            self._descriptor = None
