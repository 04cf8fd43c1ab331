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
import gc
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
from hypothesis import strategies as st

from .. import observe, wire
from ..compat import SdkInfo
from ..explore import EXAMPLE_WALL_S, Outcome, Scenario, Sweep, transport_checkpoints
from ..script import Script, ScriptError, whole_number
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


class ConsumerAbort(Exception):
    """The consumer's own error, raised in its loop body (and handled by the consumer)."""


@dataclass
class Run:
    """One consumer's run: what it stops at, what it received, where its generator goes."""

    example: dict[str, Any]
    transport: ScriptedTransport
    backend: str
    received: list[Any] = field(default_factory=list)
    abandoned: set[str] = field(default_factory=set)  # generators this consumer let go unfinished
    kept: list[Any] = field(default_factory=list)  # outlives main: closed by the loop's own shutdown

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

    gen = query(prompt=PROMPT, transport=run.transport)
    await run.iterate(gen)
    run.abandon(gen)
    del gen


async def complete(run: Run) -> None:
    """``async for message in query(...)`` to the end of the stream."""
    from claude_agent_sdk import query

    async for message in query(prompt=PROMPT, transport=run.transport):
        run.received.append(message)


async def break_then_drop(run: Run) -> None:
    """``break`` at the stop point, drop the generator, keep running (the GC finalizer path)."""
    await break_then_return(run)
    await run.linger()


async def exception_in_body(run: Run) -> None:
    """The loop body raises; the consumer handles its own error outside the loop."""
    from claude_agent_sdk import query

    gen = query(prompt=PROMPT, transport=run.transport)
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
        gen = query(prompt=PROMPT, transport=run.transport)
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

    gen = query(prompt=PROMPT, transport=run.transport)
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


async def aclose_other_task(run: Run) -> None:
    """Iterate in the consumer's task, ``aclose()`` the generator from another task."""
    from claude_agent_sdk import query

    gen = query(prompt=PROMPT, transport=run.transport)
    await run.iterate(gen)
    async with anyio.create_task_group() as tg:
        tg.start_soon(gen.aclose)
    run.abandon(gen)
    del gen
    await run.linger()


async def aclosing(run: Run) -> None:
    """``async with contextlib.aclosing(query(...))``: the generator closes in the consumer's task."""
    from claude_agent_sdk import query

    async with contextlib.aclosing(query(prompt=PROMPT, transport=run.transport)) as gen:
        await run.iterate(gen)
    await run.linger()


async def client_split_tasks(run: Run) -> None:
    """ClaudeSDKClient ``connect()`` in one task, the turn and ``disconnect()`` in another."""
    from claude_agent_sdk import ClaudeSDKClient

    client = ClaudeSDKClient(transport=run.transport)
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
        async with ClaudeSDKClient(transport=run.transport) as client:
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
        client_split_tasks,
        client_context_exception,
    )
}
CLIENT_PATTERNS = frozenset({"client_split_tasks", "client_context_exception"})
RETURNING = frozenset({"break_then_return", "complete"})  # return at once: ``after`` does not apply
#: The deterministic sweep: each pattern as users write it (stop at the result, refcount GC),
#: with a consumer that keeps running a little after a drop, so a stray cancellation can land.
SWEEP_AFTER = 3


# ---------------------------------------------------------------- examples
def build_script(pattern: str, assistants: int = 1, checkpoints: dict[str, int] | None = None) -> Script:
    """One successful turn; ClaudeSDKClient keeps stdout open until it closes the transport."""
    frames = [wire.system_init()] + [wire.assistant(f"hello {i}", message_id=f"msg_{i}") for i in range(assistants)]
    script = Script(checkpoints=dict(checkpoints or {}), eof="close" if pattern in CLIENT_PATTERNS else "end_input")
    return script.turn(*frames, wire.result("hello"))


def make_example(pattern: str, *, stop: int | str = "result", gc_timing: str = "refcount", after: int = 0,
                 schedule: int = 0, assistants: int = 1, checkpoints: dict[str, int] | None = None) -> dict[str, Any]:
    return {
        "pattern": pattern,
        "stop": stop,
        "gc": gc_timing,
        "after": after,
        "schedule": schedule,
        "script": build_script(pattern, assistants, checkpoints).to_json(),
    }


def sweep_examples() -> list[dict[str, Any]]:
    return [make_example(p, after=0 if p in RETURNING else SWEEP_AFTER) for p in PATTERNS]


@st.composite
def _examples(draw: st.DrawFn) -> dict[str, Any]:
    pattern = draw(st.sampled_from(list(PATTERNS)))
    checkpoints = draw(transport_checkpoints(EXPLORED_OPS, MAX_CHECKPOINTS))
    return make_example(
        pattern,
        stop=draw(st.one_of(st.just("result"), st.integers(0, MAX_ASSISTANTS))),
        gc_timing=draw(st.sampled_from(GC_TIMINGS)),
        after=draw(st.integers(0, MAX_CHECKPOINTS)),
        schedule=draw(st.integers(0, MAX_SCHEDULE)),
        assistants=draw(st.integers(0, MAX_ASSISTANTS)),
        checkpoints=checkpoints,
    )


def _validated(example: Any) -> tuple[str, Script]:
    """The pattern and script of a (replayed) example; ScriptError names a bad field."""
    if not isinstance(example, dict):
        raise ScriptError("example: expected a JSON object with pattern, stop, gc, after, schedule, script")
    pattern = example.get("pattern")
    if pattern not in PATTERNS:
        raise ScriptError(f"example.pattern: {pattern!r} is not one of {', '.join(PATTERNS)}")
    if example.get("gc") not in GC_TIMINGS:
        raise ScriptError(f"example.gc: {example.get('gc')!r} is not one of {', '.join(GC_TIMINGS)}")
    stop = example.get("stop")
    if stop != "result":
        whole_number("example.stop (or 'result')", stop)
    for key in ("after", "schedule"):
        whole_number(f"example.{key}", example.get(key))
    return pattern, Script.from_json(example.get("script"))


def _expects_result(example: dict[str, Any], script: Script) -> bool:
    """Whether the consumer meant to read up to the ResultMessage (it did not stop earlier)."""
    stop = example["stop"]
    return stop == "result" or stop >= len(script.segments[0].frames) - 1


# ---------------------------------------------------------------- the scenario
class CrossTaskClose(Scenario):
    name = "cross_task_close"
    quiet = observe.QUIET

    def examples(self, model: str | None) -> st.SearchStrategy[Any]:
        return _examples()

    def run_example(self, example: Any, backend: str, model: str | None) -> Outcome:
        from claude_agent_sdk import ResultMessage

        pattern, script = _validated(example)
        run = Run(example, ScriptedTransport(script), backend)

        async def main(teardown: observe.Teardown) -> None:
            run.kept = teardown.kept
            await PATTERNS[pattern](run)

        _, teardown = observe.run_observed(main, backend, wall=EXAMPLE_WALL_S, pattern=pattern, schedule=example["schedule"])
        teardown.abandoned |= run.abandoned
        teardown.check_transport(run.transport)
        if _expects_result(example, script):
            teardown.check_result(any(isinstance(m, ResultMessage) for m in run.received))
        hang = run.transport.log.stall or teardown.hung
        return Outcome(
            manifestations=teardown.manifestations,
            hang=hang,
            evidence={
                "pattern": pattern,
                "received": [type(m).__name__ for m in run.received],
                "transport": dict(run.transport.log.counts),
                **teardown.to_json(),
            },
        )

    def sweep(self, model: str | None) -> Sweep:
        return Sweep(sweep_examples(), f"{len(PATTERNS)} patterns")

    def group(self, example: Any) -> str | None:
        return example["pattern"]

    def annotate(self, result: Result, sdk: SdkInfo) -> None:
        """Per-pattern safety, the table users asked for, under the verdict."""
        patterns = result.evidence.get("patterns", {})
        result.evidence["safe_patterns"] = [p for p, e in patterns.items() if e["safe"]]
        result.notes = [f"safe consumer patterns: {', '.join(result.evidence['safe_patterns']) or 'none'}"] + [
            f"{entry['status']}: {p} ({', '.join(entry['manifestations'])})" for p, entry in patterns.items() if not entry["safe"]
        ]


SCENARIO = CrossTaskClose()
