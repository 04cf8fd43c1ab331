"""Preloading (:mod:`pytest_agentsdk.preload`): a check forked from the server of its env's dependency
set says what the env's own process says, runs the env's SDK, and leaves nothing behind."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import procfs

from pytest_agentsdk import envs, preload

REPO = Path(__file__).resolve().parents[1]
CHECK = ["--seed", "3", "--examples", "5", "--backend", "asyncio", "--jobs", "1"]


def fake_site(root: Path, records: dict[str, str], pth: str = "import _virtualenv\n") -> Path:
    """A site-packages with a dist-info (and its RECORD) per entry of ``records``, and a .pth file."""
    site = root / "lib" / "python3.11" / "site-packages"
    for dist, record in records.items():
        (site / f"{dist}.dist-info").mkdir(parents=True)
        (site / f"{dist}.dist-info" / "RECORD").write_text(record)
    (site / "_virtualenv.pth").write_text(pth)
    return site


def test_the_digest_ignores_the_sdk_and_sees_every_other_file(tmp_path: Path) -> None:
    deps = {"anyio-4.16.0": "anyio/__init__.py,sha256=aaa,10\n", "mcp-1.30.0": "mcp/__init__.py,sha256=bbb,20\n"}
    old = fake_site(tmp_path / "old", {**deps, "claude_agent_sdk-0.1.48": "claude_agent_sdk/query.py,sha256=111,5\n"})
    new = fake_site(tmp_path / "new", {**deps, "claude_agent_sdk-0.2.190": "claude_agent_sdk/query.py,sha256=222,7\n"})
    assert preload.site_packages(tmp_path / "old") == old
    assert preload.shared_digest(old) == preload.shared_digest(new)  # only the SDK differs: one server serves both
    other_mcp = fake_site(tmp_path / "mcp", {**deps, "mcp-1.30.0": "mcp/__init__.py,sha256=ccc,20\n"})
    other_pth = fake_site(tmp_path / "pth", deps, pth="import something_else\n")
    newer = fake_site(tmp_path / "newer", {"anyio-4.17.0": deps["anyio-4.16.0"], "mcp-1.30.0": deps["mcp-1.30.0"]})
    digests = {preload.shared_digest(site) for site in (old, other_mcp, other_pth, newer)}
    assert len(digests) == 4  # a changed file, .pth or version of any dependency: a server of its own


@pytest.mark.machine
def test_a_preloaded_check_says_what_the_envs_own_process_says(sdk_release: Callable[[str], envs.Env]) -> None:
    """Two releases, one server: each fork judges its own env's SDK, and its report is the report
    the env's own interpreter gives, byte for byte."""
    old, latest = sdk_release("0.1.48"), sdk_release("latest")
    with preload.Preloaders() as preloaders:
        servers = [preloaders.for_env(env.python, env.path, envs.env_environ()) for env in (old, latest)]
        assert servers[0] is not None and servers[0] is servers[1]
        for env in (old, latest):
            both_backends = ["--seed", "3", "--examples", "5", "--jobs", "1"]
            preloaded = env.run_check(both_backends, preloaders=preloaders)
            assert preloaded["subject"]["sdk_version"] == env.sdk_version != "0.1.44"
            assert {r["backend"] for r in preloaded["results"]} == {"asyncio", "trio"}
            assert json.dumps(preloaded, sort_keys=True) == json.dumps(env.run_check(both_backends), sort_keys=True)


@pytest.mark.machine
def test_a_fork_imports_the_sdk_from_its_own_env_and_deps_from_the_server(sdk_release: Callable[[str], envs.Env]) -> None:
    old, latest = sdk_release("0.1.48"), sdk_release("latest")
    code = ("import claude_agent_sdk as s, mcp, os, sys, anyio._backends._trio as later; "
            "print(s.__version__, s.__file__, mcp.__file__, later.__file__, sys.prefix, sys.executable, os.readlink('/proc/self/fd/0'))")
    with preload.Preloaders() as preloaders:
        server = preloaders.for_env(latest.python, latest.path, envs.env_environ())
        assert server is not None
        proc = run_captured(server, old.path, ["-c", code])
    assert proc.returncode == 0, proc.stderr
    version, sdk_file, mcp_file, later_file, prefix, executable, stdin = proc.stdout.split()
    assert (version, prefix, executable, stdin) == ("0.1.48", str(old.path), str(old.python), os.devnull)
    assert sdk_file.startswith(str(old.path))  # the release judged is the env's own
    assert mcp_file.startswith(str(latest.path))  # imported once by the server: the same files (equal digests)
    assert later_file.startswith(str(old.path))  # a submodule of a preloaded package, imported now: the env's own
    assert preload.shared_digest(preload.site_packages(old.path)) == preload.shared_digest(preload.site_packages(latest.path))


@pytest.mark.machine
def test_a_new_env_is_probed_by_a_running_server_and_never_starts_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A server must outlive its own env, and a new env is renamed into the cache once probed: so a
    build uses a server already running for its set, and starts none."""
    monkeypatch.setenv("PYTEST_AGENTSDK_CACHE", str(tmp_path / "cache"))
    with preload.Preloaders() as preloaders:
        first = envs.ensure_env("0.1.48", preloaders=preloaders)
        assert preloaders._by_digest == {}  # no server was running: probed in a process of its own
        server = preloaders.for_env(first.python, first.path, envs.env_environ())
        assert server is not None
        second = envs.ensure_env("0.1.50", preloaders=preloaders)  # probed by the server of 0.1.48's set
        assert (first.sdk_version, second.sdk_version) == ("0.1.48", "0.1.50")
        assert list(preloaders._by_digest.values()) == [server]
        report = second.run_check(CHECK + ["--bug", "premature_completion"], preloaders=preloaders)
        assert report["subject"]["sdk_version"] == "0.1.50"


@pytest.fixture
def served(sdk_release: Callable[[str], envs.Env]) -> Iterator[tuple[envs.Env, preload.Preloaders, preload.Preloader]]:
    """0.1.48's env, with the preloading server of its dependency set running."""
    env = sdk_release("0.1.48")
    with preload.Preloaders() as preloaders:
        server = preloaders.for_env(env.python, env.path, envs.env_environ())
        assert server is not None
        yield env, preloaders, server


@pytest.mark.machine
def test_a_bad_request_is_refused_and_the_server_serves_on(served: tuple[envs.Env, preload.Preloaders, preload.Preloader]) -> None:
    env, _, server = served
    read, write = os.pipe()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.connect(server.socket)
        socket.send_fds(conn, [b"{not json"], [write, write])
        answer = json.loads(conn.makefile().readline())
    os.close(read), os.close(write)
    assert "error" in answer and "JSONDecodeError" in answer["error"]
    assert run_captured(server, env.path, ["-c", "import claude_agent_sdk as s; print(s.__version__)"]).stdout.strip() == "0.1.48"


@pytest.mark.machine
def test_a_check_runs_in_a_process_of_its_own_when_its_server_is_gone(served: tuple[envs.Env, preload.Preloaders, preload.Preloader]) -> None:
    env, preloaders, server = served
    server.close()  # killed, as by an out-of-memory killer
    report = env.run_check(CHECK + ["--bug", "premature_completion"], preloaders=preloaders)
    assert report["subject"]["sdk_version"] == "0.1.48" and report["results"][0]["verdict"] == "reproduced"


@pytest.mark.machine
def test_a_check_past_its_timeout_is_killed(served: tuple[envs.Env, preload.Preloaders, preload.Preloader]) -> None:
    env, preloaders, server = served
    with pytest.raises(envs.EnvError, match="did not finish within"):
        env.run_check(["--seed", "0", "--examples", "100000", "--jobs", "1"], timeout=2, preloaders=preloaders)
    assert children_of(server.process.pid) == []  # killed and reaped by the server


@pytest.mark.machine
def test_the_server_and_its_forks_die_with_their_caller(sdk_release: Callable[[str], envs.Env], tmp_path: Path) -> None:
    """A caller killed outright (no cleanup at all) leaves no server or check running."""
    env = sdk_release("0.1.48")
    caller = textwrap.dedent(f"""
        import os, sys
        from pathlib import Path
        from pytest_agentsdk import envs, preload
        env = envs.ensure_env("0.1.48")
        preloaders = preload.Preloaders().__enter__()
        server = preloaders.for_env(env.python, env.path, envs.env_environ())
        check = server.run(env.path, ["-m", "pytest_agentsdk", "check", "--seed", "0", "--examples", "100000", "--jobs", "1"])
        forked = check.__enter__()
        print(server.process.pid, forked.pid, flush=True)
        os.kill(os.getpid(), 9)
    """)
    proc = subprocess.run([sys.executable, "-c", caller], cwd=REPO, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "TMPDIR": str(tmp_path)})  # what a killed caller cannot remove lands here
    server_pid, check_pid = map(int, proc.stdout.split())
    assert env.sdk_version == "0.1.48"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and (alive(server_pid) or alive(check_pid)):
        time.sleep(0.05)
    assert not alive(server_pid) and not alive(check_pid)


def run_captured(server: preload.Preloader, prefix: Path, argv: list[str]) -> subprocess.CompletedProcess[str]:
    """A run forked by ``server`` to its end, its output captured (like ``subprocess.run``)."""
    with server.run(prefix, argv) as proc:
        return preload.captured(proc, argv)


def alive(pid: int) -> bool:
    """Running (a zombie waiting for its parent counts as gone)."""
    found = procfs.process(pid)
    return found is not None and found.alive


def children_of(pid: int) -> list[int]:
    return [p.pid for p in procfs.processes() if p.parent == pid and p.alive]


def test_preloading_can_be_turned_off(monkeypatch: pytest.MonkeyPatch) -> None:
    from pytest_agentsdk import machine

    monkeypatch.setenv("PYTEST_AGENTSDK_PRELOAD", "0")
    with machine.preloaded() as preloaders:
        assert preloaders is None
    monkeypatch.delenv("PYTEST_AGENTSDK_PRELOAD")
    with machine.preloaded() as preloaders:
        assert isinstance(preloaders, preload.Preloaders)
    assert not os.path.exists(preloaders._workdir)  # its sockets and logs go with it
