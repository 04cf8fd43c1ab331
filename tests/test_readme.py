"""The README's example test runs as written, on both backends."""

from __future__ import annotations

import re
from pathlib import Path

pytest_plugins = ["pytester"]

README = Path(__file__).parents[1] / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


def test_readme_starts_with_the_two_setup_commands() -> None:
    first_block = re.search(r"```bash\n(.*?)```", README.read_text(), re.S)
    assert first_block is not None
    commands = first_block.group(1).strip().splitlines()
    assert len(commands) == 2
    assert "python -m pytest_agentsdk check" in commands[0]
    assert commands[1] == "python -m pytest"


def test_readme_example_passes(pytester, sdk_info) -> None:
    example = next(block for block in python_blocks() if "scripted_transport" in block)
    pytester.makepyfile(test_example=example)
    result = pytester.runpytest_subprocess("-p", "agentsdk", "-q")
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) == 0 and outcomes.get("errors", 0) == 0, result.stdout.str()
    runnable = len(sdk_info.backends())  # asyncio, and trio where the release runs under it
    assert (outcomes.get("passed", 0), outcomes.get("skipped", 0)) == (runnable, 2 - runnable)
