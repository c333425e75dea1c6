"""Detect network / FUSE file systems without a new dependency (Linux)."""
from __future__ import annotations
import ctypes, ctypes.util, os, sys

# f_type magics from linux/magic.h and statfs(2)
NETWORK_OR_FUSE = {
    0x6969: "nfs", 0xFF534D42: "cifs", 0xFE534D42: "smb2", 0x517B: "smb",
    0x65735546: "fuse", 0x65735543: "fusectl", 0x73757245: "coda", 0x564C: "ncp",
    0x01021997: "v9fs", 0x00C36400: "ceph", 0x47504653: "gpfs", 0x5346414F: "afs",
    0x6B414653: "afs", 0x0BD00BD0: "lustre", 0x786F4256: "vboxsf", 0x19830326: "fhgfs",
    0x013111A8: "ibrix", 0x7461636F: "ocfs2", 0x01161970: "gfs2",
}
LOCAL_NAMES = {0xEF53: "ext2/3/4", 0x58465342: "xfs", 0x9123683E: "btrfs", 0x01021994: "tmpfs",
               0x9FA0: "proc", 0x794C7630: "overlayfs", 0x2FC12FC1: "zfs", 0xF2F52010: "f2fs"}

class _StatFS(ctypes.Structure):        # struct statfs, x86_64 and aarch64 glibc (all 64-bit words)
    _fields_ = [("f_type", ctypes.c_long), ("f_bsize", ctypes.c_long),
                ("f_blocks", ctypes.c_ulong), ("f_bfree", ctypes.c_ulong), ("f_bavail", ctypes.c_ulong),
                ("f_files", ctypes.c_ulong), ("f_ffree", ctypes.c_ulong), ("f_fsid", ctypes.c_int * 2),
                ("f_namelen", ctypes.c_long), ("f_frsize", ctypes.c_long), ("f_flags", ctypes.c_long),
                ("f_spare", ctypes.c_long * 4)]

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.statfs.argtypes = [ctypes.c_char_p, ctypes.POINTER(_StatFS)]

def fs_magic(path: str) -> int:
    buf = _StatFS()
    if _libc.statfs(os.fsencode(path), ctypes.byref(buf)) != 0:
        err = ctypes.get_errno(); raise OSError(err, os.strerror(err), path)
    return buf.f_type & 0xFFFFFFFF

def mount_fstype(path: str) -> str:
    """Fallback / cross-check: the fstype of the longest mount point above `path` in mountinfo."""
    real = os.path.realpath(path); best = ("", "?")
    with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            mnt = left.split()[4].replace("\\040", " ")
            fstype = right.split()[0]
            if (real == mnt or real.startswith(mnt.rstrip("/") + "/")) and len(mnt) >= len(best[0]):
                best = (mnt, fstype)
    return best[1]

def needs_polling(path: str) -> str | None:
    """The name of a file system that does not deliver reliable events, or None."""
    try:
        magic = fs_magic(path)
    except (OSError, AttributeError):
        t = mount_fstype(path)
        return t if t.startswith(("nfs", "cifs", "smb", "fuse", "9p", "ceph", "afs")) else None
    return NETWORK_OR_FUSE.get(magic)

if __name__ == "__main__":
    for p in sys.argv[1:]:
        m = fs_magic(p)
        print(f"{p}: f_type=0x{m:X} ({NETWORK_OR_FUSE.get(m) or LOCAL_NAMES.get(m, '?')}) "
              f"mountinfo={mount_fstype(p)} needs_polling={needs_polling(p)}")
