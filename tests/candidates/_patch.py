"""What every candidate module shares: the release they patch and the shape of a patch."""

from __future__ import annotations

from dataclasses import dataclass

BASE_VERSION = "0.2.187"


@dataclass(frozen=True)
class Patch:
    file: str  # relative to the claude_agent_sdk package
    old: str
    new: str
