"""agentsdk_cli: code that never passes ``transport=`` (plain ``query(prompt=...)``, plain
``ClaudeSDKClient()``) scripted through the fixture and the context manager, against the real
installed SDK on asyncio and trio. tests/test_release_range.py runs this module on 0.1.44 and 0.1.51."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from claude_agent_sdk import ClaudeSDKClient, ResultMessage, query

from pytest_agentsdk import wire
from pytest_agentsdk.cli_routing import ROUTES, ScriptedCLI
from pytest_agentsdk.script import Script, ScriptWarning
from pytest_agentsdk.transport import ScriptedCLIError

pytestmark = pytest.mark.anyio
pytest_plugins = ["pytester"]


# ---------------------------------------------------------------- the app under test: no transport= anywhere
async def ask(prompt: str) -> str | None:
    """A one-shot helper on plain ``query()``."""
    answer = None
    async for message in query(prompt=prompt):
        if isinstance(message, ResultMessage):
            answer = message.result
    return answer


async def chat(*prompts: str) -> list[str | None]:
    """A bot on one plain ``ClaudeSDKClient()``: one turn per prompt."""
    answers = []
    async with ClaudeSDKClient() as client:
        for prompt in prompts:
            await client.query(prompt)
            answers += [m.result async for m in client.receive_response() if isinstance(m, ResultMessage)]
    return answers


def answer(text: str) -> tuple[dict, dict]:
    return wire.assistant(text), wire.result(text)


# ---------------------------------------------------------------- the fixture
async def test_query_and_client_without_transport_are_scripted(agentsdk_cli) -> None:
    agentsdk_cli.session().turn(wire.system_init(), *answer("4"))
    agentsdk_cli.session().turn(*answer("6")).turn(*answer("8"))
    assert await ask("2+2?") == "4"
    assert await chat("3+3?", "4+4?") == ["6", "8"]
    prompts = [[p.data["message"]["content"] for p in t.log.prompts] for t in agentsdk_cli.transports]
    assert prompts == [["2+2?"], ["3+3?", "4+4?"]]
    assert [t.log.counts["close"] for t in agentsdk_cli.transports] == [1, 1]


def test_an_app_that_runs_its_own_event_loop_is_scripted(agentsdk_cli) -> None:
    """A command-line entry point: ``asyncio.run(...)`` around ``query()``, inside a plain test."""
    import asyncio

    agentsdk_cli.session().turn(*answer("started"))
    assert asyncio.run(ask("start the job")) == "started"


async def test_a_client_per_request_takes_the_queued_scripts_in_order(agentsdk_cli) -> None:
    for text in ("first", "second", "third"):
        agentsdk_cli.session().turn(*answer(text))
    assert [await chat(f"request {n}") for n in range(3)] == [["first"], ["second"], ["third"]]


async def test_every_session_plays_one_script_to_each_session(agentsdk_cli) -> None:
    agentsdk_cli.every_session().turn(*answer("same"))
    assert [await ask(f"q{n}") for n in range(3)] == ["same"] * 3
    assert len({id(t) for t in agentsdk_cli.transports}) == 3


async def test_queued_scripts_come_before_the_every_session_script(agentsdk_cli) -> None:
    agentsdk_cli.session().turn(*answer("queued"))
    agentsdk_cli.every_session().turn(*answer("every"))
    assert [await ask("a"), await ask("b"), await ask("c")] == ["queued", "every", "every"]


async def test_a_transport_the_code_passes_is_untouched(agentsdk_cli, agentsdk_script, scripted_transport) -> None:
    agentsdk_script.turn(*answer("own"))
    received = [m async for m in query(prompt="p", transport=scripted_transport)]
    assert received[-1].result == "own"
    assert agentsdk_cli.transports == []


async def test_a_session_opened_with_nothing_queued_fails_at_once(agentsdk_backend) -> None:
    cli = ScriptedCLI()  # outside the fixture: its errors call it by its class, not by a fixture the code does not use
    cli.session().turn(*answer("only one"))
    with cli.routing():
        assert await ask("one") == "only one"
        with pytest.raises(ScriptedCLIError, match=r"^ScriptedCLI: .*opened session 2 \(query\(\)\) with no script queued.*ScriptedCLI.session\(\)"):
            await ask("two")
    assert cli.problems() == [
        "the code opened session 2 (query()) with no script queued for it: add ScriptedCLI.session() for each "
        "session, in the order they open, or ScriptedCLI.every_session(script)"
    ]


async def test_a_queued_session_never_opened_fails_the_check(agentsdk_backend) -> None:
    cli = ScriptedCLI()
    cli.session().turn(*answer("used"))
    cli.session().turn(*answer("never asked"))
    with pytest.raises(AssertionError, match=r"1 queued session\(s\) never opened: ScriptedCLI.session\(\) was called 2 time\(s\), the code opened 1"):
        with cli:
            await ask("one")


async def test_a_session_whose_stdout_ended_unanswered_warns_when_the_block_ends(agentsdk_backend) -> None:
    cli = ScriptedCLI()
    cli.session().turn(*answer("answered"))
    cli.session().turn(wire.assistant("no result"))
    with pytest.warns(ScriptWarning) as warned:
        with cli:
            assert await ask("one") == "answered"
            assert await ask("two") is None
    ours = [w for w in warned if w.category is ScriptWarning]  # an old release's anyio may warn of unclosed streams too
    assert [str(w.message) for w in ours] == [
        "session 2's script: stdout ended with 1 prompt(s) unanswered by a result frame (turn0 has no "
        "result frame): a real CLI ends every turn with one, so the code never met the ResultMessage it will meet; end each turn "
        "with wire.result(...) (a script of a CLI that dies mid-turn means it: filter pytest_agentsdk.ScriptWarning)"]
    assert ours[0].filename == __file__  # at the with block, not in the harness


async def test_a_client_the_code_never_closed_warns_and_one_it_closed_does_not(agentsdk_backend) -> None:
    """A real CLI's process outlives a ClaudeSDKClient the code connected and never left."""
    cli = ScriptedCLI(eof="close")
    cli.session().turn(*answer("left open"))
    cli.session().turn(*answer("closed"))
    with pytest.warns(ScriptWarning) as warned:
        with cli:
            leaked = ClaudeSDKClient()
            await leaked.connect()
            await leaked.query("one")
            assert [m async for m in leaked.receive_response()][-1].result == "left open"
            async with ClaudeSDKClient() as client:
                await client.query("two")
                assert [m async for m in client.receive_response()][-1].result == "closed"
    ours = [str(w.message) for w in warned if w.category is ScriptWarning]
    assert ours == ["session 1 (ClaudeSDKClient) was connected and never closed: leave `async with ClaudeSDKClient(...)`, "
                    "or call `await client.disconnect()`; a real CLI's process would keep running"]
    await leaked.disconnect()


async def test_a_session_that_left_frames_undelivered_is_named(agentsdk_backend) -> None:
    cli = ScriptedCLI()
    cli.session().turn(*answer("a")).turn(*answer("b"))
    with cli.routing():
        await ask("one prompt only")
    assert cli.problems() == [
        "session 1 (query()): ScriptedTransport: 2 scripted frame(s) never delivered: turn1[0] assistant (released "
        "when prompt 1 written); turn1[1] result (released when prompt 1 written) (send the prompt that releases "
        "them, or mark the segment optional=True)"
    ]


async def test_the_sdk_transport_is_back_after_routing(agentsdk_backend) -> None:
    import importlib

    modules = [importlib.import_module(name) for name, _ in ROUTES]
    before = [module.SubprocessCLITransport for module in modules]
    cli = ScriptedCLI()
    with pytest.raises(ZeroDivisionError), cli.routing():
        assert [module.SubprocessCLITransport for module in modules] != before
        raise ZeroDivisionError  # the originals come back on an error too
    assert [module.SubprocessCLITransport for module in modules] == before


async def test_a_session_stall_names_the_missing_prompt_of_that_session(agentsdk_backend) -> None:
    cli = ScriptedCLI()
    cli.session().turn(*answer("one"))
    with cli.routing():
        with pytest.raises(Exception, match=r"prompt 1 was never scripted: add a `\.turn\(\.\.\.\)` to session 1's script"):
            await chat("first", "second")
    assert [p.split(": ", 1)[0] for p in cli.problems()] == ["session 1 (ClaudeSDKClient)"]


def test_teardown_fails_on_an_unopened_session_and_stays_quiet_after_a_failure(pytester) -> None:
    pytester.makepyfile(
        """
        import pytest
        from claude_agent_sdk import query
        from pytest_agentsdk import wire

        @pytest.mark.anyio
        async def test_opens_fewer_than_queued(agentsdk_cli):
            agentsdk_cli.session().turn(wire.assistant("a"), wire.result("a"))
            agentsdk_cli.session().turn(wire.assistant("b"), wire.result("b"))
            async for _ in query(prompt="one"):
                pass

        @pytest.mark.anyio
        async def test_fails_itself(agentsdk_cli):
            agentsdk_cli.session()
            assert False, "the test's own failure"
        """
    )
    result = pytester.runpytest_subprocess("-p", "agentsdk", "-p", "anyio", "-k", "asyncio")
    result.assert_outcomes(passed=1, failed=1, errors=1)
    # the fixture's errors call it by the name the test uses
    result.stdout.fnmatch_lines(["*1 queued session(s) never opened: agentsdk_cli.session() was called 2 time(s)*drop the extra session()*"])
    assert "pytest_agentsdk" not in result.stdout.str().split("ERROR at teardown")[1].split("= FAILURES =")[0]


def test_the_readme_example_passes_as_written(pytester, sdk_info) -> None:
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    example = next(block for block in re.findall(r"```python\n(.*?)```", readme, re.S) if "agentsdk_cli" in block)
    pytester.makepyfile(test_example=example)
    outcomes = pytester.runpytest_subprocess("-p", "agentsdk", "-q").parseoutcomes()
    runnable = len(sdk_info.backends())  # asyncio, and trio where the release runs under it
    assert (outcomes.get("passed", 0), outcomes.get("skipped", 0)) == (runnable, 2 - runnable), outcomes


async def test_a_teardown_watch_given_the_router_requires_every_session_closed(agentsdk_backend) -> None:
    """``agentsdk_teardown.transport = agentsdk_cli`` (here: ``assert_clean_teardown(transport=cli)``)
    judges each routed session's close as the bug-1 oracle does, naming each session as the
    router does: exactly those whose transport was never closed (on old releases under trio the
    SDK itself leaves one open: bug 1, named as well)."""
    from pytest_agentsdk import assert_clean_teardown

    cli = ScriptedCLI(eof="close")
    cli.session().turn(*answer("left open"))
    cli.session().turn(*answer("closed"))
    with cli:
        with pytest.raises(AssertionError, match=r"transport_not_closed"):
            async with assert_clean_teardown(transport=cli) as watch:
                leaked = ClaudeSDKClient()
                await leaked.connect()
                await leaked.query("one")
                assert [m async for m in leaked.receive_response()][-1].result == "left open"
                assert await chat("two") == ["closed"]
        named = [event.detail for event in watch.teardown.events if event.channel == "transport_not_closed"]
        assert [label for label, _ in cli.opened()] == ["session 1 (ClaudeSDKClient)", "session 2 (ClaudeSDKClient)"]
        assert named == [f"the SDK never closed the transport of {label}" for label, t in cli.opened() if not t.log.counts["close"]]
        assert named[0] == "the SDK never closed the transport of session 1 (ClaudeSDKClient)"
        await leaked.disconnect()


async def test_a_session_that_stalls_on_a_script_queued_for_another_says_how_sessions_take_them(agentsdk_backend) -> None:
    """Queued for a client then a query, opened as a query then a client: the query meets the
    client's script (eof='close', two turns) and stalls; the diagnosis says which session() it
    took, and the rule."""
    cli = ScriptedCLI(eof="close")
    cli.session().turn(*answer("first")).turn(*answer("second"))  # meant for chat()
    cli.session(Script()).turn(*answer("asked"))  # meant for ask()
    with cli.routing(), pytest.raises(Exception, match="stalled") as stalled:
        await ask("one")
        await chat("two", "three")
    said = str(stalled.value)
    assert "eof='close' with query()" in said
    assert said.endswith("; sessions take the queued scripts in the order they open (session 1, a query(), took "
                         "ScriptedCLI.session() number 1): if the code opens them in another order, queue them in that order"), said


async def test_the_order_hint_counts_queued_scripts_not_sessions(agentsdk_backend) -> None:
    """A session opened with nothing queued takes no script: the next session takes session()
    number 1, and the hint says so."""
    cli = ScriptedCLI(eof="close")
    with cli.routing():
        with pytest.raises(ScriptedCLIError, match="opened session 1"):
            await ask("too early")
        cli.session().turn(*answer("first")).turn(*answer("second"))  # meant for chat()
        cli.session(Script()).turn(*answer("asked"))  # meant for ask()
        with pytest.raises(Exception, match="stalled") as stalled:
            await ask("one")
    assert "(session 2, a query(), took ScriptedCLI.session() number 1)" in str(stalled.value)
