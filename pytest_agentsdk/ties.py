"""trio's tie-breaks, pinned for sweeps.

trio runs the tasks woken since its last pass (a batch) one after another, and outside Hypothesis
it flips a coin per batch: wake order (oldest woken first) or against it. What a consumer pattern
shows under trio can hang on several of those flips together, which no order held for the whole
run gives. So a sweep runs the rows of a binary covering array of strength 3: for any 3 of the
first :data:`TIE_DECISIONS` batches, and any way of flipping those 3, one row flips them that way,
in :data:`COVERING_TIES` (19) runs instead of 2**16. That is the guarantee; a condition on more
flips is met only when a row happens to meet it. On 0.1.44, ``exception_escapes_run`` stopping
early shows ``unraisable`` in 1/16 of the combinations: 3 flips one way and an even number of
reversals among 3 more. At the ``instant`` timing one row has it, at ``checkpoints`` none does.

A pinned choice is a string, ``ties:`` then 0 or 1 per batch of two or more tasks: ``1`` runs
it in wake order, ``0`` against it (trio's own order when its coin does not reverse the batch); a
batch past the string runs against it.
"""

from __future__ import annotations

import itertools
import math
import random
import sys
from functools import cache

from .script import ScriptError

PREFIX = "ties:"
#: The batches a covering row decides; a batch past them runs against wake order. Bug 1's early
#: stops had up to 15 batches of two or more on 0.1.44 and 14 on 0.2.190 (a test holds every
#: release it runs on to this bound).
TIE_DECISIONS = 16
STRENGTH = 3


def _pairwise(columns: int) -> list[tuple[int, ...]]:
    """A binary covering array of strength 2 (Kleitman-Spencer): N rows where row 0 is all 0s and
    each column's rows 1..N-1 are a distinct ceil(N/2)-subset; any two such subsets meet and
    neither holds the other, so every pair of columns shows 00, 01, 10 and 11."""
    rows = 2
    while math.comb(rows - 1, (rows + 1) // 2) < columns:
        rows += 1
    subsets = list(itertools.islice(itertools.combinations(range(1, rows), (rows + 1) // 2), columns))
    return [tuple(int(r in s) for s in subsets) for r in range(rows)]


@cache
def covering(columns: int) -> tuple[tuple[int, ...], ...]:
    """A binary covering array of strength 3 on ``columns`` columns, by Roux's doubling: A, a
    strength-3 array on half the columns, side by side with itself, over B, a strength-2 one, beside
    its complement. Three columns from one half are A's; a column and its twin with a third take all
    four pairs from A (equal twins) and from B (opposite twins)."""
    if columns <= STRENGTH:
        return tuple(itertools.product((0, 1), repeat=columns))
    half = (columns + 1) // 2
    doubled = [a + a for a in covering(half)] + [b + tuple(1 - v for v in b) for b in _pairwise(half)]
    return tuple(dict.fromkeys(row[:columns] for row in doubled))


#: The pinned tie-breaks a sweep runs: every way of flipping any 3 of the first TIE_DECISIONS batches.
COVERING_TIES = tuple(PREFIX + "".join(map(str, row)) for row in covering(TIE_DECISIONS))


def checked(where: str, schedule: str) -> str:
    """``schedule`` when it is ``ties:`` then 0s and 1s; else ScriptError saying what to give."""
    flips = schedule.removeprefix(PREFIX)
    if not schedule.startswith(PREFIX) or set(flips) - {"0", "1"}:
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

    def random(self) -> float:
        batch = sys._getframe(1).f_locals.get("batch")
        if not isinstance(batch, list):  # not the scheduler's coin
            return super().random()
        if len(batch) < 2:
            return 1.0
        flip = self.flips[self.decided] if self.decided < len(self.flips) else "0"
        self.decided += 1
        return 0.0 if flip == "1" else 1.0
