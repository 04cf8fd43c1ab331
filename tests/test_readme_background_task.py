"""The README's background-task example runs as written, on every backend the release runs under."""

from __future__ import annotations

import re
from pathlib import Path

pytest_plugins = ["pytester"]

README = Path(__file__).parents[1] / "README.md"


def test_readme_background_task_example_passes(pytester, sdk_info) -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    example = next(block for block in blocks if "def test_background_task_between_turns" in block)
    pytester.makepyfile(test_background_task=example)
    result = pytester.runpytest_subprocess("-p", "agentsdk", "-q")
    runnable = len(sdk_info.backends())  # asyncio, and trio where the release runs under it
    assert result.parseoutcomes() == {"passed": runnable, **({"skipped": 2 - runnable} if runnable < 2 else {})}, result.stdout.str()
