"""One process per dependency set imports what its envs share; each env's ``check`` is a fork of it.

The envs a matrix judges differ in claude-agent-sdk and nothing else: uv installs the same files
(hard links of one cache) for mcp, pydantic, anyio, Hypothesis, trio and pytest in every one of
them. Importing those is most of a check's start-up (about 1.2 of 1.4 s of CPU, mcp alone 0.6),
paid again in every env. A :class:`Preloader` runs the interpreter of the first env of a set, imports
those packages once (never the SDK), and judges each env of the set in a fork whose import path is
that env's ``site-packages``: the release under judgement, and every module not imported yet, load
from its own env; what was imported already is byte for byte the files that env holds.

Envs belong to one set when they run on the same interpreter and every installed file except the
SDK's is the same (:func:`shared_digest`: ``pyvenv.cfg``, each distribution's RECORD, which lists
its files with their hashes, and the ``.pth`` files); an env of another set gets a preloader of its
own. A fork runs ``python -m pytest_agentsdk check ...`` (or the import probe of a new env) as the
env's own interpreter would, with the same arguments, output and exit status (tests hold the two
reports equal on both backends).

Run as ``python -m pytest_agentsdk.preload SOCKET``: the server. It listens on the Unix socket
(``@NAME``: Linux's abstract namespace) and takes one request per connection (the env,
``python``'s arguments, and the two pipe ends for the run's stdout and stderr): it forks, answers
the fork's pid, then its wait status; a ``kill`` sent on the connection kills the run and what it
forked. It lives in a process group of its own with its forks, so killing the group (Ctrl-C,
:mod:`pytest_agentsdk.interrupt`) ends all, and it kills that group itself when its caller's end of
its stdin closes.
"""

from __future__ import annotations

import gc
import hashlib
import importlib
import importlib.metadata
import importlib.util
import json
import os
import re
import secrets
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

#: The distribution judged, never imported by the server; its files are each env's own.
SDK_DIST = "claude_agent_sdk"
#: What every check imports besides the SDK's own dependencies (the harness's).
HARNESS_IMPORTS = ("anyio", "hypothesis", "hypothesis.strategies", "trio", "pytest", "packaging.version")
_READY = "ready"
#: How long a server may take to import what it preloads (about a second here) before the caller
#: gives up on it and runs its checks in processes of their own.
STARTUP_TIMEOUT_S = 60.0


def site_packages(prefix: Path) -> Path | None:
    """The ``site-packages`` of the env at ``prefix``."""
    found = sorted(prefix.glob("lib/python*/site-packages"))
    return found[0] if found else None


def shared_digest(site: Path) -> str:
    """What an env holds besides the SDK: its interpreter (``pyvenv.cfg``), every other
    distribution's RECORD (its files and their hashes) and every ``.pth`` file. Equal digests: the
    same files on the same interpreter, so a module imported from one env is the module the other
    would import."""
    digest = hashlib.sha256()
    config = site.parents[2] / "pyvenv.cfg"  # the interpreter every process of the env runs on
    digest.update(config.read_bytes() if config.is_file() else b"?")
    for entry in sorted(os.listdir(site)):
        path = site / entry
        if entry.endswith(".dist-info") and entry.split("-")[0].replace(".", "_").lower() != SDK_DIST:
            record = path / "RECORD"
            digest.update(entry.encode() + b"\0" + (record.read_bytes() if record.is_file() else b"?") + b"\0")
        elif entry.endswith(".pth"):
            digest.update(entry.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


# ---------------------------------------------------------------- the server
def _shared_imports() -> list[str]:
    """Top-level modules of the SDK's required dependencies, then the harness's."""
    try:
        requires = importlib.metadata.requires("claude-agent-sdk") or []
    except importlib.metadata.PackageNotFoundError:
        requires = []
    from packaging.requirements import Requirement

    dists = set()
    for text in requires:
        req = Requirement(text)
        if req.marker is None or req.marker.evaluate({"extra": ""}):
            dists.add(re.sub(r"[-_.]+", "-", req.name).lower())
    modules = [module for module, owners in importlib.metadata.packages_distributions().items()
               if not module.startswith("_") and any(re.sub(r"[-_.]+", "-", d).lower() in dists for d in owners)]
    return sorted(modules) + list(HARNESS_IMPORTS)


def _preload() -> None:
    for module in _shared_imports():
        try:
            importlib.import_module(module)
        except Exception:  # noqa: BLE001 - not importable on its own: the fork imports it as the env would
            continue
    if any(name == SDK_DIST or name.startswith(SDK_DIST + ".") for name in sys.modules):
        raise SystemExit("preload: a shared dependency imported claude_agent_sdk; the SDK must come from each env")


def _address(text: str) -> str:
    """A socket address given on the command line: ``@NAME`` is Linux's abstract namespace
    (no file to remove, no limit from the length of ``$TMPDIR``), anything else a path."""
    return "\0" + text[1:] if text.startswith("@") else text


def _kill_tree(pid: int) -> None:
    """SIGKILL ``pid`` and its descendants (they share the server's process group, so the group is
    not theirs alone to kill): stopped first, so it forks nothing more meanwhile."""
    try:
        os.kill(pid, signal.SIGSTOP)
    except ProcessLookupError:
        return
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            parents.setdefault(ppid, []).append(int(entry))
    doomed, todo = [], [pid]
    while todo:
        doomed.append(todo.pop())
        todo += parents.get(doomed[-1], [])
    for victim in reversed(doomed):
        try:
            os.kill(victim, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _serve(address: str) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the caller's: it kills this process group
    _preload()
    gc.collect()  # the imports' garbage, not pinned by the freeze below
    gc.freeze()  # what every fork shares stays out of its collections, so its pages stay shared (as forked's forks)
    own_site = site_packages(Path(sys.prefix))
    if own_site is None or not _only_site_of_prefix(own_site):
        print("unsupported: this interpreter puts more than one site-packages of its env on the import path", flush=True)
        return
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(_address(address))
    listener.listen()
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    print(_READY, shared_digest(own_site), flush=True)
    waiting: dict[int, socket.socket] = {}  # a fork's pid -> the connection that asked for it
    by_conn: dict[socket.socket, int] = {}
    with selectors.DefaultSelector() as events:
        events.register(listener, selectors.EVENT_READ)
        events.register(wake_r, selectors.EVENT_READ)
        events.register(sys.stdin, selectors.EVENT_READ)  # closed when the caller exits, however it exits
        server_fds = [listener.fileno(), wake_r, wake_w, sys.stdin.fileno(), events.fileno()]  # none is a fork's
        while True:
            for key, _ in events.select():
                if key.fileobj is sys.stdin:
                    os.killpg(0, signal.SIGKILL)  # the caller is gone: so are this server and its forks
                elif key.fileobj is listener:
                    conn, _ = listener.accept()
                    try:
                        pid = _fork_run(conn, own_site, closed_in_fork=server_fds + [c.fileno() for c in by_conn])
                    except Exception as exc:  # a bad request, or no fork to be had: that caller runs on its own
                        _answer(conn, {"error": f"{type(exc).__name__}: {exc}"})
                        conn.close()
                        continue
                    waiting[pid], by_conn[conn] = conn, pid
                    events.register(conn, selectors.EVENT_READ)
                elif key.fileobj is wake_r:
                    os.read(wake_r, 512)
                    while waiting:
                        pid, status = os.waitpid(-1, os.WNOHANG)
                        if pid == 0:
                            break
                        if (done := waiting.pop(pid, None)) is not None:
                            del by_conn[done]
                            if _registered(events, done):
                                events.unregister(done)
                            _answer(done, {"status": status})
                            done.close()
                else:  # the caller asks for its run to be killed, or went away: the server kills it, before reaping it
                    conn = key.fileobj  # type: ignore[assignment]
                    pid = by_conn[conn]
                    events.unregister(conn)
                    if conn.recv(64).startswith(b"kill"):
                        _kill_tree(pid)


def _registered(events: selectors.BaseSelector, conn: socket.socket) -> bool:
    try:
        events.get_key(conn)
    except KeyError:
        return False
    return True


def _only_site_of_prefix(own_site: Path) -> bool:
    """Whether ``own_site`` is the one entry of the import path inside this env (some Pythons add
    a ``lib64`` twin): a fork replaces that entry, and an env's SDK must not be found through another."""
    prefix = os.path.realpath(sys.prefix)
    ours = [entry for entry in sys.path if entry and os.path.realpath(entry).startswith(prefix + os.sep)]
    return len({os.path.realpath(entry) for entry in ours}) == 1 and os.path.realpath(ours[0]) == os.path.realpath(own_site)


def _answer(conn: socket.socket, message: dict[str, Any]) -> None:
    try:
        conn.sendall((json.dumps(message) + "\n").encode())
    except OSError:  # the caller went away (timed out, interrupted): nothing to tell
        pass


def _fork_run(conn: socket.socket, own_site: Path, closed_in_fork: list[int]) -> int:
    """Fork the run the request on ``conn`` asks for; its pid (answered on ``conn`` too)."""
    data, fds, _, _ = socket.recv_fds(conn, 1 << 16, 2)
    try:
        request = json.loads(data)
        prefix, argv = Path(request["prefix"]), list(request["argv"])
        if len(fds) != 2:
            raise ValueError("a request brings the run's stdout and stderr")
        pid = os.fork()
    except BaseException:
        for fd in fds:
            os.close(fd)
        raise
    if pid == 0:
        code = 1
        try:
            for fd in closed_in_fork:
                try:
                    os.close(fd)
                except OSError:
                    pass
            conn.close()
            signal.set_wakeup_fd(-1)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a process of its own
            devnull = os.open(os.devnull, os.O_RDONLY)
            for target, fd in zip((0, 1, 2), (devnull, *fds)):
                if fd != target:  # /dev/null may have opened as fd 0 itself, stdin being closed above
                    os.dup2(fd, target)
                    os.close(fd)
            _become(prefix, own_site)
            code = _run_python(argv)
        except BaseException:  # noqa: BLE001 - said on the run's stderr, exit 1, as a process of its own would
            import traceback

            traceback.print_exc()
        finally:
            try:
                import atexit

                atexit._run_exitfuncs()  # what the interpreter does on its way out (logging's flush, ...)
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
    for fd in fds:
        os.close(fd)
    _answer(conn, {"pid": pid})
    return pid


def _run_python(argv: list[str]) -> int:
    """What ``python ARGV`` does for ``-m MODULE ...`` and ``-c CODE ...``; its exit status."""
    import runpy

    option, target, *rest = argv
    if option not in ("-m", "-c"):
        raise ValueError(f"preload runs python -m MODULE or -c CODE, not {option}")
    sys.argv = [option, *rest]
    try:
        if option == "-m":
            runpy.run_module(target, run_name="__main__", alter_sys=True)
        else:
            exec(compile(target, "<string>", "exec"), {"__name__": "__main__", "__builtins__": __builtins__})
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or 0
        print(exc.code, file=sys.stderr)
        return 1
    return 0


def _become(prefix: Path, own_site: Path) -> None:
    """Import from the env at ``prefix`` from now on, as its own interpreter would: its
    ``site-packages`` replaces the server's on the import path and in every imported package's
    ``__path__``, so a submodule imported later (anyio's backend on first use) is that env's file
    too, whatever becomes of the server's env meanwhile; ``sys.executable`` is its interpreter.
    Raises when the SDK would still be found anywhere but in that env."""
    site = site_packages(prefix)
    if site is None:
        raise RuntimeError(f"no site-packages in {prefix}")
    mine, theirs = os.path.realpath(own_site), str(site)

    def moved(entry: str) -> str:
        real = os.path.realpath(entry) if entry else entry
        return theirs + real[len(mine):] if real == mine or real.startswith(mine + os.sep) else entry

    sys.path[:] = [moved(entry) for entry in sys.path]
    for module in list(sys.modules.values()):
        path = getattr(module, "__path__", None)
        if isinstance(path, list):
            path[:] = [moved(entry) for entry in path]
    sys.path_importer_cache.clear()
    sys.prefix = sys.exec_prefix = str(prefix)
    sys.executable = str(prefix / "bin" / "python")
    importlib.invalidate_caches()
    found = importlib.util.find_spec(SDK_DIST)
    origin = os.path.realpath(found.origin) if found and found.origin else ""
    if not origin.startswith(os.path.realpath(site) + os.sep):
        raise RuntimeError(f"preload: claude_agent_sdk would load from {origin or 'nowhere'}, not from {site}")


# ---------------------------------------------------------------- the caller's side
class Unavailable(RuntimeError):
    """The server did not take a run (gone, or it refused the request): run it in a process of its own."""


def captured(proc: Any, argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
    """Read ``proc`` (a ``subprocess.Popen`` or a fork of a server, with text pipes) to its end,
    like ``subprocess.run(..., capture_output=True)``."""
    from . import interrupt

    assert proc.stdout is not None and proc.stderr is not None
    read: dict[str, str] = {}
    readers = [threading.Thread(target=lambda name=name, pipe=pipe: read.__setitem__(name, pipe.read()), daemon=True)
               for name, pipe in (("out", proc.stdout), ("err", proc.stderr))]
    for reader in readers:  # on threads: this one, maybe the main thread, waits where a signal can reach it
        reader.start()
    for reader in readers:
        interrupt.join(reader)
    return subprocess.CompletedProcess(list(argv), interrupt.wait_process(proc), read["out"], read["err"])


class _Forked:
    """A run forked by a server, read like a ``subprocess.Popen`` (``stdout``, ``stderr``, ``wait``,
    ``kill``, ``returncode``)."""

    def __init__(self, conn: socket.socket, stdout: IO[str], stderr: IO[str]) -> None:
        self.conn, self.stdout, self.stderr = conn, stdout, stderr
        self.returncode: int | None = None
        self._buffer = b""
        answer = self._message(None)
        if answer is None or "pid" not in answer:
            raise Unavailable(f"the preloading server did not start the run: {(answer or {}).get('error', 'it went away')}")
        self.pid: int = answer["pid"]

    def _message(self, timeout: float | None) -> dict[str, Any] | None:
        """The server's next answer on this connection; None when it closed the connection."""
        self.conn.settimeout(None if timeout is None else max(timeout, 1e-3))  # 0 would make the socket non-blocking
        while b"\n" not in self._buffer:
            chunk = self.conn.recv(4096)
            if not chunk:
                return None
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return json.loads(line)  # type: ignore[no-any-return]

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            try:
                answer = self._message(timeout)
            except TimeoutError:
                raise subprocess.TimeoutExpired(["preloaded"], timeout or 0) from None
            # no answer: the server was killed, and its forks with it
            self.returncode = os.waitstatus_to_exitcode(answer["status"]) if answer else -signal.SIGKILL
        return self.returncode

    def kill(self) -> None:
        """Have the server kill the run and what it forked (a check's rows): it kills its own child
        before reaping it, so the pid cannot be another process's by then."""
        if self.returncode is None:
            try:
                self.conn.sendall(b"kill\n")
            except OSError:  # the server is gone, and its process group with it
                pass


class Preloader:
    """A running server (see the module doc), started in the env at ``python``'s prefix."""

    def __init__(self, python: Path, environ: dict[str, str], workdir: Path) -> None:
        from . import interrupt

        name = f"@pytest-agentsdk-preload-{os.getpid()}-{secrets.token_hex(8)}" if sys.platform == "linux" else str(workdir / "sock")
        self.socket = _address(name)
        self._closed = False
        log = workdir / "preload.log"
        with open(log, "w") as err:
            self._server = interrupt.child([str(python), "-m", "pytest_agentsdk.preload", name], env=environ,
                                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, text=True)
            self.process = self._server.__enter__()
        assert self.process.stdout is not None
        with selectors.DefaultSelector() as ready:
            ready.register(self.process.stdout, selectors.EVENT_READ)
            said: str = self.process.stdout.readline() if ready.select(STARTUP_TIMEOUT_S) else ""
        word, _, self.digest = said.strip().partition(" ")
        if word != _READY:
            self.close()
            lines = log.read_text().strip().splitlines() or [said.strip() or f"no word within {STARTUP_TIMEOUT_S:g} s"]
            raise RuntimeError(f"the preloading server did not start: {lines[-1]}")

    @contextmanager
    def run(self, prefix: Path, argv: Sequence[str]) -> Iterator[_Forked]:
        """``python ARGV`` (``-m MODULE ...`` or ``-c CODE ...``) as the env at ``prefix`` would run
        it, forked here: a process-like with text ``stdout`` and ``stderr`` pipes. Raises
        :class:`Unavailable` when the server does not take the run."""
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        stdout, stderr = open(out_r, encoding="utf-8"), open(err_r, encoding="utf-8")
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            try:
                conn.connect(self.socket)
                socket.send_fds(conn, [json.dumps({"prefix": str(prefix), "argv": list(argv)}).encode()], [out_w, err_w])
                forked = _Forked(conn, stdout, stderr)
            except OSError as exc:
                raise Unavailable(f"the preloading server is gone ({exc})") from None
            finally:
                os.close(out_w)
                os.close(err_w)
            try:
                yield forked
            except BaseException:
                forked.kill()
                raise
        finally:
            stdout.close()
            stderr.close()
            conn.close()

    def close(self) -> None:
        """Stop the server and every fork of it (they share its process group); again: nothing."""
        if self._closed:
            return
        self._closed = True
        if self.process.returncode is None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.process.wait()
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                pipe.close()
        self._server.__exit__(None, None, None)


def _digest_of(prefix: Path) -> str | None:
    """The :func:`shared_digest` of the env at ``prefix``; None for an env without site-packages."""
    site = site_packages(prefix)
    return None if site is None else shared_digest(site)


class Preloaders:
    """One :class:`Preloader` per dependency set, started on first use; all stopped on exit."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_digest: dict[str, Preloader | None] = {}
        self._started: dict[str, threading.Event] = {}

    def __enter__(self) -> Preloaders:
        from . import interrupt

        self._workdir = Path(tempfile.mkdtemp(prefix="pytest-agentsdk-preload-"))
        self._removed = interrupt.removed_on_interrupt(self._workdir)
        self._removed.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        for preloader in self._by_digest.values():
            if preloader is not None:
                preloader.close()
        shutil.rmtree(self._workdir, ignore_errors=True)
        self._removed.__exit__(None, None, None)

    def drawings(self, prefix: Path) -> Path | None:
        """A directory where this run's checks in envs of ``prefix``'s dependency set share their
        search drawings (``check --drawings``): the same harness and Hypothesis draw the same."""
        digest = _digest_of(prefix)
        if digest is None:
            return None
        path = self._set_dir(digest) / "drawings"
        path.mkdir(exist_ok=True)
        return path

    def _set_dir(self, digest: str) -> Path:
        """This run's directory for one dependency set: its server's files, its checks' drawings."""
        path = self._workdir / digest[:16]
        path.mkdir(exist_ok=True)
        return path

    def for_env(self, python: Path, prefix: Path, environ: dict[str, str], *, start: bool = True) -> Preloader | None:
        """The server for the env at ``prefix``, started with ``python`` (the env's own interpreter)
        if it is the first of its set and ``start``; None when there is none or it is still
        starting (the caller then starts a process of its own, as without preloading). Start
        servers only from an env that stays where it is: a server's own env must outlive it."""
        digest = _digest_of(prefix)
        if digest is None:
            return None
        with self._lock:
            started = self._started.get(digest)
            first = started is None and start
            if first:
                started = self._started[digest] = threading.Event()
        if started is None or not (first or started.is_set()):
            return None  # none, or one still importing: a process of its own keeps this core busy meanwhile
        if not first:
            return self._by_digest.get(digest)
        preloader: Preloader | None = None
        try:
            preloader = Preloader(python, environ, self._set_dir(digest))
            if preloader.digest != digest:  # the server sees its env otherwise: share nothing
                preloader.close()
                preloader = None
        except Exception:  # noqa: BLE001 - no server: every check of this set runs in a process of its own
            preloader = None
        finally:
            self._by_digest[digest] = preloader
            started.set()
        return preloader


if __name__ == "__main__":
    _serve(sys.argv[1])
