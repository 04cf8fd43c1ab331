"""Examples per second of every registered bug scenario, per CLI model and backend.

Run by hand (numbers go into issue notes, never into test assertions):
    python benchmarks/scenarios.py [--examples 40] [--seed 0] [--bug NAME]
It judges the installed claude-agent-sdk exactly as ``check`` does and divides the examples the
search ran (generation and shrinking) by the wall time it took. It imports ``pytest_agentsdk`` from
this checkout, whatever is installed.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's harness

from pytest_agentsdk import bugs  # noqa: E402
from pytest_agentsdk.compat import sdk_info  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--bug", action="append")
    args = parser.parse_args()
    sdk = sdk_info()
    print(f"claude-agent-sdk {sdk.version}, seed {args.seed}, budget {args.examples} examples")
    print(f"{'bug':24} {'model':12} {'backend':8} {'verdict':14} {'examples':>8} {'seconds':>8} {'examples/s':>10}")
    for name in args.bug or bugs.available():
        scenario = bugs.scenario(name)
        for model in scenario.models:
            for backend in sdk.backends():
                start = time.perf_counter()
                result = scenario.judge(sdk, backend, model, args.seed, args.examples)
                elapsed = time.perf_counter() - start
                rate = result.examples / elapsed if elapsed else 0.0
                print(f"{name:24} {model or '-':12} {backend:8} {result.verdict:14} {result.examples:8d} {elapsed:8.2f} {rate:10.1f}")


if __name__ == "__main__":
    main()
