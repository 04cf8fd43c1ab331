"""How long the scripted CLI takes to report a stall instead of hanging, on each backend.

Run by hand: python benchmarks/stall.py [--runs 10]
Two deadlocks: a turn whose result never comes (the consumer waits in receive_response()), and a
control request the CLI never answers (the SDK would otherwise wait its 60 s control timeout).
Target (issue 2): under 1 s on both backends.
"""

from __future__ import annotations

import argparse
import statistics
import time

import anyio

from pytest_agentsdk import wire
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    import logging

    logging.getLogger("claude_agent_sdk").setLevel(logging.CRITICAL)  # the SDK logs each stall as fatal
    sdk = sdk_info()
    print(f"claude-agent-sdk {sdk.version}, {args.runs} runs each")
    print(f"{'deadlock':22} {'backend':8} {'median s':>9} {'max s':>7} {'stalls':>7}")
    for name, scenario in (("endless turn", endless_turn), ("silent control reply", silent_control_reply)):
        for backend in sdk.backends():
            times, stalls = [], 0
            for _ in range(args.runs):
                start = time.perf_counter()
                transport = anyio.run(scenario, backend=backend)
                times.append(time.perf_counter() - start)
                stalls += transport.log.stall is not None
            print(f"{name:22} {backend:8} {statistics.median(times):9.3f} {max(times):7.3f} {stalls:4d}/{args.runs}")


if __name__ == "__main__":
    main()
