"""Event loops that skip a wait only a timer can end: the scripted runs' clock.

When every task is blocked and nothing but a timer can wake one (no callback ready, no wait on a
file descriptor other than the loop's own wakeup pipe, no thread besides the main one that could
call back), the loop would only sleep until its next timer. These loops move their clock to that
timer instead of sleeping: events happen in the order, and at the loop times, they would in real
time, so a scripted delay of 50 ms, ``asyncio.run``'s shutdown bound or a stall watcher's poll
costs no wall time. A wait anything else could end (a real CLI's pipes, a worker thread) is slept
for real. Code reading the wall clock itself (``time.time()``) sees no jump; the loop clock
(``loop.time()``, ``anyio.current_time()``, ``trio.current_time()``) does.
"""

from __future__ import annotations

import asyncio
import functools
import math
import selectors
import threading
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import trio


def _only_main_thread() -> bool:
    """No other thread exists that could call back into the loop (conservative: an idle worker
    thread counts too)."""
    return threading.active_count() == 1


class _SkippingSelector:
    """The loop's selector: a select that only the next timer could end returns at once,
    moving the loop's clock to that timer."""

    def __init__(self, selector: selectors.BaseSelector, loop: SkippingEventLoop) -> None:
        self._selector = selector
        self._loop = loop

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        if timeout is None or timeout <= 0 or not self._only_timers_can_wake():
            return self._selector.select(timeout)
        events = self._selector.select(0)  # a wakeup already written, a signal already caught
        if not events:
            self._loop.skipped += timeout
        return events

    def _only_timers_can_wake(self) -> bool:
        own = self._loop._ssock.fileno()  # type: ignore[attr-defined]  # the loop's self-pipe
        return _only_main_thread() and all(key.fd == own for key in self._selector.get_map().values())

    def __getattr__(self, name: str) -> Any:
        return getattr(self._selector, name)


class SkippingEventLoop(asyncio.SelectorEventLoop):
    """asyncio's selector loop whose clock jumps over waits only a timer can end."""

    def __init__(self) -> None:
        super().__init__()
        self.skipped = 0.0  # seconds of waiting skipped so far
        self._selector: Any = _SkippingSelector(self._selector, self)  # type: ignore[has-type]

    def time(self) -> float:
        return super().time() + self.skipped


def asyncio_run(main: Any) -> Any:
    """``asyncio.run(main)`` on a :class:`SkippingEventLoop` (the plain loop before Python 3.11,
    which has no ``asyncio.Runner``)."""
    runner = getattr(asyncio, "Runner", None)
    if runner is None:
        return asyncio.run(main)
    with runner(loop_factory=SkippingEventLoop) as r:
        return r.run(main)


def trio_clock() -> trio.abc.Clock:
    """A clock for ``trio.run(clock=...)`` like trio's ``SystemClock`` (``perf_counter`` plus a
    random offset) that jumps over waits only the next deadline can end; a
    ``wait_all_tasks_blocked`` waiter due first, an I/O wait or a queued ``run_sync_soon`` keeps
    real time."""
    return _trio_clock_class()()


@functools.cache
def _trio_clock_class() -> type[trio.abc.Clock]:
    import trio
    from trio._core._run import GLOBAL_RUN_CONTEXT, _r

    class SkippingTrioClock(trio.abc.Clock):
        def __init__(self) -> None:
            # SystemClock's random offset, drawn from the same generator: the scheduler's seeded
            # tie-breaks that follow are the ones a run on trio's own clock gets
            self.offset = _r.uniform(10000, 200000)
            self.skipped = 0.0  # seconds of waiting skipped so far

        def start_clock(self) -> None:
            pass

        def current_time(self) -> float:
            return time.perf_counter() + self.offset + self.skipped

        def deadline_to_sleep_time(self, deadline: float) -> float:
            remaining = deadline - self.current_time()
            if remaining <= 0 or math.isinf(remaining) or not _only_deadline_can_wake(remaining):
                return remaining
            self.skipped += remaining
            return 0.0

    def _only_deadline_can_wake(remaining: float) -> bool:
        stats = trio.lowlevel.current_statistics()
        io = stats.io_statistics
        waits = sum(getattr(io, name, 0) for name in ("tasks_waiting_read", "tasks_waiting_write", "tasks_waiting", "tasks_waiting_overlapped"))
        idle_waiters = getattr(GLOBAL_RUN_CONTEXT.runner, "waiting_for_idle", None)
        if idle_waiters is None or (idle_waiters and idle_waiters.keys()[0][0] < remaining):
            return False  # a wait_all_tasks_blocked(cushion) waiter wakes first, after real idle time
        # trio's own run_sync_soon task always waits on its wakeup socket
        return _only_main_thread() and waits <= 1 and stats.run_sync_soon_queue_size == 0

    return SkippingTrioClock
