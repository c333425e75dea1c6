"""The unchanged decision (`compare.is_unchanged`), rule by rule, on a real file's lstat.

Each row alters one thing between the recorded entry and the file as it is now, and says
whether the file may still be trusted without being read.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from bm_sync import HashKind, HashPolicy
from bm_sync.compare import git_mode, index_time, is_racy, is_unchanged, racy_threshold
from bm_sync.index_format import RawEntry

NS = 1_000_000_000
OLD_NS = 1_700_000_000 * NS
THRESHOLD_NS = OLD_NS + 3600 * NS  # the recorded scan started an hour after the file's mtime
MIB = 1 << 20


def raw_entry(stat_result: os.stat_result, **changed: int) -> RawEntry:
    """The entry as the index would store this stat, with some fields replaced."""
    fields = {
        "ctime_ns": stat_result.st_ctime_ns, "mtime_ns": stat_result.st_mtime_ns,
        "dev": stat_result.st_dev & 0xFFFFFFFF, "ino": stat_result.st_ino & 0xFFFFFFFF,
        "mode": git_mode(stat_result.st_mode), "size": stat_result.st_size & 0xFFFFFFFF,
    }
    fields.update(changed)
    ctime = index_time(fields["ctime_ns"])
    mtime = index_time(fields["mtime_ns"])
    return (*ctime, *mtime, fields["dev"], fields["ino"], fields["mode"], 0, 0,
            fields["size"], b"\0" * 20, 0)


@pytest.fixture
def note(tmp_path: Path) -> os.stat_result:
    path = tmp_path / "note.md"
    path.write_bytes(b"# a note\n")
    os.utime(path, ns=(OLD_NS, OLD_NS))
    return os.lstat(path)


Change = Callable[[os.stat_result], dict[str, int]]

CASES: list[tuple[str, Change, HashKind, HashPolicy, bool]] = [
    ("identical", lambda st: {}, HashKind.FULL, HashPolicy(), True),
    ("size differs", lambda st: {"size": st.st_size + 1}, HashKind.FULL, HashPolicy(), False),
    ("mtime differs", lambda st: {"mtime_ns": st.st_mtime_ns - NS}, HashKind.FULL,
     HashPolicy(), False),
    ("mtime differs by a nanosecond", lambda st: {"mtime_ns": st.st_mtime_ns - 1},
     HashKind.FULL, HashPolicy(), False),
    ("ctime differs (same-size edit, mtime put back)",
     lambda st: {"ctime_ns": st.st_ctime_ns - NS}, HashKind.FULL, HashPolicy(), False),
    ("smudged entry (ctime 0)", lambda st: {"ctime_ns": 0}, HashKind.FULL, HashPolicy(), False),
    ("inode differs (save by rename)", lambda st: {"ino": (st.st_ino + 1) & 0xFFFFFFFF},
     HashKind.FULL, HashPolicy(), False),
    ("device differs", lambda st: {"dev": (st.st_dev + 1) & 0xFFFFFFFF}, HashKind.FULL,
     HashPolicy(), False),
    ("executable bit changed", lambda st: {"mode": 0o100755}, HashKind.FULL, HashPolicy(),
     False),
    ("kind recorded partial, policy now hashes it fully", lambda st: {}, HashKind.PARTIAL,
     HashPolicy(), False),
    ("kind recorded partial, policy still partial", lambda st: {}, HashKind.PARTIAL,
     HashPolicy(full_hash_max_bytes=0), True),
    ("kind recorded full, policy now partial", lambda st: {}, HashKind.FULL,
     HashPolicy(full_hash_max_bytes=0), False),
    ("kind recorded none, policy still none", lambda st: {}, HashKind.NONE,
     HashPolicy(full_hash_max_bytes=0, partial_hash_max_bytes=0), True),
]


@pytest.mark.parametrize(("case", "change", "recorded_kind", "policy", "expected"), CASES,
                         ids=[case[0] for case in CASES])
def test_unchanged_rules(note: os.stat_result, case: str, change: Change,
                         recorded_kind: HashKind, policy: HashPolicy, expected: bool) -> None:
    entry = raw_entry(note, **change(note))
    assert is_unchanged(entry, note, THRESHOLD_NS, recorded_kind, policy) is expected


@pytest.mark.parametrize(("mtime_offset_s", "racy"), [
    (-3600, False),   # recorded long before the scan that recorded it
    (-1, False),      # a second before the threshold
    (0, True),        # at the threshold: may have changed in the same tick
    (5, True),        # after it
])
def test_racy_entries_are_not_trusted(note: os.stat_result, mtime_offset_s: int,
                                      racy: bool) -> None:
    threshold = note.st_mtime_ns - mtime_offset_s * NS
    entry = raw_entry(note)
    assert is_racy(entry, threshold) is racy
    assert is_unchanged(entry, note, threshold, HashKind.FULL, HashPolicy()) is not racy


def test_pre_1970_mtime_is_trusted_by_stat(tmp_path: Path) -> None:
    """Seconds wrap at 2**32 in the index: a 1969 mtime must still match and not be racy."""
    path = tmp_path / "old.md"
    path.write_bytes(b"x")
    os.utime(path, ns=(-5 * NS, -5 * NS))
    stat_result = os.lstat(path)
    assert is_unchanged(raw_entry(stat_result), stat_result, THRESHOLD_NS, HashKind.FULL,
                        HashPolicy())


@pytest.mark.parametrize(("file_mtime", "recorded", "expected"), [
    (100, None, 100),        # no metadata: git's rule, the index file's own mtime
    (100, 40, 40),           # our recorded scan start minus slack, when earlier
    (100, 400, 100),         # never later than the index file itself
    (100, "junk", 100),      # unreadable metadata falls back to git's rule
])
def test_racy_threshold(file_mtime: int, recorded: object, expected: int) -> None:
    assert racy_threshold(file_mtime, recorded) == expected


def test_large_size_compares_modulo_2_32(tmp_path: Path) -> None:
    """The index keeps 32 bits of size (git's field); the kind extension keeps the rest."""
    path = tmp_path / "big.bin"
    with open(path, "wb") as big:
        big.truncate((1 << 32) + 10)  # sparse
    os.utime(path, ns=(OLD_NS, OLD_NS))
    stat_result = os.lstat(path)
    policy = HashPolicy(full_hash_max_bytes=MIB)
    assert is_unchanged(raw_entry(stat_result), stat_result, THRESHOLD_NS, HashKind.PARTIAL,
                        policy)
