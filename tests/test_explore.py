"""explore.judge's search: what every judgement of one strategy generates is drawn once, and a
judgement that reuses the drawing runs, counts and finds exactly what a search of its own would."""

from __future__ import annotations

import itertools
import random
import subprocess
import sys
from typing import Any

import pytest
from hypothesis import find
from hypothesis import strategies as st

from pytest_agentsdk import explore, ties
from pytest_agentsdk.explore import Outcome, Scenario, Sweep
from pytest_agentsdk.script import ScriptError

NUMBERS = st.lists(st.integers(0, 1000), min_size=1, max_size=4)


class Threshold(Scenario):
    """Shows ``big`` when a number passes ``limit``; counts every run."""

    name = "threshold"

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.ran: list[Any] = []

    def examples(self, model: str | None) -> st.SearchStrategy[Any]:
        return NUMBERS

    def sweep(self, model: str | None, backend: str) -> Sweep:
        return Sweep([[0]], "one quiet example")

    def run_example(self, example: Any, backend: str, model: str | None) -> Outcome:
        self.ran.append(example)
        return Outcome(["big"] if max(example) > self.limit else [])


def search_of_its_own(limit: int, seed: int, budget: int) -> tuple[Any, int]:
    """What judge's search was before drawings were shared: one Hypothesis find (as judge runs it)."""
    calls = []

    def condition(example: Any) -> bool:
        calls.append(example)
        return max(example) > limit

    found = explore._search(NUMBERS, condition, seed, budget)
    return found, len(calls)


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_a_search_that_finds_runs_and_shrinks_as_a_search_of_its_own(seed: int) -> None:
    scenario = Threshold(limit=700)
    result = explore.judge(scenario, "asyncio", None, seed, 50)
    found, calls = search_of_its_own(700, seed, 50)
    assert result.verdict == "reproduced" and result.manifestations == ["big"]
    assert result.counterexample == found
    assert result.examples == 1 + calls == len(scenario.ran)  # the drawn prefix ran once, not again while shrinking


def test_a_search_that_finds_nothing_runs_the_drawing_once_per_judgement() -> None:
    scenario = Threshold(limit=1000)
    first = explore.judge(scenario, "asyncio", None, 3, 20)
    second = explore.judge(scenario, "trio", None, 3, 20)
    generated = explore.drawn(NUMBERS, 3, 20)
    assert first.verdict == second.verdict == "fixed"
    assert first.examples == second.examples == 1 + len(generated)
    assert scenario.ran == [[0], *generated, [0], *generated]


def test_the_drawing_is_made_once_per_strategy_seed_and_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    finds = []
    real_find = explore.find

    def counting_find(*args: Any, **kwargs: Any) -> Any:
        finds.append(args[0])
        return real_find(*args, **kwargs)

    monkeypatch.setattr(explore, "find", counting_find)
    strategy = st.integers(0, 10**6)
    assert explore.drawn(strategy, 5, 10) is explore.drawn(strategy, 5, 10)
    assert explore.drawn(strategy, 6, 10) != explore.drawn(strategy, 5, 10)
    assert len(finds) == 2


def test_a_drawing_the_search_does_not_repeat_still_runs_everything_it_generates(monkeypatch: pytest.MonkeyPatch) -> None:
    """Should Hypothesis ever generate something else than the drawing, the search runs what it
    generates from there on: the union is still over everything that ran."""
    scenario = Threshold(limit=900)
    monkeypatch.setitem(explore._DRAWN, (id(NUMBERS), 11, 30), (NUMBERS, [[999]]))
    result = explore.judge(scenario, "asyncio", None, 11, 30)
    found, calls = search_of_its_own(900, 11, 30)
    assert result.manifestations == ["big"]
    assert result.counterexample == found
    assert scenario.ran[:2] == [[0], [999]]
    assert len(scenario.ran) == 2 + calls  # nothing of the real search was taken for already run


def test_a_stored_drawing_is_what_drawing_gives_and_is_read_not_drawn_again(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """``check --drawings``: the first check of a run writes its drawing, the others read it."""
    strategy = st.lists(st.integers(0, 99), max_size=3)
    store = tmp_path / "numbers.pickle"
    written = explore.drawn(strategy, 4, 15, store)
    assert store.is_file()
    monkeypatch.setattr(explore, "_DRAWN", {})  # another process of the run
    monkeypatch.setattr(explore, "find", lambda *a, **k: pytest.fail("drew again instead of reading the stored drawing"))
    assert explore.drawn(strategy, 4, 15, store) == written


def test_an_unreadable_stored_drawing_is_drawn_again_and_replaced(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    strategy = st.integers(0, 10**6)
    expected = explore.drawn(strategy, 9, 10)
    monkeypatch.setattr(explore, "_DRAWN", {})
    store = tmp_path / "half.pickle"
    store.write_bytes(b"\x80\x09")  # a pickle protocol that does not exist: ValueError, not UnpicklingError
    assert explore.drawn(strategy, 9, 10, store) == expected
    monkeypatch.setattr(explore, "_DRAWN", {})
    monkeypatch.setattr(explore, "find", lambda *a, **k: pytest.fail("the stored drawing was not replaced"))
    assert explore.drawn(strategy, 9, 10, store) == expected


class Dice(Threshold):
    """Shows ``big`` when the example plus a roll of the global ``random`` passes ``limit``."""

    def run_example(self, example: Any, backend: str, model: str | None) -> Outcome:
        self.ran.append(example)
        return Outcome(["big"] if max(example) + random.randint(0, 500) > self.limit else [])


def test_an_example_that_draws_from_the_global_random_shows_the_same_wherever_it_runs() -> None:
    """Each example runs with ``random`` seeded as Hypothesis seeds it, so a drawn example run
    outside Hypothesis's find shows what it shows inside one, whatever ran before it."""
    random.seed(12345)
    scenario = Dice(limit=1200)
    result = explore.judge(scenario, "asyncio", None, 2, 40)
    calls = []

    def condition(example: Any) -> bool:
        calls.append(example)
        return max(example) + random.randint(0, 500) > 1200

    found = explore._search(NUMBERS, condition, 2, 40)
    assert result.counterexample == found
    assert result.examples == 1 + len(calls)


def test_a_store_that_cannot_be_written_only_means_drawing_again(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    strategy = st.integers(0, 10**6)
    expected = explore.drawn(strategy, 21, 10)
    monkeypatch.setattr(explore, "_DRAWN", {})
    (tmp_path / "a-file").write_text("")  # where the store's directory should be
    assert explore.drawn(strategy, 21, 10, tmp_path / "a-file" / "x.pickle") == expected


def test_a_drawing_is_the_same_whatever_local_modules_hold(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Hypothesis draws integer literals of the modules it deems local (a checkout's own source,
    not an installed package's); the search does not, so installing the harness or adding a
    literal to it does not change what a seed draws."""
    strategy = st.lists(st.integers(0, 10**6), min_size=5, max_size=5)
    monkeypatch.setattr(explore, "_DRAWN", {})
    before = explore.drawn(strategy, 5, 300)
    (tmp_path / "literals_here.py").write_text("VALUES = [" + ", ".join(str(424200 + i) for i in range(50)) + "]\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    __import__("literals_here")
    monkeypatch.setattr(explore, "_DRAWN", {})
    assert explore.drawn(strategy, 5, 300) == before
    plain: list[Any] = []
    with pytest.raises(Exception):
        find(strategy, lambda ex: plain.append(ex) or False, settings=explore._search_settings(300), random=random.Random(5))
    assert any(424200 <= n < 424250 for ex in plain for n in ex)  # what the test guards against: a plain find draws them


class Stories(Scenario):
    """Three stories, the whole example space; ``broken`` ones raise an example error, ``shown``
    ones show ``lie``."""

    name = "stories"
    example_errors = (LookupError,)

    def __init__(self, shown: set[str], broken: set[str]) -> None:
        self.shown, self.broken = shown, broken

    def examples(self, model: str | None) -> st.SearchStrategy[Any]:
        return st.sampled_from(["a", "b", "c"])

    def sweep(self, model: str | None, backend: str) -> Sweep:
        return Sweep(["a", "b", "c"], "3 stories", exhaustive=True)

    def run_example(self, example: Any, backend: str, model: str | None) -> Outcome:
        if example in self.broken:
            raise LookupError(f"story {example}: the CLI asked for a reply nothing queued")
        return Outcome(["lie"] if example in self.shown else [])


def test_an_example_that_cannot_run_leaves_what_the_others_showed_standing() -> None:
    """A real-CLI story that errs used to end the whole row with nothing in it; the stories that
    ran still count, and the verdict names the one that could not."""
    result = explore.judge(Stories(shown={"a"}, broken={"b"}), "asyncio", None, seed=0, max_examples=5)
    assert (result.verdict, result.manifestations, result.examples) == ("reproduced", ["lie"], 3)
    assert result.evidence["could_not_run"] == [{"example": "b", "error": "story b: the CLI asked for a reply nothing queued"}]
    assert "1 of them could not run" in (result.coverage or "")


def test_an_example_that_cannot_run_before_the_one_that_shows_is_no_counterexample() -> None:
    result = explore.judge(Stories(shown={"b"}, broken={"a"}), "asyncio", None, seed=0, max_examples=5)
    assert (result.verdict, result.counterexample) == ("reproduced", "b")
    assert [entry["example"] for entry in result.evidence["could_not_run"]] == ["a"]


def test_nothing_is_fixed_on_examples_that_never_ran() -> None:
    result = explore.judge(Stories(shown=set(), broken={"c"}), "asyncio", None, seed=0, max_examples=5)
    assert result.verdict == "error"
    assert result.reason == "1 of 3 examples could not run and the rest showed nothing; first: story c: the CLI asked for a reply nothing queued"
    assert not (result.coverage or "").startswith("not reproduced")


def test_only_warnings_are_not_claimed_on_examples_that_never_ran() -> None:
    scenario = Stories(shown={"a"}, broken={"b"})
    scenario.quiet = frozenset({"lie"})
    result = explore.judge(scenario, "asyncio", None, seed=0, max_examples=5)
    assert (result.verdict, result.manifestations) == ("error", ["lie"])
    assert result.reason is not None and "could not run and the rest showed only warnings" in result.reason


def test_any_other_exception_is_still_the_harness_s_error() -> None:
    scenario = Stories(shown=set(), broken={"a"})
    scenario.example_errors = ()
    with pytest.raises(LookupError):
        explore.judge(scenario, "asyncio", None, seed=0, max_examples=5)


# ---------------------------------------------------------------- trio's tie-breaks, pinned
def _trio_scheduler_state() -> tuple[Any, bool]:
    """trio's scheduler RNG and whether it shuffles (its deterministic mode)."""
    trio_run = pytest.importorskip("trio._core._run")
    return trio_run._r, trio_run._ALLOW_DETERMINISTIC_SCHEDULING


def _first_steps(schedule: int | str) -> list[str]:
    """The order in which three tasks spawned a, b, c take their first step on trio."""
    with explore.seeded_trio_scheduler(schedule):
        return _first_steps_in_loop()


def _first_steps_in_loop() -> list[str]:
    """:func:`_first_steps` under whatever scheduler trio has now."""
    trio = pytest.importorskip("trio")
    steps: list[str] = []

    async def step(name: str) -> None:
        steps.append(name)

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            for name in "abc":
                nursery.start_soon(step, name)

    trio.run(main)
    return steps


@pytest.mark.parametrize(("schedule", "steps"), [
    ("ties:", "cba"), ("ties:00", "cba"), ("ties:01", "abc"), ("ties:11", "abc"), ("ties:010", "abc"),
])
def test_pinned_ties_run_each_batch_in_wake_order_or_against_it(schedule: str, steps: str) -> None:
    """The second batch of two or more is a, b, c, woken in that order (the first is trio's own
    start-up): ``1`` runs it in wake order, ``0`` or nothing against it."""
    before = _trio_scheduler_state()
    assert ["".join(_first_steps(schedule)) for _ in range(3)] == [steps] * 3
    assert _trio_scheduler_state() == before, "trio's own RNG and mode are given back"


def test_seeded_trio_schedules_draw_orders_trio_s_coin_never_makes() -> None:
    """The seeds are what the search draws: a shuffle per batch (Hypothesis's mode of trio), so
    also orders that are neither wake order nor its reverse."""
    seeded = {"".join(_first_steps(seed)) for seed in range(16)}
    assert seeded - {"abc", "cba"}, seeded


@pytest.mark.parametrize("schedule", ["ties:012", "oldest_first", "ties 01", ""])
def test_a_bad_tie_pinning_says_what_to_give(schedule: str) -> None:
    with pytest.raises(ScriptError, match="then 0 or 1 per batch of woken tasks"):
        _first_steps(schedule)


#: The covering rows as flips alone.
ROWS = [t.removeprefix(ties.PREFIX) for t in ties.COVERING_TIES]


def _flip_triples(rows: list[str], columns: int) -> set[tuple[tuple[int, ...], str]]:
    """Every (3 columns, their flips) the rows show within the first ``columns``."""
    return {(chosen, "".join(row[c] for c in chosen)) for row in rows for chosen in itertools.combinations(range(columns), 3)}


def _every_way(columns: int) -> set[tuple[tuple[int, ...], str]]:
    """Every (3 of the first ``columns`` columns, flips of them) there is."""
    return {(chosen, "".join(flips)) for chosen in itertools.combinations(range(columns), 3) for flips in itertools.product("01", repeat=3)}


def test_the_covering_rows_break_any_three_ties_every_way() -> None:
    assert _flip_triples(ROWS, ties.TIE_DECISIONS) == _every_way(ties.TIE_DECISIONS)


def test_the_first_twelve_rows_break_any_three_of_eleven_ties_every_way() -> None:
    """Why most early stops need 12 runs, not 20: they break at most 11 ties, and the last 8 rows
    repeat top rows in their first 11 flips (so they would run as those did)."""
    assert _flip_triples(ROWS[:12], 11) == _every_way(11)
    assert _flip_triples(ROWS[:11], 11) != _every_way(11)
    assert {row[:11] for row in ROWS[12:]} <= {row[:11] for row in ROWS[:12]}


def test_the_sweep_s_ties_are_few() -> None:
    """Paley's 12 rows and 8 more for 16 ties (2**16 combinations)."""
    assert len(ties.COVERING_TIES) == len(set(ties.COVERING_TIES)) == 20
    assert {len(t) for t in ties.COVERING_TIES} == {len(ties.PREFIX) + ties.TIE_DECISIONS}


@pytest.mark.parametrize(("used", "repeated", "new"), [
    ("0110", ["ties:0110", "ties:01101", "ties:011", "ties:0110" + "1" * 20], ["ties:0111", "ties:01", "ties:1110"]),
    ("", ["ties:", "ties:1", "ties:0110"], []),
    ("0110000", ["ties:011", "ties:0110000", "ties:01100001"], ["ties:0110001", "ties:0110100"]),
])
def test_a_row_that_starts_with_the_flips_a_run_used_repeats_it(used: str, repeated: list[str], new: list[str]) -> None:
    """A run that broke its ties ``used`` and no more runs as every row starting so would (a row
    shorter than that takes 0 past its end, as trio's batches past the string do)."""
    tie_runs = ties.TieRuns()
    tie_runs.add(used)
    assert [row for row in repeated + new if tie_runs.repeats(row)] == repeated
    tie_runs = ties.TieRuns()
    tie_runs.add(None)  # a run that could not say what it used stands for no other
    assert not any(tie_runs.repeats(row) for row in repeated + new)


class PinnedRows(Scenario):
    """A sweep of the covering rows for each shape, interleaved: a shape's run breaks its
    ``flips`` first ties (None: reports none, as a run that could not say does), and one example
    with a seed rides along."""

    name = "pinned"

    def __init__(self, flips: dict[str, int | None]) -> None:
        self.flips = flips
        self.ran: dict[str, list[str]] = {shape: [] for shape in flips}

    def examples(self, model: str | None) -> st.SearchStrategy[Any]:
        return st.nothing()

    def run_example(self, example: Any, backend: str, model: str | None) -> Outcome:
        schedule = example["schedule"]
        if isinstance(schedule, int):
            self.ran.setdefault("seeded", []).append(str(schedule))
            return Outcome()
        flips = self.flips[example["shape"]]
        used = schedule.removeprefix(ties.PREFIX)[:flips] if flips is not None else None
        self.ran[example["shape"]].append(used or "")
        return Outcome(ties_used=used)

    def sweep(self, model: str | None, backend: str) -> Sweep:
        rows = [{"shape": shape, "schedule": row} for row in ties.COVERING_TIES for shape in self.flips]
        return Sweep([{"shape": "seeded", "schedule": 7}, *rows, {"shape": "seeded", "schedule": 7}], exhaustive=True)


@pytest.mark.parametrize("flips_per_run", [0, 3, 4, 11, 12, 16])
def test_the_judge_runs_a_row_unless_it_would_run_as_an_earlier_one_did(flips_per_run: int) -> None:
    """Pinned examples of one shape run unless a run of that shape used flips the row starts
    with: a shape that breaks few ties runs once per distinct prefix of the rows (a strength-3
    array shows every way of flipping the first 3, and Paley's 12 rows are distinct in their first
    11 flips), one that cannot say what it used runs every row, another shape's runs stand for
    nothing of this one's, a seeded example always runs, and the coverage line counts what was
    left out."""
    scenario = PinnedRows({"short": flips_per_run, "silent": None, "long": 16})
    result = explore.judge(scenario, "trio", None, seed=0, max_examples=0)
    every = len(ties.COVERING_TIES)
    assert [len(scenario.ran[shape]) for shape in ("silent", "long", "seeded")] == [every, every, 2]
    ran = scenario.ran["short"]
    assert len(ran) == len(set(ran)) and set(ran) == {row[:flips_per_run] for row in ROWS}, "each distinct prefix once"
    assert len(ran) <= 12 if flips_per_run <= 11 else len(ran) == every
    if flips_per_run <= ties.STRENGTH:
        assert len(ran) == 2 ** flips_per_run
    assert result.examples == len(ran) + 2 * every + 2
    left_out = every - len(ran)
    assert (f"{result.examples}, and {left_out} rows of tie-breaks that would run as an earlier run did" in result.coverage) == bool(left_out)


def test_a_bad_tie_pinning_is_never_left_out() -> None:
    """A row that does not parse runs (and its run says what is wrong) whatever ran before it."""
    by_shape = ties.RunsByShape()

    def run(example: dict[str, Any]) -> bool:
        """Whether the judge runs ``example`` (as :func:`explore.judge` asks)."""
        tie_runs = by_shape.of(example)
        return tie_runs is None or not tie_runs.repeats(example["schedule"])

    by_shape.of({"shape": 1, "schedule": "ties:"}).add("")  # a run that broke no tie stands for every row of its shape
    assert not run({"shape": 1, "schedule": "ties:0110"})
    assert run({"shape": 1, "schedule": "ties:2"}) and run({"shape": 1, "schedule": "oldest_first"})
    assert run({"shape": 2, "schedule": "ties:0110"}), "another shape"


@pytest.mark.parametrize("tail", ["", "0", "1", "0110100111"])
def test_a_pinned_run_uses_its_flips_and_no_more(tail: str) -> None:
    """What leaving rows out rests on: a run that used some flips runs the same whatever follows
    them, and says which it used (two batches of two or more here: trio's start-up, then a b c;
    a batch past the string takes 0)."""
    used = []

    def steps(schedule: str) -> list[str]:
        with explore.seeded_trio_scheduler(schedule) as scheduler:
            out = _first_steps_in_loop()
        used.append(scheduler.used)
        return out

    assert steps("ties:01" + tail) == ["a", "b", "c"] and used == ["01"]
    assert steps("ties:" + tail[:1]) == steps("ties:" + tail[:1] + "0") == ["c", "b", "a"]
    assert used[1:] == [(tail[:1] + "00")[:2]] * 2


def test_a_trio_run_that_raises_still_says_which_ties_it_broke() -> None:
    from pytest_agentsdk import observe

    class Boom(Exception):
        pass

    async def main(teardown: Any) -> None:
        trio = pytest.importorskip("trio")
        async with trio.open_nursery() as nursery:
            for _ in range(3):
                nursery.start_soon(trio.lowlevel.checkpoint)
        raise Boom

    _, teardown = observe.run_observed(main, "trio", schedule="ties:1", own_errors=(Boom,))
    assert teardown.ties_used is not None and teardown.ties_used.startswith("1")


def test_what_trio_draws_besides_its_coin_comes_from_seed_0() -> None:
    """trio's clock draws its offset from the scheduler's RNG: under pinned ties it is seed 0's,
    the same for every row, so rows differ in their flips only."""
    assert ties.PinnedTies("ties:01").uniform(10000, 200000) == random.Random(0).uniform(10000, 200000)


@pytest.mark.parametrize("schedule", [7, "ties:01"])
def test_trio_s_rng_and_mode_are_given_back_after_an_error(schedule: int | str) -> None:
    before = _trio_scheduler_state()
    with pytest.raises(ZeroDivisionError), explore.seeded_trio_scheduler(schedule):
        assert _trio_scheduler_state()[0] is not before[0]
        raise ZeroDivisionError
    assert _trio_scheduler_state() == before


_ORDER_AFTER = """
import sys, trio
from pytest_agentsdk import virtual_time
from pytest_agentsdk.explore import seeded_trio_scheduler

def order(schedule):
    out = []
    async def child(i):
        await trio.lowlevel.checkpoint()
        out.append(i)
    async def main():
        out.append(round(trio.current_time()))
        async with trio.open_nursery() as nursery:
            for i in range(6):
                nursery.start_soon(child, i)
    with seeded_trio_scheduler(schedule):
        trio.run(main, clock=virtual_time.trio_clock())
    return out

if sys.argv[1] == "pinned_first":
    order("ties:0110")
print(order(9), order(5))
"""


def test_a_pinned_run_first_in_a_process_leaves_seeded_runs_as_they_are() -> None:
    """The harness's skipping trio clock draws trio's offset from the scheduler's generator, as
    trio's own clock does; it must read the generator a run has, not the one it saw first (a
    pinned run first in a process would have changed every seeded run after it)."""
    pytest.importorskip("trio")

    def seeded(first: str) -> str:
        run = subprocess.run([sys.executable, "-c", _ORDER_AFTER, first], capture_output=True, text=True, timeout=60, check=True)
        return run.stdout

    assert seeded("pinned_first") == seeded("seeded_only")
