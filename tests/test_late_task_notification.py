"""Bug 2, late task notification: the scripted CLI models against the real CLI's trace, the
cause-chain oracle and ``assert_turn_isolation``, the sweep, controls on the installed SDK, and
the verdicts and changes across releases and fix candidates (tests/candidates)."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from candidates import BASE_VERSION
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_agentsdk import assert_turn_isolation, verdict, wire
from pytest_agentsdk.bugs import late_task_notification as ltn
from pytest_agentsdk.compat import parse_message
from pytest_agentsdk.explore import judge
from pytest_agentsdk.recording import SIDE_CHANNEL, Call, RecordingClient
from pytest_agentsdk.script import Script, ScriptError
from pytest_agentsdk.transport import Emission, ScriptedCLIError, ScriptedTransport, TransportLog

ROOT = Path(__file__).resolve().parent.parent
TRACE = json.loads((Path(__file__).parent / "data" / "real_cli_subagent_traces.json").read_text())["traces"]["c_client_bg_2turn"]


def kinds(frames: list[dict[str, Any]]) -> list[str]:
    return [wire.kind(f) for f in frames]


def with_task(**overrides: Any) -> dict[str, Any]:
    example = json.loads(json.dumps(ltn.SEED_EXAMPLE))
    example["tasks"][0].update(overrides)
    return example


# ---------------------------------------------------------------- the CLI models vs CLI 2.1.330
def test_wake_parent_reacts_like_the_real_cli() -> None:
    """After turn 1's result the real CLI reports the agent's end and runs a turn of its own; the
    wake-parent model emits the same main-agent frames in the same order (the trace file drops
    system/init frames, the subagent's own frames are progress, not modelled one by one)."""
    first_result = next(i for i, f in enumerate(TRACE) if f["type"] == "result")
    agent = next(f["task_id"] for f in TRACE if f.get("subtype") == "task_started" and f.get("is_backgrounded"))
    real = [
        f
        for f in TRACE[first_result + 1 :]
        if f.get("parent_tool_use_id") is None and f.get("task_id") in (None, agent) and f.get("subtype") != "task_progress"
    ]
    real = real[: next(i for i, f in enumerate(real) if f.get("state") == "idle") + 1]
    script = ltn.build_script(with_task(report="both"), "wake-parent")
    modelled = script.segment("task:t0").frames + script.segment("cli:t0").frames
    assert [k for k in kinds(modelled) if k != "system/init"] == kinds(real)
    assert modelled[-2]["origin"]["kind"] == real[-2]["origin"]["kind"] == "task-notification"


def test_wake_parent_session_state_follows_the_trace() -> None:
    """running opens each of the caller's turns; idle comes only once no agent is pending."""
    real_states = [(i, f["state"]) for i, f in enumerate(TRACE) if f.get("subtype") == "session_state_changed"]
    assert [s for _, s in real_states] == ["running", "idle", "running", "idle"]
    script = ltn.build_script(ltn.SEED_EXAMPLE, "wake-parent")
    turn0, turn1, own = script.segment("turn0").frames, script.segment("turn1").frames, script.segment("cli:t0").frames
    assert (turn0[0]["state"], turn1[0]["state"]) == ("running", "running")
    assert turn0[-1]["type"] == "result", "turn 1 ends with its agent still running: no idle"
    assert own[-1]["state"] == turn1[-1]["state"] == "idle"


def test_notify_only_reports_the_completion_and_nothing_else() -> None:
    script = ltn.build_script(with_task(report="both"), "notify-only")
    assert kinds(script.segment("task:t0").frames) == ["system/task_updated", "system/task_notification"]
    assert not any(s.cause.startswith("cli:") for s in script.segments)
    assert not any(wire.kind(f) == "system/session_state_changed" for s in script.segments for f in s.frames)


@pytest.mark.parametrize(
    ("example", "field"),
    [
        (with_task(done="soon"), "tasks[0].done"),
        (with_task(report="email"), "tasks[0].report"),
        (with_task(turn=2), "tasks[0].turn"),
        (with_task(done="at_prompt", turn=1), "tasks[0].done"),
        ({**ltn.SEED_EXAMPLE, "pace": ["late", 3]}, "pace"),
        ({**ltn.SEED_EXAMPLE, "pace": [-1]}, "pace[0]"),
        ({**ltn.SEED_EXAMPLE, "prompts": 9}, "prompts"),
        ({**ltn.SEED_EXAMPLE, "tasks": []}, "tasks"),
        ({**ltn.SEED_EXAMPLE, "checkpoints": {"read": -1}}, "checkpoints.read"),
    ],
)
def test_bad_examples_name_the_field(example: dict[str, Any], field: str) -> None:
    with pytest.raises(ScriptError, match="^" + re.escape(field) + ":"):
        ltn.build_script(example, "notify-only")


def test_unknown_model_is_named() -> None:
    with pytest.raises(ScriptError, match="model: 'eager'"):
        ltn.build_script(ltn.SEED_EXAMPLE, "eager")


@pytest.mark.parametrize("model", ltn.MODELS)
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_every_generated_example_is_a_valid_json_script(model: str, data: st.DataObject) -> None:
    example = data.draw(ltn.SCENARIO.examples(model))
    script = ltn.build_script(json.loads(json.dumps(example)), model)
    assert Script.loads(script.dumps()).to_json() == script.to_json()


# ---------------------------------------------------------------- the oracle on recorded logs
def recorded(model: str, layout: list[tuple[str, int]], example: dict[str, Any] | None = None) -> TransportLog:
    """A transport log of the script of ``example`` (the seed's by default), segments emitted in
    ``layout`` order, each with the number of prompts written by then."""
    script = ltn.build_script(example or ltn.SEED_EXAMPLE, model)
    log = TransportLog()
    for name, before in layout:
        segment = script.segment(name)
        for i, frame in enumerate(segment.frames):
            stamped = wire.stamp(frame, f"{name}#{i}")
            log.emissions.append(Emission(len(log.emissions) + 1, stamped, name, segment.cause, i, before))
    return log


def received(log: TransportLog, *segments: str, host_only: bool = False) -> list[Any]:
    """What a release hands the consumer of those segments (host-only frames dropped, as 0.2.160+ do)."""
    parse = parse_message()
    return [parse(e.frame) for e in log.emissions if e.segment in segments and (host_only or not e.frame.get("sdk_host_only"))]


SEED_BUG_WAKE = [("turn0", 1), ("task:t0", 1), ("cli:t0", 1), ("turn1", 2)]


def test_stale_notification_is_named_with_its_kind_and_turn() -> None:
    log = recorded("notify-only", [("turn0", 1), ("task:t0", 1), ("turn1", 2)])
    calls = [received(log, "turn0"), received(log, "task:t0", "turn1")]
    assert ltn.judge_session(log, calls).manifestations == ["stale:task_notification"]
    with pytest.raises(AssertionError, match=r"turn 1: 1 stale frame\(s\) of earlier turns \(task_notification\): "
                                            r"system/task_notification t0 \[task:t0 of turn 0, emitted with 1 prompt"):
        assert_turn_isolation(log, calls)


def test_each_stale_kind_is_named_and_state_frames_stand_apart() -> None:
    """The seed's flow with a subagent's progress under wake-parent, on a release that still hands
    over host-only state frames: every kind is named; the state frames are evidence, not verdict."""
    example = with_task(report="both", progress=1)
    log = recorded("wake-parent", SEED_BUG_WAKE, example)
    isolation = ltn.judge_session(log, [received(log, "turn0", host_only=True), received(log, "task:t0", "cli:t0", host_only=True)])
    assert isolation.manifestations == ["misattributed", "stale:cli_turn", "stale:subagent", "stale:task_lifecycle", "stale:task_notification"]
    assert [frame.split(" ")[0] for frame in isolation.turns[1].state] == ["system/session_state_changed"]
    assert isolation.evidence()["state"][0].startswith("turn 1: system/session_state_changed [cli:task:t0 of turn 0")


def test_a_completion_after_the_next_prompt_still_belongs_to_its_turn() -> None:
    """The agent ends as prompt 1 arrives and the CLI answers the completion first: every frame
    came after prompt 1, yet all of them belong to turn 0's chain."""
    log = recorded("wake-parent", [("turn0", 1), ("task:t0", 2), ("cli:t0", 2), ("turn1", 2)])
    calls = [received(log, "turn0"), received(log, "task:t0", "cli:t0")]
    isolation = ltn.judge_session(log, calls)
    assert isolation.manifestations == ["misattributed", "stale:cli_turn", "stale:task_lifecycle", "stale:task_notification"]
    assert isolation.turns[1].ended_on == "result of cli:task:t0"
    with pytest.raises(AssertionError, match="turn 1: ended on result of cli:task:t0, not the result answering prompt 1"):
        assert_turn_isolation(log, calls)


@pytest.mark.parametrize("model", ltn.MODELS)
def test_consuming_the_task_and_the_clis_reaction_in_its_own_turn_is_isolated(model: str) -> None:
    """The seed's first acceptable outcome: turn 0's call reads on past its result through its
    task and the CLI's reaction, and ends on the reaction's result, which is turn 0's."""
    own = ["turn0", "task:t0"] + (["cli:t0"] if model == "wake-parent" else [])
    log = recorded(model, [(name, 1) for name in own] + [("turn1", 2)])
    isolation = assert_turn_isolation(log, [received(log, *own), received(log, "turn1")])
    assert isolation.lost == []
    assert isolation.turns[0].ended_on == ("result of cli:task:t0" if model == "wake-parent" else "result of prompt:0")


def test_dropped_notification_is_isolated_but_reported_lost() -> None:
    """The seed's second acceptable outcome (filtered out): allowed, and visible as a trade-off."""
    log = recorded("notify-only", [("turn0", 1), ("task:t0", 1), ("turn1", 2)])
    isolation = assert_turn_isolation(log, [received(log, "turn0"), received(log, "turn1")])
    assert [lost.split(" [")[0] for lost in isolation.lost] == ["system/task_notification t0"]
    assert isolation.tradeoffs == ["lost:task_notification"]


class ClientWithChannel:
    """A client that kept stale messages out of receive_response() on its separate channel."""

    def __init__(self, stale: list[Any]) -> None:
        setattr(self, SIDE_CHANNEL, stale)


def test_frames_diverted_to_the_clients_channel_are_delivered_not_lost() -> None:
    log = recorded("wake-parent", SEED_BUG_WAKE)
    recorder = RecordingClient(ClientWithChannel(received(log, "task:t0", "cli:t0")))
    recorder.calls = [Call("receive_response", k + 1, received(log, f"turn{k}"), completed=True) for k in range(2)]
    isolation = assert_turn_isolation(log, recorder)
    assert (isolation.lost, isolation.tradeoffs) == ([], [])
    assert [frame.split(" ")[0] for frame in isolation.diverted] == ["system/task_notification", "system/background_tasks_changed",
                                                                      "system/init", "assistant", "result"]


def test_chains_resolve_from_the_log_of_a_users_own_script() -> None:
    """No example behind it: a task's frames belong to the turn whose frame started it (here a
    nested task started by another task's frame), the CLI's reaction to the task's turn, and a
    frame with no chain to the turn in progress when it was emitted."""
    script = (
        Script(eof="close")
        .turn(wire.system_init(), wire.task_started("a"), wire.result("0"))
        .event("agent-a", wire.task_started("b"), cause="task:a", after=("turn0", 2))
        .event("agent-b", wire.task_notification("b"), cause="task:b", after=("agent-a", 0))
        .event("reaction", wire.system_init(), cause="cli:task:b", after=("agent-b", 0))
        .event("chatter", wire.rate_limit_event(), cause="misc", after=("reaction", 0))
        .turn(wire.system_init(), wire.result("1"))
    ).validate()
    log = TransportLog()
    for segment, before in (("turn0", 1), ("agent-a", 1), ("agent-b", 1), ("reaction", 1), ("chatter", 1), ("turn1", 2)):
        seg = script.segment(segment)
        for i, frame in enumerate(seg.frames):
            log.emissions.append(Emission(len(log.emissions) + 1, wire.stamp(frame, f"{segment}#{i}"), segment, seg.cause, i, before))
    assert list(ltn.chain_turns(log).values()) == [0, 0, 0, 0, 0, 0, 0, 1, 1]


def test_a_message_never_emitted_is_a_harness_error() -> None:
    log = recorded("notify-only", [("turn0", 1)])
    alien = parse_message()(wire.stamp(wire.result("from elsewhere"), "x"))
    with pytest.raises(ScriptedCLIError, match="never emitted"):
        ltn.judge_session(log, [received(log, "turn0") + [alien]])



def test_a_frame_received_twice_is_duplicated_not_a_harness_error() -> None:
    log = recorded("notify-only", [("turn0", 1), ("task:t0", 1), ("turn1", 2)])
    task = received(log, "task:t0")
    isolation = ltn.judge_session(log, [received(log, "turn0"), task + task + received(log, "turn1")])
    assert isolation.manifestations == ["duplicated", "stale:task_notification"]
    assert [frame.split(" [")[0] for frame in isolation.duplicated] == ["system/task_notification t0"]


def test_a_frame_received_after_a_later_one_is_reordered() -> None:
    """The notification held back behind turn 1's first frame: out of stdout's order, and still stale."""
    log = recorded("notify-only", [("turn0", 1), ("task:t0", 1), ("turn1", 2)])
    turn1 = received(log, "turn1")
    isolation = ltn.judge_session(log, [received(log, "turn0"), turn1[:1] + received(log, "task:t0") + turn1[1:]])
    assert isolation.manifestations == ["reordered", "stale:task_notification"]
    assert [frame.split(" [")[0] for frame in isolation.reordered] == ["system/task_notification t0"]


def test_a_turns_own_frame_its_call_read_past_is_dropped_not_a_tradeoff() -> None:
    """A task ending before its turn's result: a call that skips its notification and goes on to
    its result leaves the consumer without news of its own task; a stale one filtered is a trade-off."""
    example = with_task(done="in_turn")
    log = recorded("notify-only", [("turn0", 1), ("task:t0", 1), ("turn1", 2)], example)
    turn0, task, turn1 = ([e for e in log.emissions if e.segment == name] for name in ("turn0", "task:t0", "turn1"))
    started = 3  # the notification comes right after task_started, before turn 0's result
    log.emissions = [dataclasses.replace(e, seq=i + 1) for i, e in enumerate(turn0[:started] + task + turn0[started:] + turn1)]
    parse = parse_message()
    own = [parse(e.frame) for e in log.emissions if e.segment == "turn0" or (e.segment == "task:t0" and wire.kind(e.frame) != "system/task_notification")]
    isolation = ltn.judge_session(log, [own, received(log, "turn1")])
    assert isolation.manifestations == ["dropped:task_notification"]
    assert (isolation.lost, isolation.tradeoffs) == ([], [])


def test_a_frame_the_parser_drops_counts_as_undelivered() -> None:
    """A release whose parser turns a task_notification into nothing has not delivered it."""
    log = recorded("notify-only", [("turn0", 1), ("task:t0", 1), ("turn1", 2)])
    real = parse_message()

    def parse(frame: dict[str, Any]) -> Any:
        return None if wire.kind(frame) == "system/task_notification" else real(frame)

    isolation = ltn.judge_session(log, [received(log, "turn0"), received(log, "turn1")], parse)
    assert isolation.tradeoffs == ["lost:task_notification"]


# ---------------------------------------------------------------- the sweep
def test_the_sweep_spans_every_known_class_seed_first() -> None:
    examples = ltn.sweep_examples()
    assert examples[0] == ltn.SEED_EXAMPLE and ltn.flow(examples[0]) == ltn.SEED_FLOW
    spanned = {(t["done"], t["report"], t["progress"]) for ex in examples for t in ex["tasks"]}
    assert spanned == {(d, r, p) for d in ltn.DONE for r in ltn.REPORTS for p in (0, 1)}
    paces = {(ex["tasks"][0]["done"], ex["pace"][-1]) for ex in examples}
    assert {("between", "late"), ("between", 0), ("later", "late"), ("later", 0)} <= paces
    sweep = ltn.SCENARIO.sweep("notify-only", "asyncio")
    assert sweep.examples == examples and sweep.axes.startswith("5 timings x 3 reports x 2 progress")
    assert {ltn.flow(ex) for ex in examples} == set(ltn.FLOWS.values()) | {"several tasks"}
    beside = [(ex["tasks"][0]["done"], ex["tasks"][0]["report"], ex["tasks"][1]["turn"], ex["tasks"][1]["done"], ex["tasks"][1]["background"])
              for ex in examples if len(ex["tasks"]) == 2]
    # a second agent beside the first at each of its timings x reports: in the background, and in
    # the foreground (its task_updated is then one of turn 1's own frames)
    assert sorted(beside) == sorted((done, report, 1, "in_turn", background)
                                    for done in ltn.DONE for report in ltn.REPORTS for background in (True, False))
    assert all(ex["tasks"][1]["report"] == "both" for ex in examples if len(ex["tasks"]) == 2 and not ex["tasks"][1]["background"])


@pytest.mark.anyio
@pytest.mark.parametrize("model", ltn.MODELS)
@pytest.mark.parametrize("done", ["between", "mid_next", "later"])
async def test_a_task_s_report_is_one_block_and_only_its_work_is_spread(agentsdk_backend: str, model: str, done: str) -> None:
    """CLI 2.1.330 writes the report of a task's end (task_updated, task_notification,
    background_tasks_changed) back to back, at a turn's end and mid turn alike: a task's ``gap``
    spreads its subagent's frames, and the report comes a gap after them as one block, so nothing
    of a turn, and no prompt, comes between its frames (a call that remembers per call which turn a
    background_tasks_changed follows was judged on a split the CLI does not make, at some seeds)."""
    for progress in (0, 2):
        example = {**with_task(done=done, report="both", progress=progress, gap=2), "prompts": 3, "pace": ["late", "late"]}
        session = await ltn.play(ltn.build_script(example, model), example["pace"], example["prompts"])
        emissions = session.transport.log.emissions
        report = [i for i, e in enumerate(emissions) if e.cause == "task:t0" and wire.kind(e.frame) not in ("assistant", "system/task_progress")]
        shown = [(e.segment, wire.kind(e.frame)) for e in emissions]
        assert len(report) == (3 if model == "wake-parent" else 2), shown  # task_updated, task_notification (, background_tasks_changed)
        assert report == list(range(report[0], report[0] + len(report))), shown
        work = [i for i, e in enumerate(emissions) if e.cause == "task:t0" and i not in report]
        assert len(work) == 2 * progress and all(i < report[0] for i in work), shown


# ---------------------------------------------------------------- the installed SDK
@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


CONTROLS = {
    "foreground agent": with_task(background=False, progress=1),
    "completes before its turn's result": with_task(done="in_turn", report="both", progress=2, gap=1),
}


@pytest.mark.parametrize("control", sorted(CONTROLS))
@pytest.mark.parametrize("model", ltn.MODELS)
def test_flows_without_a_late_completion_never_manifest(anyio_backend: str, agentsdk_backend: str, control: str, model: str) -> None:
    """No release can get these wrong: a false positive would be the oracle's."""
    outcome = ltn.SCENARIO.run_example(CONTROLS[control], agentsdk_backend, model)
    assert (outcome.names, outcome.tradeoffs) == ([], []), outcome.evidence


@contextlib.asynccontextmanager
async def reading_on_for_the_task(script: Script) -> AsyncIterator[tuple[ltn.TaskClockTransport, Any]]:
    """The scripted CLI and a client whose first call read on past its result until the task's
    notification (the seed's first fix), for a test to go on with."""
    from claude_agent_sdk import ClaudeSDKClient

    transport = ltn.TaskClockTransport(script)
    async with ClaudeSDKClient(transport=transport) as client:
        await client.query("prompt 0")
        async for message in client.receive_messages():
            if getattr(message, "subtype", None) == "task_notification":
                break
        yield transport, client


@pytest.mark.anyio
async def test_a_task_runs_on_its_own_clock_when_the_consumer_waits_for_it(agentsdk_backend: str) -> None:
    """A task scripted to end after the next turn still ends while a consumer reads on in its
    own turn for it (the seed's first fix), as time would pass: no stall."""
    async with reading_on_for_the_task(ltn.build_script(with_task(done="later"), "notify-only")) as (transport, _):
        pass
    emitted = [(e.segment, e.prompts_before) for e in transport.log.emissions if e.segment == "task:t0"]
    assert emitted == [("task:t0", 1)] and transport.log.stall is None


@pytest.mark.anyio
async def test_a_task_ended_by_a_consumer_waiting_for_it_is_reacted_to_at_once(agentsdk_backend: str) -> None:
    """A completion scripted mid next turn, its subagent's work spread apart, that ends early
    because the consumer reads on for it: the work plays, then the report of the end as one block,
    and the wake-parent CLI, idle then, runs its own turn on it at once (as for a completion
    scripted to find it idle). A consumer that sends the next prompt as soon as it reads the
    notification finds the CLI's own turn already under way: it does not come in the middle of the
    next turn."""
    script = ltn.build_script(with_task(done="mid_next", progress=1, gap=3, delay=2), "wake-parent")
    assert [s.name for s in script.segments if s.cause == "task:t0"] == ["task:t0:work", "task:t0"]
    async with reading_on_for_the_task(script) as (transport, client):
        await client.query("prompt 1")
        async for message in client.receive_messages():
            if getattr(message, "result", None) == "answer to prompt 1":
                break
    emitted = [(e.segment, e.prompts_before) for e in transport.log.emissions]
    first = next(i for i, (segment, _) in enumerate(emitted) if segment == "task:t0")
    block = [segment for segment, _ in emitted[first:first + 5]]  # notification, background_tasks_changed; init, assistant, result
    assert block == ["task:t0"] * 2 + ["cli:t0"] * 3, emitted
    assert [segment for segment, _ in emitted[:first] if segment and segment.startswith("task:")] == ["task:t0:work"] * 2
    assert emitted[first][1] == 1 and transport.log.stall is None  # it ended before prompt 1


@pytest.mark.anyio
async def test_a_call_that_never_returns_is_reported_as_a_hang(agentsdk_backend: str) -> None:
    """A consumer waiting for a second answer it never asked for: the scripted CLI diagnoses the
    stall, the call raises, and the helper names the turn instead of the test hanging."""
    from claude_agent_sdk import ClaudeSDKClient

    transport = ScriptedTransport(Script(eof="close").turn(wire.system_init(), wire.assistant("4"), wire.result("4")))
    async with ClaudeSDKClient(transport=transport) as client:
        recorder = RecordingClient(client)
        await recorder.query("2+2?")
        assert [type(m).__name__ async for m in recorder.receive_response()][-1] == "ResultMessage"
        with pytest.raises(Exception, match="scripted CLI stalled"):
            async for _ in recorder.receive_response():
                pass
    with pytest.raises(AssertionError, match="turn 0's call never returned: scripted CLI stalled"):
        assert_turn_isolation(transport, recorder)


def test_same_seed_same_search(anyio_backend: str, agentsdk_backend: str) -> None:
    """The sweep and the Hypothesis search give the same verdict and minimal example twice."""
    first, second = (judge(ltn.SCENARIO, agentsdk_backend, "notify-only", 11, 15) for _ in range(2))
    assert (first.verdict, first.counterexample, first.manifestations) == (second.verdict, second.counterexample, second.manifestations)


# ---------------------------------------------------------------- across releases
CHECK_ARGS = ["--bug", "late_task_notification", "--backend", "asyncio", "--seed", "3", "--examples", "12", "--quiet"]
#: What every release so far shows: the whole chain of a task that ends between turns leaks.
NOTIFY_ONLY = ["stale:subagent", "stale:task_lifecycle", "stale:task_notification"]
WAKE_PARENT = ["misattributed", "stale:cli_turn", *NOTIFY_ONLY, "stale:turn"]


@pytest.fixture(scope="module")
def verdicts(sdk_release: Any) -> Any:
    cache: dict[str, dict[str | None, dict[str, Any]]] = {}

    def get(spec: str) -> dict[str | None, dict[str, Any]]:
        if spec not in cache:
            report = sdk_release(spec).run_check(CHECK_ARGS, timeout=600)
            cache[spec] = {r["model"]: {**r, "subject": report["subject"]} for r in report["results"]}
        return cache[spec]

    return get


def stale_kinds(result: dict[str, Any]) -> set[str]:
    return {frame.split(" ")[0] for turn in result["evidence"]["turns"] for frame in turn["stale"]}


@pytest.mark.parametrize("spec", ["0.1.48", "latest"])
def test_reproduces_under_both_models(verdicts: Any, spec: str) -> None:
    results = verdicts(spec)
    notify, wake = results["notify-only"], results["wake-parent"]
    assert (notify["verdict"], notify["manifestations"]) == ("reproduced", NOTIFY_ONLY)
    assert "system/task_notification" in stale_kinds(notify)
    assert (wake["verdict"], wake["manifestations"]) == ("reproduced", WAKE_PARENT)
    (turn,) = wake["evidence"]["turns"]
    assert (turn["turn"], turn["ended_on"]) == (1, "result of cli:task:t0")
    assert wake["evidence"]["pattern"] == ltn.SEED_FLOW
    assert "typed TaskNotificationMessage" in notify["evidence"]["task_frames"]


def test_state_frames_are_reported_apart(verdicts: Any) -> None:
    """0.1.48 predates dropping host-only frames: a turn's trailing idle reaches the next call,
    which shows in the evidence and a note, never in the manifestations."""
    wake = verdicts("0.1.48")["wake-parent"]
    assert not any(name.endswith(":state") for name in wake["manifestations"])
    assert any("session_state_changed" in frame for aside in wake["evidence"]["asides"].values() for frame in aside.get("state", []))
    assert any(note.startswith("state frames of earlier turns (not counted)") for note in wake["notes"])


def test_untyped_release_is_judged_through_plain_system_messages(verdicts: Any) -> None:
    """0.1.44 has no TaskNotificationMessage (probed, not looked up): the oracle reads provenance,
    so the verdict comes through plain SystemMessage frames, and says so."""
    old, typed = verdicts("0.1.44"), verdicts("0.1.48")
    assert old["notify-only"]["subject"]["features"]["typed_task_messages"] is False
    assert typed["notify-only"]["subject"]["features"]["typed_task_messages"] is True
    for model in ltn.MODELS:
        assert old[model]["verdict"] == "reproduced"
        assert "plain SystemMessage" in old[model]["evidence"]["task_frames"]
        assert "system/task_notification" in stale_kinds(old[model])


def test_repro_exits_1_on_the_latest_release(sdk_release: Any) -> None:
    proc = sdk_release("latest").run([str(ROOT / "repros" / "late_task_notification.py")], timeout=120)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "msg#1 TaskNotificationMessage" in proc.stdout and "STALE (task_notification)" in proc.stdout
    assert "not the answer to prompt 2" in proc.stdout


def test_repro_exits_1_on_the_oldest_release(sdk_release: Any) -> None:
    proc = sdk_release("0.1.44").run([str(ROOT / "repros" / "late_task_notification.py"), "--model", "notify-only"], timeout=120)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "msg#1 SystemMessage subtype=task_notification task_id=t0" in proc.stdout


# ---------------------------------------------------------------- fix candidates
@pytest.fixture(scope="module")
def candidate(candidate_env: Any, verdicts: Any) -> Any:
    """``candidate(name)`` -> per model, the candidate's verdict (tests/candidates' ``name`` over
    BASE_VERSION) and its change against that release, as ``verify`` classes it."""
    baseline = {model: verdict.Result(**{k: v for k, v in r.items() if k != "subject"}) for model, r in verdicts(BASE_VERSION).items()}

    def get(name: str, *args: str) -> dict[str | None, tuple[verdict.Result, dict[str, Any]]]:
        env = candidate_env(name)
        results = [verdict.Result(**r) for r in env.run_check([*CHECK_ARGS, *args], timeout=600)["results"]]
        return {r.model: (r, verdict.classify_change(baseline[r.model], r)) for r in results}

    return get


def changes(judged: dict[str | None, tuple[verdict.Result, dict[str, Any]]]) -> dict[str | None, tuple[str, str, list[str]]]:
    """model -> (verdict, change, manifestations)."""
    return {model: (r.verdict, change["change"], r.manifestations) for model, (r, change) in judged.items()}


def test_consume_through_fix_fixes_wake_parent(candidate: Any) -> None:
    """Reading on through its own task and the CLI's reaction is turn 0's, not misattributed; a
    CLI that reports no session state gives no sign that a notification follows a terminal
    task_updated, so under notify-only the notification of that report still leaks."""
    judged = candidate("consume_through")
    assert changes(judged) == {
        "wake-parent": ("fixed", "fixes", []),
        "notify-only": ("reproduced", "narrows", ["stale:task_notification"]),
    }
    notify, _ = judged["notify-only"]
    assert {t["report"] for t in notify.counterexample["tasks"]} == {"both"}
    assert all(not r.tradeoffs for r, _ in judged.values())


def test_separate_channel_fix_fixes_with_nothing_lost(candidate: Any) -> None:
    """Stale frames diverted to ``client.stale_messages`` reach the consumer: delivered, not lost."""
    judged = candidate("separate_channel")
    assert changes(judged) == {"notify-only": ("fixed", "fixes", []), "wake-parent": ("fixed", "fixes", [])}
    assert all(r.tradeoffs == [] and "asides" not in r.evidence for r, _ in judged.values())
    assert all(r.coverage.startswith("not reproduced in ") for r, _ in judged.values())


def test_fix_awaiting_a_reaction_that_never_comes_regresses_as_a_hang(candidate: Any) -> None:
    judged = candidate("await_reaction")
    assert changes(judged) == {"wake-parent": ("fixed", "fixes", []), "notify-only": ("hang", "regresses", ["hang"])}
    notify, change = judged["notify-only"]
    assert change["new"] == ["hang"] and notify.evidence["hung_turn"] == 0


def test_epoch_fix_narrows_and_shows_what_it_drops(candidate: Any) -> None:
    """Diverting frames read before the latest prompt to an internal list fixes the seed's flow
    (gone from it: narrows), but drops them (no channel reaches the consumer), and a completion
    read after the next prompt still leaks into it: each model keeps every kind."""
    judged = candidate("turn_epoch")
    assert changes(judged) == {"notify-only": ("reproduced", "narrows", NOTIFY_ONLY),
                               "wake-parent": ("reproduced", "narrows", WAKE_PARENT)}
    notify, change = judged["notify-only"]
    assert (change["gone"], change["new"]) == ([], [])
    assert ltn.SEED_FLOW in change["gone_in_patterns"]["stale:task_notification"]
    assert notify.tradeoffs == ["lost:subagent", "lost:task_lifecycle", "lost:task_notification"]
    assert notify.evidence["patterns"][ltn.SEED_FLOW]["safe"]
    seed_lost = notify.evidence["asides"][ltn.SEED_FLOW]["lost"]
    assert seed_lost[0].split(" [")[0] == "system/task_notification t0"
    assert verdict.describe_change({**change, "tradeoffs": notify.tradeoffs}).endswith("; drops " + ", ".join(notify.tradeoffs))


def test_epoch_and_origin_fix_narrows_wake_parent(candidate: Any) -> None:
    """Not stopping at an injected turn's result: no call ends on the CLI's reaction any more."""
    judged = candidate("turn_epoch_origin")
    _, change = judged["wake-parent"]
    assert change["change"] == "narrows" and "misattributed" in change["gone"] and change["new"] == []
    assert changes(judged)["notify-only"] == ("reproduced", "narrows", NOTIFY_ONLY)  # the seed's flow is fixed


def test_hiding_notifications_drops_the_turns_own_and_leaks_every_other_kind(candidate: Any) -> None:
    """Silencing the seed's symptom drops the stale notification (a trade-off: ``lost``) and leaves
    the task's other frames, its subagent and the CLI's own turn in the next call; it also drops
    the notifications a turn's own response read past (a foreground agent's, a task ending before
    its turn's result): the consumer never learns its own agent finished, so it regresses. Under
    wake-parent, a call that ends on the CLI's reaction turn leaves a foreground agent's
    notification (one of its own turn's frames) to the next call, which hides it: ``lost:turn``."""
    judged = candidate("hide_notifications")
    for model, expected, lost in (("notify-only", NOTIFY_ONLY, []), ("wake-parent", WAKE_PARENT, ["lost:turn"])):
        result, change = judged[model]
        assert (result.verdict, change["change"], change["gone"]) == ("reproduced", "regresses", ["stale:task_notification"])
        assert change["new"] == ["dropped:task_notification", "dropped:turn"]
        assert result.manifestations == sorted(change["new"] + [name for name in expected if name != "stale:task_notification"])
        assert result.tradeoffs == ["lost:task_notification", *lost]


def test_draining_the_buffer_at_query_is_found_racy(candidate: Any) -> None:
    """Discarding what is buffered when the next prompt is sent passes the seed's flow, but a frame
    the SDK's reader holds, not yet queued, when the prompt goes out still leaks."""
    ((result, change),) = candidate("drain_buffer_at_query", "--model", "notify-only").values()
    assert (result.verdict, change["change"], change["gone"], change["new"]) == ("reproduced", "narrows", [], [])
    assert result.evidence["patterns"][ltn.SEED_FLOW]["safe"], "the seed's own flow is fixed"
    assert ltn.SEED_FLOW in change["gone_in_patterns"]["stale:task_notification"]
    assert result.counterexample["pace"][-1] == 0


def test_a_candidate_s_manifestations_do_not_move_with_the_budget(candidate_env: Any) -> None:
    """drain_until_settled leaks a subagent's frames only when a second agent finishes within the
    next turn: the sweep runs that class, so a small and a large budget find the same set."""
    env = candidate_env("drain_until_settled")
    args = ["--bug", "late_task_notification", "--model", "wake-parent", "--backend", "asyncio", "--seed", "0", "--quiet"]
    small, large = ([verdict.Result(**r) for r in env.run_check([*args, "--examples", n], timeout=600)["results"]] for n in ("5", "100"))
    assert "stale:subagent" in small[0].manifestations
    assert small[0].manifestations == large[0].manifestations
    assert "stale:subagent" in small[0].evidence["patterns"]["several tasks"]["swept_manifestations"]



def test_a_pattern_s_status_does_not_move_with_the_budget(candidate_env: Any) -> None:
    """consume_through leaks a notification in "several tasks" only when the first agent's
    completion came as task_updated and notification both: the sweep runs the first agent at every
    report, so the smallest budget finds that flow unsafe (it read "safe" at 5 examples, "unsafe" at 100)."""
    env = candidate_env("consume_through")
    args = ["--bug", "late_task_notification", "--model", "notify-only", "--backend", "asyncio", "--seed", "0", "--quiet", "--examples", "5"]
    (result,) = env.run_check(args, timeout=600)["results"]
    several = result["evidence"]["patterns"]["several tasks"]
    assert (several["status"], several["swept_manifestations"]) == ("unsafe", ["stale:task_notification"])


def test_reading_on_for_tasks_in_flight_regresses_under_a_cli_that_reacts(candidate: Any) -> None:
    """Under wake-parent, reading on past the result takes the CLI's reaction turn into flows that
    were free of it: the call ends on that turn's result, not its own."""
    ((result, change),) = candidate("drain_until_settled", "--model", "wake-parent").values()
    assert change["change"] == "regresses"
    assert change["new_in_patterns"] == {"misattributed": ["completes mid next turn"], "stale:cli_turn": ["completes mid next turn"],
                                         "stale:turn": ["completes after the next turn"]}


def test_reading_on_while_the_reader_tracks_tasks_races_the_reader(candidate: Any) -> None:
    """Reading on past the result while ``Query._inflight_tasks`` is not empty: the reader runs
    ahead of the consumer and may have settled the task before the call sees its result, so the
    seed's own flow still leaks; the subagent's frames, which come first, no longer do."""
    judged = candidate("drain_until_settled", "--model", "notify-only")
    ((result, change),) = judged.values()
    assert (result.verdict, change["change"], change["gone"]) == ("reproduced", "narrows", ["stale:subagent"])
    assert ltn.flow(result.counterexample) == ltn.SEED_FLOW
