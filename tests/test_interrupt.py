"""Ctrl-C (and SIGTERM) at fixed points of the commands: exit 130 (143), one line on stderr,
nothing left running.

How fast they stop is measured by ``benchmarks/interrupt.py`` (random moments from a printed
seed); these tests pin the behaviour at points that are hard to hit at random: while a module
is being imported, inside an asyncio run and a trio run, while an env is being built, while a
check runs in another env.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest

import procfs

from pytest_agentsdk import forked, interrupt

REPO = Path(__file__).resolve().parents[1]

#: Runs the command as ``python -m pytest_agentsdk`` does, but sends itself SIGINT the moment
#: the named module starts being imported.
INTERRUPT_AT_IMPORT = textwrap.dedent("""
    import os, runpy, signal, sys

    class InterruptAtImport:
        module = sys.argv[1]

        def find_spec(self, name, path=None, target=None):
            if name == self.module:
                sys.meta_path.remove(self)
                os.kill(os.getpid(), signal.SIGINT)
            return None

    sys.meta_path.insert(0, InterruptAtImport())
    sys.argv = ["pytest_agentsdk", *sys.argv[2:]]
    runpy.run_module("pytest_agentsdk", run_name="__main__", alter_sys=True)
""")


def assert_interrupted(proc: subprocess.Popen[str], err: str, signum: int = signal.SIGINT) -> None:
    message, code = interrupt.STOPS[signum]
    lines = [line for line in err.splitlines() if line.strip()]
    assert proc.returncode == code, err[-3000:]
    assert lines[-1] == message and lines.count(message) == 1, err[-3000:]
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err[-3000:]


def interrupt_after_line(args: list[str], needle: str, env: dict[str, str] | None = None,
                         signum: int = signal.SIGINT) -> tuple[subprocess.Popen[str], str]:
    """Start the command, send ``signum`` once a stderr line contains ``needle``; (process, stderr)."""
    proc = subprocess.Popen([sys.executable, "-m", "pytest_agentsdk", *args], cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})})
    assert proc.stderr is not None
    seen = []
    try:
        for line in proc.stderr:
            seen.append(line)
            if needle in line:
                proc.send_signal(signum)
                break
        else:
            pytest.fail(f"the command ended before printing {needle!r}:\n{''.join(seen)[-3000:]}")
        seen.append(proc.stderr.read())
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc, "".join(seen)


@pytest.mark.parametrize("module", ["hypothesis", "claude_agent_sdk"])
def test_sigint_while_importing(module: str) -> None:
    proc = subprocess.Popen([sys.executable, "-c", INTERRUPT_AT_IMPORT, module, "check", "--seed", "0", "--examples", "1"],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = proc.communicate(timeout=120)
    assert_interrupted(proc, err)
    assert out == ""


@pytest.mark.parametrize(("first", "interrupted", "signum"),
                         [("asyncio", "trio", signal.SIGINT), ("trio", "asyncio", signal.SIGINT), ("asyncio", "trio", signal.SIGTERM)])
def test_a_signal_inside_a_run(first: str, interrupted: str, signum: int, sdk_info: Any) -> None:
    """The signal lands while cross_task_close is judged on ``interrupted`` (its first backend done;
    ``--jobs 1``: one judgement, in its own process, at a time); the judging child dies with it."""
    for backend in (first, interrupted):
        if reason := sdk_info.backend_unsupported(backend):
            pytest.skip(f"nothing runs on {backend} to interrupt: {reason}")
    proc, err = interrupt_after_line(["check", "--bug", "cross_task_close", "--backend", first, "--backend", interrupted,
                                      "--seed", "0", "--examples", "5", "--jobs", "1"], f"cross_task_close - {first}:",
                                     signum=signum)
    assert_interrupted(proc, err, signum)
    assert f"cross_task_close - {interrupted}:" not in err  # it stopped, it did not finish the judgement


@pytest.mark.machine
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_during_env_builds_leaves_nothing(signum: int, tmp_path: Path) -> None:
    """matrix builds two envs at once into an empty cache; Ctrl-C (or SIGTERM) kills both builds
    (uv and the build processes it started) and removes their half-built directories."""
    proc, err = interrupt_after_line(["matrix", "--sdk", "0.1.48", "--sdk", "0.1.50", "--bug", "cross_task_close",
                                      "--seed", "0", "--examples", "1"], "building env for",
                                     env={"PYTEST_AGENTSDK_CACHE": str(tmp_path)}, signum=signum)
    assert_interrupted(proc, err, signum)
    assert procfs.naming(str(tmp_path)) == []
    assert [p.name for p in tmp_path.glob("envs/*")] == []


def test_a_signal_that_lands_while_a_child_fails_to_start_still_stops_the_command() -> None:
    """The signal finds the main thread starting a child (so that thread must finish the stop) and
    the start then fails: the command still stops, with its one line, rather than raising on and
    ignoring every later signal."""
    code = textwrap.dedent("""
        import signal, subprocess
        from pytest_agentsdk import interrupt
        def start_fails(*args, **kwargs):
            interrupt._on_signal(signal.SIGTERM, None)  # what the handler does when the signal lands here
            raise FileNotFoundError("no such program")
        subprocess.Popen = start_fails
        with interrupt.handled(), interrupt.child(["no-such-program"]):
            pass
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _, err = proc.communicate(timeout=60)
    assert_interrupted(proc, err, signal.SIGTERM)


#: A worker thread sends SIGTERM to itself once the main thread sleeps waiting (on the worker through
#: ``interrupt.as_completed`` or ``interrupt.wait``, or on a child through ``interrupt.wait_process``,
#: as a check's pipe readers run beside it), then never finishes: the command stops only if the
#: main thread wakes.
SIGNAL_TAKEN_BY_A_WORKER = textwrap.dedent("""
    import signal, sys, threading, time
    from concurrent.futures import ThreadPoolExecutor
    from pytest_agentsdk import interrupt

    def main_thread_sleeps():
        with open(f"/proc/self/task/{threading.main_thread().native_id}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "S"

    def main_thread_waits():  # asleep twice, 0.05 s apart: in its wait, not passing through a lock on its way
        if not main_thread_sleeps():
            return False
        time.sleep(0.05)
        return main_thread_sleeps()

    def job():
        while not main_thread_waits():
            time.sleep(0.01)
        signal.pthread_kill(threading.get_ident(), signal.SIGTERM)
        threading.Event().wait()

    with interrupt.handled():
        worker = ThreadPoolExecutor(1).submit(job)
        if sys.argv[1] == "as_completed":
            for _ in interrupt.as_completed([worker]):
                pass
        elif sys.argv[1] == "wait":
            interrupt.wait([worker])
        else:
            with interrupt.child([sys.executable, "-c", "import time; time.sleep(3600)", sys.argv[2]]) as proc:
                interrupt.wait_process(proc)
""")


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads the main thread's state from /proc")
@pytest.mark.parametrize("waiting", ["as_completed", "wait", "wait_process"])
def test_a_signal_a_worker_thread_took_still_stops_a_main_thread_waiting(waiting: str) -> None:
    """The kernel may hand the signal to a worker thread; CPython runs the handler in the main
    thread only when it next wakes. A wait with no timeout woke only when what it waited for ended
    (Ctrl-C during two env builds was handled when the first ended, and left that env in the
    cache); with ``concurrent.futures``' own waits or ``Popen.wait()`` this command never stops."""
    marker = f"waited-{os.getpid()}-{waiting}"  # names the child this test starts, and no other
    proc = subprocess.Popen([sys.executable, "-c", SIGNAL_TAKEN_BY_A_WORKER, waiting, marker], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert_interrupted(proc, err, signal.SIGTERM)
    assert procfs.naming(marker) == []


def test_waiting_on_a_preloaded_run_keeps_what_it_read_and_times_out_as_a_process_does() -> None:
    """``wait_process`` on a run forked by a preloading server (its exit status comes over a
    socket): a status that arrives in pieces across waits is read whole, and a wait that runs out
    (or is given none at all) raises ``TimeoutExpired`` naming the whole timeout, not a socket error."""
    from pytest_agentsdk import preload

    ours, server = socket.socketpair()
    with ours, server:
        server.sendall(b'{"pid": 4242}\n')
        run = preload._Forked(ours, io.StringIO(), io.StringIO())
        for timeout in (0.2, 0.0):
            with pytest.raises(subprocess.TimeoutExpired) as raised:
                interrupt.wait_process(run, timeout)
            assert raised.value.timeout == timeout
        server.sendall(b'{"status": ')
        with pytest.raises(subprocess.TimeoutExpired):
            interrupt.wait_process(run, 0.2)
        server.sendall(b"256}\n")
        assert interrupt.wait_process(run) == 1 == run.returncode


def test_a_builder_thread_moves_nothing_into_the_cache_once_a_stop_began(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Builder threads keep running while the main thread stops: one that finished its env then
    must not rename the directory the stop is deleting into the cache (a matrix under SIGTERM left
    an env holding only its metadata file that way)."""
    built, final = tmp_path / ".build-key", tmp_path / "key"
    built.mkdir()
    (built / "agentsdk-env.json").write_text("{}")
    raised: list[BaseException] = []

    def builder() -> None:
        try:
            interrupt.rename_into_place(built, final)
        except interrupt.Stopping as exc:
            raised.append(exc)

    with interrupt._renaming:  # the stop holds this while it deletes: a thread about to rename waits for it
        thread = threading.Thread(target=builder)
        thread.start()
        thread.join(timeout=0.2)
        assert thread.is_alive() and not final.exists()
        monkeypatch.setitem(interrupt._state, "stopping", True)  # the stop began while the thread waited
    thread.join()
    assert len(raised) == 1 and (built.exists(), final.exists()) == (True, False)
    monkeypatch.setitem(interrupt._state, "stopping", False)
    interrupt.rename_into_place(built, final)
    assert (built.exists(), final.exists()) == (False, True)


@pytest.mark.machine
@pytest.mark.parametrize("preload", ["1", "0"])
def test_sigint_during_a_child_check_leaves_nothing(sdk_release, preload: str, tmp_path: Path) -> None:
    """The check runs forked from a preloading server (or, with preloading off, in a process of its
    own); Ctrl-C ends the server, the check and the forks judging its rows, and their directory goes."""
    sdk_release("0.1.48")  # cached, so the check starts at once
    seed = "424242"
    proc, err = interrupt_after_line(["matrix", "--sdk", "0.1.48", "--bug", "cross_task_close", "--seed", seed, "--examples", "5"],
                                     "checking claude-agent-sdk 0.1.48", env={"PYTEST_AGENTSDK_PRELOAD": preload, "TMPDIR": str(tmp_path)})
    assert_interrupted(proc, err)
    assert procfs.naming(f"check --json --seed {seed}") == []
    assert procfs.naming("pytest_agentsdk.preload") == []  # the server, and the check forked from it
    assert list(tmp_path.iterdir()) == []  # the servers' directory (their logs) is gone


def test_an_ignored_sigint_stays_ignored() -> None:
    """Started with SIGINT ignored (``cmd &`` in a script), a command keeps ignoring it, and
    handles SIGTERM still."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with interrupt.handled():
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
            assert signal.getsignal(signal.SIGTERM) not in (signal.SIG_IGN, signal.SIG_DFL)
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    finally:
        signal.signal(signal.SIGINT, previous)


#: Starts one forked job under the stop handler, with SIGTERM sent to itself just before the fork:
#: the signal is held across the fork and delivered as the parent unblocks it.
SIGNAL_AT_FORK = textwrap.dedent("""
    import os, signal, sys, time
    from pytest_agentsdk import forked, interrupt

    real_fork = os.fork

    def fork():
        os.kill(os.getpid(), signal.SIGTERM)
        return real_fork()

    os.fork = fork
    with interrupt.handled():
        list(forked.run([lambda: time.sleep(60)], 1, lambda i, why: None))
""")


@pytest.mark.skipif(not forked.can_fork(), reason="no os.fork here, or threads running")
def test_a_signal_held_across_a_fork_stops_the_new_child_too(tmp_path: Path) -> None:
    """The fork's child is known to the stop before the signal lands: it does not judge on alone."""
    with open(tmp_path / "stderr", "w+") as err:  # a file, not a pipe a live child would hold open
        proc = subprocess.Popen([sys.executable, "-c", SIGNAL_AT_FORK], stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)
        try:
            returncode = proc.wait(timeout=60)
            left = [(p.pid, p.state, p.cmdline[:120]) for p in procfs.processes() if p.group == proc.pid]
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        err.seek(0)
        assert returncode == interrupt.STOPS[signal.SIGTERM][1], err.read()
    assert left == []  # the child was killed and reaped before the command exited: not even a zombie
