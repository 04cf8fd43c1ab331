"""The scripted runs' clock skips a wait only a timer can end, and only that."""

from __future__ import annotations

import asyncio
import multiprocessing
import random
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import TypeVar

import pytest

from pytest_agentsdk import virtual_time

T = TypeVar("T")


def alone(fn: Callable[[], T]) -> T:
    """``fn()`` in a fresh process: a skip needs the main thread alone, and this one may hold idle
    threads of earlier tests (trio's thread cache keeps its workers for seconds)."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(fn).result(timeout=60)


def timers_in_order() -> tuple[list[str], float, float]:
    """(wake order, loop time elapsed, skipped) of two gathered sleeps, then two timers and a sleep."""
    woke: list[str] = []

    async def main() -> float:
        loop = asyncio.get_running_loop()
        start = loop.time()
        await asyncio.gather(asyncio.sleep(30, "a"), asyncio.sleep(20, "b"))
        loop.call_later(5, woke.append, "late")
        loop.call_later(1, woke.append, "early")
        await asyncio.sleep(6)
        return loop.time() - start

    loop = virtual_time.SkippingEventLoop()
    try:
        return woke, loop.run_until_complete(main()), loop.skipped
    finally:
        loop.close()


def test_asyncio_skips_a_timer_wait_keeping_the_order_of_timers() -> None:
    woke, elapsed, skipped = alone(timers_in_order)
    assert woke == ["early", "late"]
    assert elapsed >= 36
    assert skipped >= 36 - 1  # the loop clock moved by what was skipped, not by waiting


def test_asyncio_does_not_skip_a_wait_a_socket_can_end() -> None:
    async def main(loop: virtual_time.SkippingEventLoop) -> bytes:
        a, b = socket.socketpair()
        a.setblocking(False)
        try:
            got: asyncio.Future[bytes] = loop.create_future()
            loop.add_reader(a.fileno(), lambda: got.done() or got.set_result(a.recv(10)))
            loop.call_later(60, got.cancel)  # the deadline a skip would jump to
            loop.call_later(0.05, b.send, b"x")  # the socket ends the wait first
            try:
                return await got
            finally:
                loop.remove_reader(a.fileno())
        finally:
            a.close()
            b.close()

    loop = virtual_time.SkippingEventLoop()
    try:
        assert loop.run_until_complete(main(loop)) == b"x"
        assert loop.skipped == 0
    finally:
        loop.close()


def clock_around_work() -> tuple[float, float, float]:
    """(loop time across 50 ms of blocking work, when a 1 ms timer armed before that work fired,
    when a 50 ms sleep a worker thread's presence makes real ended), each from its start."""

    async def main() -> tuple[float, float, float]:
        loop = asyncio.get_running_loop()
        start = loop.time()
        time.sleep(0.05)  # the SDK's own work on a slow machine: the loop does not wait
        across_work = loop.time() - start
        fired = loop.create_future()
        armed = loop.time()
        loop.call_later(0.001, lambda: fired.set_result(loop.time() - armed))
        time.sleep(0.05)
        timer = await fired
        done = threading.Event()
        worker = threading.Thread(target=done.wait)  # a thread could call back: the sleep is real
        worker.start()
        try:
            slept_from = loop.time()
            await asyncio.sleep(0.05)
            slept = loop.time() - slept_from
        finally:
            done.set()
            worker.join()
        return across_work, timer, slept

    return virtual_time.asyncio_run(main())


def test_asyncio_clock_stands_still_while_work_runs_and_moves_by_what_a_wait_asked() -> None:
    across_work, timer, slept = alone(clock_around_work)
    assert across_work == 0
    assert timer == pytest.approx(0.001, abs=1e-9)  # not 0.05: the work before it took no loop time
    assert slept == pytest.approx(0.05, abs=1e-6)  # a real wait that ran out counts what it asked for


def busy_loop_meets_its_deadline() -> float:
    """Loop time a task polling the clock with sleep(0) sees pass (CATCH_UP_S shortened)."""
    virtual_time.CATCH_UP_S = 0.05

    async def main() -> float:
        loop = asyncio.get_running_loop()
        start = loop.time()
        while loop.time() < start + 0.01:
            await asyncio.sleep(0)
        return loop.time() - start

    return virtual_time.asyncio_run(main())


def test_asyncio_clock_catches_up_with_a_busy_loop() -> None:
    assert alone(busy_loop_meets_its_deadline) >= 0.01


def bound_over_short_sleeps_and_work() -> int:
    """Rounds of (a 1 ms sleep, 5 ms of work) before a 1 s bound ends them (CATCH_UP_S shortened)."""
    virtual_time.CATCH_UP_S = 0.05

    async def main() -> int:
        rounds = 0
        try:
            async with asyncio.timeout(1):
                while True:
                    await asyncio.sleep(0.001)
                    time.sleep(0.005)
                    rounds += 1
        except TimeoutError:
            return rounds

    return virtual_time.asyncio_run(main())


def test_asyncio_clock_counts_work_that_adds_up_though_short_waits_come_between() -> None:
    """The sleeps alone would take 999 rounds to the bound. Each round works >= 5 ms, so the clock
    moves by >= 50 ms of work every 11 rounds at most: the bound ends within ~180."""
    assert alone(bound_over_short_sleeps_and_work) < 500


def loop_after_an_hour() -> str:
    async def main() -> str:
        await asyncio.sleep(3600)
        return type(asyncio.get_running_loop()).__name__

    return virtual_time.asyncio_run(main())


def test_asyncio_run_runs_main_on_the_skipping_loop() -> None:
    assert alone(loop_after_an_hour) == "SkippingEventLoop"


trio = pytest.importorskip("trio")


def trio_deadline_wait() -> tuple[float, float]:
    """(trio time elapsed, skipped) of a 40 s sleep on the skipping clock."""
    import trio

    clock = virtual_time.trio_clock()

    async def main() -> float:
        start = trio.current_time()
        await trio.sleep(40)
        return trio.current_time() - start

    return trio.run(main, clock=clock), clock.skipped  # type: ignore[attr-defined]


def test_trio_skips_a_deadline_wait() -> None:
    elapsed, skipped = alone(trio_deadline_wait)
    assert elapsed >= 40
    assert skipped >= 40 - 1


def trio_clock_around_work() -> tuple[float, float]:
    """(trio time across 50 ms of blocking work, when a 1 ms sleep begun before that work ended)."""
    import trio

    async def main() -> tuple[float, float]:
        start = trio.current_time()
        time.sleep(0.05)
        across_work = trio.current_time() - start
        woke: list[float] = []

        async def sleeper() -> None:
            armed = trio.current_time()
            await trio.sleep(0.001)
            woke.append(trio.current_time() - armed)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(sleeper)
            await trio.testing.wait_all_tasks_blocked()  # the sleeper has armed its deadline
            time.sleep(0.05)
        return across_work, woke[0]

    import trio.testing

    return trio.run(main, clock=virtual_time.trio_clock())


def test_trio_clock_stands_still_while_work_runs() -> None:
    across_work, slept = alone(trio_clock_around_work)
    assert across_work == 0
    assert slept == pytest.approx(0.001, abs=1e-9)


def idle_waiter_and_deadline() -> list[str]:
    """Who woke first: a ``wait_all_tasks_blocked(cushion)`` waiter or a 30 s sleeper."""
    import trio
    import trio.testing

    clock = virtual_time.trio_clock()
    order: list[str] = []

    async def sleeper() -> None:
        await trio.sleep(30)
        order.append("deadline")

    async def watcher() -> None:
        await trio.testing.wait_all_tasks_blocked(cushion=0.01)
        order.append("idle waiter")

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(sleeper)
            nursery.start_soon(watcher)

    trio.run(main, clock=clock)
    return order


def test_trio_keeps_real_time_for_a_waiter_on_all_tasks_blocked() -> None:
    """A ``wait_all_tasks_blocked(cushion)`` waiter wakes after real idle time, before the deadline."""
    assert alone(idle_waiter_and_deadline) == ["idle waiter", "deadline"]


def test_trio_clock_draws_what_trio_s_own_clock_draws() -> None:
    """The scheduler's seeded tie-breaks after the clock are those of a run on trio's own clock."""
    from trio._core._run import SystemClock, _r

    state = _r.getstate()
    try:
        _r.seed(7)
        SystemClock()
        after_system = _r.random()
        _r.seed(7)
        virtual_time.trio_clock()
        after_ours = _r.random()
    finally:
        _r.setstate(state)
    assert after_ours == after_system
    assert random.Random(7).random() != after_system  # the clock did draw
