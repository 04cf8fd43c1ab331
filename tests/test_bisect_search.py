"""bisect's search over ordered releases: it names the first release unlike the first one, probes
few of them, and says "none" when both ends agree (bisect then names where the verdict changes)."""

from __future__ import annotations

import pytest

from pytest_agentsdk.machine import _gallop


@pytest.mark.parametrize("change_at", [1, 2, 5, 9, 15])
def test_the_first_release_unlike_the_first_is_found_with_few_probes(change_at: int) -> None:
    signatures = ["before"] * change_at + ["after"] * (16 - change_at)
    probed: list[int] = []

    def sig(i: int) -> str:
        probed.append(i)
        return signatures[i]

    assert _gallop(16, sig) == (change_at - 1, change_at)
    assert len(set(probed)) <= 9  # galloping then bisecting: O(log 16) twice


def test_both_ends_alike_is_no_boundary() -> None:
    assert _gallop(16, lambda i: "present")[1] is None
