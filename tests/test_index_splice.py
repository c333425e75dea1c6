"""The splice writer: byte for byte what the full writer writes, from a fraction of the work.

`splice_index` copies the old file's bytes for the entries that did not change; `write_index`
(dulwich) packs every entry. Every test here compares the two on the same logical index, or
checks what must hold around them: a missing, corrupt or foreign old index, a crash mid-write,
git's `index.lock` guard.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bm_sync import Detector, HashKind
from bm_sync.index_format import (
    IndexEntry,
    IndexSnapshot,
    parse_index,
    read_index,
    splice_index,
    write_index,
)
from bm_sync.recording import smudged
from tests.helpers import write

NS = 1_000_000_000
U32 = 0xFFFFFFFF
META = {"format": 1, "token": "t0"}

names = st.text(alphabet="ab/é.-", min_size=1, max_size=8).map(str.encode)
entry_fields = st.tuples(
    st.integers(0, (1 << 34) * NS),  # ctime ns: past 2**32 s too (stored modulo 2**32)
    st.integers(0, (1 << 34) * NS),  # mtime ns
    st.integers(0, U32),  # dev
    st.integers(0, U32),  # ino
    st.sampled_from((0o100644, 0o100755, 0o120000)),
    st.integers(0, U32),  # uid
    st.integers(0, U32),  # gid
    st.integers(0, 1 << 40),  # size: large ones keep their true size in BMKD
    st.binary(min_size=20, max_size=20),
    st.sampled_from(tuple(HashKind)),
)
# What happens to a recorded entry: carried, modified, removed, or kept smudged (a failure).
ACTIONS = ("carry", "modify", "remove", "smudge")


def make_entry(path: bytes, fields: tuple[int, int, int, int, int, int, int, int, bytes,
                                          HashKind]) -> IndexEntry:
    return IndexEntry(path, *fields)


def write_full(path: Path, entries: list[IndexEntry], meta: dict[str, object]) -> bytes:
    """The reference: the whole index through `write_index` (dulwich)."""
    write_index(path, entries, len(entries), meta,
                [entry for entry in entries if entry.hash_kind is not HashKind.FULL])
    return path.read_bytes()


@settings(max_examples=100, deadline=None)
@given(
    old=st.dictionaries(names, entry_fields, max_size=25),
    actions=st.lists(st.sampled_from(ACTIONS), min_size=25, max_size=25),
    new_fields=st.lists(entry_fields, min_size=25, max_size=25),
    added=st.dictionaries(names, entry_fields, max_size=8),
    meta=st.dictionaries(st.sampled_from(("token", "project", "run")), st.text(max_size=5)),
)
def test_splice_writes_the_bytes_the_full_writer_writes(
    old: dict[bytes, tuple[int, int, int, int, int, int, int, int, bytes, HashKind]],
    actions: list[str],
    new_fields: list[tuple[int, int, int, int, int, int, int, int, bytes, HashKind]],
    added: dict[bytes, tuple[int, int, int, int, int, int, int, int, bytes, HashKind]],
    meta: dict[str, object],
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        index = Path(folder) / "index"
        write_full(index, [make_entry(path, old[path]) for path in sorted(old)], META)
        snapshot = read_index(index)
        assert snapshot.spliceable
        model: dict[bytes, IndexEntry] = {}
        rewrites: dict[bytes, IndexEntry | None] = {}
        for recorded, action, fields in zip(snapshot.entries(), actions, new_fields,
                                            strict=False):
            outcome: IndexEntry | None = recorded
            if action == "modify":
                outcome = make_entry(recorded.path, fields)
            elif action == "remove":
                outcome = None
            elif action == "smudge":
                outcome = smudged(recorded)
            if action != "carry":
                rewrites[recorded.path] = outcome
            if outcome is not None:
                model[recorded.path] = outcome
        new_entries = [make_entry(path, added[path]) for path in sorted(added) if path not in old]
        model.update((entry.path, entry) for entry in new_entries)

        def rewrite(entry: IndexEntry) -> IndexEntry | None:
            return rewrites[entry.path]

        new_meta = {**META, **meta}
        assert splice_index(index, snapshot, touched=rewrites.keys(), rewrite=rewrite,
                            added=new_entries, entry_count=len(model), meta=new_meta)
        expected = write_full(Path(folder) / "expected",
                              [model[path] for path in sorted(model)], new_meta)
        assert index.read_bytes() == expected
        assert not (Path(folder) / "index.bm-new").exists()


def tree(notes: Path, count: int = 40) -> None:
    """Notes plus files whose content id is not a full blob id (a BMKD record each)."""
    for number in range(count):
        write(notes, f"folder {number % 4}/note {number:03}.md", f"# Note {number}\n")
    write(notes, "big/partial.bin", os.urandom(3000))
    write(notes, "big/skipped.bin", os.urandom(5000))


def full_rewrite_of(index: Path, scratch: Path) -> bytes:
    """What `write_index` writes for the entries and metadata `index` holds."""
    snapshot = read_index(index)
    return write_full(scratch / "reference", list(snapshot.entries()), snapshot.meta)


@pytest.mark.parametrize("change", ["edit", "add", "delete", "move", "nothing but racy"])
def test_every_sync_writes_the_index_by_splicing(notes: Path, tmp_path: Path,
                                                 change: str) -> None:
    """The recording's write (every sync and `record()`) splices an index bm wrote, with the
    full writer's bytes, extensions included (two files hashed partially or not at all)."""
    from bm_sync import HashPolicy

    policy = HashPolicy(full_hash_max_bytes=2000, partial_hash_max_bytes=4000)
    tree(notes)
    Detector(notes, policy=policy).record()
    index = notes / ".basic-memory/index"
    before = index.read_bytes()
    assert parse_index(before).spliceable and parse_index(before).kinds
    if change == "edit":
        write(notes, "folder 1/note 005.md", "# Note 5, edited\n")
    elif change == "add":
        write(notes, "folder 2/a new note.md", "# New\n")
    elif change == "delete":
        (notes / "folder 3/note 007.md").unlink()
    elif change == "move":
        os.rename(notes / "folder 0/note 000.md", notes / "folder 3/note 000.md")
    else:
        write(notes, "folder 2/note 002.md", "# Note 2\n", old=False)  # same bytes, racy
    assert Detector(notes, policy=policy).record()
    after = index.read_bytes()
    assert after != before
    assert after == full_rewrite_of(index, tmp_path)
    assert Detector(notes, policy=policy).status().change_count == 0


@pytest.mark.parametrize("odd", ["written by git", "an entry with a merge stage", "version 3",
                                 "no index"])
def test_an_index_bm_did_not_write_is_written_in_full(notes: Path, tmp_path: Path,
                                                      odd: str) -> None:
    """Bytes `write_index` would not write cannot be copied: the splice declines, writes
    nothing, and the next write is a full one (after which splicing resumes)."""
    tree(notes, count=6)
    Detector(notes).record()
    index = notes / ".basic-memory/index"
    if odd == "written by git":  # git drops our extensions when it writes the index
        (notes / ".basic-memory/index.lock").unlink()
        env = {**os.environ, "GIT_INDEX_FILE": str(index)}
        write(notes, "added by git.md", "# Git\n")
        subprocess.run(["git", "--git-dir", str(notes / ".basic-memory"), "update-index",
                        "--add", "added by git.md"], cwd=notes, env=env, capture_output=True,
                       check=True)
    elif odd in ("an entry with a merge stage", "version 3"):
        data = bytearray(index.read_bytes())
        if odd == "version 3":
            data[4:8] = (3).to_bytes(4, "big")
        else:
            data[12 + 60] |= 0x10  # stage 1 in the first entry's flags
        data[-20:] = hashlib.sha1(data[:-20]).digest()
        index.write_bytes(bytes(data))
    else:
        index.unlink()
    snapshot = read_index(index)
    assert not snapshot.spliceable or odd == "an entry with a merge stage"
    first = next(iter(snapshot.entries()), None)
    touched = {first.path} if first else set()
    assert not splice_index(tmp_path / "spliced", snapshot, touched=touched,
                            rewrite=lambda entry: entry, added=[], entry_count=1, meta=META)
    assert not (tmp_path / "spliced").exists()
    write(notes, "folder 1/note 001.md", "# Note 1, edited\n")
    Detector(notes).record()
    assert read_index(index).spliceable
    assert index.read_bytes() == full_rewrite_of(index, tmp_path)
    assert Detector(notes).status().change_count == 0


def test_a_corrupt_index_is_rebuilt_in_full(notes: Path, tmp_path: Path) -> None:
    tree(notes, count=6)
    Detector(notes).record()
    index = notes / ".basic-memory/index"
    index.write_bytes(index.read_bytes()[:-30] + b"\0" * 30)
    run = Detector(notes).detect(writable=True)
    report = run.collect()
    assert any("corrupt" in warning for warning in report.warnings)
    assert run.record()
    assert read_index(index).entry_count == 8
    assert index.read_bytes() == full_rewrite_of(index, tmp_path)


def test_entries_that_do_not_fit_their_buffer_are_corrupt_as_for_the_full_writer(
        tmp_path: Path) -> None:
    """A snapshot whose last entry runs past the extensions (a buggy writer, checksum intact):
    the splice raises IndexCorrupt, as iterating the entries for `write_index` does."""
    from bm_sync import IndexCorrupt

    entries = [IndexEntry(f"n{number}.md".encode(), NS, NS, 1, number, 0o100644, 0, 0, 5,
                          bytes(20), HashKind.FULL) for number in range(3)]
    good = parse_index(write_full(tmp_path / "index", entries, META))
    broken = IndexSnapshot(good.buffer, good.entry_count + 1, 0, meta=good.meta,
                           entries_end=good.entries_end, spliceable=True)
    with pytest.raises(IndexCorrupt):
        splice_index(tmp_path / "index", broken, touched=set(), rewrite=lambda entry: entry,
                     added=[], entry_count=3, meta=META)
    with pytest.raises(IndexCorrupt):
        list(broken.entries())
    assert read_index(tmp_path / "index").entry_count == 3


def test_the_spliced_index_keeps_git_reading_and_never_writing(notes: Path) -> None:
    """The splice writes `index.bm-new` and renames it: git's `index.lock` guard stays in
    place, so `git status` (which finds touched files) reads the index and leaves it alone."""
    tree(notes, count=6)
    Detector(notes).record()
    write(notes, "folder 2/note 002.md", "# Note 2, edited\n")
    Detector(notes).record()
    state = notes / ".basic-memory"
    assert (state / "index.lock").exists() and (state / "index.lock").stat().st_size == 0
    index_bytes = (state / "index").read_bytes()
    os.utime(notes / "folder 3/note 003.md")  # a touched file: git would refresh its entry
    status = subprocess.run(["git", "--git-dir", str(state), "status", "--porcelain"],
                            cwd=notes, capture_output=True, text=True, check=True)
    assert " M " not in status.stdout and "??" not in status.stdout
    listing = subprocess.run(["git", "--git-dir", str(state), "ls-files"], cwd=notes,
                             capture_output=True, text=True, check=True).stdout.split("\n")
    assert "folder 2/note 002.md" in listing and len([line for line in listing if line]) == 8
    assert (state / "index").read_bytes() == index_bytes


CRASHING_WRITE = """
import resource, signal, sys
from bm_sync import Detector
signal.signal(signal.SIGXFSZ, signal.SIG_DFL)  # Python ignores it; let the kernel kill us
limit = int(sys.argv[2])
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
Detector(sys.argv[1]).record()
"""


def test_a_crash_mid_write_leaves_the_old_index(notes: Path) -> None:
    """A real crash: the writing process is killed by the kernel (SIGXFSZ) once the new index
    reaches half the old one's size. The old index is intact, and the next run converges."""
    tree(notes, count=200)
    Detector(notes).record()
    index = notes / ".basic-memory/index"
    before = index.read_bytes()
    write(notes, "folder 0/note 100.md", "# Note 100, edited\n")
    limit = len(before) // 2
    crashed = subprocess.run([sys.executable, "-c", CRASHING_WRITE, str(notes), str(limit)],
                             capture_output=True, text=True, timeout=120)
    assert crashed.returncode == -signal.SIGXFSZ, crashed.stderr
    assert (notes / ".basic-memory/index.bm-new").stat().st_size == limit  # killed mid-write
    assert index.read_bytes() == before
    report = Detector(notes).status()
    assert report.modified == ["folder 0/note 100.md"]
    Detector(notes).record()
    assert not (notes / ".basic-memory/index.bm-new").exists()
    assert Detector(notes).status().change_count == 0
