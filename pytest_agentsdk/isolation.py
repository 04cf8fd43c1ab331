"""Turn isolation: which turn each frame belongs to, and whether each ``receive_response()`` call
yielded only its own turn's frames. The oracle of bug 2 (late task notification) and its guard.

It judges by cause chains, never by order. The scripted CLI records every frame's cause: a frame
caused by prompt k, by a task that turn k started (``task:ID``: the turn whose frames carried its
``task_started``), or by the CLI's own turn reacting to such a task (``cli:task:ID``) belongs to
turn k; a frame whose cause names no turn belongs to the turn in progress when it was emitted.
What each name means is in :mod:`pytest_agentsdk.bugs.late_task_notification`, the scenario built
on this module; this one needs neither pytest nor Hypothesis.

Messages are matched to the frames behind them in stdout order, but a release may hand one frame
over twice or out of order: that is what the consumer sees (``duplicated``, ``reordered``), not a
reason to give up on the session.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import wire
from .compat import parse_message
from .recording import Call, RecordingClient
from .shown import LateTaskNotificationShown
from .transport import Emission, ScriptedCLIError, ScriptedTransport, TransportLog


# ---------------------------------------------------------------- the oracle
#: Task lifecycle frames besides the notification, which is a kind of its own (the seed's symptom).
_LIFECYCLE = frozenset({"system/task_started", "system/task_progress", "system/task_updated", "system/background_tasks_changed"})
#: The kind of frame reported apart: it never makes the verdict.
STATE = "state"
#: Frame types every release parses into a message: one its parser returns None for was dropped.
_ALWAYS_PARSED = frozenset({"assistant", "user", "result", "system"})
DUPLICATED = "duplicated"
REORDERED = "reordered"


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
    #: lost frames of a call's own turn, which that call read past: never a stale frame filtered out
    dropped: list[str] = field(default_factory=list)
    dropped_kinds: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)  # frames the consumer received more than once
    reordered: list[str] = field(default_factory=list)  # frames received after a frame emitted later
    hang: str | None = None  # the scripted CLI's stall diagnosis
    hung_turn: int | None = None  # the turn whose call never returned

    @property
    def manifestations(self) -> list[str]:
        names = {f"stale:{kind}" for t in self.turns for kind in t.stale_kinds} | {f"dropped:{kind}" for kind in self.dropped_kinds}
        if any(t.misattributed for t in self.turns):
            names.add("misattributed")
        names |= {name for name, frames in ((DUPLICATED, self.duplicated), (REORDERED, self.reordered)) if frames}
        return sorted(names)

    @property
    def tradeoffs(self) -> list[str]:
        """What a fix gave up: ``lost:KIND`` per kind of stale frame dropped with no channel left."""
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
        for name in ("dropped", DUPLICATED, REORDERED):
            if frames := getattr(self, name):
                evidence[name] = frames
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
                lines.append(f"turn {t.turn}: {describe_end(t.turn, t.ended_on, t.answered)}")
            if t.state:
                lines.append(f"turn {t.turn}: {len(t.state)} state frame(s) of earlier turns (not counted): " + "; ".join(t.state))
        for what, frames in (("frame(s) of their own turn dropped", self.dropped), ("frame(s) received twice", self.duplicated),
                             ("frame(s) received out of order", self.reordered)):
            if frames:
                lines.append(f"{len(frames)} {what}: " + "; ".join(frames))
        if self.hang:
            where = f"turn {self.hung_turn}'s call" if self.hung_turn is not None else "the session"
            lines.append(f"{where} never returned: {self.hang}")
        return "\n".join(lines)


def describe_end(turn: int, ended_on: str | None, answered: bool) -> str:
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


@dataclass
class _Attribution:
    """The emission behind each received message, and where the consumer saw one twice or out of order."""

    matched: list[Emission] = field(default_factory=list)
    duplicated: list[Emission] = field(default_factory=list)
    reordered: list[Emission] = field(default_factory=list)


def _attribute(messages: Sequence[Any], delivered: Sequence[tuple[Emission, Any]]) -> _Attribution:
    """Match each received message to the emission it was parsed from (``delivered``: the
    transport's :meth:`~pytest_agentsdk.transport.TransportLog.consumer_frames`).

    The SDK hands stdout over through one FIFO queue, so a message is normally the next emission
    after the previous match that parses to an equal message (a release may drop some, e.g.
    host-only state frames). One that matches only an emission already matched was received twice;
    one that matches only an earlier emission, skipped so far, came out of order. A message no
    emission parses to is the harness's failure (ScriptedCLIError), not the release's.
    """
    found = _Attribution()
    used: set[int] = set()
    pos = 0
    for message in messages:
        ahead = next((i for i in range(pos, len(delivered)) if delivered[i][1] == message), None)
        earlier = [i for i in range(pos) if delivered[i][1] == message] if ahead is None else []
        if ahead is None and not earlier:
            raise ScriptedCLIError(f"received {type(message).__name__} that the scripted CLI never emitted: {message!r}")
        if ahead is not None:
            index, pos = ahead, ahead + 1
        else:
            skipped = [i for i in earlier if i not in used]
            index = skipped[0] if skipped else earlier[0]
            (found.reordered if skipped else found.duplicated).append(delivered[index][0])
        used.add(index)
        found.matched.append(delivered[index][0])
    return found


def _dropped_by_parser(log: TransportLog, delivered: Sequence[tuple[Emission, Any]], parse: Callable[[dict[str, Any]], Any]) -> list[Emission]:
    """Frames of a type every release parses that this release's parser turned into nothing."""
    handed = {e.seq for e, _ in delivered}
    dropped = []
    for e in log.emissions:
        if e.seq in handed or e.frame.get("type") not in _ALWAYS_PARSED or e.frame.get("sdk_host_only"):
            continue
        try:
            nothing = parse(e.frame) is None
        except Exception:  # the consumer gets an exception for it: not silently dropped
            nothing = False
        if nothing:
            dropped.append(e)
    return dropped


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
    given: Sequence[Call | Sequence[Any]] = calls.calls if isinstance(calls, RecordingClient) else calls
    records = [_as_call(k, c) for k, c in enumerate(given)]
    parse = parse or parse_message()
    delivered = log.consumer_frames(parse)
    received_in_calls = _attribute([m for c in records for m in c.messages], delivered)
    matched = received_in_calls.matched
    diverted = _attribute(recorder.side_messages, delivered).matched if recorder else []
    turns = chain_turns(log)
    reports = []
    read_past: dict[int, int] = {}  # turn -> the last seq its own calls yielded
    pos = 0
    for call in records:
        mine = matched[pos : pos + len(call.messages)]
        pos += len(call.messages)
        if call.method == "receive_response":
            reports.append(_judge_call(call, mine, turns))
            if mine:
                read_past[call.turn] = max(read_past.get(call.turn, -1), max(e.seq for e in mine))
    received = {e.seq for e in matched + diverted}
    last = max(received, default=0)
    unreceived = sorted([e for e, _ in delivered] + _dropped_by_parser(log, delivered, parse), key=lambda e: e.seq)
    # host-only frames: releases from 0.2.160 drop them by design
    missing = [e for e in unreceived if e.seq < last and e.seq not in received and not e.frame.get("sdk_host_only")]
    # a frame of a turn whose own call read past it, against one left for a later call that filtered it
    read_over = [e.seq < read_past.get(turns[e.seq], -1) and frame_kind(e) != STATE for e in missing]
    dropped = [e for e, over in zip(missing, read_over) if over]
    lost = [e for e, over in zip(missing, read_over) if not over]
    hung = next((c.turn for c in records if not c.completed), None) if log.stall else None
    described = {name: [_describe(e, turns) for e in frames] for name, frames in
                 (("lost", lost), ("diverted", diverted), ("dropped", dropped), ("duplicated", received_in_calls.duplicated),
                  ("reordered", received_in_calls.reordered))}
    return Isolation(reports, lost_kinds=[frame_kind(e) for e in lost], dropped_kinds=[frame_kind(e) for e in dropped],
                     hang=log.stall, hung_turn=hung, **described)


def judge_provenance(calls: Sequence[Call], emitted: Sequence[Sequence[Emission]]) -> Isolation:
    """The oracle over calls whose frames' causes were established elsewhere: a real CLI's, by
    what the scripted Messages API served (``emitted[k]``: one Emission per message of call k).
    What the SDK dropped cannot be known without the CLI's stdout, so nothing is ``lost``."""
    turns = chain_turns(TransportLog(emissions=[e for frames in emitted for e in frames]))
    reports = [_judge_call(call, list(frames), turns) for call, frames in zip(calls, emitted) if call.method == "receive_response"]
    return Isolation(reports, lost=[], lost_kinds=[])


def assert_turn_isolation(
    log: TransportLog | ScriptedTransport,
    calls: Sequence[Call | Sequence[Any]] | RecordingClient,
    parse: Callable[[dict[str, Any]], Any] | None = None,
) -> Isolation:
    """Fail if any ``receive_response()`` call yielded a frame of an earlier turn's chain (stale),
    did not end on its own answer (misattributed), or a call hung.

    ``log`` is the :class:`ScriptedTransport` the session ran on (or its ``log``); ``calls`` the
    :class:`RecordingClient` that wrapped the client (or its calls, or one list of messages per
    turn). Stale frames the SDK never delivered are returned in ``.lost`` without failing: dropping a
    stale notification is a legitimate fix, but the caller should see what it gave up. A frame of a
    call's own turn it read past, or one received twice or out of order, fails.
    """
    isolation = judge_session(log, calls, parse)
    if isolation.manifestations:
        raise LateTaskNotificationShown("turn isolation violated:\n" + isolation.describe())
    if isolation.hang:  # a call that never returned: the bug's, or a script's that stalled; not the bug named
        raise AssertionError("turn isolation violated:\n" + isolation.describe())
    return isolation


__all__ = [
    "STATE",
    "Isolation",
    "TurnReport",
    "assert_turn_isolation",
    "chain_turns",
    "describe_end",
    "frame_kind",
    "judge_provenance",
    "judge_session",
]
