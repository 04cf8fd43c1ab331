"""The plugin's own foundation tests pass on the oldest supported release and on one that cannot
run under trio (the suite in this process covers the installed, latest release)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
FOUNDATION = ["tests/test_wire.py", "tests/test_script.py", "tests/test_transport.py", "tests/test_pytest_asyncio.py"]


@pytest.mark.parametrize(("release", "trio_runs"), [("0.1.44", True), ("0.1.51", False)])
def test_foundation_suite_on_release(sdk_release, release: str, trio_runs: bool) -> None:
    env = sdk_release(release)
    run = subprocess.run(
        [str(env.python), "-m", "pytest", "-p", "pytest_agentsdk.plugin", "-p", "no:cacheprovider", "-q", "-rs", *FOUNDATION],
        cwd=ROOT, env=env.environ(), capture_output=True, text=True, timeout=600,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert f"claude-agent-sdk {release}" in run.stdout
    trio_skips = [line for line in run.stdout.splitlines() if "SKIPPED" in line and "cannot run under trio" in line]
    assert bool(trio_skips) != trio_runs, "trio is skipped exactly where the release cannot run under it"
