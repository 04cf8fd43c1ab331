"""Shared fixtures for the plugin's own tests."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from pytest_agentsdk import envs


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


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "machine: builds isolated SDK envs with uv (matrix/verify/bisect); independent of the installed "
        "release, so tox's per-release envs deselect it and the `machine` env runs it once",
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test that builds release envs is a ``machine`` test, whoever wrote it."""
    for item in items:
        if "sdk_release" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.machine)
