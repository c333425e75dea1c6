"""Apply a known, seeded mix of changes to the notes of a corpus, like a day of note-taking.

    python bench/mutate.py DIR --edits 10 --adds 10 --deletes 10 --moves 10 --moved-edits 10
    python bench/mutate.py DIR --changes 100        # shorthand for --edits 100

- edit: replace one body line and append an observation (content and size change, same path);
- add: a new note (same generator as make_corpus.py) in an existing folder;
- delete: remove a note;
- move: `os.rename` into another existing folder (same inode, mtime and content);
- moved-edit: write it into another folder with ~20% of its lines rewritten, remove the old
  one (an editor's "move, then edit").

Every touched note is distinct. Prints one JSON object: the counts and every change made
(`kind`, `path`, `old_path` for moves). Stdlib only.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from make_corpus import Note, note_text, sentence_pool  # noqa: E402

SKIPPED_DIRS = (".git", ".basic-memory", ".obsidian")
MOVED_EDIT_SHARE = 0.2


def notes_in(root: Path) -> list[Path]:
    """Every markdown note under `root`, sorted, outside hidden folders."""
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = [name for name in dirs if not name.startswith(".")]
        found += [Path(folder) / name for name in files if name.endswith(".md")]
    return sorted(found)


def relative(root: Path, path: Path) -> str:
    return path.relative_to(root).as_posix()


def frontmatter_end(lines: list[str]) -> int:
    """Index of the first body line (after a leading `---` block, if any)."""
    if lines and lines[0] == "---":
        for index in range(1, len(lines)):
            if lines[index] == "---":
                return index + 1
    return 0


def rewrite_lines(text: str, share: float, rng: random.Random, tag: str) -> str:
    """Replace `share` of the lines (at least one) with new ones, frontmatter kept."""
    lines = text.splitlines()
    start = frontmatter_end(lines)
    body = range(start, len(lines))
    wanted = min(len(body), max(1, round(share * len(lines))))
    for index in rng.sample(body, wanted) if wanted else []:
        lines[index] = f"Rewritten by the benchmark ({tag}, line {index}) {rng.random():.6f}."
    return "\n".join(lines) + "\n"


def edit(path: Path, rng: random.Random, tag: str) -> None:
    """Change one body line and append an observation."""
    text = rewrite_lines(path.read_text(), 0.0, rng, tag)
    path.write_text(text + f"- [fact] edited by the benchmark ({tag}) #bench (mutate)\n")


def other_folder(root: Path, path: Path, folders: list[Path], rng: random.Random) -> Path:
    """A free path with the same name in another folder."""
    candidates = [folder for folder in folders if folder != path.parent] or [root]
    target = rng.choice(candidates) / path.name
    number = 1
    while target.exists():
        number += 1
        target = target.with_name(f"{path.stem} {number}{path.suffix}")
    return target


def add(root: Path, folders: list[Path], titles: list[str], rng: random.Random,
        number: int, seed: int) -> Path:
    """Write a new note in an existing folder."""
    folder = rng.choice(folders) if folders else root
    title = f"Added Note {seed}-{number}"
    note = Note(relative(root, folder) if folder != root else "", title, None)
    path = folder / f"{title}.md"
    path.write_text(note_text(note, rng, sentence_pool(rng, 200), titles or [title]))
    return path


def mutate(root: Path, *, edits: int = 0, adds: int = 0, deletes: int = 0, moves: int = 0,
           moved_edits: int = 0, seed: int = 7) -> dict[str, object]:
    """Apply the changes; every touched note is distinct. Return the counts and the changes."""
    root = Path(root)
    rng = random.Random(seed)
    notes = notes_in(root)
    touched = edits + deletes + moves + moved_edits
    if touched > len(notes):
        raise SystemExit(f"{root} has {len(notes)} notes, {touched} requested")
    chosen = iter(rng.sample(notes, touched))
    folders = sorted({path.parent for path in notes})
    titles = [path.stem for path in notes]
    changes: list[dict[str, str | None]] = []

    def record(kind: str, path: Path, old: Path | None = None) -> None:
        changes.append({"kind": kind, "path": relative(root, path),
                        "old_path": relative(root, old) if old else None})

    for number in range(edits):
        path = next(chosen)
        edit(path, rng, f"edit {seed}-{number}")
        record("modified", path)
    for _ in range(deletes):
        path = next(chosen)
        path.unlink()
        record("deleted", path)
    for _ in range(moves):
        path = next(chosen)
        target = other_folder(root, path, folders, rng)
        os.rename(path, target)
        record("moved", target, path)
    for number in range(moved_edits):
        path = next(chosen)
        target = other_folder(root, path, folders, rng)
        tag = f"moved edit {seed}-{number}"
        target.write_text(rewrite_lines(path.read_text(), MOVED_EDIT_SHARE, rng, tag))
        path.unlink()
        record("moved", target, path)
    for number in range(adds):
        record("added", add(root, folders, titles, rng, number, seed))
    return {"edits": edits, "adds": adds, "deletes": deletes, "moves": moves,
            "moved_edits": moved_edits, "seed": seed, "changes": changes}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("--edits", type=int, default=0, metavar="N")
    parser.add_argument("--changes", type=int, dest="edits", metavar="N",
                        help="shorthand for --edits N")
    for name in ("adds", "deletes", "moves", "moved-edits"):
        parser.add_argument(f"--{name}", type=int, default=0)
    parser.add_argument("--seed", type=int, default=7)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    summary = mutate(args.root, edits=args.edits, adds=args.adds, deletes=args.deletes,
                     moves=args.moves, moved_edits=args.moved_edits, seed=args.seed)
    json.dump(summary, sys.stdout)
    print()


if __name__ == "__main__":
    main()
