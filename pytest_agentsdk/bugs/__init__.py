"""The bug scenarios: one self-contained module per bug, each defining a :class:`Scenario`.

A scenario is a driver (runs one example against the real SDK over the scripted CLI), an oracle
(turns what happened into manifestation names) and a Hypothesis strategy of JSON examples. The
search, the verdict and the report are shared (:mod:`pytest_agentsdk.explore`).
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from typing import Any

from hypothesis import strategies as st

from ..compat import SdkInfo
from ..explore import Outcome, judge
from ..verdict import Result

#: Registered bugs, in report order; each is ``pytest_agentsdk.bugs.<name>.SCENARIO``.
BUG_NAMES = ("cross_task_close", "late_task_notification", "premature_completion")


class Scenario(ABC):
    name: str
    #: CLI behaviour models this bug is judged under (None: the model does not apply).
    models: tuple[str | None, ...] = (None,)

    def not_applicable(self, sdk: SdkInfo, backend: str, model: str | None) -> str | None:
        """Why this release lacks the surface this scenario needs, or None."""
        return sdk.backend_unsupported(backend)

    @abstractmethod
    def examples(self, model: str | None) -> st.SearchStrategy[Any]:
        """JSON-able examples; the simplest one Hypothesis draws first is the seed report's flow."""

    @abstractmethod
    def run_example(self, example: Any, backend: str, model: str | None) -> Outcome:
        """Run one example in a fresh event loop and apply the oracle."""

    def judge(self, sdk: SdkInfo, backend: str, model: str | None, seed: int, max_examples: int) -> Result:
        reason = self.not_applicable(sdk, backend, model)
        if reason:
            return Result(self.name, "not_applicable", backend, model, reason=reason)
        return judge(self, backend, model, seed, max_examples)


def scenario(name: str) -> Scenario:
    """The registered scenario ``name``; KeyError names the known ones."""
    if name not in BUG_NAMES:
        raise KeyError(f"unknown bug {name!r}; known: {', '.join(BUG_NAMES)}")
    return importlib.import_module(f"{__name__}.{name}").SCENARIO  # type: ignore[no-any-return]


def available() -> list[str]:
    """Registered bugs whose module is present in this build."""
    return [n for n in BUG_NAMES if importlib.util.find_spec(f"{__name__}.{n}") is not None]
