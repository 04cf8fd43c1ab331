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

import difflib
import json
from collections.abc import Collection
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, TypeVar

from . import wire

SCHEMA = 1
_T = TypeVar("_T")
TRANSPORT_OPS = ("connect", "write", "read", "end_input", "close")
#: What the CLI does with stdout: ``end_input`` closes it once stdin is closed and nothing scripted
#: is due (``query()`` ends at that EOF); ``close`` keeps it open until the SDK closes the transport.
EOF_POLICIES = ("end_input", "close")
#: Frames that belong to a turn before its result, never after it (system frames may follow it).
_TURN_ONLY = frozenset({"assistant", "user", "result"})
#: Default answers to SDK control requests, payload under ``response.response`` (WIRE.md 2.2-2.3).
DEFAULT_CONTROL_REPLIES: dict[str, dict[str, Any]] = {
    "initialize": {"commands": [], "output_style": "default", "hook_on_failure_supported": True},
    "mcp_status": {"mcpServers": []},
    "get_context_usage": {"categories": [], "totalTokens": 0, "maxTokens": 200000, "percentage": 0},
}


class ScriptError(ValueError):
    """A script that cannot run; the message names the field and what to do."""


class ScriptWarning(UserWarning):
    """A script that ran, but not as a real CLI would have played it (a turn with no result frame)."""


def whole_number(where: str, value: Any, low: int = 0, high: int | None = None) -> int:
    """``value`` if it is an int (not a bool) within [low, high]; else a ScriptError naming ``where``."""
    if not isinstance(value, int) or isinstance(value, bool) or value < low or (high is not None and value > high):
        bound = f"from {low} to {high}" if high is not None else f">= {low}"
        raise ScriptError(f"{where}: {value!r} must be a whole number {bound}")
    return value


def one_of(where: str, value: Any, allowed: Collection[Any], *, missing: bool = False) -> Any:
    """``value`` if it is one of ``allowed``; else a ScriptError naming ``where`` and the choices,
    with the nearest one for a misspelt name. ``missing``: the field was not given at all."""
    if not missing and any(type(value) is type(choice) and value == choice for choice in allowed):  # 1 is no True
        return value
    choices = ", ".join(map(str, allowed))
    if missing:
        raise ScriptError(f"{where}: missing; give one of {choices}")
    near = difflib.get_close_matches(value, [a for a in allowed if isinstance(a, str)], n=1) if isinstance(value, str) else []
    raise ScriptError(f"{where}: {value!r} is not one of {choices}" + (f" (did you mean {near[0]!r}?)" if near else ""))


def _text(where: str, value: Any, *, optional: bool = False) -> None:
    if not (isinstance(value, str) and value) and not (optional and value is None):
        raise ScriptError(f"{where}: {value!r} must be a non-empty string" + (" or null" if optional else ""))


def _flag(where: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise ScriptError(f"{where}: {value!r} must be true or false")


def _check_frame(where: str, frame: Any) -> None:
    """A frame is a dict with a string ``type``, as every :mod:`pytest_agentsdk.wire` builder makes."""
    if not isinstance(frame, dict):
        hint = f", e.g. wire.assistant({frame!r})" if isinstance(frame, str) else ""
        raise ScriptError(f"{where}: {frame!r} ({type(frame).__name__}) is not a frame; build frames with pytest_agentsdk.wire{hint}")
    if not isinstance(frame.get("type"), str):
        raise ScriptError(f"{where}: a frame is a JSON object with a string 'type'")


def _check_after(where: str, after: Any) -> None:
    """``after`` names a frame: a (segment name, frame index) pair."""
    if after is None:
        return
    if not (isinstance(after, (tuple, list)) and len(after) == 2 and isinstance(after[0], str)):
        raise ScriptError(f"{where}: {after!r} must be a (segment name, frame index) pair, e.g. ('turn0', 2)")
    whole_number(f"{where}[1]", after[1])


def known_fields(where: str, raw: Any, allowed: tuple[str, ...]) -> dict[str, Any]:
    """``raw`` if it is a JSON object whose keys are all in ``allowed``."""
    if not isinstance(raw, dict):
        raise ScriptError(f"{where}: {raw!r} must be a JSON object with fields {', '.join(allowed)}")
    unknown = sorted(set(raw) - set(allowed), key=str)
    if unknown:
        raise ScriptError(f"{where}.{unknown[0]}: unknown field; the fields are {', '.join(allowed)}")
    return raw


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


_SCRIPT_FIELDS = ("schema", "segments", "checkpoints", "delays", "control", "eof", "session_id")
_SEGMENT_FIELDS = ("name", "cause", "trigger", "frames", "gap", "optional")
_TRIGGER_FIELDS = ("prompt", "after", "on_block", "delay")
_REPLY_FIELDS = ("payload", "error", "never")


def _check_reply(where: str, reply: Any) -> None:
    if not isinstance(reply, ControlReply):
        raise ScriptError(f"{where}: {reply!r} is not a ControlReply; script replies with Script.reply()")
    if reply.payload is not None and not isinstance(reply.payload, dict):
        raise ScriptError(f"{where}.payload: {reply.payload!r} must be a JSON object or null")
    _text(f"{where}.error", reply.error, optional=True)
    _flag(f"{where}.never", reply.never)


def _check_shape(index: int, s: Any) -> None:
    """Every field of segment ``index`` has the type a Script needs (what it refers to is checked after)."""
    if not isinstance(s, Segment):
        raise ScriptError(f"segments[{index}]: {s!r} is not a Segment; add segments with Script.turn() / Script.event()")
    _text(f"segments[{index}].name", s.name)
    where = f"segments[{s.name}]"
    _text(f"{where}.cause", s.cause)
    if not isinstance(s.frames, list):
        raise ScriptError(f"{where}.frames: {s.frames!r} must be a list of frame objects")
    for i, frame in enumerate(s.frames):
        _check_frame(f"{where}.frames[{i}]", frame)
    whole_number(f"{where}.gap", s.gap)
    _flag(f"{where}.optional", s.optional)
    t = s.trigger
    if not isinstance(t, Trigger):
        raise ScriptError(f"{where}.trigger: {t!r} is not a Trigger")
    if t.prompt is not None:
        whole_number(f"{where}.trigger.prompt", t.prompt)
    _check_after(f"{where}.trigger.after", t.after)
    _flag(f"{where}.trigger.on_block", t.on_block)
    whole_number(f"{where}.trigger.delay", t.delay)


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
        for i, frame in enumerate(frames):
            _check_frame(f"Script.turn(frame {i})", frame)
        if prompt is not None:
            whole_number("Script.turn(prompt=...)", prompt)
        whole_number("Script.turn(gap=...)", gap)
        _text("Script.turn(name=...)", name, optional=True)
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
        _text("Script.event(name)", name)
        for i, frame in enumerate(frames):
            _check_frame(f"Script.event({name!r}, frame {i})", frame)
        _text("Script.event(cause=...)", cause, optional=True)
        _check_after("Script.event(after=...)", after)
        if prompt is not None:
            whole_number("Script.event(prompt=...)", prompt)
        _flag("Script.event(on_block=...)", on_block)
        whole_number("Script.event(delay=...)", delay)
        whole_number("Script.event(gap=...)", gap)
        _flag("Script.event(optional=...)", optional)
        trigger = Trigger(prompt=prompt, after=(after[0], after[1]) if after else None, on_block=on_block, delay=delay)
        self.segments.append(Segment(name, cause or name, trigger, list(frames), gap=gap, optional=optional))
        return self

    def reply(self, subtype: str, payload: dict[str, Any] | None = None, *, error: str | None = None, never: bool = False) -> Script:
        """Script the CLI's answer to an SDK control request (``never`` models a CLI that stays silent)."""
        _text("Script.reply(subtype)", subtype)
        reply = ControlReply(payload, error, never)
        _check_reply("Script.reply", reply)
        self.control[subtype] = reply
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
        """Reject a script that cannot run, naming the field; returns self for chaining.

        A transport validates its script at every connect; a script that passed before and whose
        every value this reads is unchanged (:meth:`_checked_values`) is not checked again."""
        checked = self._checked_values()
        if checked is not None and checked == self.__dict__.get("_passed"):
            return self
        self._check()
        self.__dict__["_passed"] = checked  # not a dataclass field: no part of the script's data
        return self

    def derived(self, build: Callable[[Script], _T]) -> _T:
        """``build(self)``, for this script validated first; kept while the validation memo holds, so a
        transport playing one script thousands of times (a search) indexes it once, and a script
        changed in place is indexed again. What ``build`` returns is shared: treat it as read-only."""
        self.validate()
        passed = self.__dict__.get("_passed")
        kept = self.__dict__.setdefault("_derived", {})  # not a dataclass field either
        hit = kept.get(build)
        if passed is not None and hit is not None and hit[0] is passed:
            return hit[1]  # type: ignore[no-any-return]
        value = build(self)
        kept[build] = (passed, value)
        return value

    def _checked_values(self) -> list[Any] | None:
        """Every value :meth:`_check` reads, with its type where it checks one (``True`` is not
        ``1``); of a frame, what decides its kind and its task; and which Segment object holds
        each segment's values (what :meth:`derived` builds may hold the segments: one replaced by
        an equal copy is a change). Flat, with the count of segments, of each one's frames, of the
        replies and of the checkpoints before them, so it is cheap to build at every connect. None
        for anything but the plain shapes (a subclass, a bad type): then the script is checked
        every time."""
        segments, control, checkpoints, delays = self.segments, self.control, self.checkpoints, self.delays
        if type(segments) is not list or type(control) is not dict or type(checkpoints) is not dict or type(delays) is not dict:
            return None
        values: list[Any] = [self.eof, self.session_id, len(segments)]
        add = values.extend
        for s in segments:
            if type(s) is not Segment:
                return None
            t, frames = s.trigger, s.frames
            if type(t) is not Trigger or type(frames) is not list:
                return None
            after: tuple[Any, ...] | None = None
            if t.after is not None:
                if type(t.after) not in (tuple, list):
                    return None
                after = (type(t.after), *zip(t.after, map(type, t.after)))
            add((id(s), s.name, s.cause, s.gap, type(s.gap), s.optional, type(s.optional), t.prompt, type(t.prompt),
                 after, t.on_block, type(t.on_block), t.delay, type(t.delay), len(frames)))
            for f in frames:
                if type(f) is not dict:
                    return None
                add((f.get("type"), f.get("subtype"), f.get("task_id")))
        values.append(len(control))
        for k, r in control.items():
            if type(r) is not ControlReply:
                return None
            add((k, r.payload is None or type(r.payload), r.error, r.never, type(r.never)))
        values.append(len(checkpoints))
        for k, v in (*checkpoints.items(), *delays.items()):
            add((k, v, type(v)))
        return values

    def _check(self) -> None:
        one_of("eof", self.eof, EOF_POLICIES)
        _text("session_id", self.session_id)
        if not isinstance(self.control, dict):
            raise ScriptError("control: give a JSON object {request subtype: reply}")
        for subtype, reply in self.control.items():
            _check_reply(f"control.{subtype}", reply)
        if not isinstance(self.checkpoints, dict) or not isinstance(self.delays, dict):
            raise ScriptError("checkpoints / delays: give a JSON object {operation: amount}")
        for op, count in self.checkpoints.items():
            if op not in TRANSPORT_OPS:
                raise ScriptError(f"checkpoints.{op}: unknown operation; use one of {', '.join(TRANSPORT_OPS)}")
            whole_number(f"checkpoints.{op}", count)
        for op, seconds in self.delays.items():
            if op not in TRANSPORT_OPS:
                raise ScriptError(f"delays.{op}: unknown operation; use one of {', '.join(TRANSPORT_OPS)}")
            if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or seconds < 0:
                raise ScriptError(f"delays.{op}: {seconds!r} must be a number of seconds >= 0")
        if not isinstance(self.segments, list):
            raise ScriptError("segments: give a list of segments")
        for i, s in enumerate(self.segments):
            _check_shape(i, s)
        names = [s.name for s in self.segments]
        for dup in {n for n in names if names.count(n) > 1}:
            raise ScriptError(f"segments: name {dup!r} is used twice; give each segment its own name")
        started = {
            f["task_id"] for s in self.segments for f in s.frames
            if f["type"] == "system" and wire.kind(f) == "system/task_started"
        }
        by_name = {s.name: s for s in self.segments}
        for s in self.segments:
            self._validate_segment(s, by_name, started)

    def _validate_segment(self, s: Segment, by_name: dict[str, Segment], started: set[str]) -> None:
        where = f"segments[{s.name}]"
        t = s.trigger
        if sum([t.prompt is not None, t.after is not None, t.on_block]) != 1:
            raise ScriptError(f"{where}.trigger: set exactly one of prompt, after, on_block")
        if t.after is not None:
            target, index = t.after
            if target not in by_name:
                raise ScriptError(f"{where}.trigger.after: no segment named {target!r}")
            if target == s.name or not 0 <= index < len(by_name[target].frames):
                raise ScriptError(f"{where}.trigger.after: frame {index} of {target!r} does not exist")
        result_at: int | None = None
        for i, frame in enumerate(s.frames):
            fwhere = f"{where}.frames[{i}]"
            if t.prompt is not None and result_at is not None and frame["type"] in _TURN_ONLY:
                raise ScriptError(
                    f"{fwhere}: {'an' if frame['type'] == 'assistant' else 'a'} {frame['type']} frame after the turn's result (frames[{result_at}]): a real CLI ends a turn "
                    f"with its result, and the SDK's receive_response() stops there; script what comes later as an event, "
                    f"e.g. .event('late', ..., after=({s.name!r}, {result_at}))"
                )
            if frame["type"] == "result" and result_at is None:
                result_at = i
            if frame["type"] == "control_response":
                raise ScriptError(
                    f"{fwhere}: a scripted control_response answers no request; script replies with Script.reply()"
                )
            kind = wire.kind(frame)
            if kind not in wire.FRAME_KINDS and not wire.is_known_kind(frame):
                raise ScriptError(f"{fwhere}.type: unknown frame kind {kind!r}; see pytest_agentsdk.wire.FRAME_KINDS")
            task_id = frame.get("task_id")
            if kind.startswith("system/task_") and task_id not in started:
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
    def from_json(cls, data: Any) -> Script:
        """The Script ``data`` (as :meth:`to_json` writes it), every field checked: ScriptError names the first bad one."""
        known_fields("script", data, _SCRIPT_FIELDS)
        if data.get("schema", SCHEMA) != SCHEMA:
            raise ScriptError(f"schema: {data.get('schema')!r} is not supported; this harness reads schema {SCHEMA}")
        raw_segments = data.get("segments", [])
        if not isinstance(raw_segments, list):
            raise ScriptError(f"segments: {raw_segments!r} must be a list of segment objects")
        segments = []
        for i, raw in enumerate(raw_segments):
            where = f"segments[{i}]"
            known_fields(where, raw, _SEGMENT_FIELDS)
            if "name" not in raw:
                raise ScriptError(f"{where}.name: missing; every segment has a name")
            trigger = known_fields(f"{where}.trigger", raw.get("trigger", {}), _TRIGGER_FIELDS)
            after = trigger.get("after")
            segments.append(Segment(
                name=raw["name"],
                cause=raw.get("cause", raw["name"]),
                trigger=Trigger(prompt=trigger.get("prompt"), after=tuple(after) if isinstance(after, list) and len(after) == 2 else after,
                                on_block=trigger.get("on_block", False), delay=trigger.get("delay", 0)),
                frames=raw.get("frames", []),
                gap=raw.get("gap", 0),
                optional=raw.get("optional", False),
            ))
        control = data.get("control", {})
        if not isinstance(control, dict):
            raise ScriptError(f"control: {control!r} must be a JSON object {{request subtype: reply}}")
        return cls(
            segments=segments,
            checkpoints=data.get("checkpoints", {}),
            delays=data.get("delays", {}),
            control={k: ControlReply(**known_fields(f"control.{k}", v, _REPLY_FIELDS)) for k, v in control.items()},
            eof=data.get("eof", "end_input"),
            session_id=data.get("session_id", wire.DEFAULT_SESSION),
        ).validate()

    @classmethod
    def loads(cls, text: str) -> Script:
        try:
            return cls.from_json(json.loads(text))
        except json.JSONDecodeError as exc:
            raise ScriptError(f"script: not valid JSON ({exc.msg} at line {exc.lineno})") from None
