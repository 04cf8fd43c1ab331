"""Independent jobs, each in a fresh fork of this process, a few at a time; results in job order.

``check`` judges every (bug, model, backend) this way: each judgement starts from the same
state (the parent's, with the SDK and the scenarios imported), whatever ran before it and however
many run at once, so ``--jobs`` changes how long a check takes, never what it says. Where a fork
is not available or not safe (no ``os.fork``, or threads running: a fork copies only the calling
one) the jobs run one after another in this process.

A child ignores SIGINT and dies of SIGTERM: stopping is the parent's
(:mod:`pytest_agentsdk.interrupt`), which kills the children still running before it exits.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import os
import pickle
import selectors
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TypeVar

from . import interrupt

T = TypeVar("T")


def can_fork() -> bool:
    return hasattr(os, "fork") and hasattr(signal, "pthread_sigmask") and threading.active_count() == 1


def default_jobs() -> int:
    """The cores this process may run on."""
    affinity = getattr(os, "sched_getaffinity", None)
    return len(affinity(0)) if affinity else os.cpu_count() or 1


def run(jobs: Sequence[Callable[[], T]], workers: int, crashed: Callable[[int, str], T]) -> Iterator[T]:
    """Each job's result, in job order, as soon as it and those before it are done.

    ``workers`` jobs run at once, each in its own fork. A child that dies without a result
    (killed, or its result does not pickle) gives ``crashed(index, why)``.
    """
    if not can_fork():
        yield from (job() for job in jobs)
        return
    with tempfile.TemporaryDirectory(prefix="pytest-agentsdk-jobs-") as tmp, interrupt.removed_on_interrupt(Path(tmp)):
        running: dict[int, tuple[int, int]] = {}  # the read end of a child's "done" pipe -> (pid, job index)
        status: dict[int, int] = {}  # job index -> wait status

        def kill_running() -> None:
            for pid, _ in running.values():
                _kill(pid)

        def register(fd: int, pid: int, index: int) -> None:
            running[fd] = (pid, index)
            done.register(fd, selectors.EVENT_READ)

        def stop_running() -> None:
            """On a stop: killed and reaped, so none is left behind even as a zombie (a child stuck
            in the kernel is waited for as long as the stop waits for its other children)."""
            kill_running()
            deadline = time.monotonic() + interrupt.REAP_WAIT_S
            for pid, _ in running.values():
                with contextlib.suppress(ChildProcessError):  # reaped already
                    while os.waitpid(pid, os.WNOHANG) == (0, 0) and time.monotonic() < deadline:
                        time.sleep(0.001)

        with interrupt.cleaned_up_on_interrupt(stop_running), selectors.DefaultSelector() as done:
            started = 0

            def start_more() -> None:
                """Keep ``workers`` running: a job waiting for a long one before it must not idle a core."""
                nonlocal started
                while started < len(jobs) and len(running) < max(1, workers):
                    _start(jobs[started], Path(tmp, str(started)), functools.partial(register, index=started))
                    started += 1

            try:
                for index in range(len(jobs)):
                    start_more()
                    while index not in status:
                        for key, _ in done.select():
                            pid, finished = running.pop(key.fd)
                            done.unregister(key.fd)
                            os.close(key.fd)
                            status[finished] = os.waitpid(pid, 0)[1]
                        start_more()
                    yield _result(Path(tmp, str(index)), status[index], index, crashed)
            finally:
                kill_running()
                for fd, (pid, _) in running.items():
                    os.waitpid(pid, 0)
                    os.close(fd)


def _fork_frozen() -> int:
    """``os.fork()``, with what this process holds left out of the fork's garbage collections: a
    collection there would otherwise touch each object's header, so copy every page of the heap
    the fork shares with this process (about a tenth of a check's CPU). This process is left as it
    was (a caller's own freeze is the caller's)."""
    frozen_before = gc.get_freeze_count() > 0
    gc.freeze()
    pid = -1
    try:
        pid = os.fork()
    finally:
        if pid and not frozen_before:  # this process, whether the fork was made or not
            gc.unfreeze()
    return pid


def _start(job: Callable[[], T], out: Path, register: Callable[[int, int], None]) -> None:
    """Fork a child running ``job`` into ``out``; ``register(fd, pid)`` (fd: the read end of a pipe
    the child closes on exit) runs before a signal held across the fork is delivered, so the stop
    it starts kills this child too."""
    sys.stdout.flush()
    sys.stderr.flush()
    read, write = os.pipe()
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, set(interrupt.STOPS))  # a signal now waits until after the fork
    pid = _fork_frozen()
    if pid:
        os.close(write)
        register(read, pid)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        return
    code = 1
    try:
        os.close(read)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if callable(signal.getsignal(signal.SIGTERM)):  # the parent's stop handler: a child just dies
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        result = job()
        with open(out, "wb") as f:
            pickle.dump(result, f)
        code = 0
    finally:
        os._exit(code)  # never the parent's atexit handlers, buffers or finally blocks


def _result(path: Path, status: int, index: int, crashed: Callable[[int, str], T]) -> T:
    if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0 and path.is_file():
        with open(path, "rb") as f:
            return pickle.load(f)  # type: ignore[no-any-return]
    why = f"killed by signal {os.WTERMSIG(status)}" if os.WIFSIGNALED(status) else f"exit status {os.WEXITSTATUS(status)}"
    return crashed(index, f"the process judging it died ({why}) without a result")


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
