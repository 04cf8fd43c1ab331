"""Candidates for bug 1 (cross-task close)."""

from __future__ import annotations

from ._patch import Patch

CANDIDATES: dict[str, tuple[Patch, ...]] = {}
