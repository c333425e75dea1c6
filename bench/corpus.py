"""Deterministic corpora for the benchmarks: markdown notes like a real knowledge base.

    python bench/corpus.py OUT --notes 10000 [--binaries 31 --binary-mb 80 --largest-mb 16]
    python bench/corpus.py OUT --preset tenant      # 2,590 notes + 31 binaries (80 MB, one 16 MB)
    python bench/corpus.py OUT --notes 100000 --git # also a git repository, the reference

Notes have YAML frontmatter (a permalink on 30%), a heading, paragraphs, observations, relations
and inline [[links]], in nested folders of 50-200 notes, 0.5-8 KB each. The root has a small
.gitignore with a few ignored files, so ignore handling is on the measured path.
Stdlib only.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
from pathlib import Path

WORDS = ("sync index note graph memory stream batch hash inode commit query entity relation "
         "observation permalink folder change detect rename move edit version store pack "
         "project idea design spec test bench measure latency throughput bounded").split()
CATEGORIES = ("idea", "fact", "decision", "question", "risk", "todo")
RELATIONS = ("relates_to", "implements", "part_of", "depends_on", "inspired_by")
TENANT = {"notes": 2590, "binaries": 31, "binary_mb": 80, "largest_mb": 16}


def title_of(number: int) -> str:
    return f"Note {number} {WORDS[number % len(WORDS)].title()}"


def folder_of(number: int, notes: int, rng: random.Random) -> str:
    """Nested folders (up to 3 levels) of about 50-200 notes each."""
    folders = max(1, notes // 120)
    index = number % folders
    return f"area {index % 10}/topic {index // 10 % 20}/part {index // 200}"


def note_text(number: int, notes: int, rng: random.Random) -> str:
    lines = ["---", f"title: {title_of(number)}", f"type: {rng.choice(['note', 'idea', 'spec'])}",
             f"tags: [{', '.join(rng.sample(WORDS, 3))}]"]
    if rng.random() < 0.3:
        lines.append(f"permalink: notes/n-{number}")
    lines += ["---", f"# {title_of(number)}", ""]
    target_size = rng.randint(500, 8000)
    size = sum(len(line) + 1 for line in lines)
    while size < target_size:
        kind = rng.random()
        if kind < 0.5:
            line = " ".join(rng.choices(WORDS, k=rng.randint(8, 20))).capitalize() + "."
            if rng.random() < 0.3:
                line += f" See [[{title_of(rng.randrange(notes))}]]."
        elif kind < 0.8:
            line = (f"- [{rng.choice(CATEGORIES)}] {' '.join(rng.choices(WORDS, k=6))} "
                    f"#{rng.choice(WORDS)} ({rng.choice(WORDS)})")
        else:
            line = f"- {rng.choice(RELATIONS)} [[{title_of(rng.randrange(notes))}]]"
        lines.append(line)
        size += len(line) + 1
    return "\n".join(lines) + "\n"


def write_binaries(root: Path, count: int, total_mb: float, largest_mb: float,
                   rng: random.Random) -> None:
    if count <= 0:
        return
    sizes = [int(largest_mb * 2**20)]
    rest = max(0, int(total_mb * 2**20) - sizes[0])
    sizes += [rest // max(1, count - 1)] * (count - 1)
    folder = root / "attachments"
    folder.mkdir(parents=True, exist_ok=True)
    block = rng.randbytes(1 << 20)
    for number, size in enumerate(sizes):
        suffix = ".pdf" if number % 3 else ".png"
        with open(folder / f"file {number}{suffix}", "wb") as handle:
            handle.write(number.to_bytes(8, "big"))
            remaining = size - 8
            while remaining > 0:
                handle.write(block[: min(remaining, len(block))])
                remaining -= len(block)


def generate(root: Path, notes: int, binaries: int = 0, binary_mb: float = 0,
             largest_mb: float = 0, seed: int = 1, git: bool = False) -> None:
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    made: set[str] = set()
    for number in range(notes):
        folder = folder_of(number, notes, rng)
        if folder not in made:
            (root / folder).mkdir(parents=True, exist_ok=True)
            made.add(folder)
        (root / folder / f"{title_of(number)}.md").write_text(note_text(number, notes, rng))
    write_binaries(root, binaries, binary_mb, largest_mb, rng)
    (root / ".gitignore").write_text(".obsidian/\n*.tmp\n")
    (root / ".obsidian").mkdir(exist_ok=True)
    (root / ".obsidian" / "workspace.json").write_text("{}\n")
    (root / "scratch.tmp").write_text("ignored\n")
    if git:
        make_git_repository(root)


def make_git_repository(root: Path) -> None:
    """A committed, refreshed git repository: `git status` then has nothing to do but check."""
    identity = ["-c", "user.name=bench", "-c", "user.email=bench@example.invalid"]
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    (root / ".git" / "info" / "exclude").write_text(".basic-memory/\n")
    subprocess.run(["git", "add", "-A"], cwd=root, check=True)
    subprocess.run(["git", *identity, "commit", "-qm", "corpus"], cwd=root, check=True)
    subprocess.run(["git", "update-index", "--refresh"], cwd=root, check=False,
                   capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--notes", type=int, default=1000)
    parser.add_argument("--binaries", type=int, default=0)
    parser.add_argument("--binary-mb", type=float, default=0)
    parser.add_argument("--largest-mb", type=float, default=0)
    parser.add_argument("--preset", choices=["tenant"])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--git", action="store_true")
    args = parser.parse_args()
    options = dict(notes=args.notes, binaries=args.binaries, binary_mb=args.binary_mb,
                   largest_mb=args.largest_mb)
    if args.preset == "tenant":
        options = dict(TENANT)
    generate(args.out, seed=args.seed, git=args.git, **options)
    print(f"{args.out}: {sum(len(files) for _, _, files in os.walk(args.out))} files")


if __name__ == "__main__":
    main()
