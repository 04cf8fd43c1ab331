"""The real Claude Code CLI: finding a binary, and running it offline through the real SDK.

A CLI is named by a path, by ``bundled`` (the binary a claude-agent-sdk wheel ships in
``claude_agent_sdk/_bundled/``), or by a version (``2.1.330``, ``npm:2.1.330``), installed once
from npm as ``@anthropic-ai/claude-code`` into the cache. A :class:`CliSession` gives one run of it
what REAL_CLI.md says it needs: a fresh HOME, config and temp dir, the environment that keeps it
offline and fast to fail, and a :class:`~pytest_agentsdk.model_server.ScriptedModel` to talk to;
the SDK drives it through ``ClaudeAgentOptions(cli_path=...)``, i.e. its own
``SubprocessCLITransport``. Leaving the session kills any CLI process still running in it and
removes every directory it made.
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import cache, interrupt, options
from .explore import Sweep, run_in_fresh_loop
from .model_server import Reply, ScriptedModel
from .script import ScriptError, one_of

NPM_PACKAGE = "@anthropic-ai/claude-code"
_VERSION = re.compile(r"(?:npm:|@anthropic-ai/claude-code@)?(\d+\.\d+\.\d+)")
#: REAL_CLI.md: offline, no telemetry or updates, root allowed to bypass permissions, a broken
#: stream failing in seconds instead of minutes of retries.
OFFLINE_ENV = {
    "ANTHROPIC_API_KEY": "sk-test-fake",
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    "DISABLE_TELEMETRY": "1",
    "DISABLE_AUTOUPDATER": "1",
    "IS_SANDBOX": "1",
    "CLAUDE_CODE_MAX_RETRIES": "0",
    "CLAUDE_CODE_DISABLE_NONSTREAMING_FALLBACK": "1",
}


class CliError(Exception):
    """No usable CLI for the spec given: one line saying why and what to do."""


@dataclass(frozen=True)
class Cli:
    path: Path
    version: str
    source: str  # "path" | "bundled" | "npm"

    def describe(self) -> str:
        return f"Claude Code {self.version} ({self.source}: {self.path})"


def resolve(spec: str, progress: Callable[[str], None] | None = None) -> Cli:
    """The CLI ``spec`` names: a path, ``bundled``, or a version installed from npm into the cache."""
    if not spec.strip():
        raise CliError(f"--cli {spec!r}: {options.EMPTY_CLI}")
    if spec == "bundled":
        return _bundled(progress)
    path = Path(spec).expanduser()
    if path.is_dir():
        raise CliError(f"--cli {spec}: a directory; give the CLI binary in it (e.g. {path / 'claude'})")
    if path.is_file():
        if not os.access(path, os.X_OK):
            raise CliError(f"--cli {spec}: not executable; give a Claude Code CLI binary (or chmod +x it)")
        return Cli(path.resolve(), version_of(path.resolve()), "path")
    match = _VERSION.fullmatch(spec)
    if match is None:
        raise CliError(f"--cli {spec}: not a file, 'bundled', or a CLI version such as 2.1.330 (npm {NPM_PACKAGE})")
    return _from_npm(match.group(1), progress)


def version_of(path: Path) -> str:
    """``claude --version`` prints ``2.1.330 (Claude Code)``."""
    try:
        out = interrupt.run([str(path), "--version"], timeout=30)  # a Ctrl-C kills it and waits for it
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise CliError(f"--cli {path}: cannot run it ({exc})") from None
    found = re.search(r"\d+\.\d+\.\d+", out.stdout)
    if out.returncode != 0 or not found:
        raise CliError(f"--cli {path}: '--version' printed no version; is it a Claude Code CLI binary?")
    return found.group(0)


def _bundled(progress: Callable[[str], None] | None) -> Cli:
    import importlib.util

    spec = importlib.util.find_spec("claude_agent_sdk")
    if spec is None or not spec.submodule_search_locations:
        raise CliError("--cli bundled: claude-agent-sdk is not installed here")
    package = Path(list(spec.submodule_search_locations)[0])
    binary = package / "_bundled" / "claude"
    if binary.is_file():
        return Cli(binary, version_of(binary), "bundled")
    # an sdist install has no binary, but names the version its wheels bundle: the same CLI from npm
    named = re.search(r"\d+\.\d+\.\d+", (package / "_cli_version.py").read_text()) if (package / "_cli_version.py").is_file() else None
    if named is None:
        raise CliError("--cli bundled: this claude-agent-sdk has no bundled CLI and names no CLI version; "
                       "give a CLI version (e.g. --cli 2.1.330, from npm) or a path")
    try:
        cli = _from_npm(named.group(0), progress)
    except CliError as exc:
        raise CliError(f"--cli bundled: this claude-agent-sdk (an sdist install) bundles no binary; its wheels bundle CLI "
                       f"{named.group(0)}, from npm: {str(exc).split(': ', 1)[1]}") from None
    return Cli(cli.path, cli.version, "npm, the version this SDK's wheels bundle")


def _from_npm(version: str, progress: Callable[[str], None] | None) -> Cli:
    """``npm install @anthropic-ai/claude-code@VERSION`` into the cache, once; the platform
    binary comes from its optional dependency (e.g. ``@anthropic-ai/claude-code-linux-x64``)."""
    home = cache.root() / "cli" / version
    binary = _npm_binary(home)
    if binary is not None:
        return Cli(binary, version_of(binary), "npm")
    npm = shutil.which("npm")
    if npm is None:
        raise CliError(f"--cli {version}: npm is not on PATH; install Node.js/npm, or give the path of a CLI binary")
    if progress:
        progress(f"installing {NPM_PACKAGE}@{version} from npm into {home}")
    home.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{version}-", dir=home.parent))
    try:
        with interrupt.removed_on_interrupt(staging):
            done = interrupt.run([npm, "install", "--no-audit", "--no-fund", "--no-save", "--prefix", str(staging),
                                  f"{NPM_PACKAGE}@{version}"], timeout=600)
        if done.returncode != 0:
            raise CliError(f"--cli {version}: {_npm_failure(npm, done.stderr, version)}")
        if _npm_binary(staging) is None:
            raise CliError(f"--cli {version}: npm installed no native binary for this platform")
        try:
            staging.rename(home)
        except OSError:  # another process installed it first
            pass
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    binary = _npm_binary(home)
    assert binary is not None
    return Cli(binary, version_of(binary), "npm")


def _npm_failure(npm: str, stderr: str, version: str) -> str:
    """What npm's failed install says, in one line: an unpublished version as such (with the
    newest, when npm can say it), else npm's first error line (not its pointer to a log file)."""
    lines = [line.removeprefix("npm error").removeprefix("npm ERR!").strip() for line in stderr.splitlines()]  # npm 10, npm <= 9
    if any(line.startswith(("code ETARGET", "notarget", "code E404")) for line in lines):
        return f"{NPM_PACKAGE}@{version} is not published on npm; give a version npm has{_newest_on_npm(npm)}, or a CLI binary's path"
    said = [line for line in lines if line and not line.startswith(("A complete log", "code "))]
    return f"npm install {NPM_PACKAGE}@{version} failed: {said[0] if said else 'npm printed no reason'}"


def _newest_on_npm(npm: str) -> str:
    """`` (newest: 2.1.332)``, or nothing when npm cannot say."""
    try:
        done = interrupt.run([npm, "view", NPM_PACKAGE, "version"], timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    newest = done.stdout.strip()
    return f" (newest: {newest})" if done.returncode == 0 and _VERSION.fullmatch(newest) else ""


def _npm_binary(prefix: Path) -> Path | None:
    scope = prefix / "node_modules" / "@anthropic-ai"
    if not scope.is_dir():
        return None
    for candidate in sorted(scope.glob("claude-code-*/claude")):
        if candidate.is_file():
            return candidate
    return None


# ---------------------------------------------------------------- one isolated run
@dataclass
class CliSession:
    """One offline run of ``cli``: its own dirs and scripted model, torn down on exit."""

    cli: Cli
    main: list[Reply] = field(default_factory=list)
    subagent: list[Reply] = field(default_factory=list)
    model: ScriptedModel = field(init=False)
    root: Path = field(init=False)
    stderr: list[str] = field(default_factory=list)
    left_running: list[int] = field(default_factory=list)  # CLI processes killed at exit

    def __enter__(self) -> CliSession:
        self.root = Path(tempfile.mkdtemp(prefix="agentsdk-cli-"))
        self._on_interrupt = contextlib.ExitStack()  # a command stopped by Ctrl-C exits at once: clean up first
        self._on_interrupt.enter_context(interrupt.cleaned_up_on_interrupt(lambda: _kill_and_reap(self.root)))
        self._on_interrupt.enter_context(interrupt.removed_on_interrupt(self.root))
        for sub in ("home", "config", "tmp", "work"):
            (self.root / sub).mkdir()
        self.model = ScriptedModel(main=list(self.main), subagent=list(self.subagent)).start()
        return self

    def __exit__(self, *exc: Any) -> None:
        try:
            self.left_running = _kill_processes_in(self.root)
        finally:
            self.model.stop()
            shutil.rmtree(self.root, ignore_errors=True)
            self._on_interrupt.close()

    def program_exits(self) -> None:
        """What the SDK does when the program that ran this session exits: a release that keeps its
        CLI processes for an exit hook (``_kill_active_children``, atexit) lets go of them then,
        and a subprocess transport the program leaked dies with them ("Exception ignored in
        BaseSubprocessTransport.__del__: Event loop is closed", what its users see at exit). Run
        here, inside the caller's watch, that is heard as part of the story; else it would print
        on the harness's own stderr when the harness exits."""
        sdk = sys.modules.get("claude_agent_sdk._internal.transport.subprocess_cli")
        reaper = getattr(sdk, "_kill_active_children", None)
        if callable(reaper):
            reaper()
        gc.collect()

    def raise_for_unscripted(self) -> None:
        """A script that does not fit this CLI (it asked for more than was queued) gives no
        verdict: CliError names the request."""
        if unscripted := self.model.unscripted:
            first = unscripted[0]
            raise CliError(f"the real CLI {self.cli.version} made {len(unscripted)} request(s) nothing was queued for, "
                           f"first: {first.role} request #{first.index} ({first.last_user_text[:80]!r})")

    @property
    def env(self) -> dict[str, str]:
        return {**OFFLINE_ENV, "ANTHROPIC_BASE_URL": self.model.url, "HOME": str(self.root / "home"),
                "CLAUDE_CONFIG_DIR": str(self.root / "config"), "CLAUDE_CODE_TMPDIR": str(self.root / "tmp"),
                "TMPDIR": str(self.root / "tmp")}

    def options(self, **kwargs: Any) -> Any:
        """``ClaudeAgentOptions`` that run this CLI in this session (the SDK's own transport)."""
        from claude_agent_sdk import ClaudeAgentOptions

        return ClaudeAgentOptions(cli_path=str(self.cli.path), env=self.env, cwd=str(self.root / "work"),
                                  permission_mode="bypassPermissions", stderr=self.stderr.append, **kwargs)


class _ReapNotice(logging.Filter):
    """asyncio's child watcher logs "Loop ... that handles pid N is closed" when a CLI the SDK
    left running is killed after its loop closed: the harness's doing, kept out of the output."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "that handles pid" not in record.getMessage()


def _kill_processes_in(root: Path) -> list[int]:
    """Kill every process whose environment points into ``root`` (a CLI the SDK left running),
    and wait until each is gone."""
    killed = _signal_processes_in(root)
    notice = _ReapNotice()
    logging.getLogger("asyncio").addFilter(notice)
    try:
        for pid in killed:
            deadline = time.monotonic() + 2.0
            while _state(pid) not in (None, "Z") and time.monotonic() < deadline:
                time.sleep(0.01)
            reaped_by = time.monotonic() + 0.3  # a watcher thread reaps a zombie (and logs) at once
            while _state(pid) == "Z" and time.monotonic() < reaped_by:
                time.sleep(0.01)
        for thread in threading.enumerate():  # asyncio's per-process watcher threads: what they drop is freed here
            if thread.name.startswith("waitpid-"):
                thread.join(2.0)
    finally:
        logging.getLogger("asyncio").removeFilter(notice)
    return killed


def _kill_and_reap(root: Path) -> None:
    """On Ctrl-C: kill the CLI processes of ``root`` and reap those this process started, within
    :data:`~pytest_agentsdk.interrupt.REAP_WAIT_S`. The command exits at once after: a CLI killed
    but not reaped would outlive it as a zombie, and keep its process group, until init reaps it.
    A CLI that a terminal's Ctrl-C reached too may be exiting already: its environment is gone, so
    it is known only as a child of this process that has none."""
    pending = {*_signal_processes_in(root), *_exiting_children()}
    deadline = time.monotonic() + interrupt.REAP_WAIT_S
    while pending:  # each tried in every round: one that never ends (a child not a CLI's) starves no other
        # by waitpid, not by the state: a killed CLI's main thread shows as a zombie while its other
        # threads still exit, and cannot be reaped until they have
        for pid in list(pending):
            try:
                if os.waitpid(pid, os.WNOHANG)[0]:
                    pending.discard(pid)
            except ChildProcessError:  # not this process's child (init reaps it), or asyncio's watcher thread reaped it
                pending.discard(pid)
        if time.monotonic() >= deadline:
            break
        time.sleep(0.005)


def _exiting_children() -> list[int]:
    """This process's children whose environment is gone (empty, or no longer readable): exiting,
    or exited (zombies)."""
    me = str(os.getpid())
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or (_stat(int(entry.name)) or ["", ""])[1] != me:
            continue
        try:
            if (entry / "environ").read_bytes():
                continue
        except OSError:  # ESRCH: its memory is gone already
            pass
        found.append(int(entry.name))
    return found


def _state(pid: int) -> str | None:
    """The process state letter (``Z``: a zombie), None when it is gone."""
    return stat[0] if (stat := _stat(pid)) else None


def _stat(pid: int) -> list[str] | None:
    """The fields of ``/proc/PID/stat`` after the command name (state, parent pid, ...), None when
    it is gone. The name is cut at its last ``) ``: it may hold one itself."""
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(") ", 1)[1].split()
    except (OSError, IndexError):
        return None


def _signal_processes_in(root: Path) -> list[int]:
    marker = f"CLAUDE_CONFIG_DIR={root / 'config'}".encode()
    killed = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if marker in environ.split(b"\0"):
            try:
                os.kill(int(entry.name), signal.SIGKILL)
                killed.append(int(entry.name))
            except OSError:
                pass
    return killed


# ---------------------------------------------------------------- a bug played by a real CLI
class RealCliStories:
    """What each bug's real-CLI scenario shares (mixed in before the bug's Scenario): the CLI it
    runs, the ``--cli`` replay needs, and stories that are the whole example space, so the sweep
    runs them all and no search follows (re-running a story would only cost seconds)."""

    #: what the stories span, for the coverage line
    story_axes = "stories"
    replay_args: tuple[str, ...] = ()
    #: a story the CLI asked more of than was queued gives no outcome; the other stories still count
    example_errors: tuple[type[Exception], ...] = (CliError,)

    def __init__(self, cli: Cli) -> None:
        super().__init__()
        self.cli = cli
        self.replay_args = ("--cli", str(cli.path))

    def stories(self) -> list[dict[str, Any]]:
        raise NotImplementedError

    def examples(self, model: str | None) -> Any:
        from hypothesis import strategies as st

        return st.sampled_from(self.stories())

    def sweep(self, model: str | None, backend: str) -> Sweep:
        return Sweep(self.stories(), f"{self.story_axes}, on the real CLI {self.cli.version}", exhaustive=True)

    def story(self, example: Any) -> dict[str, Any]:
        """``example`` when it is one of the stories (a replayed one may be anything), else
        ScriptError naming the first field that no story has, or the combination none has."""
        stories = self.stories()
        if example in stories:
            return dict(example)
        if not isinstance(example, dict):
            raise ScriptError(f"example: {str(example)[:60]} is not a JSON object; a real-CLI example is one of the stories "
                              "check --cli ran (its counterexample)")
        for key in dict.fromkeys(k for story in stories for k in story):
            values = list(dict.fromkeys(story[key] for story in stories if key in story))
            one_of(f"example.{key}", example.get(key), values, missing=key not in example)
        raise ScriptError(f"example: {json.dumps(example, sort_keys=True)[:120]} is not one of the {len(stories)} real-CLI stories "
                          "(each field is, the combination is not): replay a counterexample check --cli printed")


# ---------------------------------------------------------------- driving it through the SDK
#: Bound on one real-CLI story: a CLI answers initialize in under a second and a turn in tens of
#: ms (REAL_CLI.md); this only ends a CLI that waits forever.
STORY_WALL_S = 60.0


def play_query(session: CliSession, prompt: str, backend: str) -> list[Any]:
    """``async for message in query(prompt=..., options=...)`` to its end: what the consumer got."""
    async def main() -> list[Any]:
        from claude_agent_sdk import query

        return [message async for message in query(prompt=prompt, options=session.options())]

    return list(run_in_fresh_loop(main, backend, wall=STORY_WALL_S))


def play_client(session: CliSession, prompts: list[str], backend: str, responses: int = 1) -> list[list[Any]]:
    """``ClaudeSDKClient``: each prompt, then ``responses`` ``receive_response()`` calls after the
    last one (a background agent's notification turn comes as a response of its own)."""
    async def main() -> list[list[Any]]:
        from claude_agent_sdk import ClaudeSDKClient

        turns: list[list[Any]] = []
        async with ClaudeSDKClient(options=session.options()) as client:
            for i, prompt in enumerate(prompts):
                await client.query(prompt)
                for _ in range(responses if i == len(prompts) - 1 else 1):
                    turns.append([message async for message in client.receive_response()])
        return turns

    return list(run_in_fresh_loop(main, backend, wall=STORY_WALL_S))


@contextlib.contextmanager
def tap_stdout(on_frame: Callable[[dict[str, Any]], object] | None = None) -> Iterator[list[dict[str, Any]]]:
    """Record every frame the SDK's ``SubprocessCLITransport`` reads from a CLI's stdout, in
    order, while the block runs (the fidelity check compares them with the scripted CLI's), and
    call ``on_frame`` with each as it is read (a story that acts on what the SDK has read). The
    class's reader is wrapped, not replaced: the SDK runs its own transport as usual."""
    from claude_agent_sdk._internal.transport.subprocess_cli import SubprocessCLITransport

    frames: list[dict[str, Any]] = []
    original = SubprocessCLITransport.read_messages

    async def tapped(self: Any) -> AsyncIterator[dict[str, Any]]:
        async for frame in original(self):
            frames.append(frame)
            if on_frame is not None:
                on_frame(frame)
            yield frame

    SubprocessCLITransport.read_messages = tapped  # type: ignore[method-assign]
    try:
        yield frames
    finally:
        SubprocessCLITransport.read_messages = original  # type: ignore[method-assign]
