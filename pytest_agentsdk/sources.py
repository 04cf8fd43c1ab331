"""Which releases share their Python source, so ``matrix`` judges each distinct source once.

Most releases only bump the bundled CLI: their sdists differ in nothing but version strings. With
the scripted CLI such releases run the same code on the same dependencies, so judging them again
gives the same rows (``matrix --all --seed 0``: 147 releases, 48 distinct sources).

A release's *source fingerprint* hashes its sdist byte for byte: every file of the package, and
``pyproject.toml`` (the dependencies it resolves and how the wheel is built), except for the
version strings themselves. A version string is left out only where it is all there is: in a module
made of nothing but string assignments to dunder names (``__version__ = "0.2.141"``) and in
pyproject's ``version = "..."`` line. Anything else that differs (a byte of code, a dependency, a
module that computes its version) makes another fingerprint. The SDK reads its version strings only
to tell the real CLI which SDK runs it, so ``matrix --cli`` judges every release.

Fingerprints are cached by (version, sdist sha256) in ``sources.json`` under the env cache; a
release whose sdist cannot be fetched gets none, and is judged in its own env.
"""

from __future__ import annotations

import ast
import hashlib
import io
import json
import re
import tarfile
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path, PurePosixPath

from packaging.version import Version

from . import envs

FETCHES_AT_ONCE = 8  # sdists are ~90 KB: the wait is the index's latency, not the bandwidth
_VERSION_LINE = re.compile(rb'(?m)^version\s*=\s*"[^"\n]*"[ \t]*$')
#: pyproject settings that put files from outside the package into the wheel, or make some at build time
_BUILDS_MORE = (b"force-include", b".hooks")
_CACHE_LOCK = threading.Lock()
_IMPORT_NAME = envs.PACKAGE.replace("-", "_")
_VERSION_MODULE_MAX = 1024  # bytes: a version module is a few lines; parsing every module costs 0.1 s a release


def fingerprint(sdist: bytes) -> str:
    """The source fingerprint of an sdist (a ``.tar.gz``); ValueError when it holds no package."""
    files: dict[PurePosixPath, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(sdist), mode="r|gz") as archive:  # one pass: no gzip seeks
        for member in archive:
            path = PurePosixPath(member.name)
            if member.isfile() and (_IMPORT_NAME in path.parts or path.parts[1:] == ("pyproject.toml",)):
                files[path] = archive.extractfile(member).read()  # type: ignore[union-attr]
    inits = [p.parent for p in files if p.name == "__init__.py" and p.parent.name == _IMPORT_NAME]
    if not inits:
        raise ValueError(f"no {_IMPORT_NAME}/__init__.py in the sdist")
    package = min(inits, key=lambda p: len(p.parts))  # src/ layout or not
    h = hashlib.sha256()
    for path in sorted(files):
        data = files[path]
        if path.name == "pyproject.toml" and len(path.parts) == 2:
            if any(setting in data for setting in _BUILDS_MORE):
                raise ValueError("its wheel takes files from outside the package")
            name, data = "pyproject.toml", _VERSION_LINE.sub(b'version = ""', data)
        elif package in path.parents and "__pycache__" not in path.parts:
            name = str(path.relative_to(package.parent))
            data = _without_version_strings(data) if path.suffix == ".py" else data
        else:
            continue
        h.update(f"{name}\0{len(data)}\0".encode())
        h.update(data)
    return h.hexdigest()


def _without_version_strings(source: bytes) -> bytes:
    """``source`` with its string values blanked when the module is nothing but a docstring and
    ``__name__ = "string"`` assignments (a version module); any other module unchanged."""
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
                and re.fullmatch(r"__\w+__", node.targets[0].id) and isinstance(node.value, ast.Constant)
                and isinstance(node.value.value, str)):
            return source
        node.value.value = ""
    return ast.dump(tree).encode()


def fingerprints(versions: list[str], progress: Callable[[str], None] | None = None) -> dict[str, str]:
    """Release -> source fingerprint, for every release in ``versions`` whose sdist the index
    gives (cached); the others are left out, with one note to ``progress``."""
    path = envs.cache_dir() / "sources.json"
    cached = _read_cache(path)
    try:
        links = envs.sdist_links(envs.index_url())
    except (OSError, ValueError) as exc:
        links = {}
        if progress:
            progress(f"cannot list the sdists to compare release sources ({envs.short_error(exc)}): every release is judged in its own env")
    keys = {v: f"{v} {links[v][1] or links[v][0]}" for v in versions if v in links}
    found = {v: cached[key] for v, key in keys.items() if key in cached}
    missing = [v for v in keys if v not in found]
    failed: list[str] = []

    def fetch(version: str) -> None:
        try:
            found[version] = fingerprint(envs.download_sdist(*links[version]))
        except (OSError, ValueError, tarfile.TarError):
            failed.append(version)

    if missing:
        if progress:
            progress(f"comparing the sources of {len(missing)} release(s) (their sdists)")
        with ThreadPoolExecutor(max_workers=min(FETCHES_AT_ONCE, len(missing))) as pool:
            list(pool.map(fetch, missing))
        _write_cache(path, {keys[v]: found[v] for v in missing if v in found})
    if failed and progress:
        progress(f"could not compare the sources of {', '.join(sorted(failed, key=Version))}: judged in their own envs")
    return {v: found[v] for v in versions if v in found}


def _read_cache(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("layout") != envs.CACHE_LAYOUT or not isinstance(data.get("sources"), dict):
        return {}
    return {str(k): str(v) for k, v in data["sources"].items()}


def _write_cache(path: Path, new: dict[str, str]) -> None:
    """Add ``new`` to the cache file (best effort: a cache that cannot be written is skipped)."""
    if not new:
        return
    with _CACHE_LOCK:
        try:
            envs.atomic_write(path, json.dumps({"layout": envs.CACHE_LAYOUT, "sources": {**_read_cache(path), **new}}))
        except OSError:
            pass
