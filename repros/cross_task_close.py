"""Seed claude-agent-sdk cross-task close, on the scripted CLI: teardown noise after a successful run.

The seed's minimal driver, against the real installed claude-agent-sdk with the CLI scripted
(pytest_agentsdk.ScriptedTransport) to answer "say hello" with init, one assistant message and a
successful result::

    async def main():
        async for message in query(prompt="say hello", options=ClaudeAgentOptions(permission_mode="bypassPermissions")):
            print(type(message).__name__, message)
    asyncio.run(main())

The seed's traceback starts at ``yield message`` with GeneratorExit: its orchestrator leaves the
loop once it has the ResultMessage and returns, so the generator is finalized by the event loop,
in another task. Both are run: the loop as written (to the end of the stream) and the loop left at
the ResultMessage. Everything the run leaves behind, loop shutdown included, is printed.

    python repros/cross_task_close.py [--backend asyncio|trio] [--close-checkpoints N]

Exit 1 when a successful run's teardown is noisy (the bug reproduces), 0 when it is silent.
"""

from __future__ import annotations

import argparse
import sys

from claude_agent_sdk import ClaudeAgentOptions, ResultMessage, query

from pytest_agentsdk import ScriptedTransport, wire
from pytest_agentsdk.observe import QUIET, Teardown, run_observed
from pytest_agentsdk.script import Script


def seed_flow(leave_at_result: bool, backend: str, close_checkpoints: int) -> Teardown:
    script = Script(checkpoints={"close": close_checkpoints}).turn(
        wire.system_init(), wire.assistant("Hello!"), wire.result("Hello!")
    )
    transport = ScriptedTransport(script)

    async def main(teardown: Teardown) -> None:
        async for message in query(
            prompt="say hello",
            options=ClaudeAgentOptions(permission_mode="bypassPermissions"),
            transport=transport,
        ):
            print("   ", type(message).__name__)
            if leave_at_result and isinstance(message, ResultMessage):
                print("    [consumer] got the ResultMessage, returning")
                teardown.abandoned.add("claude_agent_sdk.query.query")  # the consumer's doing, not the SDK's
                break

    _, teardown = run_observed(main, backend)
    teardown.check_transport(transport)
    return teardown


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("asyncio", "trio"), default="asyncio")
    parser.add_argument("--close-checkpoints", type=int, default=0, metavar="N",
                        help="scheduler checkpoints the CLI takes to exit on close() (default 0)")
    args = parser.parse_args()
    if args.close_checkpoints < 0:
        parser.error("--close-checkpoints must be >= 0")
    import claude_agent_sdk

    print(f"claude-agent-sdk {claude_agent_sdk.__version__}, backend {args.backend}")
    loud: set[str] = set()
    quiet: set[str] = set()
    for leave in (False, True):
        print(f"\n== async for message in query(...) {'left at the ResultMessage' if leave else 'to the end of the stream'}")
        teardown = seed_flow(leave, args.backend, args.close_checkpoints)
        for event in teardown.harm:
            print(f"    AFTER SUCCESS: {event.describe()}")
        for note in teardown.notes:
            print(f"    note (the consumer's own abandoned generator): {note}")
        names = set(teardown.manifestations)
        loud |= names - QUIET
        quiet |= names & QUIET
        print(f"    teardown: {', '.join(sorted(names)) or 'clean'}")
    if loud:
        print(f"\nREPRODUCED: a successful run's teardown reports {', '.join(sorted(loud))}")
        return 1
    hidden = f" (only {', '.join(sorted(quiet))}, which Python hides unless warnings are on)" if quiet else ""
    print(f"\nNot reproduced: no loop error, traceback, stray cancellation or unclosed CLI after success{hidden}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
