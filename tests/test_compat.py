"""What the probe of the installed release concludes from how it failed, and where it came from."""

from __future__ import annotations

import asyncio
import importlib.metadata
import json
from typing import Any

import pytest

from pytest_agentsdk import compat


def _raised_in_asyncio() -> BaseException:
    try:
        asyncio.get_event_loop_policy().get_event_loop().run_until_complete(None)  # type: ignore[arg-type]
    except Exception as exc:  # noqa: BLE001 - the error asyncio's own code raises
        return exc
    raise AssertionError("asyncio accepted a None coroutine")


@pytest.mark.parametrize(("exc", "asyncio_only"), [
    (RuntimeError("no running event loop"), True),  # asyncio.get_running_loop() under trio (0.1.51 to 0.1.66)
    (ExceptionGroup("reader", [ValueError("x"), RuntimeError("no running event loop")]), True),
    (type("AsyncLibraryNotFoundError", (RuntimeError,), {})("unknown async library"), True),
    (RuntimeError("Cancel scope stack corrupted: attempted to exit <trio.CancelScope at 0x7f>"), False),  # the bug itself
    (RuntimeError("simulated: this SDK change breaks every session under trio"), False),
])
def test_only_a_release_that_calls_asyncio_itself_cannot_run_under_trio(exc: BaseException, asyncio_only: bool) -> None:
    assert compat._asyncio_only(exc) is asyncio_only


def test_an_error_raised_in_asyncio_s_own_code_is_asyncio_only() -> None:
    assert compat._asyncio_only(_raised_in_asyncio())


class _Dist:
    def __init__(self, direct_url: dict[str, Any] | None) -> None:
        self.text = None if direct_url is None else json.dumps(direct_url)

    def read_text(self, name: str) -> str | None:
        return self.text if name == "direct_url.json" else None


@pytest.mark.parametrize(("direct_url", "installed_from"), [
    (None, None),  # from an index: a release
    ({"url": "file:///src/my%20sdk", "dir_info": {}}, "file:///src/my%20sdk"),
    ({"url": "https://github.com/o/sdk.git", "vcs_info": {"vcs": "git", "requested_revision": "fix", "commit_id": "abc"}},
     "git+https://github.com/o/sdk.git@fix"),  # as the spec that installs it again names it
    ({"dir_info": {}}, "an unreadable direct_url.json"),
])
def test_where_the_installed_sdk_came_from(monkeypatch: pytest.MonkeyPatch, direct_url: dict[str, Any] | None,
                                           installed_from: str | None) -> None:
    monkeypatch.setattr(importlib.metadata, "distribution", lambda name: _Dist(direct_url))
    assert compat.installed_from() == installed_from
