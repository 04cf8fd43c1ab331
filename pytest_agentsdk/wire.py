"""Builders for every frame the Claude Code CLI writes on stdout (WIRE.md section 3).

Each builder returns a plain dict, minimal by default so that every supported SDK release
(0.1.44 onwards) parses it, with the real CLI's extra fields available as keyword arguments.
Frames carry no ``uuid`` until :func:`stamp` (or a Script) gives them one: uuids are assigned
by position, never at random, so the same script always yields the same bytes.
"""

from __future__ import annotations

import functools
import inspect
import types
import typing
from typing import Any, Callable, TypeVar

Frame = dict[str, Any]
Block = dict[str, Any]

DEFAULT_SESSION = "s1"
DEFAULT_MODEL = "claude-x"

_Builder = TypeVar("_Builder", bound=Callable[..., dict[str, Any]])


def _runtime_types(hint: Any) -> tuple[type, ...] | None:
    """The classes an annotation admits (``str | None`` -> (str, NoneType)); None for ``Any``."""
    if hint is Any:
        return None
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        members = [_runtime_types(h) for h in typing.get_args(hint)]
        return None if any(m is None for m in members) else tuple(t for m in members if m for t in m)
    origin = typing.get_origin(hint) or hint
    return (origin,) if isinstance(origin, type) else None


def _admits(types_: tuple[type, ...], value: Any) -> bool:
    if isinstance(value, bool) and bool not in types_:
        return False  # a bool is an int to isinstance, never a count or an id here
    return isinstance(value, types_)


def _typed(builder: _Builder) -> _Builder:
    """Check a builder's arguments against its annotations, so ``assistant(42)`` fails at the call,
    naming the argument, instead of making a frame the SDK's parser chokes on mid-run."""
    params = inspect.signature(builder).parameters.values()
    hints = typing.get_type_hints(builder)
    allowed = {p.name: t for p in params if p.kind != p.VAR_KEYWORD and (t := _runtime_types(hints.get(p.name, Any))) is not None}
    positional = [p.name for p in params if p.kind == p.POSITIONAL_OR_KEYWORD]
    rest = next((p.name for p in params if p.kind == p.VAR_POSITIONAL), None)

    def check(label: str, name: str | None, value: Any) -> None:
        types_ = allowed.get(name) if name else None
        if types_ is not None and not _admits(types_, value):
            wanted = " or ".join("None" if t is type(None) else t.__name__ for t in types_)
            raise TypeError(f"wire.{builder.__name__}({label}): expected {wanted}, got {value!r} ({type(value).__name__})")

    @functools.wraps(builder)
    def build(*args: Any, **kwargs: Any) -> dict[str, Any]:
        for i, value in enumerate(args):
            if i < len(positional):
                check(positional[i], positional[i], value)
            else:
                check(f"{rest}[{i - len(positional)}]", rest, value)
        for name, value in kwargs.items():
            check(f"{name}=...", name, value)
        return builder(*args, **kwargs)

    return build  # type: ignore[return-value]


# ---------------------------------------------------------------- content blocks
@_typed
def text(value: str) -> Block:
    return {"type": "text", "text": value}


@_typed
def thinking(value: str, signature: str = "sig") -> Block:
    return {"type": "thinking", "thinking": value, "signature": signature}


@_typed
def tool_use(tool_use_id: str, name: str, input: dict[str, Any] | None = None) -> Block:
    return {"type": "tool_use", "id": tool_use_id, "name": name, "input": input or {}}


@_typed
def tool_result(tool_use_id: str, content: Any = "ok", is_error: bool = False) -> Block:
    return {"type": "tool_result", "tool_use_id": tool_use_id, "content": content, "is_error": is_error}


# ---------------------------------------------------------------- conversation frames
@_typed
def system_init(session_id: str = DEFAULT_SESSION, **extra: Any) -> Frame:
    frame = {
        "type": "system",
        "subtype": "init",
        "session_id": session_id,
        "cwd": "/home/user/project",
        "tools": [],
        "mcp_servers": [],
        "model": DEFAULT_MODEL,
        "permissionMode": "default",
        "apiKeySource": "none",
    }
    return {**frame, **extra}


@_typed
def assistant(
    *blocks: Block | str,
    stop_reason: str | None = "end_turn",
    parent_tool_use_id: str | None = None,
    agent_id: str | None = None,
    message_id: str = "msg_1",
    model: str = DEFAULT_MODEL,
    session_id: str = DEFAULT_SESSION,
    **extra: Any,
) -> Frame:
    """An assistant message; bare strings become text blocks."""
    content = [text(b) if isinstance(b, str) else b for b in blocks]
    frame: Frame = {
        "type": "assistant",
        "message": {
            "id": message_id,
            "role": "assistant",
            "model": model,
            "content": content,
            "stop_reason": stop_reason,
            "usage": {"input_tokens": 1, "output_tokens": 1},
        },
        "parent_tool_use_id": parent_tool_use_id,
        "session_id": session_id,
    }
    if agent_id is not None:
        frame["agent_id"] = agent_id
    return {**frame, **extra}


@_typed
def user_tool_result(
    tool_use_id: str,
    content: Any = "ok",
    is_error: bool = False,
    parent_tool_use_id: str | None = None,
    session_id: str = DEFAULT_SESSION,
    **extra: Any,
) -> Frame:
    frame = {
        "type": "user",
        "message": {"role": "user", "content": [tool_result(tool_use_id, content, is_error)]},
        "parent_tool_use_id": parent_tool_use_id,
        "session_id": session_id,
    }
    return {**frame, **extra}


@_typed
def result(
    result_text: str = "done",
    subtype: str = "success",
    is_error: bool = False,
    num_turns: int = 1,
    session_id: str = DEFAULT_SESSION,
    **extra: Any,
) -> Frame:
    frame = {
        "type": "result",
        "subtype": subtype,
        "duration_ms": 10,
        "duration_api_ms": 5,
        "is_error": is_error,
        "num_turns": num_turns,
        "session_id": session_id,
        "result": result_text,
        "total_cost_usd": 0.0,
        "usage": {"input_tokens": 1, "output_tokens": 1},
    }
    return {**frame, **extra}


@_typed
def stream_event(event: dict[str, Any] | None = None, session_id: str = DEFAULT_SESSION, **extra: Any) -> Frame:
    frame = {
        "type": "stream_event",
        "session_id": session_id,
        "event": event or {"type": "message_start"},
        "parent_tool_use_id": None,
    }
    return {**frame, **extra}


@_typed
def rate_limit_event(status: str = "allowed", session_id: str = DEFAULT_SESSION, **extra: Any) -> Frame:
    frame = {
        "type": "rate_limit_event",
        "rate_limit_info": {"status": status, "resetsAt": 1700000000, "rateLimitType": "five_hour"},
        "session_id": session_id,
    }
    return {**frame, **extra}


# ---------------------------------------------------------------- system frames about tasks and state
def _system(subtype: str, session_id: str, fields: dict[str, Any], extra: dict[str, Any]) -> Frame:
    return {"type": "system", "subtype": subtype, **fields, "session_id": session_id, **extra}


@_typed
def task_started(
    task_id: str,
    description: str = "background task",
    tool_use_id: str | None = None,
    task_type: str = "local_agent",
    session_id: str = DEFAULT_SESSION,
    **extra: Any,
) -> Frame:
    fields = {"task_id": task_id, "description": description, "task_type": task_type}
    if tool_use_id is not None:
        fields["tool_use_id"] = tool_use_id
    return _system("task_started", session_id, fields, extra)


@_typed
def task_progress(
    task_id: str,
    description: str = "background task",
    tool_uses: int = 1,
    last_tool_name: str | None = None,
    session_id: str = DEFAULT_SESSION,
    **extra: Any,
) -> Frame:
    fields: dict[str, Any] = {
        "task_id": task_id,
        "description": description,
        "usage": {"total_tokens": 5, "tool_uses": tool_uses, "duration_ms": 3},
    }
    if last_tool_name is not None:
        fields["last_tool_name"] = last_tool_name
    return _system("task_progress", session_id, fields, extra)


@_typed
def task_notification(
    task_id: str,
    status: str = "completed",
    summary: str = "done",
    output_file: str | None = None,
    result_text: str | None = None,
    tool_use_id: str | None = None,
    session_id: str = DEFAULT_SESSION,
    **extra: Any,
) -> Frame:
    """A task's terminal report. ``result_text`` is the ``<result>`` a finished agent carries."""
    fields: dict[str, Any] = {
        "task_id": task_id,
        "status": status,
        "output_file": output_file or f"/home/user/.claude/tasks/{task_id}.output",
        "summary": summary,
    }
    if tool_use_id is not None:
        fields["tool_use_id"] = tool_use_id
    if result_text is not None:
        fields["result"] = result_text
    return _system("task_notification", session_id, fields, extra)


@_typed
def task_updated(task_id: str, status: str = "completed", session_id: str = DEFAULT_SESSION, **extra: Any) -> Frame:
    return _system("task_updated", session_id, {"task_id": task_id, "patch": {"status": status}}, extra)


@_typed
def session_state_changed(state: str = "idle", session_id: str = DEFAULT_SESSION, **extra: Any) -> Frame:
    return _system("session_state_changed", session_id, {"state": state}, extra)


@_typed
def background_tasks_changed(tasks: list[dict[str, Any]] | None = None, session_id: str = DEFAULT_SESSION, **extra: Any) -> Frame:
    return _system("background_tasks_changed", session_id, {"tasks": tasks or []}, extra)


# ---------------------------------------------------------------- control protocol
@_typed
def control_request(request_id: str, subtype: str, **fields: Any) -> Frame:
    """A CLI->SDK request (``can_use_tool``, ``hook_callback``, ``mcp_message``)."""
    return {"type": "control_request", "request_id": request_id, "request": {"subtype": subtype, **fields}}


@_typed
def can_use_tool(request_id: str, tool_name: str, input: dict[str, Any] | None = None, **fields: Any) -> Frame:
    return control_request(
        request_id, "can_use_tool", tool_name=tool_name, input=input or {}, permission_suggestions=None, **fields
    )


@_typed
def hook_callback(request_id: str, callback_id: str = "hook_0", input: dict[str, Any] | None = None, tool_use_id: str | None = None) -> Frame:
    return control_request(request_id, "hook_callback", callback_id=callback_id, input=input or {}, tool_use_id=tool_use_id)


@_typed
def control_response(request_id: str, payload: dict[str, Any] | None = None, error: str | None = None) -> Frame:
    """The CLI's answer to an SDK control request: payload under ``response.response`` (WIRE.md 2.2)."""
    return control_reply_frame(request_id, payload, error)


def control_reply_frame(request_id: str, payload: dict[str, Any] | None = None, error: str | None = None) -> Frame:
    """:func:`control_response` unchecked, for the scripted CLI, which answers every control
    request the SDK writes with the SDK's own request id."""
    if error is not None:
        return {"type": "control_response", "response": {"subtype": "error", "request_id": request_id, "error": error}}
    return {
        "type": "control_response",
        "response": {"subtype": "success", "request_id": request_id, "response": payload or {}},
    }


# ---------------------------------------------------------------- classification
#: Frame kinds a Script may hold, as ``type`` or ``type/subtype``; builder per kind.
FRAME_KINDS: dict[str, Callable[..., Frame]] = {
    "system/init": system_init,
    "assistant": assistant,
    "user": user_tool_result,
    "result": result,
    "stream_event": stream_event,
    "rate_limit_event": rate_limit_event,
    "system/task_started": task_started,
    "system/task_progress": task_progress,
    "system/task_notification": task_notification,
    "system/task_updated": task_updated,
    "system/session_state_changed": session_state_changed,
    "system/background_tasks_changed": background_tasks_changed,
    "control_request": control_request,
}

#: Frame types the SDK's reader consumes itself and never hands to the consumer (WIRE.md 3.1).
READER_CONSUMED_TYPES = frozenset({"control_response", "control_request", "control_cancel_request", "transcript_mirror"})

#: Types the Script accepts beyond FRAME_KINDS' keys (a ``system`` of any other subtype is generic).
_OPEN_TYPES = frozenset({"system", "conversation_reset", "transcript_mirror"})


def kind(frame: Frame) -> str:
    """``type/subtype`` for system frames, ``type`` otherwise."""
    if frame.get("type") == "system":
        return f"system/{frame.get('subtype')}"
    return str(frame.get("type"))


def is_known_kind(frame: Frame) -> bool:
    return kind(frame) in FRAME_KINDS or frame.get("type") in _OPEN_TYPES


def task_status(frame: Frame) -> str | None:
    """The terminal status a task_notification / task_updated frame reports, else None."""
    k = kind(frame)
    if k == "system/task_notification":
        return frame.get("status")
    if k == "system/task_updated":
        return (frame.get("patch") or {}).get("status")
    return None


def stamp(frame: Frame, uuid: str, session_id: str = DEFAULT_SESSION) -> Frame:
    """A copy of ``frame`` with ``uuid`` and ``session_id`` filled where absent (control frames untouched)."""
    if frame.get("type") in READER_CONSUMED_TYPES:
        return dict(frame)
    return {"uuid": uuid, "session_id": session_id, **frame}
