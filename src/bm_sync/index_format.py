"""The on-disk index: a real git index file (version 2) at `<root>/.basic-memory/index`.

Why git's format: git's stat-based change detection is proven on huge trees, the format is
documented, and `GIT_INDEX_FILE=... git ls-files -s` can inspect our state. Writing goes through
dulwich; reading has its own small parser because it is the hot path of every no-change run
(dulwich builds a rich object per entry, about 10 µs each; we parse lazily from one buffer).

What we add lives in two *optional* extensions (signatures start with an uppercase letter, so
git skips them):

- `BMKD` (kinds): for every entry whose content id is not a full git blob id, its hash kind and
  its true 64-bit size (the entry's own size field is truncated to 32 bits, as in git).
- `BMMT` (metadata): a small JSON object (format version, the scan start time used for the racy
  check, a database token the sync engine uses to notice a foreign database, ...).

This module only knows the format. Deciding what changed lives in `compare.py` and
`detector.py`.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import struct
from collections.abc import Callable, Container, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, cast

from bm_sync.changes import HashKind
from bm_sync.errors import IndexCorrupt

if TYPE_CHECKING:
    from dulwich.index import IndexChecksumWriter, IndexExtension, SerializedIndexEntry

_SIGNATURE = b"DIRC"
_HEADER = struct.Struct(">4sLL")
# ctime s/ns, mtime s/ns, dev, ino, mode, uid, gid, size, sha1, flags: 62 bytes.
_ENTRY = struct.Struct(">LLLLLLLLLL20sH")
_EXT_HEADER = struct.Struct(">4sL")
_KIND_RECORD = struct.Struct(">cQ")
_SHA_LEN = 20
# The smallest on-disk entry: 62 bytes of fields, a name, 1 to 8 NULs, padded to 8 bytes.
_MIN_ENTRY_BYTES = 64
_NAME_MASK = 0x0FFF
# dulwich ORs the full name length into the 12-bit field, so longer names would corrupt the
# flags; the detector reports such paths as failures instead (Linux PATH_MAX is 4096 anyway).
MAX_PATH_BYTES = _NAME_MASK - 1
_FLAG_EXTENDED = 0x4000
_U32 = 0xFFFFFFFF
_NS = 1_000_000_000

KINDS_EXTENSION = b"BMKD"
META_EXTENSION = b"BMMT"
# git's End Of Index Entries extension: where the entries end, so a reader can find the
# extensions without walking 100k entries first (git itself uses it to load in parallel).
EOIE_EXTENSION = b"EOIE"
_EOIE = struct.Struct(">4sLL20s")
_KIND_CODES = {HashKind.PARTIAL: b"p", HashKind.NONE: b"n"}
_KINDS_BY_CODE = {code: kind for kind, code in _KIND_CODES.items()}


# One entry as stored on disk, unconverted (what the hot path compares): ctime s, ctime ns,
# mtime s, mtime ns, dev, ino, mode, uid, gid, size (32 bits), sha1 (20 bytes), flags.
RawEntry = tuple[int, int, int, int, int, int, int, int, int, int, bytes, int]


def corrupt_index_message(index_path: Path, error: IndexCorrupt) -> str:
    """The one warning every reader of a corrupt index gives (detector and sync engine)."""
    return f"index {index_path} is corrupt ({error}); rebuilding it by a full scan"


class IndexEntry(NamedTuple):
    """One tracked path as recorded: stat data plus content id (20 raw bytes) and its kind.

    `size` is the true size; the index stores it modulo 2**32 and the kinds extension keeps the
    full value for the (large) files that need it.
    """

    path: bytes
    ctime_ns: int
    mtime_ns: int
    dev: int
    ino: int
    mode: int
    uid: int
    gid: int
    size: int
    content_id: bytes
    hash_kind: HashKind


@dataclass
class IndexSnapshot:
    """A loaded index: the raw buffer, parsed lazily, plus what the extensions said.

    Entries come out of `entries()` in the index order (bytewise path order), which is the
    order the scanner walks in, so the detector can merge the two streams without a dict.

    Validation is split for speed. At load (`parse_index`): signature, version, the checksum,
    the extensions, and that the entry count fits the bytes before them, all O(1) or one
    sha1 pass. The entries themselves are checked as they are parsed: walking 100k of them
    eagerly costs about 60 ms, almost as much as the whole lazy load (about 90 ms), on every
    no-change run, to catch an index whose checksum is right but whose entries are not (a
    buggy writer, never a torn write). So `records()` raises `IndexCorrupt` mid-iteration
    when an entry leaves the buffer or the last one does not end where the extensions begin;
    the detector then starts over from an empty baseline, as for an index corrupt at load.
    """

    buffer: bytes
    entry_count: int
    file_mtime_ns: int
    kinds: dict[bytes, tuple[HashKind, int]] = field(default_factory=dict)
    meta: dict[str, object] = field(default_factory=dict)
    entries_end: int = _HEADER.size  # offset where the entries end and extensions begin
    # Written by `write_index` (version 2, with our metadata): its entries' bytes are exactly
    # what `write_index` would write for them, so `splice_index` may copy them.
    spliceable: bool = False

    @classmethod
    def empty(cls) -> IndexSnapshot:
        """The state of a folder never recorded: no entries."""
        return cls(buffer=b"", entry_count=0, file_mtime_ns=0)

    def records(self) -> Iterator[tuple[bytes, RawEntry]]:
        """Yield `(path, record)` in index order; `record` is the raw on-disk tuple
        (ctime s, ctime ns, mtime s, mtime ns, dev, ino, mode, uid, gid, size, sha1, flags).

        The hot path compares records with `compare.is_unchanged` and only builds an
        `IndexEntry` for the few paths that need one. Raises `IndexCorrupt` (possibly after
        yielding some records) when the entries do not fit the space the header and the
        extensions leave them; see the class docstring for why this is not checked at load.
        """
        buffer = self.buffer
        unpack = _ENTRY.unpack_from
        entry_size = _ENTRY.size
        end = self.entries_end
        offset = _HEADER.size
        try:
            for _ in range(self.entry_count):
                record = unpack(buffer, offset)
                flags = record[11]
                name_start = offset + entry_size + (2 if flags & _FLAG_EXTENDED else 0)
                name_length = flags & _NAME_MASK
                if name_length == _NAME_MASK:
                    name_end = buffer.index(b"\0", name_start, end)
                else:
                    name_end = name_start + name_length
                if name_end > end:
                    raise IndexCorrupt("index entry runs past the end of the entries")
                yield buffer[name_start:name_end], record
                offset += (name_end - offset + 8) & ~7
        except (struct.error, ValueError, IndexError) as error:
            raise IndexCorrupt("index entries are malformed") from error
        if offset != end:
            raise IndexCorrupt("index entries do not end where its extensions begin")

    def entry(self, path: bytes, record: RawEntry) -> IndexEntry:
        """The `IndexEntry` of one raw record (true size and kind from the extension)."""
        (ctime_s, ctime_n, mtime_s, mtime_n, dev, ino, mode, uid, gid, size, sha,
         _flags) = record
        kind = HashKind.FULL
        recorded = self.kinds.get(path) if self.kinds else None
        if recorded is not None:
            kind, size = recorded
        return IndexEntry(path, ctime_s * _NS + ctime_n, mtime_s * _NS + mtime_n, dev, ino, mode,
                          uid, gid, size, sha, kind)

    def entries(self) -> Iterator[IndexEntry]:
        """Yield every entry in index order, parsing the buffer as it goes."""
        entry = self.entry
        for path, record in self.records():
            yield entry(path, record)


def read_index(index_path: Path) -> IndexSnapshot:
    """Load the index at `index_path`; an absent file is an empty index.

    Raises `IndexCorrupt` with a one-line reason when the file is not a valid git index (bad
    signature or version, checksum mismatch, truncated entries or extensions).
    """
    try:
        with open(index_path, "rb") as index_file:
            buffer = index_file.read()
            file_mtime_ns = os.fstat(index_file.fileno()).st_mtime_ns
    except FileNotFoundError:
        return IndexSnapshot.empty()
    except OSError as error:
        raise IndexCorrupt(f"cannot read index: {error.strerror or error}") from error
    return parse_index(buffer, file_mtime_ns)


def parse_index(buffer: bytes, file_mtime_ns: int = 0) -> IndexSnapshot:
    """Validate `buffer` as a git index and return a lazily parsed snapshot."""
    if len(buffer) < _HEADER.size + _SHA_LEN:
        raise IndexCorrupt(f"index is truncated ({len(buffer)} bytes)")
    signature, version, entry_count = _HEADER.unpack_from(buffer, 0)
    if signature != _SIGNATURE:
        raise IndexCorrupt("index has no DIRC signature")
    if version not in (2, 3):
        raise IndexCorrupt(f"index version {version} is not supported (expected 2 or 3)")
    if hashlib.sha1(memoryview(buffer)[:-_SHA_LEN]).digest() != buffer[-_SHA_LEN:]:
        raise IndexCorrupt("index checksum does not match its content")
    end_of_entries = _end_of_entries_from_eoie(buffer)
    if end_of_entries is None:
        end_of_entries = _skip_entries(buffer, entry_count)
    if entry_count * _MIN_ENTRY_BYTES > end_of_entries - _HEADER.size:
        raise IndexCorrupt(f"index claims {entry_count} entries, more than its entries hold")
    extensions = _read_extensions(buffer, end_of_entries)
    return IndexSnapshot(
        buffer=buffer,
        entry_count=entry_count,
        file_mtime_ns=file_mtime_ns,
        kinds=_decode_kinds(extensions.get(KINDS_EXTENSION, b"")),
        meta=_decode_meta(extensions.get(META_EXTENSION, b"")),
        entries_end=end_of_entries,
        spliceable=version == 2 and META_EXTENSION in extensions,
    )


def _end_of_entries_from_eoie(buffer: bytes) -> int | None:
    """The offset recorded by a valid EOIE extension (the last one), else None."""
    start = len(buffer) - _SHA_LEN - _EOIE.size
    if start < _HEADER.size:
        return None
    signature, length, offset, extensions_hash = _EOIE.unpack_from(buffer, start)
    if signature != EOIE_EXTENSION or length != _EOIE.size - 8 or not (
        _HEADER.size <= offset <= start
    ):
        return None
    digest = hashlib.sha1()
    position = offset
    while position < start:
        header = buffer[position : position + _EXT_HEADER.size]
        if len(header) < _EXT_HEADER.size:
            return None
        digest.update(header)
        position += _EXT_HEADER.size + _EXT_HEADER.unpack(header)[1]
    if position != start or digest.digest() != extensions_hash:
        return None
    return int(offset)


def _skip_entries(buffer: bytes, entry_count: int) -> int:
    """Walk the entries once to find where they end, checking that each fits the buffer."""
    limit = len(buffer) - _SHA_LEN
    offset = _HEADER.size
    unpack = struct.Struct(">H").unpack_from
    for _ in range(entry_count):
        if offset + _ENTRY.size > limit:
            raise IndexCorrupt("index entries are truncated")
        (flags,) = unpack(buffer, offset + _ENTRY.size - 2)
        name_start = offset + _ENTRY.size + (2 if flags & _FLAG_EXTENDED else 0)
        name_length = flags & _NAME_MASK
        if name_length == _NAME_MASK:
            name_end = buffer.find(b"\0", name_start, limit)
            if name_end < 0:
                raise IndexCorrupt("index entry name is unterminated")
        else:
            name_end = name_start + name_length
        offset += (name_end - offset + 8) & ~7
        if offset > limit:
            raise IndexCorrupt("index entries are truncated")
    return offset


def _read_extensions(buffer: bytes, offset: int) -> dict[bytes, bytes]:
    limit = len(buffer) - _SHA_LEN
    extensions: dict[bytes, bytes] = {}
    while offset < limit:
        if offset + _EXT_HEADER.size > limit:
            raise IndexCorrupt("index extension header is truncated")
        signature, length = _EXT_HEADER.unpack_from(buffer, offset)
        offset += _EXT_HEADER.size
        if offset + length > limit:
            raise IndexCorrupt(f"index extension {signature!r} is truncated")
        extensions[signature] = buffer[offset : offset + length]
        offset += length
    return extensions


def _decode_kinds(data: bytes) -> dict[bytes, tuple[HashKind, int]]:
    kinds: dict[bytes, tuple[HashKind, int]] = {}
    offset = 0
    try:
        while offset < len(data):
            code, size = _KIND_RECORD.unpack_from(data, offset)
            name_end = data.index(b"\0", offset + _KIND_RECORD.size)
            kinds[data[offset + _KIND_RECORD.size : name_end]] = (_KINDS_BY_CODE[code], size)
            offset = name_end + 1
    except (struct.error, ValueError, KeyError) as error:
        raise IndexCorrupt("index extension BMKD is malformed") from error
    return kinds


def _encode_kinds(entries: Iterable[IndexEntry]) -> bytes:
    return b"".join(
        _kind_record(entry.path, entry.hash_kind, entry.size)
        for entry in entries
        if entry.hash_kind is not HashKind.FULL
    )


def _kind_record(path: bytes, kind: HashKind, size: int) -> bytes:
    return _KIND_RECORD.pack(_KIND_CODES[kind], size) + path + b"\0"


def _decode_meta(data: bytes) -> dict[str, object]:
    if not data:
        return {}
    try:
        meta = json.loads(data)
    except ValueError as error:
        raise IndexCorrupt("index extension BMMT is not valid JSON") from error
    if not isinstance(meta, dict):
        raise IndexCorrupt("index extension BMMT is not a JSON object")
    return meta


class _SerializedEntries:
    """A sized, re-iterable view that turns our entries into dulwich's serialized entries.

    dulwich's `write_index` takes `len()` first and iterates twice; a view lets it do that
    over a merge of the old index and this run's updates without building a list of them.
    """

    def __init__(self, entries: Iterable[IndexEntry], count: int) -> None:
        self._entries = entries
        self._count = count
        self.entries_bytes = 0  # on-disk size of the entries of the last full iteration

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[object]:
        self.entries_bytes = 0
        for entry in self._entries:
            self.entries_bytes += (_ENTRY.size + len(entry.path) + 8) & ~7
            yield _serialized(entry)


def _serialized(entry: IndexEntry) -> SerializedIndexEntry:
    """dulwich's form of one entry (what its writer packs)."""
    from dulwich.index import SerializedIndexEntry
    from dulwich.objects import ObjectID

    ctime_s, ctime_n = divmod(entry.ctime_ns, _NS)
    mtime_s, mtime_n = divmod(entry.mtime_ns, _NS)
    return SerializedIndexEntry(
        name=entry.path,
        ctime=(ctime_s & _U32, ctime_n),
        mtime=(mtime_s & _U32, mtime_n),
        dev=entry.dev,
        ino=entry.ino,
        mode=entry.mode,
        uid=entry.uid & _U32,
        gid=entry.gid & _U32,
        size=entry.size & _U32,
        sha=ObjectID(entry.content_id.hex().encode("ascii")),
        flags=0,
        extended_flags=0,
    )


def write_index(
    index_path: Path,
    entries: Iterable[IndexEntry],
    entry_count: int,
    meta: Mapping[str, object],
    non_full_entries: Iterable[IndexEntry] = (),
) -> None:
    """Atomically replace the index with `entries` (which must be in bytewise path order).

    The file is written to `index.bm-new` beside it, flushed to disk, then renamed over the old
    index: a crash leaves either the old or the new index, never a mix. `entries` must be
    re-iterable (dulwich walks it twice) and yield exactly `entry_count` items.
    `non_full_entries` lists the entries whose kind is not FULL (for the kinds extension).
    """
    from dulwich.index import write_index as dulwich_write_index

    serialized = _SerializedEntries(entries, entry_count)
    extensions = _extensions(_encode_kinds(non_full_entries), meta,
                             lambda: serialized.entries_bytes)

    def fill(writer: IndexChecksumWriter) -> None:
        # A sized, re-iterable view is all dulwich's writer uses of its Sequence.
        dulwich_write_index(writer, cast("Sequence[SerializedIndexEntry]", serialized),
                            version=2, extensions=extensions)

    _replace_atomically(index_path, fill)


def _extensions(kinds: bytes, meta: Mapping[str, object],
                entries_bytes: Callable[[], int]) -> list[IndexExtension]:
    """Our two extensions, then git's EOIE, whose offset (`entries_bytes`, the on-disk size of
    the entries) is asked for only when dulwich writes it, after the entries."""
    from dulwich.index import IndexExtension

    extensions = [
        IndexExtension(KINDS_EXTENSION, kinds),
        IndexExtension(META_EXTENSION, json.dumps(dict(meta), sort_keys=True).encode()),
    ]

    class EndOfIndexEntries(IndexExtension):
        """EOIE, computed when dulwich asks for its bytes: after the entries are written."""

        def to_bytes(self) -> bytes:
            digest = hashlib.sha1()
            for extension in extensions[:-1]:
                digest.update(_EXT_HEADER.pack(extension.signature, len(extension.to_bytes())))
            return _EOIE.pack(b"", 0, _HEADER.size + entries_bytes(), digest.digest())[8:]

    extensions.append(EndOfIndexEntries(EOIE_EXTENSION, b""))
    return extensions


def _replace_atomically(index_path: Path, fill: Callable[[IndexChecksumWriter], None]) -> None:
    """Write the index through `fill` (then its checksum) to `index.bm-new`, flush it to disk
    and rename it over the index: a crash leaves either the old or the new index."""
    from dulwich.index import IndexChecksumWriter

    # Not git's `index.lock`: that name is kept taken, so git never rewrites bm's index.
    new_path = index_path.with_name(index_path.name + ".bm-new")
    try:
        with open(new_path, "wb", buffering=1 << 20) as raw_file:
            writer = IndexChecksumWriter(raw_file)
            fill(writer)
            writer.write_checksum()
            raw_file.flush()
            os.fsync(raw_file.fileno())
        os.replace(new_path, index_path)
    except OSError as error:
        # A full disk fails mid-write with no file name: name the index in the error, and
        # leave no half-written copy behind (the old index is untouched).
        new_path.unlink(missing_ok=True)
        if error.filename is None:
            error.filename = str(index_path)
        raise
    _fsync_directory(index_path.parent)


def splice_index(
    index_path: Path,
    snapshot: IndexSnapshot,
    *,
    touched: Container[bytes],
    rewrite: Callable[[IndexEntry], IndexEntry | None],
    added: Iterable[IndexEntry],
    entry_count: int,
    meta: Mapping[str, object],
) -> bool:
    """Atomically replace the index with what `write_index` would write, byte for byte, by
    copying the old file's bytes for the entries that did not change.

    Why: `write_index` packs every entry through dulwich (about 1.8 s of CPU at 100k entries),
    and a watcher writes the index after every batch of a few saved notes. Here the unchanged
    entries are copied as contiguous runs of `snapshot.buffer`, only the changed and added
    ones are packed (by dulwich, as `write_index` packs them), and the extensions, EOIE and the
    checksum are redone; the cost is one walk of the entries' offsets plus a SHA-1 of the file.

    The new index is the snapshot's entries in order, where an entry whose path is in
    `touched` becomes `rewrite(entry)` (None drops it), merged with `added` (entries the
    snapshot does not hold, in bytewise path order). `entry_count` goes into the header, as
    for `write_index`.

    Returns False, having written nothing, when the snapshot's bytes are not `write_index`'s
    (an index not written by bm, an entry with a stage, extended flags or a long name): the
    caller then writes the whole index. Raises `IndexCorrupt` when the entries do not fit the
    buffer, as iterating them for `write_index` would.
    """
    if not snapshot.spliceable:
        return False
    spliced = _splice_entries(snapshot, touched, rewrite, added)
    if spliced is None:
        return False
    pieces, kinds = spliced
    entries_bytes = sum(len(piece) for piece in pieces)
    extensions = _extensions(kinds, meta, lambda: entries_bytes)

    def fill(writer: IndexChecksumWriter) -> None:
        from dulwich.index import write_index_extension

        writer.write(_HEADER.pack(_SIGNATURE, 2, entry_count))
        for piece in pieces:
            writer.write(piece)  # type: ignore[arg-type]  # a memoryview writes like bytes
        for extension in extensions:
            write_index_extension(writer, extension)

    _replace_atomically(index_path, fill)
    return True


_FLAGS = struct.Struct(">H")
_FLAGS_OFFSET = _ENTRY.size - _FLAGS.size


def _splice_entries(
    snapshot: IndexSnapshot,
    touched: Container[bytes],
    rewrite: Callable[[IndexEntry], IndexEntry | None],
    added: Iterable[IndexEntry],
) -> tuple[list[bytes | memoryview], bytes] | None:
    """The new entries as pieces to write (runs of the old buffer and packed entries), and the
    kinds extension's data; None when an old entry is not as `write_index` writes it."""
    buffer = snapshot.buffer
    view = memoryview(buffer)
    old_kinds = snapshot.kinds
    pieces: list[bytes | memoryview] = []
    kinds: list[bytes] = []

    def pack(entry: IndexEntry) -> None:
        pieces.append(_packed(entry))
        if entry.hash_kind is not HashKind.FULL:
            kinds.append(_kind_record(entry.path, entry.hash_kind, entry.size))

    new_entries = iter(added)
    next_new = next(new_entries, None)
    end = snapshot.entries_end
    unpack_flags = _FLAGS.unpack_from
    copy_from = offset = _HEADER.size
    try:
        for _ in range(snapshot.entry_count):
            if offset + _ENTRY.size > end:
                raise IndexCorrupt("index entry runs past the end of the entries")
            (flags,) = unpack_flags(buffer, offset + _FLAGS_OFFSET)
            if flags >= _NAME_MASK:  # a stage, extended flags or a long name
                return None
            name_start = offset + _ENTRY.size
            path = buffer[name_start : name_start + flags]
            entry_end = offset + ((_ENTRY.size + flags + 8) & ~7)
            if entry_end > end:
                raise IndexCorrupt("index entry runs past the end of the entries")
            if next_new is not None and next_new.path < path:
                pieces.append(view[copy_from:offset])
                copy_from = offset
                while next_new is not None and next_new.path < path:
                    pack(next_new)
                    next_new = next(new_entries, None)
            if path in touched:
                pieces.append(view[copy_from:offset])
                copy_from = entry_end
                entry = rewrite(snapshot.entry(path, _ENTRY.unpack_from(buffer, offset)))
                if entry is not None:
                    pack(entry)
            elif old_kinds:
                recorded = old_kinds.get(path)
                if recorded is not None:
                    kinds.append(_kind_record(path, *recorded))
            offset = entry_end
    except struct.error as error:
        raise IndexCorrupt("index entries are malformed") from error
    if offset != end:
        raise IndexCorrupt("index entries do not end where its extensions begin")
    pieces.append(view[copy_from:offset])
    while next_new is not None:
        pack(next_new)
        next_new = next(new_entries, None)
    return [piece for piece in pieces if len(piece)], b"".join(kinds)


def _packed(entry: IndexEntry) -> bytes:
    """One entry's bytes, packed by dulwich exactly as `write_index` packs it."""
    from dulwich.index import write_cache_entry

    packed = io.BytesIO()
    write_cache_entry(packed, _serialized(entry), version=2)
    return packed.getvalue()


def _fsync_directory(directory: Path) -> None:
    """Make the rename durable: the directory entry must reach the disk too."""
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)
