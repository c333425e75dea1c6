"""Content ids in bounded memory.

Every id is 20 bytes so it fits the index's sha1 field, and its `HashKind` says how it was made:

- FULL: the git blob id, `sha1(b"blob <size>\\0" + content)`, equal to `git hash-object`.
  Read in fixed-size chunks into one reused buffer: memory does not grow with file size.
- PARTIAL (above `full_hash_max_bytes`): sha1 over the size and evenly spaced 64 KiB samples
  (the first and last block included). Cheap for a 2 GiB video, still moves with most edits.
- NONE (above `partial_hash_max_bytes`, when set): derived from size and mtime only, the file is
  not opened. `mv` keeps the mtime, so a moved file keeps its id.

A file that changes while it is hashed (its fstat before and after differ, or it yields a
different number of bytes than its size) is retried, then reported `stable=False` so the
detector never records it as clean.

Text files small enough also get, from the same read, the similarity sketch used to find
moved-and-edited notes; markdown files also keep the bytes read (what the parse stage parses,
so it parses exactly what was hashed) and whatever the caller's `inspect_head` makes of their
first 64 KiB (the detector passes the frontmatter permalink reader). This module knows
nothing of markdown syntax: the caller hands the reader in.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field

from bm_sync.changes import HashKind
from bm_sync.sketch import compute_sketch

MIB = 1 << 20
KIB = 1 << 10
MARKDOWN_SUFFIXES = (b".md", b".markdown")
SKETCHED_SUFFIXES = (*MARKDOWN_SUFFIXES, b".txt")
HEAD_BYTES = 64 * KIB
_ATTEMPTS = 3

# What the caller makes of a markdown file's first bytes (the frontmatter permalink).
HeadInspector = Callable[[bytes], "str | None"]


def _default_workers() -> int:
    return os.cpu_count() or 1


@dataclass(frozen=True)
class HashPolicy:
    """How content ids are computed and how much hashing may run at once.

    Changing the thresholds takes effect on the next run: an entry whose recorded kind differs
    from what the policy now asks for its size is re-hashed under the new policy.
    """

    full_hash_max_bytes: int = 64 * MIB
    partial_hash_max_bytes: int | None = None
    sample_bytes: int = 64 * KIB
    interior_samples: int = 6
    chunk_bytes: int = 1 * MIB
    sketch_max_bytes: int = 1 * MIB
    workers: int = field(default_factory=_default_workers)
    files_in_flight: int = 0

    def __post_init__(self) -> None:
        if self.full_hash_max_bytes < 0:
            raise ValueError("full_hash_max_bytes must be >= 0")
        if self.partial_hash_max_bytes is not None and (
            self.partial_hash_max_bytes < self.full_hash_max_bytes
        ):
            raise ValueError("partial_hash_max_bytes must be >= full_hash_max_bytes")
        if self.workers < 1:
            raise ValueError("workers must be >= 1")

    @property
    def max_in_flight(self) -> int:
        """Files handed to the pool and not yet collected: bounds memory and open files."""
        return self.files_in_flight or self.workers * 4

    def kind_for(self, size: int) -> HashKind:
        """The hash kind this policy asks for a file of `size` bytes."""
        if size <= self.full_hash_max_bytes:
            return HashKind.FULL
        if self.partial_hash_max_bytes is None or size <= self.partial_hash_max_bytes:
            return HashKind.PARTIAL
        return HashKind.NONE


@dataclass(frozen=True, slots=True)
class HashedFile:
    """A content id and the fstat it belongs to (what the index records).

    `content` is the whole file as read for `content_id` (markdown up to `sketch_max_bytes`),
    `permalink` what the caller's head inspector found in it.
    """

    content_id: bytes
    hash_kind: HashKind
    stat_result: os.stat_result
    stable: bool
    permalink: str | None = None
    sketch: bytes | None = None
    content: bytes | None = field(default=None, repr=False)


def is_markdown(path: bytes | str) -> bool:
    """Whether `path` names a markdown note (`.md`, `.markdown`, any case): the one rule."""
    raw = os.fsencode(path) if isinstance(path, str) else path
    return raw.lower().endswith(MARKDOWN_SUFFIXES)


def is_sketched(path: bytes) -> bool:
    return path.lower().endswith(SKETCHED_SUFFIXES)


def blob_id(data: bytes) -> str:
    """The git blob id of `data` as 40 hex digits (equal to `git hash-object`)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def stat_only_id(size: int, mtime_ns: int) -> bytes:
    """The NONE-kind id: a function of size and mtime, so `mv` (which keeps mtime) keeps it."""
    return hashlib.sha1(b"bm-stat %d %d\0" % (size, mtime_ns)).digest()


def hash_file(path: bytes | str, policy: HashPolicy,
              inspect_head: HeadInspector | None = None) -> HashedFile:
    """Hash one file under `policy`. Raises OSError (vanished, permission denied, ...).

    `inspect_head` is called on the first `HEAD_BYTES` of each markdown file read whole; its
    answer becomes `HashedFile.permalink`.
    """
    path_bytes = os.fsencode(path)
    size = os.stat(path_bytes).st_size
    if policy.kind_for(size) is HashKind.NONE:
        stat_result = os.stat(path_bytes)
        return HashedFile(stat_only_id(stat_result.st_size, stat_result.st_mtime_ns),
                          HashKind.NONE, stat_result, stable=True)
    descriptor = os.open(path_bytes, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    try:
        for attempt in range(_ATTEMPTS):
            before = os.fstat(descriptor)
            hashed = _hash_open_file(descriptor, before, path_bytes, policy, inspect_head)
            after = os.fstat(descriptor)
            if hashed is not None and _same_version(before, after):
                return hashed
            if attempt == _ATTEMPTS - 1:
                content_id, kind = (hashed.content_id, hashed.hash_kind) if hashed else (
                    stat_only_id(after.st_size, after.st_mtime_ns), HashKind.NONE)
                return HashedFile(content_id, kind, before, stable=False)
    finally:
        os.close(descriptor)
    raise AssertionError("unreachable")  # pragma: no cover


def _same_version(before: os.stat_result, after: os.stat_result) -> bool:
    return (before.st_size == after.st_size and before.st_mtime_ns == after.st_mtime_ns
            and before.st_ctime_ns == after.st_ctime_ns)


def _hash_open_file(
    descriptor: int, stat_result: os.stat_result, path: bytes, policy: HashPolicy,
    inspect_head: HeadInspector | None,
) -> HashedFile | None:
    """One attempt; None when the file did not yield exactly `st_size` bytes."""
    size = stat_result.st_size
    kind = policy.kind_for(size)
    if kind is HashKind.PARTIAL:
        return HashedFile(_partial_id(descriptor, size, policy), kind, stat_result, stable=True)
    if size <= policy.sketch_max_bytes and is_sketched(path):
        content = _read_exactly(descriptor, size)
        if content is None:
            return None
        content_id = hashlib.sha1(b"blob %d\0" % size + content).digest()
        markdown = is_markdown(path)
        permalink = inspect_head(content[:HEAD_BYTES]) if markdown and inspect_head else None
        return HashedFile(content_id, kind, stat_result, stable=True, permalink=permalink,
                          sketch=compute_sketch(content), content=content if markdown else None)
    streamed_id = _blob_id(descriptor, size, policy.chunk_bytes)
    return None if streamed_id is None else HashedFile(streamed_id, kind, stat_result, True)


def _read_exactly(descriptor: int, size: int) -> bytes | None:
    os.lseek(descriptor, 0, os.SEEK_SET)
    parts: list[bytes] = []
    remaining = size
    while remaining > 0:
        part = os.read(descriptor, remaining)
        if not part:
            return None
        parts.append(part)
        remaining -= len(part)
    if os.read(descriptor, 1):
        return None
    return b"".join(parts)


def _blob_id(descriptor: int, size: int, chunk_bytes: int) -> bytes | None:
    """The git blob id, streamed through one reused buffer of `chunk_bytes`."""
    digest = hashlib.sha1(b"blob %d\0" % size)
    buffer = bytearray(chunk_bytes)
    view = memoryview(buffer)
    total = 0
    with open(descriptor, "rb", buffering=0, closefd=False) as stream:
        stream.seek(0)
        while True:
            count = stream.readinto(buffer)
            if not count:
                break
            digest.update(view[:count])
            total += count
            if total > size:
                return None
    return digest.digest() if total == size else None


def _partial_id(descriptor: int, size: int, policy: HashPolicy) -> bytes:
    """sha1 over the size and `interior_samples` + 2 evenly spaced blocks."""
    sample = policy.sample_bytes
    last_start = max(size - sample, 0)
    steps = policy.interior_samples + 1
    offsets = sorted({last_start * index // steps for index in range(steps + 1)})
    digest = hashlib.sha1(b"bm-partial %d\0" % size)
    for offset in offsets:
        digest.update(os.pread(descriptor, sample, offset))
    return digest.digest()
