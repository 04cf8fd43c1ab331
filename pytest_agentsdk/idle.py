"""Can anything still happen in this event loop? The scripted CLI's test for a stall.

``anyio.wait_all_tasks_blocked()`` says that every task waits, not that it waits for ever: a task
asleep, waiting for a worker thread or for a socket runs again. :func:`wait_until_nothing_can_happen`
returns only when every task is blocked and nothing the running backend shows can wake one within
``horizon`` seconds: no timer due (a sleep, a deadline), no worker thread busy, no callback queued.
A timer due later does not count (the SDK's 60 s control timeout, a test's ``fail_after(30)``).
What the backend cannot show when it will end (a task waiting on a file descriptor) holds a stall
off until no task has taken a step for ``horizon`` seconds. Threads started by other means than
``anyio.to_thread`` or the event loop's default executor are not seen.

The probe reads what each backend keeps about its loop: trio's public run statistics, asyncio's
timer heap, ready queue and selector (as anyio's own ``wait_all_tasks_blocked`` reads its tasks).
Waiting here never arms a timer the probe would count, so several scripted CLIs in one loop do not
keep each other awake.
"""

from __future__ import annotations

import asyncio
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.lowlevel

#: How often a waiting check looks again (a sleeping task, a busy thread, an open socket).
POLL_S = 0.02
#: Scheduler passes spent looking for "every task blocked" before polling at POLL_S (asyncio).
SETTLE_PASSES = 8
#: Tasks running wait_until_nothing_can_happen: their own polls are no one's progress.
_WAITERS: set[int] = set()


@dataclass(frozen=True)
class WakeSources:
    """What may still wake a task, read from inside the loop."""

    runnable: bool = False  # a task or callback is ready to run
    timer_in: float = math.inf  # seconds to the next timer or deadline
    threads: int = 0  # worker threads running a job
    fd_waits: int = 0  # waits on file descriptors (sockets, pipes)
    unseen: str | None = None  # what this loop does not show

    def holds(self, horizon: float) -> bool:
        """Something will happen, and soon enough to wait for it."""
        return self.runnable or self.threads > 0 or self.timer_in <= horizon

    def undecidable(self) -> bool:
        """Something may happen, at a moment no one can tell."""
        return self.fd_waits > 0 or self.unseen is not None


async def wait_until_nothing_can_happen(horizon: float, busy: Callable[[], bool] = lambda: False) -> WakeSources:
    """Return once every other task is blocked and nothing can wake one within ``horizon`` seconds
    (``busy()``: the caller knows of work in flight of its own), with what the loop showed then
    (a timer due later, say, for a diagnosis)."""
    backend = _Trio() if _in_trio() else _Asyncio()
    quiet_since: float | None = None
    mark: Any = None
    me = anyio.get_current_task().id
    _WAITERS.add(me)
    try:
        while True:
            await backend.settle()
            sources = backend.sources()
            if busy() or sources.holds(horizon):
                quiet_since = None
            elif not sources.undecidable():
                return sources
            else:
                now, current = anyio.current_time(), _progress_mark()
                if quiet_since is None or current != mark:
                    quiet_since, mark = now, current
                elif now - quiet_since >= horizon:
                    return sources
            await backend.pause()
    finally:
        _WAITERS.discard(me)


def _in_trio() -> bool:
    trio = sys.modules.get("trio")
    return trio is not None and trio.lowlevel.in_trio_task()


def _threads_busy() -> int:
    return int(anyio.to_thread.current_default_thread_limiter().borrowed_tokens)


def _progress_mark() -> dict[int, Any]:
    """What each task awaits right now: a task that took a step awaits a new object."""
    mark = {}
    for info in anyio.get_running_tasks():
        if info.id in _WAITERS:
            continue
        awaited: Any = info.coro
        while (inner := getattr(awaited, "cr_await", None) or getattr(awaited, "gi_yieldfrom", None)) is not None:
            awaited = inner
        mark[info.id] = awaited
    return mark


class _Trio:
    async def settle(self) -> None:
        import trio.testing

        await trio.testing.wait_all_tasks_blocked()

    async def pause(self) -> None:
        import trio.testing

        await trio.testing.wait_all_tasks_blocked(cushion=POLL_S)  # idle for POLL_S, no deadline armed

    def sources(self) -> WakeSources:
        import trio

        stats = trio.lowlevel.current_statistics()
        io = stats.io_statistics
        waits = sum(getattr(io, name, 0) for name in ("tasks_waiting_read", "tasks_waiting_write", "tasks_waiting", "tasks_waiting_overlapped"))
        return WakeSources(
            runnable=stats.tasks_runnable > 0 or stats.run_sync_soon_queue_size > 0,
            timer_in=stats.seconds_to_next_deadline,
            threads=_threads_busy(),
            fd_waits=max(0, waits - 1),  # trio's own run_sync_soon task always waits on its wakeup socket
        )


def _wake(future: asyncio.Future[None]) -> None:
    """The callback of this module's own timers, which the probe leaves out."""
    if not future.done():
        future.set_result(None)


class _Asyncio:
    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()

    async def settle(self) -> None:
        passes = 0
        while not self._all_blocked():
            passes += 1
            if passes < SETTLE_PASSES:
                await anyio.lowlevel.checkpoint()
            else:
                await self.pause()

    async def pause(self) -> None:
        future = self.loop.create_future()
        handle = self.loop.call_later(POLL_S, _wake, future)
        try:
            await future
        finally:
            handle.cancel()

    def _all_blocked(self) -> bool:
        me = asyncio.current_task()
        if any(not handle.cancelled() for handle in getattr(self.loop, "_ready", ())):
            return False
        for task in asyncio.all_tasks(self.loop):
            waiter = getattr(task, "_fut_waiter", None)
            if task is not me and (waiter is None or waiter.done()):
                return False
        return True

    def sources(self) -> WakeSources:
        loop = self.loop
        scheduled = getattr(loop, "_scheduled", None)
        selector = getattr(loop, "_selector", None)
        if scheduled is None or selector is None:
            return WakeSources(threads=_threads_busy(), unseen=f"the timers and sockets of {type(loop).__name__}")
        due = [h.when() for h in scheduled if not h.cancelled() and getattr(h, "_callback", None) is not _wake]
        own = getattr(getattr(loop, "_ssock", None), "fileno", lambda: -1)()  # the loop's self-pipe
        return WakeSources(
            timer_in=min(due) - loop.time() if due else math.inf,
            threads=_threads_busy() + _executor_busy(loop),
            fd_waits=sum(1 for key in selector.get_map().values() if key.fd != own),
        )


def _executor_busy(loop: asyncio.AbstractEventLoop) -> int:
    """Jobs the loop's default executor (``asyncio.to_thread``, ``run_in_executor(None, ...)``) runs or holds."""
    executor = getattr(loop, "_default_executor", None)
    threads, idle, queue = (getattr(executor, name, None) for name in ("_threads", "_idle_semaphore", "_work_queue"))
    if threads is None or idle is None or queue is None:
        return 0
    return max(0, len(threads) - idle._value) + queue.qsize()
