"""Relations written already resolved during a first sync, when their target is already known.

A first sync inserts every relation unresolved and its end resolves them by rule
(`db.writes.resolve_relations`: by permalink, else title, else path, else path without `.md`
or `.markdown`; among notes matching by the same rule, the first by path). On PostgreSQL that
rewrote each of a tenant's 13,796 relations once more (a new row version, four index entries,
a foreign-key check): a quarter of the server's work for the sync. Most links name a note of
an earlier batch, or of the same one, whose names are known by then.

`KnownTargets` remembers, for every name a note written by this sync answers to, the best rule
it matched by and the note; a relation naming it is inserted pointing at that note. A note
with a link to a name not known yet (a note of a later batch, or none) has its relations held
back (`hold`, at most `HELD_MAX` rows) and inserted at the end of the sync (`take_held`), when
every name is known: a link forward is written once, resolved, instead of inserted and then
updated. A guess is what the rules give as long as no later note matches the name by a better
rule or by the same one (then the first by path decides, in the database's collation, which
Python does not judge): such a name is marked doubtful, is never guessed again, and
`BatchWriter.settle_permalinks` unresolves its relations before the end-of-sync resolution
runs, which resolves them, and every relation not guessed, by the rules themselves. So the
final rows are the rules' result whatever was guessed (tests/test_firstsync.py compares them
with the general path's, on both databases and in an en-US collation).

Only adds into a project that had no entity are guessed for (`BatchWriter.fresh` and a batch
of adds): every name of the project then comes from this sync's own writes, which all pass
here. Anything else in such a sync (never seen in practice) switches guessing off, inserts the
held relations unresolved and unresolves every guessed relation at the end. Memory: the map
holds at most `NAMES_MAX` names (~150 bytes each: ~30 MB at most, ~1.5 MB for a tenant's
2,621 files); past that, new names are not guessed for, while names already held are kept
exact. Held relations are ~400 bytes a row, at most `HELD_MAX` (~10 MB); past that, relations
are inserted at once, resolved as far as known.
"""

from __future__ import annotations

from typing import Any

from bm_sync.hashing import MARKDOWN_SUFFIXES

# The rules, best first, as `resolve_relations` applies them.
PERMALINK, TITLE, PATH = 0, 1, 2
RULES = 3 + len(MARKDOWN_SUFFIXES)  # then the path without each markdown suffix
NAMES_MAX = 200_000
HELD_MAX = 25_000

RelationRows = dict[int, list[dict[str, Any]]]  # entity id -> its relations' rows


class KnownTargets:
    """name -> the note a relation naming it resolves to, for the notes this sync wrote."""

    def __init__(self) -> None:
        # name -> entity id * RULES + rule, or -(rule + 1) once two notes match by that rule.
        self._best: dict[str, int] = {}
        # Names whose relations may have been guessed wrong: unresolved before the resolution.
        self.doubtful: set[str] = set()
        self.guessed = False  # whether any relation was inserted resolved
        self.off = False  # a write other than an add: no more guesses, undo all at the end
        self._undo: list[tuple[str, int | None]] = []  # this transaction's changes to _best
        self._held: list[tuple[int, list[dict[str, Any]]]] = []  # in the order written
        self._held_rows = 0

    def wrote(self, entity_id: int, path: str, title: str | None,
              permalink: str | None) -> None:
        """A note (or file) at `path` with this id, title and permalink was written."""
        seen: set[str] = set()
        for name, rule in _names(path, title, permalink):
            if name in seen:  # the same note under a worse rule
                continue
            seen.add(name)
            current = self._best.get(name)
            if current is None:
                if len(self._best) < NAMES_MAX:
                    self._set(name, entity_id * RULES + rule, None)
                continue
            best_rule = current % RULES if current >= 0 else -current - 1
            if rule < best_rule:
                self._set(name, entity_id * RULES + rule, current)
                self.doubtful.add(name)
            elif rule == best_rule and current >= 0:
                self._set(name, -(rule + 1), current)
                self.doubtful.add(name)

    def guess(self, name: str) -> int | None:
        """The id of the note a relation naming `name` resolves to, if known for sure now."""
        found = self._known(name)
        if found is None:
            return None
        self.guessed = True
        return found

    def _known(self, name: str) -> int | None:
        if self.off or "\0" in name or name in self.doubtful:  # NUL: U+FFFD on PostgreSQL
            return None
        found = self._best.get(name)
        return None if found is None or found < 0 else found // RULES

    def hold(self, relations: RelationRows) -> RelationRows:
        """Keep back the relations of the notes that link to a name not known yet (up to
        `HELD_MAX` rows); return the others, to insert now."""
        now: RelationRows = {}
        for entity_id, rows in relations.items():
            if (self.off or self._held_rows + len(rows) > HELD_MAX
                    or all(self._known(row["to_name"]) is not None for row in rows)):
                now[entity_id] = rows
            else:
                self._held.append((entity_id, rows))
                self._held_rows += len(rows)
        return now

    def held(self) -> RelationRows:
        """The relations held back, in the order their notes were written."""
        return dict(self._held)

    def take_held(self) -> RelationRows:
        """The relations held back; none held after."""
        held = self.held()
        self._held, self._held_rows = [], 0
        return held

    def checkpoint(self) -> tuple[int, int]:
        return len(self._undo), len(self._held)

    def roll_back(self, mark: tuple[int, int]) -> None:
        """Forget what the writes since `mark` added (their transaction was rolled back)."""
        undo, held = mark
        while len(self._undo) > undo:
            name, previous = self._undo.pop()
            if previous is None:
                del self._best[name]
            else:
                self._best[name] = previous
        while len(self._held) > held:
            self._held_rows -= len(self._held.pop()[1])

    def committed(self) -> None:
        """The transaction committed; guessing off, it inserted every held relation."""
        self._undo.clear()
        if self.off:
            self._held, self._held_rows = [], 0

    def forget(self) -> None:
        """Release the map (the end of the sync)."""
        self._best.clear()
        self._undo.clear()

    def _set(self, name: str, value: int, previous: int | None) -> None:
        self._undo.append((name, previous))
        self._best[name] = value


def _names(path: str, title: str | None,
           permalink: str | None) -> list[tuple[str, int]]:
    """Every name a relation may use for this note, with the rule that matches it."""
    names = [(path, PATH)]
    if permalink:
        names.append((permalink, PERMALINK))
    if title:
        names.append((title, TITLE))
    for rule, suffix in enumerate(MARKDOWN_SUFFIXES, PATH + 1):
        text = suffix.decode()
        if path.endswith(text):
            names.append((path[:-len(text)], rule))
    names.sort(key=lambda item: item[1])
    return names
