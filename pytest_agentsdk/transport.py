"""ScriptedTransport: a real ``claude_agent_sdk.Transport`` that plays a Script to the real SDK.

No SDK internals are patched: the SDK drives this object exactly as it drives the subprocess
transport (connect, write the initialize request and prompts, read stdout, end_input, close).
Everything here uses anyio primitives only, so one class serves asyncio and trio.

Two properties matter for the oracles:

* every emitted frame is logged with its provenance (segment, cause, prompts written before it);
* it never hangs: when the script has nothing left to release and nothing can happen any more
  (every task blocked, no timer due within ``stall_timeout``, no worker thread busy: see
  :mod:`pytest_agentsdk.idle`), the stdout reader raises :class:`ScriptStalled` with a diagnosis
  naming the missing piece, which the SDK hands to the consumer, so a deadlocked candidate is a
  ``hang`` verdict in milliseconds while a consumer that sleeps or waits on a thread is not stalled.
"""

from __future__ import annotations

import contextvars
import enum
import json
import logging
import math
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

import anyio
import anyio.lowlevel
from claude_agent_sdk import Transport

from . import idle, wire
from .script import Script, ScriptError, Segment

#: A timer due later than this does not hold a stall off (the SDK's 60 s control timeout, a test's
#: own ``fail_after``), and a wait no one can time (a socket) holds it off this long at most.
STALL_TIMEOUT_S = 2.0
#: Scheduler passes to wait for a change before starting the (costlier) all-blocked watcher:
#: the SDK writes the next line within one pass on asyncio and two on trio.
FAST_PATH_CHECKPOINTS = 2
_STALL_TIMEOUT_KNOBS = "(@pytest.mark.agentsdk(stall_timeout=S), ScriptedTransport(stall_timeout=S))"


#: The transport whose stall the SDK's reader task is about to log (set in that task's context).
_raising_stall: contextvars.ContextVar[ScriptedTransport | None] = contextvars.ContextVar("_raising_stall", default=None)


class _QuietStallEcho(logging.Filter):
    """Drops the SDK's "Fatal error in message reader" log of a stall a ``report_stall_once``
    transport raised: the consumer's error reports that stall already."""

    def filter(self, record: logging.LogRecord) -> bool:
        transport = _raising_stall.get()
        return transport is None or not transport.log.stall or transport.log.stall not in record.getMessage()


#: The logger of the SDK's reader task, on every release.
logging.getLogger("claude_agent_sdk._internal.query").addFilter(_QuietStallEcho())


class _Wait(enum.Enum):
    """What :meth:`ScriptedTransport._ready_frame` says when stdout has nothing to give yet."""

    WAIT = enum.auto()


class ScriptedCLIError(Exception):
    """Raised into the SDK's reader when the scripted CLI cannot go on."""


class ScriptStalled(ScriptedCLIError):
    """Every task is blocked and the script has nothing left to release."""


@dataclass(slots=True)
class Emission:
    """One frame the scripted CLI wrote to stdout, with its provenance."""

    seq: int
    frame: dict[str, Any]
    segment: str | None  # None for replies to SDK control requests
    cause: str  # "prompt:k", "task:ID", "control", ...
    index: int  # position in its segment
    prompts_before: int  # user prompts written before this frame was emitted


@dataclass(slots=True)
class Write:
    """One line the SDK wrote to the CLI's stdin."""

    seq: int
    data: Any  # the parsed JSON, or the raw text when it did not parse
    prompts_before: int
    after_end_input: bool
    after_close: bool

    @property
    def type(self) -> str | None:
        return self.data.get("type") if isinstance(self.data, dict) else None


@dataclass(slots=True)
class _Cursor:
    segment: Segment
    next: int = 0
    wait: int = 0  # checkpoints before the next frame is due
    awaiting: str | None = None  # request_id of a CLI->SDK request still unanswered
    done: bool = False  # every frame emitted: kept as next moves, read for every frame of a session


@dataclass
class TransportLog:
    """Everything that crossed the scripted CLI's pipes; ``seq`` orders writes and emissions together."""

    emissions: list[Emission] = field(default_factory=list)
    writes: list[Write] = field(default_factory=list)
    answers: dict[str, dict[str, Any]] = field(default_factory=dict)  # our request_id -> SDK's reply
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(("connect", "end_input", "close"), 0))
    stall: str | None = None

    @property
    def prompts(self) -> list[Write]:
        return [w for w in self.writes if w.type == "user"]

    def consumer_frames(self, parse: Callable[[dict[str, Any]], Any]) -> list[tuple[Emission, Any]]:
        """Every emitted frame the release hands to its consumer, with the message it becomes
        (``parse`` is the release's own parser; frames its reader consumes are left out)."""
        out = []
        for emission in self.emissions:
            if emission.frame.get("type") in wire.READER_CONSUMED_TYPES:
                continue
            try:
                message = parse(emission.frame)
            except Exception:  # the consumer gets an exception for it, not a message
                continue
            if message is not None:
                out.append((emission, message))
        return out


@dataclass(frozen=True)
class _Plan:
    """What a script's triggers release, indexed once per script rather than per session
    (:meth:`Script.derived`). Shared by every session of the script, so read-only: a transport
    that adds triggers copies what it changes."""

    by_prompt: Mapping[int, tuple[Segment, ...]]  # prompt index -> segments it releases
    after: Mapping[tuple[str, int], tuple[Segment, ...]]  # (segment, frame) -> segments it releases
    on_block: tuple[Segment, ...]
    paused_ops: frozenset[str]  # operations the script gives checkpoints or a delay

    @classmethod
    def of(cls, script: Script) -> _Plan:
        by_prompt: dict[int, list[Segment]] = {}
        after: dict[tuple[str, int], list[Segment]] = {}
        for seg in script.segments:
            if seg.trigger.prompt is not None:
                by_prompt.setdefault(seg.trigger.prompt, []).append(seg)
            if seg.trigger.after is not None:
                target, index = seg.trigger.after
                after.setdefault((target, index), []).append(seg)
        paused = {op for op, count in script.checkpoints.items() if count} | {op for op, s in script.delays.items() if s}
        return cls(MappingProxyType({k: tuple(v) for k, v in by_prompt.items()}), MappingProxyType({k: tuple(v) for k, v in after.items()}),
                   tuple(s for s in script.segments if s.trigger.on_block), frozenset(paused))


class ScriptedTransport(Transport):
    """Plays ``script`` to the SDK for one session. Pass it as ``query(transport=...)`` or
    ``ClaudeSDKClient(transport=...)``; inspect :attr:`log` afterwards.

    ``stall_timeout``: see :data:`STALL_TIMEOUT_S`. ``script_name``: how the test refers to the
    script, for diagnoses ("add `agentsdk_script.turn(...)`"). ``report_stall_once``: drop the SDK's
    own "Fatal error in message reader" log of this transport's stall (the consumer's error has it).
    ``stall_hint``: a last sentence for a stall's diagnosis (``agentsdk_cli``: how sessions take
    their scripts).
    """

    #: stdout ended by the CLI's own rule (stdin closed, nothing due), not by the SDK closing the transport
    _ended_itself = False

    def __init__(self, script: Script, *, stall_timeout: float = STALL_TIMEOUT_S, script_name: str = "the script",
                 report_stall_once: bool = False, stall_hint: str = "") -> None:
        self.script = script  # may still be extended until connect(), which validates it
        self.log = TransportLog()
        self.stall_timeout = stall_timeout
        self.script_name = script_name
        self.report_stall_once = report_stall_once
        self.stall_hint = stall_hint
        self._active: list[_Cursor] = []
        self._delayed: list[tuple[int, _Cursor, bool]] = []  # (checkpoints left, cursor, preempt)
        self._pending_on_block: list[Segment] = []
        self._released_by_prompt: Mapping[int, tuple[Segment, ...]] = {}  # the plan's, shared: read-only
        self._released_after: Mapping[tuple[str, int], tuple[Segment, ...]] = {}  # the plan's, shared: read-only
        self._paused_ops: frozenset[str] = frozenset()  # operations the script gives checkpoints or a delay
        self._released: set[str] = set()
        self._control_out: list[dict[str, Any]] = []
        self._unanswered_sdk_requests: dict[str, str] = {}  # request_id -> subtype, replies scripted 'never'
        self._prompts = 0
        self._end_input = False
        self._closed = False
        self._seq = 0
        self._sleeping = 0
        self._change_count = 0  # counts every change stdin or close makes, for a reader polling for one
        self._change_event: anyio.Event | None = None  # made by a reader about to block, set by the next change
        self._stalled: anyio.Event | None = None
        self._quiet: idle.WakeSources | None = None  # what the loop showed when nothing could happen any more
        self._plan: _Plan | None = None  # what connect() planned to play, for a stall's diagnosis

    # ------------------------------------------------------------ Transport API
    async def connect(self) -> None:
        if self.log.counts["connect"]:
            raise ScriptedCLIError(
                "this ScriptedTransport already played a session; a transport plays one session: create one per "
                "session, or let agentsdk_cli route every session the code opens"
            )
        plan = self._plan = self.script.derived(_Plan.of)  # validates the script first
        self._pending_on_block = list(plan.on_block)
        self._released_by_prompt = plan.by_prompt
        self._released_after = plan.after
        self._paused_ops = plan.paused_ops
        self.log.counts["connect"] += 1
        if "connect" in self._paused_ops:
            await self._suspend("connect")

    async def write(self, data: str) -> None:
        if "write" in self._paused_ops:
            await self._suspend("write")
        for line in data.splitlines():
            if line and not line.isspace():
                self._on_stdin_line(line)
        self._notify()

    def read_messages(self) -> AsyncIterator[dict[str, Any]]:
        return self._stdout()

    async def end_input(self) -> None:
        if "end_input" in self._paused_ops:
            await self._suspend("end_input")
        if not self._end_input:
            self.log.counts["end_input"] += 1
            self._end_input = True
            self._notify()

    async def close(self) -> None:
        self.log.counts["close"] += 1
        self._closed = True
        self._notify()
        if "close" in self._paused_ops:
            await self._suspend("close")

    def is_ready(self) -> bool:
        return self.log.counts["connect"] > 0 and not self._closed

    @property
    def stalled(self) -> anyio.Event:
        """Set when the scripted CLI diagnoses a stall, for drivers that wait off the stream."""
        if self._stalled is None:
            self._stalled = anyio.Event()
            if self.log.stall:
                self._stalled.set()
        return self._stalled

    # ------------------------------------------------------------ stdin
    def _on_stdin_line(self, line: str) -> None:
        try:
            data: Any = json.loads(line)
        except json.JSONDecodeError:
            data = line
        self._seq += 1
        write = Write(self._seq, data, self._prompts, self._end_input, self._closed)
        self.log.writes.append(write)
        kind = write.type
        if kind == "control_request":
            self._answer_sdk_request(data)
        elif kind == "user":
            self._prompts += 1
            for seg in self._released_by_prompt.get(self._prompts - 1, ()):
                self._release(seg, preempt=False)
        elif kind == "control_response":
            request_id = (data.get("response") or {}).get("request_id", "")
            self.log.answers[request_id] = data["response"]
            for cursor in self._active:
                if cursor.awaiting == request_id:
                    cursor.awaiting = None

    def _answer_sdk_request(self, data: dict[str, Any]) -> None:
        request_id = data.get("request_id", "")
        subtype = (data.get("request") or {}).get("subtype", "")
        reply = self.script.control_reply(subtype)
        if reply.never:
            self._unanswered_sdk_requests[request_id] = subtype
        else:
            self._control_out.append(wire.control_reply_frame(request_id, reply.payload, reply.error))

    # ------------------------------------------------------------ stdout
    async def _stdout(self) -> AsyncIterator[dict[str, Any]]:
        __tracebackhide__ = True  # a stall's traceback in pytest ends at the SDK's read, then says why
        paused = "read" in self._paused_ops  # the SDK reads after connect(), which planned the script
        while True:
            if paused:
                await self._suspend("read")
            frame = self._ready_frame()
            while frame is _Wait.WAIT:
                await self._await_progress()
                frame = self._ready_frame()
            if frame is None:
                return
            yield frame

    def _ready_frame(self) -> dict[str, Any] | None | Literal[_Wait.WAIT]:
        """The next frame stdout can give now, None at EOF, WAIT if it must wait for one."""
        while not self._closed:
            if self._control_out:
                return self._emit(self._control_out.pop(0), None, "control", 0)
            for cursor in self._active:
                if not cursor.wait and cursor.awaiting is None and not cursor.done:
                    return self._emit_from(cursor)
            if not self._stdout_may_close():
                return _Wait.WAIT
            if not self._pending_on_block:
                self._ended_itself = True
                return None
            # what the CLI still had to say before it exits
            self._release(self._pending_on_block[0], preempt=False)
        return None

    async def _await_progress(self) -> None:
        """Let a checkpoint pass, a change come or an on_block segment go; raise ScriptStalled if none can."""
        __tracebackhide__ = True
        if self._delayed or self._gap_running():
            await anyio.lowlevel.checkpoint()
            self._tick()
            return
        if await self._wait_for_change():
            return
        if self._pending_on_block:
            self._release(self._pending_on_block[0], preempt=False)
            return
        self.log.stall = self._diagnose()
        if self._stalled is not None:
            self._stalled.set()
        if self.report_stall_once:
            _raising_stall.set(self)  # seen by _QuietStallEcho in the SDK's reader task, which logs it next
        raise ScriptStalled(self.log.stall)

    def _gap_running(self) -> bool:
        """A released segment waits out its ``gap`` before its next frame."""
        for cursor in self._active:
            if cursor.wait and not cursor.done:
                return True
        return False

    def _stdout_may_close(self) -> bool:
        """The CLI's rule: stdin closed and nothing released is still due."""
        if not self._end_input or self._delayed or self.script.eof != "end_input":
            return False
        for cursor in self._active:
            if not cursor.done:
                return False
        return True

    def _emit_from(self, cursor: _Cursor) -> dict[str, Any]:
        seg = cursor.segment
        index = cursor.next
        cursor.next = index + 1
        cursor.done = index + 1 >= len(seg.frames)
        cursor.wait = seg.gap
        frame = wire.stamp(seg.frames[index], f"{seg.name}#{index}", self.script.session_id)
        if frame["type"] == "control_request":
            cursor.awaiting = frame.get("request_id")
        if self._released_after:
            for other in self._released_after.get((seg.name, index), ()):
                self._release(other, preempt=True)
        return self._emit(frame, seg.name, seg.cause, index)

    def _emit(self, frame: dict[str, Any], segment: str | None, cause: str, index: int) -> dict[str, Any]:
        """Record ``frame`` as written to stdout now, with its provenance; a reply to an SDK control
        request has no segment, and its cause is "control"."""
        self._seq += 1
        self.log.emissions.append(Emission(self._seq, frame, segment, cause, index, self._prompts))
        return frame

    def _release(self, seg: Segment, *, preempt: bool) -> None:
        if seg.name in self._released:
            return
        self._released.add(seg.name)
        if seg in self._pending_on_block:
            self._pending_on_block.remove(seg)
        cursor = _Cursor(seg, done=not seg.frames)
        if seg.trigger.delay:
            self._delayed.append((seg.trigger.delay, cursor, preempt))
        else:
            self._activate(cursor, preempt)
        self._notify()

    def _activate(self, cursor: _Cursor, preempt: bool) -> None:
        if preempt:
            self._active.insert(0, cursor)
        else:
            self._active.append(cursor)

    def _tick(self) -> None:
        for cursor in self._active:
            cursor.wait = max(0, cursor.wait - 1)
        still = []
        for left, cursor, preempt in self._delayed:
            if left <= 1:
                self._activate(cursor, preempt)
            else:
                still.append((left - 1, cursor, preempt))
        self._delayed = still

    async def _wait_for_change(self) -> bool:
        """Wait until stdin/close changes something (True) or nothing can happen any more (False)."""
        seen = self._change_count
        for _ in range(FAST_PATH_CHECKPOINTS):  # the SDK usually answers within a scheduler pass
            await anyio.lowlevel.checkpoint()
            if self._change_count != seen:
                return True
        changed = self._change_event = anyio.Event()

        async def watch() -> None:
            self._quiet = await idle.wait_until_nothing_can_happen(self.stall_timeout, busy=lambda: self._sleeping > 0)
            tg.cancel_scope.cancel()

        async with anyio.create_task_group() as tg:
            tg.start_soon(watch)
            await changed.wait()
            tg.cancel_scope.cancel()
        return changed.is_set()

    def _notify(self) -> None:
        self._change_count += 1
        if self._change_event is not None:
            self._change_event.set()
            self._change_event = None

    # ------------------------------------------------------------ helpers
    async def _suspend(self, op: str) -> None:
        """The checkpoints and delay the script gives ``op`` (callers skip ops it gives none)."""
        for _ in range(self.script.checkpoints.get(op, 0)):
            await anyio.lowlevel.checkpoint()
        if seconds := self.script.delays.get(op):
            self._sleeping += 1  # a scripted delay is not a stall, however long
            try:
                await anyio.sleep(seconds)
            finally:
                self._sleeping -= 1

    def _diagnose(self) -> str:
        """What the stalled session waits for, naming the missing piece of the script."""
        waits = [changed] if (changed := self._changed_since_connect()) else []
        if self._unanswered_sdk_requests:
            subtypes = sorted(set(self._unanswered_sdk_requests.values()))
            waits.append(f"the SDK awaits a reply to {', '.join(subtypes)}, scripted never to come "
                         f"({', '.join(f'reply({s!r}, never=True)' for s in subtypes)})")
        for cursor in self._active:
            if cursor.awaiting:
                waits.append(f"segment '{cursor.segment.name}' awaits the SDK's answer to {cursor.awaiting}")
        if not waits:
            waits.append(self._missing_output())
        held = [
            f"'{s.name}' ({len(s.frames)} frames, released when {s.trigger.describe()})"
            for s in self.script.segments
            if s.name not in self._released
        ]
        timer_in = self._timer_in
        said = any(_STALL_TIMEOUT_KNOBS in wait for wait in waits)
        later = (f"; the next timer is due in {timer_in:.1f} s: if the code waits that long on purpose, raise stall_timeout "
                 f"{_STALL_TIMEOUT_KNOBS}" if timer_in < math.inf and not said else "")
        return (
            f"scripted CLI stalled: {'; '.join(waits)}; nothing can happen any more (every task blocked, no "
            f"thread busy, no timer due within {self.stall_timeout:g} s{later}); prompts written: {self._prompts}; "
            f"end_input: {'yes' if self._end_input else 'no'}; script still holds: {', '.join(held) if held else 'nothing'}"
            + (f"; {self.stall_hint}" if self.stall_hint else "")
        )

    @property
    def _timer_in(self) -> float:
        """Seconds to the next timer the loop held when the stall was found (inf: none)."""
        return self._quiet.timer_in if self._quiet else math.inf

    def _changed_since_connect(self) -> str | None:
        """Why the script no longer is what this session plays: it changed after connect()."""
        try:
            plan = self.script.derived(_Plan.of)
        except ScriptError as exc:
            return f"the script was changed after this session connected, and no longer passes ({exc})"
        if self._plan is None or plan == self._plan:  # by value: a script the memo cannot keep is planned anew each time
            return None
        return ("the script was changed after this session connected: a session plays the script as it was at connect(); "
                f"fill {self.script_name} before the code connects")

    def _turns_of(self, prompt: int) -> tuple[list[Segment], list[str]]:
        """The segments prompt ``prompt`` releases, and the names of those that hold no result frame."""
        turns = [s for s in self.script.segments if s.trigger.prompt == prompt]
        return turns, [s.name for s in turns if not any(f.get("type") == "result" for f in s.frames)]

    def _missing_output(self) -> str:
        if not self._prompts:
            return "the SDK has written no prompt"
        last = self._prompts - 1
        waiting = f"the SDK awaits more output after prompt {last}"
        turns, unended = self._turns_of(last)
        if not turns:
            return f"{waiting}: prompt {last} was never scripted: add {self._how_to_add('turn(...)')}"
        said_all = all(c.done for c in self._active) and not self._delayed
        if said_all and unended:
            return f"{waiting}: {unended[0]} has no result frame: end it with wire.result(...)"
        if said_all and self._end_input and self.script.eof == "close":
            return (f"{waiting}: eof='close' with query(): the SDK closed stdin and waits for stdout to end, which "
                    "eof='close' keeps open until the SDK closes the transport; use eof='end_input' (the default)")
        if said_all and not self._end_input:
            turn = turns[-1].name
            result_at = next(i for i, f in enumerate(turns[-1].frames) if f.get("type") == "result")
            event = self._how_to_add(f"event('done', wire.task_notification(...), after=({turn!r}, {result_at}))")
            if unreported := self._tasks_unreported():
                return (f"{waiting}: its turn was played to its result, and task {unreported[0]} the script started never "
                        f"reports its end; if the code waits for that, script it: {event}")
            timer_in = self._timer_in
            if (next_turns := self._turns_of(self._prompts)[0]) and timer_in < math.inf:
                above = math.ceil(timer_in * 10) / 10  # rounded up: a stall_timeout of that much outwaits the timer
                return (f"{waiting}: its turn was played to its result, and a timer is due in {timer_in:.1f} s while prompt "
                        f"{self._prompts}, which '{next_turns[0].name}' answers, is not written: if the code sleeps that long "
                        f"between turns, raise stall_timeout above {above:.1f} s {_STALL_TIMEOUT_KNOBS}; if it reads on "
                        f"for something, script it (a background task's notification: {event})")
            return (f"{waiting}: its turn was played to its result and the code reads on; script what it waits for "
                    f"(a background task's notification: {event})")
        return waiting

    def _tasks_unreported(self) -> list[str]:
        """Tasks whose start was emitted and whose end (a terminal status) never was."""
        started, ended = [], set()
        for emission in self.log.emissions:
            if wire.kind(emission.frame) == "system/task_started":
                started.append(emission.frame.get("task_id"))
            elif wire.task_status(emission.frame) is not None:
                ended.add(emission.frame.get("task_id"))
        return [str(task) for task in started if task not in ended]

    def _how_to_add(self, call: str) -> str:
        name = self.script_name
        return f"`{name}.{call}`" if name.isidentifier() else f"a `.{call}` to {name}"

    # ------------------------------------------------------------ after the run
    def undelivered(self) -> list[str]:
        """Scripted frames (of non-optional segments) that never reached stdout."""
        emitted = {(e.segment, e.index) for e in self.log.emissions}
        return [
            f"{s.name}[{i}] {wire.kind(f)} (released when {s.trigger.describe()})"
            for s in self.script.segments
            if not s.optional
            for i, f in enumerate(s.frames)
            if (s.name, i) not in emitted
        ]

    def results_missing(self) -> str | None:
        """Why the code never met a ResultMessage a real CLI would have sent it: stdout ended by the
        CLI's own rule while prompts still had no result frame (``query()`` then ends quietly; a
        client session stalls instead), in prompt order, as the CLI answers them. None when each got
        one, or when the code closed the session itself (it left the turn on purpose)."""
        if not self._ended_itself:
            return None
        # a turn's own result answers its prompt; a result of another segment (an event's), the first prompt left
        prompt_of = {s.name: s.trigger.prompt for s in self.script.segments if s.trigger.prompt is not None}
        results = [e.segment for e in self.log.emissions if e.frame.get("type") == "result"]
        answered = {prompt_of[name] for name in results if name in prompt_of}
        spare = sum(1 for name in results if name not in prompt_of)
        unanswered = [k for k in range(self._prompts) if k not in answered][spare:]
        if not unanswered:
            return None
        gaps = []
        for prompt in unanswered:
            turns, unended = self._turns_of(prompt)
            gaps.append(f"prompt {prompt} was never scripted" if not turns else f"{', '.join(unended) or turns[0].name} has no result frame")
        return (f"{self.script_name}: stdout ended with {len(unanswered)} prompt(s) unanswered by a result frame "
                f"({'; '.join(gaps)}): a real CLI ends every turn with one, so the code never met the ResultMessage it will meet; "
                "end each turn with wire.result(...) (a script of a CLI that dies mid-turn means it: filter pytest_agentsdk.ScriptWarning)")

    def unexpected_writes(self) -> list[Write]:
        """Writes the CLI would not understand: bad JSON or an unknown message type."""
        return [w for w in self.log.writes if w.type not in ("user", "control_request", "control_response")]

    def assert_played(self) -> None:
        """Fail if scripted frames were never delivered, the SDK wrote something unexpected or the
        session stalled."""
        problems = []
        if not self.log.counts["connect"] and self.script.segments:  # scripted for a session that never came
            raise AssertionError(
                "ScriptedTransport: never connected: the code under test did not use it; pass it as query(transport=...) or "
                "ClaudeSDKClient(transport=...) (for code that opens its own sessions, script agentsdk_cli instead)")
        if missing := self.undelivered():
            problems.append(
                f"{len(missing)} scripted frame(s) never delivered: {'; '.join(missing[:5])}"
                " (send the prompt that releases them, or mark the segment optional=True)"
            )
        if bad := self.unexpected_writes():
            problems.append(f"unexpected writes to the CLI: {[w.data for w in bad][:3]}")
        if self.log.stall:
            problems.append(self.log.stall)
        if problems:
            raise AssertionError("ScriptedTransport: " + " | ".join(problems))


__all__ = ["Emission", "ScriptStalled", "ScriptedCLIError", "ScriptedTransport", "TransportLog", "Write"]
