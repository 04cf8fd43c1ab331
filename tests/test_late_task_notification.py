"""Bug 2, late task notification: the scripted CLI models against the real CLI's trace, the
provenance oracle and ``assert_turn_isolation``, controls on the installed SDK, and the verdicts
across releases and fix candidates (tests/candidates)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from candidates import BASE_VERSION, build_candidate
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_agentsdk import assert_turn_isolation, wire
from pytest_agentsdk.bugs import late_task_notification as ltn
from pytest_agentsdk.compat import parse_message
from pytest_agentsdk.explore import judge
from pytest_agentsdk.recording import RecordingClient
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
def recorded(model: str, layout: list[tuple[str, int]]) -> TransportLog:
    """A transport log of the seed's script, segments emitted in ``layout`` order, each with the
    number of prompts written by then."""
    script = ltn.build_script(ltn.SEED_EXAMPLE, model)
    log = TransportLog()
    for name, before in layout:
        segment = script.segment(name)
        for i, frame in enumerate(segment.frames):
            stamped = wire.stamp(frame, f"{name}#{i}")
            log.emissions.append(Emission(len(log.emissions) + 1, stamped, name, segment.cause, i, before))
    return log


def received(log: TransportLog, *segments: str) -> list[Any]:
    parse = parse_message()
    return [parse(e.frame) for e in log.emissions if e.segment in segments and not e.frame.get("sdk_host_only")]


def test_stale_notification_is_named_with_its_turn() -> None:
    log = recorded("notify-only", [("turn0", 1), ("task:t0", 1), ("turn1", 2)])
    calls = [received(log, "turn0"), received(log, "task:t0", "turn1")]
    with pytest.raises(AssertionError, match=r"turn 1: 1 stale frame\(s\) emitted before prompt 1 was written: system/task_notification t0"):
        assert_turn_isolation(log, calls)


def test_turn_ending_on_the_clis_own_result_is_misattributed() -> None:
    """The agent ends as prompt 1 arrives and the CLI answers the completion first."""
    log = recorded("wake-parent", [("turn0", 1), ("task:t0", 2), ("cli:t0", 2), ("turn1", 2)])
    calls = [received(log, "turn0"), received(log, "task:t0", "cli:t0")]
    isolation = ltn.judge_session(log, calls)
    assert isolation.manifestations == ["misattributed"], "every frame came after prompt 1: nothing stale"
    assert isolation.turns[1].ended_on == "result of cli:task:t0"
    with pytest.raises(AssertionError, match="turn 1: ended on result of cli:task:t0, not the result answering prompt 1"):
        assert_turn_isolation(log, calls)


def test_notification_consumed_by_its_own_turn_is_isolated() -> None:
    """The seed's first acceptable outcome: turn 1's call reads on past its result."""
    log = recorded("notify-only", [("turn0", 1), ("task:t0", 1), ("turn1", 2)])
    isolation = assert_turn_isolation(log, [received(log, "turn0", "task:t0"), received(log, "turn1")])
    assert isolation.lost == []


def test_dropped_notification_is_isolated_but_reported_lost() -> None:
    """The seed's second acceptable outcome (filtered out): allowed, and visible."""
    log = recorded("notify-only", [("turn0", 1), ("task:t0", 1), ("turn1", 2)])
    isolation = assert_turn_isolation(log, [received(log, "turn0"), received(log, "turn1")])
    assert [lost.split(" [")[0] for lost in isolation.lost] == ["system/task_notification t0"]


def test_a_message_never_emitted_is_a_harness_error() -> None:
    log = recorded("notify-only", [("turn0", 1)])
    alien = parse_message()(wire.stamp(wire.result("from elsewhere"), "x"))
    with pytest.raises(ScriptedCLIError, match="never emitted"):
        ltn.judge_session(log, [received(log, "turn0") + [alien]])


# ---------------------------------------------------------------- the installed SDK
@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


CONTROLS = {
    "foreground agent": with_task(background=False, progress=1),
    "completes before its turn's result": with_task(done="in_turn", report="both", progress=2, gap=1),
    "completes mid next turn": with_task(done="mid_next", report="both", delay=3),
    "completes as the next prompt is written": with_task(done="at_prompt", report="both"),
}


@pytest.mark.parametrize("control", sorted(CONTROLS))
def test_flows_without_a_late_completion_never_manifest(anyio_backend: str, agentsdk_backend: str, control: str) -> None:
    """No release can get these wrong under notify-only: a false positive would be the oracle's."""
    outcome = ltn.SCENARIO.run_example(CONTROLS[control], agentsdk_backend, "notify-only")
    assert (outcome.manifestations, outcome.hang) == ([], None), outcome.evidence


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
    """The Hypothesis search (patterns bypassed) gives the same verdict and minimal example twice."""
    first, second = (judge(ltn.SCENARIO, agentsdk_backend, "notify-only", 11, 15) for _ in range(2))
    assert (first.verdict, first.counterexample, first.manifestations) == (second.verdict, second.counterexample, second.manifestations)


# ---------------------------------------------------------------- across releases
CHECK_ARGS = ["--bug", "late_task_notification", "--backend", "asyncio", "--seed", "3", "--examples", "12", "--quiet"]


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
    assert (notify["verdict"], notify["manifestations"]) == ("reproduced", ["stale"])
    assert "system/task_notification" in stale_kinds(notify)
    assert (wake["verdict"], wake["manifestations"]) == ("reproduced", ["misattributed", "stale"])
    (turn,) = wake["evidence"]["turns"]
    assert (turn["turn"], turn["ended_on"]) == (1, "result of cli:task:t0")
    assert "typed TaskNotificationMessage" in notify["evidence"]["task_frames"]


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
    assert "msg#1 TaskNotificationMessage" in proc.stdout and "STALE" in proc.stdout
    assert "not the answer to prompt 2" in proc.stdout


def test_repro_exits_1_on_the_oldest_release(sdk_release: Any) -> None:
    proc = sdk_release("0.1.44").run([str(ROOT / "repros" / "late_task_notification.py"), "--model", "notify-only"], timeout=120)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "msg#1 SystemMessage subtype=task_notification task_id=t0" in proc.stdout


# ---------------------------------------------------------------- fix candidates
@pytest.fixture(scope="module")
def candidate(sdk_release: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """``candidate(name)`` -> the env of the latest release patched as tests/candidates' ``name``."""
    base = sdk_release(BASE_VERSION).run(["-c", "import claude_agent_sdk, os; print(os.path.dirname(claude_agent_sdk.__file__))"])
    package = Path(base.stdout.strip())

    def get(name: str) -> Any:
        return sdk_release(str(build_candidate(name, package, tmp_path_factory.mktemp(name))))

    return get


def test_epoch_fix_flips_notify_only_but_not_wake_parent(candidate: Any, verdicts: Any) -> None:
    """Diverting frames read before the latest prompt fixes notify-only (what it silences shows as
    lost); the CLI's own turn still ends the next call under wake-parent."""
    baseline = verdicts(BASE_VERSION)
    report = candidate("turn_epoch").run_check(CHECK_ARGS, timeout=600)
    results = {r["model"]: r for r in report["results"]}
    assert baseline["notify-only"]["verdict"] == "reproduced"
    assert results["notify-only"]["verdict"] == "fixed"
    assert results["notify-only"]["examples"] > len(ltn.PATTERNS), "the Hypothesis search ran too"
    seed_lost = results["notify-only"]["evidence"]["lost_in_patterns"]["seed: completes between turns, next prompt sent late"]
    assert [lost.split(" [")[0] for lost in seed_lost] == ["system/task_notification t0"]
    assert (results["wake-parent"]["verdict"], results["wake-parent"]["manifestations"]) == ("reproduced", ["misattributed"])


def test_epoch_and_origin_fix_flips_both_models(candidate: Any) -> None:
    report = candidate("turn_epoch_origin").run_check(CHECK_ARGS, timeout=600)
    assert {r["model"]: r["verdict"] for r in report["results"]} == {"notify-only": "fixed", "wake-parent": "fixed"}


def test_hiding_notifications_is_not_a_fix(candidate: Any) -> None:
    """Silencing the seed's symptom leaves progress frames and the CLI's own turn in the next call."""
    report = candidate("hide_notifications").run_check(CHECK_ARGS, timeout=600)
    results = {r["model"]: r for r in report["results"]}
    assert {m: r["verdict"] for m, r in results.items()} == {"notify-only": "reproduced", "wake-parent": "reproduced"}
    assert "system/task_notification" not in stale_kinds(results["notify-only"])


def test_draining_the_buffer_at_query_is_found_racy(candidate: Any) -> None:
    """Discarding what is buffered when the next prompt is sent passes the seed's flow, but a frame
    the SDK's reader holds, not yet queued, when the prompt goes out still leaks."""
    report = candidate("drain_buffer_at_query").run_check([*CHECK_ARGS, "--model", "notify-only"], timeout=600)
    (result,) = report["results"]
    assert (result["verdict"], result["manifestations"]) == ("reproduced", ["stale"])
    assert result["evidence"]["pattern"] != next(iter(ltn.PATTERNS)), "the seed's own flow is fixed"
    assert result["counterexample"]["pace"] == [0]


def test_candidate_blocking_in_receive_response_is_a_hang(candidate: Any) -> None:
    """Reading on past the result until agents settle blocks forever when an agent outlives the
    next turn: the stall is diagnosed and reported as a hang, the run does not hang."""
    example = with_task(done="later")
    replay = ["-m", "pytest_agentsdk", "replay", "--bug", "late_task_notification", "--model", "notify-only", "--example", json.dumps(example)]
    proc = candidate("drain_until_settled").run(replay, timeout=120)
    assert proc.returncode == 1, proc.stderr
    outcome = json.loads(proc.stdout)
    assert outcome["hang"].startswith("scripted CLI stalled")
    assert outcome["evidence"]["hung_turn"] == 0
