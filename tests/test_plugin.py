"""The agentsdk plugin as users load it: fixtures listed, removable, cheap to load, markers honoured."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytest_plugins = ["pytester"]


def test_fixtures_are_listed_with_docs_and_removed_by_no(pytester) -> None:
    listed = pytester.runpytest_subprocess("-p", "agentsdk", "--fixtures").stdout.str()
    for name in ("agentsdk_script", "scripted_transport", "sdk_info", "agentsdk_backend", "agentsdk_check"):
        assert f"{name} -- " in listed
    assert "Teardown fails on scripted frames" in listed
    removed = pytester.runpytest_subprocess("-p", "no:agentsdk", "--fixtures").stdout.str()
    assert "scripted_transport" not in removed


def test_plugin_loads_with_autoload_disabled(pytester, monkeypatch) -> None:
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    assert "scripted_transport -- " in pytester.runpytest_subprocess("-p", "agentsdk", "--fixtures").stdout.str()


def test_loading_the_plugin_does_not_import_the_sdk() -> None:
    code = "import sys, pytest_agentsdk.plugin; print('claude_agent_sdk' in sys.modules, 'trio' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split() == ["False", "False"]


def test_report_header_names_the_release(pytester, sdk_info) -> None:
    header = pytester.runpytest_subprocess("-p", "agentsdk").stdout.str()
    assert f"agentsdk: claude-agent-sdk {sdk_info.version}, CLI {sdk_info.cli_version or 'none bundled (sdist)'}; backends:" in header


def test_known_bug_marker_is_strict_xfail_on_matching_releases(pytester, sdk_info) -> None:
    pytester.makepyfile(
        f"""
        import pytest

        @pytest.mark.agentsdk_known_bug("premature_completion", releases="=={sdk_info.version}")
        def test_still_broken():
            assert False

        @pytest.mark.agentsdk_known_bug("premature_completion", releases="=={sdk_info.version}")
        def test_fixed_now():
            pass

        @pytest.mark.agentsdk_known_bug("premature_completion", releases="<0.0.1")
        def test_other_release():
            pass
        """
    )
    outcomes = pytester.runpytest_subprocess("-p", "agentsdk").parseoutcomes()
    assert outcomes == {"xfailed": 1, "failed": 1, "passed": 1}


def test_known_bug_marker_rejects_a_bad_specifier(pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.agentsdk_known_bug("x", releases="someday")
        def test_x():
            pass
        """
    )
    result = pytester.runpytest_subprocess("-p", "agentsdk")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "not a PEP 440 specifier" in result.stderr.str()


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


def test_agentsdk_check_results_go_to_the_report_and_summary(pytester, sdk_info) -> None:
    pytester.makepyfile(
        """
        def test_premature_completion_on_installed(agentsdk_check):
            result = agentsdk_check("premature_completion", examples=5)
            assert result.verdict in ("reproduced", "fixed", "not_applicable")
        """
    )
    report = pytester.path / "verdicts.json"
    result = pytester.runpytest_subprocess("-p", "agentsdk", f"--agentsdk-report={report}", "--agentsdk-seed=3")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*premature_completion*asyncio*", f"agentsdk: verdicts written to {report}"])
    data = json.loads(report.read_text())
    assert data["seed"] == 3 and data["subject"]["sdk_version"] == sdk_info.version
    assert [r["bug"] for r in data["results"]] == ["premature_completion"]
