"""Bug 3, premature completion: a subagent stops mid-work, yet its task is reported ``completed``.

The lie is made by the CLI (anthropics/claude-code#47936): a background agent whose last assistant
messages carry ``stop_reason: None`` and a tool call left unanswered is announced to the parent as
``task_notification[completed]``; the only difference from a real success is a missing result.
Over the scripted CLI this module plays lies and truthful completions and compares what the CLI
said (the ground truth) with the typed messages the SDK hands the consumer:
``untruthful_completed_passed_through`` (the lie reached the consumer as ``completed``: the bug),
``truthful_reported_failed`` (a clean finish reported ``failed``/``stopped``: a false alarm a fix
can introduce) and ``failure_reported_completed`` (a failure turned into ``completed``).

Three parts, usable apart:

* the **oracle** (:func:`audit`) over a normalized view (:func:`transcript`) built from either the
  typed messages a session yields (read through the typed fields a consumer reads, raw ``data``
  only where the release's class has no such field, recorded in ``Transcript.from_raw``) or raw
  stdout frames of a real CLI;
* the **public guard** :func:`find_untruthful_completions` / :func:`assert_truthful_completions`;
* the **scenario**: scripted subagent transcripts (Hypothesis examples as JSON), their sweep, the
  query() and ClaudeSDKClient drivers, and a detectability probe of the installed release's typed API.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

from .. import wire
from ..compat import SdkInfo
from ..explore import Outcome, Scenario, Sweep, run_in_fresh_loop
from ..script import Script, ScriptError, whole_number
from ..verdict import Result


# ================================================================ normalized view
class _Unknown:
    """A field the source does not carry (e.g. ``stop_reason`` on a release without it)."""

    def __repr__(self) -> str:
        return "unknown"


UNKNOWN: Any = _Unknown()


@dataclass(frozen=True)
class Step:
    """One message of a subagent's transcript (the frames whose ``parent_tool_use_id`` is its spawn)."""

    position: int
    role: str  # "assistant" | "user"
    stop_reason: Any  # str | None | UNKNOWN
    tool_uses: tuple[tuple[str, str], ...] = ()  # (tool_use id, tool name)
    tool_results: tuple[str, ...] = ()  # tool_use ids answered
    text: str = ""

    def describe(self) -> str:
        """The seed report's notation, after the message's index: ``#7 [assistant] stop_reason: None TOOL: Read(id)``."""
        parts = [f"#{self.position} [{self.role}]"]
        if self.role == "assistant":
            parts.append(f"stop_reason: {self.stop_reason}")
        if self.text:
            parts.append(f"TEXT: {self.text[:60]!r}")
        parts += [f"TOOL: {name}({tid})" for tid, name in self.tool_uses]
        parts += [f"RESULT for {tid}" for tid in self.tool_results]
        return " ".join(parts)


@dataclass(frozen=True)
class Report:
    """A terminal status a task_notification or task_updated message claims."""

    status: str
    source: str  # "task_notification" | "task_updated"
    has_result: bool  # a ``result`` or ``summary_is_report`` (the ``<result>`` the parent sees)


@dataclass
class Task:
    task_id: str
    tool_use_id: str | None = None
    backgrounded: bool | None = None
    reports: list[Report] = field(default_factory=list)

    @property
    def statuses(self) -> list[str]:
        return [r.status for r in self.reports]


@dataclass
class Transcript:
    """What a session showed about its tasks, from typed messages or raw frames alike."""

    tasks: dict[str, Task] = field(default_factory=dict)
    agents: dict[str, list[Step]] = field(default_factory=dict)  # spawn tool_use id -> steps
    agent_ids: dict[str, str] = field(default_factory=dict)  # agent_id (raw frames only) -> spawn id
    parent_results: dict[str, tuple[bool, str]] = field(default_factory=dict)  # spawn id -> (is_error, text)
    missing: set[str] = field(default_factory=set)  # fields the source lacked, e.g. "stop_reason"
    #: typed fields the release's classes lack, read from the message's raw ``data`` instead
    #: (e.g. "TaskNotificationMessage.result"); empty for raw frames
    from_raw: set[str] = field(default_factory=set)

    def task(self, task_id: str) -> Task:
        return self.tasks.setdefault(task_id, Task(task_id))

    def steps_of(self, task: Task) -> list[Step]:
        spawn = task.tool_use_id or self.agent_ids.get(task.task_id)
        return self.agents.get(spawn, []) if spawn else []


#: What the oracle reads from each task message, and where each field sits in a raw frame.
_TASK_FIELDS: dict[str, dict[str, tuple[str, ...]]] = {
    "system/task_started": {"task_id": ("task_id",), "tool_use_id": ("tool_use_id",), "is_backgrounded": ("is_backgrounded",)},
    "system/task_notification": {"task_id": ("task_id",), "tool_use_id": ("tool_use_id",), "status": ("status",),
                                 "result": ("result",), "summary_is_report": ("summary_is_report",)},
    "system/task_updated": {"task_id": ("task_id",), "status": ("patch", "status")},
}


def _dig(data: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        data = data.get(key) if isinstance(data, dict) else None
    return data


def _task_fields(message: Any, kind: str, from_raw: set[str]) -> dict[str, Any]:
    """The fields of one task message: the typed attribute where the release's class has one (what
    a consumer reads), else the raw frame: the dict itself, or a typed message's ``data`` (noted
    in ``from_raw`` as ``Class.field``, ``SystemMessage[subtype].field`` where it has no class)."""
    if isinstance(message, dict):
        return {name: _dig(message, path) for name, path in _TASK_FIELDS[kind].items()}
    typed = {f.name for f in dataclasses.fields(message)} - {"subtype", "data"}
    cls = type(message).__name__
    where = f"{cls}[{message.subtype}]" if cls == "SystemMessage" else cls  # a release with no typed class for it
    out: dict[str, Any] = {}
    for name, path in _TASK_FIELDS[kind].items():
        if name in typed:
            out[name] = getattr(message, name)
        else:
            out[name] = _dig(message.data, path)
            from_raw.add(f"{where}.{name}")
    return out


def _text_of(content: Any) -> str:
    """Plain text of a tool result / message content (str, list of blocks or block objects)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(_text_of(b.get("text", "") if isinstance(b, dict) else getattr(b, "text", "")) for b in content)
    return ""


def _block_fields(block: Any) -> dict[str, Any]:
    """A content block as a dict, whether raw or a typed ``*Block`` dataclass."""
    if isinstance(block, dict):
        return block
    name = type(block).__name__
    kind = {"TextBlock": "text", "ToolUseBlock": "tool_use", "ToolResultBlock": "tool_result"}.get(name, name)
    return {"type": kind, **{f.name: getattr(block, f.name) for f in dataclasses.fields(block)}}


def _conversation_frame(message: Any, role: str) -> dict[str, Any]:
    """A typed AssistantMessage / UserMessage as a raw-frame-shaped dict of its typed fields."""
    fields = {f.name for f in dataclasses.fields(message)}
    content = message.content
    body: dict[str, Any] = {"content": [_block_fields(b) for b in content] if isinstance(content, list) else content}
    if role == "assistant":
        body["stop_reason"] = message.stop_reason if "stop_reason" in fields else UNKNOWN
    parent = message.parent_tool_use_id if "parent_tool_use_id" in fields else UNKNOWN
    return {"type": role, "message": body, "parent_tool_use_id": parent}


def _kind(message: Any) -> str | None:
    """``type/subtype`` of a raw frame or typed message (None: a message this oracle ignores)."""
    if isinstance(message, dict):
        return wire.kind(message)
    if isinstance(getattr(message, "data", None), dict) and hasattr(message, "subtype"):  # SystemMessage and subclasses
        return f"system/{message.subtype}"
    return {"AssistantMessage": "assistant", "UserMessage": "user"}.get(type(message).__name__)


def transcript(messages: Iterable[Any]) -> Transcript:
    """Normalize what a session yielded (typed Message objects) or what a CLI wrote (dict frames)."""
    view = Transcript()
    for position, message in enumerate(messages):
        kind = _kind(message)
        if kind in _TASK_FIELDS:
            _absorb_task(view, kind, _task_fields(message, kind, view.from_raw))
        elif kind in ("assistant", "user"):
            _absorb_conversation(view, position, message if isinstance(message, dict) else _conversation_frame(message, kind))
    return view


def _absorb_task(view: Transcript, kind: str, fields: dict[str, Any]) -> None:
    if kind != "system/task_started" and fields["status"] is None:
        return  # a task_updated patch that is no status change
    task = view.task(str(fields["task_id"]))
    task.tool_use_id = task.tool_use_id or fields.get("tool_use_id")
    if kind == "system/task_started":
        task.backgrounded = task.backgrounded if fields["is_backgrounded"] is None else bool(fields["is_backgrounded"])
    else:
        has_result = bool(fields.get("result")) or bool(fields.get("summary_is_report"))
        task.reports.append(Report(str(fields["status"]), kind.split("/")[1], has_result))


def _absorb_conversation(view: Transcript, position: int, frame: dict[str, Any]) -> None:
    body = frame.get("message") or {}
    content = body.get("content")
    blocks = [b for b in content if isinstance(b, dict)] if isinstance(content, list) else []
    parent = frame.get("parent_tool_use_id")
    if parent is UNKNOWN:
        view.missing.add("parent_tool_use_id")
        return
    stop = body.get("stop_reason") if "stop_reason" in body else UNKNOWN
    if stop is UNKNOWN and frame["type"] == "assistant":
        view.missing.add("stop_reason")
    results = [b for b in blocks if b.get("type") == "tool_result"]
    if parent is None:  # the parent's own conversation: keep what it got back for each spawn
        for b in results:
            view.parent_results[str(b.get("tool_use_id"))] = (bool(b.get("is_error")), _text_of(b.get("content")))
        return
    if frame.get("agent_id"):
        view.agent_ids[str(frame["agent_id"])] = parent
    if frame["type"] == "user" and not results:
        return  # the subagent's prompt: not a step of its work
    view.agents.setdefault(parent, []).append(
        Step(
            position=position,
            role=frame["type"],
            stop_reason=stop if frame["type"] == "assistant" else None,
            tool_uses=tuple((str(b.get("id")), str(b.get("name"))) for b in blocks if b.get("type") == "tool_use"),
            tool_results=tuple(str(b.get("tool_use_id")) for b in results),
            text=" ".join(str(b.get("text", "")) for b in blocks if b.get("type") == "text").strip(),
        )
    )


# ================================================================ the oracle
@dataclass(frozen=True)
class UntruthfulCompletion:
    """A task reported ``completed`` whose agent did not end cleanly."""

    task_id: str
    reason: str
    reported_by: tuple[str, ...]  # "task_notification", "task_updated"
    last_frames: tuple[str, ...]  # the agent's last steps, in the seed report's notation
    tool_use_id: str | None = None

    def __str__(self) -> str:
        return f"task {self.task_id}: reported completed ({', '.join(self.reported_by)}) but {self.reason}; last frames: {' | '.join(self.last_frames)}"


@dataclass
class Audit:
    untruthful: list[UntruthfulCompletion] = field(default_factory=list)
    #: tasks reported completed whose agent did end cleanly (the claim holds)
    truthful: list[str] = field(default_factory=list)
    #: completed tasks the source did not carry enough to judge: task id -> why
    undecided: dict[str, str] = field(default_factory=dict)


def _unanswered(steps: list[Step]) -> list[tuple[str, str]]:
    answered = {tid for s in steps for tid in s.tool_results}
    return [(tid, name) for s in steps for tid, name in s.tool_uses if tid not in answered]


def _result_present(view: Transcript, task: Task, completed: list[Report]) -> bool:
    """A finished agent's result: in the report, or (foreground) the parent's tool result."""
    if any(r.has_result for r in completed):
        return True
    if task.backgrounded is False and task.tool_use_id in view.parent_results:
        is_error, text = view.parent_results[task.tool_use_id]
        return not is_error and bool(text.strip())
    return False


def _why_untruthful(view: Transcript, task: Task, completed: list[Report]) -> tuple[str | None, str | None]:
    """(reason the completed claim is false, reason it cannot be judged); at most one is set."""
    steps = view.steps_of(task)
    if not steps:
        if "parent_tool_use_id" in view.missing:
            return None, "messages carry no parent_tool_use_id, so the agent's frames cannot be attributed"
        return None, None  # no agent transcript (e.g. a bash task): nothing to judge
    if pending := _unanswered(steps):
        calls = ", ".join(f"{name}({tid})" for tid, name in pending)
        return f"its agent left tool call(s) {calls} unanswered", None
    if _result_present(view, task, completed):
        return None, None
    last = steps[-1]
    if last.role == "user":
        return "its agent stopped right after a tool result, without answering it, and no result was reported", None
    if last.stop_reason is UNKNOWN:
        return None, (
            "the assistant messages carry no stop_reason (this release's AssistantMessage has no such field), "
            "so an agent whose last message is text cut off (stop_reason None) looks the same as one that ended its turn"
        )
    if last.stop_reason != "end_turn":
        return f"its agent's last assistant message has stop_reason {last.stop_reason!r} (not end_turn) and no result was reported", None
    return None, None


def audit(messages: Iterable[Any]) -> Audit:
    """Judge every ``completed`` report; ``failed``/``stopped`` reports are truthful by definition."""
    return _audit(transcript(messages))


def _audit(view: Transcript) -> Audit:
    found = Audit()
    for task in view.tasks.values():
        completed = [r for r in task.reports if r.status == "completed"]
        if not completed:
            continue
        why, undecided = _why_untruthful(view, task, completed)
        if undecided:
            found.undecided[task.task_id] = undecided
        if why:
            found.untruthful.append(
                UntruthfulCompletion(
                    task_id=task.task_id,
                    reason=why,
                    reported_by=tuple(dict.fromkeys(r.source for r in completed)),
                    last_frames=tuple(s.describe() for s in view.steps_of(task)[-3:]),
                    tool_use_id=task.tool_use_id,
                )
            )
        elif not undecided and view.steps_of(task):
            found.truthful.append(task.task_id)
    return found


# ================================================================ the public guard
def find_untruthful_completions(messages: Iterable[Any]) -> list[UntruthfulCompletion]:
    """The tasks a session reported ``completed`` although their agent stopped mid-work.

    Feed it every message the session yielded (typed ``Message`` objects, in order), or raw stdout
    frames (dicts) of a CLI. Typed messages are read through the fields a consumer reads (the task
    messages' ``status``, ``task_id``, ``tool_use_id``; content blocks, ``stop_reason``,
    ``parent_tool_use_id``), their raw ``data`` only for what the release has no typed field for
    (a report's ``result``). A ``failed`` or ``stopped`` report is never flagged.
    """
    return audit(messages).untruthful


def assert_truthful_completions(messages: Iterable[Any]) -> None:
    """Fail a test when a task was reported ``completed`` although its agent stopped mid-work."""
    if found := find_untruthful_completions(messages):
        raise AssertionError(
            f"{len(found)} task(s) reported completed but their agent stopped mid-work "
            "(anthropics/claude-code#47936; retry them or treat them as failed):\n" + "\n".join(f"  {f}" for f in found)
        )


# ================================================================ scripted subagent transcripts
ENDS = ("unanswered_tool_use", "after_tool_result", "text_cut", "end_turn")
STATUSES = ("completed", "failed", "stopped")
VIAS = ("notification", "both", "updated")
DRIVERS = ("query", "client")


def agent_ids(i: int) -> tuple[str, str]:
    """(task id, spawning tool_use id) of agent ``i``."""
    return f"a{i:03d}", f"toolu_spawn_{i}"


def _agent_work(i: int, agent: dict[str, Any]) -> list[dict[str, Any]]:
    """The subagent's own frames: tool pairs, progress, then how it ends."""
    task_id, spawn = agent_ids(i)
    on: dict[str, Any] = {"parent_tool_use_id": spawn, "agent_id": task_id}
    frames: list[dict[str, Any]] = []

    def call(j: int, answered: bool) -> None:
        tid = f"toolu_{i}_{j}"
        frames.append(
            wire.assistant(f"Let me read source {j}.", wire.tool_use(tid, "Read", {"source_id": f"src{j}"}),
                           stop_reason=None, message_id=f"msg_{i}_{j}", **on)
        )
        if agent.get("progress"):
            frames.append(wire.task_progress(task_id, tool_uses=j + 1, last_tool_name="Read", tool_use_id=spawn))
        if answered:
            frames.append(wire.user_tool_result(tid, f"contents of src{j}", **on))

    tools = int(agent.get("tools", 0))
    for j in range(tools):
        call(j, answered=True)
    end = agent["end"]
    if end in ("unanswered_tool_use", "after_tool_result"):
        call(tools, answered=end == "after_tool_result")
    elif end == "text_cut":
        frames.append(wire.assistant("Let me read the S-1 for patent expiry details...", stop_reason=None,
                                     message_id=f"msg_{i}_end", **on))
    else:
        frames.append(wire.assistant(_report_text(i), stop_reason="end_turn", message_id=f"msg_{i}_end", **on))
    return frames


def _report_text(i: int) -> str:
    return f"REPORT {i}: all sources read; findings written to notes_{i}.md."


def _description(i: int, agent: dict[str, Any]) -> str:
    return str(agent.get("description") or f"Research batch {i}")


def _terminal(i: int, agent: dict[str, Any]) -> list[dict[str, Any]]:
    """The CLI's terminal report: task_updated and/or task_notification, as the real CLI shapes them."""
    task_id, spawn = agent_ids(i)
    status = agent["report"]
    frames = []
    extra: dict[str, Any] = {}
    if agent["via"] in ("updated", "both"):
        frames.append(wire.task_updated(task_id, status))
    if agent["via"] in ("notification", "both"):
        if agent.get("result"):
            summary, extra = _last_text(i, agent), {"summary_is_report": True}
        else:
            summary = f'Agent "{_description(i, agent)}" {status}'
        frames.append(wire.task_notification(task_id, status, summary, tool_use_id=spawn,
                                             usage={"total_tokens": 100, "tool_uses": int(agent.get("tools", 0)), "duration_ms": 5}, **extra))
    return frames


def _last_text(i: int, agent: dict[str, Any]) -> str:
    """The text the CLI uses as the report: the agent's last text (what d_query_bgnull shows)."""
    texts = [wire_text for f in _agent_work(i, agent) for wire_text in _texts(f)]
    return texts[-1] if texts else ""


def _texts(frame: dict[str, Any]) -> list[str]:
    if frame.get("type") != "assistant":
        return []
    return [b["text"] for b in frame["message"]["content"] if b.get("type") == "text"]


def validate_example(example: Any) -> dict[str, Any]:
    """A (replayed) example checked field by field; ScriptError names the first bad one."""
    if not isinstance(example, dict):
        raise ScriptError("example: expected a JSON object with driver, agents, interleave, gap")
    if example.get("driver") not in DRIVERS:
        raise ScriptError(f"example.driver: {example.get('driver')!r} is not one of {', '.join(DRIVERS)}")
    whole_number("example.gap", example.get("gap", 0))
    agents = example.get("agents")
    if not isinstance(agents, list) or not agents:
        raise ScriptError("example.agents: give a non-empty list of agent objects")
    choices = {"end": ENDS, "report": STATUSES, "via": VIAS, "background": (True, False), "result": (True, False)}
    for i, agent in enumerate(agents):
        if not isinstance(agent, dict):
            raise ScriptError(f"example.agents[{i}]: an agent is a JSON object")
        for key, allowed in choices.items():
            if agent.get(key) not in allowed:
                raise ScriptError(f"example.agents[{i}].{key}: {agent.get(key)!r} is not one of {', '.join(map(str, allowed))}")
        whole_number(f"example.agents[{i}].tools", agent.get("tools", 0))
    return example


def build_script(example: dict[str, Any]) -> Script:
    """The example as a Script: turn 0 spawns every agent; foreground agents run inside it, the
    background ones (and the CLI's own turn reacting to them) right after its result."""
    agents = validate_example(example)["agents"]
    turn: list[dict[str, Any]] = [wire.system_init()]
    for i, agent in enumerate(agents):
        _, spawn = agent_ids(i)
        turn.append(wire.assistant(wire.tool_use(spawn, "Agent", {"description": _description(i, agent), "prompt": "Do the research.",
                                                                   "run_in_background": bool(agent["background"])}),
                                   stop_reason=None, message_id="msg_main"))
    for i, agent in enumerate(agents):
        task_id, spawn = agent_ids(i)
        turn.append(wire.task_started(task_id, _description(i, agent), tool_use_id=spawn, is_backgrounded=bool(agent["background"])))
        if agent["background"]:
            turn.append(wire.user_tool_result(spawn, f"Async agent launched successfully. agentId: {task_id}"))
        else:
            answer = _last_text(i, agent) if agent.get("result") else ""
            turn += _agent_work(i, agent) + _terminal(i, agent) + [wire.user_tool_result(spawn, answer, is_error=agent["report"] != "completed")]
    turn += [wire.assistant("MAIN: agents dispatched.", message_id="msg_main_end"), wire.result("dispatched")]
    script = Script(eof="close" if example["driver"] == "client" else "end_input").turn(*turn)
    background = [(i, a) for i, a in enumerate(agents) if a["background"]]
    if background:
        script.event("agents", *_background_frames(background, bool(example.get("interleave"))), cause="task:agents",
                     after=("turn0", len(turn) - 1), gap=int(example.get("gap", 0)))
    return script.validate()


def _background_frames(agents: list[tuple[int, dict[str, Any]]], interleave: bool) -> list[dict[str, Any]]:
    """Every background agent's work and report (round-robin when interleaved), then the CLI's own turn."""
    lanes = [_agent_work(i, a) + _terminal(i, a) for i, a in agents]
    if interleave:
        frames = [lane[k] for k in range(max(map(len, lanes))) for lane in lanes if k < len(lane)]
    else:
        frames = [f for lane in lanes for f in lane]
    return frames + [wire.system_init(), wire.assistant("MAIN: I received the task notifications.", message_id="msg_wake"),
                     wire.result("noted")]


def seed_example() -> dict[str, Any]:
    """The seed report: two background research agents, one dies mid-work (tool call pending), one
    finishes; both are announced ``completed``, only the second with a result."""
    return {
        "driver": "query",
        "interleave": False,
        "gap": 0,
        "agents": [
            {"end": "unanswered_tool_use", "report": "completed", "via": "notification", "result": False,
             "background": True, "tools": 2, "progress": True, "description": "Research TERN-501 and TERN-801"},
            {"end": "end_turn", "report": "completed", "via": "notification", "result": True,
             "background": True, "tools": 2, "progress": True, "description": "Research ORX142 and ORX489"},
        ],
    }


def _agents() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({
        "end": st.sampled_from(ENDS),
        "report": st.sampled_from(STATUSES),
        "via": st.sampled_from(VIAS),
        "result": st.booleans(),
        "background": st.sampled_from((True, False)),
        "tools": st.integers(0, 3),
        "progress": st.booleans(),
    })


def examples() -> st.SearchStrategy[dict[str, Any]]:
    """JSON examples; the simplest is one background agent dying on an unanswered tool call."""
    return st.fixed_dictionaries({
        "driver": st.sampled_from(DRIVERS),
        "agents": st.lists(_agents(), min_size=1, max_size=3),
        "interleave": st.booleans(),
        "gap": st.integers(0, 2),
    })


# ================================================================ drivers
@dataclass
class Session:
    """What one scripted session produced: the consumer's messages and the CLI's frames."""

    received: list[Any]
    emitted: list[dict[str, Any]]


def run_session(example: dict[str, Any], backend: str = "asyncio") -> Session:
    """Play ``example`` to the real SDK through the chosen driver in a fresh event loop."""
    from ..transport import ScriptedTransport

    transport = ScriptedTransport(build_script(example))
    received: list[Any] = []
    turns = 1 + any(a["background"] for a in example["agents"])

    async def via_query() -> None:
        from claude_agent_sdk import query

        async for message in query(prompt="Research these assets.", transport=transport):
            received.append(message)

    async def via_client() -> None:
        from claude_agent_sdk import ClaudeSDKClient

        async with ClaudeSDKClient(transport=transport) as client:
            await client.query("Research these assets.")
            for _ in range(turns):
                async for message in client.receive_response():
                    received.append(message)

    run_in_fresh_loop(via_query if example["driver"] == "query" else via_client, backend)
    return Session(received, [e.frame for e in transport.log.emissions])


# ================================================================ the scenario
PASSED_THROUGH = "untruthful_completed_passed_through"
FALSE_ALARM = "truthful_reported_failed"
FAILURE_HIDDEN = "failure_reported_completed"

SEMANTICS = (
    "Ground truth is what the scripted CLI emitted, judged by the oracle; the consumer's view is the typed "
    f"messages the SDK yielded. {PASSED_THROUGH}: the CLI's untruthful 'completed' reached the consumer as "
    f"completed (the SDK passed the claim through untouched); {FALSE_ALARM}: a completion the CLI reported "
    f"truthfully (its agent ended cleanly) reached the consumer as failed or stopped; {FAILURE_HIDDEN}: a failed "
    "or stopped report reached the consumer as completed. An SDK that reports the lie as failed or stopped and "
    "changes nothing else is judged fixed."
)


def agent_example(driver: str = "query", **agent: Any) -> dict[str, Any]:
    """One agent: by default a background agent that dies on an unanswered tool call after one
    answered, announced ``completed`` by a task_notification without result; ``agent`` overrides."""
    defaults = {"end": "unanswered_tool_use", "report": "completed", "via": "notification", "result": False,
                "background": True, "tools": 1, "progress": True}
    return {"driver": driver, "interleave": False, "gap": 0, "agents": [{**defaults, **agent}]}


def lie_example(end: str, driver: str = "query") -> dict[str, Any]:
    """One background agent dying with ``end`` and announced ``completed`` without a result."""
    return agent_example(driver, end=end)


def sweep_examples() -> list[dict[str, Any]]:
    """The seed's flow; one agent per ending x via x driver x background or foreground x with or
    without result, all reported ``completed`` (the lies and the truthful completions); then the
    truthful failures: a dead agent reported ``failed`` or ``stopped``, per via x driver x
    background or foreground."""
    sides = (True, False)
    completions = [agent_example(driver, end=end, via=via, background=background, result=result)
                   for end, via, driver, background, result in itertools.product(ENDS, VIAS, DRIVERS, sides, (False, True))]
    failures = [agent_example(driver, report=report, via=via, background=background)
                for report, via, driver, background in itertools.product(STATUSES[1:], VIAS, DRIVERS, sides)]
    return [seed_example(), *completions, *failures]


SWEEP_AXES = (f"the seed's flow + {len(ENDS)} endings x {len(VIAS)} vias x {len(DRIVERS)} drivers x background/foreground"
              f" x with/without result, reported completed + {len(STATUSES) - 1} failure reports x {len(VIAS)} vias"
              f" x {len(DRIVERS)} drivers x background/foreground")


def judge_session(session: Session) -> Outcome:
    """Task by task, what the CLI emitted (judged by the oracle) against what the consumer was told.

    A task whose report never reached the consumer is a trade-off (``task_report``), not a
    manifestation: the lie is gone, and so is the news.
    """
    emitted = transcript(session.emitted)
    truth = _audit(emitted)
    told = transcript(session.received)
    lies = {f.task_id: f for f in truth.untruthful}
    flagged = {f.task_id for f in _audit(told).untruthful}
    shown: list[str] = []
    records: list[dict[str, Any]] = []
    dropped = False
    for task in emitted.tasks.values():
        said = task.statuses
        heard = told.tasks[task.task_id].statuses if task.task_id in told.tasks else []
        if said and not heard:
            dropped = True
        if task.task_id in lies and "completed" in heard:
            name = PASSED_THROUGH
        elif task.task_id in truth.truthful and set(heard) - {"completed"}:
            name = FALSE_ALARM
        elif said and "completed" not in said and "completed" in heard:
            name = FAILURE_HIDDEN
        else:
            continue
        shown.append(name)
        record: dict[str, Any] = {"task_id": task.task_id, "shows": name, "cli_reported": said, "consumer_told": heard,
                                  "last_frames": [s.describe() for s in emitted.steps_of(task)[-3:]]}
        if lie := lies.get(task.task_id):
            record.update(reported_by=list(lie.reported_by), why_false=lie.reason, guard_flags_it=task.task_id in flagged)
        records.append(record)
    evidence: dict[str, Any] = {"semantics": SEMANTICS, "tasks": records}
    if told.from_raw:
        evidence["read_from_raw_data"] = sorted(told.from_raw)
    return Outcome(sorted(set(shown)), None, evidence, ["task_report"] if dropped else [])


class PrematureCompletion(Scenario):
    name = "premature_completion"

    def not_applicable(self, sdk: SdkInfo, backend: str, model: str | None) -> str | None:
        if not sdk.has("typed_task_messages"):
            return "release has no typed task messages (TaskNotificationMessage): task reports reach the consumer as generic SystemMessages"
        return super().not_applicable(sdk, backend, model)

    def examples(self, model: str | None) -> st.SearchStrategy[Any]:
        return examples()

    def sweep(self, model: str | None) -> Sweep:
        return Sweep(sweep_examples(), SWEEP_AXES)

    def run_example(self, example: Any, backend: str, model: str | None) -> Outcome:
        return judge_session(run_session(example, backend))

    def annotate(self, result: Result, sdk: SdkInfo) -> None:
        if result.verdict not in ("reproduced", "fixed"):
            return
        probe = detectability(result.backend)
        result.evidence.update(probe)
        result.evidence.setdefault("semantics", SEMANTICS)
        seen = "yes" if probe["detectable_by_consumer"] else "no"
        result.notes = [f"detectable by the consumer through the typed API: {seen} ({probe['detectability_reason']})"]
        if probe["read_from_raw_data"]:
            result.notes.append("read from raw message.data (this release's typed classes have no such field): "
                                + ", ".join(probe["read_from_raw_data"]))


def detectability(backend: str) -> dict[str, Any]:
    """Can a consumer of the installed release see each shape of the lie through the typed API?

    Found by playing each shape (announced by task_updated and task_notification) and running the
    guard on the messages the consumer received, so the answer comes from the release's own
    parser, not from a version table. A shape the release itself reports ``failed`` or ``stopped``
    counts as seen. ``read_from_raw_data`` lists what the guard had to read from ``message.data``
    for want of a typed field.
    """
    task_id = agent_ids(0)[0]
    by_shape: dict[str, bool] = {}
    why_not: dict[str, str] = {}
    from_raw: set[str] = set()
    for end in ENDS[:-1]:
        told = transcript(run_session(agent_example(end=end, via="both"), backend).received)
        from_raw |= told.from_raw
        found = _audit(told)
        reported_failed = task_id in told.tasks and "completed" not in told.tasks[task_id].statuses
        by_shape[end] = reported_failed or any(f.task_id == task_id for f in found.untruthful)
        if not by_shape[end]:
            why_not[end] = found.undecided.get(task_id, "the guard saw no sign of it in the typed messages")
    visible = [e for e, ok in by_shape.items() if ok]
    if all(by_shape.values()):
        reason = "every shape of the lie is visible in the typed messages (parent_tool_use_id, tool blocks, stop_reason, task status)"
    else:
        reason = "; ".join(f"{end}: {why}" for end, why in why_not.items())
        if visible:
            reason += f" (still visible: {', '.join(visible)})"
    return {"detectable_by_consumer": all(by_shape.values()), "detectability_reason": reason, "detectable_by_shape": by_shape,
            "read_from_raw_data": sorted(from_raw)}


SCENARIO = PrematureCompletion()

__all__ = [
    "Audit",
    "SCENARIO",
    "UntruthfulCompletion",
    "agent_example",
    "assert_truthful_completions",
    "audit",
    "build_script",
    "find_untruthful_completions",
    "judge_session",
    "run_session",
    "seed_example",
    "sweep_examples",
    "transcript",
    "validate_example",
]
