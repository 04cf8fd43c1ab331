"""Ctrl-C (or SIGTERM) at random moments of a command: does every one stop it promptly, with exit
130 (143), one line on stderr, nothing left running?

Each round starts the command in its own process group (as a shell starts a job), waits a random
delay drawn from the printed seed, sends SIGINT to the group (what Ctrl-C does; ``--signal TERM``:
what a cancelled CI job or ``kill`` sends) and times the exit. The delays are spread over the
command's uninterrupted wall time, measured first.

A signal that lands while Python itself is still starting (``site``, ``runpy``, the first
imports of ``pytest_agentsdk.__main__``: 0.05 to 0.4 s depending on the machine's load) meets
Python's own handling: a KeyboardInterrupt traceback, or death by the signal before Python handles
it at all. No code of the command has run yet, so those are counted apart: ``python start-up``.

    python benchmarks/interrupt.py [--count 30] [--seed N] [--examples 5] [--signal INT|TERM]
    python benchmarks/interrupt.py --command matrix --count 5     # env builds and child checks in flight
    python benchmarks/interrupt.py --cli PATH --to-thread --count 10  # check --cli, the signal taken by a worker

``matrix`` rounds use an empty env cache each (uv's own cache stays warm), so builds are in flight.
``--cli PATH`` interrupts bug 3's ``check`` over that real CLI, whose asyncio loop runs in the
command's main thread. ``--to-thread`` sends the signal to one of the command's other threads
(``tgkill``, the thread drawn from the seed), as the kernel may: CPython runs the handler only when
the main thread next wakes, so this is the worst case for a main thread that waits.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]  # this checkout's harness, and the tests' /proc reader

import procfs  # noqa: E402

from pytest_agentsdk import interrupt  # noqa: E402

PROMPT_S = 1.0
#: a traceback frame inside a function of the harness (not a module body being imported)
_HARNESS_FRAME = re.compile(r'File ".*pytest_agentsdk/[^"]+", line \d+, in (?!<module>)')


def before_main(returncode: int, err: str, signum: int) -> bool:
    """Whether the signal met Python's own start-up: killed before Python handled it, or a
    KeyboardInterrupt raised before any function of the harness ran."""
    if returncode == -signum and not err.strip():
        return True
    return err.rstrip().endswith("KeyboardInterrupt") and not _HARNESS_FRAME.search(err)


def command(kind: str, examples: int, cli: str | None) -> list[str]:
    if cli:
        return ["check", "--cli", cli, "--bug", "premature_completion", "--backend", "asyncio", "--seed", "0", "-q"]
    if kind == "check":
        return ["check", "--seed", "0", "--examples", str(examples), "-q"]
    return ["matrix", "--sdk", "0.1.48", "--sdk", "0.1.50", "--seed", "0", "--examples", str(examples), "--bug", "cross_task_close"]


def start(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "pytest_agentsdk", *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, env=env, start_new_session=True)


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def to_a_worker(pid: int, signum: int, rng: random.Random) -> bool:
    """Send ``signum`` to one of ``pid``'s threads but its main one (False: it has no other now)."""
    try:
        workers = sorted(int(tid) for tid in os.listdir(f"/proc/{pid}/task") if int(tid) != pid)
    except FileNotFoundError:
        return False
    if not workers:
        return False
    return ctypes.CDLL(None, use_errno=True).tgkill(pid, rng.choice(workers), signum) == 0  # ESRCH: that thread just ended


def one_round(args: list[str], delay: float, cache: Path, own_cache: bool, signum: int,
              to_thread: random.Random | None, tmpdir: Path | None) -> dict[str, object]:
    """``tmpdir``: the command's TMPDIR (a real CLI's session directories go there), checked after."""
    env = {**os.environ, "PYTEST_AGENTSDK_CACHE": str(cache)}
    if tmpdir is not None:
        tmpdir.mkdir()
        env["TMPDIR"] = str(tmpdir)
    proc = start(args, env)
    by_worker = False
    try:
        time.sleep(delay)
        finished_first = proc.poll() is not None
        sent = time.perf_counter()
        if not finished_first:
            by_worker = to_thread is not None and to_a_worker(proc.pid, signum, to_thread)
            if not by_worker:
                os.killpg(proc.pid, signum)
        _, err = proc.communicate(timeout=120)
        latency = time.perf_counter() - sent
    finally:
        if proc.poll() is None:  # it ignored the signal for two minutes, or this benchmark was stopped
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    lines = [line for line in err.splitlines() if line.strip()]
    left = procfs.naming(str(cache)) if own_cache else []  # a shared cache: others' processes name it too
    if group_alive(proc.pid):
        left.append(f"process group {proc.pid} still alive")
        os.killpg(proc.pid, signal.SIGKILL)
    temp = sorted(p.name for p in (cache / "envs").glob(".build-*")) if (cache / "envs").is_dir() else []
    temp += sorted(p.name for p in tmpdir.iterdir()) if tmpdir is not None else []
    message, code = interrupt.STOPS[signum]
    clean = (proc.returncode == code and lines[-1:] == [message] and lines.count(message) == 1
             and "Traceback" not in err and not left and not temp)
    if finished_first:
        outcome = f"finished before the signal (exit {proc.returncode})"
    elif clean and latency <= PROMPT_S:
        outcome = "ok"
    elif clean:
        outcome = "slow"
    elif before_main(proc.returncode, err, signum):
        outcome = "python start-up"
    elif "Traceback" in err:
        outcome = f"exit {proc.returncode} with a traceback ending {lines[-1][:60]!r}"
    elif proc.returncode in (0, 1):
        outcome = f"swallowed: ran to the end, exit {proc.returncode}"
    else:
        outcome = f"exit {proc.returncode}, last line {lines[-1][:90] if lines else '(none)'!r}"
    if left or temp:
        outcome += f"; left behind: {', '.join(left + temp)[:200]}"
    if to_thread is not None and not finished_first and not by_worker:
        outcome += " (no worker thread then: sent to the group)"
    return {"delay": delay, "latency": latency, "outcome": outcome, "signalled": not finished_first}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--command", choices=("check", "matrix"), default="check")
    parser.add_argument("--count", type=int, default=30, help="interrupts (default 30)")
    parser.add_argument("--seed", type=int, help="seed of the delays (default: random, printed)")
    parser.add_argument("--examples", type=int, default=5, help="the command's --examples (default 5)")
    parser.add_argument("--signal", choices=("INT", "TERM"), default="INT", help="the signal sent (default INT: Ctrl-C)")
    parser.add_argument("--cli", metavar="PATH", help="interrupt check --cli PATH (bug 3 over that real CLI) instead")
    parser.add_argument("--to-thread", action="store_true", help="send the signal to one of the command's worker threads")
    args = parser.parse_args()
    if args.cli and args.command != "check":
        parser.error("--cli goes with --command check")
    if args.to_thread and not hasattr(ctypes.CDLL(None), "tgkill"):
        parser.error("--to-thread needs a C library with tgkill (glibc 2.30 or later)")
    signum = signal.Signals[f"SIG{args.signal}"]
    # a shell starting this in the background ignores SIGINT, and an ignored signal stays ignored
    # in every child: catch it here so that the commands start with Python's default handling
    signal.signal(signal.SIGINT, signal.default_int_handler)
    seed = args.seed if args.seed is not None else int.from_bytes(os.urandom(4), "big")
    rng = random.Random(seed)
    cmd = command(args.command, args.examples, args.cli)
    to_thread = random.Random(seed + 1) if args.to_thread else None  # its own stream: the delays stay those of the seed
    with tempfile.TemporaryDirectory(prefix="agentsdk-interrupt-") as tmp:
        cache_root = Path(tmp)
        shared = Path(os.environ.get("PYTEST_AGENTSDK_CACHE", Path.home() / ".cache" / "pytest-agentsdk"))

        def cache_for(i: int) -> Path:
            return cache_root / f"round{i}" if args.command == "matrix" else shared

        started = time.perf_counter()
        proc = start(cmd, {**os.environ, "PYTEST_AGENTSDK_CACHE": str(cache_for(-1))})
        proc.communicate()
        window = time.perf_counter() - started
        print(f"python -m pytest_agentsdk {' '.join(cmd)}")
        print(f"seed {seed}; {args.count} SIG{args.signal}s{' to a worker thread' if args.to_thread else ''}; uninterrupted run {window:.1f} s (exit {proc.returncode}); "
              f"{os.cpu_count()} cores; {sys.executable}")
        rows = []
        for i in range(args.count):
            row = one_round(cmd, rng.uniform(0.0, window), cache_for(i), own_cache=args.command == "matrix", signum=signum,
                            to_thread=to_thread, tmpdir=cache_root / f"tmp{i}" if args.cli else None)
            rows.append(row)
            print(f"  {i + 1:2d}  SIG{args.signal} at {row['delay']:6.2f} s  exit after {row['latency']:6.3f} s  {row['outcome']}", flush=True)
    signalled = [r for r in rows if r["signalled"]]
    ok = [r for r in signalled if r["outcome"] == "ok"]
    startup = [r for r in signalled if r["outcome"] == "python start-up"]
    latencies = sorted(float(r["latency"]) for r in signalled)
    print(f"prompt (exit {interrupt.STOPS[signum][1]} within {PROMPT_S:.0f} s, one line, nothing left): {len(ok)} of "
          f"{len(signalled) - len(startup)} signals after Python's start-up; {len(startup)} landed in Python's start-up, "
          f"{len(rows) - len(signalled)} rounds finished before their signal")
    if latencies:
        q = statistics.quantiles(latencies, n=10, method="inclusive") if len(latencies) > 1 else latencies * 9
        print(f"signal to exit, every interrupt: min {latencies[0] * 1000:.0f} ms, median {statistics.median(latencies) * 1000:.0f} ms, "
              f"p90 {q[8] * 1000:.0f} ms, max {latencies[-1] * 1000:.0f} ms")
    others: dict[str, int] = {}
    for r in signalled:
        if r["outcome"] != "ok":
            others[str(r["outcome"])] = others.get(str(r["outcome"]), 0) + 1
    for outcome, n in sorted(others.items(), key=lambda kv: -kv[1]):
        print(f"  {n:2d} x {outcome}")


if __name__ == "__main__":
    main()
