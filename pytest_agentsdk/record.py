"""Recording: a real CLI's session as a Script the scripted CLI replays.

A production incident (a stdout capture, or a trace with both directions such as
``reference/traces/*.timed.jsonl``: ``{"t", "dir": "in"|"out", "line"}``) becomes a regression
test that runs in milliseconds: each prompt's frames become that prompt's turn, up to and
including its result; what the CLI said after that result and before the next prompt (a
background task's report, the CLI's own reaction turn) becomes an event released right after
that result, so it lands between turns as it did. Control responses are left out: the scripted
CLI answers the SDK's control requests itself.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .script import Script, ScriptError

#: What the scripted CLI produces itself, so a recording must not replay it.
_NOT_REPLAYED = frozenset({"control_response", "control_request", "keep_alive"})


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The JSON objects of a JSONL file; ScriptError names the first bad line."""
    out = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ScriptError(f"{path}:{n}: not JSON ({exc.msg})") from None
        if not isinstance(value, dict):
            raise ScriptError(f"{path}:{n}: expected a JSON object per line")
        out.append(value)
    return out


def directed(records: list[dict[str, Any]], stdin: list[dict[str, Any]] | None = None) -> list[tuple[str, dict[str, Any]]]:
    """``(direction, frame)`` pairs from a timed trace, or from stdout frames alone (then every
    frame answers the one prompt; ``stdin`` given: its prompts are taken as written up front)."""
    if any(_sdk_written(r) for r in records):
        raise ScriptError("the capture holds what the SDK writes (its initialize request): give it as --stdin, "
                          "and the CLI's stdout as the capture")
    if records and all("dir" in r and "line" in r for r in records):
        bad = next((r for r in records if r["dir"] in ("in", "out") and not isinstance(r["line"], dict)), None)
        if bad is not None:
            raise ScriptError(f"trace line at t={bad.get('t')}: an 'in'/'out' line must hold a JSON frame")
        return [(r["dir"], r["line"]) for r in records if r["dir"] in ("in", "out")]
    prompts = [f for f in stdin or [] if f.get("type") == "user"] or [{"type": "user"}]
    if len(prompts) > 1:
        raise ScriptError("a stdout capture with several prompts needs its timing: give a timed trace (dir: in/out per line)")
    return [("in", prompts[0])] + [("out", f) for f in records]


def _sdk_written(frame: dict[str, Any]) -> bool:
    """The SDK's initialize request: it only ever goes to the CLI's stdin."""
    request = frame.get("request")
    return frame.get("type") == "control_request" and isinstance(request, dict) and request.get("subtype") == "initialize"


def script_from(pairs: Iterable[tuple[str, dict[str, Any]]]) -> Script:
    """The Script that replays ``pairs`` (what crossed the CLI's pipes, in order)."""
    turns: list[list[dict[str, Any]]] = []
    between: list[list[dict[str, Any]]] = []
    session_id = None
    for direction, frame in pairs:
        if direction == "in":
            if frame.get("type") == "user":
                turns.append([])
                between.append([])
            continue
        if frame.get("type") in _NOT_REPLAYED:
            continue
        if not turns:
            raise ScriptError(f"the CLI wrote {frame.get('type')!r} before any prompt: is this a capture of one session?")
        session_id = session_id or frame.get("session_id")
        ended = any(f.get("type") == "result" for f in turns[-1])
        (between[-1] if ended else turns[-1]).append(frame)
    if not turns or not any(turns):
        raise ScriptError("no prompt and no frame answering it: nothing to record")
    script = Script(eof="close" if len(turns) > 1 else "end_input", session_id=session_id or "s1")
    started: dict[str, str] = {}  # task id / spawning tool_use id -> task id, for every task started so far
    for k, (frames, later) in enumerate(zip(turns, between)):
        script.turn(*frames, prompt=k, name=f"turn{k}")
        _learn_tasks(frames, started)
        after = (f"turn{k}", len(frames) - 1)
        for n, (cause, run) in enumerate(_by_cause(later, started)):
            name = f"after_turn{k}" + (f"_{n}" if n else "")
            script.event(name, *run, cause=cause, after=after)
            after = (name, len(run) - 1)
    return script.validate()


def _learn_tasks(frames: list[dict[str, Any]], started: dict[str, str]) -> None:
    for frame in frames:
        if frame.get("subtype") == "task_started" and frame.get("task_id"):
            started.setdefault(frame["task_id"], frame["task_id"])
            if frame.get("tool_use_id"):
                started.setdefault(frame["tool_use_id"], frame["task_id"])


def _by_cause(frames: list[dict[str, Any]], started: dict[str, str]) -> list[tuple[str, list[dict[str, Any]]]]:
    """What came between turns, in runs of one cause, so the turn-isolation oracle can tell whose
    it is: a task's frames (its id, or a subagent's ``parent_tool_use_id``) are ``task:ID`` of the
    turn that started it; what follows a task's report without a task of its own is the CLI's own
    turn reacting to it (``cli:task:ID``). A task first seen between turns is the running one's."""
    runs: list[tuple[str, list[dict[str, Any]]]] = []
    last: str | None = next(reversed(started.values()), None)
    reported = False
    for frame in frames:
        own = started.get(frame.get("task_id") or "") or started.get(frame.get("parent_tool_use_id") or "")
        if own is None and (frame.get("task_id") or frame.get("parent_tool_use_id") or frame.get("subtype") == "background_tasks_changed"):
            own = last
        if own is not None:
            last, cause = own, f"task:{own}"
            reported = reported or frame.get("subtype") == "task_notification"
        else:
            cause = f"cli:task:{last}" if reported and last else "recorded"
        if runs and runs[-1][0] == cause:
            runs[-1][1].append(frame)
        else:
            runs.append((cause, [frame]))
    return runs


def record(path: Path, stdin: Path | None = None) -> Script:
    """A capture file (timed trace or stdout JSONL, optionally with its stdin JSONL) as a Script."""
    return script_from(directed(read_jsonl(path), read_jsonl(stdin) if stdin else None))
