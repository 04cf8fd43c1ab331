"""What every candidate module shares: the release they patch and the shape of a patch (the
package's own, :class:`pytest_agentsdk.patching.Patch`, which mutants use too)."""

from __future__ import annotations

from pytest_agentsdk.patching import Patch

__all__ = ["BASE_VERSION", "Patch"]

BASE_VERSION = "0.2.187"
