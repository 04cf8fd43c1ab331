#!/usr/bin/env python3
"""What ScriptedTransport costs per session, against the least a Transport can do and the peer.

One session is a real ``claude_agent_sdk.query()``: connect, the initialize handshake, the prompt,
then (system init, assistant, result) and EOF. It runs over

* ``trivial``: the hand-written Transport below, which does nothing but answer and EOF (the floor);
* ``ungated floor``: the same, but queueing the turn with the initialize reply, before the prompt,
  as the peer does: what waiting for the prompt alone costs (no harness may skip that wait);
* ``scripted``: our ``ScriptedTransport`` (provenance log, checkpoints, stall detection);
* ``cassette``: claude-agent-cassette's ``ReplayTransport``, both as its README replays a frames
  file (``ReplayTransport(frames)``) and from a duplex tape recorded with its ``RecordingTransport``
  (``ReplayTransport.from_tape``).

The cassette pins claude-agent-sdk < 0.2.140, so by default this script builds (once, with uv) an
isolated env under ~/.cache/pytest-agentsdk/bench/ with such a release from sdist and re-executes
itself there; ``--python PY`` runs it under another interpreter instead (no cassette rows
when that env lacks the cassette). Targets (issue 13): scripted <= 1.1x trivial, scripted <= 1x cassette.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from importlib.metadata import version
from pathlib import Path
from typing import Any, NoReturn

REPO = Path(__file__).resolve().parent.parent
BENCH_SDK = "0.2.87"  # newest release line the cassette accepts (< 0.2.140)
IN_ENV = "PYTEST_AGENTSDK_BENCH_ENV"  # set on re-exec, so the child runs where it landed
TARGET_VS_TRIVIAL = 1.1
TARGET_VS_CASSETTE = 1.0


def die(message: str) -> NoReturn:
    print(f"transport_overhead: {message}", file=sys.stderr)
    raise SystemExit(2)


# ---------------------------------------------------------------- the env the benchmark runs in
def bench_env(sdk: str) -> Path:
    """The interpreter of the cached bench env for ``sdk``, built with uv on first use."""
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    env = cache / "pytest-agentsdk" / "bench" / f"sdk-{sdk}"
    python = env / "bin" / "python"
    requirements = [f"claude-agent-sdk=={sdk}", "claude-agent-cassette", "anyio", "trio", "hypothesis"]
    stamp = env / ".requirements"
    if python.exists() and stamp.exists() and stamp.read_text() == "\n".join(requirements):
        return python
    uv = shutil.which("uv")
    if uv is None:
        die("uv is needed to build the benchmark env (pip install uv), or pass --python PY")
    print(f"building benchmark env {env} (claude-agent-sdk {sdk} from sdist) ...", file=sys.stderr)
    steps = [
        [uv, "venv", "--quiet", "--allow-existing", "--python", sys.executable, str(env)],
        [uv, "pip", "install", "--quiet", "--python", str(python), "--no-binary", "claude-agent-sdk", *requirements],
    ]
    for step in steps:
        done = subprocess.run(step, check=False, capture_output=True, text=True)
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
            die(f"building the env failed ({' '.join(step[:3])}): {last}")
    stamp.write_text("\n".join(requirements))
    return python


def reexec(python: Path, argv: list[str]) -> None:
    if not python.exists():
        die(f"--python {python}: no such interpreter")
    os.environ[IN_ENV] = "1"
    os.execv(str(python), [str(python), str(Path(__file__).resolve()), *argv])


# ---------------------------------------------------------------- the measurement (runs in the env)
def run(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(REPO))  # the checkout's pytest_agentsdk, not an installed copy
    import anyio
    import claude_agent_sdk
    from claude_agent_sdk import ClaudeAgentOptions, Transport, query

    from pytest_agentsdk import wire
    from pytest_agentsdk.script import Script
    from pytest_agentsdk.transport import ScriptedTransport

    frames = [wire.system_init(), wire.assistant("hello"), wire.result()]
    options = ClaudeAgentOptions()
    expected = ["SystemMessage", "AssistantMessage", "ResultMessage"]

    class TrivialTransport(Transport):
        """The floor: answers every control request with success, the prompt with ``frames``,
        and ends stdout at end_input, as the CLI does for ``query()``. It suspends only when it
        has nothing to say (no checkpoint per frame), like the peer's asyncio.Queue."""

        def __init__(self) -> None:
            self._out: deque[dict[str, Any]] = deque()
            self._eof = False
            self._wake = anyio.Event()

        async def connect(self) -> None:
            pass

        def is_ready(self) -> bool:
            return True

        async def write(self, data: str) -> None:
            message = json.loads(data)
            if message["type"] == "control_request":
                reply = {"subtype": "success", "request_id": message["request_id"], "response": {}}
                self._out.append({"type": "control_response", "response": reply})
            elif message["type"] == "user":
                self._out.extend(frames)
            self._wake.set()

        async def read_messages(self) -> AsyncIterator[dict[str, Any]]:
            while True:
                while self._out:
                    yield self._out.popleft()
                if self._eof:
                    return
                self._wake = anyio.Event()
                await self._wake.wait()

        async def end_input(self) -> None:
            self._eof = True
            self._wake.set()

        async def close(self) -> None:
            await self.end_input()

    class UngatedFloor(TrivialTransport):
        """The trivial transport with one change: the turn's frames are queued with the reply to
        the first control request (initialize), before any prompt, as the peer queues them. No
        harness may do this (the bug-2 oracle judges frames by the prompts before them); it shows
        what waiting for the prompt alone costs, the rest of the code held equal."""

        _queued = False

        async def write(self, data: str) -> None:
            message = json.loads(data)
            if message["type"] == "control_request":
                reply = {"subtype": "success", "request_id": message["request_id"], "response": {}}
                self._out.append({"type": "control_response", "response": reply})
                if not self._queued:
                    self._queued = True
                    self._out.extend(frames)
            self._wake.set()

    class RecordingFloor(TrivialTransport):
        """The floor of any transport the oracles can judge: the trivial one, also keeping what they
        read (each stdin line with the prompts written before it; each frame as a stamped copy, with
        its seq and the prompts before it), and nothing of a Script: no triggers, no validation, no
        stall watch. Written out, not wrapped around the trivial one, so it costs only that."""

        def __init__(self) -> None:
            super().__init__()
            self.writes: list[tuple[int, Any, int]] = []
            self.emissions: list[tuple[int, dict[str, Any], int]] = []
            self.prompts = 0
            self.seq = 0

        async def write(self, data: str) -> None:
            message = json.loads(data)
            self.seq += 1
            self.writes.append((self.seq, message, self.prompts))
            if message["type"] == "control_request":
                reply = {"subtype": "success", "request_id": message["request_id"], "response": {}}
                self._out.append({"type": "control_response", "response": reply})
            elif message["type"] == "user":
                self.prompts += 1
                self._out.extend({"uuid": f"turn0#{i}", "session_id": "s", **frame} for i, frame in enumerate(frames))
            self._wake.set()

        async def read_messages(self) -> AsyncIterator[dict[str, Any]]:
            while True:
                while self._out:
                    frame = self._out.popleft()
                    self.seq += 1
                    self.emissions.append((self.seq, frame, self.prompts))
                    yield frame
                if self._eof:
                    return
                self._wake = anyio.Event()
                await self._wake.wait()

    async def session(make: Callable[[], Transport]) -> list[str]:
        return [type(m).__name__ async for m in query(prompt="hi", options=options, transport=make())]

    script = Script().turn(*frames)
    contenders: dict[str, Callable[[], Transport]] = {
        "trivial": TrivialTransport,
        "ungated floor": UngatedFloor,
        "recording floor": RecordingFloor,
        "scripted": lambda: ScriptedTransport(script),
    }
    cassette_version = cassette_transports(contenders, frames, session, TrivialTransport)

    if args.play:  # one contender's sessions under valgrind (see count_instructions): no timing, no report
        if args.play not in contenders:
            die(f"--play {args.play}: not one of {', '.join(contenders)}")
        measure_sessions(contenders[args.play], args.backend[0], args.warmup, args.sessions, session)
        return
    if args.instructions:
        results = count_instructions(args, list(contenders))
        report(args, results, list(contenders), claude_agent_sdk.__version__, cassette_version)
        return

    def measure(make: Callable[[], Transport], backend: str, count: int) -> float:
        async def main() -> float:
            start = time.perf_counter()
            for _ in range(count):
                await session(make)
            return time.perf_counter() - start

        return anyio.run(main, backend=backend)

    results: dict[tuple[str, str], float | str] = {}
    for backend in args.backend:
        live = {}
        for name, make in contenders.items():
            try:  # the sanity check doubles as a probe: a release that cannot run under this backend is n/a
                got = anyio.run(session, make, backend=backend)
            except Exception as exc:  # noqa: BLE001 - reported as n/a with its reason
                results[(backend, name)] = f"n/a ({type(exc).__name__}: {str(exc)[:60]})"
                continue
            if got != expected:
                die(f"{name} under {backend} delivered {got}, expected {expected}")
            measure(make, backend, args.warmup)
            live[name] = make
        best = {name: math.inf for name in live}
        for _ in range(args.repeat):  # interleaved, so drift hits every contender alike
            for name, make in live.items():
                best[name] = min(best[name], measure(make, backend, args.sessions))
        results.update({(backend, name): elapsed / args.sessions for name, elapsed in best.items()})

    report(args, results, list(contenders), claude_agent_sdk.__version__, cassette_version)


def measure_sessions(make: Callable[[], Any], backend: str, warmup: int, count: int, session: Callable[..., Any]) -> None:
    """``count`` sessions over ``make()``'s transports, after ``warmup`` (at least one: it imports
    what a session needs) that settle what the first sessions alone pay."""
    import anyio

    async def sessions(n: int) -> None:
        for _ in range(n):
            await session(make)

    anyio.run(sessions, max(warmup, 1), backend=backend)
    anyio.run(sessions, count, backend=backend)


def count_instructions(args: argparse.Namespace, names: list[str]) -> dict[tuple[str, str], float | str]:
    """Instructions per session of each contender, counted by valgrind: the same work gives the
    same count whatever the machine's load. Each contender runs in its own process twice, after
    ``--warmup`` sessions: with no more sessions and with ``--sessions``; the difference over the
    sessions is its cost per session (start-up, imports and warm-up cancel out)."""
    valgrind = shutil.which("valgrind") or "valgrind"  # main() checked it is there
    def count(backend: str, name: str, sessions: int) -> int | str:
        done = subprocess.run(
            [valgrind, "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null", sys.executable,
             str(Path(__file__).resolve()), "--play", name, "--backend", backend, "--sessions", str(sessions),
             "--warmup", str(args.warmup)],
            capture_output=True, text=True, check=False, env={**os.environ, IN_ENV: "1", "PYTHONHASHSEED": "0"},
        )
        refs = [line for line in done.stderr.splitlines() if "I   refs:" in line]
        if done.returncode != 0 or not refs:
            own = [line for line in done.stderr.splitlines() if line.strip() and not re.match(r"^(==|--)\d+(==|--)", line)]
            return f"n/a ({(own or ['no output'])[-1][:60]})"
        print(f"  counted {backend} {name}, {sessions} sessions", file=sys.stderr)
        return int(refs[-1].split(":")[1].replace(",", ""))

    jobs = [(backend, name, sessions) for backend in args.backend for name in names for sessions in (0, args.sessions)]
    with ThreadPoolExecutor(os.cpu_count() or 1) as pool:  # each count is a process of its own
        counted = dict(zip(jobs, pool.map(lambda job: count(*job), jobs)))
    results: dict[tuple[str, str], float | str] = {}
    for backend in args.backend:
        for name in names:
            alone, played = counted[(backend, name, 0)], counted[(backend, name, args.sessions)]
            bad = next((c for c in (alone, played) if isinstance(c, str)), None)
            results[(backend, name)] = bad if bad is not None else (int(played) - int(alone)) / args.sessions
    return results


def cassette_transports(
    contenders: dict[str, Callable[[], Any]],
    frames: list[dict[str, Any]],
    session: Callable[..., Any],
    recorder_inner: Callable[[], Any],
) -> str | None:
    """Add the peer's ReplayTransport from a frames file and from a tape its recorder captured."""
    if importlib.util.find_spec("claude_agent_cassette") is None:
        return None
    import anyio
    import claude_agent_cassette as cassette

    tape: list[Any] = []
    anyio.run(session, lambda: cassette.RecordingTransport(recorder_inner(), tape))
    with tempfile.TemporaryDirectory() as tmp:
        frames_file = Path(tmp) / "frames.jsonl"
        frames_file.write_text("".join(json.dumps(f) + "\n" for f in frames))
        cassette.save_tape(tape, Path(tmp) / "tape.jsonl")
        recorded = cassette.load_frames(frames_file)
        loaded = cassette.load_tape(Path(tmp) / "tape.jsonl")
    contenders["cassette frames"] = lambda: cassette.ReplayTransport(recorded)
    contenders["cassette tape"] = lambda: cassette.ReplayTransport.from_tape(loaded)
    return str(cassette.__version__)


def report(
    args: argparse.Namespace,
    results: dict[tuple[str, str], float | str],
    names: list[str],
    sdk: str,
    cassette: str | None,
) -> None:
    peer = f"claude-agent-cassette {cassette}" if cassette else "claude-agent-cassette not installed (no cassette rows)"
    print("query() session: initialize handshake, prompt, (system init, assistant, result), EOF")
    how = (f"CPU instructions per session counted by valgrind over {args.sessions} sessions" if args.instructions else
           f"{args.sessions} sessions per round, best of {args.repeat}, warmup {args.warmup}")
    print(f"claude-agent-sdk {sdk} · {peer} · anyio {version('anyio')} · Python {sys.version.split()[0]} · {how}")
    print()
    columns = ("instr/session", "") if args.instructions else ("sessions/s", "us/session")
    print(f"{'backend':<8} {'transport':<16} {columns[0]:>13} {columns[1]:>11} {'vs trivial':>11}")
    for backend in args.backend:
        floor = results.get((backend, "trivial"))
        for name in names:
            value = results[(backend, name)]
            if isinstance(value, str):
                print(f"{backend:<8} {name:<16} {value}")
                continue
            versus = f"{value / floor:.2f}x" if isinstance(floor, float) else "-"
            shown = (f"{value:>13.0f} {'':>11}" if args.instructions else f"{1 / value:>13.0f} {value * 1e6:>11.0f}")
            print(f"{backend:<8} {name:<16} {shown} {versus:>11}")
    print()
    targets = f"scripted/trivial <= {TARGET_VS_TRIVIAL:g}x, scripted/cassette <= {TARGET_VS_CASSETTE:g}x"
    print(f"ratios of {'instructions' if args.instructions else 'time'} per session (targets: {targets})")
    for backend in args.backend:
        scripted = results.get((backend, "scripted"))
        if not isinstance(scripted, float):
            continue
        for name, target in (
            ("trivial", TARGET_VS_TRIVIAL),
            ("recording floor", None),
            ("cassette frames", TARGET_VS_CASSETTE),
            ("cassette tape", TARGET_VS_CASSETTE),
        ):
            other = results.get((backend, name))
            if isinstance(other, float):
                ratio = scripted / other
                verdict = "" if target is None else "ok" if ratio <= target else "MISSED"
                floor = results.get((backend, "trivial"))
                if verdict == "MISSED" and name.startswith("cassette") and isinstance(floor, float) and floor / other > target:
                    verdict += " (the gated floor itself is above it: see the last lines)"
                print(f"{backend:<8} scripted/{name:<16} {ratio:>6.2f}x  {verdict}".rstrip())
    # what turn gating alone costs: the trivial transport against itself with the turn queued at
    # initialize (the peer's way); and the gated floor against the peer, which bounds every turn-gated
    # transport's ratio to the peer from below
    for backend in args.backend:
        floor = results.get((backend, "trivial"))
        for name, why in (("ungated floor", "waiting for the prompt, all else equal"),
                          ("cassette frames", "the turn-gated floor against the ungated peer")):
            other = results.get((backend, name))
            if isinstance(floor, float) and isinstance(other, float):
                print(f"{backend:<8} {'trivial/' + name:<25} {floor / other:>6.2f}x  ({why})")


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--python", type=Path, help="run under this interpreter (its SDK; needs anyio, and the cassette for its rows)"
    )
    parser.add_argument(
        "--sdk",
        default=BENCH_SDK,
        help=f"release for the built env (default {BENCH_SDK}; the cassette needs < 0.2.140)",
    )
    parser.add_argument("--sessions", type=int, default=200, help="sessions per timed round (default 200)")
    parser.add_argument("--repeat", type=int, default=7, help="timed rounds; the best counts (default 7)")
    parser.add_argument("--warmup", type=int, default=50, help="untimed sessions per contender first (default 50)")
    parser.add_argument("--backend", choices=("asyncio", "trio"), action="append", help="repeatable; default both")
    parser.add_argument("--instructions", action="store_true",
                        help="count CPU instructions per session under valgrind instead of timing: the same on a loaded "
                             "machine as on an idle one (about 5 minutes on 2 cores; keep --sessions large, 200 or more: "
                             "process start-up varies by 1e5-1e6 instructions, divided by it; --repeat unused)")
    parser.add_argument("--play", help=argparse.SUPPRESS)  # one contender's sessions, for --instructions
    args = parser.parse_args(argv)
    if min(args.sessions + bool(args.play), args.repeat) < 1 or args.warmup < 0:  # --play 0: start-up alone
        die("--sessions and --repeat must be >= 1, --warmup >= 0")
    args.backend = args.backend or ["asyncio", "trio"]
    if args.instructions and shutil.which("valgrind") is None:
        die("--instructions needs valgrind (apt-get install valgrind)")
    if os.environ.get(IN_ENV):
        run(args)
    elif args.python is not None:
        reexec(args.python, without_python(argv))
    elif importlib.util.find_spec("claude_agent_cassette") is not None:
        run(args)
    else:
        reexec(bench_env(args.sdk), argv)


def without_python(argv: list[str]) -> list[str]:
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--python":
            skip = True
        elif not arg.startswith("--python="):
            out.append(arg)
    return out


if __name__ == "__main__":
    main(sys.argv[1:])
