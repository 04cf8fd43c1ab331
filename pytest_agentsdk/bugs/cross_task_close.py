"""Bug 1, cross-task close: a successful run must tear down silently, whatever the consumer does.

The seed (0.1.48): ``Query.close()`` exits an anyio task-group cancel scope from a task other than
the one that entered it when the ``query()`` generator is finalized elsewhere, so
``RuntimeError: Attempted to exit cancel scope in a different task`` reaches stderr as
``Task exception was never retrieved`` *after* the final ResultMessage. The oracle judges the harm
(anything :mod:`pytest_agentsdk.observe` sees, the CLI not closed exactly once, the result not
delivered), so other causes with the same effect are caught too.

An example is one consumer *pattern* (how users really leave the loop) with a script, the point
where the consumer stops, when the abandoned generator is collected, and how long the consumer
keeps running afterwards. :meth:`CrossTaskClose.judge` first runs every pattern with default
checkpoints (the per-pattern safety table users asked for), then lets Hypothesis explore.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import inspect
import math
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
from hypothesis import strategies as st

from .. import model_server, observe, realcli, ties, wire
from ..compat import SdkInfo
from ..model_server import Reply
from ..realcli import Cli
from ..explore import EXAMPLE_WALL_S, Outcome, Scenario, Sweep, transport_checkpoints
from ..script import Script, ScriptError, known_fields, one_of, whole_number
from ..transport import ScriptedTransport
from ..verdict import Result

PROMPT = "say hello"  # the seed's prompt
#: Where the abandoned generator's last reference goes when the consumer stops early:
#: dropped at once (refcount finalizer), left in a reference cycle until ``gc.collect()``, or kept
#: alive until the loop's own shutdown (asyncio.run's shutdown_asyncgens, trio.run's finalizer).
GC_TIMINGS = ("refcount", "collect", "loop_shutdown")
#: Transport operations whose checkpoint counts Hypothesis explores (close and read above all).
EXPLORED_OPS = ("close", "read", "end_input", "write", "connect")
MAX_CHECKPOINTS = 3
MAX_ASSISTANTS = 2
MAX_SCHEDULE = 255  # trio's tie-breaks between runnable tasks (asyncio is FIFO)
#: Real transports take real time: ``SubprocessCLITransport.close()`` waits for the CLI to exit,
#: stdout lines arrive spaced, connect spawns a process. Seconds per operation the search draws
#: from (REAL_CLI.md: a turn takes 30-90 ms; an exit tens of ms).
REAL_DELAYS: dict[str, tuple[float, ...]] = {"close": (0.005, 0.02, 0.05), "read": (0.001, 0.003), "connect": (0.002, 0.01)}
#: The sweep's timing classes: a transport that never suspends, one that yields to the scheduler
#: (the class that shows asyncgen_close_error on the latest release), one whose reads yield as
#: often as the search lets them (three yields or more per read: a dropped generator's close then
#: meets the loop's shutdown, ``shutdown_task_error`` from 0.1.64 on, which one yield never shows),
#: one that takes real time.
TIMINGS: dict[str, dict[str, Any]] = {
    "instant": {},
    "checkpoints": {"checkpoints": {"close": 3, "read": 1, "write": 1}},
    "slow_reads": {"checkpoints": {"close": 3, "read": MAX_CHECKPOINTS, "write": 1}},
    "real_time": {"delays": {"close": 0.05, "read": 0.001}},
}


class ConsumerAbort(Exception):
    """The consumer's own error, raised in its loop body (handled by the consumer, or left to
    escape ``asyncio.run``: either way it is the consumer's, not a teardown manifestation)."""


@dataclass
class Run:
    """One consumer's run: what it stops at, what it received, where its generator goes."""

    example: dict[str, Any]
    backend: str
    transport: ScriptedTransport | None = None
    options: Any = None  # a real CLI session's ClaudeAgentOptions, when there is no scripted transport
    received: list[Any] = field(default_factory=list)
    abandoned: set[str] = field(default_factory=set)  # generators this consumer let go unfinished
    kept: list[Any] = field(default_factory=list)  # outlives main: closed by the loop's own shutdown

    @property
    def via(self) -> dict[str, Any]:
        """How the consumer reaches the CLI: the scripted transport, or a real CLI's options
        (the SDK's own SubprocessCLITransport)."""
        return {"transport": self.transport} if self.transport is not None else {"options": self.options}

    def stops_at(self, message: Any) -> bool:
        from claude_agent_sdk import ResultMessage

        stop = self.example["stop"]
        return isinstance(message, ResultMessage) or (stop != "result" and len(self.received) > stop)

    async def iterate(self, gen: AsyncIterator[Any]) -> None:
        """``async for`` until the stop point, then leave the loop (``break``)."""
        async for message in gen:
            self.received.append(message)
            if self.stops_at(message):
                break

    async def iterate_then_raise(self, gen: AsyncIterator[Any]) -> None:
        """``async for`` until the stop point, then raise ConsumerAbort from the loop body."""
        async for message in gen:
            self.received.append(message)
            if self.stops_at(message):
                raise ConsumerAbort("consumer gave up")

    def abandon(self, gen: Any) -> None:
        """Let go of ``gen`` the way the example's GC timing says (the caller drops its own name)."""
        self.abandoned.add(observe.generator_name(gen))
        timing = self.example["gc"]
        if timing == "collect":
            cycle: list[Any] = [gen]
            cycle.append(cycle)
        elif timing == "loop_shutdown":
            self.kept.append(gen)

    async def linger(self) -> None:
        """The consumer goes on with its own work after letting go of the generator."""
        if self.example["gc"] == "collect":
            gc.collect()
        for _ in range(self.example["after"]):
            await anyio.lowlevel.checkpoint()


# ---------------------------------------------------------------- consumer patterns
async def break_then_return(run: Run) -> None:
    """The seed's driver leaving its loop at the result and returning from ``asyncio.run(main())``."""
    from claude_agent_sdk import query

    gen = query(prompt=PROMPT, **run.via)
    await run.iterate(gen)
    run.abandon(gen)
    del gen


async def complete(run: Run) -> None:
    """``async for message in query(...)`` to the end of the stream."""
    from claude_agent_sdk import query

    async for message in query(prompt=PROMPT, **run.via):
        run.received.append(message)


async def break_then_drop(run: Run) -> None:
    """``break`` at the stop point, drop the generator, keep running (the GC finalizer path)."""
    await break_then_return(run)
    await run.linger()


async def exception_in_body(run: Run) -> None:
    """The loop body raises; the consumer handles its own error outside the loop."""
    from claude_agent_sdk import query

    gen = query(prompt=PROMPT, **run.via)
    try:
        await run.iterate_then_raise(gen)
    except ConsumerAbort:
        pass
    run.abandon(gen)
    del gen
    await run.linger()


async def move_on_after(run: Run) -> None:
    """``with anyio.move_on_after(T)``: the deadline passes while awaiting the next message."""
    from claude_agent_sdk import query

    with anyio.move_on_after(math.inf) as scope:
        gen = query(prompt=PROMPT, **run.via)
        async for message in gen:
            run.received.append(message)
            if run.stops_at(message):
                scope.deadline = anyio.current_time()
    run.abandon(gen)
    del gen
    await run.linger()


async def native_timeout(run: Run) -> None:
    """The backend's own timeout: ``asyncio.timeout`` (what ``asyncio.wait_for`` uses) or
    ``trio.move_on_after``; the deadline passes while awaiting the next message."""
    from claude_agent_sdk import query

    gen = query(prompt=PROMPT, **run.via)
    if run.backend == "trio":
        import trio

        with trio.move_on_after(math.inf) as scope:
            async for message in gen:
                run.received.append(message)
                if run.stops_at(message):
                    scope.deadline = trio.current_time()
    else:
        try:
            async with asyncio.timeout(None) as deadline:
                async for message in gen:
                    run.received.append(message)
                    if run.stops_at(message):
                        deadline.reschedule(asyncio.get_running_loop().time())
        except TimeoutError:
            pass
    run.abandon(gen)
    del gen
    await run.linger()


def _closable(gen: object) -> AsyncGenerator[Any, Any]:
    """What ``query()`` returns: an async generator (it has ``aclose()``), though the SDK annotates
    an AsyncIterator."""
    if not inspect.isasyncgen(gen):
        raise TypeError(f"query() returned {type(gen).__name__}, not an async generator: this pattern closes it")
    return gen


async def aclose_other_task(run: Run) -> None:
    """Iterate in the consumer's task, ``aclose()`` the generator from another task."""
    from claude_agent_sdk import query

    gen = _closable(query(prompt=PROMPT, **run.via))
    await run.iterate(gen)
    async with anyio.create_task_group() as tg:
        tg.start_soon(gen.aclose)
    run.abandon(gen)
    del gen
    await run.linger()


async def aclosing(run: Run) -> None:
    """``async with contextlib.aclosing(query(...))``: the generator closes in the consumer's task."""
    from claude_agent_sdk import query

    async with contextlib.aclosing(_closable(query(prompt=PROMPT, **run.via))) as gen:
        await run.iterate(gen)
    await run.linger()


async def exception_escapes_run(run: Run) -> None:
    """The loop body raises and nothing catches it: the error ends ``asyncio.run(main())``, its
    traceback keeping the generator's frame alive until the loop's own shutdown."""
    from claude_agent_sdk import query

    await run.iterate_then_raise(query(prompt=PROMPT, **run.via))


async def wait_for_loop(run: Run) -> None:
    """``asyncio.wait_for(agen.__anext__(), t)`` per message (a deadline in the consumer's task),
    with ``finally: await agen.aclose()``."""
    await _step_loop(run, in_new_task=False)


async def wait_for_new_task(run: Run) -> None:
    """The same loop with Python 3.11's ``wait_for``, which runs each ``__anext__`` in a task of
    its own: the generator's body runs in one task per message and is closed from the consumer's."""
    await _step_loop(run, in_new_task=True)


async def _step_loop(run: Run, *, in_new_task: bool) -> None:
    from claude_agent_sdk import query

    gen = _closable(query(prompt=PROMPT, **run.via))
    try:
        while True:
            box: list[Any] = []

            async def step() -> None:
                with anyio.fail_after(EXAMPLE_WALL_S):
                    box.append(await gen.__anext__())

            try:
                if in_new_task:
                    async with anyio.create_task_group() as tg:
                        tg.start_soon(step)
                else:
                    await step()
            except StopAsyncIteration:
                break
            except BaseExceptionGroup as group:  # the task's StopAsyncIteration, wrapped by the task group
                if not group.subgroup(StopAsyncIteration) or group.subgroup(lambda e: not isinstance(e, StopAsyncIteration)):
                    raise
                break
            run.received.append(box[0])
            if run.stops_at(box[0]):
                break
    finally:
        await gen.aclose()
    await run.linger()


async def client_split_tasks(run: Run) -> None:
    """ClaudeSDKClient ``connect()`` in one task, the turn and ``disconnect()`` in another."""
    from claude_agent_sdk import ClaudeSDKClient

    client = ClaudeSDKClient(**run.via)
    async with anyio.create_task_group() as tg:
        tg.start_soon(client.connect)
    await client.query(PROMPT)
    await _read_response(run, client)
    await client.disconnect()
    await run.linger()


async def client_context_exception(run: Run) -> None:
    """``async with ClaudeSDKClient(...)`` left by an exception raised in the loop body."""
    from claude_agent_sdk import ClaudeSDKClient

    try:
        async with ClaudeSDKClient(**run.via) as client:
            await client.query(PROMPT)
            response = client.receive_response()
            await run.iterate_then_raise(response)
    except ConsumerAbort:
        pass
    run.abandon(response)
    del response
    await run.linger()


async def _read_response(run: Run, client: Any) -> None:
    """``receive_response()`` to its natural end, or ``break`` at an earlier stop point."""
    response = client.receive_response()
    if run.example["stop"] == "result":
        async for message in response:
            run.received.append(message)
    else:
        await run.iterate(response)
        run.abandon(response)
    del response


#: In shrink order: Hypothesis shrinks towards the first, the seed's own flow.
PATTERNS: dict[str, Callable[[Run], Awaitable[None]]] = {
    f.__name__: f
    for f in (
        break_then_return,
        complete,
        break_then_drop,
        exception_in_body,
        move_on_after,
        native_timeout,
        aclose_other_task,
        aclosing,
        exception_escapes_run,
        wait_for_loop,
        wait_for_new_task,
        client_split_tasks,
        client_context_exception,
    )
}
CLIENT_PATTERNS = frozenset({"client_split_tasks", "client_context_exception"})
RETURNING = frozenset({"break_then_return", "complete", "exception_escapes_run"})  # return at once: ``after`` does not apply
#: Patterns that close every generator they open: when the garbage collector runs cannot matter.
CLOSING = frozenset({"complete", "aclosing", "wait_for_loop", "wait_for_new_task"})
#: The sweep's consumer that keeps running a little after a drop, so a stray cancellation can
#: land (the other returns at once: loop shutdown then meets the SDK's close mid-way).
SWEEP_AFTER = 3
#: The sweep's early stop: the consumer leaves its loop after the first message (the search draws
#: any stop up to MAX_ASSISTANTS).
EARLY_STOP = 0


# ---------------------------------------------------------------- examples
def build_script(pattern: str, assistants: int = 1, checkpoints: dict[str, int] | None = None,
                 delays: dict[str, float] | None = None) -> Script:
    """One successful turn; ClaudeSDKClient keeps stdout open until it closes the transport."""
    frames = [wire.system_init()] + [wire.assistant(f"hello {i}", message_id=f"msg_{i}") for i in range(assistants)]
    script = Script(checkpoints=dict(checkpoints or {}), delays=dict(delays or {}),
                    eof="close" if pattern in CLIENT_PATTERNS else "end_input")
    return script.turn(*frames, wire.result("hello"))


def make_example(pattern: str, *, stop: int | str = "result", gc_timing: str = "refcount", after: int = 0,
                 schedule: int | str = 0, assistants: int = 1, checkpoints: dict[str, int] | None = None,
                 delays: dict[str, float] | None = None) -> dict[str, Any]:
    return {
        "pattern": pattern,
        "stop": stop,
        "gc": gc_timing,
        "after": after,
        "schedule": schedule,
        "script": _script_json(pattern, assistants, tuple((checkpoints or {}).items()), tuple((delays or {}).items())),
    }


@functools.cache
def _script_json(pattern: str, assistants: int, checkpoints: tuple[tuple[str, int], ...],
                 delays: tuple[tuple[str, float], ...]) -> dict[str, Any]:
    """One JSON script per shape, shared by the examples that play it (examples are read, never
    changed): serialising a Script is most of what building an example costs, and the sweep's
    272 examples (asyncio) or 1,260 (trio) have 52 shapes."""
    return build_script(pattern, assistants, dict(checkpoints), dict(delays)).to_json()


def sweep_examples(backend: str) -> list[dict[str, Any]]:
    """Every pattern as users write it (stop at the result) x timing class x GC timing x whether
    the consumer returns at once or keeps running; a pattern that closes what it opens is swept
    once per timing and pace (when the GC runs cannot matter to it), one that returns at once
    once per timing and GC timing. Then every pattern stopping early at each timing, under trio
    once per row of :data:`pytest_agentsdk.ties.COVERING_TIES` (the judge does not run a row that
    would run as an earlier one did, :class:`pytest_agentsdk.ties.TieRuns`): there what a pattern shows
    hangs on how trio breaks several ties together (``move_on_after``, ``native_timeout`` and
    ``exception_escapes_run`` leave an unfinished generator to the collector, ``asyncgen_gc_warning``;
    ``unraisable`` on 0.1.44 and 0.1.48), so a sweep without them called patterns safe below some
    budget, or gained a manifestation with it."""
    at_result = [
        make_example(p, gc_timing=gc_timing, after=after, **timing)
        for p in PATTERNS
        for timing in TIMINGS.values()
        for gc_timing in (GC_TIMINGS[:1] if p in CLOSING else GC_TIMINGS)
        for after in ((0,) if p in RETURNING else (0, SWEEP_AFTER))
    ]
    orders: tuple[int | str, ...] = ties.COVERING_TIES if backend == "trio" else (0,)
    early = [make_example(p, stop=EARLY_STOP, schedule=order, **timing)
             for p in PATTERNS for timing in TIMINGS.values() for order in orders]
    return at_result + early


#: What ``_examples`` draws from, built once: a strategy built inside a draw is validated on every draw.
_PATTERN = st.sampled_from(list(PATTERNS))
_DELAYS = st.fixed_dictionaries({}, optional={op: st.sampled_from(seconds) for op, seconds in REAL_DELAYS.items()})
_STOP = st.one_of(st.just("result"), st.integers(0, MAX_ASSISTANTS))


@st.composite
def _examples(draw: st.DrawFn) -> dict[str, Any]:
    pattern = draw(_PATTERN)
    checkpoints = draw(transport_checkpoints(EXPLORED_OPS, MAX_CHECKPOINTS))
    delays = draw(_DELAYS)
    return make_example(
        pattern,
        stop=draw(_STOP),
        gc_timing=draw(st.sampled_from(GC_TIMINGS)),
        after=draw(st.integers(0, MAX_CHECKPOINTS)),
        schedule=draw(st.integers(0, MAX_SCHEDULE)),
        assistants=draw(st.integers(0, MAX_ASSISTANTS)),
        checkpoints=checkpoints,
        delays=delays,
    )


#: One strategy object for every judgement: validated once (``explore.warm_up``), not per search.
_EXAMPLES = _examples()


EXAMPLE_FIELDS = ("pattern", "stop", "gc", "after", "schedule", "script")


def _validated(example: Any) -> tuple[str, Script]:
    """The pattern and script of a (replayed) example; ScriptError names a bad field."""
    known_fields("example", example, EXAMPLE_FIELDS)
    pattern = one_of("example.pattern", example.get("pattern"), PATTERNS, missing="pattern" not in example)
    one_of("example.gc", example.get("gc"), GC_TIMINGS, missing="gc" not in example)
    stop = example.get("stop")
    if stop != "result":
        whole_number("example.stop (or 'result')", stop)
    whole_number("example.after", example.get("after"))
    schedule = example.get("schedule")
    if isinstance(schedule, str):
        ties.checked("example.schedule", schedule)
    else:
        whole_number("example.schedule (a seed, or 'ties:' and trio's tie-breaks)", schedule)
    script = Script.from_json(example.get("script"))
    turn = next((seg for seg in script.segments if seg.trigger.prompt == 0), None)
    if turn is None or not turn.frames or turn.frames[-1].get("type") != "result":
        # else the consumer's missing ResultMessage (result_missing) would be the example's doing, not the SDK's
        raise ScriptError("example.script: give one turn for prompt 0 that ends with a result frame, as every CLI turn does "
                          "(the examples check prints have one)")
    return pattern, script


def _expects_result(example: dict[str, Any], script: Script) -> bool:
    """Whether the consumer meant to read up to the ResultMessage (it did not stop earlier)."""
    stop = example["stop"]
    return stop == "result" or stop >= len(script.segments[0].frames) - 1


# ---------------------------------------------------------------- the scenario
def _observe(run: Run, pattern: str, wall: float) -> observe.Teardown:
    """Run the consumer pattern as a program would (``asyncio.run`` / ``trio.run``), observed."""

    async def main(teardown: observe.Teardown) -> None:
        run.kept = teardown.kept
        await PATTERNS[pattern](run)

    _, teardown = observe.run_observed(main, run.backend, wall=wall, pattern=pattern, schedule=run.example["schedule"],
                                       own_errors=(ConsumerAbort,), skip_idle=run.transport is not None)
    teardown.abandoned |= run.abandoned
    return teardown


def _outcome(run: Run, teardown: observe.Teardown, expects_result: bool, stall: str | None, evidence: dict[str, Any]) -> Outcome:
    from claude_agent_sdk import ResultMessage

    if expects_result:
        teardown.check_result(any(isinstance(m, ResultMessage) for m in run.received))
    return Outcome(
        manifestations=teardown.manifestations,
        hang=stall or teardown.hung,
        evidence={"pattern": run.example["pattern"], "received": [type(m).__name__ for m in run.received], **evidence, **teardown.to_json()},
        ties_used=teardown.ties_used,
    )


class CrossTaskClose(Scenario):
    name = "cross_task_close"
    quiet = observe.QUIET

    def examples(self, model: str | None) -> st.SearchStrategy[Any]:
        return _EXAMPLES

    def run_example(self, example: Any, backend: str, model: str | None) -> Outcome:
        pattern, script = _validated(example)
        run = Run(example, backend, transport=ScriptedTransport(script))
        teardown = _observe(run, pattern, EXAMPLE_WALL_S)
        assert run.transport is not None
        teardown.check_transport(run.transport)
        return _outcome(run, teardown, _expects_result(example, script), run.transport.log.stall,
                        {"transport": dict(run.transport.log.counts)})

    def sweep(self, model: str | None, backend: str) -> Sweep:
        early = f"every pattern stopping early x {len(TIMINGS)} timings"
        if backend == "trio":
            early += (f" x trio's tie-breaks, every way to break any {ties.STRENGTH} of the first {ties.TIE_DECISIONS} "
                      f"ties ({len(ties.COVERING_TIES)} rows of a covering array; a run that breaks m ties and no more "
                      "stands for every row that starts with its m flips)")
        return Sweep(sweep_examples(backend), f"{len(PATTERNS)} patterns x {len(TIMINGS)} timings ({', '.join(TIMINGS)}) x "
                                              f"the GC timings and paces that matter to each (up to {len(GC_TIMINGS)} x 2), then {early}")

    def group(self, example: Any) -> str | None:
        return example["pattern"]

    def on_cli(self, cli: Cli) -> Scenario:
        return RealCliCrossTaskClose(cli)

    def annotate(self, result: Result, sdk: SdkInfo) -> None:
        """Per-pattern safety, the table users asked for, under the verdict."""
        patterns = result.evidence.get("patterns", {})
        result.evidence["safe_patterns"] = [p for p, e in patterns.items() if e["safe"]]
        result.notes = [f"safe consumer patterns: {', '.join(result.evidence['safe_patterns']) or 'none'}"] + [
            f"{entry['status']}: {p} ({', '.join(entry['manifestations'])})" for p, entry in patterns.items() if not entry["safe"]
        ]


# ---------------------------------------------------------------- over the real CLI
#: The real transport takes real time on its own: every pattern as users write it, and the GC
#: timings where the pattern leaves its generator to the collector.
def real_sweep() -> list[dict[str, Any]]:
    return [{"pattern": p, "stop": "result", "gc": gc_timing, "after": 0, "schedule": 0}
            for p in PATTERNS for gc_timing in (GC_TIMINGS[:1] if p in CLOSING | RETURNING else GC_TIMINGS)]


class RealCliCrossTaskClose(realcli.RealCliStories, CrossTaskClose):
    """Bug 1 over the real ``SubprocessCLITransport`` and the real CLI: a fix to how the SDK
    closes, reads or reaps the CLI process is judged too. ``transport_not_closed`` here means the
    CLI process was still running when the program's loop ended (the harness kills it; an SDK's
    atexit reaper may catch it at interpreter exit, but a long-running program accumulates them)."""

    story_axes = f"{len(PATTERNS)} patterns x the GC timings that matter"

    def stories(self) -> list[dict[str, Any]]:
        return real_sweep()

    def run_example(self, example: Any, backend: str, model: str | None) -> Outcome:
        example = self.story(example)
        session = realcli.CliSession(self.cli, [Reply([model_server.text("hello")])]).__enter__()
        run: Run | None = None
        try:
            run = Run(example, backend, options=session.options())
            teardown = _observe(run, example["pattern"], realcli.STORY_WALL_S)
        finally:
            # the program has ended, then exits: what its leftovers print when the CLI they watch
            # goes away is what users see at exit
            with observe.TeardownWatch() as after:
                session.__exit__(None, None, None)
                if run is not None:
                    run.kept.clear()
                session.program_exits()
        teardown.events += after.teardown.events
        session.raise_for_unscripted()
        if session.left_running:
            teardown.record(observe.TRANSPORT_NOT_CLOSED, f"the CLI process outlived the program ({len(session.left_running)} killed by the harness)")
        return _outcome(run, teardown, example["stop"] == "result", None, {"cli": self.cli.describe()})

    def annotate(self, result: Result, sdk: SdkInfo) -> None:
        super().annotate(result, sdk)
        result.notes.insert(0, f"played by the real CLI over the SDK's SubprocessCLITransport: {self.cli.describe()}")


SCENARIO = CrossTaskClose()
