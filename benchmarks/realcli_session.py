"""Cost of one real-CLI session through the real SDK (issue: at most 1.5 s on this machine).

    python benchmarks/realcli_session.py [--cli SPEC] [--sessions N]

Each session: a fresh CliSession (dirs, scripted Messages API), ``query()`` with the SDK's own
SubprocessCLITransport to the end of one turn, teardown (dirs removed, nothing left running).
Prints min / median / max wall seconds, and the same for the part before the CLI's first frame.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pytest_agentsdk import model_server, realcli  # noqa: E402
from pytest_agentsdk.explore import run_in_fresh_loop  # noqa: E402


def one_session(cli: realcli.Cli) -> tuple[float, float]:
    start = time.perf_counter()
    first: list[float] = []
    with realcli.CliSession(cli, [model_server.Reply([model_server.text("hello")])]) as session:

        async def main() -> None:
            from claude_agent_sdk import query

            async for _ in query(prompt="say hello", options=session.options()):
                if not first:
                    first.append(time.perf_counter() - start)

        run_in_fresh_loop(main, "asyncio", wall=realcli.STORY_WALL_S)
    return time.perf_counter() - start, first[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cli", default="bundled")
    parser.add_argument("--sessions", type=int, default=10)
    args = parser.parse_args()
    cli = realcli.resolve(args.cli)
    one_session(cli)  # warm the page cache
    runs = [one_session(cli) for _ in range(args.sessions)]
    for label, values in (("session", [r[0] for r in runs]), ("to first frame", [r[1] for r in runs])):
        print(f"{label:>15}: min {min(values):.2f} s  median {statistics.median(values):.2f} s  max {max(values):.2f} s  "
              f"({args.sessions} sessions, {cli.describe()})")
    verdict = "ok" if statistics.median(r[0] for r in runs) <= 1.5 else "over"
    print(f"session median <= 1.5 s: {verdict}")


if __name__ == "__main__":
    main()
