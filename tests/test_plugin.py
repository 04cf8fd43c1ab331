"""The agentsdk plugin as users load it: fixtures listed, removable, cheap to load, markers honoured."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from xml.etree import ElementTree

import pytest

from pytest_agentsdk import verdict

pytest_plugins = ["pytester"]


def test_fixtures_are_listed_with_docs_and_removed_by_no(pytester) -> None:
    listed = pytester.runpytest_subprocess("-p", "agentsdk", "--fixtures").stdout.str()
    for name in ("agentsdk_script", "scripted_transport", "sdk_info", "agentsdk_backend", "agentsdk_check"):
        assert f"{name} -- " in listed
    assert "teardown fails on scripted" in listed
    removed = pytester.runpytest_subprocess("-p", "no:agentsdk", "--fixtures").stdout.str()
    assert "scripted_transport" not in removed


ONE_TURN_ON_THE_RUNNING_BACKEND = """
    import pytest
    import sniffio
    from pytest_agentsdk import wire

    @pytest.mark.anyio
    async def test_one_turn(agentsdk_script, scripted_transport, agentsdk_backend):
        from claude_agent_sdk import query
        agentsdk_script.turn(wire.assistant("a"), wire.result("a"))
        assert [m async for m in query(prompt="one", transport=scripted_transport)][-1].result == "a"
        assert agentsdk_backend == sniffio.current_async_library()
    """


@pytest.mark.parametrize("plugins", [["-p", "agentsdk"], ["-p", "agentsdk", "-p", "anyio"], ["-p", "anyio", "-p", "agentsdk"]],
                         ids=" ".join)
def test_plugin_runs_async_tests_with_autoload_disabled(pytester, monkeypatch, plugins: list[str]) -> None:
    """``-p agentsdk`` alone brings anyio's plugin; naming it too is harmless."""
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    pytester.makepyfile(ONE_TURN_ON_THE_RUNNING_BACKEND)
    assert "scripted_transport -- " in pytester.runpytest_subprocess(*plugins, "--fixtures").stdout.str()
    outcomes = pytester.runpytest_subprocess(*plugins, "-k", "asyncio").parseoutcomes()
    assert outcomes == {"passed": 1, "deselected": 1}


def test_a_stall_s_traceback_ends_at_the_sdk_s_read_and_says_why(pytester) -> None:
    """The scripted CLI's own frames (its stdout generator, its wait) are hidden from a stall's
    traceback: it ends where the SDK reads the transport, under the diagnosis."""
    pytester.makepyfile("""
        import pytest
        from claude_agent_sdk import ClaudeSDKClient
        from pytest_agentsdk import wire

        @pytest.mark.anyio
        async def test_waits_forever(agentsdk_cli, anyio_backend):
            agentsdk_cli.session().turn(wire.assistant("thinking"))
            async with ClaudeSDKClient() as client:
                await client.query("hi")
                async for _ in client.receive_response():
                    pass
        """)
    result = pytester.runpytest_subprocess("-p", "agentsdk", "-k", "asyncio")
    out = result.stdout.str()
    assert result.parseoutcomes().get("failed") == 1, out
    # releases before typed errors re-raise it as a plain Exception carrying the same diagnosis
    assert re.search(r"^E +(pytest_agentsdk\.transport\.ScriptStalled|Exception): scripted CLI stalled: "
                     r"the SDK awaits more output after prompt 0", out, re.M), out
    assert "turn0 has no result frame" in out
    assert "_await_progress" not in out and "pytest_agentsdk/transport.py" not in out, out


def test_agentsdk_backend_is_the_backend_actually_running_under_pytest_asyncio_auto_mode(pytester) -> None:
    """Auto mode runs ``@pytest.mark.anyio`` tests on asyncio, ``[trio]`` items included."""
    pytester.makepyfile(ONE_TURN_ON_THE_RUNNING_BACKEND)
    result = pytester.runpytest_subprocess("-p", "agentsdk", "-o", "asyncio_mode=auto", "-W", "ignore::pytest.PytestConfigWarning")
    assert result.parseoutcomes() == {"passed": 2}, result.stdout.str()


def test_loading_the_plugin_does_not_import_the_sdk() -> None:
    code = "import sys, pytest_agentsdk.plugin; print('claude_agent_sdk' in sys.modules, 'trio' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split() == ["False", "False"]


def test_report_header_names_the_release(pytester, sdk_info) -> None:
    header = pytester.runpytest_subprocess("-p", "agentsdk").stdout.str()
    assert f"agentsdk: claude-agent-sdk {sdk_info.version}, CLI {sdk_info.cli_version or 'none bundled'}; backends:" in header


def test_known_bug_marker_is_strict_xfail_on_matching_releases(pytester, sdk_info) -> None:
    pytester.makepyfile(
        f"""
        import logging
        import pytest
        from pytest_agentsdk.shown import PrematureCompletionShown

        @pytest.mark.agentsdk_known_bug("premature_completion", releases="=={sdk_info.version}")
        def test_still_broken():
            raise PrematureCompletionShown("1 task(s) reported completed but their agent stopped mid-work")

        @pytest.mark.agentsdk_known_bug("premature_completion", releases="=={sdk_info.version}")
        def test_fixed_now():
            pass

        @pytest.mark.agentsdk_known_bug("premature_completion", releases="<0.0.1")
        def test_other_release():
            pass

        @pytest.mark.agentsdk_known_bug("late_task_notification")
        def test_fixed_on_every_release():
            pass

        @pytest.mark.agentsdk_known_bug("premature_completion")
        def test_broken_otherwise():
            {{}}["no such key"]  # not the bug: never hidden by its xfail

        @pytest.mark.agentsdk_known_bug("late_task_notification")
        def test_judged_reproduced(agentsdk_check):
            agentsdk_check("late_task_notification", model="notify-only", examples=1)  # reproduces on every release: the bug shows

        @pytest.mark.agentsdk_known_bug("cross_task_close")
        def test_seen_at_teardown(agentsdk_teardown):
            logging.getLogger("sdk").error("Task exception was never retrieved")  # what agentsdk_teardown flags, after the call

        @pytest.mark.agentsdk_known_bug("late_task_notification")
        def test_reproduced_then_broken(agentsdk_check):
            agentsdk_check("late_task_notification", model="notify-only", examples=1)
            {{}}["typo"]  # a bug of the test's own, after the check: not hidden

        @pytest.mark.agentsdk_known_bug("premature_completion")
        @pytest.mark.agentsdk_known_bug("cross_task_close")
        def test_two_known_bugs():
            raise PrematureCompletionShown("either bug showing is the known one")

        @pytest.fixture
        def own_guard():
            yield
            from pytest_agentsdk.shown import LateTaskNotificationShown
            raise LateTaskNotificationShown("a guard of the application's, run at teardown")

        @pytest.mark.agentsdk_known_bug("late_task_notification")
        def test_own_teardown_guard(own_guard):
            pass
        """
    )
    result = pytester.runpytest_subprocess("-p", "agentsdk", "-rA")
    assert result.parseoutcomes() == {"xfailed": 5, "failed": 4, "passed": 1}  # each test counted once
    version = sdk_info.version
    result.stdout.fnmatch_lines([
        f"*[[]XPASS(strict)[]] premature_completion did not reproduce on claude-agent-sdk {version}, which "
        f"@pytest.mark.agentsdk_known_bug('premature_completion', releases='=={version}') on "
        f"test_known_bug_marker_is_strict_xfail_on_matching_releases.py::test_fixed_now lists as having it: "
        f"if {version} fixed it, change releases= to exclude {version} (e.g. releases='<{version}')",
        f"*[[]XPASS(strict)[]] late_task_notification did not reproduce on claude-agent-sdk {version}, which "
        f"@pytest.mark.agentsdk_known_bug('late_task_notification') on *::test_fixed_on_every_release lists as having it: "
        f"if {version} fixed it, add releases= that excludes it (e.g. releases='<{version}')",
    ])
    outcomes: dict[str, set[str]] = {}
    for line in result.stdout.lines:  # the -rA summary: "XFAIL FILE::TEST - reason" (pytest 9.2: "XFAIL at teardown of ...")
        words = line.split()
        if words[:1] and words[0] in ("PASSED", "FAILED", "XFAIL", "ERROR"):
            test = next((w for w in words if "::" in w), None)
            if test is not None:
                outcomes.setdefault(test.split("::")[-1], set()).add(words[0])
    assert outcomes == {"test_still_broken": {"XFAIL"}, "test_fixed_now": {"FAILED"}, "test_other_release": {"PASSED"},
                        "test_fixed_on_every_release": {"FAILED"}, "test_broken_otherwise": {"FAILED"},
                        "test_judged_reproduced": {"XFAIL"}, "test_seen_at_teardown": {"XFAIL"},
                        "test_reproduced_then_broken": {"FAILED"}, "test_two_known_bugs": {"XFAIL"}, "test_own_teardown_guard": {"XFAIL"}}
    runxfail = pytester.runpytest_subprocess("-p", "agentsdk", "--runxfail", "-k", "judged_reproduced or still_broken")
    assert runxfail.parseoutcomes() == {"passed": 1, "failed": 1, "deselected": 8}  # --runxfail: as if unmarked
    result.stdout.fnmatch_lines(["*not premature_completion showing: agentsdk_known_bug covers only a guard's PrematureCompletionShown "
                                 "or agentsdk_check reproducing it, so this fails*"])


BUG_NAMES = "cross_task_close, late_task_notification, premature_completion"
AGENTSDK_KWARGS = "eof, checkpoints, strict, stall_timeout, allow_loggers, allow_stderr"


@pytest.mark.parametrize(("marker", "problem"), [
    ('agentsdk_known_bug("premature_completon")',
     f"@pytest.mark.agentsdk_known_bug('premature_completon'): unknown bug (did you mean premature_completion?); use one of {BUG_NAMES}"),
    ("agentsdk_known_bug()", f"@pytest.mark.agentsdk_known_bug(): give one bug name first, one of {BUG_NAMES}"),
    ('agentsdk_known_bug("premature_completion", release="<0.2")',
     "@pytest.mark.agentsdk_known_bug(release=...): unknown keyword (did you mean releases?); use releases, backends, reason"),
    ('agentsdk_known_bug("cross_task_close", backends=["tiro"])',
     "@pytest.mark.agentsdk_known_bug(backends=...): 'tiro' is not one of asyncio, trio (did you mean 'trio'?)"),
    ('agentsdk_known_bug("cross_task_close", backends=3)',
     "@pytest.mark.agentsdk_known_bug(backends=3): give a backend or a list of them, e.g. backends=['trio']; use asyncio, trio"),
    ('agentsdk_known_bug("cross_task_close", backends="trio")',  # test_marked is not async: nothing says its backend
     "@pytest.mark.agentsdk_known_bug(backends=...): nothing at collection says which backend this test runs under; "
     "parametrize anyio_backend (e.g. @pytest.fixture(params=['asyncio', 'trio'])) or drop backends="),
    ('agentsdk_known_bug("premature_completion", releases="someday")',
     "@pytest.mark.agentsdk_known_bug(releases='someday'): not a PEP 440 specifier such as '<0.1.51'"),
    ('agentsdk_known_bug("premature_completion", releases=0.2)',
     "@pytest.mark.agentsdk_known_bug(releases=0.2): not a PEP 440 specifier such as '<0.1.51'"),
    ('agentsdk_known_bug("premature_completion", reason=3)', "@pytest.mark.agentsdk_known_bug(reason=3): give a string"),
    ('agentsdk(eoff="close")', f"@pytest.mark.agentsdk(eoff=...): unknown keyword (did you mean eof?); use {AGENTSDK_KWARGS}"),
    ('agentsdk("close")', f"@pytest.mark.agentsdk takes keyword arguments only ({AGENTSDK_KWARGS}), got ('close',)"),
    ('agentsdk(eof="bogus")', "@pytest.mark.agentsdk: eof: 'bogus' is not one of end_input, close"),
    ('agentsdk(checkpoints="lots")', "@pytest.mark.agentsdk(checkpoints='lots'): give a dict {operation: checkpoints}, e.g. {'read': 2}"),
    ('agentsdk(checkpoints={"reed": 1})', "@pytest.mark.agentsdk: checkpoints.reed: unknown operation; use one of connect, write, read, end_input, close"),
    ('agentsdk(checkpoints={"read": -1})', "@pytest.mark.agentsdk: checkpoints.read: -1 must be a whole number >= 0"),
    ('agentsdk(strict="no")', "@pytest.mark.agentsdk(strict='no'): give True or False"),
    ('agentsdk(stall_timeout="soon")', "@pytest.mark.agentsdk(stall_timeout='soon'): give a number of seconds > 0, e.g. 5"),
    ("agentsdk(stall_timeout=0)", "@pytest.mark.agentsdk(stall_timeout=0): give a number of seconds > 0, e.g. 5"),
    ('agentsdk(allow_loggers="myapp")', "@pytest.mark.agentsdk: allow_loggers: give a list of strings, e.g. allow_loggers=['myapp']"),
    ('agentsdk(allow_stderr=["(x"])', "@pytest.mark.agentsdk: allow_stderr: '(x' is not a regular expression (missing ), unterminated subpattern at position 0)"),
], ids=lambda value: value if "(" in value and "@" not in value else "")
def test_a_bad_marker_is_a_collection_error_naming_the_test(pytester, marker: str, problem: str) -> None:
    pytester.makepyfile(test_marked=f"""
        import pytest

        @pytest.mark.{marker}
        def test_marked():
            pass

        def test_unmarked():
            pass
        """)
    result = pytester.runpytest("-p", "agentsdk", "-p", "no:asyncio")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*ERROR collecting test_marked.py*", f"test_marked.py::test_marked: {problem}"], consecutive=True)
    assert "Traceback" not in result.stdout.str() + result.stderr.str()


def test_a_known_bug_on_some_backends_is_an_xfail_there_only(pytester, sdk_info) -> None:
    """``backends=`` holds the marker to the backends named, by the test's anyio_backend parameter:
    the bug showing under trio is the known one there; the same failure under asyncio fails; a
    pass under trio is a strict XPASS that says which backend and what to change. A bad marker
    on a test that runs under both is named once."""
    if sdk_info.backend_unsupported("trio"):
        pytest.skip(f"claude-agent-sdk {sdk_info.version} cannot run under trio")
    pytester.makeconftest(
        """
        import pytest

        @pytest.fixture(params=["asyncio", "trio"])
        def anyio_backend(request):
            return request.param
        """
    )
    pytester.makepyfile(
        test_backends="""
        import pytest
        from pytest_agentsdk.shown import CrossTaskCloseShown

        pytestmark = pytest.mark.anyio

        @pytest.mark.agentsdk_known_bug("cross_task_close", backends=["trio"])
        async def test_broken_under_trio(anyio_backend):
            raise CrossTaskCloseShown("the cancel scope exited in another task")

        @pytest.mark.agentsdk_known_bug("cross_task_close", backends="trio")
        async def test_clean_under_trio(anyio_backend):
            pass
        """,
        test_bad_backend="""
        import pytest

        @pytest.mark.anyio
        @pytest.mark.agentsdk_known_bug("cross_task_close", backends=["curio"])
        async def test_marked(anyio_backend):
            pass
        """,
    )
    result = pytester.runpytest_subprocess("-p", "agentsdk", "-p", "anyio", "-p", "no:asyncio", "-rA", "test_backends.py")
    outcomes = {line.split()[1].split("::")[-1]: line.split()[0] for line in result.stdout.lines
                if line.split()[:1] and line.split()[0] in ("PASSED", "FAILED", "XFAIL")}
    assert outcomes == {"test_broken_under_trio[asyncio]": "FAILED", "test_broken_under_trio[trio]": "XFAIL",
                        "test_clean_under_trio[asyncio]": "PASSED", "test_clean_under_trio[trio]": "FAILED"}, result.stdout.str()
    result.stdout.fnmatch_lines([f"*[[]XPASS(strict)[]] cross_task_close did not reproduce on claude-agent-sdk {sdk_info.version} under "
                                 "trio, which @pytest.mark.agentsdk_known_bug('cross_task_close', backends=[[]'trio'[]]) on "
                                 "*test_clean_under_trio[[]trio[]] lists as having it*; if only under trio, drop it from backends="])
    bad = pytester.runpytest_subprocess("-p", "agentsdk", "-p", "anyio", "-p", "no:asyncio", "test_bad_backend.py")
    named = [line for line in bad.stdout.lines if line.startswith("test_bad_backend.py::test_marked")]
    assert named == ["test_bad_backend.py::test_marked: @pytest.mark.agentsdk_known_bug(backends=...): 'curio' is not one of "
                     "asyncio, trio (did you mean 'trio'?)"], bad.stdout.str()


def test_every_bad_marker_is_named_and_good_ones_pass_collection(pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        pytestmark = pytest.mark.agentsdk(stall_timeout=5, eof="close", checkpoints={"read": 1}, strict=False,
                                          allow_loggers=["myapp"], allow_stderr=[r"^retrying"])

        @pytest.mark.agentsdk_known_bug("cross_task_close", releases=">=0.1.44", reason="upstream #1")
        def test_good():
            pass

        @pytest.mark.agentsdk(eof="never")
        @pytest.mark.agentsdk_known_bug("nope")
        def test_two_problems():
            pass
        """
    )
    xdist = importlib.util.find_spec("xdist") is not None  # the [test] extra installs it; release envs may not
    for args in ((), ("-n", "2")) if xdist else ((),):  # xdist's workers collect: the same error reaches the controller
        result = pytester.runpytest_subprocess("-p", "agentsdk", "-p", "no:benchmark", *args)
        assert result.ret != pytest.ExitCode.OK
        # each problem once as the error says it (with CI set, pytest's summary repeats the message whole)
        problems = list(dict.fromkeys(line for line in result.stdout.lines if line.startswith("test_every_bad_marker")))
        assert [line.split(": ", 1)[1] for line in problems] == [
            "@pytest.mark.agentsdk: eof: 'never' is not one of end_input, close",
            f"@pytest.mark.agentsdk_known_bug('nope'): unknown bug; use one of {BUG_NAMES}",
        ], result.stdout.str()
    pytester.makepyfile(test_every_bad_marker_is_named_and_good_ones_pass_collection="""
        import pytest

        @pytest.mark.agentsdk(stall_timeout=5, eof="close", checkpoints={"read": 1}, strict=False, allow_loggers=["myapp"])
        @pytest.mark.agentsdk_known_bug("cross_task_close", releases=">=0.1.44", reason="upstream #1")
        def test_good():
            pass
        """)
    assert pytester.runpytest("-p", "agentsdk", "-p", "no:asyncio", "--collect-only", "-q").ret == pytest.ExitCode.OK


def test_undelivered_frames_fail_the_test_at_teardown(pytester) -> None:
    pytester.makepyfile(
        """
        import pytest
        from pytest_agentsdk import wire

        @pytest.mark.anyio
        async def test_forgets_second_turn(agentsdk_script, scripted_transport):
            from claude_agent_sdk import query
            agentsdk_script.turn(wire.assistant("a"), wire.result("a"))
            agentsdk_script.turn(wire.assistant("b"), wire.result("b"))
            async for _ in query(prompt="one", transport=scripted_transport):
                pass
        """
    )
    result = pytester.runpytest_subprocess("-p", "agentsdk", "-p", "anyio", "-k", "asyncio")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*2 scripted frame(s) never delivered: turn1[[]0[]]*mark the segment optional=True*"])
    assert "pytest_agentsdk" not in result.stdout.str().split("ERROR at teardown")[1].split("short test summary")[0], \
        "the failure is its message, not a traceback through the plugin"


def test_a_turn_without_a_result_frame_warns_where_query_would_not_say(pytester) -> None:
    """query() ends at EOF whether or not the turn had a result: a script without one passes code
    that a real CLI's ResultMessage would break, so it warns at the test's line (a client session
    stalls instead), for the scripted transport and for every session agentsdk_cli routes. Not when
    the code left the turn itself, and not in place of a failure; a filter silences it."""
    pytester.makepyfile(
        """
        import pytest
        from claude_agent_sdk import ClaudeSDKClient, query
        from pytest_agentsdk import wire

        async def show_text(transport=None):
            async for message in query(prompt="hi", transport=transport):
                print(message.content[0].text)  # no ResultMessage has .content

        @pytest.mark.anyio
        async def test_transport(agentsdk_script, scripted_transport):
            agentsdk_script.turn(wire.assistant("hi"))
            await show_text(scripted_transport)

        @pytest.mark.anyio
        async def test_routed(agentsdk_cli):
            agentsdk_cli.session().turn(wire.assistant("hi"))
            await show_text()

        @pytest.mark.anyio
        async def test_never_scripted(agentsdk_cli):
            agentsdk_cli.session()
            await show_text()

        @pytest.mark.anyio
        @pytest.mark.filterwarnings("ignore::pytest_agentsdk.ScriptWarning")
        async def test_dies_mid_turn(agentsdk_script, scripted_transport):
            agentsdk_script.turn(wire.assistant("hi"))
            await show_text(scripted_transport)

        @pytest.mark.anyio
        async def test_leaves_the_turn(agentsdk_script, scripted_transport):
            agentsdk_script.turn(wire.assistant("hi"))
            async with ClaudeSDKClient(transport=scripted_transport) as client:
                await client.query("hi")
                async for message in client.receive_messages():
                    break

        @pytest.mark.anyio
        async def test_fails_as_well(agentsdk_cli):
            agentsdk_cli.session().turn(wire.assistant("hi"))
            agentsdk_cli.session().turn(wire.assistant("a"), wire.result("a")).turn(wire.assistant("b"), wire.result("b"))
            await show_text()
            async for _ in query(prompt="one prompt of two"):
                pass

        @pytest.mark.anyio
        async def test_ended(agentsdk_script, scripted_transport):
            agentsdk_script.turn(wire.assistant("hi"), wire.result("hi"))
            with pytest.raises(AttributeError):
                await show_text(scripted_transport)
        """
    )
    result = pytester.runpytest_subprocess("-p", "agentsdk", "-p", "anyio", "-k", "asyncio", "-W", "error::pytest_agentsdk.ScriptWarning")
    result.assert_outcomes(passed=7, errors=4)  # a test that warns passes, then errs at teardown (-W error)
    result.stdout.fnmatch_lines([
        "*_ ERROR at teardown of test_transport*_", "ScriptWarning: agentsdk_script: stdout ended with 1 prompt(s) unanswered by a result "
        "frame (turn0 has no result frame): a real CLI ends every turn with one*",
        "*_ ERROR at teardown of test_routed*_", "ScriptWarning: session 1's script: stdout ended with 1 prompt(s)*",
        "*_ ERROR at teardown of test_never_scripted*_", "*(prompt 0 was never scripted)*",
        "*_ ERROR at teardown of test_fails_as_well*_", "*session 2 (query()): ScriptedTransport: 2 scripted frame(s) never delivered*"])
    assert "test_leaves_the_turn" not in result.stdout.str() and "test_dies_mid_turn" not in result.stdout.str()
    assert "pytest_agentsdk/" not in result.stdout.str().split("= ERRORS =")[1], "a message, not a traceback through the plugin"
    warned = pytester.runpytest_subprocess("-p", "agentsdk", "-p", "anyio", "-k", "asyncio and transport")
    warned.assert_outcomes(passed=1, warnings=1)  # at the test's own line (its first decorator's), not the plugin's
    warned.stdout.fnmatch_lines(["*test_a_turn_without_a_result_frame_warns_where_query_would_not_say.py:9: ScriptWarning: agentsdk_script*"])


def test_agentsdk_teardown_blames_only_what_the_application_did_not_allow(pytester) -> None:
    pytester.makepyfile(
        """
        import logging
        import sys
        import pytest

        def app():
            logging.basicConfig(force=True)  # an app reconfiguring logging keeps nothing from the check
            logging.getLogger("myapp.db").error("write failed, retrying")
            print("retrying in 1 s", file=sys.stderr)

        @pytest.mark.agentsdk(allow_loggers=["myapp"], allow_stderr=[r"^retrying in \\d+ s$"])
        def test_allowed_by_marker(agentsdk_teardown):
            app()

        def test_allowed_in_the_test(agentsdk_teardown):
            agentsdk_teardown.allow(loggers=["myapp"], stderr=["^retrying"])
            app()

        def test_not_allowed(agentsdk_teardown):
            app()
        """
    )
    result = pytester.runpytest_subprocess("-p", "agentsdk")
    result.assert_outcomes(passed=3, errors=1)
    result.stdout.fnmatch_lines([
        "*unclean teardown in consumer pattern 'test_not_allowed': logged_error, stderr_output",
        "*- logged_error: myapp.db: write failed, retrying",
        "*- stderr_output: retrying in 1 s",
        "*your application's own logging or output? allow it: @pytest.mark.agentsdk(allow_loggers=*",
    ])


def test_agentsdk_teardown_fails_a_noisy_test_and_passes_a_quiet_one(pytester) -> None:
    pytester.makepyfile(
        """
        import asyncio
        import pytest

        async def boom():
            raise RuntimeError("Attempted to exit cancel scope in a different task than it was entered in")

        def test_noisy(agentsdk_teardown):
            async def main():
                asyncio.get_running_loop().create_task(boom())
                await asyncio.sleep(0)
            asyncio.run(main())

        def test_quiet(agentsdk_teardown):
            asyncio.run(asyncio.sleep(0))
        """
    )
    result = pytester.runpytest_subprocess("-p", "agentsdk")
    result.assert_outcomes(passed=2, errors=1)  # test_noisy's call passed; its teardown errored
    result.stdout.fnmatch_lines(["*unclean teardown in consumer pattern 'test_noisy': cancel_scope_cross_task*"])


#: A test whose teardown shows only a ResourceWarning, with ``MARKER`` above it; and the two ways to run
#: it: warnings shown, and the guard's TeardownWarning made an error.
WARNINGS_ONLY_TEST = """
    import warnings
    import pytest

    MARKER
    def test_leaves_a_warning(agentsdk_teardown):
        warnings.warn("unclosed transport <_UnixSubprocessTransport>", ResourceWarning)
    """
SHOWN, AS_ERRORS = ("-W", "default::ResourceWarning"), ("-W", "default::ResourceWarning", "-W", "error::pytest_agentsdk.TeardownWarning")


def test_agentsdk_teardown_warns_of_what_only_warnings_show_and_fails_on_it_under_w_error(pytester) -> None:
    """A ResourceWarning alone is ``check``'s ``warnings`` tier, not ``reproduced``: the guard passes
    the test with a TeardownWarning in the summary, and ``-W error`` fails it with that message."""
    pytester.makepyfile(WARNINGS_ONLY_TEST.replace("MARKER", ""))
    warned = "*TeardownWarning: teardown showed warnings in consumer pattern 'test_leaves_a_warning': resource_warning*"
    shown = pytester.runpytest_subprocess("-p", "agentsdk", *SHOWN)
    shown.assert_outcomes(passed=1, warnings=1)
    shown.stdout.fnmatch_lines([warned])
    failed = pytester.runpytest_subprocess("-p", "agentsdk", *AS_ERRORS)
    failed.assert_outcomes(passed=1, errors=1)
    failed.stdout.fnmatch_lines([warned])


def test_a_known_cross_task_close_that_shows_only_warnings_says_so_and_xfails_when_warnings_are_errors(pytester) -> None:
    pytester.makepyfile(WARNINGS_ONLY_TEST.replace("MARKER", '@pytest.mark.agentsdk_known_bug("cross_task_close")'))
    shown = pytester.runpytest_subprocess("-p", "agentsdk", *SHOWN)
    shown.assert_outcomes(failed=1, warnings=1)
    shown.stdout.fnmatch_lines(["*XPASS(strict)] cross_task_close showed only as warnings do on claude-agent-sdk *--warnings-as-errors*"])
    pytester.runpytest_subprocess("-p", "agentsdk", *AS_ERRORS).assert_outcomes(xfailed=1)


JUDGING_TESTS = """
    def test_late_task_notification_both_models(agentsdk_check):
        for model in ("notify-only", "wake-parent"):
            agentsdk_check("late_task_notification", model=model, examples=1)

    def test_premature_completion(agentsdk_check):
        assert agentsdk_check("premature_completion", examples=1).verdict in ("reproduced", "fixed", "not_applicable")

    def test_judges_nothing():
        pass
    """


def junit_properties(path) -> tuple[dict[str, str], list[tuple[str, str, str]]]:
    """(testsuite properties, (test name, property, value) per testcase property) of a --junitxml file."""
    root = ElementTree.parse(path).getroot()
    suite = {p.get("name"): p.get("value") for p in root.iterfind("testsuite/properties/property")}
    cases = [(case.get("name"), p.get("name"), p.get("value")) for case in root.iter("testcase") for p in case.iter("property")]
    return suite, sorted(cases)


def test_agentsdk_check_results_go_to_the_report_summary_and_junitxml(pytester, sdk_info) -> None:
    pytester.makepyfile(JUDGING_TESTS)
    report, junit = pytester.path / "verdicts.json", pytester.path / "junit.xml"
    result = pytester.runpytest_subprocess("-p", "agentsdk", f"--agentsdk-report={report}", "--agentsdk-seed=3", f"--junitxml={junit}")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["*late_task_notification*notify-only*asyncio*", "*late_task_notification*wake-parent*asyncio*",
                                 "*premature_completion*-*asyncio*", f"agentsdk: 3 verdict(s) written to {report}"])
    data = json.loads(report.read_text())
    assert data["seed"] == 3 and data["subject"]["sdk_version"] == sdk_info.version
    assert data["subject"]["runtime"] == verdict.runtime_versions()
    assert data["subject"]["cli_version"] == sdk_info.cli_version  # what the header says, not a claim of its own
    assert [(r["bug"], r["model"]) for r in data["results"]] == [
        ("late_task_notification", "notify-only"), ("late_task_notification", "wake-parent"), ("premature_completion", None)]
    suite, cases = junit_properties(junit)
    assert suite == {"agentsdk_sdk_version": sdk_info.version, "agentsdk_cli_version": sdk_info.cli_version or "none bundled",
                     "agentsdk_seed": "3"}
    assert cases == sorted(
        (test, "agentsdk_verdict", f"{r['bug']}/{r['model'] or '-'}/asyncio: {r['verdict']}"
         + (f" ({', '.join(r['manifestations'])})" if r["manifestations"] else ""))
        for test, r in zip(["test_late_task_notification_both_models"] * 2 + ["test_premature_completion"], data["results"]))


def test_xdist_workers_verdicts_merge_into_the_same_report_as_a_serial_run(pytester) -> None:
    pytest.importorskip("xdist", reason="pytest-xdist is not installed here (the [test] extra installs it)")
    pytester.makepyfile(JUDGING_TESTS)
    serial, parallel = pytester.path / "serial.json", pytester.path / "parallel.json"
    runs = {}
    for path, args in ((serial, ()), (parallel, ("-n", "2", "-p", "no:benchmark"))):
        junit = path.with_suffix(".xml")
        runs[path] = pytester.runpytest_subprocess("-p", "agentsdk", f"--agentsdk-report={path}", f"--junitxml={junit}", *args)
        runs[path].assert_outcomes(passed=3)
    assert json.loads(parallel.read_text()) == json.loads(serial.read_text())
    assert len(json.loads(serial.read_text())["results"]) == 3
    assert junit_properties(parallel.with_suffix(".xml")) == junit_properties(serial.with_suffix(".xml"))
    table = [line for line in runs[serial].stdout.lines if line.startswith(("bug ", "late_task_notification ", "premature_completion "))]
    assert len(table) == 4 and [line for line in runs[parallel].stdout.lines if line in table] == table
    runs[parallel].stdout.fnmatch_lines([f"agentsdk: 3 verdict(s) written to {parallel}"])
    # the release's probed features, which only the workers probed, as a serial run prints them
    (features,) = [line for line in runs[serial].stdout.lines if line.startswith("claude-agent-sdk ") and "trio=" in line]
    assert features in runs[parallel].stdout.lines


@pytest.mark.parametrize(("where", "problem"), [
    ("missing/verdicts.json", "directory missing does not exist; create it or write elsewhere"),
    (".", "is a directory; give a file name, e.g. verdicts.json"),
])
def test_a_report_path_that_cannot_be_written_is_a_usage_error_before_anything_runs(pytester, where: str, problem: str) -> None:
    pytester.makepyfile("def test_runs(tmp_path_factory):\n    open('ran', 'w').close()\n")
    result = pytester.runpytest_subprocess("-p", "agentsdk", f"--agentsdk-report={where}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert [line for line in result.stderr.lines if line.startswith("ERROR")] == [f"ERROR: --agentsdk-report={where}: {problem}"]
    assert "Traceback" not in result.stderr.str()
    assert not (pytester.path / "ran").exists()


@pytest.mark.parametrize("value", ["abc", "0", "-1", "nan"])
def test_a_bad_stall_timeout_ini_value_is_a_usage_error_before_anything_runs(pytester, value: str) -> None:
    pytester.makepyfile("def test_runs(tmp_path_factory):\n    open('ran', 'w').close()\n")
    result = pytester.runpytest_subprocess("-p", "agentsdk", "-o", f"agentsdk_stall_timeout={value}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert [line for line in result.stderr.lines if line.startswith("ERROR")] == [
        f"ERROR: agentsdk_stall_timeout = {value!r} (ini option): give a number of seconds > 0, e.g. 5"]
    assert "Traceback" not in result.stderr.str()
    assert not (pytester.path / "ran").exists()


def test_a_stall_timeout_written_as_a_toml_number_is_a_usage_error_saying_how_to_write_it(pytester) -> None:
    pytester.makepyprojecttoml("[tool.pytest]\nagentsdk_stall_timeout = 5\n")  # pytest's native table types its values
    pytester.makepyfile("def test_runs():\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "agentsdk")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    (error,) = [line for line in result.stderr.lines if line.startswith("ERROR")]
    # ours, or (pytest >= 9.2, which checks an ini's type itself) pytest's: one line either way
    assert error == 'ERROR: agentsdk_stall_timeout (ini option): write the seconds as a string, e.g. "5"' or (
        "agentsdk_stall_timeout" in error and "expects a string" in error), error
    assert "Traceback" not in result.stderr.str()


def test_the_plugin_s_report_names_the_bundled_cli(monkeypatch, pytestconfig) -> None:
    from pytest_agentsdk import plugin

    monkeypatch.setattr(plugin, "_bundled_cli_version", lambda: "2.1.0")
    report = plugin._report(pytestconfig, [])
    assert report.subject["cli_version"] == "2.1.0"
    assert verdict.render_table(report).startswith(f"claude-agent-sdk {report.subject['sdk_version']} (CLI 2.1.0)")


@pytest.mark.parametrize(("call", "problem"), [
    (lambda check: check("premature_completon"), "agentsdk_check('premature_completon'): unknown bug (did you mean premature_completion?)"),
    (lambda check: check("cross_task_close", backend="curio"), "agentsdk_check(backend='curio'): use one of asyncio, trio"),
    (lambda check: check("late_task_notification", model="psychic"), "agentsdk_check('late_task_notification', model='psychic'): use one of"),
    (lambda check: check("cross_task_close", model="notify-only"), "this bug has no models; leave model out"),
    (lambda check: check("cross_task_close", examples=0), "agentsdk_check(examples=0): give a whole number >= 1"),
])
def test_agentsdk_check_names_a_bad_argument(agentsdk_check, call, problem: str) -> None:
    with pytest.raises(ValueError) as raised:
        call(agentsdk_check)
    assert str(raised.value).startswith(problem) or problem in str(raised.value)


def test_a_scripted_transport_the_code_never_used_says_so_at_teardown(pytester) -> None:
    pytester.makepyfile(
        """
        import pytest
        from claude_agent_sdk import query
        from pytest_agentsdk import wire

        @pytest.mark.anyio
        async def test_both_fixtures(agentsdk_cli, agentsdk_script, scripted_transport):
            agentsdk_script.turn(wire.result("x"))
            agentsdk_cli.session().turn(wire.result("y"))
            assert [m async for m in query(prompt="t")][-1].result == "y"

        @pytest.mark.anyio
        async def test_requested_but_unscripted(scripted_transport):
            pass
        """
    )
    result = pytester.runpytest_subprocess("-p", "agentsdk", "-p", "anyio", "-k", "asyncio")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["ScriptedTransport: never connected: the code under test did not use it; pass it as *"
                                 "(for code that opens its own sessions, script agentsdk_cli instead)"])
