"""pytest-agentsdk: script the Claude Code CLI, judge claude-agent-sdk releases against three
lifecycle bugs, and give verdicts a maintainer can paste into a PR.

Importing this package does not import claude_agent_sdk: names that need it load on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

#: public name -> module that defines it (loaded lazily)
_EXPORTS = {
    "Script": "script",
    "ScriptError": "script",
    "ScriptWarning": "script",
    "ScriptedTransport": "transport",
    "ScriptStalled": "transport",
    "ScriptedCLI": "cli_routing",
    "wire": None,
    "strategies": None,
    "sdk_info": "compat",
    "assert_clean_teardown": "observe",
    "TeardownWatch": "observe",
    "TeardownWarning": "shown",
    "RecordingClient": "recording",
    "assert_turn_isolation": "isolation",
    "find_untruthful_completions": "completions",
    "assert_truthful_completions": "completions",
    "UntruthfulCompletion": "completions",
    "guards": None,
}


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'pytest_agentsdk' has no attribute {name!r}")
    module = _EXPORTS[name]
    if module is None:
        return importlib.import_module(f"{__name__}.{name}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


__all__ = sorted(_EXPORTS)
