"""What the installed claude-agent-sdk can do, found by probing it, never from a version table.

Importing this module imports claude_agent_sdk; the plugin imports it lazily, so test sessions
that never touch the SDK pay nothing.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import importlib.util
import inspect
import json
import traceback
from pathlib import Path
from dataclasses import dataclass, field
from typing import Any, Callable


@dataclass(frozen=True)
class SdkInfo:
    version: str
    cli_version: str | None  # the CLI a wheel bundles; None for an sdist install
    features: dict[str, bool] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)  # why a feature is missing
    installed_from: str | None = None  # where a candidate came from (a path, file or git URL); None from a package index

    def has(self, feature: str) -> bool:
        return self.features.get(feature, False)

    def backends(self) -> list[str]:
        return ["asyncio"] + (["trio"] if self.has("trio") else [])

    def backend_unsupported(self, backend: str) -> str | None:
        """Why this release cannot run under ``backend``, or None."""
        if backend == "trio" and not self.has("trio"):
            return self.notes.get("trio", "release cannot run under trio")
        return None


def parse_message() -> Callable[[dict[str, Any]], Any]:
    """The installed release's own stdout parser."""
    from claude_agent_sdk._internal.message_parser import parse_message as parse

    return parse


def _bundled_cli_version() -> str | None:
    """The CLI version a wheel bundles; an sdist install has no CLI."""
    import claude_agent_sdk

    if not (Path(claude_agent_sdk.__file__).parent / "_bundled" / "claude").exists():
        return None
    try:
        from claude_agent_sdk._cli_version import __cli_version__
    except ImportError:
        return None
    return str(__cli_version__)


def installed_from() -> str | None:
    """The URL the installed SDK came from when it did not come from a package index (PEP 610's
    ``direct_url.json``: a source tree, a wheel or sdist file, a git URL): a candidate, not a release,
    even when its version is a release's."""
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        text = distribution("claude-agent-sdk").read_text("direct_url.json")
    except PackageNotFoundError:
        return None
    if not text:
        return None
    try:
        data = json.loads(text)
        url, vcs = str(data["url"]), data.get("vcs_info")
    except (ValueError, KeyError, TypeError, AttributeError):
        return "an unreadable direct_url.json"  # installed from somewhere other than an index, all the same
    if isinstance(vcs, dict):  # as the spec that installs it again names it: git+URL@ref
        ref = vcs.get("requested_revision") or vcs.get("commit_id")
        return f"{vcs.get('vcs', 'git')}+{url}" + (f"@{ref}" if ref else "")
    return url


def _probe_trio() -> tuple[bool, str]:
    """Run a one-turn scripted ``query()`` under trio: the only sure way to know."""
    if importlib.util.find_spec("trio") is None:
        return False, "trio is not installed"
    import anyio

    from . import wire
    from .script import Script
    from .transport import ScriptedTransport

    async def one_turn() -> None:
        from claude_agent_sdk import query

        transport = ScriptedTransport(Script().turn(wire.assistant("ok"), wire.result("ok")))
        async for _ in query(prompt="probe", transport=transport):
            pass

    try:
        anyio.run(one_turn, backend="trio")
    except Exception as exc:
        if _asyncio_only(exc):  # asyncio's own words (no running event loop): no address to differ between runs
            from .verdict import one_line

            return False, f"release cannot run under trio: {one_line(exc)}"
        # it runs there and fails: the scenarios judge how (a cancel scope exited from the wrong task
        # corrupts trio's own stack here), a failure for the verdicts, not a missing backend
    return True, ""


def _asyncio_only(exc: BaseException) -> bool:
    """The release calls asyncio itself, which no trio program can run: asyncio finds no loop of
    its own (``asyncio.get_running_loop()``, in C, says ``no running event loop``), the error is
    raised in asyncio's own code, or sniffio finds no async library (any error of a group)."""
    if isinstance(exc, BaseExceptionGroup):
        return any(_asyncio_only(inner) for inner in exc.exceptions)
    if type(exc).__name__ == "AsyncLibraryNotFoundError":
        return True
    if isinstance(exc, RuntimeError) and any(text in str(exc) for text in ("no running event loop", "no current event loop")):
        return True
    frames = traceback.extract_tb(exc.__traceback__)
    return bool(frames) and Path(frames[-1].filename).parent == Path(asyncio.__file__).parent


@functools.lru_cache(maxsize=1)
def sdk_info() -> SdkInfo:
    """Probe the installed release once per process."""
    import claude_agent_sdk as sdk
    from claude_agent_sdk._internal.query import Query

    parse = parse_message()
    features: dict[str, bool] = {
        "typed_task_messages": hasattr(sdk, "TaskNotificationMessage"),
        "typed_task_updated": hasattr(sdk, "TaskUpdatedMessage"),
        "assistant_stop_reason": "stop_reason" in {f.name for f in dataclasses.fields(sdk.AssistantMessage)},
        "rate_limit_event": parse(
            {"type": "rate_limit_event", "rate_limit_info": {"status": "allowed"}, "uuid": "u", "session_id": "s"}
        )
        is not None,
        "drops_sdk_host_only": "sdk_host_only" in inspect.getsource(Query),
    }
    trio_ok, trio_note = _probe_trio()
    features["trio"] = trio_ok
    notes = {"trio": trio_note} if trio_note else {}
    return SdkInfo(version=sdk.__version__, cli_version=_bundled_cli_version(), features=features, notes=notes,
                   installed_from=installed_from())
