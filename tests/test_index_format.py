"""The index is a real git index: the real `git` binary reads it, ids match `git hash-object`."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from bm_sync import Detector, HashKind, HashPolicy, IndexCorrupt
from bm_sync.index_format import IndexEntry, parse_index, read_index, write_index
from tests.helpers import write


def git(*args: str, index: Path, cwd: Path) -> str:
    """Run the real git on our index, with an empty repository of its own as --git-dir."""
    git_dir = cwd / ".empty.git"  # hidden: the detector skips it
    if not git_dir.exists():
        subprocess.run(["git", "init", "-q", "--bare", str(git_dir)], check=True)
    env = {**os.environ, "GIT_INDEX_FILE": str(index)}
    return subprocess.run(["git", "--git-dir", str(git_dir), "--work-tree", str(cwd), *args],
                          cwd=cwd, env=env, capture_output=True, text=True, check=True).stdout


def hash_object(path: Path) -> str:
    return subprocess.run(["git", "hash-object", str(path)], capture_output=True, text=True,
                          check=True).stdout.strip()


def test_git_lists_every_tracked_path_with_its_blob_id(notes: Path) -> None:
    files = {
        "a.md": "# A\n",
        "folder with spaces/b.md": "# B\n",
        "deep/er/ünïcode.md": "# C\n",
        "image.png": os.urandom(5000),
        "empty.md": "",
    }
    for relative, content in files.items():
        write(notes, relative, content)
    (notes / "run.sh").write_text("#!/bin/sh\n")
    (notes / "run.sh").chmod(0o755)
    Detector(notes).record()
    listing = git("ls-files", "-s", "-z", index=notes / ".basic-memory/index", cwd=notes)
    rows = [row for row in listing.split("\0") if row]
    listed = {}
    for row in rows:
        meta, path = row.split("\t", 1)
        mode, blob, stage = meta.split()
        listed[path] = (mode, blob, stage)
    assert sorted(listed) == sorted([*files, "run.sh"])
    for path, (mode, blob, stage) in listed.items():
        assert blob == hash_object(notes / path), path
        assert stage == "0"
        assert mode == ("100755" if path == "run.sh" else "100644")


def test_git_status_sees_no_modification_in_our_stat_data(notes: Path) -> None:
    """git compares our recorded stat data with the files and finds them clean."""
    write(notes, "a.md", "a\n")
    write(notes, "sub/b.md", "b\n")
    Detector(notes).record()
    index = notes / ".basic-memory/index"
    assert git("diff-files", "--name-only", index=index, cwd=notes) == ""
    (notes / "a.md").write_text("changed\n")
    assert git("diff-files", "--name-only", index=index, cwd=notes) == "a.md\n"


def test_git_reads_stat_data_we_wrote(notes: Path) -> None:
    path = write(notes, "a.md", "hello\n")
    Detector(notes).record()
    debug = git("ls-files", "--debug", index=notes / ".basic-memory/index", cwd=notes)
    stat_result = path.stat()
    assert f"mtime: {stat_result.st_mtime_ns // 10**9}:{stat_result.st_mtime_ns % 10**9}" in debug
    assert f"size: {stat_result.st_size}" in debug
    assert f"ino: {stat_result.st_ino}" in debug


def test_git_accepts_our_extensions_and_partial_entries(notes: Path) -> None:
    write(notes, "big.bin", os.urandom(200_000))
    write(notes, "a.md", "a\n")
    Detector(notes, policy=HashPolicy(full_hash_max_bytes=1000)).record()
    index = notes / ".basic-memory/index"
    listing = git("ls-files", "-s", index=index, cwd=notes)
    assert "big.bin" in listing and "a.md" in listing
    # git verifies the whole file (checksum, extensions) when it rewrites it.
    git("update-index", "--index-version", "2", index=index, cwd=notes)
    snapshot = read_index(index)
    kinds = {entry.path: entry.hash_kind for entry in snapshot.entries()}
    assert kinds[b"big.bin"] is HashKind.PARTIAL and kinds[b"a.md"] is HashKind.FULL


def test_reader_agrees_with_dulwich(notes: Path) -> None:
    from dulwich.index import read_index_dict

    for number in range(200):
        write(notes, f"d{number % 7}/n{number}{'x' * (number % 13)}.md", f"{number}\n")
    Detector(notes).record()
    index = notes / ".basic-memory/index"
    with open(index, "rb") as handle:
        theirs = read_index_dict(handle)
    ours = list(read_index(index).entries())
    assert [entry.path for entry in ours] == sorted(theirs)
    for entry in ours:
        other = theirs[entry.path]
        assert entry.content_id.hex() == other.sha.decode() if isinstance(other.sha, bytes) \
            else entry.content_id.hex() == other.sha
        assert entry.size == other.size and entry.ino == other.ino
        assert entry.mtime_ns == other.mtime[0] * 10**9 + other.mtime[1]


def test_write_is_atomic_when_interrupted(notes: Path, tmp_path: Path) -> None:
    write(notes, "a.md", "a\n")
    detector = Detector(notes)
    detector.record()
    good = detector.index_path.read_bytes()

    def broken_entries():
        yield from read_index(detector.index_path).entries()
        raise RuntimeError("crash while writing")

    class Entries:
        def __iter__(self):
            return broken_entries()

    with pytest.raises(RuntimeError):
        write_index(detector.index_path, Entries(), 1, {})
    assert detector.index_path.read_bytes() == good


def test_parse_rejects_garbage_with_one_line_reasons() -> None:
    for data in (b"", b"XXXX" + b"\0" * 40, b"DIRC\0\0\0\x09" + b"\0" * 40):
        with pytest.raises(IndexCorrupt) as error:
            parse_index(data)
        assert "\n" not in str(error.value)


def test_long_paths_round_trip(notes: Path) -> None:
    long_name = "n" * 200 + ".md"
    relative = "/".join(["folder" * 5] * 125) + "/" + long_name
    assert 3800 < len(relative) < 4095
    index = notes / "index"
    entry = IndexEntry(relative.encode(), 1, 2, 3, 4, 0o100644, 0, 0, 5, b"\1" * 20, HashKind.FULL)
    write_index(index, [entry], 1, {"format": 1})
    assert list(read_index(index).entries()) == [entry]



def test_eoie_offset_matches_the_end_of_entries(notes: Path) -> None:
    from bm_sync.index_format import _end_of_entries_from_eoie, _skip_entries

    for number in range(40):
        write(notes, f"f{number % 3}/{'n' * (number % 17)}{number}.md", f"{number}\n")
    write(notes, "big.bin", os.urandom(5000))
    Detector(notes, policy=HashPolicy(full_hash_max_bytes=1000)).record()
    buffer = (notes / ".basic-memory/index").read_bytes()
    snapshot = read_index(notes / ".basic-memory/index")
    assert _end_of_entries_from_eoie(buffer) == _skip_entries(buffer, snapshot.entry_count)
    # An index without EOIE (as dulwich alone writes it) is still read, the slow way.
    from dulwich.index import IndexChecksumWriter, read_index_dict, write_index_dict

    with open(notes / ".basic-memory/index", "rb") as handle:
        plain = read_index_dict(handle)
    with open(notes / "plain-index", "wb") as handle:
        writer = IndexChecksumWriter(handle)
        write_index_dict(writer, plain)
        writer.write_checksum()
    assert [entry.path for entry in read_index(notes / "plain-index").entries()] == sorted(plain)


def test_a_full_disk_while_writing_the_index_names_it_and_keeps_the_old_one(
        notes: Path) -> None:
    """Issue 7 §4: the write fails for real (RLIMIT_FSIZE in a child process, SIGXFSZ
    ignored: EFBIG, as a full disk gives ENOSPC); the error names the index, the old index is
    untouched and no half-written copy is left beside it."""
    import sys

    index = notes / "index"
    write_index(index, [], 0, {"format": 1})
    before = index.read_bytes()
    script = f"""
import resource, signal, sys
from bm_sync.changes import HashKind
from pathlib import Path
from bm_sync.index_format import IndexEntry, write_index
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
entries = [IndexEntry(b"note-%05d.md" % n, 1, 2, 3, 4, 0o100644, 0, 0, 5, b"\\1" * 20,
                      HashKind.FULL) for n in range(2000)]
try:
    write_index(Path({str(index)!r}), entries, len(entries), {{"format": 1}})
except OSError as error:
    print(error.filename)
    sys.exit(3)
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 3, result.stderr
    assert result.stdout.strip() == str(index)
    assert index.read_bytes() == before
    assert sorted(path.name for path in notes.iterdir()) == ["index"]
