"""Bug 3, premature completion: a subagent stops mid-work, yet its task is reported ``completed``.

The lie is made by the CLI (anthropics/claude-code#47936): a background agent whose last assistant
messages carry ``stop_reason: None`` and a tool call left unanswered is announced to the parent as
``task_notification[completed]``; the only difference from a real success is a missing result.
Over the scripted CLI this module plays lies and truthful completions and compares how each agent
really ended (the ground truth: the script knows, as the scripted model does over the real CLI)
and what the CLI said with the typed messages the SDK hands the consumer:
``untruthful_completed_passed_through`` (the lie reached the consumer as ``completed``: the bug),
``truthful_reported_failed`` (a clean finish reported ``failed``/``stopped``: a false alarm a fix
can introduce), ``truthful_looks_untruthful`` (a clean finish reported ``completed`` whose typed
messages no longer show it ended cleanly, e.g. a lost ``stop_reason``: the consumer's guard flags a
true completion, and can no longer tell a lie from a success) and ``failure_reported_completed``
(a failure turned into ``completed``). Two shapes no SDK can tell from a success: a cut text the CLI
sends as the agent's result, and a foreground agent's tool result left unanswered whose result
carries older text (see :mod:`pytest_agentsdk.completions`). Wherever the parent gets the agent's
text as its result, the scripted CLI streams what the real CLI does: ``stop_reason: null`` on the
last message, and no last message at all for a foreground agent.

The oracle (:func:`audit`) and the public guard (:func:`find_untruthful_completions`) live in
:mod:`pytest_agentsdk.completions`, usable in production without pytest or Hypothesis; this module
is the **scenario**: scripted subagent transcripts (Hypothesis examples as JSON), their sweep, the
query() and ClaudeSDKClient drivers, and a detectability probe of the installed release's typed API.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from .. import model_server, realcli, wire
from ..compat import SdkInfo
from ..completions import (
    Audit,
    UntruthfulCompletion,
    assert_truthful_completions,
    audit,
    audit_transcript,
    find_untruthful_completions,
    transcript,
)
from ..model_server import Reply
from ..realcli import Cli
from ..explore import Outcome, Scenario, Sweep, run_in_fresh_loop
from ..script import Script, ScriptError, known_fields, one_of, whole_number
from ..verdict import Result


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
            wire.assistant(_read_text(j), wire.tool_use(tid, "Read", {"source_id": f"src{j}"}),
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
    elif not agent["background"] and _result_sent(agent):
        pass  # the real CLI streams no foreground agent's last message: its text is the parent's tool result (b_query_fg)
    else:  # a cut text never ended its turn; a result carrying the agent's text is the real CLI's shape: stop_reason null too
        stop = None if end == "text_cut" or _result_sent(agent) else "end_turn"
        frames.append(wire.assistant(_last_text(i, agent), stop_reason=stop, message_id=f"msg_{i}_end", **on))
    return frames


def _result_sent(agent: dict[str, Any]) -> bool:
    """Does the parent get the agent's text as its result: in the notification, or (foreground) its tool result?"""
    return bool(agent.get("result")) and (agent["via"] != "updated" or not agent["background"])


def _read_text(j: int) -> str:
    return f"Let me read source {j}."


_CUT_TEXT = "Let me read the S-1 for patent expiry details..."


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
        if agent.get("result"):  # a foreground agent's result is its parent's tool result: the summary is not flagged a report (b_query_fg)
            summary, extra = _last_text(i, agent), {"summary_is_report": True} if agent["background"] else {}
        else:
            summary = f'Agent "{_description(i, agent)}" {status}'
        frames.append(wire.task_notification(task_id, status, summary, tool_use_id=spawn,
                                             usage={"total_tokens": 100, "tool_uses": int(agent.get("tools", 0)), "duration_ms": 5}, **extra))
    return frames


def _last_text(i: int, agent: dict[str, Any]) -> str:
    """The agent's last text, which the CLI uses as the report (what d_query_bgnull shows)."""
    if agent["end"] in ("text_cut", "end_turn"):
        return _CUT_TEXT if agent["end"] == "text_cut" else _report_text(i)
    return _read_text(int(agent.get("tools", 0)))


EXAMPLE_FIELDS = ("driver", "agents", "interleave", "gap")
AGENT_FIELDS = ("end", "report", "via", "result", "background", "tools", "progress", "description")


def validate_example(example: Any) -> dict[str, Any]:
    """A (replayed) example checked field by field; ScriptError names the first bad one."""
    known_fields("example", example, EXAMPLE_FIELDS)
    one_of("example.driver", example.get("driver"), DRIVERS, missing="driver" not in example)
    whole_number("example.gap", example.get("gap", 0))
    agents = example.get("agents")
    if not isinstance(agents, list) or not agents:
        raise ScriptError("example.agents: give a non-empty list of agent objects")
    choices = {"end": ENDS, "report": STATUSES, "via": VIAS, "background": (True, False), "result": (True, False)}
    for i, agent in enumerate(agents):
        known_fields(f"example.agents[{i}]", agent, AGENT_FIELDS)
        for key, allowed in choices.items():
            one_of(f"example.agents[{i}].{key}", agent.get(key), allowed, missing=key not in agent)
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


@functools.cache
def examples() -> st.SearchStrategy[dict[str, Any]]:
    """JSON examples; the simplest is one background agent dying on an unanswered tool call. One
    strategy object for every judgement: validated once (``explore.warm_up``), not per search."""
    return st.fixed_dictionaries({
        "driver": st.sampled_from(DRIVERS),
        "agents": st.lists(_agents(), min_size=1, max_size=3),
        "interleave": st.booleans(),
        "gap": st.integers(0, 2),
    })


# ================================================================ drivers
@dataclass
class Session:
    """What one scripted session produced: the consumer's messages and the CLI's frames, and the
    example it played (the ground truth: how each agent really ended)."""

    received: list[Any]
    emitted: list[dict[str, Any]]
    example: dict[str, Any]


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

    run_in_fresh_loop(via_query if example["driver"] == "query" else via_client, backend, skip_idle=True)
    return Session(received, [e.frame for e in transport.log.emissions], example)


# ================================================================ the scenario
PASSED_THROUGH = "untruthful_completed_passed_through"
FALSE_ALARM = "truthful_reported_failed"
LOOKS_UNTRUTHFUL = "truthful_looks_untruthful"
FAILURE_HIDDEN = "failure_reported_completed"

SEMANTICS = (
    "Ground truth is how the script ended each agent: only an agent whose last message ended its turn finished; "
    "one left with a tool call unanswered, stopped right after a tool result or cut off mid-text did not, whatever "
    "its report carries (the CLI sends a cut agent's last text as its result, as the real CLI does). The consumer's "
    f"view is the typed messages the SDK yielded. {PASSED_THROUGH}: the CLI's 'completed' for an agent that did not "
    f"finish reached the consumer as completed (the SDK passed the claim through untouched); {FALSE_ALARM}: a "
    f"completion the CLI reported truthfully reached the consumer as failed or stopped; {LOOKS_UNTRUTHFUL}: such a "
    "completion reached the consumer as completed, but the typed messages make its agent look cut off where the "
    f"CLI's frames did not (the guard on them flags it); {FAILURE_HIDDEN}: a failed or stopped report reached the "
    "consumer as completed. An SDK that reports every lie as failed or stopped and changes nothing else is judged "
    "fixed; none can over this wire where the CLI sent older or cut text as the result (see detectability)."
)

#: Why an agent that ended so never finished (an ``end`` missing here is a clean finish).
UNFINISHED = {
    "unanswered_tool_use": "its agent left a tool call unanswered",
    "after_tool_result": "its agent stopped right after a tool result, without answering it",
    "text_cut": "its agent's last message is text cut off mid-stream: it never ended its turn",
}


def _why_false(agent: dict[str, Any]) -> str:
    return UNFINISHED[agent["end"]] + ("; the CLI sent that agent's last text as its result" if _result_sent(agent) else "")


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
    """Task by task, how its agent really ended (the example) and what the CLI said, against what
    the consumer was told.

    A task whose report never reached the consumer is a trade-off (``task_report``), not a
    manifestation: the lie is gone, and so is the news.
    """
    agents = {agent_ids(i)[0]: agent for i, agent in enumerate(session.example["agents"])}
    emitted = transcript(session.emitted)
    told = transcript(session.received)
    flagged_by_cli = {f.task_id for f in audit_transcript(emitted).untruthful}
    flagged = {f.task_id for f in audit_transcript(told).untruthful}
    shown: list[str] = []
    records: list[dict[str, Any]] = []
    dropped = False
    for task in emitted.tasks.values():
        agent = agents[task.task_id]
        said = task.statuses
        heard = told.tasks[task.task_id].statuses if task.task_id in told.tasks else []
        dropped = dropped or bool(said and not heard)
        lie = "completed" in said and agent["end"] in UNFINISHED
        truthful = "completed" in said and not lie
        if lie and "completed" in heard:
            name = PASSED_THROUGH
        elif truthful and set(heard) - {"completed"}:
            name = FALSE_ALARM
        elif truthful and task.task_id in flagged - flagged_by_cli:
            name = LOOKS_UNTRUTHFUL
        elif said and "completed" not in said and "completed" in heard:
            name = FAILURE_HIDDEN
        else:
            continue
        shown.append(name)
        record: dict[str, Any] = {"task_id": task.task_id, "shows": name, "cli_reported": said, "consumer_told": heard,
                                  "last_frames": [s.describe() for s in emitted.steps_of(task)[-3:]]}
        if lie:
            record.update(reported_by=list(dict.fromkeys(r.source for r in task.reports if r.status == "completed")),
                          why_false=_why_false(agent), guard_flags_it=task.task_id in flagged)
        records.append(record)
    evidence: dict[str, Any] = {"semantics": SEMANTICS, "tasks": records}
    if told.from_raw:
        evidence["read_from_raw_data"] = sorted(told.from_raw)
    return Outcome(sorted(set(shown)), None, evidence, ["task_report"] if dropped else [])


def shape(example: dict[str, Any]) -> str | None:
    """The sweep's unit of comparison: one agent's ending, what the CLI reported of it and its side,
    e.g. ``text_cut/completed+result/background`` (a result the parent got); the seed's flow by
    name; None for other multi-agent examples."""
    if len(example["agents"]) > 1:
        return "the seed's flow" if example == seed_example() else None
    (agent,) = example["agents"]
    with_result = "+result" if agent["report"] == "completed" and _result_sent(agent) else ""
    return f"{agent['end']}/{agent['report']}{with_result}/{'background' if agent['background'] else 'foreground'}"


class PrematureCompletion(Scenario):
    name = "premature_completion"

    def not_applicable(self, sdk: SdkInfo, backend: str, model: str | None) -> str | None:
        if not sdk.has("typed_task_messages"):
            return "release has no typed task messages (TaskNotificationMessage): task reports reach the consumer as generic SystemMessages"
        return super().not_applicable(sdk, backend, model)

    def examples(self, model: str | None) -> st.SearchStrategy[Any]:
        return examples()

    def sweep(self, model: str | None, backend: str) -> Sweep:
        return Sweep(sweep_examples(), SWEEP_AXES)

    def run_example(self, example: Any, backend: str, model: str | None) -> Outcome:
        return judge_session(run_session(example, backend))

    def group(self, example: Any) -> str | None:
        return shape(example)

    def on_cli(self, cli: Cli) -> Scenario:
        return RealCliPrematureCompletion(cli)

    def annotate(self, result: Result, sdk: SdkInfo) -> None:
        if result.verdict not in ("reproduced", "fixed"):
            return
        probe = detectability(result.backend)
        result.evidence.update(probe)
        result.evidence.setdefault("semantics", SEMANTICS)
        seen = "yes" if probe["detectable_by_consumer"] else "partly" if any(probe["detectable_by_shape"].values()) else "no"
        result.notes = [f"detectable by the consumer through the typed API: {seen} ({probe['detectability_reason']})"]
        if probe["read_from_raw_data"]:
            result.notes.append("read from raw message.data (this release's typed classes have no such field): "
                                + ", ".join(probe["read_from_raw_data"]))


#: Each shape of the lie the detectability probe plays (announced by task_updated and
#: task_notification; a background agent unless said), and why the two a result hides stay unseen
#: whatever the release.
LIE_SHAPES: dict[str, dict[str, Any]] = {end: {"end": end} for end in UNFINISHED} | {
    "after_tool_result_with_a_result": {"end": "after_tool_result", "result": True},
    "text_cut_sent_as_result": {"end": "text_cut", "result": True},
    "foreground_after_tool_result_with_a_result": {"end": "after_tool_result", "result": True, "background": False}}
_HIDDEN_BY_A_RESULT = {
    "text_cut_sent_as_result": "the CLI sends the cut text as the agent's result (trace d_query_bgnull) and streams stop_reason "
                               "null on a clean finish too (b_query_bg)",
    "foreground_after_tool_result_with_a_result": "the CLI never streams a foreground agent's last message (b_query_fg), so a "
                                                  "clean finish with a result ends on a tool result too"}


def detectability(backend: str) -> dict[str, Any]:
    """Can a consumer of the installed release see each shape of the lie through the typed API?

    Found by playing each shape and running the guard on the messages the consumer received, so
    the answer comes from the release's own parser, not from a version table. A shape the release
    itself reports ``failed`` or ``stopped`` counts as seen. ``read_from_raw_data`` lists what the
    guard had to read from ``message.data`` for want of a typed field.
    """
    task_id = agent_ids(0)[0]
    by_shape: dict[str, bool] = {}
    why_not: dict[str, str] = {}
    from_raw: set[str] = set()
    for name, agent in LIE_SHAPES.items():
        told = transcript(run_session(agent_example(via="both", **agent), backend).received)
        from_raw |= told.from_raw
        found = audit_transcript(told)
        reported_failed = task_id in told.tasks and "completed" not in told.tasks[task_id].statuses
        by_shape[name] = reported_failed or any(f.task_id == task_id for f in found.untruthful)
        if not by_shape[name]:
            hidden = _HIDDEN_BY_A_RESULT.get(name)
            why_not[name] = found.undecided.get(task_id) or (f"{hidden}: the typed messages are those of a success, and only the CLI can tell"
                                                             if hidden else "the guard saw no sign of it in the typed messages")
    visible = [name for name, seen in by_shape.items() if seen]
    if all(by_shape.values()):
        reason = "every shape of the lie is visible in the typed messages (parent_tool_use_id, tool blocks, stop_reason, task status)"
    else:
        reason = "; ".join(f"{name}: {why}" for name, why in why_not.items())
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


# ================================================================ over the real CLI
REAL_SPAWN = "toolu_spawn_real"
_AGENT_GATE = "agent"
_REPORT = "REPORT: all sources read; findings written to notes.md."


def _read_call(i: int) -> dict[str, Any]:
    return model_server.tool_use(f"toolu_read_{i}", "Read", {"file_path": f"notes_{i}.md"})


#: How the scripted model serves the subagent (REAL_CLI.md, traces d_query_*). The ground truth is
#: the model's side: an agent whose last reply ended with ``stop_reason: null`` or a cut stream was
#: never told its turn ended, so a ``completed`` for it is the lie; a stream without
#: ``message_stop`` that the CLI follows up (CLI 2.1.300 on asks the agent to go on; 2.1.250 does
#: not) and the model then ends is a clean finish.
REAL_STORIES: dict[str, Callable[[], list[Reply]]] = {
    "text_null": lambda: [Reply([model_server.text(_CUT_TEXT)], stop_reason=None)],
    "tool_then_text_null": lambda: [Reply([model_server.text("Let me read the notes."), _read_call(0)], stop_reason="tool_use"),
                                    Reply([model_server.text(_CUT_TEXT)], stop_reason=None)],
    # repeat: a CLI that got some output before the cut may ask the agent to go on (its truncated
    # response recovery, as timing has it); it meets the same cut, so the story's truth holds either way
    "cut_mid_tool": lambda: [Reply([model_server.text("Let me read the notes."), _read_call(0)], stop_reason=None, ending="cut",
                                   repeat=True)],
    "end_turn": lambda: [Reply([model_server.text(_REPORT)])],
    "tool_then_end_turn": lambda: [Reply([model_server.text("Let me read the notes."), _read_call(0)], stop_reason="tool_use"),
                                   Reply([model_server.text(_REPORT)])],
    "no_message_stop_then_end_turn": lambda: [Reply([model_server.text(_CUT_TEXT)], stop_reason=None, ending="no_message_stop"),
                                              Reply([model_server.text(_REPORT)], repeat=True)],
}
REAL_SEMANTICS = (
    "Ground truth is what the scripted Messages API served each subagent: one whose last reply ended with "
    f"stop_reason null or a cut stream never finished. {PASSED_THROUGH}: the real CLI's 'completed' for such an "
    f"agent reached the consumer (the typed messages the SDK yielded); {FALSE_ALARM}: an agent the model ended "
    f"cleanly reached the consumer as failed or stopped; {LOOKS_UNTRUTHFUL}: it reached the consumer as completed, "
    "but the guard flags the typed messages where it did not flag the CLI's frames."
)


_REAL_FOREGROUND = ("text_null", "end_turn", "tool_then_end_turn")
_REAL_THROUGH_CLIENT = ("text_null", "end_turn")


def real_sweep() -> list[dict[str, Any]]:
    """Every story with a background agent through query(); the seed's lie and two clean finishes
    also in the foreground (whose last message the CLI does not stream, nor mark its report as
    one); the lie and a clean finish through ClaudeSDKClient (whose stdin stays open: the CLI
    sends turn 1's result at once, and the agent's report after it)."""
    return ([{"story": s, "background": True, "driver": "query"} for s in REAL_STORIES]
            + [{"story": s, "background": False, "driver": "query"} for s in _REAL_FOREGROUND]
            + [{"story": s, "background": True, "driver": "client"} for s in _REAL_THROUGH_CLIENT])


def _real_main_replies(background: bool) -> list[Reply]:
    spawn = model_server.tool_use(REAL_SPAWN, "Agent", {"description": "Research TERN-501", "prompt": "Do the research.",
                                                         "subagent_type": "general-purpose", "run_in_background": background})
    # a background agent starts work once the main agent's turn is answered: the model serves them in one order
    # every run (the CLI may still write the two replies to stdout in either order; no oracle reads that order)
    replies = [Reply([spawn], stop_reason="tool_use"),
               Reply([model_server.text("MAIN: agent dispatched.")], opens=_AGENT_GATE if background else None)]
    if background:  # the CLI's own turn reacting to the task notification
        replies.append(Reply([model_server.text("MAIN: I received the task notification.")]))
    return replies


class RealCliPrematureCompletion(realcli.RealCliStories, PrematureCompletion):
    """Bug 3 as the real CLI plays it: the model side scripted, the CLI deciding what to report."""

    story_axes = (f"{len(REAL_STORIES)} subagent endings + {len(_REAL_FOREGROUND)} in the foreground + "
                  f"{len(_REAL_THROUGH_CLIENT)} through ClaudeSDKClient")

    def stories(self) -> list[dict[str, Any]]:
        return real_sweep()

    def group(self, example: Any) -> str | None:
        return f"{example['story']}/{'background' if example['background'] else 'foreground'}/{example['driver']}"

    def run_example(self, example: Any, backend: str, model: str | None) -> Outcome:
        example = self.story(example)
        work = REAL_STORIES[example["story"]]()
        if example["background"]:
            work[0].gate = _AGENT_GATE
        with realcli.tap_stdout() as frames, realcli.CliSession(self.cli, _real_main_replies(example["background"]), work) as session:
            if example["driver"] == "query":
                received = realcli.play_query(session, "Research these assets.", backend)
            else:
                received = [m for turn in realcli.play_client(session, ["Research these assets."], backend,
                                                               responses=1 + example["background"]) for m in turn]
        session.raise_for_unscripted()
        served = session.model.served("subagent")
        clean = bool(served) and served[-1].reply is not None and served[-1].reply.ends_cleanly
        told = transcript(received)
        heard = [s for t in told.tasks.values() if t.tool_use_id in (REAL_SPAWN, None) for s in t.statuses]
        flagged, flagged_by_cli = bool(find_untruthful_completions(received)), bool(find_untruthful_completions(frames))
        if not clean and "completed" in heard:
            shown = [PASSED_THROUGH]
        elif clean and set(heard) - {"completed"}:
            shown = [FALSE_ALARM]
        elif clean and "completed" in heard and flagged and not flagged_by_cli:
            shown = [LOOKS_UNTRUTHFUL]
        else:
            shown = []
        evidence = {"semantics": REAL_SEMANTICS, "cli": self.cli.describe(), "story": example["story"],
                    "model_served_subagent": [r.reply.describe() for r in served if r.reply is not None],
                    "agent_finished": clean, "consumer_told": heard, "guard_flags_it": flagged,
                    "guard_flags_the_cli_frames": flagged_by_cli}
        return Outcome(shown, None, evidence, [] if heard else ["task_report"])

    def annotate(self, result: Result, sdk: SdkInfo) -> None:
        result.notes = [f"played by the real CLI: {self.cli.describe()}"]
        result.evidence.setdefault("semantics", REAL_SEMANTICS)
