"""What the three bug scenarios share: running one example in a fresh event loop, and searching
the example space with Hypothesis from a printed seed down to a minimal counterexample.

A scenario (see :mod:`pytest_agentsdk.bugs`) supplies a strategy of JSON examples and a function
that runs one example and returns an :class:`Outcome`. :func:`judge` turns that into a Verdict
``Result``: the same seed gives the same examples, the same verdict and the same minimal example.
"""

from __future__ import annotations

import json
import random
import shlex
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio
from hypothesis import HealthCheck, Phase, find, settings
from hypothesis.errors import NoSuchExample

from .verdict import Result

if TYPE_CHECKING:
    from .bugs import Scenario

#: Last-resort wall-clock bound on one example; stalls are normally caught in milliseconds by
#: the transport, this only catches a run whose stdout reader is not even running.
EXAMPLE_WALL_S = 10.0


@dataclass
class Outcome:
    """What one example showed: stable manifestation names, a hang, and evidence for the report."""

    manifestations: list[str] = field(default_factory=list)
    hang: str | None = None  # the stall diagnosis, when the run hung
    evidence: dict[str, Any] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return bool(self.manifestations) or self.hang is not None

    @property
    def names(self) -> list[str]:
        """Manifestation names, with ``hang`` for a run that hung."""
        return sorted(set(self.manifestations)) + (["hang"] if self.hang else [])


def failing_result(bug: str, backend: str, model: str | None, example: Any, outcome: Outcome, examples: int, **evidence: Any) -> Result:
    """The verdict for a failing example: reproduced or hang, its names, the replay command, and
    the outcome's evidence (with the stall diagnosis) plus ``evidence``."""
    return Result(
        bug=bug,
        verdict="hang" if outcome.hang else "reproduced",
        backend=backend,
        model=model,
        examples=examples,
        manifestations=outcome.names,
        counterexample=example,
        replay=replay_command(bug, backend, model, example),
        evidence={**outcome.evidence, **({"stall": outcome.hang} if outcome.hang else {}), **evidence},
    )


@contextmanager
def seeded_trio_scheduler(schedule: int = 0) -> Iterator[None]:
    """trio breaks ties between runnable tasks at random; seeding its scheduler's RNG (the object
    Hypothesis's trio support seeds too) makes a trio run repeatable. asyncio is FIFO already."""
    import trio._core._run as trio_run

    state = trio_run._r.getstate()
    trio_run._r.seed(schedule)
    try:
        yield
    finally:
        trio_run._r.setstate(state)


def run_in_fresh_loop(main: Callable[[], Awaitable[Any]], backend: str) -> Any:
    """Run ``main`` in a new event loop of ``backend`` (trio's scheduler seeded, so a run repeats);
    raises TimeoutError past EXAMPLE_WALL_S."""

    async def bounded() -> Any:
        with anyio.fail_after(EXAMPLE_WALL_S):
            return await main()

    if backend != "trio":
        return anyio.run(bounded, backend=backend)
    with seeded_trio_scheduler():
        return anyio.run(bounded, backend=backend)


def replay_command(bug: str, backend: str, model: str | None, example: Any) -> str:
    parts = ["python", "-m", "pytest_agentsdk", "replay", "--bug", bug, "--backend", backend]
    if model:
        parts += ["--model", model]
    parts += ["--example", json.dumps(example, separators=(",", ":"), sort_keys=True)]
    return shlex.join(parts)


def judge(
    scenario: Scenario,
    backend: str,
    model: str | None,
    seed: int,
    max_examples: int,
    *,
    sweep: Sequence[Any] = (),
    seen: Callable[[Any, Outcome], None] | None = None,
    target: Callable[[Any, Outcome], bool] | None = None,
    settle_on_sweep: bool = False,
) -> Result:
    """Search ``scenario``'s examples for one that fails the oracle; shrink it; report.

    ``sweep``: named examples run first, in order, whatever the seed (a scenario's table of
    flows); when the search finds nothing, the first failing one is the counterexample
    (``settle_on_sweep``: it is the verdict at once, without a search).
    ``seen`` is called with every example run and its outcome (for per-flow evidence).
    ``target``: what the search looks for (default: any failure), e.g. only failures the sweep
    has not already shown, so a known finding does not end the search at its first example.
    """
    ran = 0
    outcomes: dict[str, Outcome] = {}  # by example, so the counterexample is not run once more

    def run(example: Any) -> Outcome:
        nonlocal ran
        ran += 1
        outcome = outcomes[_key(example)] = scenario.run_example(example, backend, model)
        if seen is not None:
            seen(example, outcome)
        return outcome

    swept = []
    for example in sweep:
        outcome = run(example)
        if outcome.failed:
            if settle_on_sweep:
                return failing_result(scenario.name, backend, model, example, outcome, ran)
            swept.append(example)
    search = settings(
        settings.get_profile("default"),  # a user's loaded profile (derandomize, ...) must not change verdicts
        max_examples=max_examples,
        database=None,
        deadline=None,
        phases=(Phase.generate, Phase.shrink),
        suppress_health_check=list(HealthCheck),
    )
    try:
        wanted = target or (lambda _, outcome: outcome.failed)
        minimal = find(scenario.examples(model), lambda ex: wanted(ex, run(ex)), settings=search, random=random.Random(seed))
    except NoSuchExample:
        if not swept:
            return Result(scenario.name, "fixed", backend, model, examples=ran)
        minimal = swept[0]
    return failing_result(scenario.name, backend, model, minimal, outcomes[_key(minimal)], ran)


def _key(example: Any) -> str:
    return json.dumps(example, sort_keys=True, default=str)
