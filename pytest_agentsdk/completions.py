"""Are a session's ``completed`` task reports true? The premature-completion oracle and guard.

The CLI can announce a subagent that stopped mid-work (``stop_reason: None``, a tool call left
unanswered) as ``task_notification[completed]`` (anthropics/claude-code#47936); often the only
difference from a real success is a missing result. The guard flags what a consumer's messages
show: a tool call left unanswered, a background agent's tool result left unanswered, or, with no
result reported, a foreground agent's tool result left unanswered or a last message that did not
end its turn. A result hides the last two: the real CLI's frames carry ``stop_reason: null`` on a
clean finish too, and never stream a foreground agent's final message (its text is the parent's
tool result; b_query_fg), so only the CLI can tell those lies from success.

Two parts, usable apart and in production (this module needs neither pytest nor Hypothesis; bug
3's scenario in :mod:`pytest_agentsdk.bugs.premature_completion` builds on it):

* the **oracle** (:func:`audit`) over a normalized view (:func:`transcript`) built from either the
  typed messages a session yields (read through the typed fields a consumer reads, raw ``data``
  only where the release's class has no such field, recorded in ``Transcript.from_raw``) or raw
  stdout frames of a real CLI;
* the **public guard** :func:`find_untruthful_completions` / :func:`assert_truthful_completions`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from . import wire
from .shown import PrematureCompletionShown


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


def conversation_frame(message: Any, role: str) -> dict[str, Any]:
    """A typed AssistantMessage / UserMessage as a raw-frame-shaped dict of its typed fields (content
    blocks as dicts, a string content kept as is; UNKNOWN for a field the release lacks)."""
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
            _absorb_conversation(view, position, message if isinstance(message, dict) else conversation_frame(message, kind))
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
    last = steps[-1]
    if last.role == "user" and task.backgrounded:  # the CLI streams a background agent's last message (b_query_bg)
        return "its agent stopped right after a tool result, without answering it", None
    if _result_present(view, task, completed):  # the real CLI streams stop_reason null even on a clean finish
        return None, None
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
    return audit_transcript(transcript(messages))


def audit_transcript(view: Transcript) -> Audit:
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
        raise PrematureCompletionShown(
            f"{len(found)} task(s) reported completed but their agent stopped mid-work "
            "(anthropics/claude-code#47936; retry them or treat them as failed):\n" + "\n".join(f"  {f}" for f in found)
        )


__all__ = [
    "UNKNOWN",
    "Audit",
    "Report",
    "Step",
    "Task",
    "Transcript",
    "UntruthfulCompletion",
    "assert_truthful_completions",
    "audit",
    "audit_transcript",
    "conversation_frame",
    "find_untruthful_completions",
    "transcript",
]
