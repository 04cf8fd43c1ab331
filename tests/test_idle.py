"""The stall test itself: wait_until_nothing_can_happen returns only once nothing the backend shows can
wake a task, on asyncio and trio (anyio's pytest plugin). Each test runs a task that will wake and
asserts that the wait returned only after it did, or a task that cannot wake and asserts that the
wait returned without it."""

from __future__ import annotations

import socket
import threading
import time

import anyio
import pytest

from pytest_agentsdk.idle import wait_until_nothing_can_happen

pytestmark = pytest.mark.anyio
HORIZON = 5.0


async def returns_after(sleeper, horizon: float = HORIZON) -> list[str]:
    """Run ``sleeper(done)`` beside the wait; what ``done`` held when the wait returned."""
    done: list[str] = []
    async with anyio.create_task_group() as tg:
        tg.start_soon(sleeper, done)
        await wait_until_nothing_can_happen(horizon)
        seen = list(done)
        tg.cancel_scope.cancel()
    return seen


async def test_a_sleeping_task_holds_the_wait_until_it_wakes() -> None:
    async def sleeper(done: list[str]) -> None:
        await anyio.sleep(0.3)
        done.append("woke")

    assert await returns_after(sleeper) == ["woke"]


async def test_a_busy_worker_thread_holds_the_wait_until_it_finishes() -> None:
    async def worker(done: list[str]) -> None:
        await anyio.to_thread.run_sync(time.sleep, 0.3)
        done.append("thread done")

    assert await returns_after(worker) == ["thread done"]


async def test_the_asyncio_default_executor_holds_the_wait(anyio_backend: str) -> None:
    if anyio_backend != "asyncio":
        pytest.skip("asyncio.to_thread is asyncio's")
    import asyncio

    async def worker(done: list[str]) -> None:
        await asyncio.to_thread(time.sleep, 0.3)
        done.append("thread done")

    assert await returns_after(worker) == ["thread done"]


async def test_a_socket_wait_holds_the_wait_until_data_arrives() -> None:
    left, right = socket.socketpair()
    writer = threading.Timer(0.3, right.send, (b"x",))

    async def reader(done: list[str]) -> None:
        await anyio.wait_readable(left)
        done.append("read")

    try:
        writer.start()
        assert await returns_after(reader) == ["read"]
    finally:
        writer.join()
        left.close()
        right.close()


async def test_a_socket_nobody_writes_to_holds_the_wait_for_the_horizon_only() -> None:
    left, right = socket.socketpair()

    async def reader(done: list[str]) -> None:
        await anyio.wait_readable(left)
        done.append("read")

    try:
        assert await returns_after(reader, horizon=0.2) == []
    finally:
        left.close()
        right.close()


async def test_a_deadline_beyond_the_horizon_does_not_hold_the_wait() -> None:
    async def waits_under_a_far_deadline(done: list[str]) -> None:
        with anyio.fail_after(60):  # the SDK's control-request timeout, a test's own fail_after
            await anyio.Event().wait()
        done.append("timed out")

    assert await returns_after(waits_under_a_far_deadline) == []


async def test_two_waits_in_one_loop_do_not_keep_each_other_awake() -> None:
    returned: list[int] = []

    async def wait(n: int) -> None:
        await wait_until_nothing_can_happen(HORIZON)
        returned.append(n)

    async with anyio.create_task_group() as tg:
        tg.start_soon(wait, 1)
        tg.start_soon(wait, 2)
    assert sorted(returned) == [1, 2]


async def test_work_the_caller_knows_of_holds_the_wait() -> None:
    busy = [True]

    async def finish(done: list[str]) -> None:
        await anyio.sleep(0.3)
        busy[0] = False
        done.append("finished")

    done: list[str] = []
    async with anyio.create_task_group() as tg:
        tg.start_soon(finish, done)
        await wait_until_nothing_can_happen(0.05, busy=lambda: busy[0])  # the sleep is beyond this horizon
        assert done == ["finished"]


async def test_two_waits_beside_a_socket_both_end_at_the_horizon() -> None:
    """Each wait's own polling is not progress for the other (else neither would ever end)."""
    left, right = socket.socketpair()

    async def reader(done: list[str]) -> None:
        await anyio.wait_readable(left)
        done.append("read")

    returned: list[int] = []

    async def wait(n: int) -> None:
        await wait_until_nothing_can_happen(0.2)
        returned.append(n)

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(reader, [])
            with anyio.move_on_after(30):  # a regression fails here instead of hanging the suite
                async with anyio.create_task_group() as waits:
                    waits.start_soon(wait, 1)
                    waits.start_soon(wait, 2)
            tg.cancel_scope.cancel()
    finally:
        left.close()
        right.close()
    assert sorted(returned) == [1, 2]
