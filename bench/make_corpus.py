"""Generate a deterministic corpus of markdown notes (plus optional binaries) for the benchmarks.

    python bench/make_corpus.py OUT --notes 10000 [--seed 1] [--git]
    python bench/make_corpus.py OUT --notes 2000 --binaries 10 --binary-mb 40 --largest-mb 8
    python bench/make_corpus.py OUT --preset tenant [--git]   # 2,590 notes + 31 binaries (80 MB)
    python bench/make_corpus.py OUT --notes 0 --daily 366      # a year of templated daily notes

Notes look like a real knowledge base: YAML frontmatter (title, type, tags; a permalink on
about 30%), a `# heading`, paragraphs with inline [[links]], `- [category] text #tag (context)`
observations and `- relation [[Other Title]]` relations, 0.5-8 KB each, in nested folders
(up to 3 levels, 50-200 notes each) with names containing spaces. The root gets a `.gitignore`
(`.obsidian/`, `*.tmp`) and a few files it ignores. `--git` makes the folder a committed git
repository with a refreshed index, the reference for `git status`.

`--daily N` adds N daily notes from one template (from 2024-01-01 on, in `Journal/Daily/YYYY/`)
and a weekly review from another every Sunday: the same frontmatter keys, headings and prompts
in every note, a different body of 1-12 lines, as an Obsidian or Logseq journal looks. They are
what two different notes made from one template look like to the move rules.

The same seed and options always give the same paths and bytes. Stdlib only; one process.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ADJECTIVES = (
    "Quiet Bright Early Late Hidden Open Shared Daily Weekly Quarterly Remote Local Rough Final "
    "Draft Small Large Fast Slow Deep Simple Complex Stable Broken Fresh Old New Northern "
    "Southern Central Green Red Blue Golden Silver Urban Rural Public Private Minimal Modular "
    "Curious Careful Bold Gentle Sharp Soft Strong Light Dark Clear Hazy Lucky Steady"
).split()
NOUNS = (
    "Harbor River Garden Engine Library Bridge Market Kitchen Studio Forest Archive Signal "
    "Compass Ladder Lantern Meadow Orchard Pipeline Journal Notebook Canvas Circuit Beacon "
    "Atlas Mirror Window Valley Summit Island Workshop Network Schema Cache Index Ledger "
    "Anchor Harvest Horizon Puzzle Recipe Ritual Habit Draft Thread Pattern Sketch Outline"
).split()
TOPICS = (
    "Roadmap Review Plan Notes Ideas Retrospective Checklist Summary Proposal Design Research "
    "Interview Meeting Budget Timeline Strategy Experiment Findings Questions Decisions "
    "Reading Lessons Goals Metrics Risks Overview Guide Reference Log Journal Brainstorm"
).split()
TOP_FOLDERS = ("Projects", "Areas", "Resources", "Archive", "Journal", "People", "Meetings",
               "Research", "Reading Notes", "Inbox", "Work Log", "Ideas")
MID_FOLDERS = tuple(f"{adjective} {noun}" for adjective in ADJECTIVES[:8] for noun in NOUNS[:6])
LEAF_FOLDERS = tuple(f"{topic} {year}" for topic in TOPICS for year in range(2019, 2026))
WORDS = (
    "the a of to and in for on with as by from at that this it we they our their about into "
    "sync index note graph memory stream batch hash commit query entity relation observation "
    "permalink folder change detect rename move edit version store project idea design spec "
    "test measure latency throughput bounded customer team meeting draft plan review budget "
    "schedule priority risk decision question answer research paper article book chapter "
    "garden recipe travel health habit goal metric outcome feedback release deploy server "
    "client browser phone laptop window keyboard coffee morning evening weekend summer winter"
).split()
CATEGORIES = ("idea", "fact", "decision", "question", "risk", "todo", "insight", "quote")
RELATIONS = ("relates_to", "implements", "part_of", "depends_on", "inspired_by", "extends",
             "contrasts_with", "mentions")
TYPES = ("note", "note", "note", "idea", "meeting", "person", "project", "reference")
TENANT = {"notes": 2590, "binaries": 31, "binary_mb": 80.0, "largest_mb": 16.0}
GITIGNORE = ".obsidian/\n*.tmp\n"
MIN_NOTE, MAX_NOTE = 512, 8192
MIB = 1 << 20


@dataclass(frozen=True)
class Note:
    """One note to write: where, and the title other notes link to."""

    folder: str
    title: str
    permalink: str | None


def unique_titles(count: int, rng: random.Random) -> list[str]:
    """`count` distinct realistic titles ("Quiet Harbor Roadmap"; a number on a repeat)."""
    seen: set[str] = set()
    titles = []
    for _ in range(count):
        title = f"{rng.choice(ADJECTIVES)} {rng.choice(NOUNS)} {rng.choice(TOPICS)}"
        candidate, number = title, 1
        while candidate.lower() in seen:
            number += 1
            candidate = f"{title} {number}"
        seen.add(candidate.lower())
        titles.append(candidate)
    return titles


def folder_paths(notes: int, rng: random.Random) -> list[str]:
    """One folder path per note: folders of 50-200 notes, 1 to 3 levels deep."""
    used: set[str] = set()
    paths: list[str] = []
    while len(paths) < notes:
        folder = new_folder(rng, used)
        paths += [folder] * rng.randint(50, 200)
    return paths[:notes]


def new_folder(rng: random.Random, used: set[str]) -> str:
    """A folder path not in `used` (and add it there)."""
    for attempt in range(1000):
        depth = rng.choices((1, 2, 3), weights=(1, 3, 4))[0]
        parts = [rng.choice(TOP_FOLDERS), rng.choice(MID_FOLDERS), rng.choice(LEAF_FOLDERS)]
        path = "/".join(parts[:depth])
        if attempt > 100:
            path = f"{path} {attempt}"
        if path not in used:
            used.add(path)
            return path
    raise RuntimeError("could not find a new folder name")


def slug(text: str) -> str:
    """A permalink-style slug: lower case, dashes."""
    return "-".join(text.lower().split())


def plan_notes(notes: int, rng: random.Random) -> list[Note]:
    """Folders, titles and permalinks of every note (links need all titles up front)."""
    titles = unique_titles(notes, rng)
    folders = folder_paths(notes, rng)
    return [Note(folder, title, f"{slug(folder)}/{slug(title)}" if rng.random() < 0.3 else None)
            for folder, title in zip(folders, titles, strict=True)]


def sentence_pool(rng: random.Random, size: int = 4000) -> list[str]:
    """Pre-made sentences: building notes from them keeps generation fast."""
    pool = []
    for _ in range(size):
        words = rng.choices(WORDS, k=rng.randint(6, 18))
        pool.append(" ".join(words).capitalize() + rng.choice((".", ".", ".", "?", "!")))
    return pool


def note_size(rng: random.Random) -> int:
    """A target size between 0.5 and 8 KB, log-uniform (many small notes, some large)."""
    return int(math.exp(rng.uniform(math.log(MIN_NOTE), math.log(MAX_NOTE))))


def paragraph(rng: random.Random, pool: list[str], titles: list[str]) -> str:
    """2-5 sentences, sometimes with an inline [[link]] to another note."""
    sentences = rng.sample(pool, rng.randint(2, 5))
    if rng.random() < 0.4:
        sentences.insert(rng.randrange(len(sentences) + 1), f"See [[{rng.choice(titles)}]].")
    return " ".join(sentences)


def observation(rng: random.Random, pool: list[str]) -> str:
    """`- [category] text #tag (context)`."""
    text = rng.choice(pool).rstrip(".?!")
    return f"- [{rng.choice(CATEGORIES)}] {text} #{rng.choice(WORDS)} ({rng.choice(WORDS)})"


def relation(rng: random.Random, titles: list[str]) -> str:
    """`- relates_to [[Other Note Title]]`."""
    return f"- {rng.choice(RELATIONS)} [[{rng.choice(titles)}]]"


def frontmatter(note: Note, rng: random.Random) -> list[str]:
    """YAML frontmatter lines, with a permalink when the note has one."""
    lines = ["---", f"title: {note.title}", f"type: {rng.choice(TYPES)}",
             f"tags: [{', '.join(rng.sample(WORDS[20:], rng.randint(1, 4)))}]"]
    if note.permalink:
        lines.append(f"permalink: {note.permalink}")
    return [*lines, "---", ""]


def note_text(note: Note, rng: random.Random, pool: list[str], titles: list[str]) -> str:
    """A whole note of roughly `note_size` bytes."""
    target = note_size(rng)
    head = [*frontmatter(note, rng), f"# {note.title}", ""]
    observations = ["## Observations", *(observation(rng, pool)
                                          for _ in range(rng.randint(1, 6))), ""]
    relations = ["## Relations", *(relation(rng, titles) for _ in range(rng.randint(1, 4)))]
    size = sum(len(line) + 1 for line in head + observations + relations)
    body = []
    while True:
        text = paragraph(rng, pool, titles)
        if body and size >= MIN_NOTE and size + len(text) + 2 > target:
            break
        body += [text, ""]
        size += len(text) + 2
    return "\n".join(head + body + observations + relations) + "\n"


def note_texts(notes: list[Note], rng: random.Random) -> Iterator[tuple[Note, str]]:
    """Each note with its text, one at a time (a 100k corpus is never held in memory)."""
    pool = sentence_pool(rng)
    titles = [note.title for note in notes]
    for note in notes:
        yield note, note_text(note, rng, pool, titles)


def write_notes(root: Path, notes: list[Note], rng: random.Random) -> int:
    """Write every note; return the bytes written."""
    made: set[str] = set()
    total = 0
    for note, text in note_texts(notes, rng):
        if note.folder not in made:
            os.makedirs(root / note.folder, exist_ok=True)
            made.add(note.folder)
        data = text.encode()
        with open(root / note.folder / f"{note.title}.md", "wb") as handle:
            handle.write(data)
        total += len(data)
    return total


def daily_note_text(day: datetime.date, rng: random.Random, pool: list[str],
                    titles: list[str]) -> str:
    """A daily note from the journal template: fixed keys, headings and prompts, 1-12 lines of
    body (focus items, tasks, notes, a journal paragraph), links to the days around it."""
    iso = day.isoformat()
    body_lines = int(math.exp(rng.uniform(0, math.log(12))))
    focus = [f"- {rng.choice(pool).rstrip('.?!')}" for _ in range(rng.randint(0, 2))]
    tasks = [f"- [{rng.choice(' x')}] {rng.choice(pool).rstrip('.?!')}"
             for _ in range(rng.randint(0, 3))]
    notes = [paragraph(rng, pool, titles) for _ in range(max(0, body_lines - len(focus)
                                                            - len(tasks) - 1))]
    journal = [rng.choice(pool)]
    previous, following = day - datetime.timedelta(days=1), day + datetime.timedelta(days=1)
    lines = ["---", f"title: {iso}", "type: daily", f"date: {iso}", "tags: [daily, journal]",
             "---", "", f"# {day.strftime('%A, %d %B %Y')}", "", "## Focus", *focus, "",
             "## Tasks", *tasks, "", "## Notes", *notes, "", "## Journal",
             "- Mood:", "- Energy:", *journal, "", "## Links",
             f"- previous [[{previous.isoformat()}]]", f"- next [[{following.isoformat()}]]"]
    return "\n".join(lines) + "\n"


def weekly_review_text(day: datetime.date, rng: random.Random, pool: list[str]) -> str:
    """A weekly review from its template: seven prompts, an answer of 0-2 lines under each."""
    year, week, _weekday = day.isocalendar()
    lines = ["---", f"title: {year}-W{week:02d}", "type: weekly-review",
             "tags: [review, weekly]", "---", "", f"# Week {week}, {year}", ""]
    for prompt in ("## Wins", "## Lessons", "## What drained energy", "## Next week",
                   "## Open loops", "## Gratitude", "## Score"):
        lines += [prompt, *(f"- {rng.choice(pool)}" for _ in range(rng.randint(0, 2))), ""]
    return "\n".join(lines) + "\n"


def daily_paths(days: int) -> list[tuple[datetime.date, str]]:
    """(day, relative path) of each daily note, and of a weekly review every Sunday."""
    paths = []
    for number in range(days):
        day = datetime.date(2024, 1, 1) + datetime.timedelta(days=number)
        paths.append((day, f"Journal/Daily/{day.year}/{day.isoformat()}.md"))
        if day.isoweekday() == 7:
            year, week, _weekday = day.isocalendar()
            paths.append((day, f"Journal/Weekly/{year}-W{week:02d}.md"))
    return paths


def daily_texts(days: int, seed: int, titles: list[str]) -> dict[str, str]:
    """Relative path -> text of `days` daily notes and their weekly reviews (deterministic)."""
    rng = random.Random(seed * 7919 + days)
    pool = sentence_pool(rng)
    return {path: (weekly_review_text(day, rng, pool) if "/Weekly/" in path
                   else daily_note_text(day, rng, pool, titles or [path]))
            for day, path in daily_paths(days)}


def write_daily(root: Path, days: int, seed: int, titles: list[str]) -> int:
    """Write the daily notes and weekly reviews; return the bytes written."""
    total = 0
    for relative, text in daily_texts(days, seed, titles).items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        data = text.encode()
        path.write_bytes(data)
        total += len(data)
    return total


def binary_sizes(count: int, total_mb: float, largest_mb: float,
                 rng: random.Random) -> list[int]:
    """`count` sizes summing to `total_mb`, the first being `largest_mb` and the largest."""
    if count <= 0:
        return []
    largest = int(largest_mb * MIB) or int(total_mb * MIB) // count
    rest = max(0, int(total_mb * MIB) - largest)
    weights = [rng.uniform(0.2, 1.0) for _ in range(count - 1)]
    others = [min(largest, int(rest * weight / sum(weights))) for weight in weights]
    return [largest, *others]


def write_binaries(root: Path, sizes: list[int], folders: list[str],
                   rng: random.Random) -> int:
    """Random-content .pdf/.png files (with the right magic bytes); return the bytes written."""
    total = 0
    for number, size in enumerate(sizes):
        pdf = number % 3 != 2
        magic = b"%PDF-1.7\n" if pdf else b"\x89PNG\r\n\x1a\n"
        name = f"Scan {number + 1:03d}.pdf" if pdf else f"Screenshot {number + 1:03d}.png"
        folder = root / ("Attachments" if number % 2 == 0 else rng.choice(folders))
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / name, "wb") as handle:
            handle.write(magic[:size])
            remaining = size - min(size, len(magic))
            while remaining > 0:
                chunk = min(remaining, MIB)
                handle.write(rng.randbytes(chunk))
                remaining -= chunk
        total += size
    return total


def write_ignored(root: Path, folders: list[str]) -> None:
    """The root `.gitignore` and a few files it ignores."""
    (root / ".gitignore").write_text(GITIGNORE)
    (root / ".obsidian").mkdir(exist_ok=True)
    (root / ".obsidian" / "workspace.json").write_text('{"main": {}}\n')
    (root / ".obsidian" / "app.json").write_text('{"vimMode": false}\n')
    (root / "scratch.tmp").write_text("ignored scratch file\n")
    for folder in sorted(set(folders))[:3]:
        (root / folder / "autosave.tmp").write_text("ignored autosave\n")


def git(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run one git command in `root` with a fixed identity, output captured."""
    identity = ["-c", "user.name=bench", "-c", "user.email=bench@example.invalid",
                "-c", "commit.gpgsign=false", "-c", "init.defaultBranch=main"]
    return subprocess.run(["git", *identity, "-C", str(root), *args], check=check,
                          capture_output=True, text=True)


def make_git_repository(root: Path) -> None:
    """Init, add and commit everything; leave git's own index refreshed and not racy.

    `.basic-memory/` (bm's own state) goes to `.git/info/exclude`, so `git status` never lists
    it. Files are older than the index by more than a second, so git has no racy entries.
    """
    git(root, "init", "-q")
    with open(root / ".git" / "info" / "exclude", "a") as handle:
        handle.write(".basic-memory/\n")
    time.sleep(1.1)
    git(root, "add", "-A")
    git(root, "commit", "-q", "--no-verify", "-m", "corpus")
    git(root, "update-index", "-q", "--refresh", check=False)
    git(root, "status", "--porcelain")


def generate(root: Path, notes: int, binaries: int = 0, binary_mb: float = 0,
             largest_mb: float = 0, seed: int = 1, git_repo: bool = False,
             daily: int = 0) -> dict:
    """Write the corpus into `root` (which must not exist or be empty); return a summary."""
    started = time.perf_counter()
    root.mkdir(parents=True, exist_ok=True)
    if any(root.iterdir()):
        raise SystemExit(f"{root} is not empty (delete it, or use --force)")
    rng = random.Random(seed)
    plan = plan_notes(notes, rng)
    notes_bytes = write_notes(root, plan, rng)
    daily_bytes = write_daily(root, daily, seed, [note.title for note in plan]) if daily else 0
    folders = sorted({note.folder for note in plan})
    sizes = binary_sizes(binaries, binary_mb, largest_mb, rng)
    binary_bytes = write_binaries(root, sizes, folders or ["Attachments"], rng)
    write_ignored(root, folders)
    written = time.perf_counter() - started
    if git_repo:
        make_git_repository(root)
    return {"root": str(root), "notes": notes, "folders": len(folders),
            "notes_mb": round(notes_bytes / MIB, 1), "daily": daily,
            "daily_mb": round(daily_bytes / MIB, 1), "binaries": len(sizes),
            "binary_mb": round(binary_bytes / MIB, 1), "seed": seed,
            "write_s": round(written, 2), "total_s": round(time.perf_counter() - started, 2),
            "git": git_repo}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="the folder to create")
    parser.add_argument("--notes", type=int, default=1000)
    parser.add_argument("--binaries", type=int, default=0, help="how many .pdf/.png files")
    parser.add_argument("--binary-mb", type=float, default=0, help="their total size in MB")
    parser.add_argument("--largest-mb", type=float, default=0, help="the largest one, in MB")
    parser.add_argument("--preset", choices=["tenant"], help="tenant: 2,590 notes + 31 "
                        "binaries totalling 80 MB, the largest 16 MB (overrides the above)")
    parser.add_argument("--daily", type=int, default=0,
                        help="add this many templated daily notes (and weekly reviews)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--git", action="store_true", help="make it a committed git repository")
    parser.add_argument("--force", action="store_true", help="delete OUT first if it exists")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    options = {"notes": args.notes, "binaries": args.binaries, "binary_mb": args.binary_mb,
               "largest_mb": args.largest_mb}
    if args.preset == "tenant":
        options = dict(TENANT)
    if args.force and args.out.exists():
        shutil.rmtree(args.out)
    summary = generate(args.out, seed=args.seed, git_repo=args.git, daily=args.daily,
                       **options)
    json.dump(summary, sys.stdout)
    print()


if __name__ == "__main__":
    main()
