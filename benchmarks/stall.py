"""How long the scripted CLI takes to report a stall instead of hanging, on each backend.

Run by hand: python benchmarks/stall.py [--runs 10]
Deadlocks: a turn whose result never comes (the consumer waits in receive_response()), a control
request the CLI never answers (the SDK would otherwise wait its 60 s control timeout), the endless
turn in app code that opens a plain ClaudeSDKClient() (agentsdk_cli), and that app again while it
also waits on a socket nobody writes to (a wait no one can time: held off for the stall timeout).
Targets: under 1 s for the harness's deadlocks (issue 2); under 5 s for every row (issue 11).
"""

from __future__ import annotations

import argparse
import statistics
import time

import anyio

import socket

from pytest_agentsdk import wire
from pytest_agentsdk.cli_routing import ScriptedCLI
from pytest_agentsdk.compat import sdk_info
from pytest_agentsdk.script import Script
from pytest_agentsdk.transport import ScriptedTransport


async def endless_turn() -> ScriptedTransport:
    from claude_agent_sdk import ClaudeSDKClient

    transport = ScriptedTransport(Script(eof="close").turn(wire.system_init(), wire.assistant("still thinking")))
    try:
        async with ClaudeSDKClient(transport=transport) as client:
            await client.query("hi")
            async for _ in client.receive_response():
                pass
    except Exception:
        pass
    return transport


async def silent_control_reply() -> ScriptedTransport:
    from claude_agent_sdk import ClaudeSDKClient

    transport = ScriptedTransport(Script(eof="close").reply("interrupt", never=True))
    try:
        async with ClaudeSDKClient(transport=transport) as client:
            await client.interrupt()
    except Exception:
        pass
    return transport


async def endless_turn_in_app_code() -> ScriptedTransport:
    from claude_agent_sdk import ClaudeSDKClient

    cli = ScriptedCLI()
    cli.session().turn(wire.system_init(), wire.assistant("still thinking"))
    with cli.routing():
        try:
            async with ClaudeSDKClient() as client:  # the app's own client: no transport=
                await client.query("hi")
                async for _ in client.receive_response():
                    pass
        except Exception:
            pass
    return cli.transports[0]


async def endless_turn_beside_an_open_socket() -> ScriptedTransport:
    left, right = socket.socketpair()

    async def wait_for_a_message() -> None:
        await anyio.wait_readable(left)

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(wait_for_a_message)
            transport = await endless_turn_in_app_code()
            tg.cancel_scope.cancel()
    finally:
        left.close()
        right.close()
    return transport


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    import logging

    logging.getLogger("claude_agent_sdk").setLevel(logging.CRITICAL)  # the SDK logs each stall as fatal
    sdk = sdk_info()
    print(f"claude-agent-sdk {sdk.version}, {args.runs} runs each")
    print(f"{'deadlock':36} {'backend':8} {'median s':>9} {'max s':>7} {'stalls':>7}")
    scenarios = (("endless turn", endless_turn), ("silent control reply", silent_control_reply),
                 ("endless turn, app code", endless_turn_in_app_code),
                 ("endless turn, app code, open socket", endless_turn_beside_an_open_socket))
    for name, scenario in scenarios:
        for backend in sdk.backends():
            times, stalls = [], 0
            for _ in range(args.runs):
                start = time.perf_counter()
                transport = anyio.run(scenario, backend=backend)
                times.append(time.perf_counter() - start)
                stalls += transport.log.stall is not None
            print(f"{name:36} {backend:8} {statistics.median(times):9.3f} {max(times):7.3f} {stalls:4d}/{args.runs}")


if __name__ == "__main__":
    main()
