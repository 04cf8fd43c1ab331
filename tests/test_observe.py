"""observe.py on real asyncio / trio runs: every channel a teardown problem reaches users through,
the cross-task cancel-scope cause on both backends, hooks restored, and assert_clean_teardown."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import io
import logging
import logging.config
import re
import sys
import traceback
import warnings
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import anyio
import pytest

from pytest_agentsdk import ScriptedTransport, TeardownWatch, assert_clean_teardown, observe, wire
from pytest_agentsdk.observe import Teardown, generator_name, run_observed, scrub
from pytest_agentsdk.script import Script

BACKENDS = ["asyncio", "trio"]


async def task_group_across_yield() -> AsyncIterator[int]:
    """The seed's shape in six lines: a task group's scope held open across ``yield``."""
    async with anyio.create_task_group():
        yield 1
        yield 2


async def leave_early(teardown: Teardown) -> None:
    """``break`` and return: the generator is finalized by the loop, in another task."""
    async for _ in task_group_across_yield():
        break


@pytest.mark.parametrize("backend", BACKENDS)
def test_cross_task_scope_exit_is_named_on_both_backends(backend: str) -> None:
    _, teardown = run_observed(leave_early, backend)
    assert "cancel_scope_cross_task" in teardown.manifestations, teardown.to_json()


def test_clean_run_leaves_nothing_and_every_hook_is_restored() -> None:
    hooks = (sys.unraisablehook, warnings.showwarning, sys.stderr, logging.Logger.callHandlers, list(logging.getLogger().handlers),
             list(warnings.filters))
    enabled = gc.isenabled()

    async def main(teardown: Teardown) -> str:
        await anyio.sleep(0)
        return "done"

    for backend in BACKENDS:
        value, teardown = run_observed(main, backend)
        assert (value, teardown.manifestations, teardown.events) == ("done", [], [])
    assert (sys.unraisablehook, warnings.showwarning, sys.stderr, logging.Logger.callHandlers, list(logging.getLogger().handlers),
            list(warnings.filters)) == hooks
    assert gc.isenabled() == enabled


class _RaisesOnDelete:
    def __del__(self) -> None:
        raise ValueError("from __del__")


@pytest.mark.parametrize("backend", BACKENDS)
def test_each_channel_gets_its_stable_name(backend: str) -> None:
    async def noisy(teardown: Teardown) -> None:
        warnings.warn("unclosed thing", ResourceWarning)
        logging.getLogger("some.library").error("something failed during shutdown")
        print("Traceback (most recent call last): ...", file=sys.stderr)
        _RaisesOnDelete()
        raise KeyError("consumer body")

    _, teardown = run_observed(noisy, backend)
    assert teardown.manifestations == ["consumer_error", "logged_error", "resource_warning", "stderr_output", "unraisable"]


def test_what_a_crashed_trio_spills_is_evidence_of_the_crash_not_manifestations() -> None:
    """A system task that raises crashes trio itself (TrioInternalError: ``run_error``). What is
    collected after that depends on where the loop died, not on the code under test, so it is kept
    as evidence of the crash; without a crash the same object is an ``unraisable`` (see above)."""

    async def crashes(teardown: Teardown) -> None:
        import trio

        async def dies() -> None:
            raise RuntimeError("system task died")

        cycle: list[object] = [_RaisesOnDelete()]
        cycle.append(cycle)  # collected after the run, i.e. after the crash
        del cycle
        trio.lowlevel.spawn_system_task(dies)
        await trio.sleep_forever()

    _, teardown = run_observed(crashes, "trio")
    assert "run_error" in teardown.manifestations and "unraisable" not in teardown.manifestations, teardown.to_json()
    assert any("from __del__" in line for line in teardown.to_json()["after_crash"]), teardown.to_json()


def test_asyncio_loop_channels() -> None:
    """Never-retrieved task exceptions, pending tasks destroyed, asyncio.run's shutdown errors."""

    async def main(teardown: Teardown) -> None:
        async def fail() -> None:
            raise RuntimeError("background failure")

        async def fail_on_cancel() -> None:
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                raise OSError("cleanup failed") from None

        asyncio.ensure_future(fail())
        asyncio.ensure_future(fail_on_cancel())
        await asyncio.sleep(0)

    _, teardown = run_observed(main, "asyncio")
    assert teardown.manifestations == ["shutdown_task_error", "task_exception_never_retrieved"]
    assert [p.rsplit(".", 1)[-1] for p in teardown.pending_at_return] == ["fail_on_cancel"]


def test_cancellation_the_consumer_never_asked_for() -> None:
    async def main(teardown: Teardown) -> None:
        consumer = asyncio.current_task()
        assert consumer is not None
        asyncio.get_running_loop().call_soon(consumer.cancel)
        await asyncio.Event().wait()

    _, teardown = run_observed(main, "asyncio")
    assert teardown.manifestations == ["stray_cancellation"]


async def two() -> AsyncIterator[int]:
    yield 1
    yield 2


@pytest.mark.parametrize("declared", [True, False])
def test_trio_gc_warning_is_a_note_only_for_what_the_consumer_abandoned(declared: bool) -> None:
    """trio warns about every unexhausted generator it collects: the consumer's own is its doing."""

    async def abandon(teardown: Teardown) -> None:
        gen = two()
        await gen.__anext__()
        if declared:
            teardown.abandoned.add(generator_name(gen))

    _, teardown = run_observed(abandon, "trio")
    assert teardown.manifestations == ([] if declared else ["asyncgen_gc_warning"])
    assert len(teardown.notes) == (1 if declared else 0)


def test_transport_checks() -> None:
    teardown = Teardown()
    teardown.check_transport(ScriptedTransport(Script().turn(wire.result())))
    teardown.check_result(False)
    assert teardown.manifestations == ["result_missing", "transport_not_closed"]


def test_scrub_removes_what_differs_between_identical_runs() -> None:
    assert scrub("<Task pending name='Task-29'> at 0x7fc3734b5ee0 scope 7fc3734b5ee0") == "<Task pending name='Task-N'> at 0x… scope 0x…"


def test_scrub_shows_files_of_this_harness_and_of_installed_packages_where_they_lie_in_them() -> None:
    """Reports of the same run compare equal from any checkout and any env."""
    here = Path(observe.__file__)
    text = f"warned ({here.parent / 'bugs' / 'x.py'}:132) in /srv/env/lib/python3.11/site-packages/anyio/_core.py"
    assert scrub(text) == "warned (pytest_agentsdk/bugs/x.py:132) in anyio/_core.py"
    root = here.parent.parent  # the checkout, or site-packages when the harness is installed from a wheel (tox)
    elsewhere = f"/mnt{root}/other.py"  # contains that path, is not in it
    # kept whole; but a path through any site-packages is shown from there on, wherever it lies
    assert scrub(elsewhere) == (elsewhere if root.name != "site-packages" else "other.py")


# ---------------------------------------------------------------- assert_clean_teardown
def test_helper_runs_main_and_names_manifestation_and_pattern() -> None:
    async def main() -> None:
        await leave_early(Teardown())

    with pytest.raises(AssertionError, match=r"consumer pattern 'break_then_return': .*cancel_scope_cross_task") as info:
        assert_clean_teardown(main, backend="asyncio", pattern="break_then_return")
    assert "check --bug cross_task_close" in str(info.value)


def test_helper_returns_the_value_of_a_clean_run() -> None:
    async def main() -> int:
        return 42

    assert assert_clean_teardown(main, backend="trio") == 42


def test_context_manager_around_the_users_own_asyncio_run() -> None:
    """No handler is installed on the user's loop: its default handler's log record is caught."""
    with pytest.raises(AssertionError, match=r"'cli main': cancel_scope_cross_task"):
        with assert_clean_teardown(pattern="cli main"):
            asyncio.run(leave_early(Teardown()))


@pytest.mark.anyio
async def test_async_context_manager_passes_a_clean_session(anyio_backend: str) -> None:
    transport = ScriptedTransport(Script().turn(wire.result()))
    async with assert_clean_teardown(transport=transport, pattern="connect/close"):
        await transport.connect()
        await transport.close()


@pytest.mark.anyio
async def test_async_context_manager_fails_when_the_cli_is_never_closed(anyio_backend: str) -> None:
    transport = ScriptedTransport(Script().turn(wire.result()))
    with pytest.raises(AssertionError, match="transport_not_closed"):
        async with assert_clean_teardown(transport=transport, pattern="forgot to close"):
            await anyio.sleep(0)


# ---------------------------------------------------------------- what the check blames
def noisy_app() -> None:
    """An application that logs and prints its own errors around a clean SDK-free run."""
    logging.getLogger("myapp.db").error("write failed, retrying")
    print("retrying in 3 s", file=sys.stderr)
    try:
        raise ConnectionError("myapp: upstream gone")
    except ConnectionError:
        traceback.print_exc()
    asyncio.run(asyncio.sleep(0))


def test_the_applications_own_logs_and_output_fail_the_check_until_allowed() -> None:
    with pytest.raises(AssertionError, match=r"logged_error, stderr_output.*\n.*myapp.db: write failed") as info:
        with assert_clean_teardown(pattern="app"):
            noisy_app()
    assert "allow_loggers=['myapp']" in str(info.value)
    with assert_clean_teardown(pattern="app", allow_loggers=["myapp"], allow_stderr=[r"^retrying in \d+ s$", r"^ConnectionError: myapp:"]):
        noisy_app()


def test_an_allowed_logger_covers_its_children_not_its_namesakes() -> None:
    with pytest.raises(AssertionError, match=r"logged_error: myapplication: boom"):
        with assert_clean_teardown(allow_loggers=["myapp"]):
            logging.getLogger("myapp.worker").error("fine")
            logging.getLogger("myapplication").error("boom")


def test_allowing_a_line_does_not_excuse_a_traceback_that_passes_through_it() -> None:
    """A traceback is judged by its exception line: allowing the app's file names allows nothing."""
    watch = TeardownWatch(allow_stderr=["myapp"])
    with watch:
        print('Traceback (most recent call last):\n  File "/src/myapp/main.py", line 3, in main\n'
              "RuntimeError: Attempted to exit cancel scope in a different task than it was entered in", file=sys.stderr)
    assert "cancel_scope_cross_task" in (watch.failure() or "")


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_line_printed_after_a_traceback_does_not_hide_its_cause(backend: str) -> None:
    async def main(teardown: Teardown) -> None:
        print("Traceback (most recent call last):\n  File \"x.py\", line 1, in <module>\n"
              "RuntimeError: Attempted to exit cancel scope in a different task than it was entered in\n\nbye", file=sys.stderr)

    _, teardown = run_observed(main, backend)
    assert teardown.manifestations == ["cancel_scope_cross_task", "stderr_output"]
    assert [e.detail for e in teardown.events] == [
        "RuntimeError: Attempted to exit cancel scope in a different task than it was entered in (3 lines)", "bye"]


@pytest.mark.parametrize("reconfigure", [
    lambda: logging.basicConfig(force=True, level=logging.INFO),
    lambda: logging.config.dictConfig({"version": 1, "disable_existing_loggers": False,
                                       "handlers": {"out": {"class": "logging.StreamHandler", "stream": "ext://sys.stdout"}},
                                       "root": {"handlers": ["out"], "level": "WARNING"}}),
], ids=["basicConfig(force=True)", "dictConfig"])
def test_capture_survives_the_app_replacing_the_root_handlers(reconfigure: Callable[[], None]) -> None:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        with pytest.raises(AssertionError, match=r"'reconfigures logging': cancel_scope_cross_task") as info:
            with assert_clean_teardown(pattern="reconfigures logging"):
                reconfigure()
                asyncio.run(leave_early(Teardown()))
        assert "your application's own" not in str(info.value)  # asyncio's record: the SDK's doing
    finally:
        for handler in root.handlers[:]:
            root.removeHandler(handler)
        for handler in saved[0]:
            root.addHandler(handler)
        root.setLevel(saved[1])


def test_output_of_a_handler_the_app_made_in_the_window_passes_through_after_it() -> None:
    root = logging.getLogger()
    saved = list(root.handlers)
    outside = io.StringIO()
    try:
        with contextlib.redirect_stderr(outside):
            with TeardownWatch():
                logging.basicConfig(force=True, format="%(message)s")
            logging.getLogger("after").warning("printed after the window")
    finally:
        for handler in root.handlers[:]:
            root.removeHandler(handler)
        for handler in saved:
            root.addHandler(handler)
    assert outside.getvalue() == "printed after the window\n"


def test_the_plugins_own_objects_are_never_blamed() -> None:
    """trio warns about ScriptedTransport's stdout generator when the SDK abandons it: recorded, not blamed."""
    import trio

    async def abandon_the_reader() -> None:
        transport = ScriptedTransport(Script(eof="close").turn(wire.result()))
        await transport.connect()
        await transport.write('{"type": "user"}\n')
        reader = transport.read_messages()
        await reader.__anext__()
        del reader
        gc.collect()

    watch = TeardownWatch()
    with watch:
        trio.run(abandon_the_reader)
    assert [e.subject for e in watch.teardown.events] == ["pytest_agentsdk.transport.ScriptedTransport._stdout"]
    assert watch.failure() is None


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"allow_loggers": "myapp"}, "allow_loggers: give a list of strings"),
    ({"allow_loggers": [""]}, "allow_loggers: '' is not a logger name"),
    ({"allow_stderr": ["(unclosed"]}, "allow_stderr: '(unclosed' is not a regular expression"),
])
def test_bad_allow_patterns_are_named(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        assert_clean_teardown(**kwargs)


def _leaves_a_resource_warning() -> None:
    warnings.warn("unclosed transport <_UnixSubprocessTransport>", ResourceWarning)


async def _leaves_a_resource_warning_async() -> None:
    _leaves_a_resource_warning()


def test_a_teardown_that_shows_only_warnings_warns_at_the_caller_on_every_path() -> None:
    """check's warnings tier: a TeardownWarning, not a failure, named at the user's own line
    (the with block, the call), whichever way the guard is used."""
    from pytest_agentsdk.shown import TeardownWarning

    async def inside_a_loop() -> None:
        async with assert_clean_teardown(pattern="p"):
            _leaves_a_resource_warning()

    paths: dict[str, Callable[[], Any]] = {
        "with": lambda: _with_block(),
        "async with": lambda: anyio.run(inside_a_loop),
        "call": lambda: assert_clean_teardown(_leaves_a_resource_warning_async, pattern="p"),
    }
    for name, path in paths.items():
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            path()
        ours = [w for w in seen if w.category is TeardownWarning]
        assert len(ours) == 1, name
        assert str(ours[0].message).startswith("teardown showed warnings in consumer pattern 'p': resource_warning"), name
        assert ours[0].filename == __file__, (name, ours[0].filename)


def _with_block() -> None:
    with assert_clean_teardown(pattern="p"):
        _leaves_a_resource_warning()


def test_a_loud_manifestation_beside_a_warning_fails_and_warns_of_nothing() -> None:
    from pytest_agentsdk.shown import CrossTaskCloseShown, TeardownWarning

    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with pytest.raises(CrossTaskCloseShown, match=r"^unclean teardown in consumer pattern 'p': .*resource_warning"):
            with assert_clean_teardown(pattern="p"):
                _leaves_a_resource_warning()
                logging.getLogger("asyncio").error("Task exception was never retrieved")
    assert [w for w in seen if w.category is TeardownWarning] == []


def test_a_warning_the_watch_does_not_judge_is_shown_as_ever() -> None:
    """A DeprecationWarning or the harness's own ScriptWarning says nothing about teardown: the
    watch passes it on, never swallows it."""
    with pytest.warns(UserWarning, match="the application's own"):
        with TeardownWatch():
            warnings.warn("the application's own", UserWarning)
