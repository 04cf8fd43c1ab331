"""Does a busy machine move what an example shows, or a matrix's report? Alone, then beside CPU hogs.

A verdict must not depend on the machine's load. The example judged by default is the one that
moved under load before the scripted runs' clock stopped counting work (stop 17's finding):
cross_task_close on 0.1.71 under trio, pattern ``aclose_other_task``, the ``real_time`` timing
class (close 50 ms, read 1 ms), ``after`` 0 and 3. Each is replayed ``--runs`` times in the
release's env with no hog, then beside ``--hogs`` busy processes; the table counts the runs that
showed each manifestation set. Every row of a column should hold one set.

``--matrix``: the default ``matrix --seed 0 --json`` (9 releases, every bug, evidence included) is
run alone and then ``--matrix`` times beside the hogs; each loaded report must equal the quiet one
byte for byte.

    python benchmarks/under_load.py [--sdk 0.1.71] [--backend trio] [--pattern aclose_other_task] [--runs 30] [--hogs CORES+1]
    python benchmarks/under_load.py --runs 0 --matrix 2
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this checkout's harness

from pytest_agentsdk import envs, forked, interrupt  # noqa: E402

#: Replays each example ``runs`` times in the env and prints one JSON list of manifestation sets per example.
CHILD = """
import json, sys
from pytest_agentsdk.bugs import scenario
from pytest_agentsdk.bugs.cross_task_close import TIMINGS, make_example
pattern, backend, runs, afters = sys.argv[1], sys.argv[2], int(sys.argv[3]), json.loads(sys.argv[4])
bug = scenario("cross_task_close")
for after in afters:
    example = make_example(pattern, after=after, delays=TIMINGS["real_time"]["delays"])
    print(json.dumps([sorted(bug.run_example(example, backend, None).names) for _ in range(runs)]))
"""


@contextlib.contextmanager
def hogs(count: int) -> Iterator[None]:
    """``count`` processes spinning on the CPU while the block runs (killed after it, and by Ctrl-C
    or SIGTERM: ``interrupt.handled``)."""
    with contextlib.ExitStack() as stack:
        spinning = [stack.enter_context(interrupt.child([sys.executable, "-c", "while True: pass"])) for _ in range(count)]
        try:
            yield
        finally:
            for hog in spinning:
                hog.kill()
                hog.wait()


def replay(python: str, environ: dict[str, str], args: argparse.Namespace, afters: list[int]) -> list[Counter[str]]:
    done = interrupt.run([python, "-c", CHILD, args.pattern, args.backend, str(args.runs), json.dumps(afters)], env=environ)
    if done.returncode != 0:
        sys.exit(f"under_load: the replay failed: {(done.stderr.strip().splitlines() or ['?'])[-1]}")
    return [Counter(", ".join(names) or "(none)" for names in json.loads(line)) for line in done.stdout.splitlines()]


def examples(args: argparse.Namespace) -> bool:
    """The replay table; whether load (or chance) moved what an example showed."""
    afters = args.after or [0, 3]
    env = envs.ensure_env(envs.parse_spec(args.sdk), progress=lambda line: print(line, file=sys.stderr))
    environ = envs.env_environ()
    print(f"cross_task_close, {args.pattern}, real_time, claude-agent-sdk {env.sdk_version}, {args.backend}, {args.runs} runs each")
    rows = {"quiet": replay(str(env.python), environ, args, afters)}
    with hogs(args.hogs):
        rows[f"{args.hogs} CPU hogs"] = replay(str(env.python), environ, args, afters)
    for load, counts in rows.items():
        for after, counter in zip(afters, counts):
            shown = "; ".join(f"{n}x {names}" for names, n in counter.most_common())
            print(f"{load:12} after {after}: {shown}")
    return any(len(counter) > 1 for counts in rows.values() for counter in counts) or any(
        set(a) != set(b) for a, b in zip(*rows.values()))


def matrix_reports(args: argparse.Namespace) -> bool:
    """Quiet and loaded ``matrix --json`` reports; whether a loaded one differs."""
    command = [sys.executable, "-m", "pytest_agentsdk", "matrix", "--seed", "0", "--json", "--quiet"]
    quiet = interrupt.run(command, cwd=ROOT).stdout
    moved = False
    for i in range(args.matrix):
        with hogs(args.hogs):
            loaded = interrupt.run(command, cwd=ROOT).stdout
        same = loaded == quiet
        moved |= not same
        print(f"matrix --seed 0 --json beside {args.hogs} CPU hogs, run {i + 1}: "
              f"{'identical to the quiet report' if same else 'DIFFERS from the quiet report'} ({len(loaded)} bytes)")
    return moved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sdk", default="0.1.71")
    parser.add_argument("--backend", choices=("asyncio", "trio"), default="trio")
    parser.add_argument("--pattern", default="aclose_other_task", help="a cross_task_close consumer pattern")
    parser.add_argument("--runs", type=int, default=30, help="replays of each example (0: none)")
    parser.add_argument("--hogs", type=int, default=forked.default_jobs() + 1, help="busy processes (default: cores + 1)")
    parser.add_argument("--after", type=int, action="append", help="repeatable; default 0 and 3")
    parser.add_argument("--matrix", type=int, default=0, metavar="N", help="also compare N loaded matrix reports with a quiet one")
    args = parser.parse_args()
    moved = examples(args) if args.runs else False
    moved |= matrix_reports(args) if args.matrix else False
    print("load moved what was shown" if moved else "load moved nothing")
    sys.exit(1 if moved else 0)


if __name__ == "__main__":
    with interrupt.handled():
        main()
