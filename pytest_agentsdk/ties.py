"""trio's tie-breaks, pinned for sweeps.

trio runs the tasks woken since its last pass (a batch) one after another, and outside Hypothesis
it flips a coin per batch: wake order (oldest woken first) or against it. What a consumer pattern
shows under trio can hang on several of those flips together, which no order held for the whole
run gives. So a sweep runs the rows of a binary covering array of strength 3: for any 3 of the
first :data:`TIE_DECISIONS` batches, and any way of flipping those 3, one row flips them that way,
in :data:`COVERING_TIES` (19) runs instead of 2**16. A run that breaks m ties covers every row
that agrees with its m flips (that row would run the same), so a row whose every way of flipping
3 ties earlier runs covered adds nothing and is not run (:class:`TieCover`): most early stops
break at most 11 ties, and the first 12 rows cover those.

That is the guarantee; a condition on more flips is met only when a run happens to meet it. On
0.1.44, ``exception_escapes_run`` stopping early shows ``unraisable`` in 1/16 of the
combinations: 3 flips one way and an even number of reversals among 3 more.

A pinned choice is a string, ``ties:`` then 0 or 1 per batch of two or more tasks: ``1`` runs
it in wake order, ``0`` against it (trio's own order when its coin does not reverse the batch); a
batch past the string runs against it.
"""

from __future__ import annotations

import itertools
import json
import math
import random
import re
import sys
from collections.abc import Mapping
from typing import Any

from .script import ScriptError

PREFIX = "ties:"
_PINNED = re.compile(re.escape(PREFIX) + "[01]*")
#: The flip of a batch past the string: against wake order, trio's order when its coin says so.
_PAST_THE_STRING = "0"
#: The batches a covering row decides; a batch past them runs against wake order. Bug 1's early
#: stops had up to 15 batches of two or more on 0.1.44 and 14 on 0.2.190 (a test holds every
#: release it runs on to this bound).
TIE_DECISIONS = 16
STRENGTH = 3
#: Paley's prime: its 12 rows cover any 3 of the first 11 ties, the rest are twins of its first 5.
_PALEY = 11


def _pairwise(columns: int) -> list[tuple[int, ...]]:
    """A binary covering array of strength 2 (Kleitman-Spencer): N rows where row 0 is all 0s and
    each column's rows 1..N-1 are a distinct ceil(N/2)-subset; any two such subsets meet and
    neither holds the other, so every pair of columns shows 00, 01, 10 and 11."""
    rows = 2
    while math.comb(rows - 1, (rows + 1) // 2) < columns:
        rows += 1
    subsets = list(itertools.islice(itertools.combinations(range(1, rows), (rows + 1) // 2), columns))
    return [tuple(int(r in s) for s in subsets) for r in range(rows)]


def _covering_rows() -> list[tuple[int, ...]]:
    """19 rows of 16 flips, any 3 of them every way; the first 12 do it for the first 11 flips.

    Top, Paley's array: the zero row and the 11 rotations of the squares mod 11 (0 with them), a
    strength-3 array of 12 rows on 11 columns; columns 12 to 16 repeat its first 5. Three columns
    that hold no column with its twin are 3 of Paley's. A column, its twin and a third need the
    twins equal (Paley's rows, any pair with the third) and opposite: the bottom, a strength-2
    array on the 11 beside its first 5 complemented."""
    squares = {x * x % _PALEY for x in range(_PALEY)}
    twins = TIE_DECISIONS - _PALEY
    paley = [(0,) * _PALEY] + [tuple(int((c - r) % _PALEY in squares) for c in range(_PALEY)) for r in range(_PALEY)]
    return [row + row[:twins] for row in paley] + [row + tuple(1 - v for v in row[:twins]) for row in _pairwise(_PALEY)]


#: The pinned tie-breaks a sweep runs: every way of flipping any 3 of the first TIE_DECISIONS batches.
COVERING_TIES = tuple(PREFIX + "".join(map(str, row)) for row in _covering_rows())

#: Every (3 ties, 3 flips) item is a bit: 8 per triple of tie positions, the flips read as binary.
_TRIPLES = list(itertools.combinations(range(TIE_DECISIONS), STRENGTH))
_EVERY = (1 << (8 * len(_TRIPLES))) - 1


def _allowing(position: int, flip: int) -> int:
    """The items a run flipping ``position`` this way leaves possible: those whose triple holds
    ``position`` flipped so, and every item of the triples without it."""
    flipped = [sum(1 << v for v in range(8) if (v >> (STRENGTH - 1 - at)) & 1 == flip) for at in range(STRENGTH)]
    return int.from_bytes(bytes(flipped[triple.index(position)] if position in triple else 0xFF for triple in _TRIPLES), "little")


_ALLOWING = [(_allowing(p, 0), _allowing(p, 1)) for p in range(TIE_DECISIONS)]


def _covered_by(flips: str) -> int:
    """What a run that broke its ties ``flips`` covers: the items of every row starting so."""
    items = _EVERY
    for position, flip in enumerate(flips[:TIE_DECISIONS]):
        items &= _ALLOWING[position][flip == "1"]
    return items


class TieCover:
    """Which ways of flipping 3 of the first TIE_DECISIONS ties the runs of one example shape have
    covered. A row is worth running only while one of its own is not covered; once none is left,
    the runs so far run as a strength-3 covering array would."""

    def __init__(self) -> None:
        self.covered = 0

    def adds(self, schedule: str) -> bool:
        """Whether a run of ``schedule`` (``ties:...``) could flip 3 ties a way no run has yet."""
        flips = schedule.removeprefix(PREFIX).ljust(TIE_DECISIONS, _PAST_THE_STRING)
        return bool(_covered_by(flips) & ~self.covered)

    def add(self, used: str | None) -> None:
        """A run that flipped its ties ``used`` (:attr:`PinnedTies.used`) and then broke no more;
        None (a run that could not say) covers nothing."""
        if used is not None:
            self.covered |= _covered_by(used)

    @property
    def complete(self) -> bool:
        return self.covered == _EVERY


class TieCovers:
    """One :class:`TieCover` per example shape (the example but its ``schedule``), for a sweep
    whose examples differ only in their pinned tie-breaks."""

    def __init__(self) -> None:
        self._by_shape: dict[str, TieCover] = {}

    def of(self, example: Any) -> TieCover | None:
        """The cover of ``example``'s shape; None for an example not pinned to tie-breaks, or
        pinned to a bad string (it runs, and says what is wrong)."""
        schedule = example.get("schedule") if isinstance(example, Mapping) else None
        if not isinstance(schedule, str) or not _PINNED.fullmatch(schedule):
            return None
        shape = json.dumps({k: v for k, v in example.items() if k != "schedule"}, sort_keys=True, default=str)
        return self._by_shape.setdefault(shape, TieCover())


def checked(where: str, schedule: str) -> str:
    """``schedule`` when it is ``ties:`` then 0s and 1s; else ScriptError saying what to give."""
    if not _PINNED.fullmatch(schedule):
        raise ScriptError(f"{where}: {schedule!r} is neither a seed nor trio tie-breaks; give a whole number, "
                          f"or {PREFIX!r} then 0 or 1 per batch of woken tasks (e.g. '{PREFIX}0110')")
    return schedule


class PinnedTies(random.Random):
    """trio's scheduler RNG with its coin pinned: trio asks ``random() < 0.5`` once per batch,
    to run it reversed (in wake order, since it runs the batch from the end). A batch of one has
    no order and takes no flip; anything else trio draws (its clock's offset) comes from seed 0."""

    def __init__(self, schedule: str) -> None:
        super().__init__(0)
        self.flips = checked("schedule", schedule).removeprefix(PREFIX)
        self.decided = 0

    @property
    def used(self) -> str:
        """The flips the run has used so far (a batch past the string took ``0``)."""
        return self.flips[:self.decided].ljust(self.decided, _PAST_THE_STRING)

    def random(self) -> float:
        batch = sys._getframe(1).f_locals.get("batch")
        if not isinstance(batch, list):  # not the scheduler's coin
            return super().random()
        if len(batch) < 2:
            return 1.0
        flip = self.flips[self.decided] if self.decided < len(self.flips) else _PAST_THE_STRING
        self.decided += 1
        return 0.0 if flip == "1" else 1.0
