"""The plugin's own tests pass on the oldest supported release and on one that cannot run under
trio (the suite in this process covers the installed, latest release): the README's test command,
run inside each release's isolated env (the real-CLI tests run once, on the installed release)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from pytest_agentsdk import envs

ROOT = Path(__file__).parents[1]


@pytest.mark.parametrize(("release", "trio_runs"), [("0.1.44", True), ("0.1.51", False)])
def test_plugin_suite_on_release(sdk_release, release: str, trio_runs: bool) -> None:
    env = sdk_release(release)
    run = subprocess.run(
        [str(env.python), "-m", "pytest", "-p", "agentsdk", "-p", "no:cacheprovider", "-m", "not machine and not realcli", "-rs"],
        cwd=ROOT, env=envs.env_environ(), capture_output=True, text=True, timeout=1200,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert f"agentsdk: claude-agent-sdk {release}," in run.stdout
    trio_skips = [line for line in run.stdout.splitlines() if "SKIPPED" in line and "cannot run under trio" in line]
    assert bool(trio_skips) != trio_runs, "trio is skipped exactly where the release cannot run under it"
