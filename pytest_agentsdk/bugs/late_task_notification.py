"""Bug 2, late task notification (claude-agent-sdk-python #788).

A background task that finishes between turns of a ``ClaudeSDKClient`` session has its completion
(and, with CLIs that wake the parent, the whole turn the CLI runs by itself to react to it)
delivered by the *next* ``receive_response()``, which then stops at the wrong ResultMessage.

The oracle judges by provenance, never by order: the scripted CLI records for every frame its
cause and how many prompts had been written when it was emitted. For the call answering prompt k:

* ``stale``: it yielded a frame emitted before prompt k was written;
* ``misattributed``: its last ResultMessage does not answer prompt k (or it yielded none);
* ``lost`` (evidence only: a fix may divert stale frames): a frame the CLI emitted never reached
  the consumer through any call while a later frame did;
* ``hang``: a call never returned; the scripted CLI diagnoses the stall instead of waiting it out.

Both CLI behaviour models are judged: ``notify-only`` (the completion is reported between turns
and nothing else happens) and ``wake-parent`` (CLI 2.1.330: the CLI reacts with a turn of its own,
as in reference/traces/c_client_bg_2turn).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.lowlevel
from hypothesis import strategies as st

from .. import wire
from ..compat import SdkInfo, parse_message
from ..explore import Outcome, Scenario, Sweep, run_in_fresh_loop, transport_checkpoints
from ..recording import Call, RecordingClient
from ..script import Script, ScriptError, whole_number
from ..transport import Emission, ScriptedTransport, TransportLog
from ..verdict import Result

NAME = "late_task_notification"
MODELS = ("notify-only", "wake-parent")
#: When a background task started in turn s completes, relative to the consumer's turns.
#: The seed's timing comes first, so it is what Hypothesis tries first and shrinks towards.
#: A task's ``delay`` (checkpoints before its frames) and ``gap`` (between them) spread
#: between / mid_next / later completions; the others are emitted as one block.
DONE = (
    "between",  # after turn s's result, before prompt s+1 (the consumer's pace decides)
    "at_prompt",  # as prompt s+1 is written, before its first frame
    "mid_next",  # in the middle of turn s+1
    "later",  # after turn s+1's result ("long after" when s+1 is the last turn)
    "in_turn",  # before turn s's own result
)
#: How the completion is reported.
REPORTS = ("notification", "both", "updated")
#: Completions the wake-parent CLI reacts to with a turn of its own: those that find it idle.
#: A completion while a turn runs is folded into that turn, as the real CLI does.
_WAKES = frozenset({"between", "at_prompt", "later"})
MAX_PROMPTS = 4
#: Bound on the consumer's "late" wait (scheduler checkpoints), far above any script's needs.
_LATE_LIMIT = 10_000
#: How long a consumer may stay blocked after the scripted CLI diagnosed a stall before the
#: driver cancels it: the stall normally reaches it as an exception at once.
_STALL_SURFACE_S = 0.3

SEED_EXAMPLE: dict[str, Any] = {
    "prompts": 2,
    "tasks": [{"turn": 0, "background": True, "done": "between", "report": "notification", "progress": 0, "delay": 0, "gap": 0}],
    "pace": ["late"],
    "checkpoints": {},
}
#: Deterministic flows swept before the Hypothesis search: the seed's, and the two races around
#: the next prompt that users hit most.
PATTERNS: dict[str, dict[str, Any]] = {
    "seed: completes between turns, next prompt sent late": SEED_EXAMPLE,
    "completes as the next prompt is written": {
        **SEED_EXAMPLE,
        "tasks": [{**SEED_EXAMPLE["tasks"][0], "done": "at_prompt", "report": "both"}],
        "pace": [0],
    },
    "next prompt sent while the completion is reported": {
        **SEED_EXAMPLE,
        "tasks": [{**SEED_EXAMPLE["tasks"][0], "report": "both", "progress": 1}],
        "pace": [0],
    },
}


# ---------------------------------------------------------------- examples -> Script
@dataclass(frozen=True)
class _Task:
    index: int
    turn: int
    background: bool
    done: str
    report: str
    progress: int
    delay: int
    gap: int

    @property
    def id(self) -> str:
        return f"t{self.index}"

    @property
    def tool_use_id(self) -> str:
        return f"toolu_{self.id}"

    @property
    def wakes(self) -> bool:
        return self.background and self.done in _WAKES

    def settled_by(self) -> int:
        """The first turn whose result comes after this task's completion."""
        if not self.background or self.done == "in_turn":
            return self.turn
        return self.turn + (2 if self.done == "later" else 1)


def _tasks(example: dict[str, Any], prompts: int) -> list[_Task]:
    raw = example.get("tasks")
    if not isinstance(raw, list) or not raw:
        raise ScriptError("tasks: give a non-empty list of task objects")
    tasks = []
    for i, t in enumerate(raw):
        where = f"tasks[{i}]"
        if not isinstance(t, dict):
            raise ScriptError(f"{where}: a task is a JSON object")
        done, report = t.get("done", "in_turn"), t.get("report", "notification")
        if done not in DONE:
            raise ScriptError(f"{where}.done: {done!r} is not one of {', '.join(DONE)}")
        if report not in REPORTS:
            raise ScriptError(f"{where}.report: {report!r} is not one of {', '.join(REPORTS)}")
        background = t.get("background", True)
        if not isinstance(background, bool):
            raise ScriptError(f"{where}.background: {background!r} must be true or false")
        tasks.append(
            _Task(
                index=i,
                turn=whole_number(f"{where}.turn", t.get("turn", 0), 0, prompts - 1),
                background=background,
                done=done if background else "in_turn",
                report=report,
                progress=whole_number(f"{where}.progress", t.get("progress", 0), 0, 5),
                delay=whole_number(f"{where}.delay", t.get("delay", 0), 0, 200),
                gap=whole_number(f"{where}.gap", t.get("gap", 0), 0, 20),
            )
        )
    return tasks


def _pace(example: dict[str, Any], prompts: int) -> list[str | int]:
    pace = example.get("pace", ["late"] * (prompts - 1))
    if not isinstance(pace, list) or len(pace) != prompts - 1:
        raise ScriptError(f"pace: give one entry per gap between prompts ({prompts - 1})")
    for i, p in enumerate(pace):
        if p != "late":
            whole_number(f"pace[{i}]", p, 0, _LATE_LIMIT)
    return pace


def _progress_frames(task: _Task) -> list[wire.Frame]:
    frames: list[wire.Frame] = []
    for n in range(task.progress):
        frames.append(
            wire.assistant(f"{task.id}: working, step {n}", parent_tool_use_id=task.tool_use_id, message_id=f"msg_{task.id}_p{n}")
        )
        frames.append(wire.task_progress(task.id, tool_uses=n + 1, last_tool_name="Bash", tool_use_id=task.tool_use_id))
    return frames


def _completion_frames(task: _Task, wake: bool) -> list[wire.Frame]:
    frames = []
    if task.report in ("updated", "both"):
        frames.append(wire.task_updated(task.id))
    if task.report in ("notification", "both"):
        frames.append(
            wire.task_notification(task.id, summary=f"{task.id} finished", result_text=f"report of {task.id}", tool_use_id=task.tool_use_id)
        )
    if wake and task.background:
        frames.append(wire.background_tasks_changed([]))
    return frames


def _own_turn(task: _Task) -> list[wire.Frame]:
    """The turn a wake-parent CLI runs by itself to react to the completion (trace order)."""
    text = f"I received the notification of background task {task.id}."
    return [
        wire.system_init(),
        wire.assistant(text, message_id=f"msg_{task.id}_wake"),
        wire.result(text, origin={"kind": "task-notification", "producer": "session-task", "runId": f"run-{task.id}"}),
        wire.session_state_changed("idle", sdk_host_only=True),
    ]


def _turn_frames(k: int, tasks: list[_Task], wake: bool) -> tuple[list[wire.Frame], dict[int, int], int]:
    """Turn k's frames, where each task starting in it is started, and the result's index."""
    frames: list[wire.Frame] = []
    if wake:
        frames.append(wire.session_state_changed("running", sdk_host_only=True))
    frames.append(wire.system_init())
    started: dict[int, int] = {}
    for task in (t for t in tasks if t.turn == k):
        agent_input = {"description": f"worker {task.id}", "prompt": "do the slow work", "run_in_background": task.background}
        frames.append(
            wire.assistant(wire.tool_use(task.tool_use_id, "Agent", agent_input), stop_reason="tool_use", message_id=f"msg_{k}_{task.id}")
        )
        if wake and task.background:
            frames.append(wire.background_tasks_changed([{"task_id": task.id, "task_type": "local_agent", "description": f"worker {task.id}"}]))
        started[task.index] = len(frames)
        frames.append(wire.task_started(task.id, f"worker {task.id}", tool_use_id=task.tool_use_id, is_backgrounded=task.background))
        if not task.background:
            frames += _progress_frames(task) + _completion_frames(task, wake)
        launched = "Async agent launched successfully." if task.background else f"report of {task.id}"
        frames.append(wire.user_tool_result(task.tool_use_id, launched))
    answer = f"answer to prompt {k}"
    frames.append(wire.assistant(answer, message_id=f"msg_answer_{k}"))
    result_at = len(frames)
    frames.append(wire.result(answer))
    if wake and not any(t.background and t.turn <= k < t.settled_by() for t in tasks):
        frames.append(wire.session_state_changed("idle", sdk_host_only=True))
    return frames, started, result_at


def build_script(example: dict[str, Any], model: str) -> Script:
    """The Script an example describes under a CLI behaviour model; ScriptError names a bad field."""
    if model not in MODELS:
        raise ScriptError(f"model: {model!r} is not one of {', '.join(MODELS)}")
    if not isinstance(example, dict):
        raise ScriptError("example: expected a JSON object")
    prompts = whole_number("prompts", example.get("prompts", 2), 2, MAX_PROMPTS)
    tasks = _tasks(example, prompts)
    _pace(example, prompts)
    wake = model == "wake-parent"
    script = Script(checkpoints=example.get("checkpoints") or {}, eof="close")
    turns = [_turn_frames(k, tasks, wake) for k in range(prompts)]
    # Task segments come first: a completion released by the same prompt precedes that turn's frames.
    for task in (t for t in tasks if t.background):
        frames = _progress_frames(task) + _completion_frames(task, wake)
        # A wake-parent CLI's own turn follows the completion at once, as one block: a real CLI
        # never interleaves two turns of the main agent. in_turn and at_prompt completions keep
        # their promise (before that result / before that first frame) the same way.
        own = wake and task.wakes
        spread = not own and task.done not in ("in_turn", "at_prompt")
        delay, gap = (task.delay, task.gap) if spread else (0, 0)
        s = task.turn
        if task.done in ("at_prompt", "mid_next") and s + 1 >= prompts:
            raise ScriptError(f"tasks[{task.index}].done: {task.done!r} needs a prompt after turn {s}; raise prompts or start it earlier")
        trigger: dict[str, Any]
        if task.done == "in_turn":
            trigger = {"after": (f"turn{s}", turns[s][1][task.index])}
        elif task.done == "between":
            trigger = {"after": (f"turn{s}", turns[s][2])}
        elif task.done == "at_prompt":
            trigger = {"prompt": s + 1}
        elif task.done == "mid_next":
            trigger = {"after": (f"turn{s + 1}", 0)}
        else:  # later: after turn s+1's result, or after the session's last result
            last = min(s + 1, prompts - 1)
            trigger = {"after": (f"turn{last}", turns[last][2])}
        script.event(f"task:{task.id}", *frames, delay=delay, gap=gap, optional=True, **trigger)
        if own:
            script.event(f"cli:{task.id}", *_own_turn(task), cause=f"cli:task:{task.id}", after=(f"task:{task.id}", len(frames) - 1), optional=True)
    for k, (frames, _, _) in enumerate(turns):
        script.turn(*frames, prompt=k)
    return script.validate()


# ---------------------------------------------------------------- the consumer
@dataclass
class Session:
    """One played example: the scripted CLI's log and what each consumer call received."""

    transport: ScriptedTransport
    calls: list[Call]
    hang: str | None = None
    error: str | None = None


async def wait_until_quiet(transport: ScriptedTransport, quiet: int = 8) -> None:
    """The seed's ``sleep(65)`` in scheduler checkpoints: return once ``quiet`` checkpoints pass
    without the scripted CLI emitting a frame, i.e. it has said all it had to say for now."""
    seen, still = len(transport.log.emissions), 0
    for _ in range(_LATE_LIMIT):
        if still >= quiet:
            return
        await anyio.lowlevel.checkpoint()
        now = len(transport.log.emissions)
        still = still + 1 if now == seen else 0
        seen = now


async def _settle(transport: ScriptedTransport, pace: str | int, quiet: int) -> None:
    """The consumer's pause before its next prompt: ``"late"`` or a number of checkpoints."""
    if pace == "late":
        await wait_until_quiet(transport, quiet)
        return
    for _ in range(int(pace)):
        await anyio.lowlevel.checkpoint()


def quiet_window(script: Script) -> int:
    """Checkpoints without output after which the scripted CLI has surely nothing left due."""
    longest = max((s.trigger.delay + s.gap for s in script.segments), default=0)
    per_frame = sum(script.checkpoints.get(op, 0) for op in ("read", "write"))
    return 8 + 2 * (longest + per_frame)


async def play(script: Script, pace: Sequence[str | int], prompts: int) -> Session:
    """The seed's consumer: ``prompts`` turns of query() + receive_response() on one client."""
    from claude_agent_sdk import ClaudeAgentOptions, ClaudeSDKClient

    transport = ScriptedTransport(script)
    session = Session(transport, [])
    quiet = quiet_window(script)

    async def consume() -> None:
        client = ClaudeSDKClient(options=ClaudeAgentOptions(), transport=transport)
        recorder = RecordingClient(client)
        session.calls = recorder.calls
        try:
            async with client:
                for k in range(prompts):
                    if k:
                        await _settle(transport, pace[k - 1], quiet)
                    await recorder.query(f"prompt {k}")
                    async for _ in recorder.receive_response():
                        pass
        except Exception as exc:  # the stall surfaces here; anything else is the release's failure
            if transport.log.stall is None:
                session.error = f"{type(exc).__name__}: {exc}"

    async def watch_stall() -> None:
        """Cancel a consumer that stays blocked after the CLI stalled (blocked off the stream)."""
        await transport.stalled.wait()
        await anyio.sleep(_STALL_SURFACE_S)
        tg.cancel_scope.cancel()

    async with anyio.create_task_group() as tg:
        tg.start_soon(watch_stall)
        await consume()
        tg.cancel_scope.cancel()
    session.hang = transport.log.stall
    return session


# ---------------------------------------------------------------- the oracle
@dataclass
class TurnReport:
    turn: int
    stale: list[str] = field(default_factory=list)
    stale_at: list[int] = field(default_factory=list)  # their positions among the call's messages
    ended_on: str | None = None  # the cause of the call's last ResultMessage
    misattributed: bool = False


@dataclass
class Isolation:
    """The oracle's reading of a recorded session."""

    turns: list[TurnReport]
    lost: list[str]
    hang: str | None = None  # the scripted CLI's stall diagnosis
    hung_turn: int | None = None  # the turn whose call never returned

    @property
    def manifestations(self) -> list[str]:
        found = []
        if any(t.stale for t in self.turns):
            found.append("stale")
        if any(t.misattributed for t in self.turns):
            found.append("misattributed")
        return found

    def evidence(self) -> dict[str, Any]:
        bad = [t for t in self.turns if t.stale or t.misattributed]
        return {
            "turns": [
                {"turn": t.turn, "stale": t.stale, "ended_on": t.ended_on, "misattributed": t.misattributed} for t in bad
            ],
            "lost": self.lost,
            **({"hung_turn": self.hung_turn} if self.hang else {}),
        }

    def describe(self) -> str:
        lines = []
        for t in self.turns:
            if t.stale:
                lines.append(f"turn {t.turn}: {len(t.stale)} stale frame(s) emitted before prompt {t.turn} was written: " + "; ".join(t.stale))
            if t.misattributed:
                lines.append(f"turn {t.turn}: ended on {t.ended_on or 'no result'}, not the result answering prompt {t.turn}")
        if self.hang:
            where = f"turn {self.hung_turn}'s call" if self.hung_turn is not None else "the session"
            lines.append(f"{where} never returned: {self.hang}")
        return "\n".join(lines)


def _describe(e: Emission) -> str:
    frame = e.frame
    what = wire.kind(frame)
    if frame.get("task_id"):
        what += f" {frame['task_id']}"
    if frame.get("type") == "result":
        what += f" {frame.get('result')!r}"
    elif frame.get("type") == "assistant":
        texts = [b.get("text") or b.get("name") for b in frame["message"]["content"]]
        what += f" {' '.join(map(str, texts))!r}"
    return f"{what} [{e.cause}, emitted with {e.prompts_before} prompt(s) written]"


def _as_call(turn: int, call: Call | Sequence[Any]) -> Call:
    """A plain list of messages is the completed receive_response() call of prompt ``turn``."""
    if isinstance(call, Call):
        return call
    return Call("receive_response", turn + 1, list(call), completed=True)


def judge_session(
    log: TransportLog | ScriptedTransport,
    calls: Sequence[Call | Sequence[Any]] | RecordingClient,
    parse: Callable[[dict[str, Any]], Any] | None = None,
) -> Isolation:
    """Read a recorded session with the turn-isolation oracle (see the module docstring).

    ``calls`` are :class:`Call` records (from :class:`RecordingClient`), or plain lists of the
    messages each ``receive_response()`` yielded, the k-th list answering prompt k.
    """
    log = log.log if isinstance(log, ScriptedTransport) else log
    given = calls.calls if isinstance(calls, RecordingClient) else calls
    records = [_as_call(k, c) for k, c in enumerate(given)]
    parse = parse or parse_message()
    delivered = log.consumer_frames(parse)
    matched = log.attribute([m for c in records for m in c.messages], delivered)
    turns = []
    pos = 0
    for call in records:
        mine = matched[pos : pos + len(call.messages)]
        pos += len(call.messages)
        if call.method != "receive_response":
            continue
        stale_at = [i for i, e in enumerate(mine) if e.prompts_before <= call.turn]
        report = TurnReport(call.turn, [_describe(mine[i]) for i in stale_at], stale_at)
        results = [e for e in mine if e.frame.get("type") == "result"]
        report.ended_on = f"result of {results[-1].cause}" if results else None
        # a call that raised or was left early has no end to judge
        report.misattributed = call.completed and (not results or results[-1].cause != f"prompt:{call.turn}")
        turns.append(report)
    received = {e.seq for e in matched}
    last = max(received, default=0)
    lost = [
        _describe(e)
        for e, _ in delivered
        # host-only frames: releases from 0.2.160 drop them by design
        if e.seq < last and e.seq not in received and not e.frame.get("sdk_host_only")
    ]
    hung = next((c.turn for c in records if not c.completed), None) if log.stall else None
    return Isolation(turns, lost, log.stall, hung)


def assert_turn_isolation(
    log: TransportLog | ScriptedTransport,
    calls: Sequence[Call | Sequence[Any]] | RecordingClient,
    parse: Callable[[dict[str, Any]], Any] | None = None,
) -> Isolation:
    """Fail if any ``receive_response()`` call yielded a frame from before its prompt (stale), or
    ended on a result that does not answer its prompt (misattributed), or a call hung.

    ``log`` is the :class:`ScriptedTransport` the session ran on (or its ``log``); ``calls`` the
    :class:`RecordingClient` that wrapped the client (or its calls, or one list of messages per
    turn). Frames the SDK never delivered are returned in ``.lost`` without failing: dropping a
    stale notification is a legitimate fix, but the caller should see what it gave up.
    """
    isolation = judge_session(log, calls, parse)
    if isolation.manifestations or isolation.hang:
        raise AssertionError("turn isolation violated:\n" + isolation.describe())
    return isolation


# ---------------------------------------------------------------- the scenario
def _task_frames_surface(sdk: SdkInfo) -> str:
    if sdk.has("typed_task_messages"):
        return "typed TaskNotificationMessage / TaskStartedMessage"
    return "plain SystemMessage frames (this release has no typed task messages); judged by provenance alike"


class LateTaskNotification(Scenario):
    name = NAME
    models: tuple[str | None, ...] = MODELS

    def examples(self, model: str | None) -> st.SearchStrategy[Any]:
        return st.integers(2, 3).flatmap(_examples_with)

    def run_example(self, example: Any, backend: str, model: str | None) -> Outcome:
        model = model or "wake-parent"
        script = build_script(example, model)
        prompts = example.get("prompts", 2)
        pace = _pace(example, prompts)
        session = run_in_fresh_loop(lambda: play(script, pace, prompts), backend)
        return outcome_of(session)

    def sweep(self, model: str | None) -> Sweep:
        """The named flows (the seed's among them), before the Hypothesis search."""
        return Sweep(list(PATTERNS.values()), f"{len(PATTERNS)} named flows")

    def group(self, example: Any) -> str | None:
        return _NAMED.get(json.dumps(example, sort_keys=True))

    def annotate(self, result: Result, sdk: SdkInfo) -> None:
        pattern = self.group(result.counterexample) if result.counterexample is not None else None
        lost = {name: entry["lost"] for name, entry in result.evidence.get("patterns", {}).items() if entry.get("lost")}
        result.evidence = {**({"pattern": pattern} if pattern else {}), "task_frames": _task_frames_surface(sdk), **result.evidence}
        if result.failed:
            result.notes = _turn_notes(result.evidence)
        else:
            result.notes = [f"a fix here silences frames ({name}): {', '.join(frames)}" for name, frames in lost.items()]


_NAMED = {json.dumps(example, sort_keys=True): pattern for pattern, example in PATTERNS.items()}


def _turn_notes(evidence: dict[str, Any]) -> list[str]:
    """One line per turn that went wrong: the frames it should not have yielded, what it ended on."""
    notes = []
    for turn in evidence.get("turns", []):
        if turn["stale"]:
            notes.append(f"turn {turn['turn']} yielded {len(turn['stale'])} stale frame(s): {'; '.join(turn['stale'])}")
        if turn["misattributed"]:
            notes.append(f"turn {turn['turn']} ended on the {turn['ended_on']}, not on the answer to its prompt")
    if evidence.get("stall"):
        notes.append(f"hang: {evidence['stall']}")
    return notes


def outcome_of(session: Session) -> Outcome:
    """The oracle's verdict on one played session, as an explore Outcome."""
    if session.error is not None:
        raise RuntimeError(f"the session failed outside the oracle: {session.error}")
    isolation = judge_session(session.transport.log, session.calls)
    return Outcome(isolation.manifestations, isolation.hang, isolation.evidence(),
                   tradeoffs=sorted({lost.split(" [")[0].split(" ")[0] for lost in isolation.lost}))


def _examples_with(prompts: int) -> st.SearchStrategy[dict[str, Any]]:
    turn = st.integers(0, prompts - 2)
    background = st.fixed_dictionaries(
        {
            "turn": turn,
            "background": st.just(True),
            "done": st.sampled_from(DONE),
            "report": st.sampled_from(REPORTS),
            "progress": st.integers(0, 2),
            "delay": st.integers(0, 12),
            "gap": st.integers(0, 3),
        }
    )
    foreground = st.fixed_dictionaries(
        {"turn": turn, "background": st.just(False), "report": st.sampled_from(REPORTS), "progress": st.integers(0, 2)}
    )
    checkpoints = transport_checkpoints(("read", "write", "connect", "close"))
    return st.fixed_dictionaries(
        {
            "prompts": st.just(prompts),
            "tasks": st.lists(st.one_of(background, foreground), min_size=1, max_size=3),
            "pace": st.lists(st.one_of(st.just("late"), st.integers(0, 40)), min_size=prompts - 1, max_size=prompts - 1),
            "checkpoints": checkpoints,
        }
    )


SCENARIO = LateTaskNotification()

__all__ = [
    "DONE",
    "MODELS",
    "PATTERNS",
    "REPORTS",
    "SEED_EXAMPLE",
    "Isolation",
    "Session",
    "TurnReport",
    "assert_turn_isolation",
    "build_script",
    "judge_session",
    "play",
    "quiet_window",
    "wait_until_quiet",
]
