"""ScriptedTransport against the real installed SDK, on asyncio and trio (anyio's pytest plugin)."""

from __future__ import annotations

import re
import time
from typing import Any

import anyio
import pytest

from pytest_agentsdk import wire
from pytest_agentsdk.script import Script, ScriptError
from pytest_agentsdk.transport import ScriptedCLIError, ScriptedTransport, ScriptStalled

pytestmark = pytest.mark.anyio
pytest_plugins = ["pytester"]


def names(messages: list[Any]) -> list[str]:
    return [type(m).__name__ for m in messages]


@pytest.mark.agentsdk(eof="close", checkpoints={"write": 1, "read": 1, "close": 2})
async def test_two_turn_client_session(agentsdk_script, scripted_transport) -> None:
    from claude_agent_sdk import ClaudeSDKClient

    agentsdk_script.turn(wire.system_init(), wire.assistant("four"), wire.result("4"))
    agentsdk_script.turn(wire.assistant("six"), wire.result("6"))
    turns = []
    async with ClaudeSDKClient(transport=scripted_transport) as client:
        for prompt in ("2+2?", "3+3?"):
            await client.query(prompt)
            turns.append([m async for m in client.receive_response()])
    assert [names(t) for t in turns] == [
        ["SystemMessage", "AssistantMessage", "ResultMessage"],
        ["AssistantMessage", "ResultMessage"],
    ]
    assert [t[-1].result for t in turns] == ["4", "6"]
    log = scripted_transport.log
    assert [p.data["message"]["content"] for p in log.prompts] == ["2+2?", "3+3?"]
    turn2 = [e for e in log.emissions if e.cause == "prompt:1"]
    assert all(e.prompts_before == 2 for e in turn2), "turn 2 frames are released only after prompt 2"
    assert log.counts["close"] == 1


async def test_query_session_answers_handshake_and_permission(agentsdk_script, scripted_transport) -> None:
    from claude_agent_sdk import ClaudeAgentOptions, PermissionResultAllow, query

    asked: list[str] = []

    async def allow(tool_name: str, tool_input: dict[str, Any], context: Any) -> PermissionResultAllow:
        asked.append(tool_name)
        return PermissionResultAllow(updated_input=tool_input)

    async def prompt():
        yield {"type": "user", "message": {"role": "user", "content": "list files"}, "parent_tool_use_id": None, "session_id": ""}

    agentsdk_script.turn(
        wire.system_init(),
        wire.can_use_tool("perm_1", "Bash", {"command": "ls"}),
        wire.assistant(wire.tool_use("toolu_1", "Bash", {"command": "ls"}), stop_reason="tool_use"),
        wire.user_tool_result("toolu_1", "a.txt"),
        wire.assistant("one file"),
        wire.result("one file"),
    )
    received = [m async for m in query(prompt=prompt(), options=ClaudeAgentOptions(can_use_tool=allow), transport=scripted_transport)]
    assert names(received)[-1] == "ResultMessage"
    assert asked == ["Bash"]
    log = scripted_transport.log
    assert log.answers["perm_1"]["response"]["behavior"] == "allow"
    init = log.writes[0].data
    assert init["type"] == "control_request" and init["request"]["subtype"] == "initialize"
    reply = next(e for e in log.emissions if e.cause == "control")
    assert reply.frame["response"]["request_id"] == init["request_id"]
    assert log.counts["end_input"] == 1


async def test_control_requests_get_scripted_replies(agentsdk_script, scripted_transport) -> None:
    from claude_agent_sdk import ClaudeSDKClient

    agentsdk_script.eof = "close"
    agentsdk_script.reply("mcp_status", {"mcpServers": [{"name": "x", "status": "connected"}]})
    agentsdk_script.reply("set_model", error="model not allowed")
    async with ClaudeSDKClient(transport=scripted_transport) as client:
        await client.interrupt()
        await client.set_permission_mode("acceptEdits")
        status = await client.get_mcp_status()
        with pytest.raises(Exception, match="model not allowed"):
            await client.set_model("other")
    assert status["mcpServers"][0]["name"] == "x"
    subtypes = [w.data["request"]["subtype"] for w in scripted_transport.log.writes if w.type == "control_request"]
    assert subtypes == ["initialize", "interrupt", "set_permission_mode", "mcp_status", "set_model"]


@pytest.mark.agentsdk(strict=False)
async def test_turn_that_never_ends_is_a_stall(agentsdk_script, scripted_transport) -> None:
    from claude_agent_sdk import ClaudeSDKClient

    agentsdk_script.eof = "close"
    agentsdk_script.turn(wire.system_init(), wire.assistant("thinking..."))  # no result: the turn never ends
    with pytest.raises(Exception, match="stalled") as err:
        async with ClaudeSDKClient(transport=scripted_transport) as client:
            await client.query("hi")
            async for _ in client.receive_response():
                pass
    assert "more output after prompt 0: turn0 has no result frame: end it with wire.result(...)" in str(err.value)
    assert scripted_transport.log.stall is not None


@pytest.mark.agentsdk(strict=False)
async def test_a_client_waiting_for_a_notification_never_scripted_is_told_to_script_it(agentsdk_script, scripted_transport) -> None:
    """The turn ended with its result, a task it started never reports its end, and the code reads
    on for it: the stall names the task and the event to write."""
    from claude_agent_sdk import ClaudeSDKClient

    agentsdk_script.eof = "close"
    agentsdk_script.turn(wire.system_init(), wire.task_started("t1", "worker"), wire.assistant("started"), wire.result("started"))
    with pytest.raises(Exception, match="stalled") as err:
        async with ClaudeSDKClient(transport=scripted_transport) as client:
            await client.query("start it")
            async for message in client.receive_messages():  # waits past the result for the task's notification
                pass
    assert ("more output after prompt 0: its turn was played to its result, and task t1 the script started never reports its end; "
            "if the code waits for that, script it: `agentsdk_script.event('done', wire.task_notification(...), after=('turn0', 3))`"
            ) in str(err.value)


@pytest.mark.agentsdk(strict=False)
async def test_silent_control_reply_is_a_stall_not_a_60s_timeout(agentsdk_script, scripted_transport) -> None:
    from claude_agent_sdk import ClaudeSDKClient

    agentsdk_script.eof = "close"
    agentsdk_script.reply("interrupt", never=True)
    with pytest.raises(Exception):
        async with ClaudeSDKClient(transport=scripted_transport) as client:
            await client.interrupt()
    assert "reply to interrupt, scripted never to come (reply('interrupt', never=True))" in (scripted_transport.log.stall or "")


async def test_autonomous_event_is_released_after_its_frame(agentsdk_backend) -> None:
    from claude_agent_sdk import query

    script = (
        Script()
        .turn(wire.system_init(), wire.task_started("t1"), wire.assistant("spawned"), wire.result("spawned"))
        .event("task:t1", wire.task_notification("t1"), after=("turn0", 1), delay=3)
        .event("late", wire.assistant("bye"), on_block=True, optional=True)
    )
    transport = ScriptedTransport(script)
    received = [m async for m in query(prompt="go", transport=transport)]
    order = [(e.segment, e.index) for e in transport.log.emissions if e.segment]
    assert order.index(("task:t1", 0)) > order.index(("turn0", 1))
    assert ("late", 0) in order, "on_block segments are said before stdout closes"
    assert len(received) == 6
    transport.assert_played()


async def test_writes_after_end_input_are_recorded_not_crashed(agentsdk_backend) -> None:
    transport = ScriptedTransport(Script())
    await transport.connect()
    await transport.end_input()
    await transport.write('{"type": "user", "message": {"role": "user", "content": "late"}}\n')
    await transport.write("not json\n")
    assert [w.after_end_input for w in transport.log.writes] == [True, True]
    assert [w.data for w in transport.unexpected_writes()] == ["not json"]
    with pytest.raises(AssertionError, match="unexpected writes"):
        transport.assert_played()


async def test_undelivered_frames_fail_the_teardown_check(agentsdk_backend) -> None:
    from claude_agent_sdk import query

    script = Script().turn(wire.assistant("a"), wire.result("a")).turn(wire.assistant("never asked"), wire.result("b"))
    transport = ScriptedTransport(script)
    async for _ in query(prompt="only one prompt", transport=transport):
        pass
    with pytest.raises(AssertionError, match=r"2 scripted frame\(s\) never delivered: turn1\[0\]"):
        transport.assert_played()


async def test_a_prompt_left_without_a_result_is_named_by_its_own_turn(agentsdk_backend) -> None:
    """Two prompts streamed, the first turn's result missing: one result came, turn1's, so the
    warning names turn0, whose prompt it left unanswered (not the last prompt)."""
    from claude_agent_sdk import query

    async def two_prompts() -> Any:
        for text in ("one", "two"):
            yield {"type": "user", "message": {"role": "user", "content": text}, "parent_tool_use_id": None, "session_id": "default"}

    transport = ScriptedTransport(Script().turn(wire.assistant("a")).turn(wire.assistant("b"), wire.result("b")), script_name="s")
    async for _ in query(prompt=two_prompts(), transport=transport):
        pass
    assert (transport.results_missing() or "").startswith("s: stdout ended with 1 prompt(s) unanswered by a result frame (turn0 has no result frame)")
    answered = ScriptedTransport(Script().turn(wire.assistant("a"), wire.result("a")))
    async for _ in query(prompt="one", transport=answered):
        pass
    assert answered.results_missing() is None


async def test_invalid_script_fails_at_connect(agentsdk_backend) -> None:
    transport = ScriptedTransport(Script().turn({"type": "nope"}))
    with pytest.raises(ScriptError, match="unknown frame kind"):
        await transport.connect()


async def test_checkpoints_do_not_change_what_is_delivered(agentsdk_backend) -> None:
    from claude_agent_sdk import query

    def run_with(checkpoints: dict[str, int]) -> Script:
        return Script(checkpoints=checkpoints).turn(wire.system_init(), wire.assistant("x"), wire.result("x"), gap=2)

    outcomes = []
    for cps in ({}, {"connect": 3, "write": 2, "read": 5, "end_input": 1, "close": 4}):
        transport = ScriptedTransport(run_with(cps))
        outcomes.append(names([m async for m in query(prompt="p", transport=transport)]))
    assert outcomes[0] == outcomes[1] == ["SystemMessage", "AssistantMessage", "ResultMessage"]


async def test_stall_raised_directly_from_reader(agentsdk_backend) -> None:
    """Without the SDK: a reader with nothing to read and nobody to write stalls."""
    transport = ScriptedTransport(Script(eof="close"))
    await transport.connect()
    with pytest.raises(ScriptStalled, match="has written no prompt"):
        async for _ in transport.read_messages():
            pass
    await anyio.lowlevel.checkpoint()


async def test_stalled_event_shows_a_stall_to_waiters_from_before_and_after(agentsdk_backend) -> None:
    """A driver waiting off the stream sees the stall on ``stalled``, whether it asked before or after."""
    early, late = ScriptedTransport(Script(eof="close")), ScriptedTransport(Script(eof="close"))

    async def read_until_stall(transport: ScriptedTransport) -> None:
        await transport.connect()
        with pytest.raises(ScriptStalled):
            async for _ in transport.read_messages():
                pass

    with anyio.fail_after(30):  # a deadline beyond the stall timeout holds no stall off
        async with anyio.create_task_group() as tg:
            tg.start_soon(read_until_stall, early)
            await early.stalled.wait()
    assert early.log.stall
    await read_until_stall(late)
    assert late.stalled.is_set()


async def test_a_stall_names_a_script_changed_after_connect(agentsdk_backend) -> None:
    """A session plays the script as it was at connect(): a turn added later is not played, and the
    stall says why instead of listing the turn as held."""
    from claude_agent_sdk import ClaudeSDKClient

    script = Script(eof="close")
    transport = ScriptedTransport(script, script_name="agentsdk_script")
    # releases before 0.2.x hand the consumer the reader's error as a plain Exception with its message
    with pytest.raises(Exception, match=r"scripted CLI stalled: the script was changed after this session connected: a session "
                                        r"plays the script as it was at connect\(\); fill agentsdk_script before the code connects; "):
        async with ClaudeSDKClient(transport=transport) as client:
            script.turn(wire.assistant("late"), wire.result("late"))
            await client.query("hi")
            [m async for m in client.receive_response()]


async def test_a_stall_of_an_unchanged_script_the_memo_cannot_keep_does_not_claim_a_change(agentsdk_backend) -> None:
    """A script of Segment subclasses is validated and planned anew at every look (the memo cannot see
    into them): unchanged, it is not called changed."""
    from claude_agent_sdk import ClaudeSDKClient

    from pytest_agentsdk.script import Segment

    class OwnSegment(Segment):
        pass

    script = Script(eof="close").turn(wire.assistant("4"), wire.result("4"))
    s = script.segments[0]
    script.segments[0] = OwnSegment(s.name, s.cause, s.trigger, s.frames, s.gap, s.optional)
    transport = ScriptedTransport(script, stall_timeout=0.05)
    with pytest.raises(Exception, match="scripted CLI stalled") as stalled:  # a plain Exception on older releases
        async with ClaudeSDKClient(transport=transport) as client:
            for prompt in ("2+2", "3+3"):  # the second prompt was never scripted
                await client.query(prompt)
                [m async for m in client.receive_response()]
    assert "changed after" not in str(stalled.value) and "prompt 1 was never scripted" in str(stalled.value)


async def test_a_stall_beside_a_later_timer_says_when_it_is_due_and_how_to_wait_for_it(agentsdk_backend) -> None:
    """A consumer asleep past stall_timeout is a stall (the SDK's 60 s timeouts must not hold one off),
    and the diagnosis says first that a timer is due before the next prompt, when, and which knob
    waits for it; then what to script if the code reads on for something instead (it cannot tell
    which task the timer wakes)."""
    from claude_agent_sdk import ClaudeSDKClient

    script = Script(eof="close").turn(wire.assistant("4"), wire.result("4")).turn(wire.assistant("6"), wire.result("6"))
    transport = ScriptedTransport(script, stall_timeout=0.05)
    with pytest.raises(Exception, match="scripted CLI stalled") as stalled:  # a plain Exception on older releases
        async with ClaudeSDKClient(transport=transport) as client:
            for prompt in ("2+2", "3+3"):
                await client.query(prompt)
                [m async for m in client.receive_response()]
                await anyio.sleep(0.5)  # the consumer's own pause, due long after the stall timeout
    said = str(stalled.value)
    assert re.search(r"after prompt 0: its turn was played to its result, and a timer is due in 0\.\d s while prompt 1, which "
                     r"'turn1' answers, is not written: if the code sleeps that long between turns, raise stall_timeout above "
                     r"0\.\d s \(@pytest\.mark\.agentsdk\(stall_timeout=S\), ScriptedTransport\(stall_timeout=S\)\); if it "
                     r"reads on for something, script it", said), said
    assert "no timer due within 0.05 s)" in said and said.count("raise stall_timeout") == 1


async def test_scripted_delays_are_not_stalls(agentsdk_backend) -> None:
    from claude_agent_sdk import query

    script = Script(delays={"write": 0.3, "close": 0.3}).turn(wire.assistant("slow pipe"), wire.result("ok"))
    transport = ScriptedTransport(script, stall_timeout=0.05)
    received = [m async for m in query(prompt="p", transport=transport)]
    assert names(received) == ["AssistantMessage", "ResultMessage"]
    assert transport.log.stall is None


async def test_hook_callback_request_is_answered_and_recorded(agentsdk_script, scripted_transport) -> None:
    from claude_agent_sdk import ClaudeAgentOptions, ClaudeSDKClient, HookMatcher

    seen: list[str] = []

    async def pre_tool_use(hook_input: dict[str, Any], tool_use_id: str | None, context: Any) -> dict[str, Any]:
        seen.append(hook_input["tool_name"])
        return {"continue_": True}

    agentsdk_script.eof = "close"
    agentsdk_script.turn(
        wire.hook_callback("hook_req_1", "hook_0", {"hook_event_name": "PreToolUse", "tool_name": "Bash", "tool_input": {}}, "toolu_1"),
        wire.assistant("ran it"),
        wire.result("ran it"),
    )
    options = ClaudeAgentOptions(hooks={"PreToolUse": [HookMatcher(matcher=None, hooks=[pre_tool_use])]})
    async with ClaudeSDKClient(options=options, transport=scripted_transport) as client:
        await client.query("go")
        messages = [m async for m in client.receive_response()]
    assert names(messages) == ["AssistantMessage", "ResultMessage"]
    assert seen == ["Bash"]
    init = scripted_transport.log.writes[0].data["request"]
    assert init["hooks"]["PreToolUse"][0]["hookCallbackIds"] == ["hook_0"]
    assert scripted_transport.log.answers["hook_req_1"]["response"]["continue"] is True


async def test_stop_task_and_context_usage_where_the_release_has_them(agentsdk_script, scripted_transport) -> None:
    from claude_agent_sdk import ClaudeSDKClient

    agentsdk_script.eof = "close"
    agentsdk_script.reply("get_context_usage", {"totalTokens": 42})
    sent = []
    async with ClaudeSDKClient(transport=scripted_transport) as client:
        if hasattr(client, "stop_task"):
            await client.stop_task("t1")
            sent.append("stop_task")
        if hasattr(client, "get_context_usage"):
            usage = await client.get_context_usage()
            assert usage["totalTokens"] == 42
            sent.append("get_context_usage")
    subtypes = [w.data["request"]["subtype"] for w in scripted_transport.log.writes if w.type == "control_request"]
    assert subtypes == ["initialize", *sent]


# ---------------------------------------------------------------- what a stall is, and is not
async def two_turns(transport: ScriptedTransport, between_turns: Any = None, per_message: Any = None) -> list[str]:
    """A two-turn client session whose consumer pauses between turns and/or handles each message slowly."""
    from claude_agent_sdk import ClaudeSDKClient, ResultMessage

    answers = []
    async with ClaudeSDKClient(transport=transport) as client:
        for prompt in ("first", "second"):
            if between_turns and answers:
                await between_turns()
            await client.query(prompt)
            async for message in client.receive_response():
                if per_message:
                    await per_message()
                if isinstance(message, ResultMessage):
                    answers.append(message.result)
    return answers


async def sleep_a_second() -> None:
    await anyio.sleep(1)


async def half_a_second_in_a_thread() -> None:
    await anyio.to_thread.run_sync(time.sleep, 0.5)


async def slow_handler() -> None:
    await anyio.sleep(0.3)  # a database write, a rate limiter


@pytest.mark.parametrize(("between_turns", "per_message"), [
    (sleep_a_second, None), (None, half_a_second_in_a_thread), (None, slow_handler),
], ids=["sleep between turns", "thread work per message", "slow handler"])
async def test_a_consumer_that_is_busy_or_asleep_is_not_stalled(agentsdk_script, scripted_transport, between_turns, per_message) -> None:
    agentsdk_script.turn(wire.assistant("a"), wire.result("a")).turn(wire.result("b"))
    assert await two_turns(scripted_transport, between_turns, per_message) == ["a", "b"]
    assert scripted_transport.log.stall is None


@pytest.mark.agentsdk(strict=False)
async def test_an_unscripted_prompt_is_named_in_the_stall(agentsdk_script, scripted_transport) -> None:
    agentsdk_script.turn(wire.assistant("a"), wire.result("a"))
    with pytest.raises(Exception, match=r"prompt 1 was never scripted: add `agentsdk_script\.turn\(\.\.\.\)`"):
        await two_turns(scripted_transport)


@pytest.mark.agentsdk(eof="close", strict=False)
async def test_eof_close_with_query_is_named_in_the_stall(agentsdk_script, scripted_transport) -> None:
    from claude_agent_sdk import query

    agentsdk_script.turn(wire.assistant("a"), wire.result("a"))
    with pytest.raises(Exception, match=r"eof='close' with query\(\): .* use eof='end_input'"):
        async for _ in query(prompt="p", transport=scripted_transport):
            pass


async def test_a_transport_connected_twice_fails_at_once(agentsdk_script, scripted_transport) -> None:
    from claude_agent_sdk import query

    agentsdk_script.turn(wire.assistant("a"), wire.result("a"))
    async for _ in query(prompt="first session", transport=scripted_transport):
        pass
    with pytest.raises(ScriptedCLIError, match="already played a session; a transport plays one session"):
        async for _ in query(prompt="second session", transport=scripted_transport):
            pass


def test_a_stall_is_reported_once(pytester) -> None:
    """The test's failure carries the diagnosis; no teardown error repeats it and the SDK's own
    "Fatal error in message reader" log of it is dropped."""
    pytester.makepyfile(
        """
        import pytest
        from claude_agent_sdk import ClaudeSDKClient
        from pytest_agentsdk import wire

        @pytest.mark.anyio
        async def test_turn_never_ends(agentsdk_script, scripted_transport):
            agentsdk_script.turn(wire.system_init(), wire.assistant("thinking..."))
            async with ClaudeSDKClient(transport=scripted_transport) as client:
                await client.query("hi")
                async for _ in client.receive_response():
                    pass
        """
    )
    result = pytester.runpytest_subprocess("-p", "agentsdk", "-p", "anyio", "-k", "asyncio")
    result.assert_outcomes(failed=1)  # and no teardown error
    output = result.stdout.str() + result.stderr.str()
    assert "turn0 has no result frame" in output
    assert "Fatal error in message reader" not in output and "Captured log" not in output


async def test_a_script_edited_between_sessions_plays_as_edited(agentsdk_backend) -> None:
    """The trigger index kept per script is dropped when the script changes: a segment replaced by
    one of the same name and shape, or a segment added, plays in the next session as edited."""
    import dataclasses

    from claude_agent_sdk import AssistantMessage, ClaudeAgentOptions, query

    async def said(script: Script) -> list[str]:
        out = [m async for m in query(prompt="hi", options=ClaudeAgentOptions(), transport=ScriptedTransport(script))]
        return [block.text for m in out if isinstance(m, AssistantMessage) for block in m.content]

    script = Script().turn(wire.assistant("old"), wire.result())
    assert await said(script) == ["old"]
    script.segments[0] = dataclasses.replace(script.segments[0], frames=[wire.assistant("new"), wire.result()])
    assert await said(script) == ["new"]
    script.event("aside", wire.assistant("aside"), after=("turn0", 0))
    assert await said(script) == ["new", "aside"]
