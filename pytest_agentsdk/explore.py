"""What the three bug scenarios share: the :class:`Scenario` contract, running one example in a
fresh event loop, and judging: a deterministic sweep of every known class of interleaving, then a
Hypothesis search from a printed seed, into one verdict.

A scenario (the modules under :mod:`pytest_agentsdk.bugs`) supplies a strategy of JSON examples,
a function that runs one example and returns an :class:`Outcome`, and its sweep. :func:`judge`
turns that into a Verdict ``Result`` whose manifestation set is the union over *everything that
ran* (sweep, search and shrinking alike), so two subjects are compared like for like; the sweep
runs in full whatever ``--examples`` says, so a known class is found at any budget, and the
search looks only for what the sweep has not shown. The same seed gives the same examples, the
same verdict and the same counterexample.
"""

from __future__ import annotations

import copy
import functools
import json
import pickle
import random
import shlex
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
from hypothesis import HealthCheck, Phase, find, settings
from hypothesis import strategies as st
from hypothesis.errors import NoSuchExample
from hypothesis.internal.conjecture import providers

from . import cache, virtual_time
from .script import TRANSPORT_OPS
from .ties import PinnedTies, RunsByShape
from .verdict import Result

if TYPE_CHECKING:
    from .compat import SdkInfo

#: Last-resort wall-clock bound on one example; stalls are normally caught in milliseconds by
#: the transport, this only catches a run whose stdout reader is not even running.
EXAMPLE_WALL_S = 10.0
HANG = "hang"


@dataclass
class Outcome:
    """What one example showed: stable manifestation names, a hang, what a fix gave up
    (``tradeoffs``: e.g. frames dropped with no channel left to reach the consumer; never part of
    the verdict), and evidence for the report."""

    manifestations: list[str] = field(default_factory=list)
    hang: str | None = None  # the stall diagnosis, when the run hung
    evidence: dict[str, Any] = field(default_factory=dict)
    tradeoffs: list[str] = field(default_factory=list)
    #: under pinned tie-breaks, the flips the one trio run of this example used; the judge does not
    #: run a row that starts with them (ties.TieRuns), so the outcome must follow from the example and these flips
    ties_used: str | None = None

    @property
    def failed(self) -> bool:
        return bool(self.manifestations) or self.hang is not None

    @property
    def names(self) -> list[str]:
        """Manifestation names, with ``hang`` for a run that hung."""
        return sorted(set(self.manifestations)) + ([HANG] if self.hang else [])


@dataclass
class Sweep:
    """The examples every judgement runs before the search, whatever the budget, and what they
    span (``axes``, e.g. "13 patterns x 4 timings x 3 GC modes"), for the coverage statement."""

    examples: list[Any] = field(default_factory=list)
    axes: str = ""
    #: the sweep *is* the whole example space (a real CLI's stories): no search follows it
    exhaustive: bool = False


class Scenario(ABC):
    """One bug: a driver, an oracle and the examples to explore (one module per bug)."""

    name: str
    #: CLI behaviour models this bug is judged under (None: the model does not apply).
    models: tuple[str | None, ...] = (None,)
    #: Arguments ``replay`` needs besides the example to play it the same way (e.g. ``--cli PATH``).
    replay_args: tuple[str, ...] = ()
    #: Manifestations users see only with warnings enabled (``-W default``, pytest, ``-X dev``):
    #: they make a ``warnings`` verdict, not ``reproduced``, unless warnings count as errors.
    quiet: frozenset[str] = frozenset()
    #: Exceptions that end one example, not the judgement (a real CLI asking for a reply its story
    #: never queued): the other examples still run and the verdict names the ones that could not.
    #: Any other exception is the harness's failure: an ``error`` row.
    example_errors: tuple[type[Exception], ...] = ()

    def not_applicable(self, sdk: SdkInfo, backend: str, model: str | None) -> str | None:
        """Why this release lacks the surface this scenario needs, or None."""
        return sdk.backend_unsupported(backend)

    @abstractmethod
    def examples(self, model: str | None) -> st.SearchStrategy[Any]:
        """JSON-able examples; the simplest one Hypothesis draws first is the seed report's flow."""

    @abstractmethod
    def run_example(self, example: Any, backend: str, model: str | None) -> Outcome:
        """Run one example in a fresh event loop and apply the oracle."""

    def sweep(self, model: str | None, backend: str) -> Sweep:
        """The known classes of interleaving under ``backend``, one example each, run before any search."""
        return Sweep()

    def group(self, example: Any) -> str | None:
        """The consumer pattern / named flow an example belongs to, for per-group safety."""
        return None

    def annotate(self, result: Result, sdk: SdkInfo) -> None:
        """Add this bug's notes and evidence to a finished verdict."""

    def on_cli(self, cli: Any) -> Scenario | None:
        """This bug played by the real CLI ``cli`` (a :class:`pytest_agentsdk.realcli.Cli`) against
        the scripted Messages API (None: this bug has no real-CLI stories)."""
        return None

    def judge(self, sdk: SdkInfo, backend: str, model: str | None, seed: int, max_examples: int,
              warnings_as_errors: bool = False) -> Result:
        reason = self.not_applicable(sdk, backend, model)
        if reason:
            return Result(self.name, "not_applicable", backend, model, reason=reason)
        result = judge(self, backend, model, seed, max_examples, warnings_as_errors=warnings_as_errors)
        self.annotate(result, sdk)
        return result


# ---------------------------------------------------------------- running one example
@contextmanager
def seeded_trio_scheduler(schedule: int | str = 0) -> Iterator[random.Random]:
    """trio breaks ties between runnable tasks at random; its scheduler's RNG, seeded, makes a trio
    run repeatable. A seed runs trio's deterministic mode (Hypothesis's: each batch of woken tasks
    sorted by spawn order, then shuffled), set here rather than left to Hypothesis's trio plugin
    having been loaded. A ``ties:`` string (:mod:`pytest_agentsdk.ties`) pins instead the coin trio
    flips per batch outside Hypothesis (what the run used: the yielded RNG's ``used``). trio's own
    RNG and mode are given back afterwards. asyncio is FIFO already."""
    import trio._core._run as trio_run

    rng, shuffles = (PinnedTies(schedule), False) if isinstance(schedule, str) else (random.Random(schedule), True)
    module: Any = trio_run  # trio marks both names Final; Hypothesis's trio support sets them too
    saved = module._r, module._ALLOW_DETERMINISTIC_SCHEDULING
    module._r, module._ALLOW_DETERMINISTIC_SCHEDULING = rng, shuffles
    try:
        yield rng
    finally:
        module._r, module._ALLOW_DETERMINISTIC_SCHEDULING = saved


def run_in_fresh_loop(main: Callable[[], Awaitable[Any]], backend: str, wall: float = EXAMPLE_WALL_S, *,
                      skip_idle: bool = False) -> Any:
    """Run ``main`` in a new event loop of ``backend`` (trio's scheduler seeded, so a run repeats);
    raises TimeoutError past ``wall`` seconds of loop time. ``skip_idle``: the loop's clock jumps
    over waits only a timer can end and stands still while work runs
    (:mod:`pytest_agentsdk.virtual_time`), for scripted runs."""

    async def bounded() -> Any:
        with anyio.fail_after(wall):
            return await main()

    if backend != "trio":
        options = {"loop_factory": virtual_time.SkippingEventLoop} if skip_idle else {}
        return anyio.run(bounded, backend=backend, backend_options=options)
    with seeded_trio_scheduler():  # seeded first: the clock draws its offset from that generator, as trio's own does
        return anyio.run(bounded, backend=backend, backend_options={"clock": virtual_time.trio_clock()} if skip_idle else {})


@contextmanager
def _global_random_seeded() -> Iterator[None]:
    """The global ``random`` seeded as Hypothesis seeds it for each example it runs (0), and given
    back as it was: should a release or a dependency draw from it, an example's outcome still
    does not depend on what ran before it (a swept one, or one run outside Hypothesis's find)."""
    state = random.getstate()
    random.seed(0)
    try:
        yield
    finally:
        random.setstate(state)


def transport_checkpoints(ops: Sequence[str] = TRANSPORT_OPS, max_per_op: int = 3) -> st.SearchStrategy[dict[str, int]]:
    """``Script.checkpoints`` for the given operations: each absent (no suspension) or 1..max
    scheduler checkpoints; shrinks towards a transport that never suspends."""
    return _checkpoints(tuple(ops), max_per_op)


@functools.cache
def _checkpoints(ops: tuple[str, ...], max_per_op: int) -> st.SearchStrategy[dict[str, int]]:
    """One strategy object per arguments: drawn from inside other strategies, it is validated
    once, not on every draw."""
    return st.fixed_dictionaries({}, optional={op: st.integers(1, max_per_op) for op in ops})


def replay_command(bug: str, backend: str, model: str | None, example: Any, extra: Sequence[str] = ()) -> str:
    parts = ["python", "-m", "pytest_agentsdk", "replay", "--bug", bug, "--backend", backend, *extra]
    if model:
        parts += ["--model", model]
    parts += ["--example", json.dumps(example, separators=(",", ":"), sort_keys=True)]
    return shlex.join(parts)


def _search_settings(max_examples: int) -> settings:
    return settings(
        settings.get_profile("default"),  # a user's loaded profile (derandomize, ...) must not change verdicts
        max_examples=max_examples,
        database=None,
        deadline=None,
        phases=(Phase.generate, Phase.shrink),
        suppress_health_check=list(HealthCheck),
    )


def _search(strategy: st.SearchStrategy[Any], condition: Callable[[Any], bool], seed: int, max_examples: int) -> Any:
    """Hypothesis's ``find`` from ``seed``, without the integers Hypothesis also draws from the
    literals of the modules it deems local: here the harness's own source when it runs from a
    checkout, not when it is installed. A drawing would otherwise change with how the harness is
    installed, with any literal added to it, and with a cache of those literals read while another
    process writes it. Our strategies draw bounded counts and seeds, which such literals do not
    serve. (Hypothesis has no setting for this: its private hook is replaced for the search, and
    left alone should it go.)"""
    hook, constants = getattr(providers, "_get_local_constants", None), getattr(providers, "CONSTANTS_CACHE", None)
    swapped = hook is not None and constants is not None
    if swapped:
        none = type(providers.GLOBAL_CONSTANTS)()
        setattr(providers, "_get_local_constants", lambda: none)
        setattr(providers, "CONSTANTS_CACHE", {})  # its entries were chosen among the local constants too
    try:
        return find(strategy, condition, settings=_search_settings(max_examples), random=random.Random(seed))
    finally:
        if swapped:
            setattr(providers, "_get_local_constants", hook)
            setattr(providers, "CONSTANTS_CACHE", constants)


#: (id of the strategy, seed, budget) -> (the strategy, what a search generates while nothing is interesting)
_DRAWN: dict[tuple[int, int, int], tuple[st.SearchStrategy[Any], list[Any]]] = {}


def drawn(strategy: st.SearchStrategy[Any], seed: int, max_examples: int, store: Path | None = None) -> list[Any]:
    """The examples a search of ``strategy`` from ``seed`` generates, in order, while none is
    interesting: what every search then runs first. Until an example is interesting, what
    Hypothesis generates depends on the strategy, the seed and the budget (and on Hypothesis
    itself: :func:`_search`), not on the outcomes, so it is the same for every backend, model and
    release: drawn once per process (``check`` draws before its forks) instead of once per
    judgement (~2 ms an example).

    ``store``: a file that holds this drawing for every process of one run that shares this
    harness and Hypothesis (``check --drawings``): read if there, else written once drawn."""
    key = (id(strategy), seed, max_examples)
    cached = _DRAWN.get(key)
    if cached is None or cached[0] is not strategy:
        generated = _stored(store)
        if generated is None:
            generated = []

            def keep(example: Any) -> bool:
                generated.append(copy.deepcopy(example))
                return False

            try:
                _search(strategy, keep, seed, max_examples)
            except NoSuchExample:
                pass
            if store is not None:
                cache.atomic_write(store, pickle.dumps(generated), best_effort=True)  # else the next process draws again
        cached = _DRAWN[key] = (strategy, generated)
    return cached[1]


def _stored(store: Path | None) -> list[Any] | None:
    """The drawing in ``store``; None when there is none, or none that reads (it is drawn again)."""
    if store is None:
        return None
    try:
        loaded = pickle.loads(store.read_bytes())
    except Exception:  # noqa: BLE001 - missing, cut short or not ours: drawing again gives the same
        return None
    return loaded if isinstance(loaded, list) else None


def _shrunk(strategy: st.SearchStrategy[Any], seed: int, max_examples: int, prefix: list[Any],
            interesting: Callable[[Any], bool]) -> Any:
    """The minimal example of a search that found ``prefix[-1]`` interesting: the same search
    again, so Hypothesis shrinks it. Its first examples are ``prefix``, already run and judged
    (none but the last interesting): they are answered so, not run or counted twice; should the
    search generate anything else (it did not in any case measured), every example from there on
    is run."""
    replaying: Iterator[tuple[int, str]] = iter(enumerate(_key(example) for example in prefix))

    def condition(example: Any) -> bool:
        nonlocal replaying
        if (expected := next(replaying, None)) is not None:
            index, key = expected
            if _key(example) == key:
                return index == len(prefix) - 1
            replaying = iter(())
        return interesting(example)

    try:
        return _search(strategy, condition, seed, max_examples)
    except NoSuchExample:  # the search ran elsewhere than the drawing did: what ran is still the union
        return None


def warm_up(strategies: Iterable[st.SearchStrategy[Any]] = ()) -> None:
    """Pay once, before ``check`` forks its judgements, what Hypothesis's first search in a process
    costs: registering its own Random (a full garbage collection, which in a forked child also
    copies every page of the heap it touches) and validating the ``strategies`` the judgements will
    search (else every fork validates its own anew: ~5% of a check). Neither changes a draw:
    validation only computes what each strategy can draw."""
    _search(st.just(None), lambda _: True, 0, 1)
    for strategy in strategies:
        strategy.validate()


# ---------------------------------------------------------------- judging
def _severity(names: set[str], quiet: frozenset[str]) -> int:
    """3 hang, 2 a manifestation users see by default, 1 warnings only, 0 clean."""
    if HANG in names:
        return 3
    if names - quiet:
        return 2
    return 1 if names else 0


_VERDICT_OF = {3: "hang", 2: "reproduced", 1: "warnings", 0: "fixed"}


@dataclass
class _Group:
    """Per consumer pattern / named flow: how many examples ran and what they showed."""

    examples: int = 0
    swept: int = 0
    names: set[str] = field(default_factory=set)
    #: what the sweep alone showed: on every subject the same examples (a row of trio's tie-breaks
    #: left out would have run as one that ran; ties.TieRuns)
    swept_names: set[str] = field(default_factory=set)
    first: Any = None  # the first example that showed something
    more: list[dict[str, Any]] = field(default_factory=list)  # each later example that showed something new

    def to_json(self, quiet: frozenset[str]) -> dict[str, Any]:
        status = ("safe", "warnings", "unsafe", "hang")[_severity(self.names, quiet)]
        covered = f"{self.examples} example(s): {self.swept} swept, {self.examples - self.swept} searched"
        out: dict[str, Any] = {"status": status, "safe": status == "safe", "manifestations": sorted(self.names),
                               "swept_manifestations": sorted(self.swept_names), "examples": self.examples, "covered": covered}
        if self.first is not None:
            out["example"] = self.first
        if self.more:
            out["more"] = self.more
        return out


def judge(
    scenario: Scenario,
    backend: str,
    model: str | None,
    seed: int,
    max_examples: int,
    *,
    warnings_as_errors: bool = False,
) -> Result:
    """Sweep, then search, then one verdict over everything that ran.

    The sweep (``scenario.sweep(model, backend)``) runs in full, except an example pinned to trio
    tie-breaks that would run exactly as an earlier run of its shape did (it starts with the flips
    that run used, :class:`pytest_agentsdk.ties.TieRuns`). The search then looks for an example that
    shows a manifestation the sweep has not (so a known finding cannot end it early), at most
    ``max_examples`` generated (the :func:`drawn` ones, in order), and shrinks it. The
    counterexample is the first swept example of the most severe tier found (the flow users
    recognise), else the search's minimal one; the search's own find stays in
    ``evidence["search"]``.
    """
    quiet = frozenset() if warnings_as_errors else scenario.quiet
    sweep = scenario.sweep(model, backend)
    runs: dict[str, tuple[Any, Outcome]] = {}  # by example key, in the order first run
    groups: dict[str, _Group] = {}
    union: set[str] = set()
    tradeoffs: set[str] = set()
    ran = 0
    swept_count = 0
    could_not_run: list[dict[str, Any]] = []

    def run(example: Any, swept: bool) -> Outcome:
        nonlocal ran
        ran += 1
        key = _key(example)
        with _global_random_seeded():
            try:
                outcome = scenario.run_example(example, backend, model)
            except scenario.example_errors as exc:
                could_not_run.append({"example": example, "error": str(exc)})
                return Outcome([])
        runs.setdefault(key, (example, outcome))
        union.update(outcome.names)
        tradeoffs.update(outcome.tradeoffs)
        name = scenario.group(example)
        if name is not None:
            g = groups.setdefault(name, _Group())
            g.examples += 1
            g.swept += swept
            if outcome.failed:
                if g.first is None:
                    g.first = example
                elif adds := sorted(set(outcome.names) - g.names):
                    g.more.append({"adds": adds, "example": example})
                g.names.update(outcome.names)
                if swept:
                    g.swept_names.update(outcome.names)
        return outcome

    by_shape = RunsByShape()
    repeated = 0
    for example in sweep.examples:
        tie_runs = by_shape.of(example)
        if tie_runs is not None and tie_runs.repeats(example["schedule"]):
            repeated += 1
            continue
        outcome = run(example, swept=True)
        if tie_runs is not None:
            tie_runs.add(outcome.ties_used)
        swept_count += 1
    known = frozenset(union)

    def shows_new(example: Any) -> bool:
        return bool(set(run(example, swept=False).names) - known)

    found: Any = None
    if not sweep.exhaustive:
        strategy = scenario.examples(model)
        generated = drawn(strategy, seed, max_examples)
        for index, example in enumerate(generated):
            if shows_new(copy.deepcopy(example)):
                found = _shrunk(strategy, seed, max_examples, generated[:index + 1], shows_new)
                break

    severity = _severity(union, quiet)
    result = Result(scenario.name, _VERDICT_OF[severity], backend, model, examples=ran,
                    manifestations=sorted(union - {HANG}) + ([HANG] if HANG in union else []),
                    quiet=sorted(union & quiet), tradeoffs=sorted(tradeoffs))
    count = f"{swept_count}, and {repeated} rows of tie-breaks that would run as an earlier run did" if repeated else swept_count
    axes = f"sweep of {sweep.axes} ({count})" if sweep.axes else f"sweep of {count}"
    searched = "every example there is (no search)" if sweep.exhaustive else \
        f"{ran - swept_count} searched (seed {seed}, --examples {max_examples})"
    result.coverage = f"{'not reproduced in ' if severity == 0 else ''}{ran} examples: {axes}, {searched}"
    if severity:
        # the first swept example of the worst tier (the flow users recognise), else the search's minimal one
        order = [_key(ex) for ex in sweep.examples] + ([_key(found)] if found is not None else []) + list(runs)
        example, outcome = runs[next(k for k in order if k in runs and _severity(set(runs[k][1].names), quiet) == severity)]
        _fill_failure(result, example, outcome, scenario.replay_args)
        if found is not None and _key(found) != _key(example):
            result.evidence["search"] = {"counterexample": found, "manifestations": runs[_key(found)][1].names,
                                         "replay": replay_command(scenario.name, backend, model, found, scenario.replay_args)}
    if groups:
        result.evidence["patterns"] = {name: g.to_json(quiet) for name, g in groups.items()}
    if could_not_run:
        _say_could_not_run(result, could_not_run)
    return result


def _say_could_not_run(result: Result, could_not_run: list[dict[str, Any]]) -> None:
    """What ran still counts (a manifestation seen is seen), but nothing is ``fixed``, nor only
    ``warnings``, on examples that never ran: the verdict is then ``error``."""
    result.evidence["could_not_run"] = could_not_run
    result.coverage = f"{result.coverage}; {len(could_not_run)} of them could not run (evidence: could_not_run)"
    if result.verdict in ("fixed", "warnings"):
        rest = ("the rest showed only warnings" if result.verdict == "warnings" else "the rest showed nothing"
                ) if len(could_not_run) < result.examples else "none ran"
        result.verdict = "error"
        result.coverage = result.coverage.removeprefix("not reproduced in ")
        result.reason = f"{len(could_not_run)} of {result.examples} examples could not run and {rest}; first: {could_not_run[0]['error']}"


def _fill_failure(result: Result, example: Any, outcome: Outcome, replay_args: Sequence[str]) -> None:
    result.counterexample = example
    result.replay = replay_command(result.bug, result.backend, result.model, example, replay_args)
    result.evidence = {**outcome.evidence, **({"stall": outcome.hang} if outcome.hang else {}), **result.evidence}


def _key(example: Any) -> str:
    return json.dumps(example, sort_keys=True, default=str)
