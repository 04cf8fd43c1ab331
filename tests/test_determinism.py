"""Verdicts never flicker: a small version of benchmarks/determinism.py on the installed release.

Every bug judged under two seeds with a small budget gives the same verdict and manifestation set
under both, and the same seed twice gives the identical JSON report (counterexamples included).
The benchmark runs 20 seeds over fix candidates too, and pytest -n 2 against a serial run
(tests/test_plugin.py checks that the merged report equals the serial one).
"""

from __future__ import annotations

import pytest

from pytest_agentsdk import verdict
from pytest_agentsdk.__main__ import run_check
from pytest_agentsdk.bugs import BUG_NAMES

SEEDS = (0, 1)
EXAMPLES = 2


def judged(seed: int) -> verdict.CheckReport:
    return run_check(list(BUG_NAMES), ["asyncio"], None, seed, EXAMPLES, progress=False)


@pytest.fixture(scope="module")
def reports() -> list[verdict.CheckReport]:
    return [judged(seed) for seed in SEEDS]


def test_no_verdict_or_manifestation_set_moves_with_the_seed(reports: list[verdict.CheckReport]) -> None:
    outcomes = verdict.outcomes_across_seeds(reports)
    assert {bug for bug, _, _ in outcomes} == set(BUG_NAMES)
    flips = {key: found for key, found in outcomes.items() if len(found) > 1}
    assert flips == {}


def test_the_same_seed_gives_the_identical_report(reports: list[verdict.CheckReport]) -> None:
    assert judged(SEEDS[0]).to_json() == reports[0].to_json()


def test_a_flip_is_named_with_its_seeds() -> None:
    """The comparison itself: two seeds that disagree on one row show as two outcomes."""
    def report(seed: int, names: list[str]) -> verdict.CheckReport:
        return verdict.CheckReport({}, seed, [verdict.Result("premature_completion", "reproduced" if names else "fixed", "asyncio",
                                                             manifestations=names)])

    outcomes = verdict.outcomes_across_seeds([report(0, ["b", "a"]), report(1, []), report(2, ["a", "b"])])
    assert outcomes == {("premature_completion", None, "asyncio"): {("reproduced", ("a", "b")): [0, 2], ("fixed", ()): [1]}}
