"""Bug 3, premature completion: the oracle and guard (typed messages and raw CLI frames), the
scripted subagent transcripts on the installed SDK, and the verdicts across releases."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from copy import deepcopy
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from pytest_agentsdk import assert_truthful_completions, find_untruthful_completions
from pytest_agentsdk.bugs import premature_completion as pc
from pytest_agentsdk.compat import sdk_info
from pytest_agentsdk.script import ScriptError

ROOT = Path(__file__).resolve().parent.parent
TRACES = json.loads((Path(__file__).parent / "data" / "real_cli_subagent_traces.json").read_text())["traces"]
BACKENDS = ["asyncio", "trio"]
#: Releases before 0.1.51 have no AssistantMessage.stop_reason: an agent cut off mid-text looks finished.
SEES_STOP_REASON = sdk_info().has("assistant_stop_reason")


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Each backend the installed release can run under (0.1.51 to 0.1.66 cannot run under trio)."""
    if reason := sdk_info().backend_unsupported(request.param):
        pytest.skip(f"claude-agent-sdk {sdk_info().version}: {reason}")
    return str(request.param)


def expected_lies(example: dict[str, Any]) -> set[str]:
    """The spec, written from the example alone: which reports are untruthful completions."""
    lies = set()
    for i, agent in enumerate(example["agents"]):
        result_seen = agent["result"] and (agent["via"] != "updated" or not agent["background"])
        dead = agent["end"] == "unanswered_tool_use" or (agent["end"] in ("after_tool_result", "text_cut") and not result_seen)
        if agent["report"] == "completed" and dead:
            lies.add(pc.agent_ids(i)[0])
    return lies


def one_agent(**overrides: Any) -> dict[str, Any]:
    example = pc.lie_example("unanswered_tool_use")
    example["agents"][0].update(overrides)
    return example


# ---------------------------------------------------------------- the oracle on real CLI frames
@pytest.mark.parametrize("name", sorted(TRACES))
def test_real_cli_traces_are_truthful(name: str) -> None:
    """Clean runs (background, foreground, a report from a stop_reason-null stream) and failed
    reports of dead agents, as CLI 2.1.330 wrote them: nothing is flagged."""
    frames = TRACES[name]
    assert any(pc.transcript(frames).agents.values()), "the trace holds subagent frames"
    assert find_untruthful_completions(frames) == []


def test_real_cli_trace_turned_into_the_lie_is_flagged() -> None:
    """b_query_bg with the agent's last tool result and report cut, and the notification stripped
    of its report, is the seed's story in real frames: flagged, naming the pending Bash call."""
    frames = deepcopy(TRACES["b_query_bg"])
    report = next(f for f in frames if f.get("subtype") == "task_notification" and f.get("summary_is_report"))
    task_id = report["task_id"]
    frames = [f for f in frames if not (f.get("agent_id") == task_id and f["type"] == "user")]
    frames = [f for f in frames if not (f.get("agent_id") == task_id and "SUBAGENT_FINAL_REPORT" in json.dumps(f))]
    report = next(f for f in frames if f.get("subtype") == "task_notification" and f.get("task_id") == task_id)
    report.pop("summary_is_report")
    report["summary"] = 'Agent "background worker" completed'
    (found,) = find_untruthful_completions(frames)
    assert found.task_id == task_id
    assert "Bash(" in found.reason and "unanswered" in found.reason
    assert found.reported_by == ("task_updated", "task_notification")
    assert "stop_reason: None" in found.last_frames[-1]


# ---------------------------------------------------------------- the guard on typed messages (installed SDK)
@pytest.mark.parametrize("end", ["unanswered_tool_use", "after_tool_result", "text_cut"])
def test_guard_flags_each_shape_of_the_lie(end: str) -> None:
    session = pc.run_session(pc.lie_example(end))
    if end == "text_cut" and not SEES_STOP_REASON:
        assert find_untruthful_completions(session.received) == [], "without stop_reason a cut text looks finished"
        return
    (found,) = find_untruthful_completions(session.received)
    assert found.task_id == "a000" and found.reported_by == ("task_notification",)
    with pytest.raises(AssertionError, match="task a000: reported completed"):
        assert_truthful_completions(session.received)


@pytest.mark.parametrize("end", ["unanswered_tool_use", "after_tool_result", "text_cut"])
@pytest.mark.parametrize("report", ["failed", "stopped"])
def test_truthful_failure_of_a_dead_agent_is_not_flagged(end: str, report: str) -> None:
    example = one_agent(end=end, report=report, via="both")
    session = pc.run_session(example)
    assert_truthful_completions(session.received)
    assert pc.audit(session.emitted).untruthful == []
    assert not pc.SCENARIO.run_example(example, "asyncio", None).failed


@pytest.mark.parametrize("background", [True, False])
@pytest.mark.parametrize("result", [True, False])
def test_clean_completion_is_not_flagged(background: bool, result: bool) -> None:
    session = pc.run_session(one_agent(end="end_turn", background=background, result=result, tools=2))
    assert find_untruthful_completions(session.received) == []


def test_a_report_rescues_a_cut_text_but_not_a_pending_tool_call() -> None:
    """A result stands in for the stop_reason (stream-json frames never carry one), never for a
    tool call left unanswered."""
    assert find_untruthful_completions(pc.run_session(one_agent(end="text_cut", result=True)).received) == []
    assert len(find_untruthful_completions(pc.run_session(one_agent(end="unanswered_tool_use", result=True)).received)) == 1


@settings(max_examples=25, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(example=pc.examples())
def test_guard_on_received_matches_oracle_on_emitted_and_the_spec(backend: str, example: dict[str, Any]) -> None:
    """Several agents, foreground and background, both drivers: the guard over what the consumer
    received, the oracle over what the CLI emitted, and the spec agree (the guard may see less
    only where the release hides stop_reason)."""
    session = pc.run_session(example, backend)
    on_frames = {f.task_id for f in pc.audit(session.emitted).untruthful}
    assert on_frames == expected_lies(example)
    guarded = {f.task_id for f in find_untruthful_completions(session.received)}
    if SEES_STOP_REASON:
        assert guarded == on_frames
    else:
        assert guarded <= on_frames


@pytest.mark.parametrize(
    ("example", "field"),
    [
        ([], "example:"),
        ({"driver": "cli", "agents": [{}]}, "example.driver"),
        ({"driver": "query", "agents": []}, "example.agents"),
        ({"driver": "query", "agents": [{**pc.lie_example("text_cut")["agents"][0], "report": "done"}]}, "example.agents[0].report"),
        ({"driver": "query", "gap": -1, "agents": [{}]}, "example.gap"),
    ],
)
def test_bad_example_names_the_field(example: Any, field: str) -> None:
    with pytest.raises(ScriptError, match=re.escape(field)):
        pc.validate_example(example)


def test_example_json_round_trips_to_the_same_script() -> None:
    example = pc.seed_example()
    again = json.loads(json.dumps(example))
    assert pc.build_script(again).to_json() == pc.build_script(example).to_json()


# ---------------------------------------------------------------- the scenario on the installed SDK
def test_check_reproduces_on_installed_release_with_evidence(backend: str) -> None:
    result = pc.SCENARIO.judge(sdk_info(), backend, None, seed=3, max_examples=10)
    if not sdk_info().has("typed_task_messages"):
        assert result.verdict == "not_applicable" and "TaskNotificationMessage" in (result.reason or "")
        return
    assert result.verdict == "reproduced"
    assert result.manifestations == ["untruthful_completed_passed_through"]
    (task,) = result.evidence["tasks"]
    assert task["consumer_told"] == ["completed"] and task["guard_flags_it"]
    assert task["why_false"] and task["last_frames"]
    assert "passed the claim through untouched" in result.evidence["semantics"]
    assert result.evidence["detectable_by_consumer"] is sdk_info().has("assistant_stop_reason")


def test_same_seed_same_verdict_and_counterexample() -> None:
    first = pc.SCENARIO.judge(sdk_info(), "asyncio", None, seed=11, max_examples=10)
    second = pc.SCENARIO.judge(sdk_info(), "asyncio", None, seed=11, max_examples=10)
    assert (first.verdict, first.counterexample, first.evidence) == (second.verdict, second.counterexample, second.evidence)


def test_repro_exits_1_and_prints_both_notifications() -> None:
    proc = subprocess.run([sys.executable, str(ROOT / "repros" / "subagent_stop_reason_none.py")], capture_output=True, text=True, timeout=60)
    if not sdk_info().has("typed_task_messages"):
        assert proc.returncode == 2 and "not applicable" in proc.stderr  # cannot judge: not "absent"
        return
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout.count("<status>completed</status>") == 2
    assert proc.stdout.count("<result>") == 1
    assert "REPRODUCED" in proc.stdout


# ---------------------------------------------------------------- across releases
CHECK_ARGS = ["--bug", "premature_completion", "--backend", "asyncio", "--seed", "5", "--examples", "10", "--quiet"]


@pytest.fixture(scope="module")
def verdict_on(sdk_release: Any) -> Any:
    cache: dict[str, dict[str, Any]] = {}

    def get(spec: str) -> dict[str, Any]:
        if spec not in cache:
            (cache[spec],) = sdk_release(spec).run_check(CHECK_ARGS, timeout=300)["results"]
        return cache[spec]

    return get


@pytest.mark.parametrize("spec", ["0.1.48", "0.1.50", "0.1.51", "latest"])
def test_lie_passes_through_as_completed(verdict_on: Any, spec: str) -> None:
    result = verdict_on(spec)
    assert result["verdict"] == "reproduced"
    (task,) = result["evidence"]["tasks"]
    assert task["consumer_told"] == ["completed"]
    assert task["guard_flags_it"], "a pending tool call is visible on every release with typed task messages"


@pytest.mark.parametrize(("spec", "detectable"), [("0.1.48", False), ("0.1.50", False), ("0.1.51", True), ("latest", True)])
def test_detectability_flips_with_assistant_stop_reason(verdict_on: Any, spec: str, detectable: bool) -> None:
    evidence = verdict_on(spec)["evidence"]
    assert evidence["detectable_by_consumer"] is detectable
    assert evidence["detectable_by_shape"]["text_cut"] is detectable
    assert evidence["detectable_by_shape"]["unanswered_tool_use"] is True
    if not detectable:
        assert "no stop_reason" in evidence["detectability_reason"]


def test_not_applicable_without_typed_task_messages(verdict_on: Any) -> None:
    result = verdict_on("0.1.44")
    assert result["verdict"] == "not_applicable"
    assert "TaskNotificationMessage" in result["reason"]


def test_repro_exits_1_on_an_older_release(sdk_release: Any) -> None:
    proc = sdk_release("0.1.51").run([str(ROOT / "repros" / "subagent_stop_reason_none.py")], timeout=120)
    assert proc.returncode == 1, proc.stderr
