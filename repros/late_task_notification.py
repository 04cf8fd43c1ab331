"""Seed #788 on the scripted CLI: a background task's completion leaks into the next turn.

The seed's two-turn ClaudeSDKClient flow, against the real installed claude-agent-sdk, with the
CLI scripted (pytest_agentsdk.ScriptedTransport) instead of a model that may or may not wait for
its agent. Turn 1 spawns a background agent and ends; the agent finishes while the consumer waits
(the seed's ``sleep(65)`` becomes "until the CLI is quiet"); turn 2 asks something else. It prints
turn 2's message flow like the seed does, marking by provenance what belongs to turn 1.

    python repros/late_task_notification.py [--model wake-parent|notify-only] [--backend asyncio|trio]

Exit 1 when the bug reproduces, 0 when turn 2 is isolated, 2 on bad usage.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import anyio
from claude_agent_sdk import AssistantMessage, ClaudeAgentOptions, ClaudeSDKClient, ResultMessage, TextBlock

from pytest_agentsdk import ScriptedTransport
from pytest_agentsdk.bugs.late_task_notification import (
    MODELS,
    SEED_EXAMPLE,
    Isolation,
    build_script,
    judge_session,
    quiet_window,
    wait_until_quiet,
)
from pytest_agentsdk.recording import RecordingClient


def describe(message: Any) -> str:
    name = type(message).__name__
    data = getattr(message, "data", None) or {}
    task_id = getattr(message, "task_id", None) or data.get("task_id")
    if task_id:
        status = getattr(message, "status", None) or data.get("status") or (data.get("patch") or {}).get("status")
        return f"{name} subtype={getattr(message, 'subtype', '')} task_id={task_id} status={status}".replace(" subtype= ", " ")
    if isinstance(message, AssistantMessage):
        text = "".join(b.text for b in message.content if isinstance(b, TextBlock))
        return f"{name} {text!r}"
    if isinstance(message, ResultMessage):
        return f"{name} result={message.result!r}"
    if getattr(message, "subtype", None):
        return f"{name} subtype={message.subtype}"
    return name


async def seed_flow(model: str) -> tuple[ScriptedTransport, RecordingClient]:
    transport = ScriptedTransport(build_script(SEED_EXAMPLE, model))
    async with ClaudeSDKClient(options=ClaudeAgentOptions(), transport=transport) as client:
        recorder = RecordingClient(client)
        await recorder.query("Spawn a background agent, then say 'Spawned.' and end your turn.")
        pending = set()
        async for msg in recorder.receive_response():
            task_id = getattr(msg, "task_id", None) or (getattr(msg, "data", None) or {}).get("task_id")
            if getattr(msg, "subtype", None) == "task_started" or type(msg).__name__ == "TaskStartedMessage":
                pending.add(task_id)
        print(f"Turn 1 done. Pending tasks: {pending}")
        await wait_until_quiet(transport, quiet_window(transport.script))  # the seed's asyncio.sleep(65)
        await recorder.query("What is 2+2? Just answer with the number.")
        async for _ in recorder.receive_response():
            pass
    return transport, recorder


def report(recorder: RecordingClient, isolation: Isolation) -> None:
    turn2 = recorder.calls[1]
    verdict = next(t for t in isolation.turns if t.turn == 1)
    print("Turn 2 receive_response():")
    stale = dict(zip(verdict.stale_at, verdict.stale_kinds))
    for i, msg in enumerate(turn2.messages):
        mark = f"  <- STALE ({stale[i]}): belongs to turn 1's chain" if i in stale else ""
        if isinstance(msg, ResultMessage) and verdict.misattributed:
            mark += f"  <- ends turn 2, but it is the {verdict.ended_on}, not the answer to prompt 2"
        print(f"  msg#{i + 1} {describe(msg)}{mark}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=MODELS, default="wake-parent", help="CLI behaviour model (default: wake-parent, CLI 2.1.330)")
    parser.add_argument("--backend", choices=("asyncio", "trio"), default="asyncio")
    args = parser.parse_args()
    import claude_agent_sdk

    print(f"claude-agent-sdk {claude_agent_sdk.__version__}, CLI model {args.model}, {args.backend}")
    transport, recorder = anyio.run(seed_flow, args.model, backend=args.backend)
    isolation = judge_session(transport, recorder)
    report(recorder, isolation)
    if isolation.manifestations or isolation.hang:
        print(f"REPRODUCED ({', '.join(isolation.manifestations)}; turns and prompts counted from 0):\n{isolation.describe()}")
        return 1
    print("not reproduced: turn 2 yielded only its own frames and ended on its own result")
    if isolation.lost:
        print("frames the consumer never received: " + "; ".join(isolation.lost))
    return 0


if __name__ == "__main__":
    sys.exit(main())
