"""Public Hypothesis strategies, for your own property tests against the scripted CLI.

``bug_examples(bug, model)`` draws the examples a bug scenario explores (JSON-able dicts, as
``replay --example`` takes them); ``transport_checkpoints()`` draws how long each transport
operation suspends, the interleaving dimension every scenario shares.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from .explore import transport_checkpoints


def bug_examples(bug: str, model: str | None = None) -> st.SearchStrategy[Any]:
    """The examples ``check`` explores for ``bug`` (under CLI behaviour ``model`` where it has them)."""
    from .bugs import scenario

    return scenario(bug).examples(model)


__all__ = ["bug_examples", "transport_checkpoints"]
