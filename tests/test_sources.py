"""Source fingerprints: which releases ``matrix`` may judge once (:mod:`pytest_agentsdk.sources`).

The sdists here are made in the test, in the layout of every release (``src/claude_agent_sdk``, a
hatchling ``pyproject.toml``), and served by a real HTTP server as a simple index.
"""

from __future__ import annotations

import hashlib
import http.server
import io
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_agentsdk import sources

PYPROJECT = """[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "claude-agent-sdk"
version = "{version}"
dependencies = [{deps}]

[tool.hatch.build.targets.wheel]
packages = ["src/claude_agent_sdk"]
only-include = ["src/claude_agent_sdk"]
"""
CLIENT = "async def query(prompt):\n    return prompt\n"


def sdist(version: str, *, cli: str = "2.1.0", deps: str = '"anyio>=4.0.0"', client: str = CLIENT,
          version_module: str | None = None, extra_pyproject: str = "", extra: dict[str, str] | None = None) -> bytes:
    """An sdist of ``version`` shaped like a release's (the ``.tar.gz`` bytes)."""
    top = f"claude_agent_sdk-{version}"
    files = {
        "pyproject.toml": PYPROJECT.format(version=version, deps=deps) + extra_pyproject,
        "README.md": f"# claude-agent-sdk {version}\n",  # not in the wheel: never compared
        "src/claude_agent_sdk/__init__.py": "from ._version import __version__\nfrom .client import query\n",
        "src/claude_agent_sdk/_version.py": version_module or f'"""Version information."""\n\n__version__ = "{version}"\n',
        "src/claude_agent_sdk/_cli_version.py": f'"""Bundled CLI version."""\n\n__cli_version__ = "{cli}"\n',
        "src/claude_agent_sdk/client.py": client,
        "src/claude_agent_sdk/py.typed": "",
        **(extra or {}),
    }
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as archive:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"{top}/{name}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return out.getvalue()


def test_releases_differing_only_in_version_strings_share_a_fingerprint() -> None:
    assert sources.fingerprint(sdist("0.2.140", cli="2.1.235")) == sources.fingerprint(sdist("0.2.141", cli="2.1.236"))


@pytest.mark.parametrize("change", [
    {"client": CLIENT.replace("return prompt", "return prompt or None")},  # a byte of code
    {"deps": '"anyio>=4.0.0", "mcp>=1.23.0"'},  # a dependency: another env
    {"extra": {"src/claude_agent_sdk/_bundled/.gitignore": "*\n"}},  # a file the wheel gains
])
def test_anything_but_a_version_string_makes_another_fingerprint(change: dict[str, object]) -> None:
    assert sources.fingerprint(sdist("0.2.140")) != sources.fingerprint(sdist("0.2.141", **change))  # type: ignore[arg-type]


@pytest.mark.parametrize("module", [
    '__version__ = "0.2." + "{n}"\n',  # a version it computes
    '__version__ = "0.2.{n}"\nBETA = __version__ < "1"\n',  # a module that uses its version
])
def test_a_version_module_that_is_more_than_strings_is_compared_as_code(module: str) -> None:
    assert (sources.fingerprint(sdist("0.2.140", version_module=module.format(n=140)))
            != sources.fingerprint(sdist("0.2.141", version_module=module.format(n=141))))


def test_a_version_module_is_compared_by_its_shape() -> None:
    plain = sdist("0.2.140", version_module='__version__ = "0.2.140"\n')
    assert sources.fingerprint(plain) == sources.fingerprint(sdist("0.2.141", version_module='__version__ = "0.2.141"\n'))
    assert sources.fingerprint(plain) != sources.fingerprint(sdist("0.2.141", version_module='__release__ = "0.2.141"\n'))


@pytest.mark.parametrize("pyproject, why", [
    ('\n[tool.hatch.build.targets.wheel.force-include]\n"cli/claude" = "claude_agent_sdk/_bundled/claude"\n', "outside the package"),
    ('\n[tool.hatch.build.targets.wheel.hooks.custom]\npath = "hatch_build.py"\n', "outside the package"),
])
def test_a_wheel_built_from_more_than_the_package_gets_no_fingerprint(pyproject: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        sources.fingerprint(sdist("0.2.140", extra_pyproject=pyproject))


def test_an_sdist_without_the_package_gets_no_fingerprint() -> None:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as archive:
        archive.addfile(tarfile.TarInfo("claude_agent_sdk-0.2.140/pyproject.toml"), io.BytesIO(b""))
    with pytest.raises(ValueError, match="no claude_agent_sdk/__init__.py"):
        sources.fingerprint(out.getvalue())


# ---------------------------------------------------------------- from an index
@pytest.fixture
def index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A simple index served over HTTP from ``tmp_path/index``; the env cache in ``tmp_path/cache``."""
    root = tmp_path / "index"
    (root / "claude-agent-sdk").mkdir(parents=True)
    handler = lambda *a, **k: http.server.SimpleHTTPRequestHandler(*a, directory=str(root), **k)  # noqa: E731
    monkeypatch.setattr(http.server.SimpleHTTPRequestHandler, "log_message", lambda *a: None)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("PYTEST_AGENTSDK_INDEX_URL", f"http://127.0.0.1:{server.server_port}")
    monkeypatch.setenv("PYTEST_AGENTSDK_CACHE", str(tmp_path / "cache"))
    try:
        yield root
    finally:
        server.shutdown()
        server.server_close()


def publish(root: Path, sdists: dict[str, bytes], *, sha_of: dict[str, bytes] | None = None) -> None:
    """Write the sdists and the index page listing them (with the sha256 of ``sha_of``'s bytes where given)."""
    links = []
    for version, data in sdists.items():
        name = f"claude_agent_sdk-{version}.tar.gz"
        (root / "claude-agent-sdk" / name).write_bytes(data)
        sha = hashlib.sha256((sha_of or {}).get(version, data)).hexdigest()
        links.append(f'<a href="{name}#sha256={sha}">{name}</a>')
    (root / "claude-agent-sdk" / "index.html").write_text("<html><body>\n" + "\n".join(links) + "\n</body></html>\n")


def test_fingerprints_come_from_the_index_then_from_the_cache(index: Path) -> None:
    made = {v: sdist(v, cli=f"2.1.{n}") for n, v in enumerate(("0.2.139", "0.2.140", "0.2.141"))}
    made["0.2.139"] = sdist("0.2.139", client="async def query(prompt):\n    raise RuntimeError\n")
    publish(index, made)
    notes: list[str] = []
    first = sources.fingerprints(["0.2.139", "0.2.140", "0.2.141", "0.2.999"], notes.append)
    assert sorted(first) == ["0.2.139", "0.2.140", "0.2.141"]  # 0.2.999 is not on the index: no fingerprint
    assert first["0.2.140"] == first["0.2.141"] != first["0.2.139"]
    assert notes == ["comparing the sources of 3 release(s) (their sdists)"]
    for version in made:  # gone from the index's files: the cache answers
        (index / "claude-agent-sdk" / f"claude_agent_sdk-{version}.tar.gz").unlink()
    notes.clear()
    assert sources.fingerprints(["0.2.141", "0.2.140"], notes.append) == {"0.2.141": first["0.2.141"], "0.2.140": first["0.2.140"]}
    assert notes == []


def test_an_sdist_that_does_not_match_the_index_gets_no_fingerprint(index: Path) -> None:
    publish(index, {"0.2.140": sdist("0.2.140"), "0.2.141": sdist("0.2.141")}, sha_of={"0.2.141": b"another file"})
    notes: list[str] = []
    assert list(sources.fingerprints(["0.2.140", "0.2.141"], notes.append)) == ["0.2.140"]
    assert notes[-1] == "could not compare the sources of 0.2.141: judged in their own envs"
    publish(index, {"0.2.141": sdist("0.2.141")})  # mended: fetched again, not cached as missing
    assert list(sources.fingerprints(["0.2.141"])) == ["0.2.141"]


def test_an_unreachable_index_fingerprints_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTEST_AGENTSDK_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("PYTEST_AGENTSDK_CACHE", str(tmp_path))
    notes: list[str] = []
    assert sources.fingerprints(["0.2.140", "0.2.141"], notes.append) == {}
    assert len(notes) == 1 and notes[0].startswith("cannot list the sdists to compare release sources (")
    assert notes[0].endswith("): every release is judged in its own env")
