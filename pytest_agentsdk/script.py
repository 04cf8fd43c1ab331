"""The Script: what the scripted CLI says and when, as plain data (JSON round-trip).

Frames are grouped into *segments* by cause: the response to user prompt k (``prompt:k``), a
background task's lifecycle (``task:ID``), the CLI's own turn (``cli:...``). A segment is released
by a trigger (a prompt written, another segment's frame emitted, N scheduler checkpoints later,
or the moment every task is blocked); each transport operation suspends for a scripted number of
checkpoints (or seconds), as a real pipe does; its frames are then emitted in order, ``gap`` checkpoints
apart. The transport records, for every emitted frame, its segment and how many prompts had been
written: that provenance is what the oracles judge, never message order alone.

Scripts are validated before they run: :class:`ScriptError` names the offending field in one line.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from . import wire

SCHEMA = 1
TRANSPORT_OPS = ("connect", "write", "read", "end_input", "close")
#: What the CLI does with stdout: ``end_input`` closes it once stdin is closed and nothing scripted
#: is due (``query()`` ends at that EOF); ``close`` keeps it open until the SDK closes the transport.
EOF_POLICIES = ("end_input", "close")
#: Default answers to SDK control requests, payload under ``response.response`` (WIRE.md 2.2-2.3).
DEFAULT_CONTROL_REPLIES: dict[str, dict[str, Any]] = {
    "initialize": {"commands": [], "output_style": "default", "hook_on_failure_supported": True},
    "mcp_status": {"mcpServers": []},
    "get_context_usage": {"categories": [], "totalTokens": 0, "maxTokens": 200000, "percentage": 0},
}


class ScriptError(ValueError):
    """A script that cannot run; the message names the field and what to do."""


def whole_number(where: str, value: Any, low: int = 0, high: int | None = None) -> int:
    """``value`` if it is an int (not a bool) within [low, high]; else a ScriptError naming ``where``."""
    if not isinstance(value, int) or isinstance(value, bool) or value < low or (high is not None and value > high):
        bound = f"from {low} to {high}" if high is not None else f">= {low}"
        raise ScriptError(f"{where}: {value!r} must be a whole number {bound}")
    return value


@dataclass
class Trigger:
    """When a segment is released. Exactly one of ``prompt``, ``after``, ``on_block`` is set;
    ``delay`` adds scheduler checkpoints after that moment."""

    prompt: int | None = None
    after: tuple[str, int] | None = None
    on_block: bool = False
    delay: int = 0

    def describe(self) -> str:
        if self.prompt is not None:
            base = f"prompt {self.prompt} written"
        elif self.after is not None:
            base = f"frame {self.after[1]} of '{self.after[0]}' emitted"
        else:
            base = "every task blocked"
        return base + (f" +{self.delay} checkpoints" if self.delay else "")


@dataclass
class Segment:
    name: str
    cause: str
    trigger: Trigger
    frames: list[dict[str, Any]]
    gap: int = 0
    optional: bool = False


@dataclass
class ControlReply:
    """How the CLI answers one SDK control request subtype."""

    payload: dict[str, Any] | None = None
    error: str | None = None
    never: bool = False


@dataclass
class Script:
    segments: list[Segment] = field(default_factory=list)
    checkpoints: dict[str, int] = field(default_factory=dict)
    delays: dict[str, float] = field(default_factory=dict)  # seconds per op, for wall-clock realism
    control: dict[str, ControlReply] = field(default_factory=dict)
    eof: str = "end_input"
    session_id: str = wire.DEFAULT_SESSION

    # ------------------------------------------------------------ building
    def turn(self, *frames: dict[str, Any], prompt: int | None = None, gap: int = 0, name: str | None = None) -> Script:
        """Frames answering a prompt (the next unanswered one by default)."""
        index = prompt if prompt is not None else sum(1 for s in self.segments if s.cause.startswith("prompt:"))
        self.segments.append(
            Segment(name or f"turn{index}", f"prompt:{index}", Trigger(prompt=index), list(frames), gap=gap)
        )
        return self

    def event(
        self,
        name: str,
        *frames: dict[str, Any],
        cause: str | None = None,
        after: tuple[str, int] | None = None,
        prompt: int | None = None,
        on_block: bool = False,
        delay: int = 0,
        gap: int = 0,
        optional: bool = False,
    ) -> Script:
        """An autonomous segment (a task's lifecycle, the CLI's own turn) released by a trigger."""
        trigger = Trigger(prompt=prompt, after=tuple(after) if after else None, on_block=on_block, delay=delay)  # type: ignore[arg-type]
        self.segments.append(Segment(name, cause or name, trigger, list(frames), gap=gap, optional=optional))
        return self

    def reply(self, subtype: str, payload: dict[str, Any] | None = None, *, error: str | None = None, never: bool = False) -> Script:
        """Script the CLI's answer to an SDK control request (``never`` models a CLI that stays silent)."""
        self.control[subtype] = ControlReply(payload, error, never)
        return self

    def segment(self, name: str) -> Segment:
        for seg in self.segments:
            if seg.name == name:
                return seg
        raise KeyError(name)

    def control_reply(self, subtype: str) -> ControlReply:
        if subtype in self.control:
            return self.control[subtype]
        return ControlReply(payload=dict(DEFAULT_CONTROL_REPLIES.get(subtype, {})))

    # ------------------------------------------------------------ validation
    def validate(self) -> Script:
        """Reject a script that cannot run, naming the field; returns self for chaining."""
        if self.eof not in EOF_POLICIES:
            raise ScriptError(f"eof: {self.eof!r} is not one of {', '.join(EOF_POLICIES)}")
        if not isinstance(self.checkpoints, dict) or not isinstance(self.delays, dict):
            raise ScriptError("checkpoints / delays: give a JSON object {operation: amount}")
        for op, count in self.checkpoints.items():
            if op not in TRANSPORT_OPS:
                raise ScriptError(f"checkpoints.{op}: unknown operation; use one of {', '.join(TRANSPORT_OPS)}")
            whole_number(f"checkpoints.{op}", count)
        for op, seconds in self.delays.items():
            if op not in TRANSPORT_OPS:
                raise ScriptError(f"delays.{op}: unknown operation; use one of {', '.join(TRANSPORT_OPS)}")
            if not isinstance(seconds, (int, float)) or seconds < 0:
                raise ScriptError(f"delays.{op}: {seconds!r} must be a number of seconds >= 0")
        names = [s.name for s in self.segments]
        for dup in {n for n in names if names.count(n) > 1}:
            raise ScriptError(f"segments: name {dup!r} is used twice; give each segment its own name")
        started = {
            f["task_id"] for s in self.segments for f in s.frames if wire.kind(f) == "system/task_started"
        }
        by_name = {s.name: s for s in self.segments}
        for s in self.segments:
            self._validate_segment(s, by_name, started)
        return self

    def _validate_segment(self, s: Segment, by_name: dict[str, Segment], started: set[str]) -> None:
        where = f"segments[{s.name}]"
        t = s.trigger
        if sum([t.prompt is not None, t.after is not None, t.on_block]) != 1:
            raise ScriptError(f"{where}.trigger: set exactly one of prompt, after, on_block")
        if t.prompt is not None:
            whole_number(f"{where}.trigger.prompt", t.prompt)
        whole_number(f"{where}.trigger.delay", t.delay)
        whole_number(f"{where}.gap", s.gap)
        if t.after is not None:
            target, index = t.after
            if target not in by_name:
                raise ScriptError(f"{where}.trigger.after: no segment named {target!r}")
            if target == s.name or not 0 <= index < len(by_name[target].frames):
                raise ScriptError(f"{where}.trigger.after: frame {index} of {target!r} does not exist")
        for i, frame in enumerate(s.frames):
            fwhere = f"{where}.frames[{i}]"
            if not isinstance(frame, dict) or "type" not in frame:
                raise ScriptError(f"{fwhere}: a frame is a JSON object with a 'type'")
            if frame["type"] == "control_response":
                raise ScriptError(
                    f"{fwhere}: a scripted control_response answers no request; script replies with Script.reply()"
                )
            if not wire.is_known_kind(frame):
                raise ScriptError(f"{fwhere}.type: unknown frame kind {wire.kind(frame)!r}; see pytest_agentsdk.wire.FRAME_KINDS")
            task_id = frame.get("task_id")
            if wire.kind(frame).startswith("system/task_") and task_id not in started:
                raise ScriptError(f"{fwhere}.task_id: task {task_id!r} is never started by a task_started frame")

    # ------------------------------------------------------------ JSON
    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["schema"] = SCHEMA
        data["control"] = {k: {kk: vv for kk, vv in asdict(v).items() if vv not in (None, False)} for k, v in self.control.items()}
        return data

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Script:
        if not isinstance(data, dict):
            raise ScriptError("script: expected a JSON object")
        if data.get("schema", SCHEMA) != SCHEMA:
            raise ScriptError(f"schema: {data.get('schema')!r} is not supported; this harness reads schema {SCHEMA}")
        try:
            segments = []
            for raw in data.get("segments", []):
                trig = dict(raw.get("trigger", {}))
                if trig.get("after") is not None:
                    trig["after"] = tuple(trig["after"])
                segments.append(
                    Segment(
                        name=raw["name"],
                        cause=raw.get("cause", raw["name"]),
                        trigger=Trigger(**trig),
                        frames=list(raw.get("frames", [])),
                        gap=raw.get("gap", 0),
                        optional=raw.get("optional", False),
                    )
                )
            control = {k: ControlReply(**v) for k, v in data.get("control", {}).items()}
        except (KeyError, TypeError) as exc:
            raise ScriptError(f"segments: malformed segment or trigger ({exc})") from None
        return cls(
            segments=segments,
            checkpoints=data.get("checkpoints", {}),
            delays=data.get("delays", {}),
            control=control,
            eof=data.get("eof", "end_input"),
            session_id=data.get("session_id", wire.DEFAULT_SESSION),
        ).validate()

    @classmethod
    def loads(cls, text: str) -> Script:
        try:
            return cls.from_json(json.loads(text))
        except json.JSONDecodeError as exc:
            raise ScriptError(f"script: not valid JSON ({exc.msg} at line {exc.lineno})") from None
