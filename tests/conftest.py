"""Shared fixtures for the plugin's own tests."""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path

import pytest
from candidates import BASE_VERSION, build_candidate

from pytest_agentsdk import envs, patching


@pytest.fixture(scope="session")
def sdk_release() -> Callable[[str], envs.Env]:
    """``sdk_release("0.1.48")`` -> an isolated env of that release (any subject spec works).

    Built once with uv from the sdist and cached by content under ``$PYTEST_AGENTSDK_CACHE``
    (default ``~/.cache/pytest-agentsdk``), so later sessions reuse it; ``.python`` runs the release,
    ``.run_check(args)`` returns the parsed ``check --json``. Release-dependent tests use it to judge
    several releases from one session without touching the env pytest runs in.
    """
    built: dict[str, envs.Env] = {}

    def get(spec: str) -> envs.Env:
        if spec not in built:
            try:
                built[spec] = envs.ensure_env(spec)
            except envs.EnvError as exc:
                pytest.fail(f"cannot build the env for {spec}: {exc}", pytrace=False)
        return built[spec]

    return get


@pytest.fixture(scope="session")
def candidate_env(sdk_release: Callable[[str], envs.Env], tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], envs.Env]:
    """``candidate_env(name)`` -> the isolated env of tests/candidates' ``name``: a copy of the
    BASE_VERSION release's package patched as that candidate, built as a source tree."""
    base = sdk_release(BASE_VERSION).run(["-c", patching.PACKAGE_DIR_CODE])
    package = Path(base.stdout.strip())

    def get(name: str) -> envs.Env:
        return sdk_release(str(build_candidate(name, package, tmp_path_factory.mktemp(name))))

    return get


def pytest_configure(config: pytest.Config) -> None:
    # The Ctrl-C tests send SIGINT to the commands they start. A shell that started this run in the
    # background (``pytest &``, CI runners, nohup) ignores SIGINT, and an ignored signal stays ignored
    # across exec: the commands would never see it. A handler (unlike SIG_IGN) resets at exec.
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    config.addinivalue_line(
        "markers",
        "machine: builds isolated SDK envs with uv (matrix/verify/bisect); independent of the installed "
        "release, so tox's per-release envs deselect it and the `machine` env runs it once",
    )
    config.addinivalue_line("markers", "realcli: runs a real Claude Code CLI binary (installed from npm into the cache on first use)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test that builds release envs is a ``machine`` test, whoever wrote it."""
    for item in items:
        if {"sdk_release", "candidate_env"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.machine)
