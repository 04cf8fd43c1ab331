"""Bug 2, late task notification (claude-agent-sdk-python #788).

A background task that finishes between turns of a ``ClaudeSDKClient`` session has its completion
(and, with CLIs that wake the parent, the whole turn the CLI runs by itself to react to it)
delivered by the *next* ``receive_response()``, which then stops at the wrong ResultMessage.

The oracle (:mod:`pytest_agentsdk.isolation`, which needs neither pytest nor Hypothesis) judges by
cause chains, never by order. The scripted CLI records every frame's cause: a frame caused by
prompt k, by a task that turn k started (``task:ID``: the turn whose frames carried its
``task_started``), or by the CLI's own turn reacting to such a task (``cli:task:ID``) belongs to
turn k; a frame whose cause names no turn belongs to the turn in progress when it was emitted.
For the ``receive_response()`` call answering prompt k:

* ``stale:KIND``: it yielded a frame of an earlier turn's chain; the kind is ``task_notification``,
  ``task_lifecycle`` (task started / progress / updated, background_tasks_changed) or ``subagent``
  (a subagent's transcript) for a task's frames, ``cli_turn`` for the CLI's reaction turn, ``turn``
  for the earlier prompt's own response (left behind by a call that ended early). State frames
  (session_state_changed, ``sdk_host_only``) are reported apart and never make the verdict;
* ``misattributed``: it did not yield its own answer, or ended on a result of another turn's chain;
* ``hang``: a call never returned; the scripted CLI diagnoses the stall instead of waiting it out;
* ``dropped:KIND``: a frame of the call's own turn that no channel delivered although the call
  read past it (a foreground agent's report, a task's notification before its turn's result): the
  consumer never learns what its own turn did;
* ``duplicated`` / ``reordered``: the consumer received a frame twice, or after a frame the CLI
  wrote later (the SDK promises stdout's order);
* ``lost:KIND`` (a trade-off, not the bug: the report accepts filtering): a frame of an earlier
  turn no channel delivered while a later frame was. Messages the client hands over on its
  separate channel (:data:`pytest_agentsdk.recording.SIDE_CHANNEL`) count as delivered.

So both fixes the report accepts pass: turn k reading on past its result through its own tasks
and the CLI's reaction, and diverting stale frames to a channel of their own.

Both CLI behaviour models are judged: ``notify-only`` (the completion is reported between turns
and nothing else happens) and ``wake-parent`` (CLI 2.1.330: the CLI reacts with a turn of its own,
as in reference/traces/c_client_bg_2turn). Background tasks run on their own clock
(:class:`TaskClockTransport`): one scripted to end after the next prompt still ends when a fix
keeps the consumer reading in its own turn for it instead.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.lowlevel
from hypothesis import strategies as st

from .. import model_server, realcli, wire
from . import MODELS as BUG_MODELS
from ..compat import SdkInfo
from ..completions import UNKNOWN, conversation_frame
from ..explore import Outcome, Scenario, Sweep, run_in_fresh_loop, transport_checkpoints
from ..isolation import (Isolation, TurnReport, assert_turn_isolation, chain_turns, describe_end, frame_kind, judge_provenance,
                         judge_session)
from ..model_server import Reply
from ..realcli import Cli
from ..recording import Call, RecordingClient
from ..script import Script, ScriptError, Segment, known_fields, one_of, whole_number
from ..transport import Emission, ScriptedTransport
from ..verdict import Result

NAME = "late_task_notification"
MODELS = BUG_MODELS[NAME]
#: When a background task started in turn s completes, relative to the consumer's turns.
#: The seed's timing comes first, so it is what Hypothesis tries first and shrinks towards.
#: A task's ``delay`` (checkpoints before its frames) and ``gap`` (between its subagent's frames,
#: and before the report of its end, which is one block) spread between / mid_next / later
#: completions; the others are emitted as one block.
DONE = (
    "between",  # after turn s's result, before prompt s+1 (the consumer's pace decides)
    "at_prompt",  # as prompt s+1 is written, before its first frame
    "mid_next",  # in the middle of turn s+1
    "later",  # after turn s+1's result ("long after" when s+1 is the last turn)
    "in_turn",  # before turn s's own result
)
#: How the completion is reported (``updated`` alone: a task_updated with a terminal status and no
#: notification, as for a stopped task whose notification the CLI suppresses).
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
#: The flows users recognise, by the example's task timing (and, between turns, the pace).
SEED_FLOW = "seed: completes between turns, next prompt sent late"
FLOWS = {
    ("between", "late"): SEED_FLOW,
    ("between", "soon"): "completes between turns, next prompt sent soon after",
    ("at_prompt", None): "completes as the next prompt is written",
    ("mid_next", None): "completes mid next turn",
    ("later", None): "completes after the next turn",
    ("in_turn", None): "completes before its turn's result",
    ("foreground", None): "foreground agent",
}
#: Timings whose outcome depends on how soon the consumer sends the next prompt.
_PACED = frozenset({"between", "later"})


def flow(example: dict[str, Any]) -> str:
    """The named flow of a one-task example ("several tasks" otherwise)."""
    tasks = example.get("tasks") or []
    if len(tasks) != 1:
        return "several tasks"
    task = tasks[0]
    if not task.get("background", True):
        return FLOWS[("foreground", None)]
    done = task.get("done", "in_turn")
    if done != "between":
        return FLOWS[(done, None)]
    pace = example.get("pace") or []
    turn = task.get("turn", 0)
    return FLOWS[(done, "late" if turn >= len(pace) or pace[turn] == "late" else "soon")]


def sweep_examples() -> list[dict[str, Any]]:
    """One task started in turn 0: every timing x report x progress (0/1), and for the timings
    the pace can change, a late and an immediate next prompt; the seed's flow first. A late
    completion gets a third turn, so it reaches a call; so does the seed's flow once per pace, so
    a call that misses its answer shows where that answer goes; and a foreground agent. Last, two
    agents at once: the first's chain, at every timing, folding in while a second one, started in
    turn 1, reports progress and finishes within that turn (a call that stops when the tasks it
    tracks settle leaks the first's subagent frames there: found only by the search before, so at
    some budgets and not others). And a foreground agent in turn 1 beside the first: its
    task_updated belongs to turn 1's own frames, so a call that holds task frames back while a
    background task runs loses it (found only by the search before). The first of two agents runs
    at every timing x report: a call that reads on for a task whose completion came as both
    task_updated and notification leaks that notification only there."""
    crossed = [
        _swept(3 if done == "later" else 2, [_swept_task(0, done, report, progress)], pace)
        for done in DONE
        for report in REPORTS
        for progress in (0, 1)
        for pace in (("late", 0) if done in _PACED else (0,))
    ]
    cascade = [_swept(3, [_swept_task(0, "between", "notification", 0)], pace) for pace in ("late", 0)]
    foreground = _swept(2, [_swept_task(0, "in_turn", "both", 1, background=False)], 0)
    overlapping = [_swept(3, [_swept_task(0, done, report, 0), _swept_task(1, "in_turn", "notification", 1)], "late")
                   for done in DONE for report in REPORTS]
    beside_foreground = [_swept(3, [_swept_task(0, done, report, 0), _swept_task(1, "in_turn", "both", 1, background=False)], "late")
                         for done in DONE for report in REPORTS]
    return crossed[:1] + cascade + crossed[1:] + [foreground] + overlapping + beside_foreground


def _swept_task(turn: int, done: str, report: str, progress: int, background: bool = True) -> dict[str, Any]:
    return {"turn": turn, "background": background, "done": done, "report": report, "progress": progress, "delay": 0, "gap": 0}


def _swept(prompts: int, tasks: list[dict[str, Any]], pace: str | int) -> dict[str, Any]:
    return {"prompts": prompts, "tasks": tasks, "pace": [pace] * (prompts - 1), "checkpoints": {}}


SWEEP_AXES = (f"{len(DONE)} timings x {len(REPORTS)} reports x 2 progress, x 2 paces where the pace matters "
              f"({', '.join(sorted(_PACED))}), + the seed's flow with a third turn x 2 paces, + a foreground agent, "
              f"+ beside the first, at each of its {len(DONE)} timings x {len(REPORTS)} reports, a second agent finishing "
              f"within turn 1, in the background or the foreground")


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


EXAMPLE_FIELDS = ("prompts", "tasks", "pace", "checkpoints")
TASK_FIELDS = ("turn", "background", "done", "report", "progress", "delay", "gap")


def _tasks(example: dict[str, Any], prompts: int) -> list[_Task]:
    raw = example.get("tasks")
    if not isinstance(raw, list) or not raw:
        raise ScriptError("tasks: give a non-empty list of task objects")
    tasks = []
    for i, t in enumerate(raw):
        where = f"tasks[{i}]"
        known_fields(where, t, TASK_FIELDS)
        done, report = t.get("done", "in_turn"), t.get("report", "notification")
        one_of(f"{where}.done", done, DONE)
        one_of(f"{where}.report", report, REPORTS)
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
            try:
                whole_number(f"pace[{i}]", p, 0, _LATE_LIMIT)
            except ScriptError as exc:
                raise ScriptError(f"{exc}, or \"late\"") from None
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
    one_of("model", model, MODELS)
    known_fields("example", example, EXAMPLE_FIELDS)
    prompts = whole_number("prompts", example.get("prompts", 2), 2, MAX_PROMPTS)
    tasks = _tasks(example, prompts)
    _pace(example, prompts)
    wake = model == "wake-parent"
    script = Script(checkpoints=example.get("checkpoints") or {}, eof="close")
    turns = [_turn_frames(k, tasks, wake) for k in range(prompts)]
    # Task segments come first: a completion released by the same prompt precedes that turn's frames.
    for task in (t for t in tasks if t.background):
        progress, report = _progress_frames(task), _completion_frames(task, wake)
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
        name = f"task:{task.id}"
        if progress and gap:
            # the subagent works on the task's clock, its frames a gap apart; the CLI writes the
            # report of its end as one block a gap after them (CLI 2.1.330, at a turn's end and mid
            # turn alike): nothing of a turn comes between task_notification and background_tasks_changed
            script.event(f"{name}:work", *progress, cause=name, delay=delay, gap=gap, optional=True, **trigger)
            script.event(name, *report, after=(f"{name}:work", len(progress) - 1), delay=gap, optional=True)
        else:
            script.event(name, *progress, *report, delay=delay, optional=True, **trigger)
        reaction: dict[str, Any] = {"cause": f"cli:task:{task.id}", "optional": True}
        if own:
            script.event(f"cli:{task.id}", *_own_turn(task), after=(name, len(script.segment(name).frames) - 1), **reaction)
        elif wake and task.done == "mid_next":
            # folded into turn s+1; the CLI reacts only if the task ends while it is idle, i.e.
            # when the consumer waits for it instead of sending prompt s+1 (TaskClockTransport)
            script.event(f"cli:{task.id}", *_own_turn(task), on_block=True, **reaction)
    for k, (frames, _, _) in enumerate(turns):
        script.turn(*frames, prompt=k)
    return script.validate()


# ---------------------------------------------------------------- the consumer
def clocked_segments(script: Script) -> dict[str, Segment]:
    """Per task id, its segment if the script releases it on a later prompt or turn than the one
    that started the task: that completion comes by the task's own clock, whatever the consumer does."""
    starter = {f["task_id"]: s.name for s in script.segments for f in s.frames if wire.kind(f) == "system/task_started"}
    return {
        s.cause[5:]: s
        for s in script.segments
        if s.cause.startswith("task:")
        and (s.trigger.prompt is not None or (s.trigger.after is not None and s.trigger.after[0] != starter.get(s.cause[5:])
                                              and s.trigger.after[0] != f"{s.cause}:work"))  # not a report after its work
    }


class TaskClockTransport(ScriptedTransport):
    """The scripted CLI with background tasks on their own clock: a task scripted to end on a later
    prompt or turn (``at_prompt``, ``mid_next``, ``later``) still ends, as time passes, when the
    consumer waits for it instead (a fix that reads on through its turn's tasks). When every task is
    blocked, before any stall is diagnosed, the earliest started of them ends, followed by the turn
    the CLI runs by itself when a task ends while it is idle (a ``cli:task:ID`` segment released on
    block), if the script has one. A Script trigger names one moment; this adds "or when the
    consumer waits for it"."""

    async def connect(self) -> None:
        await super().connect()
        self._clocked = clocked_segments(self.script)
        self._idle_reactions = {s.cause[9:]: s for s in self._pending_on_block if s.cause.startswith("cli:task:")}
        self._pending_on_block = [s for s in self._pending_on_block if not s.cause.startswith("cli:task:")]

    async def _wait_for_change(self) -> bool:
        if await super()._wait_for_change():
            return True
        started = (e.frame.get("task_id") for e in self.log.emissions if wire.kind(e.frame) == "system/task_started")
        task = next((t for t in started if t in self._clocked and self._clocked[t].name not in self._released), None)
        if task is None:
            return False
        segment = self._clocked[task]
        if task in self._idle_reactions:  # the CLI's own turn follows the report of the task's end at once
            report = self.script.segment(f"task:{task}")
            key = (report.name, len(report.frames) - 1)  # the plan's index is shared: add to a copy
            self._released_after = {**self._released_after, key: (*self._released_after.get(key, ()), self._idle_reactions[task])}
        self._release(segment, preempt=False)
        return True


@dataclass
class Session:
    """One played example: the scripted CLI's log and what the consumer received."""

    transport: ScriptedTransport
    recorder: RecordingClient | None = None
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

    transport = TaskClockTransport(script)
    session = Session(transport)
    quiet = quiet_window(script)

    async def consume() -> None:
        client = ClaudeSDKClient(options=ClaudeAgentOptions(), transport=transport)
        session.recorder = recorder = RecordingClient(client)
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


# ---------------------------------------------------------------- the scenario
def _task_frames_surface(sdk: SdkInfo) -> str:
    if sdk.has("typed_task_messages"):
        return "typed TaskNotificationMessage / TaskStartedMessage"
    return "plain SystemMessage frames (this release has no typed task messages); judged by provenance alike"


#: Frames shown per aside note; the evidence keeps them all.
_NOTE_FRAMES = 3


class LateTaskNotification(Scenario):
    name = NAME
    models: tuple[str | None, ...] = MODELS

    def __init__(self) -> None:
        #: What the verdict does not count (``lost`` frames, ``state`` frames of earlier turns), per
        #: (backend, model) and named flow: gathered while a judgement runs, read by annotate().
        self._asides: dict[tuple[str, str | None], dict[str, dict[str, list[str]]]] = {}

    def examples(self, model: str | None) -> st.SearchStrategy[Any]:
        return _EXAMPLES

    def run_example(self, example: Any, backend: str, model: str | None) -> Outcome:
        script = build_script(example, model or "wake-parent")
        prompts = example.get("prompts", 2)
        pace = _pace(example, prompts)
        outcome = outcome_of(run_in_fresh_loop(lambda: play(script, pace, prompts), backend, skip_idle=True))
        for what in ("lost", "state"):
            if frames := outcome.evidence.get(what):
                seen = self._asides.setdefault((backend, model), {}).setdefault(flow(example), {}).setdefault(what, [])
                seen += [frame for frame in frames if frame not in seen]
        return outcome

    def sweep(self, model: str | None, backend: str) -> Sweep:
        """The known classes (:func:`sweep_examples`), the seed's flow first."""
        self._asides = {key: v for key, v in self._asides.items() if key[1] != model}  # a judgement starts
        return Sweep(sweep_examples(), SWEEP_AXES)

    def group(self, example: Any) -> str | None:
        return flow(example)

    def on_cli(self, cli: Cli) -> Scenario:
        return RealCliLateTaskNotification(cli)

    def annotate(self, result: Result, sdk: SdkInfo) -> None:
        asides = self._asides.pop((result.backend, result.model), {})
        pattern = {"pattern": flow(result.counterexample)} if result.counterexample is not None else {}
        result.evidence = {**pattern, "task_frames": _task_frames_surface(sdk), **result.evidence}
        if asides:
            result.evidence["asides"] = asides
        result.notes = _turn_notes(result.evidence) if result.failed else []
        for what, label in (("lost", "frames dropped with no channel to the consumer"), ("state", "state frames of earlier turns")):
            flows = [(name, aside[what]) for name, aside in asides.items() if aside.get(what)]
            if flows:
                name, frames = flows[0]
                shown = "; ".join(frames[:_NOTE_FRAMES]) + (f" (+{len(frames) - _NOTE_FRAMES} more)" if len(frames) > _NOTE_FRAMES else "")
                result.notes.append(f"{label} (not counted) in {len(flows)} flow(s), e.g. {name}: {shown}; all in evidence.asides")


def _turn_notes(evidence: dict[str, Any]) -> list[str]:
    """One line per turn that went wrong: the frames it should not have yielded, what it ended on."""
    notes = []
    for turn in evidence.get("turns", []):
        if turn["stale"]:
            kinds = ", ".join(sorted(set(turn["kinds"])))
            notes.append(f"turn {turn['turn']} yielded {len(turn['stale'])} stale frame(s) ({kinds}): {'; '.join(turn['stale'])}")
        if turn["misattributed"]:
            notes.append(f"turn {turn['turn']} {describe_end(turn['turn'], turn['ended_on'], turn['answered'])}")
    if evidence.get("stall"):
        where = f"turn {evidence['hung_turn']}'s call" if evidence.get("hung_turn") is not None else "the session"
        notes.append(f"hang: {where} never returned: {evidence['stall']}")
    return notes


def outcome_of(session: Session) -> Outcome:
    """The oracle's verdict on one played session, as an explore Outcome."""
    if session.error is not None:
        raise RuntimeError(f"the session failed outside the oracle: {session.error}")
    isolation = judge_session(session.transport, session.recorder or [])
    return Outcome(isolation.manifestations, isolation.hang, isolation.evidence(), tradeoffs=isolation.tradeoffs)


@functools.cache
def _examples_with(prompts: int) -> st.SearchStrategy[dict[str, Any]]:
    """Examples with ``prompts`` turns, built once per count: a strategy built anew on every draw is
    validated anew too, which cost Hypothesis more than drawing from it."""
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


#: One strategy object for every judgement: validated once (``explore.warm_up``), not per search.
_EXAMPLES = st.integers(2, 3).flatmap(_examples_with)
SCENARIO = LateTaskNotification()

__all__ = [
    "DONE",
    "FLOWS",
    "MODELS",
    "REPORTS",
    "SEED_EXAMPLE",
    "SEED_FLOW",
    "Isolation",
    "Session",
    "TaskClockTransport",
    "TurnReport",
    "assert_turn_isolation",
    "build_script",
    "chain_turns",
    "flow",
    "frame_kind",
    "judge_session",
    "play",
    "quiet_window",
    "sweep_examples",
    "wait_until_quiet",
]


# ---------------------------------------------------------------- over the real CLI
REAL_SPAWN = "toolu_spawn_real"
REAL_PROMPTS = ("Spawn a background agent. [[T1]]", "Second question. [[T2]]")
#: What the scripted model answers, one text per cause: the provenance of every message the
#: consumer gets back is read from these (and from parent_tool_use_id / task ids), never from order.
REAL_TEXTS = {"prompt:0": "MAIN: agent dispatched.", "cli": "MAIN: I received the task notification.",
              "prompt:1": "TURN 2: the answer to the second question."}
#: The stories, as ``{"story": NAME}`` examples. ``seed``: a background agent the model holds until
#: turn 1's result, prompt 2 sent once the CLI has reacted to its report (c_client_bg_2turn);
#: ``seed_with_tool``: the same agent reading a file first (its tool call and progress frames
#: come between turns too); ``foreground``: the agent runs inside turn 1, so turn 2 must be clean
#: (the oracle must not cry wolf on the real CLI). An agent finishing while turn 2 is under way
#: (c_client_bg_2turn_early) is not played: whether the real CLI folds its report into turn 2 or
#: reacts after it is a race inside the CLI the model side cannot pin, so that verdict would move
#: from run to run.
REAL_STORIES = ("seed", "seed_with_tool", "foreground")
_AGENT_GATE = "agent"


def _real_replies(story: str) -> tuple[list[Reply], list[Reply]]:
    background = story != "foreground"
    spawn = model_server.tool_use(REAL_SPAWN, "Agent", {"description": "Background research", "prompt": "Do the research.",
                                                         "subagent_type": "general-purpose", "run_in_background": background})
    main = [Reply([spawn], stop_reason="tool_use"), Reply([model_server.text(REAL_TEXTS["prompt:0"])]),
            Reply([model_server.text(REAL_TEXTS["prompt:1"])], when="[[T2]]")]
    if background:  # the CLI's own turn reacting to the agent's report
        main.insert(2, Reply([model_server.text(REAL_TEXTS["cli"])], when="<task-notification>"))
    report = Reply([model_server.text("SUBAGENT REPORT: the research is done.")])
    work = [Reply([model_server.tool_use("toolu_read_0", "Read", {"file_path": "notes.md"})], stop_reason="tool_use"), report] \
        if story == "seed_with_tool" else [report]
    if background:
        work[0].gate = _AGENT_GATE
    return main, work


def _real_frame(message: Any) -> dict[str, Any] | None:
    """The fields the oracle reads, from a typed message (None: a kind it does not judge)."""
    name = type(message).__name__
    if name == "ResultMessage":
        return {"type": "result", "subtype": message.subtype, "result": message.result}
    if name in ("AssistantMessage", "UserMessage"):
        frame = conversation_frame(message, name[:-7].lower())
        if frame["parent_tool_use_id"] is UNKNOWN:  # a release without the field: nothing is attributed by it
            frame["parent_tool_use_id"] = None
        return frame
    if isinstance(getattr(message, "data", None), dict):
        return {**message.data, "type": "system", "subtype": message.subtype}
    return None


def _blocks(frame: dict[str, Any]) -> list[dict[str, Any]]:
    """A conversation frame's content blocks (none for a plain string content)."""
    content = (frame.get("message") or {}).get("content")
    return content if isinstance(content, list) else []


def _real_cause(frame: dict[str, Any], task_id: str | None) -> str | None:
    """Which chain a real CLI's frame belongs to, by what the model served and the ids it chose."""
    task = f"task:{task_id}"
    kind = wire.kind(frame)
    texts = {b.get("text") for b in _blocks(frame)} | {frame.get("result")}
    ids = {b.get("id") or b.get("tool_use_id") for b in _blocks(frame)}
    if frame.get("parent_tool_use_id") == REAL_SPAWN:
        return task
    if REAL_TEXTS["cli"] in texts:
        return f"cli:{task}"
    if REAL_TEXTS["prompt:1"] in texts:
        return "prompt:1"
    if REAL_TEXTS["prompt:0"] in texts or REAL_SPAWN in ids or kind == "system/task_started":
        return "prompt:0"
    if kind == "system/background_tasks_changed":
        return "prompt:0" if frame.get("tasks") else task  # listing the task it launched / the task gone
    if kind in ("system/task_progress", "system/task_updated", "system/task_notification"):
        return task
    return None  # init, state and status frames carry no provenance of their own


class RealCliLateTaskNotification(realcli.RealCliStories, LateTaskNotification):
    """Bug 2 as the real CLI plays it: two ClaudeSDKClient turns, a background agent finishing
    between them; the CLI's own reaction turn is real, not modelled."""

    models: tuple[str | None, ...] = (None,)
    story_axes = f"{len(REAL_STORIES)} stories ({', '.join(REAL_STORIES)})"

    def stories(self) -> list[dict[str, Any]]:
        return [{"story": s} for s in REAL_STORIES]

    def group(self, example: Any) -> str | None:
        return FLOWS[("foreground", None)] if example["story"] == "foreground" else f"{SEED_FLOW} ({example['story']})"

    def run_example(self, example: Any, backend: str, model: str | None) -> Outcome:
        example = self.story(example)
        main, subagent = _real_replies(example["story"])
        with realcli.CliSession(self.cli, main, subagent) as session:
            calls = run_in_fresh_loop(lambda: self._play(session, example["story"] != "foreground"), backend, wall=realcli.STORY_WALL_S)
        session.raise_for_unscripted()
        task_id = next((f.get("task_id") for c in calls for m in c.messages if (f := _real_frame(m)) and wire.kind(f) == "system/task_started"), None)
        emitted: list[list[Emission]] = []
        judged: list[Call] = []
        unattributed: list[str] = []
        seq = 0
        for call in calls:
            frames = []
            for message in call.messages:
                frame = _real_frame(message)
                cause = _real_cause(frame, task_id) if frame else None
                if frame is None or cause is None:
                    unattributed.append(f"turn {call.turn}: {wire.kind(frame) if frame else type(message).__name__}")
                    continue
                frames.append(Emission(seq, frame, None, cause, 0, call.prompts_sent))
                seq += 1
            emitted.append(frames)
            judged.append(Call(call.method, call.prompts_sent, [f.frame for f in frames], completed=call.completed))
        isolation = judge_provenance(judged, emitted)
        evidence = {"cli": self.cli.describe(), "story": example["story"], **isolation.evidence(),
                    "unattributed": unattributed, "provenance": "by what the scripted Messages API served"}
        return Outcome(isolation.manifestations, None, evidence)

    @staticmethod
    async def _play(session: realcli.CliSession, background: bool) -> list[Call]:
        from claude_agent_sdk import ClaudeSDKClient

        calls = []
        async with ClaudeSDKClient(options=session.options()) as client:
            for k, prompt in enumerate(REAL_PROMPTS):
                if k and background:
                    session.model.open(_AGENT_GATE)
                    await session.model.wait_served("main", REAL_TEXTS["cli"])
                await client.query(prompt)
                call = Call("receive_response", k + 1)
                async for message in client.receive_response():
                    call.messages.append(message)
                call.completed = True
                calls.append(call)
        return calls

    def annotate(self, result: Result, sdk: SdkInfo) -> None:
        result.notes = [f"played by the real CLI: {self.cli.describe()}"] + (_turn_notes(result.evidence) if result.failed else [])
