"""The ``agentsdk`` pytest plugin: fixtures that script the Claude Code CLI, markers, options,
report header and terminal summary. Thin by design: the work lives in the other modules.

Loading it imports neither claude_agent_sdk nor trio; the fixtures import them on first use.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import re
import warnings
from collections.abc import Callable, Generator, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .options import BACKENDS, whole_number

if TYPE_CHECKING:
    from .cli_routing import ScriptedCLI
    from .compat import SdkInfo
    from .model_server import ScriptedModel
    from .realcli import Cli, CliSession
    from .observe import TeardownWatch
    from .script import Script
    from .transport import ScriptedTransport
    from .verdict import Result

#: every verdict judged in this session (on xdist's controller: the workers' too), keyed by where
#: its test sits in the collection and its order within the test, so a parallel run reports in the
#: order of a serial one
_RESULTS = pytest.StashKey[list[tuple[int, int, "Result"]]]()
_POSITIONS = pytest.StashKey[dict[str, int]]()
_CALL_REPORT = pytest.StashKey[pytest.TestReport]()
_WATCH = pytest.StashKey["TeardownWatch"]()  # the test's agentsdk_teardown, while it watches
_KNOWN_BUG = pytest.StashKey["KnownBugs"]()  # the agentsdk_known_bug markers that hold on this release
_JUDGED = pytest.StashKey[list["Result"]]()  # what the test's agentsdk_check calls returned
_XPASS_PENDING = pytest.StashKey[bool]()  # a known bug not seen by the call: its teardown's guard may still see it
_WARNINGS_ONLY = pytest.StashKey[str]()  # agentsdk_teardown saw cross_task_close only as warnings do: its message
#: ``--agentsdk-report`` written, and how many verdicts it holds (for the terminal line)
_WRITTEN = pytest.StashKey[int]()
#: the probed release's line for the terminal summary, as xdist workers (which probe it) report it
_WORKERS_SDK_LINE = pytest.StashKey[str]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("agentsdk", "claude-agent-sdk scripted CLI and bug verdicts")
    group.addoption(
        "--agentsdk-report",
        metavar="FILE",
        help="write the verdict JSON of every bug scenario judged in this session to FILE (its directory must "
        "exist; under xdist the workers' verdicts are merged, in collection order)",
    )
    group.addoption(
        "--agentsdk-seed",
        type=whole_number(0, "the seed of every random choice"),
        default=0,
        help="seed for the scenarios judged through the agentsdk_check fixture (default 0)",
    )
    group.addoption(
        "--agentsdk-cli",
        metavar="PATH|VERSION|bundled",
        help="the real Claude Code CLI for the agentsdk_real_cli / agentsdk_cli_session fixtures: a binary, the "
        "SDK wheel's bundled one, or a version installed from npm into the cache (default: bundled)",
    )
    parser.addini(
        "agentsdk_stall_timeout",
        "seconds: a timer due later than this does not keep the scripted CLI from reporting a stall, and a "
        "wait it cannot time (a socket) keeps it from doing so this long at most (default 2; per test: "
        "@pytest.mark.agentsdk(stall_timeout=S))",
        default="",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "agentsdk(eof='end_input'|'close', checkpoints={op: n}, strict=True, stall_timeout=S, allow_loggers=[...], "
        "allow_stderr=[...]): configure agentsdk_script, scripted_transport and agentsdk_cli for this test (strict=False: "
        "no teardown check for undelivered frames; stall_timeout: see the agentsdk_stall_timeout ini option) and "
        "agentsdk_teardown (allow_loggers: your application's loggers, children included; allow_stderr: regexes for "
        "lines it prints); validated at collection",
    )
    config.addinivalue_line(
        "markers",
        "agentsdk_known_bug(bug, releases='SPECIFIER', backends=['trio'], reason=''): the bug is known on releases "
        "matching the PEP 440 specifier (all if omitted), under those backends (all if omitted: the test's anyio_backend "
        "parameter, or asyncio under pytest-asyncio); the test is xfail(strict=True) there, so a fix shows up as a "
        "failure telling you to update the expectation",
    )
    config.stash[_RESULTS] = []
    if not _is_xdist_worker(config):
        _check_report_path(config.getoption("--agentsdk-report"))
    try:
        ini_stall_timeout = config.getini("agentsdk_stall_timeout")
    except (TypeError, ValueError):  # pytest's own check of the ini's type: a TOML number in [tool.pytest]
        raise pytest.UsageError('agentsdk_stall_timeout (ini option): write the seconds as a string, e.g. "5"') from None
    if ini_stall_timeout and _seconds(ini_stall_timeout) is None:  # before anything runs, not in every test's setup
        raise pytest.UsageError(f"agentsdk_stall_timeout = {ini_stall_timeout!r} (ini option): {_GIVE_SECONDS}")


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config) -> None:
    """Async tests need anyio's plugin: load it when plugin autoload is off (``-p agentsdk`` alone).
    Registered under its entry-point name, so ``-p anyio`` stays harmless and ``-p no:anyio`` wins."""
    manager = early_config.pluginmanager
    if manager.has_plugin("anyio") or manager.is_blocked("anyio"):
        return
    from anyio import pytest_plugin

    if not manager.is_registered(pytest_plugin):
        manager.register(pytest_plugin, "anyio")


def _is_xdist_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def _check_report_path(path: str | None) -> None:
    """Fail before anything runs, not with a traceback after the whole session."""
    if not path:
        return
    target = Path(path)
    if target.is_dir():
        raise pytest.UsageError(f"--agentsdk-report={path}: is a directory; give a file name, e.g. {target / 'verdicts.json'}")
    if not target.parent.is_dir():
        raise pytest.UsageError(f"--agentsdk-report={path}: directory {target.parent} does not exist; create it or write elsewhere")


@pytest.hookimpl(trylast=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    """The subject and seed as ``--junitxml`` testsuite properties (verdicts go on each test's testcase)."""
    from _pytest.junitxml import xml_key

    xml = session.config.stash.get(xml_key, None)
    if xml is None:
        return
    xml.add_global_property("agentsdk_sdk_version", _installed_sdk_version() or "not installed")
    xml.add_global_property("agentsdk_cli_version", _bundled_cli_version() or "none bundled")
    xml.add_global_property("agentsdk_seed", str(session.config.getoption("--agentsdk-seed")))


def _installed_sdk_version() -> str | None:
    try:
        return importlib.metadata.version("claude-agent-sdk")
    except importlib.metadata.PackageNotFoundError:
        return None


def _bundled_cli_version() -> str | None:
    """The CLI a wheel bundles, read from the package files without importing the SDK."""
    spec = importlib.util.find_spec("claude_agent_sdk")
    if spec is None or not spec.submodule_search_locations:
        return None
    package = Path(next(iter(spec.submodule_search_locations)))
    if not (package / "_bundled" / "claude").exists():
        return None
    match = re.search(r"__cli_version__\s*=\s*['\"]([^'\"]+)", (package / "_cli_version.py").read_text())
    return match.group(1) if match else None


def pytest_report_header(config: pytest.Config) -> str:
    version = _installed_sdk_version()
    if version is None:
        return "agentsdk: claude-agent-sdk not installed"
    cli = _bundled_cli_version()
    backends = "asyncio, trio" if importlib.util.find_spec("trio") else "asyncio (trio not installed)"
    return f"agentsdk: claude-agent-sdk {version}, CLI {cli or 'none bundled'}; backends: {backends}"


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Generator[None, pytest.CollectReport, pytest.CollectReport]:
    """Every agentsdk marker is validated where its test is collected: a typo must not become an
    xfail that hides a failure. A bad one is a collection error (on xdist's workers too), one line
    per problem, naming the test (once, however many parameters it runs with)."""
    report = yield
    if report.passed:  # once per test function, not once per parameter (asyncio, trio)
        problems = list(dict.fromkeys(f"{item.nodeid.split('[')[0]}: {problem}" for item in report.result
                                      if isinstance(item, pytest.Item) for problem in _marker_problems(item)))
        if problems:
            report.outcome = "failed"
            report.longrepr = "\n".join(problems)
            report.result = []
    return report


@dataclass(frozen=True)
class KnownBugs:
    """The agentsdk_known_bug markers of a test that hold on the installed release."""

    marks: tuple[tuple[str, str | None, tuple[str, ...] | None], ...]  # (bug, releases, backends)
    reason: str

    @property
    def bugs(self) -> tuple[str, ...]:
        return tuple(bug for bug, _, _ in self.marks)

    @property
    def shown(self) -> tuple[type[BaseException], ...]:
        """What the guards raise when one of these bugs shows."""
        from .shown import SHOWN

        return tuple(SHOWN[bug] for bug in self.bugs)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests of known bugs are strict xfails on the releases that have them, for that bug showing
    only: a guard's failure naming it (``raises=``), or ``agentsdk_check`` reproducing it
    (:func:`_judge_known_bug`); any other failure fails."""
    from .shown import SHOWN

    version = _installed_sdk_version()
    for item in items:
        marks = [mark for mark in item.iter_markers("agentsdk_known_bug")
                 if version is not None and mark.args and mark.args[0] in SHOWN and _matches(version, mark.kwargs.get("releases"))
                 and _runs_under(item, _backends(mark))]
        if marks:
            known = KnownBugs(tuple((m.args[0], m.kwargs.get("releases"), _backends(m)) for m in marks),
                              marks[0].kwargs.get("reason") or f"{' and '.join(m.args[0] for m in marks)} known on claude-agent-sdk {version}")
            item.add_marker(pytest.mark.xfail(strict=True, reason=known.reason, raises=known.shown))
            item.stash[_KNOWN_BUG] = known


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    session.config.stash[_POSITIONS] = {item.nodeid: i for i, item in enumerate(session.items)}


#: keyword arguments of each marker
_AGENTSDK_KWARGS = ("eof", "checkpoints", "strict", "stall_timeout", "allow_loggers", "allow_stderr")
_KNOWN_BUG_KWARGS = ("releases", "backends", "reason")


def _backends(mark: pytest.Mark) -> tuple[str, ...] | None:
    """A known-bug marker's ``backends=`` as a tuple (None: every backend)."""
    given = mark.kwargs.get("backends")
    return None if given is None else (given,) if isinstance(given, str) else tuple(given)


def _item_backend(item: pytest.Item) -> str | None:
    """The async backend a test runs under, as collection knows it: asyncio for pytest-asyncio's
    items, the ``anyio_backend`` parameter for anyio's; None when no parameter says (a fixture
    decides at setup, or the test is not async)."""
    if _run_by_pytest_asyncio(item):
        return "asyncio"
    params = getattr(getattr(item, "callspec", None), "params", {})
    if "anyio_backend" in params:
        backend = params["anyio_backend"]
        return backend if isinstance(backend, str) else str(backend[0])
    return None


def _runs_under(item: pytest.Item, backends: tuple[str, ...] | None) -> bool:
    return backends is None or _item_backend(item) in backends


def _marker_problems(item: pytest.Item) -> list[str]:
    """What is wrong with the item's agentsdk / agentsdk_known_bug markers, one line each."""
    problems = []
    for mark in item.iter_markers("agentsdk"):
        problems += _unknown_kwargs("agentsdk", mark.kwargs, _AGENTSDK_KWARGS)
        if mark.args:
            problems.append(f"@pytest.mark.agentsdk takes keyword arguments only ({', '.join(_AGENTSDK_KWARGS)}), got {mark.args!r}")
        problems += _agentsdk_value_problems(mark.kwargs)
    for mark in item.iter_markers("agentsdk_known_bug"):
        problems += _unknown_kwargs("agentsdk_known_bug", mark.kwargs, _KNOWN_BUG_KWARGS)
        problems += _known_bug_problems(mark)
        if "backends" in mark.kwargs and not problems and _item_backend(item) is None:
            problems.append("@pytest.mark.agentsdk_known_bug(backends=...): nothing at collection says which backend this test "
                            "runs under; parametrize anyio_backend (e.g. @pytest.fixture(params=['asyncio', 'trio'])) or drop backends=")
    return problems


def _unknown_kwargs(marker: str, kwargs: Mapping[str, Any], known: tuple[str, ...]) -> list[str]:
    return [f"@pytest.mark.{marker}({name}=...): unknown keyword{_did_you_mean(name, known)}; use {', '.join(known)}"
            for name in kwargs if name not in known]


def _did_you_mean(name: str, known: tuple[str, ...]) -> str:
    from difflib import get_close_matches

    close = get_close_matches(name, known, n=1)
    return f" (did you mean {close[0]}?)" if close else ""


def _agentsdk_value_problems(kwargs: Mapping[str, Any]) -> list[str]:
    from .observe import Allowed
    from .script import Script, ScriptError

    problems = []
    checkpoints = kwargs.get("checkpoints", {})
    if not isinstance(checkpoints, dict):
        problems.append(f"@pytest.mark.agentsdk(checkpoints={checkpoints!r}): give a dict {{operation: checkpoints}}, e.g. {{'read': 2}}")
        checkpoints = {}
    try:
        Script(eof=kwargs.get("eof", "end_input"), checkpoints=checkpoints).validate()
    except ScriptError as exc:
        problems.append(f"@pytest.mark.agentsdk: {exc}")
    if "stall_timeout" in kwargs and _seconds(kwargs["stall_timeout"]) is None:
        problems.append(f"@pytest.mark.agentsdk(stall_timeout={kwargs['stall_timeout']!r}): {_GIVE_SECONDS}")
    if not isinstance(kwargs.get("strict", True), bool):
        problems.append(f"@pytest.mark.agentsdk(strict={kwargs['strict']!r}): give True or False")
    try:
        Allowed.of(kwargs.get("allow_loggers", ()), kwargs.get("allow_stderr", ()))
    except ValueError as exc:
        problems.append(f"@pytest.mark.agentsdk: {exc}")
    return problems


def _known_bug_problems(mark: pytest.Mark) -> list[str]:
    from .bugs import BUG_NAMES

    if len(mark.args) != 1 or not isinstance(mark.args[0], str):
        return [f"@pytest.mark.agentsdk_known_bug{mark.args!r}: give one bug name first, one of {', '.join(BUG_NAMES)}"]
    problems = []
    if mark.args[0] not in BUG_NAMES:
        problems.append(f"@pytest.mark.agentsdk_known_bug({mark.args[0]!r}): unknown bug{_did_you_mean(mark.args[0], BUG_NAMES)}; "
                        f"use one of {', '.join(BUG_NAMES)}")
    releases = mark.kwargs.get("releases")
    if releases is not None and not _is_specifier(releases):
        problems.append(f"@pytest.mark.agentsdk_known_bug(releases={releases!r}): not a PEP 440 specifier such as '<0.1.51'")
    if not isinstance(mark.kwargs.get("reason", ""), str):
        problems.append(f"@pytest.mark.agentsdk_known_bug(reason={mark.kwargs['reason']!r}): give a string")
    backends = mark.kwargs.get("backends")
    if backends is not None:
        from .script import ScriptError, one_of

        if not isinstance(backends, (str, list, tuple)) or not backends:
            problems.append(f"@pytest.mark.agentsdk_known_bug(backends={backends!r}): give a backend or a list of them, "
                            f"e.g. backends=['trio']; use {', '.join(BACKENDS)}")
        else:
            for backend in _backends(mark) or ():
                try:
                    one_of("@pytest.mark.agentsdk_known_bug(backends=...)", backend, BACKENDS)
                except ScriptError as exc:
                    problems.append(str(exc))
    return problems


def _is_specifier(releases: Any) -> bool:
    from packaging.specifiers import InvalidSpecifier, SpecifierSet

    try:
        SpecifierSet(releases)
    except (InvalidSpecifier, TypeError, AttributeError):
        return False
    return isinstance(releases, str) and bool(releases.strip())


def _matches(version: str, releases: str | None) -> bool:
    from packaging.specifiers import SpecifierSet

    return not releases or SpecifierSet(releases).contains(version, prereleases=True)


# ---------------------------------------------------------------- fixtures
def _marker_options(request: pytest.FixtureRequest) -> dict[str, Any]:
    mark = request.node.get_closest_marker("agentsdk")
    return dict(mark.kwargs) if mark else {}


@pytest.fixture
def sdk_info() -> SdkInfo:
    """What the installed claude-agent-sdk is and can do: ``.version``, ``.cli_version`` (the CLI a
    wheel bundles, None for an sdist), ``.features`` found by probing (typed task messages,
    AssistantMessage.stop_reason, trio support, ...), ``.backends()``."""
    if importlib.util.find_spec("claude_agent_sdk") is None:
        pytest.skip("claude-agent-sdk is not installed: pip install claude-agent-sdk")
    from .compat import sdk_info as probe

    return probe()


@pytest.fixture
def agentsdk_script(request: pytest.FixtureRequest) -> Script:
    """An empty Script to fill: ``.turn(*frames)`` answers the next prompt, ``.event(...)`` adds an
    autonomous segment (task lifecycle, the CLI's own turn), ``.reply(subtype, ...)`` scripts a
    control reply. Frame builders are in ``pytest_agentsdk.wire``. ``@pytest.mark.agentsdk(eof=...,
    checkpoints=...)`` configures it; ``eof='close'`` (keep stdout open) suits ClaudeSDKClient."""
    from .script import Script

    options = _marker_options(request)
    return Script(eof=options.get("eof", "end_input"), checkpoints=dict(options.get("checkpoints", {})))


@pytest.fixture
def agentsdk_backend(request: pytest.FixtureRequest, sdk_info: SdkInfo) -> str:
    """The async backend this test runs under (anyio's ``anyio_backend``; ``asyncio`` otherwise, e.g.
    under pytest-asyncio). Skips the test, with the reason, where the installed release cannot run
    under it (0.1.51 to 0.1.66 call asyncio directly and cannot run under trio)."""
    name = "asyncio"
    if "anyio_backend" in request.fixturenames and not _run_by_pytest_asyncio(request.node):
        backend = request.getfixturevalue("anyio_backend")
        name = backend if isinstance(backend, str) else backend[0]
    if reason := sdk_info.backend_unsupported(name):
        pytest.skip(f"claude-agent-sdk {sdk_info.version}: {reason}")
    return name


def _run_by_pytest_asyncio(item: pytest.Item) -> bool:
    """pytest-asyncio runs its items on asyncio whatever ``anyio_backend`` says (auto mode takes
    ``@pytest.mark.anyio`` tests too, ``[trio]`` included)."""
    import sys

    plugin = sys.modules.get("pytest_asyncio.plugin")
    return plugin is not None and isinstance(item, plugin.PytestAsyncioFunction)


@pytest.fixture
def scripted_transport(request: pytest.FixtureRequest, agentsdk_script: Script, agentsdk_backend: str) -> Iterator[ScriptedTransport]:
    """A claude_agent_sdk Transport playing ``agentsdk_script`` (fill the script before connecting):
    pass it as ``query(transport=...)`` or ``ClaudeSDKClient(transport=...)``; ``.log`` records every
    write and every emitted frame with its provenance. After a passing test, teardown fails on scripted
    frames never delivered, unexpected writes, or a stall (disable with ``@pytest.mark.agentsdk(strict=False)``),
    and warns (``pytest_agentsdk.ScriptWarning``) when stdout ended with a prompt no result frame answered.
    Under trio, a release that cannot run there is skipped with the reason (``agentsdk_backend``)."""
    from .script import ScriptWarning
    from .transport import ScriptedTransport

    transport = ScriptedTransport(agentsdk_script, stall_timeout=_stall_timeout(request), script_name="agentsdk_script",
                                  report_stall_once=True)
    yield transport
    if _marker_options(request).get("strict", True) and _call_passed(request):
        _teardown_check(transport.assert_played)
        _warn_at_test(request, [problem] if (problem := transport.results_missing()) else [], ScriptWarning)


@pytest.fixture
def agentsdk_cli(request: pytest.FixtureRequest, agentsdk_backend: str) -> Iterator[ScriptedCLI]:
    """Scripts the CLI for code that never passes ``transport=``: every ``query(prompt=...)`` and
    ``ClaudeSDKClient()`` the test runs plays a Script on a ScriptedTransport of its own.
    ``agentsdk_cli.session()`` returns a Script to fill for the next session (sessions take them in
    the order they open); ``agentsdk_cli.every_session(script)`` plays one script to every session
    once the queue is empty; ``agentsdk_cli.transports`` lists each session's transport (``.log``).
    A session opened with nothing queued fails at once. After a passing test, teardown fails when a
    queued session was never opened, or a session left frames undelivered, wrote something
    unexpected or stalled, and warns (``pytest_agentsdk.ScriptWarning``) when a session's stdout ended
    with a prompt no result frame answered, or a ClaudeSDKClient session was never closed
    (``@pytest.mark.agentsdk(strict=False)``: not checked). The marker's
    ``eof``, ``checkpoints`` and ``stall_timeout`` apply to every session."""
    from .cli_routing import ScriptedCLI
    from .script import ScriptWarning

    options = _marker_options(request)
    cli = ScriptedCLI(eof=options.get("eof", "end_input"), checkpoints=options.get("checkpoints"),
                      stall_timeout=_stall_timeout(request), name="agentsdk_cli")
    with cli.routing():
        yield cli
    if _call_passed(request):
        _teardown_check(lambda: cli.assert_done(strict=options.get("strict", True)))
        if options.get("strict", True):
            _warn_at_test(request, cli.warnings(), ScriptWarning)


def _teardown_check(check: Callable[[], None]) -> None:
    """A fixture's check after the test: its failure is its message alone, not a traceback through
    the plugin's own frames (the message says what to change in the test)."""
    try:
        check()
        return
    except AssertionError as exc:
        problem = str(exc)
    pytest.fail(problem, pytrace=False)  # outside the except: no "during handling" chain


def _warn_at_test(request: pytest.FixtureRequest, problems: list[str], category: type[Warning],
                  as_error: type[AssertionError] | None = None) -> None:
    """Each problem as a ``category`` warning at the test's own line (not this plugin's); under
    ``-W error`` it fails the test with its message, as a teardown check does (raising
    ``as_error``, when given, so a known-bug marker can tell the bug)."""
    code = request.node.function.__code__
    for problem in problems:
        try:
            warnings.warn_explicit(category(problem), category, code.co_filename, code.co_firstlineno)
        except category as exc:
            if as_error is not None:
                raise as_error(f"{category.__name__}: {exc}") from None
            pytest.fail(f"{category.__name__}: {exc}", pytrace=False)


@pytest.fixture(scope="session")
def agentsdk_real_cli(request: pytest.FixtureRequest) -> Cli:
    """The real Claude Code CLI ``--agentsdk-cli`` names (default: the version the installed SDK's
    wheels bundle, from npm into the cache on first use); the test is skipped, with the reason in
    one line, where no CLI binary can be had."""
    from .realcli import CliError, resolve

    try:
        return resolve(request.config.getoption("agentsdk_cli") or "bundled")
    except CliError as exc:
        pytest.skip(f"no real Claude Code CLI: {exc}")


@pytest.fixture
def scripted_model() -> Iterator[ScriptedModel]:
    """A scripted Messages API on 127.0.0.1 (``.url``): queue ``Reply`` objects on ``.main`` and
    ``.subagent`` before the CLI asks; ``.requests`` records every request. Stopped at teardown,
    which fails when a request found nothing queued (the CLI got a 400 naming it)."""
    from .model_server import ScriptedModel

    with ScriptedModel() as model:
        yield model
    if model.unscripted:
        first = model.unscripted[0]
        pytest.fail(f"the CLI made {len(model.unscripted)} request(s) nothing was queued for, first: {first.role} request "
                    f"#{first.index}; queue a Reply on scripted_model.{first.role}", pytrace=False)


@pytest.fixture
def agentsdk_cli_session(agentsdk_real_cli: Cli) -> Iterator[CliSession]:
    """One offline run of the real CLI: ``.options()`` gives the ``ClaudeAgentOptions`` (the SDK's
    own SubprocessCLITransport) and ``.model`` its scripted Messages API; fresh HOME/config/tmp.
    Teardown kills any CLI process still running and removes the directories, and fails when the
    CLI asked for more than was queued."""
    from .realcli import CliError, CliSession

    with CliSession(agentsdk_real_cli) as session:
        yield session
    problem = None
    try:
        session.raise_for_unscripted()
    except CliError as exc:
        problem = str(exc)
    if problem:
        pytest.fail(problem, pytrace=False)


def _stall_timeout(request: pytest.FixtureRequest) -> float:
    """``@pytest.mark.agentsdk(stall_timeout=S)``, else the ``agentsdk_stall_timeout`` ini value, else
    the transport's default."""
    from .transport import STALL_TIMEOUT_S

    raw = _marker_options(request).get("stall_timeout", request.config.getini("agentsdk_stall_timeout") or STALL_TIMEOUT_S)
    seconds = _seconds(raw)
    if seconds is None:  # checked at configure (ini) and collection (marker): a marker applied later
        pytest.fail(f"@pytest.mark.agentsdk(stall_timeout={raw!r}): {_GIVE_SECONDS}", pytrace=False)
    return seconds


#: What a bad stall timeout (ini, marker) is told to be instead.
_GIVE_SECONDS = "give a number of seconds > 0, e.g. 5"


def _seconds(raw: Any) -> float | None:
    """``raw`` as a number of seconds > 0 (a number, or the ini's text of one), else None."""
    try:
        seconds = -1.0 if isinstance(raw, bool) else float(raw)
    except (TypeError, ValueError):
        return None
    return seconds if 0 < seconds < float("inf") else None


def _call_passed(request: pytest.FixtureRequest) -> bool:
    """The test's call phase passed: a teardown check would not repeat its failure."""
    report = request.node.stash.get(_CALL_REPORT, None)
    return report is not None and report.passed


@pytest.fixture
def agentsdk_teardown(request: pytest.FixtureRequest) -> Iterator[TeardownWatch]:
    """Fails a test whose SDK teardown was noisy: a cancel scope exited in another task, "Task
    exception was never retrieved", errors closing async generators, unraisable exceptions, stray
    cancellations. The error names the manifestation and the test. A teardown that showed only what
    warnings show (a ResourceWarning, an async generator garbage collected unfinished: ``check``'s
    ``warnings`` tier) warns instead (``pytest_agentsdk.TeardownWarning``; ``-W error`` fails on it).
    Set ``agentsdk_teardown.transport = scripted_transport`` to also require the CLI closed once
    (``= agentsdk_cli``: every session it routed).
    Your application's own logging and output are not the SDK's: allow them with
    ``@pytest.mark.agentsdk(allow_loggers=["myapp"], allow_stderr=[r"^retrying"])`` or
    ``agentsdk_teardown.allow(loggers=..., stderr=...)``; the plugin's own objects are never blamed.
    Not checked when the test itself failed (its own error says more)."""
    from .observe import TeardownWatch
    from .shown import CrossTaskCloseShown, TeardownWarning

    options = _marker_options(request)
    watch = TeardownWatch(pattern=request.node.name, allow_loggers=options.get("allow_loggers", ()),
                          allow_stderr=options.get("allow_stderr", ()), echo_stderr=True)
    with watch:
        request.node.stash[_WATCH] = watch
        yield watch
    del request.node.stash[_WATCH]
    if _call_passed(request):
        def warn(quiet: str) -> None:
            request.node.stash[_WARNINGS_ONLY] = quiet
            _warn_at_test(request, [quiet], TeardownWarning, as_error=CrossTaskCloseShown)

        watch.check(warn=warn)


@pytest.hookimpl(wrapper=True, trylast=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    """pytest's capture takes ``sys.stderr`` at the start of the call: agentsdk_teardown takes it
    back for the test's body (what is printed still shows in pytest's report)."""
    watch = item.stash.get(_WATCH, None)
    if watch is None:
        return (yield)
    with watch.capturing_stderr():
        return (yield)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call":
        item.stash[_CALL_REPORT] = report
    known = item.stash.get(_KNOWN_BUG, None)
    if known is not None and not item.config.option.runxfail:
        _judge_known_bug(item, call, report, known)
    return report


def _judge_known_bug(item: pytest.Item, call: pytest.CallInfo[None], report: pytest.TestReport, known: KnownBugs) -> None:
    """The known bug's xfail, as the test showed it. pytest's xfail (``raises=``) already took a
    guard's failure naming the bug. A test whose ``agentsdk_check`` reproduced the bug shows it,
    passing or failing an assert. A guard that checks at teardown may still show it after a
    passing call: the verdict waits for the teardown (the call is then not counted, see
    :func:`pytest_report_teststatus`). Anything else that failed is not the bug, and says so."""
    shown = known.shown
    reproduced = any(r.bug in known.bugs and r.failed for r in item.stash.get(_JUDGED, []))
    if report.when == "call":
        xpass = report.failed and str(report.longrepr).startswith("[XPASS(strict)]")
        asserted = call.excinfo is not None and isinstance(call.excinfo.value, AssertionError)
        if reproduced and (xpass or asserted):
            report.outcome, report.wasxfail = "skipped", known.reason  # type: ignore[attr-defined]
        elif xpass:
            report.outcome, report.longrepr = "passed", None
            report.agentsdk_deferred = True  # type: ignore[attr-defined]
            item.stash[_XPASS_PENDING] = True
        elif report.failed and call.excinfo is not None:
            names = " or ".join(known.bugs)
            report.sections.append(("agentsdk_known_bug", f"not {names} showing: agentsdk_known_bug covers only a guard's "
                                    f"{' / '.join(c.__name__ for c in shown)} or agentsdk_check reproducing it, so this fails"))
    elif report.when == "teardown" and item.stash.get(_XPASS_PENDING, False):
        raised = [] if call.excinfo is None else _leaves(call.excinfo.value)
        if raised and all(isinstance(exc, shown) for exc in raised):
            report.outcome, report.wasxfail = "skipped", known.reason  # type: ignore[attr-defined]
        elif report.passed:
            report.outcome, report.longrepr = "failed", "; ".join(_fixed_known_bug(item, *mark) for mark in known.marks)
            report.agentsdk_xpass = True  # type: ignore[attr-defined]


def _leaves(exc: BaseException) -> list[BaseException]:
    """The exceptions an exception group holds (several teardowns failed), or ``exc`` itself."""
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaves(inner)]
    return [exc]


@pytest.hookimpl(tryfirst=True)
def pytest_report_teststatus(report: pytest.TestReport, config: pytest.Config) -> tuple[str, str, str] | None:
    """A known bug's test is counted once: its call waiting for the teardown's verdict is not
    counted, and a strict XPASS found at teardown is a failure, as one found by the call."""
    if getattr(report, "agentsdk_deferred", False):
        return "", "", ""
    if getattr(report, "agentsdk_xpass", False):
        return "failed", "F", "FAILED"
    return None


def _fixed_known_bug(item: pytest.Item, bug: str, releases: str | None, backends: tuple[str, ...] | None) -> str:
    """What a strict XPASS of a known bug means and which marker to change."""
    version = _installed_sdk_version()
    if bug == "cross_task_close" and (quiet := item.stash.get(_WARNINGS_ONLY, None)):
        return (f"[XPASS(strict)] {bug} showed only as warnings do on claude-agent-sdk {version} (TeardownWarning: "
                f"{quiet.splitlines()[0]}), which check counts as reproduced only with --warnings-as-errors: run with "
                "-W error::pytest_agentsdk.TeardownWarning to hold this test to it, or drop the marker for this release")
    marker = (f"@pytest.mark.agentsdk_known_bug({bug!r}" + (f", releases={releases!r}" if releases else "")
              + (f", backends={list(backends)!r}" if backends else "") + ")")
    backend = _item_backend(item)
    under = f" under {backend}" if backends else ""
    change = f"change releases= to exclude {version}" if releases else "add releases= that excludes it"
    only_here = f"; if only under {backend}, drop it from backends=" if backends else ""
    return (f"[XPASS(strict)] {bug} did not reproduce on claude-agent-sdk {version}{under}, which {marker} on {item.nodeid} "
            f"lists as having it: if {version} fixed it, {change} (e.g. releases='<{version}'){only_here}")


@pytest.fixture
def agentsdk_check(request: pytest.FixtureRequest, sdk_info: SdkInfo) -> Any:
    """Judge a registered bug scenario on the installed SDK from a test:
    ``result = agentsdk_check("cross_task_close", backend="asyncio", examples=20)`` returns the
    verdict Result (``.verdict``, ``.manifestations``, ``.counterexample``, ``.replay``) and records it
    for ``--agentsdk-report``, the terminal summary and ``--junitxml`` (an ``agentsdk_verdict``
    property of the test)."""
    from . import bugs

    seed = request.config.getoption("--agentsdk-seed")
    position = request.config.stash.get(_POSITIONS, {}).get(request.node.nodeid, -1)
    judged = 0

    def check(bug: str, backend: str = "asyncio", model: str | None = None, examples: int = 20) -> Result:
        nonlocal judged
        if bug not in bugs.BUG_NAMES:
            raise ValueError(f"agentsdk_check({bug!r}): unknown bug{_did_you_mean(str(bug), bugs.BUG_NAMES)}; "
                             f"use one of {', '.join(bugs.BUG_NAMES)}")
        scenario = bugs.scenario(bug)
        if backend not in BACKENDS:
            raise ValueError(f"agentsdk_check(backend={backend!r}): use one of {', '.join(BACKENDS)}")
        if model is not None and model not in scenario.models:
            raise ValueError(f"agentsdk_check({bug!r}, model={model!r}): " + (
                f"use one of {', '.join(map(str, scenario.models))}" if any(scenario.models) else "this bug has no models; leave model out"))
        if type(examples) is not int or examples < 1:
            raise ValueError(f"agentsdk_check(examples={examples!r}): give a whole number >= 1 (searched examples, after the sweep)")
        result = scenario.judge(sdk_info, backend, model, seed, examples)
        request.node.stash.setdefault(_JUDGED, []).append(result)
        request.config.stash[_RESULTS].append((position, judged, result))
        judged += 1
        shown = f" ({', '.join(result.manifestations)})" if result.manifestations else ""
        request.node.user_properties.append(("agentsdk_verdict", f"{bug}/{model or '-'}/{backend}: {result.verdict}{shown}"))
        return result

    return check


# ---------------------------------------------------------------- reporting
def pytest_sessionfinish(session: pytest.Session) -> None:
    """An xdist worker hands its verdicts to the controller; the controller (or a serial run) writes
    ``--agentsdk-report``."""
    config = session.config
    results = _in_collection_order(config)
    if _is_xdist_worker(config):
        workeroutput: dict[str, Any] = getattr(config, "workeroutput")  # set by xdist on its workers
        workeroutput["agentsdk_results"] = [(position, order, _plain(r)) for position, order, r in results]
        if line := _probed_sdk_line():
            workeroutput["agentsdk_sdk_line"] = line
        return
    path = config.getoption("--agentsdk-report")
    if path:
        Path(path).write_text(json.dumps(_report(config, [r for *_, r in results]).to_json(), indent=2, default=str))
        config.stash[_WRITTEN] = len(results)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """xdist: a worker finished; take its verdicts."""
    from .verdict import Result

    output = getattr(node, "workeroutput", {})
    for position, order, data in output.get("agentsdk_results", []):
        node.config.stash[_RESULTS].append((position, order, Result(**data)))
    if "agentsdk_sdk_line" in output:
        node.config.stash[_WORKERS_SDK_LINE] = output["agentsdk_sdk_line"]


def _in_collection_order(config: pytest.Config) -> list[tuple[int, int, Result]]:
    judged: list[tuple[int, int, Result]] = config.stash.get(_RESULTS, [])
    return sorted(judged, key=lambda entry: entry[:2])


def _plain(result: Result) -> dict[str, Any]:
    """A Result as JSON types only, as the report file holds it (what xdist can send)."""
    from dataclasses import asdict

    plain: dict[str, Any] = json.loads(json.dumps(asdict(result), default=str))
    return plain


def _report(config: pytest.Config, results: list[Result]) -> Any:
    from .compat import installed_from
    from .verdict import CheckReport, runtime_versions, subject_info

    return CheckReport(subject_info(_installed_sdk_version(), _bundled_cli_version(), installed_from(), runtime=runtime_versions()),
                       config.getoption("--agentsdk-seed"), results)


def _probed_sdk_line() -> str | None:
    """The release and its probed features, when a test of this process probed them (never probed here for it)."""
    from sys import modules

    compat = modules.get("pytest_agentsdk.compat")
    if compat is None or not compat.sdk_info.cache_info().currsize:
        return None
    info = compat.sdk_info()
    features = ", ".join(f"{k}={'yes' if v else 'no'}" for k, v in sorted(info.features.items()))
    return f"claude-agent-sdk {info.version} (CLI {info.cli_version or 'none bundled'}): {features}"


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    if line := _probed_sdk_line() or config.stash.get(_WORKERS_SDK_LINE, None):
        terminalreporter.write_sep("-", "agentsdk")
        terminalreporter.write_line(line)
    results = [r for *_, r in _in_collection_order(config)]
    if results:
        from .verdict import render_table

        terminalreporter.write_line(render_table(_report(config, results)))
    if _WRITTEN in config.stash:
        terminalreporter.write_line(f"agentsdk: {config.stash[_WRITTEN]} verdict(s) written to {config.getoption('--agentsdk-report')}")
