"""A hypothesis state machine against a ground-truth model: zero missed, zero phantom changes.

Random sequences of create, edit (including same-size edits with the mtime put back), delete,
rename, folder rename and touch, interleaved with `record`, on a real folder. After every step
the detector's report must equal the model's path-level diff exactly, moves allowed to stand
for a (deleted, added) pair.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from bm_sync import Detector

FOLDERS = ["", "a/", "b/", "a/c/"]
NAMES = ["x.md", "y.md", "z.md", "w.md"]
WORDS = ["alpha", "beta", "gamma", "delta"]
paths = st.builds(lambda folder, name: folder + name, st.sampled_from(FOLDERS),
                  st.sampled_from(NAMES))
contents = st.lists(st.sampled_from(WORDS), min_size=1, max_size=5).map(
    lambda words: ("\n".join(words) + "\n").encode())


class DetectorMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.root = Path(tempfile.mkdtemp(prefix="bm-model-"))
        self.recorded: dict[str, bytes] = {}
        self.current: dict[str, bytes] = {}

    def teardown(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    def _write(self, path: str, content: bytes) -> None:
        target = self.root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
        self.current[path] = content

    @rule(path=paths, content=contents)
    def create_or_overwrite(self, path: str, content: bytes) -> None:
        if any(other.startswith(path + "/") for other in self.current):
            return
        if any(path.startswith(folder) and (self.root / folder.rstrip("/")).is_file()
               for folder in FOLDERS if folder):
            return
        self._write(path, content)

    @precondition(lambda self: self.current)
    @rule(data=st.data())
    def same_size_edit_with_mtime_put_back(self, data: st.DataObject) -> None:
        path = data.draw(st.sampled_from(sorted(self.current)))
        old = self.current[path]
        new = bytes(reversed(old[:-1])) + b"\n" if len(old) > 2 else old
        if new == old:
            new = old.upper()
        target = self.root / path
        before = target.stat()
        target.write_bytes(new)
        os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))
        self.current[path] = new

    @precondition(lambda self: self.current)
    @rule(data=st.data())
    def delete(self, data: st.DataObject) -> None:
        path = data.draw(st.sampled_from(sorted(self.current)))
        (self.root / path).unlink()
        del self.current[path]

    @precondition(lambda self: self.current)
    @rule(data=st.data(), destination=paths)
    def rename(self, data: st.DataObject, destination: str) -> None:
        source = data.draw(st.sampled_from(sorted(self.current)))
        if destination in self.current or any(
                other.startswith(destination + "/") for other in self.current):
            return
        target = self.root / destination
        if any(parent.is_file() for parent in target.parents if parent != self.root):
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        os.rename(self.root / source, target)
        self.current[destination] = self.current.pop(source)

    @rule(source=st.sampled_from(["a", "b"]), destination=st.sampled_from(["d", "e"]))
    def rename_folder(self, source: str, destination: str) -> None:
        if not (self.root / source).is_dir() or (self.root / destination).exists():
            return
        os.rename(self.root / source, self.root / destination)
        self.current = {(destination + path[len(source):] if path.startswith(source + "/")
                         else path): content for path, content in self.current.items()}

    @precondition(lambda self: self.current)
    @rule(data=st.data(), seconds=st.integers(1, 10_000))
    def touch(self, data: st.DataObject, seconds: int) -> None:
        path = data.draw(st.sampled_from(sorted(self.current)))
        os.utime(self.root / path, ns=(seconds * 10**9, seconds * 10**9))

    @rule()
    def record(self) -> None:
        report = Detector(self.root).record()
        assert report.failed == []
        self.recorded = dict(self.current)

    @invariant()
    def status_matches_the_model(self) -> None:
        report = Detector(self.root).status()
        added = set(self.current) - set(self.recorded)
        deleted = set(self.recorded) - set(self.current)
        modified = {path for path in set(self.current) & set(self.recorded)
                    if self.current[path] != self.recorded[path]}
        moved_from = {old for old, _new in report.moved}
        moved_to = {new for _old, new in report.moved}
        assert report.failed == []
        assert set(report.modified) == modified
        assert set(report.added) | moved_to == added
        assert set(report.deleted) | moved_from == deleted
        assert not set(report.added) & moved_to and not set(report.deleted) & moved_from
        assert report.unchanged == len(set(self.current) & set(self.recorded)) - len(modified)
        # An identical file that is the only candidate on both sides must pair as a move.
        for old in deleted:
            twins = [new for new in added if self.current[new] == self.recorded[old]]
            rivals = [other for other in deleted if self.recorded[other] == self.recorded[old]]
            if len(twins) == 1 and rivals == [old]:
                assert (old, twins[0]) in report.moved


TestDetectorModel = DetectorMachine.TestCase
TestDetectorModel.settings = settings(
    max_examples=60, stateful_step_count=25, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
