"""Ctrl-C for the commands: exit 130 within a second, one line on stderr, nothing left behind.

An interrupt cannot be left to travel as ``KeyboardInterrupt``. Inside a run, asyncio's runner
and trio turn it into a cancellation of the running task, which the harness records as the
SDK's ``stray_cancellation`` and judges on; raised in a finalizer (trio's ``Nursery.__del__``)
Python prints it and ignores it; raised between two statements of a ``finally`` it can skip
the cleanup it interrupts. So, while a command runs, SIGINT is handled here without raising: the
handler kills the child processes still running (env builds, checks in other envs, each in
its own process group), removes the temporary directories being built, prints one line and
exits 130. A handler of our own also keeps asyncio and trio from installing theirs (they only
replace Python's default one), so a run that is not interrupted runs exactly as before.

SIGTERM (a cancelled CI job, ``timeout``, ``kill``) stops a command the same way: the same
cleanup, ``pytest-agentsdk: terminated`` and exit 143 (128 + 15, as a shell reports it).

A main thread that waits while other threads run waits through :func:`as_completed`, :func:`wait`,
:func:`wait_process` or :func:`join`: the kernel may hand the signal to a worker thread, and
CPython then runs the handler only once the main thread next wakes, which a wait with no timeout
does only when what it waits for ends (a Ctrl-C during two env builds was handled when the first
build ended, and that env stayed in the cache). Not covered: an asyncio loop judging real-CLI
rows in this process (``check --cli``) wakes for the CLI's output and its timers only.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent import futures
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

T = TypeVar("T")

EXIT_CODE = 130
MESSAGE = "pytest-agentsdk: interrupted"
#: The signals handled here: what each makes the command say, and its exit status.
STOPS: dict[int, tuple[str, int]] = {
    signal.SIGINT: (MESSAGE, EXIT_CODE),
    signal.SIGTERM: ("pytest-agentsdk: terminated", 128 + signal.SIGTERM),
}
#: How long the handler waits for a thread that is starting a child to register it.
_SPAWN_WAIT_S = 0.3
#: How long it waits for killed children to die before removing the directories they wrote to.
REAP_WAIT_S = 0.3
#: How often a main thread waiting on workers wakes, so a signal a worker thread took is handled.
WAKE_S = 0.1

_children: dict[int, tuple[subprocess.Popen[Any], bool]] = {}  # id -> (process, leads its own group)
_paths: dict[int, Path] = {}
_cleanups: dict[int, Callable[[], object]] = {}
_spawning: dict[int, bool] = {}  # threads between starting a child and registering it
#: ``stopping`` once a signal came, ``signal`` which; ``stopper``: the thread that must finish the
#: stop, when the signal found it starting a child (it stops once the child is registered, so
#: nothing escapes)
_state: dict[str, Any] = {"stopping": False, "signal": signal.SIGINT, "stopper": None}
#: Held by a rename into place and by the stop while it deletes: a builder thread keeps running
#: while the main thread stops, and must not move a directory the stop is half-way through
#: deleting into the cache (reentrant: the handler may run in the main thread inside a rename)
_renaming = threading.RLock()


@contextmanager
def handled() -> Iterator[None]:
    """Handle SIGINT and SIGTERM as described above while the block runs (main thread only). A
    command started with a signal ignored (SIGINT for ``cmd &`` in a script) keeps ignoring it."""
    previous = {signum: signal.signal(signum, _on_signal) for signum in STOPS if signal.getsignal(signum) is not signal.SIG_IGN}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@contextmanager
def child(cmd: Sequence[str], *, own_group: bool = True, **popen: Any) -> Iterator[subprocess.Popen[Any]]:
    """``subprocess.Popen(cmd, **popen)``, killed if the command is interrupted while it runs, or
    if the block raises (pytest's KeyboardInterrupt in a test that builds envs).

    ``own_group`` starts it in a new session, so a terminal's Ctrl-C reaches only the command
    (which then kills the child's whole group: a build's own subprocesses too); a child that may
    need the terminal (git asking for a password) stays in the caller's group.
    """
    me = threading.get_ident()
    _spawning[me] = True
    try:
        if not _state["stopping"]:
            proc = subprocess.Popen(list(cmd), start_new_session=own_group, **popen)
            _children[id(proc)] = (proc, own_group)
    finally:
        _spawning.pop(me, None)
        if _state["stopping"]:  # being stopped (even when starting the child failed): finish that here, or wait for the exit
            if _state["stopper"] == me:
                _stop()
            threading.Event().wait()
    try:
        yield proc
    except BaseException:
        _kill(proc, own_group)
        proc.wait()
        raise
    finally:
        _children.pop(id(proc), None)


def run(cmd: Sequence[str], *, timeout: float | None = None, own_group: bool = True, **popen: Any) -> subprocess.CompletedProcess[str]:
    """``subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)`` as a :func:`child`."""
    with child(cmd, own_group=own_group, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen) as proc:
        out, err = proc.communicate(timeout=timeout)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


@contextmanager
def cleaned_up_on_interrupt(cleanup: Callable[[], object]) -> Iterator[None]:
    """``cleanup()`` runs if the command is interrupted inside the block, before the directories
    go (a real CLI's session: the CLI processes the SDK started are not our children)."""
    _cleanups[id(cleanup)] = cleanup
    try:
        yield
    finally:
        _cleanups.pop(id(cleanup), None)


class Stopping(Exception):
    """Raised in a thread that would rename a directory into place while the command stops."""


def rename_into_place(built: Path, final: Path) -> None:
    """``os.rename(built, final)`` of a path under :func:`removed_on_interrupt`, unless the command
    is stopping (Stopping): the stop is deleting ``built``, and ends the process."""
    with _renaming:
        if _state["stopping"]:
            raise Stopping(f"not moving {built.name} into place: the command is stopping")
        os.rename(built, final)


@contextmanager
def removed_on_interrupt(path: Path) -> Iterator[Path]:
    """``path`` (a directory being built, a file or link about to be renamed into place) is
    deleted if the command is interrupted inside the block."""
    _paths[id(path)] = path
    try:
        yield path
    finally:
        _paths.pop(id(path), None)


def as_completed(waited: Iterable[futures.Future[T]]) -> Iterator[futures.Future[T]]:
    """``concurrent.futures.as_completed(waited)`` (those done together in the order given), waking
    every WAKE_S: a signal is handled within that, whichever thread the kernel handed it to."""
    order = list(waited)
    pending = set(order)
    while pending:
        done, pending = futures.wait(pending, timeout=WAKE_S, return_when=futures.FIRST_COMPLETED)
        yield from (f for f in order if f in done)


def wait(waited: Iterable[futures.Future[Any]]) -> None:
    """``concurrent.futures.wait(waited)``, waking as :func:`as_completed` does (before a pool's
    exit, which would wait for its threads unwoken)."""
    for _ in as_completed(waited):
        pass


def wait_process(proc: Any, timeout: float | None = None) -> int:
    """``proc.wait(timeout)`` (a ``subprocess.Popen`` or a process-like), waking as
    :func:`as_completed` does: while threads read its pipes, one of them may take the signal."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        left = WAKE_S if deadline is None else deadline - time.monotonic()
        if left <= 0:
            raise subprocess.TimeoutExpired(getattr(proc, "args", "process"), timeout or 0)
        try:
            return int(proc.wait(timeout=min(WAKE_S, left)))
        except subprocess.TimeoutExpired:
            pass


def join(thread: threading.Thread) -> None:
    """``thread.join()``, waking as :func:`as_completed` does."""
    while thread.is_alive():
        thread.join(WAKE_S)


def _on_signal(signum: int, frame: FrameType | None) -> None:
    if _state["stopping"]:
        return
    _state["stopping"] = True
    _state["signal"] = signum
    if threading.get_ident() in _spawning:  # this very thread is starting a child: it stops once that is registered
        _state["stopper"] = threading.get_ident()
        return
    _stop()


def _stop() -> None:
    """Silence every other writer, kill the children, remove the directories, one line, exit."""
    for signum in STOPS:
        signal.signal(signum, signal.SIG_IGN)
    message, code = STOPS[_state["signal"]]
    stderr = os.dup(2)
    quiet = os.open(os.devnull, os.O_WRONLY)
    os.dup2(quiet, 1)
    os.dup2(quiet, 2)
    try:
        deadline = time.monotonic() + _SPAWN_WAIT_S
        while _spawning.keys() - {threading.get_ident()} and time.monotonic() < deadline:
            time.sleep(0.005)
        children = list(_children.values())
        for proc, own_group in children:
            _kill(proc, own_group)
        deadline = time.monotonic() + REAP_WAIT_S
        for proc, _ in children:
            try:
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for cleanup in list(_cleanups.values()):
            try:
                cleanup()
            except Exception:  # one failed cleanup must not keep the others or the exit from happening
                pass
        with _renaming:
            for path in list(_paths.values()):
                for _ in range(3):  # again, if a builder thread still running wrote into it meanwhile
                    if path.is_dir() and not path.is_symlink():
                        shutil.rmtree(path, ignore_errors=True)
                    elif path.is_symlink() or path.exists():
                        path.unlink(missing_ok=True)
                    if not (path.exists() or path.is_symlink()):
                        break
                    time.sleep(0.05)  # what still outlasts this is an abandoned .build-* the next build removes
        os.write(stderr, (message + "\n").encode())
    finally:
        os._exit(code)


def _kill(proc: subprocess.Popen[Any], own_group: bool) -> None:
    """SIGKILL ``proc`` and, when it leads its own process group, everything it started."""
    if proc.returncode is not None:
        return  # reaped: its pid may belong to someone else by now
    try:
        if own_group:
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            proc.kill()
    except ProcessLookupError:
        pass  # already gone
