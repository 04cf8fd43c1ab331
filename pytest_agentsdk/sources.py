"""Which releases share their Python source, so ``matrix`` judges each distinct source once.

Most releases only bump the bundled CLI: their sdists differ in nothing but version strings. With
the scripted CLI such releases run the same code on the same dependencies, so judging them again
gives the same rows (``matrix --all --seed 0`` over 147 releases: identical rows either way).

A release's *source fingerprint* is taken only from an sdist built the way every release's is: a
hatchling wheel of ``src/claude_agent_sdk`` and nothing else, from static metadata (no build or
metadata hooks, no dynamic fields, no ``hatch.toml``/``setup.py``/``.hgignore``, no links); any
other sdist gets none, and is judged in its own env. It hashes every file of the package byte for
byte, pyproject.toml's settings (the dependencies, the build), PKG-INFO's dependency fields (what
an installer reads) and the sdist's root ``.gitignore`` (hatchling's wheel honours it). Left out
are the version strings alone: pyproject's ``project.version``, and the value of ``__version__`` /
``__cli_version__`` in a module made of nothing but such assignments (and a docstring). A module
that computes its version is compared as code. The SDK reads these values only to tell the real CLI
which SDK runs it, so ``matrix --cli`` judges every release; a release whose own code branched on
its version value would be grouped wrongly (none of the 147 does: every row is the same judged
each way).

Fingerprints are cached by (release, sdist sha256) in ``sources-RULE.json`` under the env cache,
which is trusted as the envs beside it are; an entry not shaped like a fingerprint is fetched again.
"""

from __future__ import annotations

import ast
import hashlib
import io
import json
import re
import sys
import tarfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path, PurePosixPath
from typing import Any

from packaging.version import Version

from . import cache, envs, interrupt

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

#: Bumped whenever :func:`fingerprint` changes, so no cached fingerprint outlives the rule that made it.
FINGERPRINT_RULE = 3
FETCHES_AT_ONCE = 8  # sdists are ~90 KB: the wait is the index's latency, not the bandwidth
_IMPORT_NAME = envs.PACKAGE.replace("-", "_")
#: The only wheel build a fingerprint vouches for (every release's pyproject says exactly this).
_WHEEL = {"packages": [f"src/{_IMPORT_NAME}"], "only-include": [f"src/{_IMPORT_NAME}"]}
#: Files at the sdist's root that change how (or from what) the wheel is built.
_OTHER_BUILDS = ("hatch.toml", "hatch_build.py", "setup.py", "setup.cfg", ".hgignore")
#: PKG-INFO's fields an installer reads for the dependencies (uv takes them from there, not building)
_PKG_INFO_REQUIRES = re.compile(rb"(?m)^(?:Requires-Dist|Requires-Python|Provides-Extra):.*$")
_VERSION_NAMES = ("__version__", "__cli_version__")
_VERSION_VALUE = re.compile(r"\d[\w.+!-]*")
_FINGERPRINT = re.compile(r"[0-9a-f]{64}")  # a cache entry of another shape is dropped, and fetched again
_VERSION_MODULE_MAX = 1024  # bytes: a version module is a few lines; parsing every module costs 0.1 s a release


def fingerprint(sdist: bytes) -> str:
    """The source fingerprint of an sdist (a ``.tar.gz``); ValueError when none can vouch for it."""
    files: dict[PurePosixPath, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(sdist), mode="r|gz") as archive:  # one pass: no gzip seeks
        for member in archive:
            if not (member.isfile() or member.isdir()):
                raise ValueError(f"{member.name}: a link or special file")
            if member.isfile():
                files[PurePosixPath(member.name)] = archive.extractfile(member).read()  # type: ignore[union-attr]
    tops = {path.parts[0] for path in files}
    if len(tops) != 1 or any(len(path.parts) < 2 for path in files):
        raise ValueError("not one top directory")
    top = PurePosixPath(tops.pop())
    package = top / "src" / _IMPORT_NAME
    if top / "pyproject.toml" not in files or package / "__init__.py" not in files:
        raise ValueError(f"no pyproject.toml or src/{_IMPORT_NAME}/__init__.py")
    if found := [name for name in _OTHER_BUILDS if top / name in files]:
        raise ValueError(f"{found[0]}: a build this fingerprint cannot vouch for")
    h = hashlib.sha256()
    chosen = {"pyproject.toml": _settings(files[top / "pyproject.toml"]), ".gitignore": files.get(top / ".gitignore", b""),
              "PKG-INFO": b"\n".join(_PKG_INFO_REQUIRES.findall(files.get(top / "PKG-INFO", b"")))}
    for path in sorted(p for p in files if package in p.parents):
        data = files[path]
        chosen[str(path.relative_to(package.parent))] = _without_version_strings(data) if path.suffix == ".py" else data
    for name, data in chosen.items():
        h.update(f"{name}\0{len(data)}\0".encode())
        h.update(data)
    return h.hexdigest()


def _settings(pyproject: bytes) -> bytes:
    """pyproject.toml's settings without ``project.version``, canonical; ValueError for a build
    other than every release's (hatchling, the package alone, no hooks)."""
    try:
        data: dict[str, Any] = tomllib.loads(pyproject.decode())
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"pyproject.toml: {exc}") from None
    project = dict(data.get("project") or {})
    hatch = (data.get("tool") or {}).get("hatch", {})
    build = hatch.get("build", {})
    if (data.get("build-system") or {}).get("build-backend") != "hatchling.build" or project.get("dynamic") or set(hatch) - {"build"}:
        raise ValueError("pyproject.toml: not a hatchling build of static metadata (no dynamic fields, no metadata hooks)")
    targets = build.get("targets", {})
    if set(build) - {"targets"} or set(targets) - {"wheel", "sdist"} or targets.get("wheel") != _WHEEL:
        raise ValueError("pyproject.toml: a wheel build other than the package alone")
    project.pop("version", None)
    return json.dumps({**data, "project": project}, sort_keys=True, default=str).encode()


def _without_version_strings(source: bytes) -> bytes:
    """``source`` with its version strings blanked when the module is nothing but a docstring and
    ``__version__`` / ``__cli_version__`` = a version; any other module unchanged."""
    if len(source) > _VERSION_MODULE_MAX:
        return source
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return source
    body = tree.body[1:] if tree.body and isinstance(tree.body[0], ast.Expr) and isinstance(getattr(tree.body[0], "value", None), ast.Constant) else tree.body
    if not body:
        return source
    for node in body:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
                and node.targets[0].id in _VERSION_NAMES and isinstance(node.value, ast.Constant)
                and isinstance(node.value.value, str) and _VERSION_VALUE.fullmatch(node.value.value)):
            return source
        node.value.value = ""
    return ast.dump(tree).encode()


def fingerprints(versions: list[str], progress: Callable[[str], None] | None = None) -> dict[str, str]:
    """Release -> source fingerprint, for every release in ``versions`` whose sdist vouches for one.

    From the cache where the release list (:func:`pytest_agentsdk.envs.release_sdists`, itself
    cached) gives the same sdist (by sha256), else fetched; with no list at all (offline), the
    fingerprint cached for a release is used (an index cannot replace a release's sdist). A
    release with none is left out, with one note to ``progress``: it is judged in its own env."""
    path = cache.root() / f"sources-{FINGERPRINT_RULE}.json"  # one file per rule: harnesses sharing the cache keep theirs
    cached = _read_cache(path)
    try:
        links = envs.release_sdists(progress=progress)
    except envs.EnvError as exc:
        by_version = {key.split(" ")[0]: value for key, value in cached.items()}
        found = {v: by_version[v] for v in versions if v in by_version}
        if progress and len(found) < len(versions):
            progress(f"cannot compare release sources ({exc}): {len(versions) - len(found)} release(s) judged in their own envs")
        return found
    keys = {v: f"{v} {links[v][1] or links[v][0]}" for v in versions if v in links}
    missing = [v for v in keys if keys[v] not in cached]
    if missing and progress:
        progress(f"comparing the sources of {len(missing)} release(s) (their sdists)")
    with ThreadPoolExecutor(max_workers=max(1, min(FETCHES_AT_ONCE, len(missing)))) as pool:
        fetches = {v: pool.submit(_fetched, *links[v]) for v in missing}
        interrupt.wait(fetches.values())
        fetched = {v: f.result() for v, f in fetches.items()}
    _write_cache(path, {keys[v]: value for v, value in fetched.items() if value is not None})
    found = {v: value for v, key in keys.items() if (value := cached.get(key) or fetched.get(v))}
    if (without := [v for v in versions if v not in found]) and progress:
        progress(f"no source fingerprint for {', '.join(sorted(without, key=Version))} (see pytest_agentsdk.sources): judged in their own envs")
    return {v: found[v] for v in versions if v in found}


def _fetched(href: str, sha: str | None) -> str | None:
    try:
        return fingerprint(envs.download_sdist(href, sha))
    except (OSError, ValueError, tarfile.TarError, EOFError):
        return None


def _read_cache(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or not isinstance(data.get("sources"), dict):
        return {}
    return {k: v for k, v in data["sources"].items() if isinstance(v, str) and _FINGERPRINT.fullmatch(v)}


def _write_cache(path: Path, new: dict[str, str]) -> None:
    """Add ``new`` to the cache file (best effort: a cache that cannot be written is skipped)."""
    if new:
        try:
            cache.atomic_write(path, json.dumps({"sources": {**_read_cache(path), **new}}))
        except OSError:
            pass
