"""trio's tie-breaks, pinned for sweeps.

trio runs the tasks woken since its last pass (a batch) one after another, and outside Hypothesis
it flips a coin per batch: wake order (oldest woken first) or against it. What a consumer pattern
shows under trio can hang on several of those flips together, which no order held for the whole
run gives. So a sweep runs the rows of a binary covering array of strength 3: for any 3 of the
first :data:`TIE_DECISIONS` batches, and any way of flipping those 3, one row flips them that way,
in :data:`COVERING_TIES` (20) runs instead of 2**16.

A run that used m flips and then broke no more ties runs exactly as every row starting with those
m flips would, so such a row is not run again (:class:`TieRuns`): every row either runs or would
have run as one that did, on every release alike, and two subjects are judged on the same rows.
Most early stops break at most 11 ties; the array's last 8 rows repeat top rows in their first 11
flips, so there at most 12 runs stand for all 20.

That is the guarantee; a condition on more flips is met only when a row happens to meet it, and
then on every release that behaves alike. On 0.1.44, ``exception_escapes_run`` stopping early
shows ``unraisable`` in 1/16 of the combinations: 3 flips one way and an even number of reversals
among 3 more.

A pinned choice is a string, ``ties:`` then 0 or 1 per batch of two or more tasks: ``1`` runs
it in wake order, ``0`` against it (trio's own order when its coin does not reverse the batch); a
batch past the string runs against it.
"""

from __future__ import annotations

import json
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
#: How many of Paley's rows sit below it with their twins complemented.
_TWINS_APART = 8


def _covering_rows() -> list[tuple[int, ...]]:
    """20 rows of 16 flips, any 3 of them every way; the first 12 do it for the first 11 flips.

    Top, Paley's array: the zero row and the 11 rotations of the squares mod 11 (0 with them), a
    strength-3 array of 12 rows on 11 columns; columns 12 to 16 repeat its first 5. Three columns
    that hold no column with its twin are 3 of Paley's. A column, its twin and a third need the
    twins equal (Paley's rows, any pair with the third) and opposite: the bottom, Paley's last 8
    rows with the twins complemented, which show each of the first 5 columns both ways against
    both values of every other column (no 7 of Paley's rows do). In their first 11 flips the bottom
    rows repeat top ones, so a run that breaks at most 11 ties stands for its bottom twin too."""
    squares = {x * x % _PALEY for x in range(_PALEY)}
    twins = TIE_DECISIONS - _PALEY
    paley = [(0,) * _PALEY] + [tuple(int((c - r) % _PALEY in squares) for c in range(_PALEY)) for r in range(_PALEY)]
    return [row + row[:twins] for row in paley] + [row + tuple(1 - v for v in row[:twins]) for row in paley[-_TWINS_APART:]]


#: The pinned tie-breaks a sweep runs: every way of flipping any 3 of the first TIE_DECISIONS batches.
COVERING_TIES = tuple(PREFIX + "".join(map(str, row)) for row in _covering_rows())


class TieRuns:
    """The flips the runs of one example shape used. A run that used flips ``u`` and then broke
    no more ties runs exactly as a row starting with ``u`` would: that row repeats it."""

    def __init__(self) -> None:
        self._used: list[str] = []

    def repeats(self, schedule: str) -> bool:
        """Whether a run of ``schedule`` (``ties:...``) would run exactly as an earlier one did."""
        flips = schedule.removeprefix(PREFIX)
        return any(flips.ljust(len(used), _PAST_THE_STRING).startswith(used) for used in self._used)

    def add(self, used: str | None) -> None:
        """A run that flipped its ties ``used`` (:attr:`PinnedTies.used`); None (a run that could
        not say) stands for no other row."""
        if used is not None:
            self._used.append(used)


class RunsByShape:
    """One :class:`TieRuns` per example shape (the example but its ``schedule``), for a sweep
    whose examples differ only in their pinned tie-breaks."""

    def __init__(self) -> None:
        self._by_shape: dict[str, TieRuns] = {}

    def of(self, example: Any) -> TieRuns | None:
        """The runs of ``example``'s shape; None for an example not pinned to tie-breaks, or
        pinned to a bad string (it runs, and says what is wrong)."""
        schedule = example.get("schedule") if isinstance(example, Mapping) else None
        if not isinstance(schedule, str) or not _PINNED.fullmatch(schedule):
            return None
        shape = json.dumps({k: v for k, v in example.items() if k != "schedule"}, sort_keys=True, default=str)
        return self._by_shape.setdefault(shape, TieRuns())


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
