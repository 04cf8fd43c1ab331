"""The bug scenarios: one self-contained module per bug, each defining a ``SCENARIO``.

A scenario (:class:`pytest_agentsdk.explore.Scenario`) is a driver (runs one example against the
real SDK over the scripted CLI), an oracle (turns what happened into manifestation names), its
sweep of known interleavings and a Hypothesis strategy of JSON examples. The search, the verdict
and the report are shared (:mod:`pytest_agentsdk.explore`).
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..explore import Scenario

#: Registered bugs, in report order; each is ``pytest_agentsdk.bugs.<name>.SCENARIO``.
BUG_NAMES = ("cross_task_close", "late_task_notification", "premature_completion")
#: Each bug's CLI behaviour models (a bug not named here is judged without one), said here so the
#: commands that only name bugs (matrix, verify, bisect) check ``--model`` without importing a scenario.
MODELS: dict[str, tuple[str, ...]] = {"late_task_notification": ("notify-only", "wake-parent")}


def model_problem(bug_names: list[str], models: list[str] | None) -> str | None:
    """What is wrong with ``--model`` for the bugs selected: a model no bug has, or models where
    no selected bug has any (it would judge nothing); None when it is fine."""
    known = sorted({m for names in MODELS.values() for m in names})
    for model in models or []:
        if model not in known:
            return f"--model {model}: unknown CLI behaviour model; choose from {', '.join(known)}"
    if models and not any(name in MODELS for name in bug_names):
        return (f"--model {models[0]}: {' and '.join(bug_names)} {'has' if len(bug_names) == 1 else 'have'} no CLI behaviour "
                f"models, so --model would judge nothing; leave --model out, or add --bug {next(iter(MODELS))}")
    return None


def __getattr__(name: str) -> Any:
    """``Scenario`` on first use: the commands that only name bugs (matrix, verify, bisect) do not
    import Hypothesis for it."""
    if name == "Scenario":
        from ..explore import Scenario

        return Scenario
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def scenario(name: str) -> Scenario:
    """The registered scenario ``name``; KeyError names the known ones."""
    if name not in BUG_NAMES:
        raise KeyError(f"unknown bug {name!r}; known: {', '.join(BUG_NAMES)}")
    return importlib.import_module(f"{__name__}.{name}").SCENARIO  # type: ignore[no-any-return]


def available() -> list[str]:
    """Registered bugs whose module is present in this build."""
    return [n for n in BUG_NAMES if importlib.util.find_spec(f"{__name__}.{n}") is not None]


__all__ = ["BUG_NAMES", "MODELS", "Scenario", "available", "model_problem", "scenario"]
