"""Bug 2, late task notification (claude-agent-sdk-python #788).

A background task that finishes between turns of a ``ClaudeSDKClient`` session has its completion
(and, with CLIs that wake the parent, the whole turn the CLI runs by itself to react to it)
delivered by the *next* ``receive_response()``, which then stops at the wrong ResultMessage.

The oracle judges by cause chains, never by order. The scripted CLI records every frame's cause:
a frame caused by prompt k, by a task that turn k started (``task:ID``: the turn whose frames
carried its ``task_started``), or by the CLI's own turn reacting to such a task (``cli:task:ID``)
belongs to turn k; a frame whose cause names no turn belongs to the turn in progress when it was
emitted. For the ``receive_response()`` call answering prompt k:

* ``stale:KIND``: it yielded a frame of an earlier turn's chain; the kind is ``task_notification``,
  ``task_lifecycle`` (task started / progress / updated, background_tasks_changed) or ``subagent``
  (a subagent's transcript) for a task's frames, ``cli_turn`` for the CLI's reaction turn, ``turn``
  for the earlier prompt's own response (left behind by a call that ended early). State frames
  (session_state_changed, ``sdk_host_only``) are reported apart and never make the verdict;
* ``misattributed``: it did not yield its own answer, or ended on a result of another turn's chain;
* ``hang``: a call never returned; the scripted CLI diagnoses the stall instead of waiting it out;
* ``lost:KIND`` (a trade-off, not the bug: the report accepts filtering): a frame no channel
  delivered while a later frame was. Messages the client hands over on its separate channel
  (:data:`pytest_agentsdk.recording.SIDE_CHANNEL`) count as delivered.

So both fixes the report accepts pass: turn k reading on past its result through its own tasks
and the CLI's reaction, and diverting stale frames to a channel of their own.

Both CLI behaviour models are judged: ``notify-only`` (the completion is reported between turns
and nothing else happens) and ``wake-parent`` (CLI 2.1.330: the CLI reacts with a turn of its own,
as in reference/traces/c_client_bg_2turn). Background tasks run on their own clock
(:class:`TaskClockTransport`): one scripted to end after the next prompt still ends when a fix
keeps the consumer reading in its own turn for it instead.
"""

from __future__ import annotations

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
from ..script import Script, ScriptError, Segment, whole_number
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
    a call that misses its answer shows where that answer goes; and a foreground agent."""
    crossed = [
        _one_task(3 if done == "later" else 2, done, report, progress, pace)
        for done in DONE
        for report in REPORTS
        for progress in (0, 1)
        for pace in (("late", 0) if done in _PACED else (0,))
    ]
    cascade = [_one_task(3, "between", "notification", 0, pace) for pace in ("late", 0)]
    foreground = _one_task(2, "in_turn", "both", 1, 0, background=False)
    return crossed[:1] + cascade + crossed[1:] + [foreground]


def _one_task(prompts: int, done: str, report: str, progress: int, pace: str | int, background: bool = True) -> dict[str, Any]:
    task = {"turn": 0, "background": background, "done": done, "report": report, "progress": progress, "delay": 0, "gap": 0}
    return {"prompts": prompts, "tasks": [task], "pace": [pace] * (prompts - 1), "checkpoints": {}}


SWEEP_AXES = (f"{len(DONE)} timings x {len(REPORTS)} reports x 2 progress, x 2 paces where the pace matters "
              f"({', '.join(sorted(_PACED))}), + the seed's flow with a third turn x 2 paces, + a foreground agent")


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
        reaction: dict[str, Any] = {"cause": f"cli:task:{task.id}", "optional": True}
        if own:
            script.event(f"cli:{task.id}", *_own_turn(task), after=(f"task:{task.id}", len(frames) - 1), **reaction)
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
        and (s.trigger.prompt is not None or (s.trigger.after is not None and s.trigger.after[0] != starter.get(s.cause[5:])))
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
        if task in self._idle_reactions:
            self._released_after.setdefault((segment.name, len(segment.frames) - 1), []).append(self._idle_reactions[task])
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


# ---------------------------------------------------------------- the oracle
#: Task lifecycle frames besides the notification, which is a kind of its own (the seed's symptom).
_LIFECYCLE = frozenset({"system/task_started", "system/task_progress", "system/task_updated", "system/background_tasks_changed"})
#: The kind of frame reported apart: it never makes the verdict.
STATE = "state"


def frame_kind(e: Emission) -> str:
    """What a frame is, naming a stale or lost one: ``state``; by cause, ``cli_turn`` (the CLI's
    reaction turn) or ``turn`` (a prompt's own response, all of it: a call that ended early left it
    behind); else by frame, ``task_notification``, ``task_lifecycle``, ``subagent`` or ``turn``."""
    frame = e.frame
    k = wire.kind(frame)
    if frame.get("sdk_host_only") or k == "system/session_state_changed":
        return STATE
    if e.cause.startswith("cli:"):
        return "cli_turn"
    if e.cause.startswith("prompt:"):
        return "turn"
    if k == "system/task_notification":
        return "task_notification"
    if k in _LIFECYCLE:
        return "task_lifecycle"
    if frame.get("type") in ("assistant", "user") and frame.get("parent_tool_use_id"):
        return "subagent"
    return "turn"


def chain_turns(log: TransportLog) -> dict[int, int]:
    """The turn (0-based prompt) each emitted frame belongs to, by ``seq``, along cause chains: a
    task's frames to the turn whose frame started it, the CLI's reaction to the task's turn."""
    task_turn: dict[str, int] = {}
    turns: dict[int, int] = {}
    for e in log.emissions:
        turn = turns[e.seq] = _chain_turn(e, task_turn)
        if wire.kind(e.frame) == "system/task_started" and e.frame.get("task_id"):
            task_turn.setdefault(e.frame["task_id"], turn)
    return turns


def _chain_turn(e: Emission, task_turn: dict[str, int]) -> int:
    head, _, rest = e.cause.partition(":")
    if head == "prompt" and rest.isdigit():
        return int(rest)
    task = e.cause.removeprefix("cli:")
    if task.startswith("task:") and task[5:] in task_turn:
        return task_turn[task[5:]]
    return e.prompts_before - 1  # no chain: the turn in progress when it was emitted


@dataclass
class TurnReport:
    """What one ``receive_response()`` call yielded of earlier turns' chains, and how it ended."""

    turn: int
    stale: list[str] = field(default_factory=list)  # those frames, described
    stale_at: list[int] = field(default_factory=list)  # their positions among the call's messages
    stale_kinds: list[str] = field(default_factory=list)  # their kinds (frame_kind)
    state: list[str] = field(default_factory=list)  # state frames of earlier turns: apart, never the verdict
    ended_on: str | None = None  # the cause of the call's last ResultMessage
    answered: bool = False  # it yielded the result answering its prompt
    misattributed: bool = False


@dataclass
class Isolation:
    """The oracle's reading of a recorded session."""

    turns: list[TurnReport]
    lost: list[str]  # frames no channel delivered while a later one was, described
    lost_kinds: list[str]
    diverted: list[str] = field(default_factory=list)  # delivered on the client's separate channel
    hang: str | None = None  # the scripted CLI's stall diagnosis
    hung_turn: int | None = None  # the turn whose call never returned

    @property
    def manifestations(self) -> list[str]:
        names = {f"stale:{kind}" for t in self.turns for kind in t.stale_kinds}
        if any(t.misattributed for t in self.turns):
            names.add("misattributed")
        return sorted(names)

    @property
    def tradeoffs(self) -> list[str]:
        """What a fix gave up: ``lost:KIND`` per kind of frame dropped with no channel left."""
        return sorted({f"lost:{kind}" for kind in self.lost_kinds if kind != STATE})

    def evidence(self) -> dict[str, Any]:
        bad = [t for t in self.turns if t.stale or t.misattributed]
        evidence: dict[str, Any] = {
            "turns": [
                {"turn": t.turn, "stale": t.stale, "kinds": t.stale_kinds, "ended_on": t.ended_on, "answered": t.answered,
                 "misattributed": t.misattributed}
                for t in bad
            ],
            "lost": self.lost,
        }
        if state := [f"turn {t.turn}: {frame}" for t in self.turns for frame in t.state]:
            evidence["state"] = state
        if self.diverted:
            evidence["side_channel"] = self.diverted
        if self.hang:
            evidence["hung_turn"] = self.hung_turn
        return evidence

    def describe(self) -> str:
        lines = []
        for t in self.turns:
            if t.stale:
                lines.append(f"turn {t.turn}: {len(t.stale)} stale frame(s) of earlier turns ({', '.join(sorted(set(t.stale_kinds)))}): " + "; ".join(t.stale))
            if t.misattributed:
                lines.append(f"turn {t.turn}: {_end(t.turn, t.ended_on, t.answered)}")
            if t.state:
                lines.append(f"turn {t.turn}: {len(t.state)} state frame(s) of earlier turns (not counted): " + "; ".join(t.state))
        if self.hang:
            where = f"turn {self.hung_turn}'s call" if self.hung_turn is not None else "the session"
            lines.append(f"{where} never returned: {self.hang}")
        return "\n".join(lines)


def _end(turn: int, ended_on: str | None, answered: bool) -> str:
    """How a misattributed call ended, in words."""
    if not answered:
        return f"ended on {ended_on or 'no result'}, not the result answering prompt {turn}"
    return f"yielded its answer but ended on {ended_on}, of another turn's chain"


def _describe(e: Emission, turns: dict[int, int]) -> str:
    frame = e.frame
    what = wire.kind(frame)
    if frame.get("task_id"):
        what += f" {frame['task_id']}"
    if frame.get("type") == "result":
        what += f" {frame.get('result')!r}"
    elif frame.get("type") == "assistant":
        texts = [b.get("text") or b.get("name") for b in frame["message"]["content"]]
        what += f" {' '.join(map(str, texts))!r}"
    return f"{what} [{e.cause} of turn {turns[e.seq]}, emitted with {e.prompts_before} prompt(s) written]"


def _as_call(turn: int, call: Call | Sequence[Any]) -> Call:
    """A plain list of messages is the completed receive_response() call of prompt ``turn``."""
    if isinstance(call, Call):
        return call
    return Call("receive_response", turn + 1, list(call), completed=True)


def _judge_call(call: Call, mine: list[Emission], turns: dict[int, int]) -> TurnReport:
    report = TurnReport(call.turn)
    for i, e in enumerate(mine):
        if turns[e.seq] >= call.turn:
            continue
        kind = frame_kind(e)
        if kind == STATE:
            report.state.append(_describe(e, turns))
        else:
            report.stale.append(_describe(e, turns))
            report.stale_at.append(i)
            report.stale_kinds.append(kind)
    results = [e for e in mine if e.frame.get("type") == "result"]
    report.ended_on = f"result of {results[-1].cause}" if results else None
    report.answered = any(e.cause == f"prompt:{call.turn}" for e in results)
    # a call that raised or was left early has no end to judge
    report.misattributed = call.completed and not (report.answered and turns[results[-1].seq] == call.turn)
    return report


def judge_session(
    log: TransportLog | ScriptedTransport,
    calls: Sequence[Call | Sequence[Any]] | RecordingClient,
    parse: Callable[[dict[str, Any]], Any] | None = None,
) -> Isolation:
    """Read a recorded session with the turn-isolation oracle (see the module docstring).

    ``calls`` are :class:`Call` records, or plain lists of the messages each
    ``receive_response()`` yielded, the k-th list answering prompt k; a :class:`RecordingClient`
    also brings what the client handed over on its separate channel.
    """
    log = log.log if isinstance(log, ScriptedTransport) else log
    recorder = calls if isinstance(calls, RecordingClient) else None
    records = [_as_call(k, c) for k, c in enumerate(recorder.calls if recorder else calls)]
    parse = parse or parse_message()
    delivered = log.consumer_frames(parse)
    matched = log.attribute([m for c in records for m in c.messages], delivered)
    diverted = log.attribute(recorder.side_messages, delivered) if recorder else []
    turns = chain_turns(log)
    reports = []
    pos = 0
    for call in records:
        mine = matched[pos : pos + len(call.messages)]
        pos += len(call.messages)
        if call.method == "receive_response":
            reports.append(_judge_call(call, mine, turns))
    received = {e.seq for e in matched + diverted}
    last = max(received, default=0)
    # host-only frames: releases from 0.2.160 drop them by design
    lost = [e for e, _ in delivered if e.seq < last and e.seq not in received and not e.frame.get("sdk_host_only")]
    hung = next((c.turn for c in records if not c.completed), None) if log.stall else None
    return Isolation(reports, [_describe(e, turns) for e in lost], [frame_kind(e) for e in lost],
                     [_describe(e, turns) for e in diverted], log.stall, hung)


def assert_turn_isolation(
    log: TransportLog | ScriptedTransport,
    calls: Sequence[Call | Sequence[Any]] | RecordingClient,
    parse: Callable[[dict[str, Any]], Any] | None = None,
) -> Isolation:
    """Fail if any ``receive_response()`` call yielded a frame of an earlier turn's chain (stale),
    did not end on its own answer (misattributed), or a call hung.

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
        return st.integers(2, 3).flatmap(_examples_with)

    def run_example(self, example: Any, backend: str, model: str | None) -> Outcome:
        script = build_script(example, model or "wake-parent")
        prompts = example.get("prompts", 2)
        pace = _pace(example, prompts)
        outcome = outcome_of(run_in_fresh_loop(lambda: play(script, pace, prompts), backend))
        for what in ("lost", "state"):
            if frames := outcome.evidence.get(what):
                seen = self._asides.setdefault((backend, model), {}).setdefault(flow(example), {}).setdefault(what, [])
                seen += [frame for frame in frames if frame not in seen]
        return outcome

    def sweep(self, model: str | None) -> Sweep:
        """The known classes (:func:`sweep_examples`), the seed's flow first."""
        self._asides = {key: v for key, v in self._asides.items() if key[1] != model}  # a judgement starts
        return Sweep(sweep_examples(), SWEEP_AXES)

    def group(self, example: Any) -> str | None:
        return flow(example)

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
            notes.append(f"turn {turn['turn']} {_end(turn['turn'], turn['ended_on'], turn['answered'])}")
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
