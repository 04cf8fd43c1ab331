"""Public Hypothesis strategies, for your own property tests against the scripted CLI.

``bug_examples(bug, model)`` draws the examples a bug scenario explores (JSON-able dicts, as
``replay --example`` takes them); ``transport_checkpoints()`` draws how long each transport
operation suspends, the interleaving dimension every scenario shares.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hypothesis import strategies as st

from .script import TRANSPORT_OPS


def transport_checkpoints(ops: Sequence[str] = TRANSPORT_OPS, max_per_op: int = 3) -> st.SearchStrategy[dict[str, int]]:
    """``Script.checkpoints`` for the given operations: each absent (no suspension) or 1..max
    scheduler checkpoints; shrinks towards a transport that never suspends."""
    return st.fixed_dictionaries({}, optional={op: st.integers(1, max_per_op) for op in ops})


def bug_examples(bug: str, model: str | None = None) -> st.SearchStrategy[Any]:
    """The examples ``check`` explores for ``bug`` (under CLI behaviour ``model`` where it has them)."""
    from .bugs import scenario

    return scenario(bug).examples(model)


__all__ = ["bug_examples", "transport_checkpoints"]
