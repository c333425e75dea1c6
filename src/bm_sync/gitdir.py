"""`<root>/.basic-memory` as a valid git directory, so git's own tools read bm's state.

The index is a real git index and the version store a real object store, but git accepts
neither outside a repository ("not a git repository"). A git directory needs little more:
`HEAD`, `refs/`, `objects/` (shared with the version store, which writes its packs there) and
a `config` whose `core.worktree = ..` points back at the notes folder. Then, from anywhere:

    git --git-dir=<root>/.basic-memory ls-files -s         # what the index records
    git --git-dir=<root>/.basic-memory cat-file -p <id>    # a stored version of a note
    git --git-dir=<root>/.basic-memory status --porcelain  # what changed, as git sees it

`info/exclude` hides what bm never tracks by default (hidden names, bm's own folder), so git's
untracked files are bm's added ones. An empty `index.lock` is kept in place: git takes that
lock to write the index, and a `git status` that finds a touched file would otherwise write
it back without bm's extensions (metadata, hash kinds), forcing a rebuild. With it, git reads
and never writes (`git add` says the index is locked); bm writes its index under another name.

`HEAD` points at a branch that has no commit: git lists every entry as staged ("A" in the
first column of `status --porcelain`); the second column is what changed on disk since the
index was recorded (M, D, and `??` for new files), which is what `bm status` reports.

Files that already exist are left as they are (a user may have tuned the config). Failing to
write them is not an error of the sync: the index is what matters, this only adds a view.
"""

from __future__ import annotations

import os
from pathlib import Path

from bm_sync.ignore import DEFAULT_RULES

HEAD = "ref: refs/heads/main\n"
CONFIG = """[core]
\trepositoryformatversion = 0
\tfilemode = true
\tbare = false
\tworktree = ..
\tlogallrefupdates = false
"""
EXCLUDE = """# Written by bm-sync: what bm does not track by default.
# Hidden names (.obsidian/, .trash/, .DS_Store, editor swap files, .basic-memory itself).
.*
# Editors' temporary files (bm_sync.ignore.DEFAULT_RULES).
""" + "\n".join(DEFAULT_RULES) + "\n"


GIT_WRITE_GUARD = "index.lock"


def ensure_git_dir(state_dir: Path) -> None:
    """Add what git needs to `state_dir` to read it as a git directory (once), and the guard
    that keeps git from writing the index (every time: a user may have removed it)."""
    try:
        _write_new(state_dir / GIT_WRITE_GUARD, "")
        if (state_dir / "HEAD").exists():
            return
        for folder in ("refs/heads", "refs/tags", "objects/info", "objects/pack", "info"):
            (state_dir / folder).mkdir(parents=True, exist_ok=True)
        _write_new(state_dir / "info" / "exclude", EXCLUDE)
        _write_new(state_dir / "config", CONFIG)
        _write_new(state_dir / "HEAD", HEAD)  # last: its presence means "done"
    except OSError:
        return


def _write_new(path: Path, text: str) -> None:
    """Create `path` with `text` unless it exists (atomically: never a half-written file)."""
    if path.exists():
        return
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(text)
    os.replace(temporary, path)
