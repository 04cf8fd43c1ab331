"""Wall time of ``check`` (every bug, both backends, the default budget): per bug/model/backend
row and in total, for the installed SDK, a release (``--sdk VERSION``) or a candidate (``--sdk
PATH`` to a source tree, any spec ``matrix --sdk`` takes).

Each row is ``check --bug B --model M --backend K --jobs 1`` in a process of its own, printed
with the process's start-up (Python, the SDK, Hypothesis, trio imported: what no row can go
below) taken off; the total is one plain ``check`` (``--jobs``: the cores by default) with the
user+sys CPU it took. Same seed everywhere. On a loaded 2-core machine absolute seconds move by
+-30%: read wall against CPU, and rows against each other.

    python benchmarks/check.py [--sdk SPEC] [--seed 0] [--examples 30] [--jobs N] [--no-rows]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pytest_agentsdk import envs  # noqa: E402

STARTUP = "import pytest_agentsdk.__main__, pytest_agentsdk.bugs, claude_agent_sdk, hypothesis\ntry:\n    import trio\nexcept ImportError:\n    pass"


def interpreter(spec: str | None) -> tuple[str, dict[str, str], str]:
    """(python, environment, label) that run this checkout's harness against the subject."""
    if spec is None:
        return sys.executable, {**os.environ, "PYTHONPATH": str(ROOT)}, "installed"
    env = envs.ensure_env(envs.parse_spec(spec), progress=lambda line: print(line, file=sys.stderr))
    return str(env.python), envs.env_environ(), f"{spec} (claude-agent-sdk {env.sdk_version})"


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """(wall s, user+sys CPU s of the process and its children, stdout)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode not in (0, 1):
        sys.exit(f"{' '.join(cmd[1:])}: exit {proc.returncode}: {proc.stderr.strip().splitlines()[-1:]}")
    return wall, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime, proc.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sdk", metavar="SPEC", help="judge this subject in its env (default: the installed SDK)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--examples", type=int, default=30, help="check's --examples (default 30, check's default)")
    parser.add_argument("--jobs", type=int, help="check's --jobs for the total (default: check's, the cores)")
    parser.add_argument("--no-rows", action="store_true", help="only the total")
    args = parser.parse_args()
    python, env, label = interpreter(args.sdk)
    check = [python, "-m", "pytest_agentsdk", "check", "--json", "--quiet", "--seed", str(args.seed), "--examples", str(args.examples)]
    startup, startup_cpu, _ = min(timed([python, "-c", STARTUP], env) for _ in range(3))
    print(f"check on {label}: seed {args.seed}, --examples {args.examples}, {os.cpu_count()} cores; "
          f"start-up {startup:.2f} s wall, {startup_cpu:.2f} s CPU")
    wall, cpu, out = timed(check + (["--jobs", str(args.jobs)] if args.jobs else []), env)
    results = json.loads(out)["results"]
    if not args.no_rows:
        print(f"{'row':<52} {'wall s':>7} {'- start-up':>10} {'CPU s':>6} {'- start-up':>10}  verdict")
        for r in results:
            row = ["--bug", r["bug"], "--backend", r["backend"], "--jobs", "1"] + (["--model", r["model"]] if r.get("model") else [])
            w, c, _ = timed(check + row, env)
            name = f"{r['bug']} {r.get('model') or '-'} {r['backend']}"
            print(f"{name:<52} {w:7.2f} {w - startup:10.2f} {c:6.2f} {c - startup_cpu:10.2f}  {r['verdict']} ({r.get('examples', 0)} examples)")
    print(f"{'total: check' + (f' --jobs {args.jobs}' if args.jobs else ''):<52} {wall:7.2f} {wall - startup:10.2f} {cpu:6.2f} "
          f"{cpu - startup_cpu:10.2f}  {len(results)} rows")


if __name__ == "__main__":
    main()
