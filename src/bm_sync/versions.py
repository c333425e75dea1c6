"""Note versions as git blobs in a hidden object store, `<root>/.basic-memory/objects`.

The index already holds the git blob id of every note, so a version costs no extra hashing:
the sync engine hands over the bytes it read to parse the note, and they are stored under that
id (only when they still hash to it). Identical content is stored once.

Bounded memory and few files: during a sync, new blobs are appended to a spool file; at the
end, one pack and its index are streamed from it in one pass (`_write_pack`), so a sync writes
one pack, not thousands of loose objects, whatever the number of notes.

Packs are merged as they accumulate: every lookup probes every pack and every open pack holds
file descriptors, so after a few hundred syncs an unmerged store made `bm sync` fail with "Too
many open files". Past `MAX_PACKS`, the flush rewrites the whole store as one pack (like `git gc
--auto`), streamed object by object: dulwich's own `repack` holds every object in memory.

Versions are a bonus, so a damaged store never fails a command. The packs are opened here, not
through dulwich's `DiskObjectStore`, so that a pack whose index is unusable (truncated, garbage)
can be left out: readers see its versions as not stored; writers (a sync's `flush`, `prune`,
both under the folder's lock) rebuild the index from the pack, like `git index-pack`, and say so
(`take_warnings`). Writers also delete what killed writers left behind (spools, temporary packs).
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bm_sync.errors import describe_os_error
from bm_sync.hashing import MARKDOWN_SUFFIXES

OBJECTS_DIR = "objects"
PACK_DIR = "pack"
MAX_PACKS = 16  # more than this after a sync: merge them all into one
_SPOOL_PREFIX = "spool-"
_TEMPORARY_PREFIXES = ("tmp_pack_", "tmp_idx_")  # + the writer's pid, see `_write_pack`
_LENGTH = struct.Struct(">Q")
# A version 2 pack index: magic and version, 256 fan-out counts, then per object its id, CRC
# and offset, a table of 8-byte offsets (packs over 2 GiB only) and two SHA-1 checksums.
_INDEX_MAGIC = b"\377tOc\x00\x00\x00\x02"
_FAN_OUT = struct.Struct(">256L")
_INDEX_HEADER = len(_INDEX_MAGIC) + _FAN_OUT.size
_INDEX_ENTRY = 20 + 4 + 4
_INDEX_TRAILER = 20 + 20


@dataclass(frozen=True)
class VersionPolicy:
    """Which files get their versions stored: markdown up to 1 MiB by default."""

    enabled: bool = True
    max_bytes: int = 1 << 20
    suffixes: tuple[str, ...] = tuple(suffix.decode() for suffix in MARKDOWN_SUFFIXES)

    def wants(self, path: str, size: int | None) -> bool:
        return (self.enabled and size is not None and size <= self.max_bytes
                and path.lower().endswith(self.suffixes))


class VersionStore:
    """Note contents as git blobs in packs, keyed by git blob id.

    `take_warnings()` gives one line per problem met in the store (a damaged pack index, and
    what was done about it), for the caller to report.
    """

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / OBJECTS_DIR
        self.pack_dir = self.path / PACK_DIR
        self._packs: list[tuple[str, Any]] | None = None  # (name, dulwich Pack), index usable
        self._damaged: list[str] = []  # names (`pack-<id>`) of packs whose index is not
        self._problems: dict[str, str] = {}  # pack name -> the last word on it
        self._spool_path = self.path / f"{_SPOOL_PREFIX}{os.getpid()}"
        self._spool: Any = None
        self._staged: set[str] = set()

    def take_warnings(self) -> list[str]:
        """The problems met since the last call, one line each (a long-lived engine reports
        each once)."""
        warnings = list(self._problems.values())
        self._problems = {}
        return warnings

    def _open_packs(self) -> list[tuple[str, Any]]:
        """The packs with a usable index, opened on first use; the others are noted."""
        if self._packs is None:
            from dulwich.object_format import SHA1
            from dulwich.pack import Pack

            self._packs, self._damaged = [], []
            indexes = sorted(self.pack_dir.glob("*.idx")) if self.pack_dir.is_dir() else []
            for index in indexes:
                name = index.name[:-len(".idx")]
                if not (self.pack_dir / f"{name}.pack").is_file():
                    continue  # not a pack of ours (git ignores it too)
                problem = _index_problem(index)
                if problem is None:
                    self._packs.append((name, Pack(str(self.pack_dir / name), object_format=SHA1)))
                    continue
                self._damaged.append(name)
                self._problems.setdefault(
                    name, f"version store: {index.name} is damaged ({problem}); the versions "
                    "in its pack are unavailable until the next sync rebuilds it")
        return self._packs

    def has(self, content_id: str) -> bool:
        key = content_id.encode()
        return any(key in pack for _name, pack in self._open_packs())

    def stage(self, content_id: str, data: bytes) -> bool:
        """Queue `data` for the sync's pack, unless stored already; True if queued."""
        if content_id in self._staged or self.has(content_id):
            return False
        if self._spool is None:
            self.pack_dir.mkdir(parents=True, exist_ok=True)
            self.remove_leftovers()
            self._spool = open(self._spool_path, "wb")  # noqa: SIM115 - closed in flush()
        self._spool.write(_LENGTH.pack(len(data)))
        self._spool.write(data)
        self._staged.add(content_id)
        return True

    def flush(self) -> int:
        """Write what was staged as one pack, merge the packs when there are more than
        `MAX_PACKS`, and close the store (a long-lived engine keeps no pack open between
        syncs); return the number of blobs written. Called under the folder's lock: also
        repairs damaged pack indexes and deletes what killed writers left behind."""
        self.remove_leftovers()
        try:
            self._repair()
            if self._spool is None:
                return 0
            self._spool.close()
            self._spool = None
            count = len(self._staged)
            self._staged = set()
            try:
                from dulwich.pack import full_unpacked_object

                records = (full_unpacked_object(blob) for blob in self._spooled_blobs())
                _write_pack(self.pack_dir, count, records)
            finally:
                self._spool_path.unlink(missing_ok=True)
            self._close_packs()
            if self.pack_count() > MAX_PACKS:
                self._rewrite()
            return count
        finally:
            self._close_packs()

    def _spooled_blobs(self) -> Iterator[Any]:
        from dulwich.objects import Blob

        with open(self._spool_path, "rb") as spool:
            while header := spool.read(_LENGTH.size):
                (length,) = _LENGTH.unpack(header)
                yield Blob.from_string(spool.read(length))

    def read(self, content_id: str) -> bytes | None:
        """The stored content of a version, or None when it was not stored (or its pack is
        damaged: see `take_warnings`)."""
        key = content_id.encode()
        for name, pack in self._open_packs():
            if key in pack:
                try:
                    _kind, data = pack.get_raw(key)
                except Exception as error:  # a damaged pack: versions are a bonus
                    self._problems[name] = (f"version store: {name}.pack is damaged "
                                            f"({_describe(error)})")
                    continue
                return bytes(data)
        return None

    def prune(self, keep: Iterable[str]) -> tuple[int, int]:
        """Rewrite the store with only the `keep` blobs; return (bytes before, bytes after)."""
        if not self.pack_dir.is_dir():
            return 0, 0
        self.remove_leftovers()
        before = self.disk_bytes()
        try:
            self._repair()
            self._rewrite({content_id.encode() for content_id in keep})
        finally:
            self._close_packs()
        return before, self.disk_bytes()

    def pack_count(self) -> int:
        return len(list(self.pack_dir.glob("*.pack"))) if self.pack_dir.is_dir() else 0

    def _repair(self) -> None:
        """Rebuild each damaged pack index from its pack (the pack alone holds the versions;
        the index only finds them). A pack that cannot be read either is set aside: its
        index is renamed `.idx.damaged`, so it is neither read nor reported again."""
        self._open_packs()
        if not self._damaged:
            return
        from dulwich.object_format import SHA1
        from dulwich.pack import PackData

        for name in self._damaged:
            index = self.pack_dir / f"{name}.idx"
            temporary = self.pack_dir / f"{_TEMPORARY_PREFIXES[1]}{os.getpid()}"
            try:
                with PackData(str(self.pack_dir / f"{name}.pack"), object_format=SHA1) as data:
                    data.create_index(str(temporary), version=2)
                problem = _index_problem(temporary)
                if problem is not None:
                    raise ValueError(problem)
                os.replace(temporary, index)
                self._problems[name] = (f"version store: {index.name} was damaged; rebuilt it "
                                        "from its pack (no version lost)")
            except Exception as error:  # the pack itself is damaged
                temporary.unlink(missing_ok=True)
                os.replace(index, index.with_name(f"{index.name}.damaged"))
                self._problems[name] = (f"version store: {name}.pack is damaged too "
                                        f"({_describe(error)}); its versions are lost, the "
                                        f"files are kept as {name}.pack and {index.name}.damaged")
        self._close_packs()

    def _rewrite(self, keep: set[bytes] | None = None) -> None:
        """Replace every pack by one holding the stored blobs (those in `keep`, if given).

        Streamed: only the set of ids is in memory, blobs go one at a time from the old packs to
        the new one. The new pack is complete (its index written) before an old one is deleted,
        so a crash leaves duplicates at worst, never a lost version.
        """
        from dulwich.pack import full_unpacked_object

        old = [pack for _name, pack in self._open_packs()]
        old_names = [name for name, _pack in self._open_packs()]
        wanted: set[bytes] = set()
        for pack in old:
            wanted.update(sha for sha in pack if keep is None or sha in keep)

        def records() -> Iterator[Any]:
            written: set[bytes] = set()
            for pack in old:
                for blob in pack.iterobjects():
                    if blob.id in wanted and blob.id not in written:
                        written.add(blob.id)
                        yield full_unpacked_object(blob)

        new_name = _write_pack(self.pack_dir, len(wanted), records()) if wanted else None
        self._close_packs()
        for name in old_names:
            if name != new_name:  # the same blobs give the same name: that pack stays
                for suffix in (".pack", ".idx", ".rev", ".bitmap"):
                    (self.pack_dir / (name + suffix)).unlink(missing_ok=True)

    def remove_leftovers(self) -> None:
        """Delete the spool files and temporary packs of killed writers (their process is
        gone). Called by writers, under the folder's lock: no live writer owns them."""
        candidates: list[tuple[Path, str]] = []
        if self.path.is_dir():
            candidates += [(spool, spool.name[len(_SPOOL_PREFIX):])
                           for spool in self.path.glob(f"{_SPOOL_PREFIX}*")]
        if self.pack_dir.is_dir():
            for prefix in _TEMPORARY_PREFIXES:
                candidates += [(temporary, temporary.name[len(prefix):])
                               for temporary in self.pack_dir.glob(f"{prefix}*")]
        for leftover, pid in candidates:
            if leftover != self._spool_path and pid.isdigit() and not _alive(int(pid)):
                leftover.unlink(missing_ok=True)

    def disk_bytes(self) -> int:
        total = 0
        for folder, _dirs, files in os.walk(self.path):
            total += sum(os.path.getsize(os.path.join(folder, name)) for name in files)
        return total

    def _close_packs(self) -> None:
        for _name, pack in self._packs or ():
            pack.close()
        self._packs = None

    def close(self) -> None:
        if self._spool is not None:
            self._spool.close()
            self._spool = None
            self._spool_path.unlink(missing_ok=True)
        self._staged = set()
        self._close_packs()


def _index_problem(path: Path) -> str | None:
    """Why the pack index at `path` is unusable, or None. A structural check (magic, version,
    fan-out, size), constant time: enough for truncated or overwritten files, and it never
    reads the whole index on the way to a lookup."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as index:
            header = index.read(_INDEX_HEADER)
    except OSError as error:
        return describe_os_error(error)
    if len(header) < _INDEX_HEADER:
        return "truncated"
    if not header.startswith(_INDEX_MAGIC):
        return "not a version 2 pack index"
    fan_out = _FAN_OUT.unpack_from(header, len(_INDEX_MAGIC))
    if any(later < earlier for earlier, later in zip(fan_out, fan_out[1:], strict=False)):
        return "bad fan-out table"
    expected = _INDEX_HEADER + fan_out[-1] * _INDEX_ENTRY + _INDEX_TRAILER
    if size < expected or (size - expected) % 8:
        return "truncated"
    return None


def _write_pack(pack_dir: Path, count: int, records: Iterator[Any]) -> str:
    """Stream `count` objects into a new pack and write its index in the same pass; return the
    pack's name (`pack-<id>`).

    dulwich's `add_pack_data` writes the pack, then reads it all back to build the index: for a
    first sync of 100k notes that doubled the time of storing versions and peaked at the
    pack's size in memory. `write_pack_data` already returns each object's offset and CRC,
    which is all a version 2 index needs. Both files are written under temporary names and
    renamed into place, the index last (readers find packs by their index), so a crash leaves
    no half pack behind a valid name, only temporary files that the next writer deletes.
    """
    from dulwich.object_format import SHA1
    from dulwich.pack import iter_sha1, write_pack_data, write_pack_index

    temporary = pack_dir / f"{_TEMPORARY_PREFIXES[0]}{os.getpid()}"
    temporary_index = pack_dir / f"{_TEMPORARY_PREFIXES[1]}{os.getpid()}"
    try:
        with open(temporary, "wb") as pack:
            entries, checksum = write_pack_data(pack.write, records, SHA1, num_records=count)
            pack.flush()
            os.fsync(pack.fileno())
        ordered = sorted((sha, offset, crc) for sha, (offset, crc) in entries.items())
        name = "pack-" + iter_sha1(sha for sha, _offset, _crc in ordered).decode("ascii")
        with open(temporary_index, "wb") as index:
            write_pack_index(index, ordered, checksum)
            index.flush()
            os.fsync(index.fileno())
        os.replace(temporary, pack_dir / f"{name}.pack")
        os.replace(temporary_index, pack_dir / f"{name}.idx")
    finally:
        temporary.unlink(missing_ok=True)
        temporary_index.unlink(missing_ok=True)
    return name


def _describe(error: Exception) -> str:
    if isinstance(error, OSError):
        return describe_os_error(error)
    return str(error).splitlines()[0] if str(error) else type(error).__name__


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True
