"""Isolated claude-agent-sdk environments, one per subject, built with uv and cached by content key.

A *subject* is what ``matrix``/``verify``/``bisect`` judge: ``pypi:VERSION`` (or a bare version),
``latest``, a local source tree, a wheel or sdist file, or a git URL (``git+file://...@ref``,
``git+https://...``). The SDK is installed from its sdist by default, so no env carries the 324 MB
bundled CLI; pass ``cli=True`` for a wheel when the real CLI is needed.

Every env is built in a temporary directory and renamed into the cache only once the SDK imports,
so an interrupted or failed build never leaves a half-built env behind. Every child process (uv,
a check in an env) is started through :mod:`pytest_agentsdk.interrupt`, so Ctrl-C kills it and
removes the directory it was building. The cache lives under
``$PYTEST_AGENTSDK_CACHE`` (default ``~/.cache/pytest-agentsdk``); uv's own cache makes a rebuild
of a release seen before take a second or two.

The harness is *not* installed into the env: the env sees only this very ``pytest_agentsdk``
package, through a directory on ``PYTHONPATH`` holding one symlink to it. So the code that judges
is always the code you are running (no stale copy per env, no env rebuild when the harness
changes), and nothing else from the caller's site-packages leaks in to shadow the release under test.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import importlib.util
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.version import InvalidVersion, Version

from . import cache, interrupt, preload

PACKAGE = "claude-agent-sdk"
#: Oldest release the harness supports; older ones get an ``error`` verdict, never a build.
MIN_SUPPORTED = Version("0.1.44")
#: What ``python -m pytest_agentsdk check`` needs next to the SDK (pyproject's runtime + test deps).
HARNESS_DEPS = ("anyio>=4.4", "hypothesis>=6.100", "pytest>=8", "pytest-asyncio>=0.23", "trio>=0.25", "packaging>=23")
DEFAULT_INDEX = "https://pypi.org/simple"
#: How long the cached release list is trusted before the index is asked again.
RELEASES_TTL = 3600.0
#: Bumped when the layout of an env or of the release list changes, so old cache entries are not reused.
CACHE_LAYOUT = 1
_SKIP_DIRS = {".git", "__pycache__", ".venv", ".tox", "build", "dist", ".mypy_cache", ".pytest_cache", ".ruff_cache"}

Progress = Callable[[str], None]
#: The distribution's name in file names, however a tool normalised it.
_DIST = r"claude[-_.]agent[-_.]sdk"


class EnvError(Exception):
    """Bad subject or failed build: one line for the user (exit 2)."""


# ---------------------------------------------------------------- subjects
@dataclass(frozen=True)
class Spec:
    """A parsed subject. ``kind`` is one of pypi, latest, path, file, git."""

    kind: str
    value: str  # version, absolute path, or git URL without the ref
    text: str  # as the user wrote it
    ref: str | None = None  # git ref

    @property
    def label(self) -> str:
        return self.value if self.kind == "pypi" else self.text

    @property
    def installed_from(self) -> str | None:
        """Where a candidate comes from (a file URI, a git URL), as a report's subject names it; None
        for a release from the index. Said here, not read from the env: an env is keyed by content,
        so one built from another path holds that path."""
        if self.kind in ("pypi", "latest"):
            return None
        return Path(self.value).as_uri() if self.kind in ("path", "file") else self.text


def parse_spec(text: str) -> Spec:
    """Parse a subject without touching the network; raises EnvError naming what is wrong."""
    text = text.strip()
    if not text:
        raise EnvError("empty SDK spec: give a version, pypi:VERSION, latest, a path, or a git+ URL")
    if text == "latest":
        return Spec("latest", "latest", text)
    if text.startswith("pypi:") or _looks_like_version(text):
        raw = text.removeprefix("pypi:")
        try:
            return Spec("pypi", str(Version(raw)), text)
        except InvalidVersion:
            raise EnvError(f"{text}: {raw!r} is not a release version (e.g. pypi:0.1.48)") from None
    if text.startswith("git+"):
        return _parse_git(text)
    path = Path(text).expanduser()
    if path.is_dir():
        pyproject = path / "pyproject.toml"
        if not pyproject.is_file() or not re.search(rf'^name\s*=\s*["\']{_DIST}["\']', pyproject.read_text(), re.MULTILINE):
            raise EnvError(f"{text}: not a claude-agent-sdk source tree (no pyproject.toml naming {PACKAGE})")
        return Spec("path", str(path.resolve()), text)
    if path.is_file():
        if not re.match(rf"{_DIST}-.+\.(whl|tar\.gz|zip)$", path.name, re.IGNORECASE):
            raise EnvError(f"{text}: not a claude-agent-sdk wheel or sdist (claude_agent_sdk-VERSION.whl/.tar.gz)")
        return Spec("file", str(path.resolve()), text)
    if os.sep in text or text.startswith(".") or text.endswith((".whl", ".tar.gz")):
        raise EnvError(f"{text}: no such file or directory; give a release version, latest, a source tree, an sdist or wheel, "
                       "or a git+ URL")
    raise EnvError(f"{text}: not a version, pypi:VERSION, latest, a path, or a git+ URL")


def _looks_like_version(text: str) -> bool:
    return bool(re.fullmatch(r"v?\d+(\.\d+)*([a-z0-9.+-]*)", text, re.IGNORECASE)) and not Path(text).exists()


def _parse_git(text: str) -> Spec:
    scheme, sep, rest = text.partition("://")
    if not sep or scheme not in ("git+file", "git+https", "git+http", "git+ssh"):
        raise EnvError(f"{text}: git subjects look like git+file:///path@ref or git+https://host/repo@ref")
    base, ref = rest, None
    if "@" in rest and "/" not in rest.rsplit("@", 1)[1]:
        base, ref = rest.rsplit("@", 1)
    return Spec("git", f"{scheme}://{base}", text, ref or None)


def unsupported_reason(version: str) -> str | None:
    """Why the harness will not judge ``version`` (older than the supported range), or None."""
    try:
        if Version(version) < MIN_SUPPORTED:
            return f"claude-agent-sdk {version} is older than the supported range (>= {MIN_SUPPORTED})"
    except InvalidVersion:
        return f"claude-agent-sdk reports an unparseable version {version!r}"
    return None


# ---------------------------------------------------------------- cache and registry
def index_url() -> str:
    """The package index to list releases from (and to pass to uv when set explicitly)."""
    for var in ("PYTEST_AGENTSDK_INDEX_URL", "UV_DEFAULT_INDEX", "UV_INDEX_URL", "PIP_INDEX_URL"):
        if os.environ.get(var):
            return os.environ[var].rstrip("/")
    return DEFAULT_INDEX


def releases(*, refresh: bool = False, progress: Progress | None = None) -> list[str]:
    """Final claude-agent-sdk releases that have an sdist (yanked ones included), oldest first."""
    return sorted(release_sdists(refresh=refresh, progress=progress), key=Version)


def release_sdists(*, refresh: bool = False, progress: Progress | None = None) -> dict[str, tuple[str, str | None]]:
    """Every final release's sdist: version -> (download URL, sha256 or None).

    Asked from the index's simple API and cached for an hour; offline, a stale cached list is used
    (with a note), and with no list at all this raises EnvError.
    """
    url = index_url()
    path = cache.root() / "releases.json"
    cached: dict[str, Any] = {}
    if path.is_file():
        try:
            cached = json.loads(path.read_text())
        except ValueError:
            pass
    if not isinstance(cached, dict) or (cached.get("index"), cached.get("layout")) != (url, CACHE_LAYOUT):
        cached = {}  # another index, or an older cache layout
    listed = _cached_sdists(cached)
    if listed is not None and "sdists" in cached and not refresh and time.time() - cached.get("fetched", 0) < RELEASES_TTL:
        return listed
    try:
        sdists = _sdist_links(url)
    except (OSError, ValueError) as exc:
        if listed is not None:
            if progress:
                progress(f"package index unreachable ({_short(exc)}); using the release list cached {time.ctime(cached.get('fetched', 0))}")
            return listed
        raise EnvError(f"cannot list {PACKAGE} releases: package index {url} unreachable ({_short(exc)})") from None
    # "versions" too: a harness of before the sdists were cached reads it from the same cache
    cache.atomic_write(path, json.dumps({"index": url, "layout": CACHE_LAYOUT, "fetched": time.time(), "sdists": sdists,
                                         "versions": sorted(sdists, key=Version)}))
    return sdists


def _cached_sdists(cached: dict[str, Any]) -> dict[str, tuple[str, str | None]] | None:
    """The sdists a cached release list names (a list written before sdists were cached names only
    versions: no URL, so none is fetched); None when it names none readable."""
    try:
        if isinstance(cached.get("sdists"), dict):
            return {str(v): (str(href), None if sha is None else str(sha)) for v, (href, sha) in cached["sdists"].items()}
        if isinstance(cached.get("versions"), list):
            return {str(v): ("", None) for v in cached["versions"]}
    except (TypeError, ValueError):
        pass
    return None


def _sdist_links(url: str) -> dict[str, tuple[str, str | None]]:
    """The index's sdists of the SDK: version -> (download URL, sha256 or None).

    Yanked releases stay: many old ones are yanked to free storage, and an exact pin still installs them.
    """
    page = f"{url}/{PACKAGE}/"
    request = urllib.request.Request(page, headers={"Accept": "application/vnd.pypi.simple.v1+json, text/html;q=0.1"})
    with urllib.request.urlopen(request, timeout=15) as response:
        body = response.read().decode()
        is_json = "json" in response.headers.get("Content-Type", "")
    if is_json:
        links = [(f["filename"], f["url"], f.get("hashes", {}).get("sha256")) for f in json.loads(body)["files"]]
    else:
        links = [(name, href.split("#")[0], (re.findall(r"#sha256=([0-9a-f]{64})", href) or [None])[0])
                 for href, name in re.findall(r'<a[^>]*href="([^"]+)"[^>]*>\s*([^<\s]+)\s*</a>', body)]
    found: dict[str, tuple[str, str | None]] = {}
    for name, href, sha in links:
        m = re.fullmatch(rf"{_DIST}-(.+)\.tar\.gz", name, re.IGNORECASE)
        try:
            version = Version(m.group(1)) if m else None
        except InvalidVersion:
            continue
        if version is not None and not version.is_prerelease:
            found[str(version)] = (urllib.parse.urljoin(page, href), sha)
    if not found:
        raise ValueError(f"no {PACKAGE} sdists listed")
    return found


def sdist_source(version: str, dest: Path) -> Path:
    """Download release ``version``'s sdist (hash-checked) and unpack it under ``dest``; returns the
    source tree, ready to patch into a fix candidate for ``verify --candidate``."""
    url = index_url()
    try:
        sdists = _sdist_links(url)
        if version not in sdists:
            raise EnvError(f"{PACKAGE} {version}: no sdist on {url}")
        data = download_sdist(*sdists[version])
    except (OSError, ValueError) as exc:
        raise EnvError(f"cannot download the {PACKAGE} {version} sdist from {url} ({_short(exc)})") from None
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        if hasattr(tarfile, "data_filter"):  # Python >= 3.10.12 / 3.11.4: refuse unsafe members
            archive.extractall(dest, filter="data")
        else:
            archive.extractall(dest)
        top = archive.getnames()[0].split("/")[0]
    return dest / top


def download_sdist(href: str, sha: str | None) -> bytes:
    """The sdist at ``href``; ValueError when it does not hash to the index's ``sha``, OSError when
    it cannot be fetched (a connection cut mid-body included)."""
    try:
        with urllib.request.urlopen(href, timeout=60) as response:
            data: bytes = response.read()
    except http.client.HTTPException as exc:
        raise OSError(f"{type(exc).__name__}: {exc}") from None
    if sha is not None and hashlib.sha256(data).hexdigest() != sha:
        raise ValueError("sha256 does not match the index")
    return data


def _short(exc: BaseException) -> str:
    """One short line for a network error (urllib wraps the useful part in ``reason``)."""
    text = str(getattr(exc, "reason", None) or exc) or type(exc).__name__
    return text.splitlines()[0][:160]


# ---------------------------------------------------------------- uv
def uv_command() -> list[str]:
    """How to run uv: the one beside this interpreter (where ``pip install uv``, pyproject's
    ``test`` extra, puts it, even in a venv that is not activated), else uv on PATH, else
    ``python -m uv`` (the package installed where its binary is on neither)."""
    found = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    if found:
        return [found]
    if importlib.util.find_spec("uv") is not None:
        return [sys.executable, "-m", "uv"]
    raise EnvError(f"uv not found (not beside {sys.executable}, not on PATH, no uv package): pip install uv "
                   "(it builds the isolated SDK envs)")


def _uv(args: Sequence[str], what: str) -> None:
    proc = interrupt.run([*uv_command(), *args])
    if proc.returncode != 0:
        raise EnvError(f"{what}: {_uv_error(proc.stderr)}")


def _uv_error(stderr: str) -> str:
    """The one line of uv's report that says what went wrong."""
    lines = [re.sub(r"^[\s×╰─▶│|]+", "", line).strip() for line in stderr.splitlines()]
    lines = [line for line in lines if line and not line.startswith(("help:", "hint:"))]
    for line in lines:
        if line.startswith("Because") or "not found" in line or "does not exist" in line or "failed" in line.lower():
            return line[:300]
    return (lines[-1] if lines else "uv failed without a message")[:300]


# ---------------------------------------------------------------- envs
@dataclass(frozen=True)
class Env:
    """A built env: ``python`` runs the release, ``run_check`` judges it with this harness."""

    spec: Spec
    path: Path
    sdk_version: str
    key: str
    reused: bool = False
    build_seconds: float = 0.0

    @property
    def python(self) -> Path:
        return self.path / "bin" / "python"

    @property
    def label(self) -> str:
        return self.spec.label if self.spec.kind != "latest" else f"latest ({self.sdk_version})"

    def run(self, args: Sequence[str], timeout: float | None = None) -> subprocess.CompletedProcess[str]:
        """Run the env's python with ``args`` (captured)."""
        return interrupt.run([str(self.python), *args], env=env_environ(), timeout=timeout)

    def run_check(self, args: Sequence[str] = (), *, progress: Progress | None = None, timeout: float | None = None,
                  preloaders: preload.Preloaders | None = None) -> dict[str, Any]:
        """``python -m pytest_agentsdk check --json ARGS`` in this env, parsed; forked from the
        preloading server of this env's dependency set when ``preloaders`` has one, else a process
        of its own.

        Exit 1 (something reproduced) is a normal answer; a run that prints no JSON raises EnvError
        with the check's own last line. ``progress`` receives the check's stderr lines as they come.
        """
        share_bytecode(self.path)
        out: list[str] = []
        tail: list[str] = []
        drawings = preloaders.drawings(self.path) if preloaders else None
        argv = ["-m", "pytest_agentsdk", "check", "--json", *args, *(["--drawings", str(drawings)] if drawings else [])]
        with python_in(self.path, argv, preloaders) as proc:

            def pump_stdout() -> None:
                assert proc.stdout is not None
                out.append(proc.stdout.read())

            def pump_stderr() -> None:
                assert proc.stderr is not None
                for line in proc.stderr:
                    tail[:] = (tail + [line.rstrip()])[-20:]
                    if progress:
                        progress(line.rstrip())

            readers = [threading.Thread(target=pump, daemon=True) for pump in (pump_stdout, pump_stderr)]
            for reader in readers:
                reader.start()
            try:
                interrupt.wait_process(proc, timeout)
            except subprocess.TimeoutExpired:
                raise EnvError(f"{self.label}: check did not finish within {timeout:.0f} s") from None
            finally:
                proc.kill()  # a no-op once it exited; one that timed out, or a caller interrupted, must not outlive us
                interrupt.wait_process(proc)
                for reader in readers:
                    interrupt.join(reader)
        share_bytecode(self.path)  # what this check compiled, for the envs judged after it
        try:
            data: dict[str, Any] = json.loads("".join(out))
        except ValueError:
            last = next((line for line in reversed(tail) if line.strip()), "no output")
            raise EnvError(f"{self.label}: check exited {proc.returncode} without a verdict: {last}") from None
        return data


@contextlib.contextmanager
def python_in(prefix: Path, argv: Sequence[str], preloaders: preload.Preloaders | None, *, start_server: bool = True) -> Iterator[Any]:
    """``python ARGV`` in the env at ``prefix``, with text ``stdout`` and ``stderr`` pipes: forked
    from the preloading server of its dependency set when ``preloaders`` has one (started here,
    with ``start_server``) and it takes the run, else a process of its own; killed if the block
    raises."""
    python = prefix / "bin" / "python"
    preloader = preloaders.for_env(python, prefix, env_environ(), start=start_server) if preloaders else None
    with contextlib.ExitStack() as stack:
        proc: Any = None
        if preloader is not None:
            try:
                proc = stack.enter_context(preloader.run(prefix, argv))
            except preload.Unavailable:
                proc = None
        if proc is None:
            proc = stack.enter_context(interrupt.child([str(python), *argv], env=env_environ(), stdout=subprocess.PIPE,
                                                       stderr=subprocess.PIPE, text=True))
        yield proc


def env_environ() -> dict[str, str]:
    """What every process in an env runs with: the caller's environment, with only this harness
    added to the import path, and bytecode written (an env's modules compile once, in its first
    process, instead of on every check: about 10 s of each check otherwise)."""
    dropped = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONDONTWRITEBYTECODE")
    env = {k: v for k, v in os.environ.items() if k not in dropped}
    env["PYTHONPATH"] = str(_harness_dir())
    return env


def share_bytecode(env_path: Path) -> int:
    """Share compiled modules between the envs of this cache; returns how many the env at
    ``env_path`` got.

    uv hard-links one copy of each installed file into every env, so most of an env's modules
    (mcp, pydantic, Hypothesis, trio, pytest) are the very files of the envs before it. Each
    ``.pyc`` an env has is hard-linked into ``<cache>/bytecode``, named by its source file's identity
    (device, inode, mtime, size); a module an env lacks is linked from there when its source is that
    same file. A module then compiles once per machine instead of once per env (about 10 s of each
    new env's first check), and Python still checks every ``.pyc`` against its source as usual. The
    release's own files are never another release's: they are different files.
    """
    store = cache.root() / "bytecode"
    store.mkdir(parents=True, exist_ok=True)
    suffix = f".{sys.implementation.cache_tag}.pyc"
    in_store = set(os.listdir(store))
    got = 0
    for site in env_path.glob("lib/python*/site-packages"):
        for dirpath, dirnames, filenames in os.walk(site):
            dirnames[:] = [d for d in dirnames if d != "__pycache__" and not d.endswith(".dist-info")]
            pycache = Path(dirpath, "__pycache__")
            compiled = set(os.listdir(pycache)) if "__pycache__" in os.listdir(dirpath) else set()
            for name in filenames:
                if not name.endswith(".py"):
                    continue
                pyc = f"{name[:-3]}{suffix}"
                try:
                    st = os.stat(Path(dirpath, name))
                    shared = f"{st.st_dev}-{st.st_ino}-{st.st_mtime_ns}-{st.st_size}{suffix}"
                    if pyc in compiled:
                        if shared not in in_store:
                            os.link(pycache / pyc, store / shared)
                    elif shared in in_store:
                        pycache.mkdir(exist_ok=True)
                        os.link(store / shared, pycache / pyc)
                        got += 1
                except OSError:  # linked meanwhile by a concurrent check, or another file system: compiled as usual
                    continue
    return got


def _remove_abandoned_builds(envs_root: Path) -> None:
    """Delete the half-built envs (``.build-KEY-PID-THREAD``, ~100 MB each) of builders that are
    gone: a SIGKILL, or a signal before the command handled it, leaves them behind."""
    for path in envs_root.glob(".build-*-*-*"):
        pid = path.name.split("-")[-2]
        if pid.isdigit() and not _process_exists(int(pid)):
            shutil.rmtree(path, ignore_errors=True)


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's
        return True
    return True


def _harness_dir() -> Path:
    """A directory holding only a symlink to this ``pytest_agentsdk`` package (see module doc), and
    the package's metadata with its ``pytest11`` entry point, so ``pytest -p agentsdk`` (and
    plugin autoload) find the plugin inside the env as they do where the harness is installed."""
    package = Path(__file__).resolve().parent
    link_dir = cache.root() / "harness" / hashlib.sha256(str(package).encode()).hexdigest()[:16]
    link = link_dir / "pytest_agentsdk"
    if not (link.is_symlink() and link.resolve() == package):
        link_dir.mkdir(parents=True, exist_ok=True)
        with interrupt.removed_on_interrupt(link_dir / f".link.{os.getpid()}.{threading.get_ident()}") as tmp:
            tmp.symlink_to(package, target_is_directory=True)
            os.replace(tmp, link)
    from . import __version__

    dist_info = link_dir / f"pytest_agentsdk-{__version__}.dist-info"
    if not (dist_info / "entry_points.txt").exists():
        with interrupt.removed_on_interrupt(link_dir / f".dist-info.{os.getpid()}.{threading.get_ident()}") as staging:
            staging.mkdir()
            (staging / "METADATA").write_text(f"Metadata-Version: 2.1\nName: pytest-agentsdk\nVersion: {__version__}\n")
            (staging / "entry_points.txt").write_text("[pytest11]\nagentsdk = pytest_agentsdk.plugin\n")
            try:
                interrupt.rename_into_place(staging, dist_info)
            except OSError:  # another process made it first
                shutil.rmtree(staging, ignore_errors=True)
    return link_dir


def _tree_digest(root: Path) -> str:
    """Content hash of a source tree, so an edited (patched) tree gets a new env."""
    digest = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS and not d.endswith(".egg-info"))
        for name in sorted(filenames):
            if name.endswith((".pyc", ".pyo")):
                continue
            path = Path(dirpath) / name
            digest.update(str(path.relative_to(root)).encode() + b"\0")
            digest.update(path.read_bytes() if not path.is_symlink() else os.readlink(path).encode())
    return digest.hexdigest()


def git_commit(spec: Spec) -> str:
    """Resolve a git subject's ref to a commit, so the cache key names exactly what is built."""
    url = spec.value.removeprefix("git+")
    ref = spec.ref or "HEAD"
    proc = interrupt.run(["git", "ls-remote", url, ref], timeout=60, own_group=False)  # git may ask the terminal for a password
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines() or ["git failed"]
        raise EnvError(f"{spec.text}: cannot read git repository {url}: {next((x for x in lines if x.startswith('fatal:')), lines[-1])}")
    for line in proc.stdout.splitlines():
        sha, name = line.split("\t", 1)
        if name in (ref, f"refs/heads/{ref}", f"refs/tags/{ref}", f"refs/tags/{ref}^{{}}"):
            return sha
    if re.fullmatch(r"[0-9a-f]{40}", ref):
        return ref  # a full commit id: uv fetches it, or fails the build naming it
    raise EnvError(f"{spec.text}: git ref {ref!r} not found in {url}")


def release_version(spec: Spec, progress: Progress | None = None) -> str:
    """The release a pypi/latest subject names; EnvError when the index does not list it.

    Offline with no cached list, a pinned version is trusted (uv says whether it can get it).
    """
    try:
        known = releases(progress=progress)
    except EnvError:
        if spec.kind == "latest":
            raise
        return spec.value
    if spec.kind == "latest":
        return known[-1]
    if spec.value not in known:
        raise EnvError(f"{spec.text}: unknown {PACKAGE} release {spec.value} (releases with an sdist: {known[0]} ... {known[-1]})")
    return spec.value


def _install_target(spec: Spec, progress: Progress | None) -> tuple[str, str, list[str]]:
    """(requirement for uv, content identity for the cache key, extra uv flags)."""
    if spec.kind in ("pypi", "latest"):
        version = release_version(spec, progress)
        return f"{PACKAGE}=={version}", f"pypi:{version}", []
    if spec.kind == "path":
        # uv keys its build cache on the path and pyproject.toml mtime: refresh so edited sources rebuild
        return spec.value, f"tree:{_tree_digest(Path(spec.value))}", ["--refresh-package", PACKAGE]
    if spec.kind == "file":
        return spec.value, f"file:{hashlib.sha256(Path(spec.value).read_bytes()).hexdigest()}", []
    commit = git_commit(spec)
    return f"{PACKAGE} @ {spec.value}@{commit}", f"git:{spec.value}@{commit}", []


def ensure_env(spec: str | Spec, *, cli: bool = False, progress: Progress | None = None, preloaders: preload.Preloaders | None = None) -> Env:
    """The env for ``spec``: reused from the cache when its content key is there, else built.

    ``cli=True`` installs the SDK wheel (with the bundled CLI) instead of the sdist. A new env's
    import probe is forked from ``preloaders``' server of its dependency set, when one is running.
    Raises EnvError (one line) for a bad subject or a failed build; the cache is left untouched then.
    """
    spec = parse_spec(spec) if isinstance(spec, str) else spec
    requirement, identity, extra = _install_target(spec, progress)
    # keyed on the base interpreter (uv builds every env on it), so callers in different venvs
    # of the same Python (tox envs, .venv, CI) share one env per subject
    material = {"subject": identity, "python": sys.version, "base_prefix": sys.base_prefix, "deps": HARNESS_DEPS, "cli": cli, "layout": CACHE_LAYOUT}
    key = hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()[:24]
    envs_root = cache.root() / "envs"
    final = envs_root / key
    meta = final / "agentsdk-env.json"
    if meta.is_file() and (final / "bin" / "python").exists():
        return Env(spec, final, json.loads(meta.read_text())["sdk_version"], key, reused=True)

    started = time.monotonic()
    if progress:
        progress(f"building env for {spec.label} ({identity}, {'wheel with CLI' if cli else 'sdist'})")
    envs_root.mkdir(parents=True, exist_ok=True)
    _remove_abandoned_builds(envs_root)
    if final.exists():  # an entry whose interpreter went away: rebuild it
        shutil.rmtree(final)
    tmp = envs_root / f".build-{key}-{os.getpid()}-{threading.get_ident()}"
    with interrupt.removed_on_interrupt(tmp):
        try:
            _uv(["venv", "--quiet", "--relocatable", "--python", sys.executable, str(tmp)], f"{spec.text}: cannot create a venv")
            install = ["pip", "install", "--quiet", "--python", str(tmp / "bin" / "python"), *extra]
            if not cli and spec.kind != "file":
                install += ["--no-binary", PACKAGE]
            if os.environ.get("PYTEST_AGENTSDK_INDEX_URL"):
                install += ["--default-index", index_url()]
            where = f" from {index_url()}" if spec.kind in ("pypi", "latest") else ""  # an unreachable index reads as uv's retries
            _uv([*install, requirement, *HARNESS_DEPS], f"{spec.text}: build failed{where}")
            share_bytecode(tmp)
            probe_argv = ["-c", "import claude_agent_sdk as s; print(s.__version__)"]
            # forked from a server already serving this dependency set; none is started here: the
            # env it would run in is renamed below
            with python_in(tmp, probe_argv, preloaders, start_server=False) as proc:
                probe = preload.captured(proc, probe_argv)
            if probe.returncode != 0:
                raise EnvError(f"{spec.text}: built, but claude_agent_sdk does not import: {(probe.stderr.strip().splitlines() or ['?'])[-1]}")
            share_bytecode(tmp)  # what the probe compiled (the SDK; mcp, pydantic too unless preloaded), for the envs built after this one
            version = probe.stdout.strip()
            (tmp / "agentsdk-env.json").write_text(json.dumps({**material, "spec": spec.text, "sdk_version": version, "built": time.time()}, indent=2))
            try:
                interrupt.rename_into_place(tmp, final)
            except OSError:  # another process finished the same env first: use theirs
                if not meta.is_file():
                    raise
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    env = Env(spec, final, version, key, reused=False, build_seconds=time.monotonic() - started)
    if progress:
        progress(f"env for {env.label} ready in {env.build_seconds:.1f} s")
    return env
