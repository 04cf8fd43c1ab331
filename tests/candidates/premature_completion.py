"""Candidates for bug 3 (premature completion)."""

from __future__ import annotations

from ._patch import Patch

CANDIDATES: dict[str, tuple[Patch, ...]] = {}
