"""Event loops whose clock moves only while the loop waits: the scripted runs' clock.

Two rules make a scripted run's timing the same on a loaded machine as on a quiet one:

* **Skip what only a timer can end.** When every task is blocked and nothing but a timer can wake
  one (no callback ready, no wait on a file descriptor other than the loop's own wakeup pipe, no
  thread besides the main one that could call back), the loop would only sleep until its next
  timer. These loops move their clock to that timer instead: a scripted delay of 50 ms,
  ``asyncio.run``'s shutdown bound or a stall watcher's poll costs no wall time.
* **Work takes no time.** Between two waits the clock stands still, as on an infinitely fast CPU.
  A wait anything else could end (a real CLI's pipes, a worker thread) is slept for real and moves
  the clock by its real length, at most by what it asked for (a wait that ran out moves it by
  exactly its timeout). So a 1 ms scripted ``read`` delay expires after the work that was runnable
  when it started, however slowly the machine runs that work; with a clock that counted CPU time
  it could expire in the middle of it when the machine was busy, and a verdict moved with load.

Code that never waits (a task polling the clock with ``sleep(0)``) would see a clock that never
moves, and a run's wall-clock bound would not bound it. So work is counted after all once it adds
up: when the work of one run comes to :data:`CATCH_UP_S` real seconds, the clock moves by it. A
bound of B seconds of loop time thus ends a run within B + CATCH_UP_S seconds of waiting and
work, while a run whose work stays under that (a scripted example does milliseconds of it) keeps
its timing whatever the load. Code reading the wall clock itself (``time.time()``) sees neither
the jumps nor the stops; the loop clock (``loop.time()``, ``anyio.current_time()``,
``trio.current_time()``) does.
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

#: Real seconds of work (time between waits) a run may do before its clock moves by it: far above
#: what a scripted example does on a loaded machine, far below a run's bound.
CATCH_UP_S = 1.0


def _only_main_thread() -> bool:
    """No other thread exists that could call back into the loop (conservative: an idle worker
    thread counts too)."""
    return threading.active_count() == 1


class WaitClock:
    """Time that moves by the loop's waits: a skipped wait by its whole length, a real one by its
    real length, at most what it asked for. The work between waits adds nothing until, in one run,
    it comes to :data:`CATCH_UP_S`; then the clock moves by all of it."""

    def __init__(self, start: float) -> None:
        self._now = start
        self.skipped = 0.0  # seconds of waiting skipped so far
        self._seen = time.perf_counter()  # real time up to which work and waits are accounted
        self._work = 0.0  # real seconds of work the clock has not moved by yet
        self._real_wait: tuple[float, float] | None = None  # (real start, most it counts) of a wait under way

    def now(self) -> float:
        real = time.perf_counter()
        if self._real_wait is not None:
            started, most = self._real_wait
            self._real_wait = None
            self._work += started - self._seen
            self._now += min(real - started, most)
        else:
            self._work += real - self._seen
        self._seen = real
        if self._work > CATCH_UP_S:  # a busy loop, or a loaded machine's very long run: time moves on
            self._now += self._work
            self._work = 0.0
        return self._now

    def skip(self, seconds: float) -> None:
        """A wait only a timer could end, ``seconds`` long, that no one waited."""
        self.skipped += seconds
        self._now += seconds

    def waiting(self, most: float) -> None:
        """A real wait of at most ``most`` seconds starts; :meth:`now` counts it once it is over."""
        self._real_wait = (time.perf_counter(), most)


class _SkippingSelector:
    """The loop's selector: a select that only the next timer could end returns at once, moving
    the loop's clock to that timer; any other select that may block is timed for the clock."""

    def __init__(self, selector: selectors.BaseSelector, loop: SkippingEventLoop) -> None:
        self._selector = selector
        self._loop = loop

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        if timeout is not None and timeout <= 0:  # callbacks are ready: a poll, no wait
            return self._selector.select(timeout)
        if timeout is not None and self._only_timers_can_wake():
            events = self._selector.select(0)  # a wakeup already written, a signal already caught
            if not events:
                self._loop.clock.skip(timeout)
            return events
        self._loop.clock.waiting(math.inf if timeout is None else timeout)
        return self._selector.select(timeout)

    def _only_timers_can_wake(self) -> bool:
        own = self._loop._ssock.fileno()  # type: ignore[attr-defined]  # the loop's self-pipe
        return _only_main_thread() and all(key.fd == own for key in self._selector.get_map().values())

    def __getattr__(self, name: str) -> Any:
        return getattr(self._selector, name)


class SkippingEventLoop(asyncio.SelectorEventLoop):
    """asyncio's selector loop on a :class:`WaitClock`: it jumps over waits only a timer can end
    and stands still while callbacks run."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = WaitClock(time.monotonic())
        self._selector: Any = _SkippingSelector(self._selector, self)  # type: ignore[has-type]

    @property
    def skipped(self) -> float:
        return self.clock.skipped

    def time(self) -> float:
        return self.clock.now()


def asyncio_run(main: Any) -> Any:
    """``asyncio.run(main)`` on a :class:`SkippingEventLoop` (the plain loop before Python 3.11,
    which has no ``asyncio.Runner``)."""
    runner = getattr(asyncio, "Runner", None)
    if runner is None:
        return asyncio.run(main)
    with runner(loop_factory=SkippingEventLoop) as r:
        return r.run(main)


def trio_clock() -> trio.abc.Clock:
    """A clock for ``trio.run(clock=...)`` on a :class:`WaitClock` starting where trio's
    ``SystemClock`` would (a random offset): it jumps over waits only the next deadline can end
    and stands still while tasks run; a ``wait_all_tasks_blocked`` waiter due first, an I/O wait
    or a queued ``run_sync_soon`` is waited for real."""
    return _trio_clock_class()()


@functools.cache
def _trio_clock_class() -> type[trio.abc.Clock]:
    import trio
    import trio._core._run as trio_run
    from trio._core._run import GLOBAL_RUN_CONTEXT

    class SkippingTrioClock(trio.abc.Clock):
        def __init__(self) -> None:
            # SystemClock's random offset, drawn from the same generator: the scheduler's seeded
            # tie-breaks that follow are the ones a run on trio's own clock gets. Read from the
            # module now, as SystemClock does: a run may swap it (pinned tie-breaks)
            self.clock = WaitClock(trio_run._r.uniform(10000, 200000))

        @property
        def skipped(self) -> float:
            return self.clock.skipped

        def start_clock(self) -> None:
            pass

        def current_time(self) -> float:
            return self.clock.now()

        def deadline_to_sleep_time(self, deadline: float) -> float:
            """Called only when no task is runnable; trio waits for I/O (at most the returned
            seconds, or a waiter's cushion) next and reads the clock right after."""
            remaining = deadline - self.current_time()
            if remaining <= 0:
                return remaining
            cushion = _first_idle_cushion()
            if cushion is None:  # unknown waiters: nothing is skipped, a wait counts its real length
                self.clock.waiting(remaining)
                return remaining
            if math.isinf(remaining) or cushion < remaining or not _only_deadline_can_wake():
                self.clock.waiting(min(remaining, cushion))  # the wait ends at the deadline or the cushion
                return remaining
            self.clock.skip(remaining)
            return 0.0

    def _first_idle_cushion() -> float | None:
        """The cushion of the first ``wait_all_tasks_blocked`` waiter (it wakes after real idle
        time, so a wait it ends is never skipped), inf without one, None where this trio keeps
        its waiters elsewhere."""
        idle_waiters = getattr(GLOBAL_RUN_CONTEXT.runner, "waiting_for_idle", None)
        if idle_waiters is None:
            return None
        return idle_waiters.keys()[0][0] if idle_waiters else math.inf

    def _only_deadline_can_wake() -> bool:
        stats = trio.lowlevel.current_statistics()
        io = stats.io_statistics
        waits = sum(getattr(io, name, 0) for name in ("tasks_waiting_read", "tasks_waiting_write", "tasks_waiting", "tasks_waiting_overlapped"))
        # trio's own run_sync_soon task always waits on its wakeup socket
        return _only_main_thread() and waits <= 1 and stats.run_sync_soon_queue_size == 0

    return SkippingTrioClock
