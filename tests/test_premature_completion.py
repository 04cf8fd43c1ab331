"""Bug 3, premature completion: the oracle and guard (typed messages and raw CLI frames), the
oracle reading the typed fields a consumer reads, the sweep and the scripted subagent transcripts
on the installed SDK, and the verdicts across releases and fix candidates (tests/candidates)."""

from __future__ import annotations

import dataclasses
import itertools
import json
import re
import subprocess
import sys
from copy import deepcopy
from pathlib import Path
from typing import Any

import pytest
from candidates import BASE_VERSION
from hypothesis import HealthCheck, given, settings

from pytest_agentsdk import assert_truthful_completions, find_untruthful_completions, verdict
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
    """The spec, written from the example alone: every completion of an agent that did not end its turn."""
    return {pc.agent_ids(i)[0] for i, agent in enumerate(example["agents"]) if agent["report"] == "completed" and agent["end"] != "end_turn"}


def visible_lies(example: dict[str, Any]) -> set[str]:
    """The lies a guard on the frames can see: all but those a result the CLI sent hides (a cut
    text; a foreground agent's tool result left unanswered: a success's frames, over the real CLI
    as here)."""
    def sent_as_result(agent: dict[str, Any]) -> bool:
        hidden = agent["end"] == "text_cut" or (agent["end"] == "after_tool_result" and not agent["background"])
        return hidden and agent["result"] and (agent["via"] != "updated" or not agent["background"])

    return expected_lies(example) - {pc.agent_ids(i)[0] for i, agent in enumerate(example["agents"]) if sent_as_result(agent)}


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
    example = pc.agent_example(end=end, report=report, via="both")
    session = pc.run_session(example)
    assert_truthful_completions(session.received)
    assert pc.audit(session.emitted).untruthful == []
    assert not pc.SCENARIO.run_example(example, "asyncio", None).failed


@pytest.mark.parametrize("background", [True, False])
@pytest.mark.parametrize("result", [True, False])
def test_clean_completion_is_not_flagged(background: bool, result: bool) -> None:
    session = pc.run_session(pc.agent_example(end="end_turn", background=background, result=result, tools=2))
    assert find_untruthful_completions(session.received) == []


def test_a_result_hides_a_cut_text_but_not_a_pending_tool_call() -> None:
    """A cut text the CLI sent as the result looks like a clean finish (the real CLI's frames carry
    stop_reason null on both), so the guard misses it while the scenario still calls it the lie it
    is; a result never hides a tool call left unanswered."""
    cut = pc.run_session(pc.agent_example(end="text_cut", result=True))
    assert find_untruthful_completions(cut.received) == []
    assert pc.judge_session(cut).names == [pc.PASSED_THROUGH]
    (found,) = find_untruthful_completions(pc.run_session(pc.agent_example(end="unanswered_tool_use", result=True)).received)
    assert "unanswered" in found.reason


@pytest.mark.parametrize("background", [True, False])
def test_a_result_hides_a_tool_result_left_unanswered_in_the_foreground_only(background: bool) -> None:
    """The CLI streams a background agent's last message (b_query_bg): ending on a tool result, it
    never answered it, whatever its report says. A foreground agent's last message never streams
    (b_query_fg): a clean finish ends on a tool result too, and a result rescues it."""
    stopped = find_untruthful_completions(pc.run_session(pc.agent_example(end="after_tool_result", result=True, background=background)).received)
    assert len(stopped) == background
    clean = pc.run_session(pc.agent_example(end="end_turn", result=True, background=background, tools=2))
    assert find_untruthful_completions(clean.received) == []
    last = [f for f in clean.emitted if f.get("parent_tool_use_id") and f["type"] in ("assistant", "user")][-1]
    assert last["type"] == ("assistant" if background else "user")


def test_a_clean_finish_with_its_text_as_result_streams_what_a_cut_text_does() -> None:
    """Where the CLI sends the agent's text as the result, the scripted CLI streams stop_reason null
    on the clean finish, as the real CLI does (trace b_query_bg), so no fix can tell the two apart
    in scripted mode that could not over the real CLI."""
    def last_stop(example: dict[str, Any]) -> Any:
        frames = [f for f in pc.run_session(example).emitted if f["type"] == "assistant" and f.get("parent_tool_use_id")]
        return frames[-1]["message"]["stop_reason"]

    assert last_stop(pc.agent_example(end="end_turn", result=True)) is None
    assert last_stop(pc.agent_example(end="text_cut", result=True)) is None
    assert last_stop(pc.agent_example(end="end_turn", result=False, background=False)) == "end_turn"
    assert last_stop(pc.agent_example(end="end_turn", result=False)) == "end_turn"
    assert last_stop(pc.agent_example(end="end_turn", result=True, via="updated")) == "end_turn", "no result reaches the parent"


@settings(max_examples=25, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(example=pc.examples())
def test_guard_on_received_matches_oracle_on_emitted_and_the_spec(backend: str, example: dict[str, Any]) -> None:
    """Several agents, foreground and background, both drivers: the guard over what the consumer
    received, the oracle over what the CLI emitted, and the spec agree on every lie the frames
    show (the guard may see less only where the release hides stop_reason), and the scenario
    judges every lie of the spec."""
    session = pc.run_session(example, backend)
    on_frames = {f.task_id for f in pc.audit(session.emitted).untruthful}
    assert on_frames == visible_lies(example)
    assert pc.judge_session(session).names == ([pc.PASSED_THROUGH] if expected_lies(example) else [])
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


# ---------------------------------------------------------------- the oracle reads the typed fields
def as_parsed(example: dict[str, Any], status: str | None) -> pc.Session:
    """The session with every typed task report saying ``status`` (None: dropped) while its
    ``data`` keeps what the CLI said: a parser change, as the consumer sees it."""
    import claude_agent_sdk as sdk

    session = pc.run_session(example)
    reports = tuple(getattr(sdk, name) for name in ("TaskNotificationMessage", "TaskUpdatedMessage") if hasattr(sdk, name))
    received = [dataclasses.replace(m, status=status) if isinstance(m, reports) else m
                for m in session.received if status is not None or not isinstance(m, reports)]
    return dataclasses.replace(session, received=received)


needs_typed_reports = pytest.mark.skipif(not sdk_info().has("typed_task_messages"), reason="release has no typed task messages")


@needs_typed_reports
@pytest.mark.parametrize("via", pc.VIAS)
@pytest.mark.parametrize(("background", "result"), [(True, True), (True, False), (False, True), (False, False)])
def test_a_clean_finish_reported_failed_is_a_false_alarm(via: str, background: bool, result: bool) -> None:
    if via != "notification" and not sdk_info().has("typed_task_updated"):
        pytest.skip("task_updated has no typed message on this release: its status is the CLI's")
    session = as_parsed(pc.agent_example(end="end_turn", via=via, background=background, result=result), "failed")
    outcome = pc.judge_session(session)
    assert outcome.names == [pc.FALSE_ALARM]
    (task,) = outcome.evidence["tasks"]
    assert set(task["cli_reported"]) == {"completed"} and set(task["consumer_told"]) == {"failed"}
    assert find_untruthful_completions(session.received) == []


@needs_typed_reports
@pytest.mark.parametrize("status", ["failed", "stopped"])
def test_the_lie_reported_failed_is_what_a_fix_gives(status: str) -> None:
    session = as_parsed(pc.lie_example("unanswered_tool_use"), status)
    notification = next(m for m in session.received if type(m).__name__ == "TaskNotificationMessage")
    assert notification.data["status"] == "completed", "the raw data still says completed: only the typed field changed"
    assert not pc.judge_session(session).failed
    assert find_untruthful_completions(session.received) == []


@needs_typed_reports
def test_a_failure_reported_completed_is_its_own_manifestation() -> None:
    outcome = pc.judge_session(as_parsed(pc.agent_example(report="failed"), "completed"))
    assert outcome.names == [pc.FAILURE_HIDDEN]


@pytest.mark.skipif(not sdk_info().has("assistant_stop_reason"), reason="release has no typed stop_reason")
def test_a_clean_finish_whose_typed_stop_reason_is_lost_looks_untruthful() -> None:
    """Reported completed, and truly so, but the typed messages say the agent's text was cut off
    (stop_reason None): the consumer's guard flags a true completion."""
    session = pc.run_session(pc.agent_example(end="end_turn", report="completed"))
    received = [dataclasses.replace(m, stop_reason=None) if type(m).__name__ == "AssistantMessage" else m for m in session.received]
    outcome = pc.judge_session(dataclasses.replace(session, received=received))
    assert outcome.names == [pc.LOOKS_UNTRUTHFUL]
    assert not pc.judge_session(session).names


@needs_typed_reports
def test_a_report_that_never_reaches_the_consumer_is_a_tradeoff() -> None:
    """Dropping the lie hides it, and the news with it: a trade-off beside the verdict."""
    outcome = pc.judge_session(as_parsed(pc.lie_example("unanswered_tool_use"), None))
    assert (outcome.names, outcome.tradeoffs) == ([], ["task_report"])


@needs_typed_reports
def test_fields_without_a_typed_home_are_named() -> None:
    """The report's result and the spawn's background flag have no typed field on any release:
    read from ``data``, and said so; raw frames need no fallback."""
    session = pc.run_session(pc.agent_example(via="both"))
    from_raw = pc.transcript(session.received).from_raw
    assert {"TaskNotificationMessage.result", "TaskNotificationMessage.summary_is_report", "TaskStartedMessage.is_backgrounded"} <= from_raw
    assert "TaskNotificationMessage.status" not in from_raw
    assert ("SystemMessage[task_updated].status" in from_raw) is not sdk_info().has("typed_task_updated")
    assert pc.transcript(session.emitted).from_raw == set()
    assert pc.judge_session(session).evidence["read_from_raw_data"] == sorted(from_raw)


# ---------------------------------------------------------------- the sweep
def test_sweep_spans_every_ending_via_driver_side_and_result() -> None:
    swept = pc.sweep_examples()
    assert swept[0] == pc.seed_example()
    shapes = {(a["end"], a["report"], a["via"], ex["driver"], a["background"], a["result"]) for ex in swept[1:] for a in ex["agents"]}
    assert len(shapes) == len(swept) - 1, "no example swept twice"
    for end, via, driver, background, result in itertools.product(pc.ENDS, pc.VIAS, pc.DRIVERS, (True, False), (True, False)):
        assert (end, "completed", via, driver, background, result) in shapes
    assert {s[1] for s in shapes} == set(pc.STATUSES)
    assert pc.SWEEP_AXES.startswith("the seed's flow + 4 endings x 3 vias x 2 drivers")


def test_sweep_mixes_lies_and_truthful_completions_and_the_oracle_agrees_with_the_spec() -> None:
    """On every swept example the oracle on what the CLI emitted sees every lie the frames show;
    the installed release passes every lie through and flags nothing else."""
    lies = truthful = 0
    for example in pc.sweep_examples():
        expected = expected_lies(example)
        completed = {pc.agent_ids(i)[0] for i, a in enumerate(example["agents"]) if a["report"] == "completed"}
        lies, truthful = lies + len(expected), truthful + len(completed - expected)
        session = pc.run_session(example)
        assert {f.task_id for f in pc.audit(session.emitted).untruthful} == visible_lies(example), example
        assert pc.judge_session(session).names == ([pc.PASSED_THROUGH] if expected else []), example
    assert lies > 20 and truthful > 20


# ---------------------------------------------------------------- the scenario on the installed SDK
def test_check_reproduces_on_installed_release_with_evidence(backend: str) -> None:
    result = pc.SCENARIO.judge(sdk_info(), backend, None, seed=3, max_examples=10)
    if not sdk_info().has("typed_task_messages"):
        assert result.verdict == "not_applicable" and "TaskNotificationMessage" in (result.reason or "")
        return
    assert result.verdict == "reproduced"
    assert result.manifestations == [pc.PASSED_THROUGH]
    assert result.counterexample == pc.seed_example(), "the seed's flow, swept first"
    assert pc.SWEEP_AXES in (result.coverage or "") and result.examples > len(pc.sweep_examples())
    (task,) = result.evidence["tasks"]  # the seed's lie; its finished sibling shows nothing
    assert task["task_id"] == "a000" and task["consumer_told"] == ["completed"] and task["guard_flags_it"]
    assert task["why_false"] and task["last_frames"]
    assert "passed the claim through untouched" in result.evidence["semantics"]
    assert result.evidence["detectable_by_consumer"] is False, "a cut text sent as the result is a success's frames"
    assert result.evidence["detectable_by_shape"]["text_cut"] is sdk_info().has("assistant_stop_reason")
    assert any("TaskNotificationMessage.result" in note for note in result.notes), "the raw-data fallback is said"


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
    """A cut text without a result shows once AssistantMessage has stop_reason; one the CLI sent as
    the result shows on no release."""
    result = verdict_on(spec)
    evidence = result["evidence"]
    assert evidence["detectable_by_shape"]["text_cut"] is detectable
    assert evidence["detectable_by_shape"]["unanswered_tool_use"] is True
    assert evidence["detectable_by_shape"]["after_tool_result_with_a_result"] is True, "a background agent's last message streams"
    hidden = ("text_cut_sent_as_result", "foreground_after_tool_result_with_a_result")
    assert [evidence["detectable_by_shape"][shape] for shape in hidden] == [False, False]
    assert evidence["detectable_by_consumer"] is False
    assert "only the CLI can tell" in evidence["detectability_reason"]
    assert ("no stop_reason" in evidence["detectability_reason"]) is not detectable
    assert any(note.startswith("detectable by the consumer through the typed API: partly") for note in result["notes"])


@pytest.mark.parametrize(("spec", "typed_updated"), [("0.1.48", False), ("latest", True)])
def test_raw_data_fallbacks_are_named_per_release(verdict_on: Any, spec: str, typed_updated: bool) -> None:
    """What the guard read from ``message.data`` for want of a typed field, in the evidence and a note."""
    result = verdict_on(spec)
    from_raw = result["evidence"]["read_from_raw_data"]
    assert "TaskNotificationMessage.result" in from_raw and "TaskNotificationMessage.status" not in from_raw
    assert ("SystemMessage[task_updated].status" in from_raw) is not typed_updated
    assert any(note.startswith("read from raw message.data") for note in result["notes"])


def test_not_applicable_without_typed_task_messages(verdict_on: Any) -> None:
    result = verdict_on("0.1.44")
    assert result["verdict"] == "not_applicable"
    assert "TaskNotificationMessage" in result["reason"]


def test_repro_exits_1_on_an_older_release(sdk_release: Any) -> None:
    proc = sdk_release("0.1.51").run([str(ROOT / "repros" / "subagent_stop_reason_none.py")], timeout=120)
    assert proc.returncode == 1, proc.stderr


# ---------------------------------------------------------------- fix candidates (tests/candidates/premature_completion.py)
def judged_against_base(verdict_on: Any, env: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The candidate's verdict and its change from the base release's."""
    (result,) = env.run_check(CHECK_ARGS, timeout=300)["results"]
    return result, verdict.classify_change(verdict.Result(**verdict_on(BASE_VERSION)), verdict.Result(**result))


def replayed(env: Any, example: dict[str, Any]) -> list[str]:
    proc = env.run(["-m", "pytest_agentsdk", "replay", "--bug", "premature_completion", "--example", json.dumps(example)], timeout=120)
    return list(json.loads(proc.stdout)["manifestations"])


def test_parser_reporting_every_notification_failed_regresses(verdict_on: Any, candidate_env: Any) -> None:
    """A false alarm on every clean finish is a new manifestation; the lie is gone from the
    notification but still reaches the consumer through TaskUpdatedMessage."""
    env = candidate_env("all_failed")
    result, change = judged_against_base(verdict_on, env)
    assert verdict_on(BASE_VERSION)["manifestations"] == [pc.PASSED_THROUGH]
    assert (result["verdict"], result["manifestations"]) == ("reproduced", [pc.FALSE_ALARM, pc.PASSED_THROUGH])
    assert (change["change"], change["new"], change["gone"]) == ("regresses", [pc.FALSE_ALARM], [])
    (task,) = result["evidence"]["tasks"]  # the seed's flow: its finished agent is told failed
    assert (task["task_id"], task["cli_reported"], task["consumer_told"]) == ("a001", ["completed"], ["failed"])
    assert replayed(env, pc.lie_example("unanswered_tool_use")) == []
    assert replayed(env, pc.agent_example(via="both")) == [pc.PASSED_THROUGH]


def test_failing_completions_without_a_result_regresses(verdict_on: Any, candidate_env: Any) -> None:
    """``completed`` without a result -> ``failed`` catches the seed's lie, but flags a clean
    end_turn whose report carries no result, misses a pending tool call whose report carries one,
    and cannot see the task_updated that announces the same completion."""
    env = candidate_env("flag_unfinished")
    result, change = judged_against_base(verdict_on, env)
    assert (result["verdict"], result["manifestations"]) == ("reproduced", [pc.FALSE_ALARM, pc.PASSED_THROUGH])
    assert (change["change"], change["new"], change["gone"]) == ("regresses", [pc.FALSE_ALARM], [])
    assert replayed(env, pc.lie_example("unanswered_tool_use")) == []
    assert replayed(env, pc.agent_example(end="end_turn")) == [pc.FALSE_ALARM]
    assert replayed(env, pc.agent_example(result=True)) == [pc.PASSED_THROUGH]
    assert replayed(env, pc.agent_example(via="updated")) == [pc.PASSED_THROUGH]


def test_judging_the_agents_transcript_narrows(verdict_on: Any, candidate_env: Any) -> None:
    """Reading a background subagent's own transcript tells every lie the frames show from a clean
    finish, but not those a result hides (a cut text the CLI sent as the result: a success's
    frames), nor a foreground agent's, which it leaves alone: it narrows, pattern by pattern. A
    completion announced by task_updated alone is dropped (its news: a trade-off). The
    task_updated frames it holds back never reach the consumer, which bug 2's oracle counts: a
    verify judging every bug says this fix regresses late_task_notification."""
    env = candidate_env("judge_the_agent")
    result, change = judged_against_base(verdict_on, env)
    assert (result["verdict"], result["manifestations"], change["change"]) == ("reproduced", [pc.PASSED_THROUGH], "narrows")
    gone = change["gone_in_patterns"][pc.PASSED_THROUGH]
    assert {"the seed's flow", "unanswered_tool_use/completed/background", "text_cut/completed/background"} <= set(gone)
    assert not {"text_cut/completed+result/background", "unanswered_tool_use/completed/foreground"} & set(gone)
    assert result["tradeoffs"] == ["task_report"]
    assert replayed(env, pc.lie_example("text_cut")) == []
    assert replayed(env, pc.agent_example(end="text_cut", result=True)) == [pc.PASSED_THROUGH]
    assert replayed(env, pc.agent_example(end="end_turn", via="both", background=False, result=True)) == []
    foreground_agent = {"prompts": 2, "tasks": [{"turn": 0, "background": False, "done": "in_turn", "report": "both", "progress": 1,
                                                 "delay": 0, "gap": 0}], "pace": [0], "checkpoints": {}}
    proc = env.run(["-m", "pytest_agentsdk", "replay", "--bug", "late_task_notification", "--model", "notify-only",
                    "--example", json.dumps(foreground_agent)], timeout=120)
    shown = json.loads(proc.stdout)
    assert shown["manifestations"] == ["dropped:turn"]
    assert [frame.split(" [")[0] for frame in shown["evidence"]["dropped"]] == ["system/task_updated t0"]


def test_what_judging_the_agent_gives_up_on_bug_2_does_not_move_with_the_budget(candidate_env: Any) -> None:
    """The task_updated of a foreground agent belongs to its turn's own frames; with a background
    task still running, judge_the_agent holds it back and it reaches no call (``lost:turn``). The
    sweep runs that class (a foreground agent beside a background one), so the smallest budget
    names it: before, only some seeds' searches did."""
    env = candidate_env("judge_the_agent")
    args = ["--bug", "late_task_notification", "--model", "wake-parent", "--backend", "asyncio", "--seed", "0", "--quiet", "--examples", "5"]
    (result,) = env.run_check(args, timeout=600)["results"]
    assert result["tradeoffs"] == ["lost:task_lifecycle", "lost:turn"]
    assert any(" [prompt:" in frame for frame in result["evidence"]["asides"]["several tasks"]["lost"])


def test_hiding_notifications_makes_a_true_completion_look_untruthful(verdict_on: Any, candidate_env: Any) -> None:
    """late_task_notification's hide_notifications, judged on bug 3: a clean background finish
    whose report it hid has no result, and its last message streams stop_reason null, so the
    consumer's guard flags a true completion."""
    result, change = judged_against_base(verdict_on, candidate_env("hide_notifications"))
    assert (change["change"], change["new"]) == ("regresses", [pc.LOOKS_UNTRUTHFUL])
    assert "end_turn/completed+result/background" in change["new_in_patterns"][pc.LOOKS_UNTRUTHFUL]
