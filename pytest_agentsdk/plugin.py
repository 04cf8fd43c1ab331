"""The ``agentsdk`` pytest plugin: fixtures that script the Claude Code CLI, markers, options,
report header and terminal summary. Thin by design: the work lives in the other modules.

Loading it imports neither claude_agent_sdk nor trio; the fixtures import them on first use.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .compat import SdkInfo
    from .observe import TeardownWatch
    from .script import Script
    from .transport import ScriptedTransport
    from .verdict import Result

_RESULTS = pytest.StashKey[list["Result"]]()
_CALL_REPORT = pytest.StashKey[pytest.TestReport]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("agentsdk", "claude-agent-sdk scripted CLI and bug verdicts")
    group.addoption(
        "--agentsdk-report",
        metavar="FILE",
        help="write the verdict JSON of every bug scenario judged in this session to FILE",
    )
    group.addoption(
        "--agentsdk-seed",
        type=int,
        default=0,
        help="seed for the scenarios judged through the agentsdk_check fixture (default 0)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "agentsdk(eof='end_input'|'close', checkpoints={op: n}, strict=True): configure agentsdk_script "
        "and scripted_transport for this test (strict=False: no teardown check for undelivered frames)",
    )
    config.addinivalue_line(
        "markers",
        "agentsdk_known_bug(bug, releases='SPECIFIER', reason=''): the bug is known on releases matching the "
        "PEP 440 specifier (all if omitted); the test is xfail(strict=True) there, so a fix shows up as a failure "
        "telling you to update the expectation",
    )
    config.stash[_RESULTS] = []


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
    return f"agentsdk: claude-agent-sdk {version}, CLI {cli or 'none bundled (sdist)'}; backends: {backends}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    version = _installed_sdk_version()
    for item in items:
        for mark in item.iter_markers("agentsdk_known_bug"):
            if not mark.args:
                raise pytest.UsageError(f"{item.nodeid}: agentsdk_known_bug needs the bug name as first argument")
            if version is not None and _matches(version, mark.kwargs.get("releases")):
                reason = mark.kwargs.get("reason") or f"{mark.args[0]} is known on claude-agent-sdk {version}"
                item.add_marker(pytest.mark.xfail(strict=True, reason=reason))


def _matches(version: str, releases: str | None) -> bool:
    if not releases:
        return True
    from packaging.specifiers import InvalidSpecifier, SpecifierSet

    try:
        return SpecifierSet(releases).contains(version, prereleases=True)
    except InvalidSpecifier:
        raise pytest.UsageError(f"agentsdk_known_bug releases={releases!r}: not a PEP 440 specifier such as '<0.1.51'") from None


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
    if "anyio_backend" in request.fixturenames:
        backend = request.getfixturevalue("anyio_backend")
        name = backend if isinstance(backend, str) else backend[0]
    if reason := sdk_info.backend_unsupported(name):
        pytest.skip(f"claude-agent-sdk {sdk_info.version}: {reason}")
    return name


@pytest.fixture
def scripted_transport(request: pytest.FixtureRequest, agentsdk_script: Script, agentsdk_backend: str) -> Iterator[ScriptedTransport]:
    """A claude_agent_sdk Transport playing ``agentsdk_script`` (fill the script before connecting):
    pass it as ``query(transport=...)`` or ``ClaudeSDKClient(transport=...)``; ``.log`` records every
    write and every emitted frame with its provenance. Teardown fails on scripted frames never
    delivered, unexpected writes, or a stall (disable with ``@pytest.mark.agentsdk(strict=False)``).
    Under trio, a release that cannot run there is skipped with the reason (``agentsdk_backend``)."""
    from .transport import ScriptedTransport

    transport = ScriptedTransport(agentsdk_script)
    yield transport
    if _marker_options(request).get("strict", True):
        transport.assert_played()


@pytest.fixture
def agentsdk_teardown(request: pytest.FixtureRequest) -> Iterator[TeardownWatch]:
    """Fails a test whose SDK teardown was noisy: a cancel scope exited in another task, "Task
    exception was never retrieved", errors closing async generators, unraisable exceptions,
    ResourceWarnings, stray cancellations. The error names the manifestation and the test.
    Set ``agentsdk_teardown.transport = scripted_transport`` to also require the CLI closed once.
    Not checked when the test itself failed (its own error says more)."""
    from .observe import TeardownWatch

    watch = TeardownWatch(pattern=request.node.name)
    with watch:
        yield watch
    report = request.node.stash.get(_CALL_REPORT, None)
    if report is not None and report.passed:
        watch.check()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call":
        item.stash[_CALL_REPORT] = report
    return report


@pytest.fixture
def agentsdk_check(request: pytest.FixtureRequest, sdk_info: SdkInfo) -> Any:
    """Judge a registered bug scenario on the installed SDK from a test:
    ``result = agentsdk_check("cross_task_close", backend="asyncio", examples=20)`` returns the
    verdict Result (``.verdict``, ``.manifestations``, ``.counterexample``, ``.replay``) and records it
    for ``--agentsdk-report`` and the terminal summary."""
    from . import bugs

    seed = request.config.getoption("--agentsdk-seed")

    def check(bug: str, backend: str = "asyncio", model: str | None = None, examples: int = 20) -> Result:
        result = bugs.scenario(bug).judge(sdk_info, backend, model, seed, examples)
        request.config.stash[_RESULTS].append(result)
        return result

    return check


# ---------------------------------------------------------------- reporting
def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    results = config.stash.get(_RESULTS, [])
    from sys import modules

    compat = modules.get("pytest_agentsdk.compat")
    if compat is not None and compat.sdk_info.cache_info().currsize:
        info = compat.sdk_info()
        features = ", ".join(f"{k}={'yes' if v else 'no'}" for k, v in sorted(info.features.items()))
        terminalreporter.write_sep("-", "agentsdk")
        terminalreporter.write_line(f"claude-agent-sdk {info.version} (CLI {info.cli_version or 'none bundled'}): {features}")
    path = config.getoption("--agentsdk-report")
    if not results and not path:
        return
    from .verdict import CheckReport, render_table, subject_info

    report = CheckReport(subject_info(_installed_sdk_version(), None), config.getoption("--agentsdk-seed"), list(results))
    if results:
        terminalreporter.write_line(render_table(report))
    if path:
        Path(path).write_text(json.dumps(report.to_json(), indent=2, default=str))
        terminalreporter.write_line(f"agentsdk: verdicts written to {path}")

