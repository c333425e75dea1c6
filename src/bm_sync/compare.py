"""The one decision that keeps unchanged files unread: can a file's lstat vouch for its entry?

Kept pure and tiny on purpose (restic's `fileChanged` is the model): `is_unchanged` is the
predicate every path of every run goes through, and the one a reviewer must be able to check
at a glance. It answers three questions: does the stat still match, was the entry recorded
too close to its file's last write to be trusted (`is_racy`), and would today's hash policy
still make the kind of id the entry holds?
"""

from __future__ import annotations

import os
import stat
from typing import TYPE_CHECKING

from bm_sync.changes import HashKind
from bm_sync.index_format import RawEntry

if TYPE_CHECKING:
    from bm_sync.hashing import HashPolicy

_U32 = 0xFFFFFFFF
_NS = 1_000_000_000
_HALF_U32 = 1 << 31
# Seconds of slack before the scan start during which a recorded mtime is "racy": file system
# timestamps come from a coarse clock (and FAT rounds to 2 s), so a file written in the same
# tick as our lstat can change again without its mtime or size moving.
RACY_SLACK_NS = 2_000_000_000


def git_mode(st_mode: int) -> int:
    """The mode git records for a regular file: 100755 when the owner may execute, else 100644."""
    return 0o100755 if st_mode & stat.S_IXUSR else 0o100644


def is_unchanged(raw: RawEntry, stat_result: os.stat_result, racy_after_ns: int,
                 recorded_kind: HashKind, policy: HashPolicy) -> bool:
    """Whether the file may be taken as unchanged without being read.

    `raw` is the entry as the index stores it (`IndexSnapshot.records()`): times as
    (seconds, nanoseconds) pairs, inode, device and size truncated to 32 bits, git's mode.
    True only when all of these hold:

    - size, mtime, ctime, inode, device and mode equal the recorded ones. ctime is what
      catches a same-size edit whose mtime was put back (`touch -r`, `cp -p`, `os.utime`): the
      kernel always moves ctime forward; a smudged entry (ctime 0) never matches. Inode and
      device catch a file replaced by another (an editor's save-by-rename). Times compare as
      git does, seconds modulo 2**32 (the field is 32 bits): the plain comparison answers for
      every time between 1970 and 2106, and only when it fails is the stat's time wrapped, so
      a pre-1970 mtime matches its entry without costing the hot path;
    - the entry is not racy (`is_racy` against `racy_after_ns`, see `racy_threshold`);
    - the policy still asks for the kind of id the entry holds (`recorded_kind`): after a
      change of thresholds the file is re-hashed. Free in the common case (a full id, a file
      under the full-hash limit).

    Positional and flat on purpose: it runs once per file of every run (100k at a time).
    """
    size = stat_result.st_size
    return (
        raw[9] == size & _U32
        and (raw[2] * _NS + raw[3] == stat_result.st_mtime_ns
             or (raw[2], raw[3]) == index_time(stat_result.st_mtime_ns))
        and (raw[0] * _NS + raw[1] == stat_result.st_ctime_ns
             or (raw[0], raw[1]) == index_time(stat_result.st_ctime_ns))
        and raw[5] == stat_result.st_ino & _U32
        and raw[4] == stat_result.st_dev & _U32
        and raw[6] == git_mode(stat_result.st_mode)
        and not is_racy(raw, racy_after_ns)
        and (recorded_kind is _FULL and size <= policy.full_hash_max_bytes
             or policy.kind_for(size) is recorded_kind)
    )


_FULL = HashKind.FULL


def index_time(time_ns: int) -> tuple[int, int]:
    """A time as the index stores it: (seconds modulo 2**32, nanoseconds)."""
    seconds, nanoseconds = divmod(time_ns, _NS)
    return seconds & _U32, nanoseconds


def index_time_ns(time_ns: int) -> int:
    """`time_ns` as it reads back from the index (pre-1970 times wrap to after 2038)."""
    seconds, nanoseconds = index_time(time_ns)
    return seconds * _NS + nanoseconds


def racy_threshold(index_file_mtime_ns: int, recorded_racy_after_ns: object) -> int:
    """The mtime from which an entry must be re-hashed even though its stat matches.

    Git's rule: an entry whose mtime is not strictly older than the index file's own mtime may
    have changed after it was recorded, within the same timestamp tick. We record, in the index
    metadata, the (earlier) start of the scan that produced the entries minus `RACY_SLACK_NS`,
    because the index is written after the database commit, possibly long after the lstat.
    """
    if isinstance(recorded_racy_after_ns, int):
        return min(index_file_mtime_ns, recorded_racy_after_ns)
    return index_file_mtime_ns


def is_racy(raw: RawEntry, threshold_ns: int) -> bool:
    """Whether the recorded stat cannot prove the content unchanged (see `racy_threshold`).

    Recorded seconds wrap at 2**32, so a pre-1970 mtime reads back as a time after 2038 and
    would look racy forever. Like serial-number arithmetic, a recorded time more than 2**31 s
    (68 years) past the threshold is taken as one from before it. The second test only runs for
    the few entries that pass the first, so the no-change path pays nothing for it.
    """
    return (raw[2] * _NS + raw[3] >= threshold_ns
            and raw[2] - threshold_ns // _NS < _HALF_U32)
