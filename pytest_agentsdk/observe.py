"""What teardown leaves behind: everything a successful run prints or raises after its work is done.

Users judge a run by its stderr and exit status, so the harm we observe is every channel through
which an SDK teardown problem reaches them: the asyncio loop's exception handler ("Task exception
was never retrieved", "Task was destroyed but it is pending!", "an error occurred during closing
of asynchronous generator"), ``sys.unraisablehook``, ERROR log records (trio logs failed async
generator finalization there), ResourceWarning / RuntimeWarning, raw stderr, a cancellation the
consumer's task never asked for, an exception escaping the consumer or the runner, tasks left
pending, and what the scripted CLI saw (how often it was closed).

Every event gets a stable *channel* name and, when the exception behind it is recognised, a
*cause* name (``cancel_scope_cross_task`` for anyio's / trio's cross-task cancel-scope exit).
:func:`run_observed` runs a coroutine the way ``asyncio.run`` / ``trio.run`` would, with the
window covering the loop's own shutdown and garbage collection afterwards; every hook is
restored afterwards. :func:`assert_clean_teardown` is the pytest-facing assertion.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import io
import logging
import re
import sys
import threading
import traceback
import warnings
import weakref
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from . import virtual_time
from .shown import CrossTaskCloseShown, TeardownWarning

if TYPE_CHECKING:
    from .transport import ScriptedTransport


@runtime_checkable
class Sessions(Protocol):
    """What routes several sessions to scripted transports (``agentsdk_cli``, a ScriptedCLI): each
    session's transport must be closed once."""

    def opened(self) -> list[tuple[str, ScriptedTransport]]:
        """Each session, as the router names it, and its transport."""

# ---------------------------------------------------------------- stable names
#: Causes: what went wrong, recognised in any exception chain / message.
CANCEL_SCOPE_CROSS_TASK = "cancel_scope_cross_task"
CANCEL_SCOPE_MISNESTED = "cancel_scope_misnested"
ASYNCGEN_IGNORED_EXIT = "asyncgen_ignored_exit"
ASYNCGEN_ALREADY_RUNNING = "asyncgen_already_running"
EVENT_LOOP_CLOSED = "event_loop_closed"
#: Channels: how it reached the user.
TASK_EXCEPTION_NEVER_RETRIEVED = "task_exception_never_retrieved"
TASK_DESTROYED_PENDING = "task_destroyed_pending"
ASYNCGEN_CLOSE_ERROR = "asyncgen_close_error"
SHUTDOWN_TASK_ERROR = "shutdown_task_error"
LOOP_EXCEPTION = "loop_exception"
UNRAISABLE = "unraisable"
LOGGED_ERROR = "logged_error"
RESOURCE_WARNING = "resource_warning"
RUNTIME_WARNING = "runtime_warning"
STDERR_OUTPUT = "stderr_output"
STRAY_CANCELLATION = "stray_cancellation"
CONSUMER_ERROR = "consumer_error"
RUN_ERROR = "run_error"
TASK_LEFT_PENDING = "task_left_pending"
TRANSPORT_NOT_CLOSED = "transport_not_closed"
TRANSPORT_CLOSED_REPEATEDLY = "transport_closed_repeatedly"
RESULT_MISSING = "result_missing"
#: ``asyncio.run`` still running its own shutdown (cancelling leftovers, closing async generators)
#: SHUTDOWN_WALL_S after the consumer's main returned: the program never exits.
SHUTDOWN_HANG = "shutdown_hang"
SHUTDOWN_WALL_S = 1.0
#: trio's ResourceWarning for an async generator collected before it was exhausted. For a
#: generator the consumer itself abandoned it is the consumer's doing (a note, see
#: :attr:`Teardown.abandoned`); for one of the SDK's own generators it is the SDK's.
ASYNCGEN_GC_WARNING = "asyncgen_gc_warning"
#: Manifestations Python hides by default (shown under pytest, ``-X dev``, ``-W default``).
QUIET = frozenset({RESOURCE_WARNING, ASYNCGEN_GC_WARNING})
_GC_WARNING = re.compile(r"Async generator '([^']+)' was garbage collected before it had been exhausted")

_CAUSE_TEXT = (
    ("in a different task than it was entered in", CANCEL_SCOPE_CROSS_TASK),  # anyio, asyncio backend
    ("Cancel scope stack corrupted", CANCEL_SCOPE_CROSS_TASK),  # trio
    ("Nursery stack corrupted", CANCEL_SCOPE_CROSS_TASK),  # trio, the scope's nursery
    ("isn't the current tasks's current cancel scope", CANCEL_SCOPE_MISNESTED),  # anyio's spelling
    ("isn't the current task's current cancel scope", CANCEL_SCOPE_MISNESTED),
    ("async generator ignored GeneratorExit", ASYNCGEN_IGNORED_EXIT),
    ("asynchronous generator is already running", ASYNCGEN_ALREADY_RUNNING),
    ("Event loop is closed", EVENT_LOOP_CLOSED),
)
_LOOP_MESSAGES = (
    ("Task exception was never retrieved", TASK_EXCEPTION_NEVER_RETRIEVED),
    ("Task was destroyed but it is pending", TASK_DESTROYED_PENDING),
    ("an error occurred during closing of asynchronous generator", ASYNCGEN_CLOSE_ERROR),
    ("Exception ignored during finalization of async generator", ASYNCGEN_CLOSE_ERROR),  # trio's logger
    ("unhandled exception during asyncio.run() shutdown", SHUTDOWN_TASK_ERROR),
)


def loop_handler(teardown: Teardown) -> Callable[[asyncio.AbstractEventLoop, dict[str, Any]], None]:
    """An asyncio loop exception handler that records into ``teardown`` instead of logging."""

    def handle(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        message = str(context.get("message", ""))
        exc = context.get("exception")
        detail = message + (f": {_describe(exc)}" if exc else "")
        teardown.record(_channel_of(message, LOOP_EXCEPTION), detail, exc)

    return handle


def generator_name(agen: Any) -> str:
    """An async generator's name as trio's warnings spell it (``module.qualname``)."""
    frame = getattr(agen, "ag_frame", None)
    module = frame.f_globals.get("__name__", "?") if frame is not None else "?"
    return f"{module}.{agen.__qualname__}"


def _chain(exc: BaseException | None) -> Iterator[BaseException]:
    """``exc``, its causes and contexts, and the members of exception groups, each once."""
    seen: set[int] = set()
    todo = [exc] if exc is not None else []
    while todo:
        e = todo.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        todo += [x for x in (e.__cause__, e.__context__) if x is not None]
        todo += list(getattr(e, "exceptions", ()))


def causes(exc: BaseException | None, text: str = "") -> list[str]:
    """Cause names recognised in ``exc``'s chain (or in ``text``), sorted."""
    found = {name for needle, name in _CAUSE_TEXT if needle in text}
    for e in _chain(exc):
        found |= {name for needle, name in _CAUSE_TEXT if needle in str(e)}
    return sorted(found)


_PACKAGE = Path(__file__).parent
_ADDRESS = re.compile(r"\b(?:0x)?[0-9a-f]{9,16}\b")
_TASK_NUMBER = re.compile(r"\bTask-\d+")
#: Where an installed package's file lies: one env or another, this machine or a CI runner's.
_INSTALL_DIR = re.compile(r"/(?:[^\s\"'()/=:]+/)*site-packages/")
#: Where this harness lies (as imported, and with links resolved): a checkout here, another on a CI runner.
_HARNESS_DIR = re.compile(r"(?<![^\s\"'(=:])(?:" + "|".join(
    sorted({re.escape(f"{d}/") for d in (_PACKAGE.parent, _PACKAGE.resolve().parent)}, key=len, reverse=True)) + ")")


def scrub(text: str) -> str:
    """``text`` without what differs between identical runs (addresses, task numbers) and
    between the places the same files are installed (``.../site-packages/anyio/...`` is
    ``anyio/...``, ``/checkout/pytest_agentsdk/...`` is ``pytest_agentsdk/...``)."""
    return _HARNESS_DIR.sub("", _INSTALL_DIR.sub("", _TASK_NUMBER.sub("Task-N", _ADDRESS.sub("0x…", text))))


def _channel_of(message: str, default: str) -> str:
    return next((name for needle, name in _LOOP_MESSAGES if needle in message), default)


def _describe(exc: BaseException | None) -> str:
    if exc is None:
        return ""
    text = f"{type(exc).__name__}: {exc}".strip()
    return text.splitlines()[0] if text else type(exc).__name__


# ---------------------------------------------------------------- the record
@dataclass
class Event:
    """One thing the run left behind: how it surfaced (channel), why (causes), what it said."""

    channel: str
    causes: list[str]
    detail: str
    subject: str | None = None  # the async generator a gc warning is about
    #: what an allow pattern is matched against: a log record's logger name, or the stderr line an
    #: output is judged by (a traceback's exception line)
    origin: str | None = None

    @property
    def names(self) -> list[str]:
        return [self.channel, *self.causes]

    def describe(self) -> str:
        why = f" [{', '.join(self.causes)}]" if self.causes else ""
        return f"{self.channel}{why}: {self.detail}"


@dataclass
class Teardown:
    """Everything one observed run left behind."""

    events: list[Event] = field(default_factory=list)
    #: generators the consumer abandoned on purpose (trio's names: ``module.qualname``)
    abandoned: set[str] = field(default_factory=set)
    hung: str | None = None  # set when the wall-clock bound ended the run
    #: what the program holds until it exits: released after the loop closed, inside the window
    kept: list[Any] = field(default_factory=list)
    pending_at_return: list[str] = field(default_factory=list)  # tasks asyncio.run would cancel
    #: what the event loop's own machinery spilled after it crashed (TrioInternalError): its
    #: unraisables and never-awaited coroutines depend on the exact point of the crash, not on the
    #: SDK, so they are evidence of that one ``run_error``, not manifestations of their own
    after_crash: list[Event] = field(default_factory=list)
    ties_used: str | None = None  # under pinned tie-breaks (trio), the flips the run used

    def record(self, channel: str, detail: str, exc: BaseException | None = None, subject: str | None = None,
               origin: str | None = None) -> None:
        self.events.append(Event(channel, causes(exc, detail), scrub(detail), subject, origin))

    def record_exception(self, channel: str, exc: BaseException) -> None:
        self.record(channel, _describe(exc), exc)

    def check_transport(self, transport: ScriptedTransport, which: str = "the transport") -> None:
        """The CLI must be closed exactly once: never means a leaked process, twice a confused SDK."""
        closes = transport.log.counts["close"]
        if closes == 0:
            self.record(TRANSPORT_NOT_CLOSED, f"the SDK never closed {which}")
        elif closes > 1:
            self.record(TRANSPORT_CLOSED_REPEATEDLY, f"the SDK closed {which} {closes} times")

    def check_result(self, received: bool) -> None:
        if not received:
            self.record(RESULT_MISSING, "the consumer never received its ResultMessage")

    def _excused(self, event: Event) -> bool:
        return event.channel == ASYNCGEN_GC_WARNING and event.subject in self.abandoned

    @property
    def harm(self) -> list[Event]:
        return [e for e in self.events if not self._excused(e)]

    @property
    def manifestations(self) -> list[str]:
        """Sorted stable names of everything harmful (notes excluded)."""
        return sorted({n for e in self.harm for n in e.names})

    @property
    def notes(self) -> list[str]:
        return [e.describe() for e in self.events if self._excused(e)]

    def to_json(self) -> dict[str, Any]:
        return {
            "manifestations": self.manifestations,
            "events": [e.describe() for e in self.harm],
            "notes": self.notes,
            "pending_at_return": self.pending_at_return,
            "hung": self.hung,
            **({"after_crash": [e.describe() for e in self.after_crash]} if self.after_crash else {}),
        }


# ---------------------------------------------------------------- the hooks
class _LogCapture(logging.Handler):
    """Records every ERROR log record. Not attached to any logger: :func:`_dispatch_through` feeds
    it from ``Logger.callHandlers``, so an app that reconfigures logging (``basicConfig(force=True)``,
    ``dictConfig``) cannot detach it; a record a disabled logger never creates reaches nobody."""

    def __init__(self, teardown: Teardown) -> None:
        super().__init__(logging.ERROR)
        self.teardown = teardown

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        exc = record.exc_info[1] if record.exc_info else None
        detail = f"{record.name}: {message.splitlines()[0] if message else ''}"
        if exc is not None:
            detail += f" ({_describe(exc)})"
        self.teardown.record(_channel_of(message, LOGGED_ERROR), detail, exc, origin=record.name)


#: per thread, how many log records are being dispatched to handlers right now
_DISPATCH = threading.local()


def _dispatch_through(capture: _LogCapture) -> Callable[[logging.Logger, logging.LogRecord], None]:
    """A ``Logger.callHandlers`` that shows each record to ``capture`` first. What handlers print
    meanwhile is that record's text, judged as the record, not as stderr output."""
    call_handlers = logging.Logger.callHandlers

    def callHandlers(logger: logging.Logger, record: logging.LogRecord) -> None:
        _DISPATCH.depth = getattr(_DISPATCH, "depth", 0) + 1
        try:
            if record.levelno >= capture.level:
                capture.handle(record)
            call_handlers(logger, record)
        finally:
            _DISPATCH.depth -= 1

    return callHandlers


class _StderrCapture(io.TextIOBase):
    """``sys.stderr`` for the window. Keeps what the run printed (not what logging handlers wrote:
    the records are judged) and, with ``echo``, passes it on to the stream it replaced; once the
    window is over it only passes on, since a handler the app created meanwhile
    (``basicConfig(force=True)``) still holds it."""

    def __init__(self, replaced: Any, echo: bool) -> None:
        self.replaced = replaced
        self.echo = echo
        self.kept = io.StringIO()
        self.open = True

    def write(self, text: str) -> int:
        if self.open and not getattr(_DISPATCH, "depth", 0):
            self.kept.write(text)
        if self.echo or not self.open:
            self.replaced.write(text)
        return len(text)

    def flush(self) -> None:
        if self.echo or not self.open:
            self.replaced.flush()


_TRACEBACK_HEAD = "Traceback (most recent call last):"


def printed_outputs(text: str) -> Iterator[list[str]]:
    """Printed text as the outputs a reader sees: a traceback (its header, indented frames, the
    exception line), or one other line; blank lines dropped."""
    lines = [line for line in text.splitlines() if line.strip()]
    i = 0
    while i < len(lines):
        end = i + 1
        if lines[i].strip() == _TRACEBACK_HEAD:
            while end < len(lines) and lines[end][:1].isspace():
                end += 1
            end = min(end + 1, len(lines))  # the exception line
        yield lines[i:end]
        i = end


@dataclass(frozen=True)
class Allowed:
    """What the application under test may log or print without failing a teardown check:
    ``loggers`` (a name covers its children: ``myapp`` allows ``myapp.db``), ``stderr`` (regular
    expressions searched in each printed line; a traceback is judged by its exception line)."""

    loggers: tuple[str, ...] = ()
    stderr: tuple[re.Pattern[str], ...] = ()

    @classmethod
    def of(cls, loggers: Iterable[str] = (), stderr: Iterable[str] = ()) -> Allowed:
        """Validated patterns; ValueError names the bad one."""
        names = _strings("allow_loggers", loggers)
        if bad := [n for n in names if not n or n != n.strip()]:
            raise ValueError(f"allow_loggers: {bad[0]!r} is not a logger name such as 'myapp' or 'myapp.db'")
        regexes = []
        for pattern in _strings("allow_stderr", stderr):
            try:
                regexes.append(re.compile(pattern))
            except re.error as exc:
                raise ValueError(f"allow_stderr: {pattern!r} is not a regular expression ({exc})") from None
        return cls(tuple(names), tuple(regexes))

    def __add__(self, other: Allowed) -> Allowed:
        return Allowed(self.loggers + other.loggers, self.stderr + other.stderr)

    def permits(self, event: Event) -> bool:
        if event.origin is None:
            return False
        if event.channel == STDERR_OUTPUT:
            return any(p.search(event.origin) for p in self.stderr)
        return any(event.origin == name or event.origin.startswith(name + ".") for name in self.loggers)


def _strings(where: str, values: Iterable[str]) -> list[str]:
    listed = list(values) if isinstance(values, Iterable) and not isinstance(values, str) else None
    if listed is None or not all(isinstance(v, str) for v in listed):
        raise ValueError(f"{where}: give a list of strings, e.g. {where}=['myapp']")
    return listed


#: loggers whose records are the SDK's or its event loop's, never the application's
_INFRASTRUCTURE_LOGGERS = ("asyncio", "trio", "anyio", "claude_agent_sdk")


def _infrastructure(event: Event) -> bool:
    origin = event.origin or ""
    return event.channel != STDERR_OUTPUT and any(origin == n or origin.startswith(n + ".") for n in _INFRASTRUCTURE_LOGGERS)


def _own(event: Event) -> bool:
    """An object of this plugin (e.g. ScriptedTransport's stdout generator under trio): never the SDK's doing."""
    return event.subject is not None and event.subject.startswith(f"{__package__}.")


class TeardownWatch:
    """Installs every observation hook for a window and restores them after.

    Usable as ``with`` (around ``asyncio.run(...)``: loop errors reach it through the ``asyncio``
    logger) and as ``async with`` inside a running loop (it then also takes the loop's exception
    handler, and lets pending finalizers run before it looks). With ``check_on_exit`` it raises
    :class:`AssertionError` naming the manifestation and the pattern, or warns (TeardownWarning)
    when only what warnings show was seen (:meth:`check`).
    """

    def __init__(self, *, pattern: str | None = None, transport: ScriptedTransport | Sessions | None = None,
                 check_on_exit: bool = False, allow_loggers: Iterable[str] = (), allow_stderr: Iterable[str] = (),
                 echo_stderr: bool = False) -> None:
        self.pattern = pattern
        self.transport = transport
        self.teardown = Teardown()
        self.allowed = Allowed.of(allow_loggers, allow_stderr)
        self._echo_stderr = echo_stderr  # pass what is printed on (pytest shows it), besides judging it
        self._capture: _StderrCapture | None = None
        self._check_on_exit = check_on_exit
        self._transport_checked = False  # its close count is judged once, however often the verdict is asked
        self._shown_elsewhere: Callable[..., Any] = warnings.showwarning
        self._stack: contextlib.ExitStack | None = None
        self._restore_loop: Callable[[], None] = lambda: None

    # ------------------------------------------------------------ hooks
    def install(self) -> None:
        stack = contextlib.ExitStack()
        stack.enter_context(_swap(sys, "unraisablehook", self._unraisable))
        stack.enter_context(warnings.catch_warnings())
        warnings.simplefilter("always", ResourceWarning)
        warnings.simplefilter("always", RuntimeWarning)
        self._shown_elsewhere = warnings.showwarning  # where warnings this watch does not judge still go
        stack.enter_context(_swap(warnings, "showwarning", self._warning))
        stack.enter_context(_swap(logging.Logger, "callHandlers", _dispatch_through(_LogCapture(self.teardown))))
        self._capture = _StderrCapture(sys.stderr, self._echo_stderr)
        stack.enter_context(contextlib.redirect_stderr(self._capture))
        stack.callback(self._stderr, self._capture)
        self._stack = stack

    @contextlib.contextmanager
    def capturing_stderr(self) -> Iterator[None]:
        """Take ``sys.stderr`` back for a stretch of the window after someone replaced it (pytest
        does at the start of each test phase); echoed output goes to their stream meanwhile."""
        capture = self._capture
        if capture is None or not capture.open or sys.stderr is capture:
            yield
            return
        previous, capture.replaced = capture.replaced, sys.stderr
        try:
            with contextlib.redirect_stderr(capture):
                yield
        finally:
            capture.replaced = previous

    def allow(self, *, loggers: Iterable[str] = (), stderr: Iterable[str] = ()) -> None:
        """Let the application log (``loggers``) or print (``stderr`` regexes) without failing the check."""
        self.allowed += Allowed.of(loggers, stderr)

    def uninstall(self) -> None:
        if self._stack is not None:
            self._stack.close()
            self._stack = None

    def attach_loop(self, loop: asyncio.AbstractEventLoop) -> Callable[[], None]:
        """Take ``loop``'s exception handler; returns the function that gives it back."""
        previous = loop.get_exception_handler()
        loop.set_exception_handler(loop_handler(self.teardown))
        return lambda: loop.set_exception_handler(previous)

    def _unraisable(self, unraisable: Any) -> None:
        exc = unraisable.exc_value
        where = unraisable.err_msg or "Exception ignored in"
        self.teardown.record(_channel_of(where, UNRAISABLE), f"{where} {unraisable.object!r}: {_describe(exc)}", exc)

    def _warning(self, message: Warning | str, category: type[Warning], filename: str, lineno: int,
                 file: Any = None, line: str | None = None) -> None:
        text = str(message)
        subject = None
        if issubclass(category, ResourceWarning):
            gc_warning = _GC_WARNING.search(text)
            subject = gc_warning.group(1) if gc_warning else None
            channel = ASYNCGEN_GC_WARNING if gc_warning else RESOURCE_WARNING
        elif issubclass(category, RuntimeWarning):
            channel = RUNTIME_WARNING
        else:  # deprecations, the harness's own warnings and the like say nothing about teardown: shown as ever
            self._shown_elsewhere(message, category, filename, lineno, file, line)
            return
        self.teardown.record(channel, f"{text.split('. ')[0]} ({filename}:{lineno})", subject=subject)

    def _stderr(self, capture: _StderrCapture) -> None:
        """Every output printed is judged: a line printed after a traceback does not hide its cause."""
        capture.open = False
        for output in printed_outputs(capture.kept.getvalue()):
            headline = output[-1]
            shown = next((line for line in output if causes(None, line)), headline)
            detail = shown.strip()[:300] + (f" ({len(output)} lines)" if len(output) > 1 else "")
            self.teardown.events.append(Event(STDERR_OUTPUT, causes(None, "\n".join(output)), scrub(detail), origin=headline))

    # ------------------------------------------------------------ verdict
    def _harm(self) -> list[Event]:
        if self.transport is not None and not self._transport_checked:
            self._transport_checked = True
            if isinstance(self.transport, Sessions):
                for session, transport in self.transport.opened():
                    self.teardown.check_transport(transport, f"the transport of {session}")
            else:
                self.teardown.check_transport(self.transport)
        return [e for e in self.teardown.harm if not _own(e) and not self.allowed.permits(e)]

    def _loud(self, harm: list[Event]) -> bool:
        """Something a run shows by default: any manifestation beyond what warnings show, or a hang."""
        return bool(self.teardown.hung) or any(not set(e.names) <= QUIET for e in harm)

    def failure(self) -> str | None:
        """The assertion message for a noisy teardown, or None when it was clean or showed only
        what warnings show (see :meth:`warning`)."""
        harm = self._harm()
        return self._message("unclean teardown", harm) if self._loud(harm) else None

    def warning(self) -> str | None:
        """The message for a teardown that showed only what warnings show (a ResourceWarning, an
        async generator's GC warning): ``check``'s ``warnings`` tier, a warning rather than a failure."""
        harm = self._harm()
        return self._message("teardown showed warnings", harm) if harm and not self._loud(harm) else None

    def _message(self, headline: str, harm: list[Event]) -> str:
        where = f" in consumer pattern {self.pattern!r}" if self.pattern else ""
        names = sorted({n for e in harm for n in e.names})
        lines = [f"{headline}{where}: {', '.join(names) or 'hang'}"]
        lines += [f"  - {e.describe()}" for e in harm[:8]]
        if len(harm) > 8:
            lines.append(f"  - ... and {len(harm) - 8} more")
        if self.teardown.hung:
            lines.append(f"  - hang: {self.teardown.hung}")
        if any(e.origin is not None and not _infrastructure(e) for e in harm):
            lines.append("  (your application's own logging or output? allow it: @pytest.mark.agentsdk(allow_loggers=['myapp'], "
                         "allow_stderr=[r'^regex']) or agentsdk_teardown.allow(loggers=..., stderr=...))")
        lines.append("  (which consumer patterns are safe on this SDK release: python -m pytest_agentsdk check --bug cross_task_close)")
        return "\n".join(lines)

    def check(self, warn: Callable[[str], None] | None = None) -> None:
        """Raise CrossTaskCloseShown for a noisy teardown; for one that showed only what warnings
        show, ``warn(message)``, by default a TeardownWarning at the first caller outside this package."""
        message = self.failure()
        if message:
            raise CrossTaskCloseShown(message)
        quiet = self.warning()
        if quiet:
            (warn or _warn_at_caller)(quiet)

    # ------------------------------------------------------------ context managers
    def __enter__(self) -> TeardownWatch:
        self.install()
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        gc.collect()  # "never retrieved" / "destroyed pending" are reported when the task is collected
        self.uninstall()
        if self._check_on_exit and et is None:
            self.check()

    async def __aenter__(self) -> TeardownWatch:
        self.install()
        self._restore_loop = self._attach_running_loop()
        return self

    async def __aexit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        import anyio

        try:
            gc.collect()
            await anyio.sleep(0)  # finalizer hooks schedule aclose() tasks: let them start and finish
            await anyio.wait_all_tasks_blocked()
            gc.collect()
        finally:
            self._restore_loop()
            self.uninstall()
        if self._check_on_exit and et is None:
            self.check()

    def _attach_running_loop(self) -> Callable[[], None]:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # trio: no loop exception handler; errors surface through the other hooks
            return lambda: None
        return self.attach_loop(loop)


def _warn_at_caller(message: str) -> None:
    """A TeardownWarning at the first frame outside this package and contextlib (the user's
    ``with`` / ``async with`` / call), so filters and the warning summary name their file."""
    level = 2  # stacklevel 2 is the frame below: this function's caller
    frame: FrameType | None = sys._getframe(1)
    while frame is not None and (frame.f_globals.get("__name__", "").startswith(f"{__package__}.") or
                                 frame.f_code.co_filename == contextlib.__file__):
        level, frame = level + 1, frame.f_back
    warnings.warn(TeardownWarning(message), stacklevel=level)


@contextlib.contextmanager
def _swap(owner: Any, name: str, value: Any) -> Iterator[None]:
    previous = getattr(owner, name)
    setattr(owner, name, value)
    try:
        yield
    finally:
        setattr(owner, name, previous)


# ---------------------------------------------------------------- the runner
def run_observed(main: Callable[[Teardown], Awaitable[Any]], backend: str, *, wall: float = 10.0,
                 pattern: str | None = None, schedule: int | str = 0,
                 own_errors: tuple[type[BaseException], ...] = (), skip_idle: bool = False) -> tuple[Any, Teardown]:
    """Run ``main(teardown)`` as ``asyncio.run`` / ``trio.run`` would, observing the whole run.

    The window covers the loop's shutdown (asyncio.run's cancellation of leftover tasks and
    ``shutdown_asyncgens``, trio's end-of-run async generator finalization) and a garbage
    collection after it. Anything escaping ``main`` is what the consumer's task received: a
    cancellation it never asked for (``stray_cancellation``) or an error (``consumer_error``);
    anything escaping the runner after that is a ``run_error``. Automatic GC is paused during the
    run so that when generators are collected is decided by ``main`` (explicit ``gc.collect()``),
    not by allocation counts: same example, same interleaving. trio breaks ties between runnable
    tasks at random; ``schedule`` seeds that choice or pins it (:mod:`pytest_agentsdk.ties`;
    asyncio's FIFO scheduler has none).
    ``own_errors``: the consumer's own exceptions, left to escape the run as a crashing program's
    would; they are not manifestations, what the teardown prints around them is.
    ``skip_idle``: the loop's clock jumps over waits only a timer can end and stands still while
    work runs (:mod:`pytest_agentsdk.virtual_time`): for scripted runs, whose every wait is the
    loop's own, so their timing does not move with the machine's load.
    """
    watch = TeardownWatch(pattern=pattern)
    teardown = watch.teardown
    result: list[Any] = []
    enabled = gc.isenabled()
    gc.disable()
    gc.freeze()  # what existed before the run is not ours; keeps each collection cheap
    watch.install()
    crashed_at: int | None = None
    try:
        try:
            _RUNNERS[backend](_guarded(main, teardown, result, own_errors), teardown, wall, schedule, skip_idle)
        except (KeyboardInterrupt, SystemExit):
            raise
        except own_errors:
            pass
        except BaseException as exc:  # what the runner itself raised after main: trio's corruption errors
            teardown.record_exception(STRAY_CANCELLATION if _is_cancellation(exc) else RUN_ERROR, exc)
            if type(exc).__name__ == "TrioInternalError":
                crashed_at = len(teardown.events)
        teardown.kept.clear()
        gc.collect()
        if crashed_at is not None:
            teardown.after_crash, teardown.events[crashed_at:] = teardown.events[crashed_at:], []
    finally:
        watch.uninstall()
        gc.unfreeze()
        if enabled:
            gc.enable()
    return (result[0] if result else None), teardown


def _is_cancellation(exc: BaseException) -> bool:
    """asyncio's CancelledError or trio's Cancelled (without importing trio)."""
    return isinstance(exc, asyncio.CancelledError) or type(exc).__name__ == "Cancelled"


def _guarded(main: Callable[[Teardown], Awaitable[Any]], teardown: Teardown, out: list[Any],
             own_errors: tuple[type[BaseException], ...] = ()) -> Callable[[], Awaitable[None]]:
    async def consumer() -> None:
        import anyio

        try:
            out.append(await main(teardown))
        except anyio.get_cancelled_exc_class() as exc:
            if not teardown.hung:
                teardown.record(STRAY_CANCELLATION, "the consumer's task was cancelled by nobody it asked: "
                                + (_describe(exc) or type(exc).__name__), exc)
        except own_errors:
            raise
        except Exception as exc:
            teardown.record_exception(CONSUMER_ERROR, exc)
            if not causes(exc):  # an unrecognised error: keep the traceback for the report
                teardown.events[-1].detail += "\n" + scrub("".join(traceback.format_exception(exc, limit=-6)))

    return consumer


class _OrderedAsyncgens:
    """The loop's registry of live async generators, in creation order.

    asyncio keeps them in a WeakSet, whose order follows memory addresses, so
    ``shutdown_asyncgens`` would close them in a different order from run to run, and which
    generator reports "already running" would change with it. Same seed, same evidence.
    """

    def __init__(self) -> None:
        self._refs: dict[int, weakref.ref[Any]] = {}

    def add(self, agen: Any) -> None:
        key = id(agen)
        self._refs[key] = weakref.ref(agen, lambda _: self._refs.pop(key, None))

    def discard(self, agen: Any) -> None:
        self._refs.pop(id(agen), None)

    def clear(self) -> None:
        self._refs.clear()

    def __len__(self) -> int:
        return len(self._refs)

    def __iter__(self) -> Iterator[Any]:
        return iter([agen for ref in list(self._refs.values()) if (agen := ref()) is not None])


def _run_asyncio(consumer: Callable[[], Awaitable[None]], teardown: Teardown, wall: float, schedule: int | str, skip_idle: bool) -> None:
    loops: list[asyncio.AbstractEventLoop] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        loop._asyncgens = _OrderedAsyncgens()  # type: ignore[attr-defined]
        loops.append(loop)
        task = asyncio.current_task()
        assert task is not None
        loop.set_exception_handler(loop_handler(teardown))  # kept by the closed loop for late reports

        def bound() -> None:
            teardown.hung = f"the run exceeded its {wall} s wall-clock bound"
            task.cancel()

        def shutdown_stuck() -> None:
            teardown.hung = f"asyncio.run did not return {SHUTDOWN_WALL_S} s after main returned: its shutdown waits forever"
            teardown.record(SHUTDOWN_HANG, teardown.hung + " on " + ", ".join(
                scrub(f"{t.get_name()} {t.get_coro()!r}") for t in asyncio.all_tasks(loop) if not t.done()))
            loop.stop()

        handle = loop.call_later(wall, bound)
        try:
            await consumer()
        finally:
            handle.cancel()
            loop.call_later(SHUTDOWN_WALL_S, shutdown_stuck)  # fires only while asyncio.run is still shutting down
            teardown.pending_at_return = sorted(
                scrub(f"{t.get_name()} {getattr(t.get_coro(), '__qualname__', '?')}")
                for t in asyncio.all_tasks(loop) if t is not task and not t.done()
            )

    try:
        # what the consumer's program does: cancel leftovers, shutdown_asyncgens, close
        virtual_time.asyncio_run(main()) if skip_idle else asyncio.run(main())
    except RuntimeError:
        if not teardown.hung:  # the loop was stopped because its shutdown never ended: recorded
            raise
    finally:
        for loop in loops:
            _left_pending(loop, teardown)


def _left_pending(loop: asyncio.AbstractEventLoop, teardown: Teardown) -> None:
    for task in asyncio.all_tasks(loop):
        if not task.done():
            teardown.record(TASK_LEFT_PENDING, f"{task.get_name()} still pending after the loop closed: {task.get_coro()!r}")


def _run_trio(consumer: Callable[[], Awaitable[None]], teardown: Teardown, wall: float, schedule: int | str, skip_idle: bool) -> None:
    import trio

    from .explore import seeded_trio_scheduler  # explore imports Hypothesis: not for the production guards
    from .ties import PinnedTies

    async def main() -> None:
        async def bound() -> None:
            await trio.sleep(wall)
            teardown.hung = f"the run exceeded its {wall} s wall-clock bound"
            raise TimeoutError(teardown.hung)  # a system task failing ends trio.run

        trio.lowlevel.spawn_system_task(bound)
        await consumer()

    with seeded_trio_scheduler(schedule) as scheduler:
        try:
            trio.run(main, clock=virtual_time.trio_clock() if skip_idle else None)  # trio finalizes leftover async generators before it returns
        finally:
            teardown.ties_used = scheduler.used if isinstance(scheduler, PinnedTies) else None


_RUNNERS: dict[str, Callable[[Callable[[], Awaitable[None]], Teardown, float, int | str, bool], None]] = {
    "asyncio": _run_asyncio,
    "trio": _run_trio,
}


# ---------------------------------------------------------------- the pytest surface
def assert_clean_teardown(main: Callable[[], Awaitable[Any]] | None = None, /, *, backend: str = "asyncio",
                          pattern: str | None = None, transport: ScriptedTransport | Sessions | None = None,
                          allow_loggers: Iterable[str] = (), allow_stderr: Iterable[str] = ()) -> Any:
    """Fail when a run's teardown is noisy, naming the manifestation and the consumer pattern; warn
    (TeardownWarning) when it showed only what warnings show (a ResourceWarning, an async
    generator collected unfinished), ``check``'s ``warnings`` tier.

    * ``assert_clean_teardown(main, backend="trio")`` runs ``main()`` in a fresh loop as
      ``asyncio.run`` / ``trio.run`` would (loop shutdown included) and returns its result;
    * ``with assert_clean_teardown(pattern="cli"): asyncio.run(app())`` wraps your own run;
    * ``async with assert_clean_teardown(transport=t): ...`` inside an async test.

    With ``transport`` (a ScriptedTransport), it also requires the CLI to have been closed once; given
    a ScriptedCLI (``agentsdk_cli``), every session's transport.
    ``allow_loggers`` (names, children included) and ``allow_stderr`` (regexes searched in each
    printed line, a traceback's exception line) are your application's own, never failing the check.
    """
    if main is None:
        return TeardownWatch(pattern=pattern, transport=transport, check_on_exit=True,
                             allow_loggers=allow_loggers, allow_stderr=allow_stderr, echo_stderr=True)
    watch = TeardownWatch(pattern=pattern, transport=transport, allow_loggers=allow_loggers, allow_stderr=allow_stderr)
    if backend not in _RUNNERS:
        raise ValueError(f"backend {backend!r}: use one of {', '.join(_RUNNERS)}")
    value, watch.teardown = run_observed(lambda _: main(), backend, pattern=pattern)
    watch.check()
    return value


__all__ = ["Allowed", "Event", "Teardown", "TeardownWatch", "assert_clean_teardown", "causes", "printed_outputs", "run_observed"]
