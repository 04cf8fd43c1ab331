"""Fix candidates for bug 2 (late task notification), as test material.

Each candidate is a patched copy of a release's ``claude_agent_sdk`` package laid out as a source
tree (``pyproject.toml`` + ``src/``), so ``envs.ensure_env(path)`` builds and installs it like any
other subject. The copy is made file by file: the installed env's files (hard-linked by uv) are
never touched. Patches name their anchor text; a base release that moved on fails loudly.

| candidate | what it changes | expected verdicts |
|---|---|---|
| turn_epoch | the reader tags each frame with the number of prompts written when it was read; a frame read before the latest prompt is diverted to ``Query.stale_messages`` | notify-only fixed (stale frames show as lost); wake-parent still misattributed |
| turn_epoch_origin | turn_epoch, and ``receive_response()`` does not stop at a result whose ``origin`` is an injected turn | fixed under both models |
| hide_notifications | ``receive_response()`` skips TaskNotificationMessage (silences the seed's symptom) | not a fix: reproduced under both |
| drain_buffer_at_query | ``query()`` first discards what the SDK has buffered | racy: a frame the reader holds but has not queued yet still leaks (notify-only reproduced) |
| drain_until_settled | ``receive_response()`` reads on past the result while agent tasks are in flight (the seed's "consume them in turn 1") | hangs when a task outlives the next turn |
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

BASE_VERSION = "0.2.187"


@dataclass(frozen=True)
class Patch:
    file: str  # relative to the claude_agent_sdk package
    old: str
    new: str


_EPOCH = (
    Patch(
        "_internal/query.py",
        "        self._read_task: TaskHandle | None = None\n",
        "        self._read_task: TaskHandle | None = None\n"
        "        self.prompt_epoch = 0\n"
        "        self.stale_messages: list[dict[str, Any]] = []\n",
    ),
    Patch(
        "_internal/query.py",
        "            async for message in self.transport.read_messages():\n",
        "            async for message in self.transport.read_messages():\n"
        "                read_epoch = self.prompt_epoch\n",
    ),
    Patch(
        "_internal/query.py",
        "                await self._message_send.send(message)\n",
        '                await self._message_send.send({**message, "_read_epoch": read_epoch})\n',
    ),
    Patch(
        "_internal/query.py",
        '                raise Exception(message.get("error", "Unknown error"))\n\n            yield message\n',
        '                raise Exception(message.get("error", "Unknown error"))\n\n'
        '            if message.pop("_read_epoch", self.prompt_epoch) < self.prompt_epoch:\n'
        "                self.stale_messages.append(message)  # read before the latest prompt\n"
        "                continue\n"
        "            yield message\n",
    ),
    Patch(
        "client.py",
        '                    json.dumps(stamp_user_message(msg, self._verbatim_prompts)) + "\\n"\n'
        "                )\n\n    async def interrupt(self) -> None:\n",
        '                    json.dumps(stamp_user_message(msg, self._verbatim_prompts)) + "\\n"\n'
        "                )\n"
        "        self._query.prompt_epoch += 1\n\n    async def interrupt(self) -> None:\n",
    ),
)

_RESPONSE_LOOP = (
    "        async for message in self.receive_messages():\n"
    "            yield message\n"
    "            if isinstance(message, ResultMessage):\n"
    "                return\n"
)

_SKIP_INJECTED_RESULTS = Patch(
    "client.py",
    _RESPONSE_LOOP,
    "        async for message in self.receive_messages():\n"
    "            yield message\n"
    "            if isinstance(message, ResultMessage) and (message.origin or {}).get(\"kind\") in (None, \"human\"):\n"
    "                return\n",
)

CANDIDATES: dict[str, tuple[Patch, ...]] = {
    "turn_epoch": _EPOCH,
    "turn_epoch_origin": (*_EPOCH, _SKIP_INJECTED_RESULTS),
    "hide_notifications": (
        Patch(
            "client.py",
            _RESPONSE_LOOP,
            "        async for message in self.receive_messages():\n"
            '            if type(message).__name__ == "TaskNotificationMessage":\n'
            "                continue\n"
            "            yield message\n"
            "            if isinstance(message, ResultMessage):\n"
            "                return\n",
        ),
    ),
    "drain_buffer_at_query": (
        Patch(
            "client.py",
            "        # Handle string prompts\n        if isinstance(prompt, str):\n",
            "        while True:\n"
            "            try:\n"
            "                self._query._message_receive.receive_nowait()\n"
            "            except (anyio.WouldBlock, anyio.EndOfStream):\n"
            "                break\n"
            "        # Handle string prompts\n        if isinstance(prompt, str):\n",
        ),
        Patch("client.py", "\nimport json\n", "\nimport json\n\nimport anyio\n"),
    ),
    "drain_until_settled": (
        Patch(
            "client.py",
            _RESPONSE_LOOP,
            "        settling = False\n"
            "        async for message in self.receive_messages():\n"
            "            yield message\n"
            "            settling = settling or isinstance(message, ResultMessage)\n"
            "            if settling and not self._query._inflight_tasks:\n"
            "                return\n",
        ),
    ),
}


def build_candidate(name: str, base_package: Path, dest: Path) -> Path:
    """A source tree at ``dest`` holding ``base_package`` (an installed claude_agent_sdk) patched
    as candidate ``name``, versioned ``BASE+name`` so reports say which candidate they judge."""
    patches = CANDIDATES[name]
    package = dest / "src" / "claude_agent_sdk"
    shutil.copytree(base_package, package, ignore=shutil.ignore_patterns("__pycache__", "_bundled"))
    version_file = package / "_version.py"
    base = re.search(r'__version__ = "([^"]+)"', version_file.read_text())
    if base is None or base.group(1) != BASE_VERSION:
        raise RuntimeError(f"candidates patch claude-agent-sdk {BASE_VERSION}; {base_package} is {base and base.group(1)}")
    version = f"{BASE_VERSION}+{name.replace('_', '.')}"
    version_file.write_text(f'__version__ = "{version}"\n')
    for patch in patches:
        path = package / patch.file
        text = path.read_text()
        if text.count(patch.old) != 1:
            raise RuntimeError(f"candidate {name}: anchor not found exactly once in {patch.file}: {patch.old[:60]!r}")
        path.write_text(text.replace(patch.old, patch.new))
    (dest / "README.md").write_text(f"claude-agent-sdk {BASE_VERSION}, patched as fix candidate {name!r}.\n")
    (dest / "pyproject.toml").write_text(_PYPROJECT.format(version=version))
    return dest


#: The release's own build configuration (hatchling, same dependencies), trimmed to what a build needs.
_PYPROJECT = """\
[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "claude-agent-sdk"
version = "{version}"
description = "claude-agent-sdk fix candidate"
readme = "README.md"
requires-python = ">=3.10"
dependencies = [
    "anyio>=4.0.0",
    "sniffio>=1.0.0",
    "typing_extensions>=4.0.0; python_version<'3.11'",
    "mcp>=1.23.0,<3.0.0",
    "jsonschema>=4.20.0",
]

[tool.hatch.build.targets.wheel]
packages = ["src/claude_agent_sdk"]
"""
