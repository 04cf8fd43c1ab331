"""``agentsdk_cli``: script the CLI for code that never passes ``transport=``.

Every release from 0.1.44 to the latest builds its default transport by calling the name
``SubprocessCLITransport`` in two places: ``query()`` through the module-level import in
``claude_agent_sdk._internal.client``, and ``ClaudeSDKClient.connect()`` through an import from
``claude_agent_sdk._internal.transport.subprocess_cli`` at each call. :class:`ScriptedCLI` replaces
that one name in those two modules while it is active, so each session the code opens without
``transport=`` plays the next queued Script on a ScriptedTransport of its own; a transport the code
passes itself is untouched, and the originals are put back on exit.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType, TracebackType
from typing import Any

from .script import Script, ScriptWarning
from .transport import STALL_TIMEOUT_S, ScriptedCLIError, ScriptedTransport

#: Where each release looks the default transport up, and the session kind that looks there.
ROUTES = (
    ("claude_agent_sdk._internal.client", "query()"),
    ("claude_agent_sdk._internal.transport.subprocess_cli", "ClaudeSDKClient"),
)
_NAME = "SubprocessCLITransport"


class ScriptedCLI:
    """Routes every session the code under test opens without ``transport=`` to a ScriptedTransport.

    ``session()`` queues a Script to fill; sessions take the queued scripts in the order they open.
    ``every_session(script)`` plays one script to every session opened once the queue is empty.
    ``transports`` holds one ScriptedTransport per session opened, in order (``.log`` is what that
    session saw). As a context manager it checks on a clean exit; :meth:`problems` /
    :meth:`assert_done` check on demand (the ``agentsdk_cli`` fixture checks after a passing test).
    ``eof``, ``checkpoints`` and ``stall_timeout`` apply to the scripts and transports it makes;
    ``name`` is how its errors call it (the fixture's name under pytest).
    """

    def __init__(self, *, eof: str = "end_input", checkpoints: dict[str, int] | None = None,
                 stall_timeout: float = STALL_TIMEOUT_S, name: str = "ScriptedCLI") -> None:
        self.name = name
        self.eof = eof
        self.checkpoints = dict(checkpoints or {})
        self.stall_timeout = stall_timeout
        self._queue: list[Script] = []
        self._queued = 0
        self._every: Script | None = None
        self._sessions: list[tuple[str, ScriptedTransport | None]] = []  # (kind, transport; None: nothing queued)
        self._unscripted: list[str] = []
        self._saved: list[tuple[ModuleType, Any]] = []

    @property
    def transports(self) -> list[ScriptedTransport]:
        """One per session opened with a script, in the order they opened."""
        return [transport for _, transport in self.opened()]

    def opened(self) -> list[tuple[str, ScriptedTransport]]:
        """Each session opened with a script, as this router's messages name it (``session 2
        (ClaudeSDKClient)``), with its transport."""
        return [(label, transport) for label, _, transport in self._numbered() if transport is not None]

    def _numbered(self) -> list[tuple[str, str, ScriptedTransport | None]]:
        """Each session opened: its name in every message, its kind, its transport (None: nothing was queued)."""
        return [(f"session {number} ({kind})", kind, transport) for number, (kind, transport) in enumerate(self._sessions, start=1)]

    # ------------------------------------------------------------ scripting
    def session(self, script: Script | None = None) -> Script:
        """Queue ``script`` (a new, empty one by default) for the next session; returns it to fill."""
        script = self._checked(script, "session")
        self._queue.append(script)
        self._queued += 1
        return script

    def every_session(self, script: Script | None = None) -> Script:
        """Play ``script`` (a new, empty one by default) to every session opened once the queue is
        empty, each on a fresh transport; returns it to fill."""
        self._every = self._checked(script, "every_session")
        return self._every

    def _checked(self, script: Script | None, method: str) -> Script:
        if script is None:
            return Script(eof=self.eof, checkpoints=dict(self.checkpoints))
        if not isinstance(script, Script):
            raise TypeError(f"{self.name}.{method}(script): expected a pytest_agentsdk Script, got {type(script).__name__}")
        return script

    # ------------------------------------------------------------ routing
    @contextmanager
    def routing(self) -> Iterator[ScriptedCLI]:
        """Route sessions while the block runs, with no check at the end; the SDK's own transport
        is back afterwards."""
        self._route()
        try:
            yield self
        finally:
            self._restore()

    def __enter__(self) -> ScriptedCLI:
        self._route()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._restore()
        if exc_type is None:
            self.assert_done()
            for problem in self.warnings():
                warnings.warn(ScriptWarning(problem), stacklevel=2)

    def _route(self) -> None:
        if self._saved:
            raise RuntimeError(f"{self.name} is already routing sessions; enter it once")
        try:
            for module_name, kind in ROUTES:
                module = importlib.import_module(module_name)
                self._saved.append((module, getattr(module, _NAME)))
                setattr(module, _NAME, self._opener(kind))
        except BaseException:
            self._restore()
            raise

    def _restore(self) -> None:
        while self._saved:
            module, original = self._saved.pop()
            setattr(module, _NAME, original)

    def _opener(self, kind: str) -> Any:
        def open_session(*args: Any, **kwargs: Any) -> ScriptedTransport:  # the SDK's (prompt=..., options=...)
            return self._open(kind)

        return open_session

    def _open(self, kind: str) -> ScriptedTransport:
        number = len(self._sessions) + 1
        hint = ""
        if self._queue:
            script, name = self._queue.pop(0), f"session {number}'s script"
            if self._queued > 1:
                hint = (f"sessions take the queued scripts in the order they open (session {number}, a {kind}, took "
                        f"{self.name}.session() number {self._queued - len(self._queue)}): if the code opens them in "
                        "another order, queue them in that order")
        elif self._every is not None:
            script, name = self._every, "the every_session script"
        else:
            problem = (
                f"the code opened session {number} ({kind}) with no script queued for it: add {self.name}.session() "
                f"for each session, in the order they open, or {self.name}.every_session(script)"
            )
            self._sessions.append((kind, None))
            self._unscripted.append(problem)
            raise ScriptedCLIError(f"{self.name}: {problem}")
        transport = ScriptedTransport(script, stall_timeout=self.stall_timeout, script_name=name, report_stall_once=True,
                                      stall_hint=hint)
        self._sessions.append((kind, transport))
        return transport

    # ------------------------------------------------------------ checks
    def problems(self, *, strict: bool = True) -> list[str]:
        """What the sessions did not play as scripted, each saying what to do (``strict=False``:
        only sessions opened with nothing queued)."""
        found = list(self._unscripted)
        if not strict:
            return found
        if self._queue:
            found.append(
                f"{len(self._queue)} queued session(s) never opened: {self.name}.session() was called {self._queued} "
                f"time(s), the code opened {len(self._sessions)} session(s); drop the extra session() or find why the "
                "code did not open it"
            )
        if self._every is not None and not self._sessions:
            found.append(f"{self.name}.every_session(...) was set but the code opened no session")
        for label, _, transport in self._numbered():
            try:
                if transport is not None:
                    transport.assert_played()
            except AssertionError as exc:
                found.append(f"{label}: {exc}")
        return found

    def results_missing(self) -> list[str]:
        """Each session whose stdout ended with prompts no result frame answered
        (:meth:`ScriptedTransport.results_missing`, which names the session's script): a warning,
        not a failure."""
        return [problem for _, transport in self._sessions if transport is not None and (problem := transport.results_missing())]

    def never_closed(self) -> list[str]:
        """Each ClaudeSDKClient session the code connected and never left (a warning: a real CLI's
        process would keep running). A ``query()`` session is the SDK's to close; one abandoned
        mid-stream is cross_task_close's matter (``agentsdk_teardown``)."""
        return [f"{label} was connected and never closed: leave `async with ClaudeSDKClient(...)`, "
                "or call `await client.disconnect()`; a real CLI's process would keep running"
                for label, kind, transport in self._numbered()
                if kind == "ClaudeSDKClient" and transport is not None and transport.log.counts["connect"] and not transport.log.counts["close"]]

    def warnings(self) -> list[str]:
        """What a session did that a real CLI would not have answered as the test expects, or left
        behind: warnings, not failures (:meth:`results_missing`, :meth:`never_closed`)."""
        return self.results_missing() + self.never_closed()

    def assert_done(self, *, strict: bool = True) -> None:
        """Raise AssertionError listing :meth:`problems`, if any."""
        if found := self.problems(strict=strict):
            raise AssertionError(f"{self.name}:\n" + "\n".join(f"- {problem}" for problem in found))


__all__ = ["ROUTES", "ScriptedCLI"]
