"""Which file systems do not deliver reliable file events: network and FUSE mounts.

NFS, SMB and FUSE (TigrisFS, sshfs, rclone...) accept inotify watches but only report what
this machine itself did, so a watcher there goes stale without a word. `bm watch` polls
instead. Linux: `statfs(2)` through ctypes (`os.statvfs` has no `f_type`), with the magic
numbers of `linux/magic.h` that git's fsmonitor also refuses (`fsm-path-utils-linux.c`); when
statfs is unavailable, the type of the longest mount point above the folder in
`/proc/self/mountinfo`. Elsewhere: None (no detection).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

# f_type values (linux/magic.h) of file systems whose events cannot be trusted.
REMOTE_MAGICS = {
    0x6969: "nfs", 0xFF534D42: "cifs", 0xFE534D42: "smb2", 0x517B: "smb",
    0x65735546: "fuse", 0x73757245: "coda", 0x01021997: "9p", 0x00C36400: "ceph",
    0x47504653: "gpfs", 0x5346414F: "afs", 0x6B414653: "afs", 0x0BD00BD0: "lustre",
    0x786F4256: "vboxsf", 0x564C: "ncp",
}
# mountinfo type names (the fallback) of the same file systems.
REMOTE_TYPE_PREFIXES = ("nfs", "cifs", "smb", "fuse", "9p", "ceph", "afs", "lustre", "gpfs",
                        "vboxsf", "coda")


class _StatFS(ctypes.Structure):
    """`struct statfs` of glibc on x86_64 and aarch64 (every word 64-bit)."""

    _fields_ = [("f_type", ctypes.c_long), ("f_bsize", ctypes.c_long),
                ("f_blocks", ctypes.c_ulong), ("f_bfree", ctypes.c_ulong),
                ("f_bavail", ctypes.c_ulong), ("f_files", ctypes.c_ulong),
                ("f_ffree", ctypes.c_ulong), ("f_fsid", ctypes.c_int * 2),
                ("f_namelen", ctypes.c_long), ("f_frsize", ctypes.c_long),
                ("f_flags", ctypes.c_long), ("f_spare", ctypes.c_long * 4)]


def fs_magic(path: str | os.PathLike[str]) -> int | None:
    """The `f_type` of the file system holding `path`; None where statfs is not available."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        statfs = libc.statfs
    except (OSError, AttributeError):
        return None
    statfs.argtypes = [ctypes.c_char_p, ctypes.POINTER(_StatFS)]
    buffer = _StatFS()
    if statfs(os.fsencode(path), ctypes.byref(buffer)) != 0:
        return None
    return int(buffer.f_type) & 0xFFFFFFFF


def mount_type(path: str | os.PathLike[str], mountinfo: str = "/proc/self/mountinfo") -> str | None:
    """The type of the longest mount point at or above `path` in `mountinfo`, if readable."""
    real = os.path.realpath(path)
    best_point, best_type = "", None
    try:
        with open(mountinfo, encoding="utf-8", errors="replace") as lines:
            for line in lines:
                left, _separator, right = line.partition(" - ")
                fields = left.split()
                if len(fields) < 5 or not right:
                    continue
                point = fields[4].replace("\\040", " ")
                inside = real == point or real.startswith(point.rstrip("/") + "/")
                if inside and len(point) >= len(best_point):
                    best_point, best_type = point, right.split()[0]
    except OSError:
        return None
    return best_type


def remote_kind(magic: int | None, mounted_as: str | None) -> str | None:
    """The name of a network or FUSE file system from its statfs magic (or, without one, its
    mountinfo type); None for a local one."""
    if magic is not None:
        return REMOTE_MAGICS.get(magic)
    if mounted_as and mounted_as.startswith(REMOTE_TYPE_PREFIXES):
        return mounted_as
    return None


def events_unreliable(path: str | os.PathLike[str]) -> str | None:
    """The file system name when `path` is on a network or FUSE mount (poll there), else None."""
    magic = fs_magic(path)
    return remote_kind(magic, None if magic is not None else mount_type(path))
