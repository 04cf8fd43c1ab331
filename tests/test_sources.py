"""Source fingerprints: which releases ``matrix`` may judge once (:mod:`pytest_agentsdk.sources`).

The sdists here are made in the test, in the layout of every release (``src/claude_agent_sdk``, a
hatchling ``pyproject.toml``), and served by a real HTTP server as a simple index.
"""

from __future__ import annotations

import argparse
import hashlib
import http.server
import io
import json
import tarfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_agentsdk import envs, machine, sources, verdict

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
          version_module: str | None = None, extra_pyproject: str = "", extra: dict[str, str] | None = None,
          pyproject: str | None = None) -> bytes:
    """An sdist of ``version`` shaped like a release's (the ``.tar.gz`` bytes)."""
    top = f"claude_agent_sdk-{version}"
    files = {
        "pyproject.toml": pyproject or PYPROJECT.format(version=version, deps=deps) + extra_pyproject,
        "README.md": f"# claude-agent-sdk {version}\n",  # not in the wheel: never compared
        "src/claude_agent_sdk/__init__.py": "from ._version import __version__\nfrom .client import query\n",
        "src/claude_agent_sdk/_version.py": version_module or f'"""Version information."""\n\n__version__ = "{version}"\n',
        "src/claude_agent_sdk/_cli_version.py": f'"""Bundled CLI version."""\n\n__cli_version__ = "{cli}"\n',
        "src/claude_agent_sdk/client.py": client,
        "src/claude_agent_sdk/py.typed": "",
        **(extra or {}),
    }
    return tar({f"{top}/{name}": text.encode() for name, text in files.items()})


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


@pytest.mark.parametrize("pyproject", [
    '\n[tool.hatch.build.targets.wheel.force-include]\n"cli/claude" = "claude_agent_sdk/_bundled/claude"\n',
    '\n[tool.hatch.build.targets.wheel.hooks.custom]\npath = "hatch_build.py"\n',
    '\n[tool.hatch.build.hooks.custom]\npath = "hatch_build.py"\n',
    '\n[tool.hatch.build.targets.wheel.shared-data]\n"data" = "share/data"\n',
])
def test_a_wheel_built_from_more_than_the_package_gets_no_fingerprint(pyproject: str) -> None:
    with pytest.raises(ValueError, match="a wheel build other than the package alone"):
        sources.fingerprint(sdist("0.2.140", extra_pyproject=pyproject))


@pytest.mark.parametrize("extra, why", [
    ({"hatch.toml": "[build.targets.wheel]\n"}, "hatch.toml: a build this fingerprint cannot vouch for"),
    ({"setup.py": "import setuptools\n"}, "setup.py: a build this fingerprint cannot vouch for"),
    ({".hgignore": "client.py\n"}, ".hgignore: a build this fingerprint cannot vouch for"),
])
def test_another_build_file_gets_no_fingerprint(extra: dict[str, str], why: str) -> None:
    with pytest.raises(ValueError, match=why):
        sources.fingerprint(sdist("0.2.140", extra=extra))


@pytest.mark.parametrize("pyproject", [
    PYPROJECT.format(version="0.2.140", deps="").replace('version = "0.2.140"', 'dynamic = ["version"]'),
    PYPROJECT.format(version="0.2.140", deps="").replace('dependencies = []', 'dynamic = ["dependencies"]')
    + '\n[tool.hatch.metadata.hooks.custom]\npath = "deps_hook.py"\n',
    PYPROJECT.format(version="0.2.140", deps="") + '\n[tool.hatch.metadata]\nallow-direct-references = true\n',
    PYPROJECT.format(version="0.2.140", deps="").replace("hatchling.build", "setuptools.build_meta"),
])
def test_dynamic_or_hooked_metadata_gets_no_fingerprint(pyproject: str) -> None:
    with pytest.raises(ValueError, match="not a hatchling build of static metadata"):
        sources.fingerprint(sdist("0.2.140", pyproject=pyproject))


def test_the_dependencies_an_installer_reads_are_compared() -> None:
    # uv reads a modern sdist's dependencies from PKG-INFO without building it
    info = "Metadata-Version: 2.4\nName: claude-agent-sdk\nVersion: {v}\nRequires-Python: >=3.10\nRequires-Dist: {dep}\n"
    plain = sources.fingerprint(sdist("0.2.140", extra={"PKG-INFO": info.format(v="0.2.140", dep="anyio>=4.0.0")}))
    assert plain == sources.fingerprint(sdist("0.2.141", extra={"PKG-INFO": info.format(v="0.2.141", dep="anyio>=4.0.0")}))
    assert plain != sources.fingerprint(sdist("0.2.141", extra={"PKG-INFO": info.format(v="0.2.141", dep="anyio>=4.5.0")}))


def test_the_root_gitignore_is_compared() -> None:
    # hatchling's wheel leaves out what the sdist's root .gitignore names
    assert (sources.fingerprint(sdist("0.2.140", extra={".gitignore": "*.log\n"}))
            != sources.fingerprint(sdist("0.2.141", extra={".gitignore": "client.py\n"})))


def test_only_version_names_are_blanked() -> None:
    # a module of dunder strings that are no version (``__all__``) is compared as it is
    assert (sources.fingerprint(sdist("0.2.140", extra={"src/claude_agent_sdk/names.py": '__all__ = "query"\n'}))
            != sources.fingerprint(sdist("0.2.141", extra={"src/claude_agent_sdk/names.py": '__all__ = "client"\n'})))


def tar(files: dict[str, bytes], links: dict[str, str] | None = None) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            archive.addfile(info)
    return out.getvalue()


@pytest.mark.parametrize("files, links, why", [
    ({"claude_agent_sdk-0.2.140/pyproject.toml": b""}, {}, "no pyproject.toml or src/claude_agent_sdk/__init__.py"),
    ({"claude_agent_sdk-0.2.140/src/claude_agent_sdk/__init__.py": b""}, {}, "no pyproject.toml or src/claude_agent_sdk/__init__.py"),
    ({"pyproject.toml": b"", "src/claude_agent_sdk/__init__.py": b""}, {}, "not one top directory"),
    ({"claude_agent_sdk-0.2.140/pyproject.toml": b""}, {"claude_agent_sdk-0.2.140/src/claude_agent_sdk/extra.py": "/etc/passwd"},
     "a link or special file"),
])
def test_an_sdist_of_another_shape_gets_no_fingerprint(files: dict[str, bytes], links: dict[str, str], why: str) -> None:
    with pytest.raises(ValueError, match=why):
        sources.fingerprint(tar(files, links))


# ---------------------------------------------------------------- from an index
class _Index(http.server.SimpleHTTPRequestHandler):
    """A static simple index; a file named in ``cut`` is cut mid-body, as a dropped connection cuts it."""

    cut: set[str] = set()

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        if self.path.rsplit("/", 1)[-1] not in self.cut:
            return super().do_GET()
        self.send_response(200)
        self.send_header("Content-Length", "100000")
        self.end_headers()
        self.wfile.write(b"\x1f\x8b")
        self.close_connection = True
        return None


@pytest.fixture
def index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A simple index served over HTTP from ``tmp_path/index``; the env cache in ``tmp_path/cache``."""
    root = tmp_path / "index"
    (root / "claude-agent-sdk").mkdir(parents=True)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), lambda *a: _Index(*a, directory=str(root)))  # type: ignore[misc]
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


def test_fingerprints_come_from_the_index_then_from_the_cache(index: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    made = {v: sdist(v, cli=f"2.1.{n}") for n, v in enumerate(("0.2.139", "0.2.140", "0.2.141"))}
    made["0.2.139"] = sdist("0.2.139", client="async def query(prompt):\n    raise RuntimeError\n")
    publish(index, made)
    notes: list[str] = []
    first = sources.fingerprints(["0.2.139", "0.2.140", "0.2.141", "0.2.999"], notes.append)
    assert sorted(first) == ["0.2.139", "0.2.140", "0.2.141"]  # 0.2.999 is not on the index: no fingerprint
    assert first["0.2.140"] == first["0.2.141"] != first["0.2.139"]
    assert notes == ["comparing the sources of 3 release(s) (their sdists)",
                     "no source fingerprint for 0.2.999 (see pytest_agentsdk.sources): judged in their own envs"]
    for version in made:  # gone from the index's files: the cache answers
        (index / "claude-agent-sdk" / f"claude_agent_sdk-{version}.tar.gz").unlink()
    notes.clear()
    assert sources.fingerprints(["0.2.141", "0.2.140"], notes.append) == {"0.2.141": first["0.2.141"], "0.2.140": first["0.2.140"]}
    assert notes == []
    # offline: a release's cached fingerprint still counts (an index cannot replace a release's sdist)
    monkeypatch.setenv("PYTEST_AGENTSDK_INDEX_URL", "http://127.0.0.1:9/simple")
    assert sources.fingerprints(["0.2.140", "0.2.141", "0.2.142"], notes.append) == {"0.2.140": first["0.2.140"], "0.2.141": first["0.2.141"]}
    assert len(notes) == 1 and notes[0].endswith("): 1 release(s) judged in their own envs")


def test_an_sdist_that_cannot_be_fetched_or_trusted_gets_no_fingerprint(index: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    publish(index, {"0.2.140": sdist("0.2.140"), "0.2.141": sdist("0.2.141"), "0.2.142": sdist("0.2.142")},
            sha_of={"0.2.141": b"another file"})
    monkeypatch.setattr(_Index, "cut", {"claude_agent_sdk-0.2.142.tar.gz"})
    notes: list[str] = []
    assert list(sources.fingerprints(["0.2.140", "0.2.141", "0.2.142"], notes.append)) == ["0.2.140"]
    assert notes[-1] == "no source fingerprint for 0.2.141, 0.2.142 (see pytest_agentsdk.sources): judged in their own envs"
    monkeypatch.setattr(_Index, "cut", set())  # the connection holds now: fetched again, not cached as missing
    assert list(sources.fingerprints(["0.2.142"])) == ["0.2.142"]


def test_an_unreachable_index_with_no_cache_fingerprints_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTEST_AGENTSDK_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("PYTEST_AGENTSDK_CACHE", str(tmp_path))
    notes: list[str] = []
    assert sources.fingerprints(["0.2.140", "0.2.141"], notes.append) == {}
    assert notes == ["cannot compare release sources (cannot list claude-agent-sdk releases: package index http://127.0.0.1:9/simple "
                     "unreachable ([Errno 111] Connection refused)): 2 release(s) judged in their own envs"]


def test_a_cache_entry_of_another_shape_is_fetched_again(index: Path) -> None:
    publish(index, {"0.2.140": sdist("0.2.140"), "0.2.141": sdist("0.2.141")})
    first = sources.fingerprints(["0.2.140", "0.2.141"])
    cache = index.parent / "cache" / f"sources-{sources.FINGERPRINT_RULE}.json"
    data = json.loads(cache.read_text())
    data["sources"] = {key: 5 if key.startswith("0.2.141 ") else "not a fingerprint" for key in data["sources"]}
    cache.write_text(json.dumps(data))
    notes: list[str] = []
    assert sources.fingerprints(["0.2.140", "0.2.141"], notes.append) == first
    assert notes == ["comparing the sources of 2 release(s) (their sdists)"]


# ---------------------------------------------------------------- matrix judging each source once
class _Judge:
    """Stands in for judge_all (which builds envs): records what it was asked to judge, and gives
    each release one row, ``error`` for the releases in ``erring``."""

    def __init__(self, erring: tuple[str, ...] = ()) -> None:
        self.asked: list[list[str]] = []
        self.erring = erring

    def __call__(self, specs: list[envs.Spec], *rest: object) -> list[verdict.CheckReport]:
        self.asked.append([s.text for s in specs])
        return [verdict.CheckReport(verdict.subject_info(RELEASE_OF.get(s.text), None, spec=s.text, env=f"/envs/{s.text}"), 0, [
            verdict.Result("cross_task_close", "error" if s.text in self.erring else "reproduced", "asyncio", None,
                           manifestations=[] if s.text in self.erring else [f"shown by {s.text}"])]) for s in specs]


RELEASE_OF = {"0.2.139": "0.2.139", "0.2.140": "0.2.140", "0.2.141": "0.2.141", "latest": "0.2.190"}
PRINTS = {"0.2.139": "a" * 64, "0.2.140": "b" * 64, "0.2.141": "b" * 64, "0.2.190": "b" * 64}


@pytest.fixture
def judged(monkeypatch: pytest.MonkeyPatch) -> Callable[..., tuple[list[verdict.CheckReport], _Judge]]:
    asked_prints: list[list[str]] = []

    def fingerprints(versions: list[str], progress: object = None) -> dict[str, str]:
        asked_prints.append(versions)
        return {v: PRINTS[v] for v in versions}

    monkeypatch.setattr(envs, "release_version", lambda spec, progress=None: RELEASE_OF[spec.text])
    monkeypatch.setattr(sources, "fingerprints", fingerprints)

    def run(texts: list[str], *, erring: tuple[str, ...] = (), judge_each: bool = False) -> tuple[list[verdict.CheckReport], _Judge]:
        judge = _Judge(erring)
        monkeypatch.setattr(machine, "judge_all", judge)
        args, progress = argparse.Namespace(judge_each=judge_each), machine._Progress(quiet=True)
        specs = [envs.parse_spec(t) for t in texts]
        return machine._judge_distinct(specs, machine._compared_sources(specs, args, progress, None), args, 0, progress, None), judge

    run.asked_prints = asked_prints  # type: ignore[attr-defined]
    return run


def test_a_release_of_an_earlier_ones_source_takes_its_rows(judged: Any) -> None:
    reports, judge = judged(["0.2.139", "0.2.140", "0.2.141", "latest"])
    assert judge.asked == [["0.2.139", "latest"]]  # each source on its newest release: latest is 0.2.190
    assert [(r.subject["spec"], r.subject["sdk_version"], r.subject.get("judged_as")) for r in reports] == [
        ("0.2.139", "0.2.139", None), ("0.2.140", "0.2.140", "0.2.190"), ("0.2.141", "0.2.141", "0.2.190"), ("latest", "0.2.190", None)]
    assert reports[1].results == reports[3].results and reports[1].subject["env"] == "/envs/latest"
    assert [r.subject["source"] for r in reports] == ["a" * 16] + ["b" * 16] * 3
    reports[1].results[0].manifestations.append("changed")  # a copy, not a shared row
    assert reports[3].results[0].manifestations == ["shown by latest"]


def test_releases_whose_source_erred_are_judged_in_their_own_envs(judged: Any) -> None:
    reports, judge = judged(["0.2.140", "0.2.141", "latest"], erring=("latest",))
    assert judge.asked == [["latest"], ["0.2.140", "0.2.141"]]
    assert [r.results[0].verdict for r in reports] == ["reproduced", "reproduced", "error"]
    assert not any("judged_as" in r.subject for r in reports)


def test_judge_each_one_release_or_a_source_tree_compare_no_sources(judged: Any, tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "claude-agent-sdk"\n')  # a source-tree subject, never built here
    for texts, judge_each in ((["0.2.140", "0.2.141"], True), (["0.2.140", str(tmp_path)], False)):
        reports, judge = judged(texts, judge_each=judge_each)
        assert judge.asked == [texts] and not any("judged_as" in r.subject for r in reports)
    assert judged.asked_prints == []


def test_the_table_says_how_many_releases_took_another_ones_rows(judged: Any) -> None:
    reports, _ = judged(["0.2.139", "0.2.140", "0.2.141", "latest"])
    footer = verdict.render_matrix(reports).splitlines()[5]
    assert footer.endswith("; 4 releases from 2 Python sources: 2 took the rows of the newest release of their source, "
                           "not judged again (judged_as in --json)")
    alone, _ = judged(["0.2.139", "0.2.140"])
    assert "Python sources" not in verdict.render_matrix(alone)
