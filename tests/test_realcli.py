"""The real Claude Code CLI against the scripted Messages API: the server on its own (real HTTP,
no CLI needed), then the three bugs, the fidelity check and the cleanup on a real CLI binary
(``realcli``: the CLI the installed SDK's wheels bundle, from npm, or ``$PYTEST_AGENTSDK_CLI``)."""

from __future__ import annotations

import contextlib
import dataclasses
import http.client
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pytest_agentsdk import realcli
from pytest_agentsdk.model_server import Reply, ScriptedModel, text, tool_use

pytest_plugins = ["pytester"]


# ---------------------------------------------------------------- the server, over real HTTP
def _post(model: ScriptedModel, body: dict[str, Any]) -> http.client.HTTPResponse:
    port = int(model.url.rsplit(":", 1)[1])
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("POST", "/v1/messages?beta=true", json.dumps(body), {"Content-Type": "application/json"})
    return conn.getresponse()


def _events(response: http.client.HTTPResponse) -> list[dict[str, Any]]:
    data = response.read().decode()
    return [json.loads(line[6:]) for line in data.splitlines() if line.startswith("data: ")]


def _request(prompt: str, subagent: bool = False, stream: bool = True) -> dict[str, Any]:
    system = [{"type": "text", "text": "x-anthropic-billing-header: cc_is_subagent=true;" if subagent else "You are Claude Code."}]
    return {"model": "m", "stream": stream, "system": system, "messages": [{"role": "user", "content": [{"type": "text", "text": prompt}]}]}


def test_replies_stream_as_sse_per_caller_and_unscripted_requests_get_a_clear_error() -> None:
    main = [Reply([text("hello"), tool_use("toolu_1", "Read", {"file_path": "a"})], stop_reason=None)]
    with ScriptedModel(main=main, subagent=[Reply([text("sub")])]) as model:
        events = _events(_post(model, _request("hi")))
        sub = _events(_post(model, _request("work", subagent=True)))
        unscripted = _post(model, _request("again"))
        error = json.loads(unscripted.read())
    assert [e["type"] for e in events] == ["message_start", "ping", "content_block_start", "content_block_delta", "content_block_stop",
                                           "content_block_start", "content_block_delta", "content_block_stop", "message_delta", "message_stop"]
    assert events[-2]["delta"]["stop_reason"] is None and json.loads(events[6]["delta"]["partial_json"]) == {"file_path": "a"}
    assert sub[3]["delta"]["text"] == "sub"
    assert unscripted.status == 400 and "main request #2 was not scripted" in error["error"]["message"]
    assert [(r.role, r.reply is not None) for r in model.requests] == [("main", True), ("subagent", True), ("main", False)]


def test_a_cut_stream_breaks_the_body_and_a_missing_message_stop_does_not() -> None:
    replies = [Reply([text("partial text")], stop_reason=None, ending="cut"), Reply([text("t")], stop_reason=None, ending="no_message_stop")]
    with ScriptedModel(main=replies) as model:
        with pytest.raises(http.client.IncompleteRead):
            _post(model, _request("one")).read()
        events = _events(_post(model, _request("two")))
    assert events[-1]["type"] == "message_delta"


def test_when_picks_the_request_it_answers_and_a_gate_holds_a_reply() -> None:
    replies = [Reply([text("in order")]), Reply([text("reaction")], when="<task-notification>"),
               Reply([text("held")], gate="agent")]
    with ScriptedModel(main=replies, gate_timeout=0.2) as model:
        first = _events(_post(model, _request("<task-notification>done</task-notification>")))
        second = _events(_post(model, _request("next")))
        never_opened = _post(model, _request("third"))
        assert never_opened.status == 504 and "gate 'agent' was never opened" in never_opened.read().decode()
    with ScriptedModel(main=[Reply([text("held")], gate="agent")]) as model:
        model.open("agent")
        held = _events(_post(model, _request("x")))
    assert (first[3]["delta"]["text"], second[3]["delta"]["text"], held[3]["delta"]["text"]) == ("reaction", "in order", "held")


@pytest.mark.parametrize(("spec", "problem"), [
    ("no-such-cli", "not a file, 'bundled', or a CLI version"),
    ("", "empty; give a CLI binary's path"),
    ("./README.md", "not executable; give a Claude Code CLI binary"),  # a relative path is the file, not a command on PATH
    ("tests", "a directory; give the CLI binary in it"),
])
def test_a_bad_cli_spec_says_what_to_give(spec: str, problem: str, monkeypatch) -> None:
    monkeypatch.chdir(Path(__file__).parents[1])
    with pytest.raises(realcli.CliError, match=problem):
        realcli.resolve(spec)


def test_npm_s_failure_is_said_in_one_line() -> None:
    unpublished = ("npm error code ETARGET\nnpm error notarget No matching version found for @anthropic-ai/claude-code@9.9.9.\n"
                   "npm error A complete log of this run can be found in: /root/.npm/_logs/x-debug-0.log\n")
    assert realcli._npm_failure("npm-not-here", unpublished, "9.9.9").startswith("@anthropic-ai/claude-code@9.9.9 is not published on npm; give a version")
    offline = "npm error code ENOTFOUND\nnpm error network request failed\nnpm error A complete log of this run can be found in: x\n"
    assert realcli._npm_failure("npm-not-here", offline, "2.1.0") == "npm install @anthropic-ai/claude-code@2.1.0 failed: network request failed"


@pytest.mark.parametrize("bug", ["cross_task_close", "late_task_notification", "premature_completion"])
def test_a_real_cli_example_is_one_of_the_stories_or_refused_naming_the_field(bug: str) -> None:
    from pytest_agentsdk import bugs
    from pytest_agentsdk.script import ScriptError

    scenario = bugs.scenario(bug).on_cli(realcli.Cli(Path("/nonexistent/claude"), "0.0.0", "path"))
    for story in scenario.stories():
        assert scenario.story(json.loads(json.dumps(story))) == story  # a printed counterexample replays
    first = scenario.stories()[0]
    key = next(iter(first))
    with pytest.raises(ScriptError, match=rf"^example\.{key}: 'nope' is not one of "):
        scenario.story({**first, key: "nope"})
    with pytest.raises(ScriptError, match="^example: 5 is not a JSON object"):
        scenario.story(5)


# ---------------------------------------------------------------- on a real CLI binary
#: The CLI of the recorded traces (shared reference/traces): what these tests run when the version
#: the installed SDK bundles is not on npm yet (a release can name a CLI npm does not serve).
TRACES_CLI = "2.1.330"


def test_fidelity_compares_each_agent_in_its_own_order_and_still_finds_a_changed_report() -> None:
    """The real CLI interleaves a background agent's frames with the main agent's as timing has it
    (CI saw the subagent's reply before the main agent's once): that is no difference, a report
    that says another status is."""
    from pytest_agentsdk import fidelity

    played = fidelity.STORIES["background_agent_lie"][2]("asyncio")
    frames = played.frames
    subagent = next(i for i, f in enumerate(frames) if f.get("type") == "assistant" and f.get("parent_tool_use_id"))
    first_main_reply = next(i for i, f in enumerate(frames) if f.get("type") == "user") + 1
    moved = [*frames[:first_main_reply], frames[subagent], *frames[first_main_reply:subagent], *frames[subagent + 1:]]
    assert moved != frames
    assert fidelity.compare("background_agent_lie", fidelity.Played(moved), played).differences == []
    failed = [{**f, "status": "failed"} if f.get("subtype") == "task_notification" else f for f in moved]
    assert fidelity.compare("background_agent_lie", fidelity.Played(failed), played).differences == [
        "system/task_notification: status real 'failed', scripted 'completed'"]


def _kinds_at(frames: list[dict[str, Any]], *kinds: str) -> list[int]:
    from pytest_agentsdk import wire

    return [i for i, f in enumerate(frames) if wire.kind(f) in kinds]


def test_fidelity_finds_a_report_that_crosses_a_result() -> None:
    """Lanes drop the order between agents, not which turn a frame falls in: a task's report moved
    past its turn's result, or the CLI's own reaction moved before the report it reacts to (turn 2's
    call would end on it: bug 2), is a difference, in the frames and between the turns."""
    from pytest_agentsdk import fidelity

    foreground = fidelity.STORIES["foreground_agent"][2]("asyncio")
    frames = foreground.frames
    reports, (result, *_) = _kinds_at(frames, "system/task_updated", "system/task_notification"), _kinds_at(frames, "result")
    late = [f for i, f in enumerate(frames) if i not in reports][:result] + [frames[i] for i in reports] \
        + [f for i, f in enumerate(frames) if i not in reports][result:]
    assert late != frames
    assert fidelity.compare("foreground_agent", fidelity.Played(late), foreground).differences == [
        "system/task_updated: turn real 1, scripted 0"]

    two_turns = fidelity.STORIES["two_turns_background"][2]("asyncio")

    def reaction_first(frames: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The CLI's own turn (its init .. its result) moved before the task's report."""
        report, init, result = _kinds_at(frames, "system/task_updated")[0], _kinds_at(frames, "system/init")[-1], _kinds_at(frames, "result")[-1]
        return frames[:report] + frames[init:result + 1] + frames[report:init] + frames[result + 1:]

    played = fidelity.Played(reaction_first(two_turns.frames), reaction_first(two_turns.between))
    differences = fidelity.compare("two_turns_background", played, two_turns).differences
    assert [d.split(":")[0] for d in differences] == ["system/task_updated", "between turns"], differences


@pytest.fixture(scope="session")
def real_cli() -> realcli.Cli:
    """The real CLI these tests run: ``$PYTEST_AGENTSDK_CLI``, else the version the installed SDK's
    wheels bundle (from npm, cached), else the traces' CLI; skipped only where none can be had
    (no npm, no network)."""
    if chosen := os.environ.get("PYTEST_AGENTSDK_CLI"):
        return realcli.resolve(chosen)  # a CLI asked for by name that cannot be had fails, never skips
    problems = []
    for spec in ("bundled", TRACES_CLI):
        try:
            return realcli.resolve(spec)
        except realcli.CliError as exc:
            problems.append(str(exc))
    pytest.skip(f"no real Claude Code CLI here: {'; '.join(problems)}")


def _command(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """``python -m pytest_agentsdk ARGS`` with its own TMPDIR, so what it leaves behind shows."""
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    return subprocess.run([sys.executable, "-m", "pytest_agentsdk", *args], capture_output=True, text=True, env=env, timeout=600)


def _leftovers(tmp_path: Path) -> list[str]:
    """Session dirs left in ``tmp_path`` and processes still running with a config dir there."""
    marker = f"CLAUDE_CONFIG_DIR={tmp_path}".encode()
    alive = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if any(v.startswith(marker) for v in (entry / "environ").read_bytes().split(b"\0")):
                    alive.append(f"process {entry.name}")
            except OSError:
                pass
    return sorted(p.name for p in tmp_path.iterdir()) + alive


def _why(result: dict[str, Any], done: subprocess.CompletedProcess[str]) -> str:
    """What a failed real-CLI check said of itself: an error row's reason and traceback, and stderr."""
    return f"{result.get('reason')}\n{result.get('evidence', {}).get('traceback', '')}\n{done.stderr[-2000:]}"


@pytest.mark.realcli
def test_bug3_on_the_real_cli_lies_for_a_null_stop_reason_and_tells_the_truth_for_a_cut_stream(real_cli: realcli.Cli, tmp_path: Path) -> None:
    done = _command(["check", "--bug", "premature_completion", "--cli", str(real_cli.path), "--backend", "asyncio",
                     "--seed", "0", "--json", "--quiet"], tmp_path)
    report = json.loads(done.stdout)
    (result,) = report["results"]
    assert (done.returncode, report["subject"]["cli_version"], result["verdict"]) == (1, real_cli.version, "reproduced"), _why(result, done)
    assert result["manifestations"] == ["untruthful_completed_passed_through"]
    patterns = result["evidence"]["patterns"]
    # the verdict flips with the model's ground truth, story by story
    assert not patterns["text_null/background/query"]["safe"] and not patterns["tool_then_text_null/background/query"]["safe"]
    assert patterns["cut_mid_tool/background/query"]["safe"] and patterns["end_turn/background/query"]["safe"]
    assert patterns["no_message_stop_then_end_turn/background/query"]["safe"]
    assert patterns["end_turn/foreground/query"]["safe"] and not patterns["text_null/foreground/query"]["safe"]
    assert patterns["tool_then_end_turn/foreground/query"]["safe"] and patterns["tool_then_end_turn/background/query"]["safe"]
    assert patterns["end_turn/background/client"]["safe"] and not patterns["text_null/background/client"]["safe"]
    assert _leftovers(tmp_path) == []


@pytest.mark.realcli
def test_a_bug3_fix_judging_foreground_agents_by_their_frames_regresses_over_the_real_cli(real_cli: realcli.Cli, sdk_release: Any,
                                                                                          candidate_env: Any, tmp_path: Path) -> None:
    """The real CLI streams neither a foreground agent's last message nor a result in its
    notification, so judging that agent by its frames reports a clean finish failed (it ends on
    its last tool result, or shows no message at all). The candidate judge_the_agent leaves
    foreground agents alone and gives no false alarm; patched to judge them too, the foreground
    clean-finish stories catch it (the stories the real sweep lacked, when that version was
    called a narrowing)."""
    from candidates import BASE_VERSION
    from candidates.premature_completion import CANDIDATES

    from pytest_agentsdk import patching, verdict

    args = ["--bug", "premature_completion", "--backend", "asyncio", "--seed", "0", "--cli", str(real_cli.path), "--quiet"]
    (base,) = sdk_release(BASE_VERSION).run_check(args, timeout=900)["results"]
    (cand,) = candidate_env("judge_the_agent").run_check(args, timeout=900)["results"]
    assert verdict.classify_change(verdict.Result(**base), verdict.Result(**cand))["new"] == []
    (patch,) = CANDIDATES["judge_the_agent"]
    every_agent = dataclasses.replace(patch, new=patch.new.replace(' if message.get("tool_use_id") in background else None', ""))
    package = Path(sdk_release(BASE_VERSION).run(["-c", patching.PACKAGE_DIR_CODE]).stdout.strip())
    tree = patching.build_source_tree(package, tmp_path / "every_agent", (every_agent,), local="every.agent",
                                      what="judge_the_agent judging foreground agents too")
    (judged,) = sdk_release(str(tree)).run_check(args, timeout=900)["results"]
    change = verdict.classify_change(verdict.Result(**base), verdict.Result(**judged))
    assert (change["change"], change["new"]) == ("regresses", ["truthful_reported_failed"]), change
    for story in ("end_turn", "tool_then_end_turn"):
        assert not judged["evidence"]["patterns"][f"{story}/foreground/query"]["safe"]


@pytest.mark.realcli
def test_bug2_on_the_real_cli_turn_two_ends_on_the_clis_own_reaction(real_cli: realcli.Cli, tmp_path: Path) -> None:
    done = _command(["check", "--bug", "late_task_notification", "--cli", str(real_cli.path), "--backend", "asyncio",
                     "--seed", "0", "--json", "--quiet"], tmp_path)
    (result,) = json.loads(done.stdout)["results"]
    assert result["verdict"] == "reproduced", _why(result, done)
    assert {"misattributed", "stale:cli_turn", "stale:task_notification"} <= set(result["manifestations"])
    patterns = result["evidence"]["patterns"]
    # the agent that runs inside turn 1 leaves turn 2 clean: the oracle does not cry wolf on the real CLI
    assert patterns["foreground agent"]["safe"]
    assert [p for p, entry in patterns.items() if not entry["safe"]] == [p for p in patterns if p != "foreground agent"]
    assert _leftovers(tmp_path) == []


@pytest.mark.realcli
def test_bug1_over_the_real_subprocess_transport(real_cli: realcli.Cli, tmp_path: Path) -> None:
    """A consumer that reads to the end tears down clean; one that breaks at the result leaves the
    CLI process running past the program on the latest release (the harness kills it). One that
    waits for the generator from another loop leaks the SDK's subprocess transport: what that prints
    when the program exits ("Event loop is closed") is part of the verdict, not of the harness's stderr."""
    outcomes = {}
    for pattern in ("complete", "break_then_return", "wait_for_loop"):
        example = json.dumps({"pattern": pattern, "stop": "result", "gc": "refcount", "after": 0, "schedule": 0})
        done = _command(["replay", "--bug", "cross_task_close", "--cli", str(real_cli.path), "--example", example], tmp_path)
        outcomes[pattern] = (done.returncode, json.loads(done.stdout)["manifestations"])
        assert "Exception ignored" not in done.stderr, done.stderr[-2000:]
    assert outcomes["complete"] == (0, [])
    assert outcomes["break_then_return"][0] == 1 and "transport_not_closed" in outcomes["break_then_return"][1]
    assert outcomes["wait_for_loop"][0] == 1 and {"transport_not_closed", "event_loop_closed"} <= set(outcomes["wait_for_loop"][1])
    assert _leftovers(tmp_path) == []


@pytest.mark.realcli
def test_fidelity_the_scripted_cli_stays_within_what_the_real_cli_does(real_cli: realcli.Cli, tmp_path: Path) -> None:
    done = _command(["fidelity", "--cli", str(real_cli.path), "--json", "--quiet"], tmp_path)
    comparisons = json.loads(done.stdout)
    assert [c["story"] for c in comparisons] == ["one_turn", "background_agent_lie", "foreground_agent", "two_turns_background"]
    assert {c["story"]: c["differences"] for c in comparisons} == {c["story"]: [] for c in comparisons}
    assert done.returncode == 0


@pytest.mark.realcli
def test_fidelity_holds_when_the_real_cli_writes_the_subagents_reply_first(real_cli: realcli.Cli) -> None:
    """The order CI once met, forced: the model holds the main agent's reply until the SDK has read
    the background agent's reply, so the real CLI writes the agent's reply before the main agent's
    (its task reports then race the main reply); compared agent by agent, that is no difference."""
    from pytest_agentsdk import fidelity
    from pytest_agentsdk.bugs import premature_completion as pc

    main = pc._real_main_replies(background=True)
    main[1] = dataclasses.replace(main[1], opens=None, gate="agent_read")

    def open_at_the_agents_reply(frame: dict[str, Any]) -> None:
        if frame.get("type") == "assistant" and frame.get("parent_tool_use_id"):
            session.model.open("agent_read")

    with realcli.tap_stdout(open_at_the_agents_reply) as frames, \
            realcli.CliSession(real_cli, main, pc.REAL_STORIES["text_null"]()) as session:
        realcli.play_query(session, "Research these assets.", "asyncio")
    session.raise_for_unscripted()
    by_subagent = [bool(f.get("parent_tool_use_id")) for f in frames if f["type"] == "assistant"]
    assert by_subagent[:3] == [False, True, False], by_subagent  # the spawn, the agent's reply, the main reply
    scripted = fidelity.STORIES["background_agent_lie"][2]("asyncio")
    assert fidelity.compare("background_agent_lie", fidelity.Played(list(frames)), scripted).differences == []


@pytest.mark.realcli
def test_a_subprocess_transport_change_is_judged_over_the_real_cli(real_cli: realcli.Cli, sdk_release: Any, candidate_env: Any) -> None:
    """tests/candidates' close_is_noop changes only SubprocessCLITransport.close(): the scripted CLI
    never runs it; over the real CLI a ClaudeSDKClient that disconnects now leaves the CLI running."""
    from candidates import BASE_VERSION

    from pytest_agentsdk import verdict

    args = ["--bug", "cross_task_close", "--backend", "asyncio", "--seed", "0", "--cli", str(real_cli.path), "--quiet"]
    (base,) = sdk_release(BASE_VERSION).run_check(args, timeout=900)["results"]
    (cand,) = candidate_env("close_is_noop").run_check(args, timeout=900)["results"]
    client = "client_context_exception"
    assert base["evidence"]["patterns"][client]["safe"], base["evidence"]["patterns"][client]
    assert "transport_not_closed" in cand["evidence"]["patterns"][client]["manifestations"]
    change = verdict.classify_change(verdict.Result(**base), verdict.Result(**cand))
    assert change["change"] == "regresses" and client in change["new_in_patterns"].get("transport_not_closed", []), change


@pytest.mark.realcli
@pytest.mark.parametrize("to_group", [False, True], ids=["to_the_command", "to_its_group"])
def test_ctrl_c_mid_story_leaves_no_process_and_no_directory(real_cli: realcli.Cli, tmp_path: Path, to_group: bool) -> None:
    """SIGINT to the command alone (``kill -INT``), or to its process group as a terminal's Ctrl-C
    sends it (the CLI gets it too, and may be exiting when the command cleans up), while the real
    CLI runs a story: the documented exit, and nothing left behind, not even the killed CLI as a
    zombie in the command's process group."""
    import signal
    import time

    env = {**os.environ, "TMPDIR": str(tmp_path)}
    proc = subprocess.Popen([sys.executable, "-m", "pytest_agentsdk", "check", "--bug", "premature_completion", "--cli",
                             str(real_cli.path), "--backend", "asyncio", "--seed", "0", "--quiet"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not [x for x in _leftovers(tmp_path) if x.startswith("process")] and time.monotonic() < deadline:
            time.sleep(0.05)  # polling for the CLI process to exist, not waiting out a race
        if to_group:
            os.killpg(proc.pid, signal.SIGINT)
        else:
            proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err
        assert err.strip().splitlines()[-1].startswith("pytest-agentsdk: interrupted"), err
        assert _leftovers(tmp_path) == []
        with pytest.raises(ProcessLookupError):  # the group is empty once the command has exited: the CLI was reaped
            os.killpg(proc.pid, 0)
    finally:
        with contextlib.suppress(ProcessLookupError):  # a failure above leaves nothing running either
            os.killpg(proc.pid, signal.SIGKILL)


@pytest.mark.realcli
def test_the_plugin_fixtures_run_a_real_cli_session(pytester: pytest.Pytester, real_cli: realcli.Cli) -> None:
    """What a user writes: the real CLI answers from the scripted model; a request nothing was
    queued for fails the turn (the CLI got a 400 naming it) and the teardown names it."""
    pytester.makepyfile(test_real='''
import anyio
from claude_agent_sdk import ResultMessage, query
from pytest_agentsdk.model_server import Reply, text

def test_one_turn(agentsdk_cli_session):
    agentsdk_cli_session.model.main.append(Reply([text("hello from the model")]))

    async def main():
        return [m async for m in query(prompt="hi", options=agentsdk_cli_session.options())]

    results = [m for m in anyio.run(main) if isinstance(m, ResultMessage)]
    assert results[-1].result == "hello from the model"

def test_nothing_queued(agentsdk_cli_session):
    async def main():
        return [m async for m in query(prompt="hi", options=agentsdk_cli_session.options())]

    anyio.run(main)
''')
    result = pytester.runpytest_subprocess("-p", "agentsdk", "-q", f"--agentsdk-cli={real_cli.path}")
    result.assert_outcomes(passed=1, failed=1, errors=1)
    result.stdout.fnmatch_lines(["*ERROR at teardown of test_nothing_queued*", "*request(s) nothing was queued for, first: main request #0*"])
    result.stdout.fnmatch_lines(["*API Error: 400 pytest-agentsdk ScriptedModel: main request #* was not scripted (queue a Reply in ScriptedModel.main)*"])
