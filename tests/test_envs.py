"""The verdict machine end to end: real uv, real PyPI sdists, real releases judged in isolated envs.

Envs land in the shared cache (``$PYTEST_AGENTSDK_CACHE``), so a second run reuses them; tests that
must see an empty cache get their own directory.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pytest_agentsdk import envs

pytestmark = pytest.mark.machine
REPO = Path(__file__).resolve().parents[1]

#: 0.1.51's fix for cross-task close ported onto 0.1.50 (a fix candidate of our own): the reader runs
#: as a plain asyncio task that close() cancels from whatever task it runs in, instead of an anyio
#: task group whose cancel scope close() must exit in the task that entered it; close() also closes
#: the message streams, so nothing is left for the garbage collector to warn about.
PORT_0151_CLOSE = [
    ("_internal/query.py", "import json\n", "import asyncio\nimport json\n"),
    ("_internal/query.py", "        self._tg: anyio.abc.TaskGroup | None = None\n",
     "        self._read_task: asyncio.Task[None] | None = None\n        self._child_tasks: set[asyncio.Task[Any]] = set()\n"),
    ("_internal/query.py",
     "        if self._tg is None:\n            self._tg = anyio.create_task_group()\n            await self._tg.__aenter__()\n"
     "            self._tg.start_soon(self._read_messages)\n",
     "        if self._read_task is None:\n            self._read_task = asyncio.get_running_loop().create_task(self._read_messages())\n\n"
     "    def spawn_task(self, coro: Any) -> None:\n        task = asyncio.get_running_loop().create_task(coro)\n"
     "        self._child_tasks.add(task)\n        task.add_done_callback(self._child_tasks.discard)\n"),
    ("_internal/query.py",
     "                    if self._tg:\n                        self._tg.start_soon(self._handle_control_request, request)\n",
     "                    if not self._closed:\n                        self.spawn_task(self._handle_control_request(request))\n"),
    ("_internal/query.py",
     "        if self._tg:\n            self._tg.cancel_scope.cancel()\n            # Wait for task group to complete cancellation\n"
     "            with suppress(anyio.get_cancelled_exc_class()):\n                await self._tg.__aexit__(None, None, None)\n",
     "        for task in list(self._child_tasks):\n            task.cancel()\n"
     "        if self._read_task is not None and not self._read_task.done():\n            self._read_task.cancel()\n"
     "            with suppress(asyncio.CancelledError):\n                await self._read_task\n        self._read_task = None\n"
     "        self._message_send.close()\n        self._message_receive.close()\n"),
    ("client.py",
     "        if prompt is not None and isinstance(prompt, AsyncIterable) and self._query._tg:\n"
     "            self._query._tg.start_soon(self._query.stream_input, prompt)\n",
     "        if prompt is not None and isinstance(prompt, AsyncIterable):\n"
     "            self._query.spawn_task(self._query.stream_input(prompt))\n"),
    ("_internal/client.py",
     "            elif isinstance(prompt, AsyncIterable) and query._tg:\n                # Stream input in background for async iterables\n"
     "                query._tg.start_soon(query.stream_input, prompt)\n",
     "            elif isinstance(prompt, AsyncIterable):\n                query.spawn_task(query.stream_input(prompt))\n"),
]


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m pytest_agentsdk ARGS`` as a user runs it (real exit code, real stderr)."""
    return subprocess.run([sys.executable, "-m", "pytest_agentsdk", *args], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=900)


def one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pytest-agentsdk: error: "), proc.stderr
    return lines[0]


def cache_entries(root: Path) -> list[str]:
    return sorted(p.name for p in (root / "envs").iterdir()) if (root / "envs").is_dir() else []


@pytest.fixture(scope="module")
def release_0150_trees(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two copies of the 0.1.50 sdist's source tree: ``plain``, and ``patched`` with PORT_0151_CLOSE."""
    trees = {name: envs.sdist_source("0.1.50", tmp_path_factory.mktemp(name)) for name in ("plain", "patched")}
    pkg = trees["patched"] / "src" / "claude_agent_sdk"
    for rel, old, new in PORT_0151_CLOSE:
        text = (pkg / rel).read_text()
        assert text.count(old) == 1, f"0.1.50's {rel} changed shape: {old!r}"
        (pkg / rel).write_text(text.replace(old, new))
    return trees


# ---------------------------------------------------------------- bad input
def test_bad_subjects_are_one_line_exit_2(tmp_path: Path) -> None:
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "pyproject.toml").write_text('[project]\nname = "not-the-sdk"\n')
    wrong_wheel = tmp_path / "requests-2.0-py3-none-any.whl"
    wrong_wheel.write_bytes(b"")
    subprocess.run(["git", "init", "-q", str(tmp_path / "repo")], check=True)
    subprocess.run(["git", "-C", str(tmp_path / "repo"), "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q",
                    "--allow-empty", "-m", "x"], check=True)
    cases = {
        ("matrix", "--sdk", "0.1.999"): "unknown claude-agent-sdk release 0.1.999",
        ("matrix", "--sdk", "pypi:banana"): "is not a release version",
        ("matrix", "--sdk", str(tmp_path / "missing")): "no such file or directory",
        ("matrix", "--sdk", str(tmp_path / "other")): "not a claude-agent-sdk source tree",
        ("matrix", "--sdk", str(wrong_wheel)): "not a claude-agent-sdk wheel or sdist",
        ("matrix", "--sdk", f"git+file://{tmp_path / 'repo'}@no-such-ref"): "git ref 'no-such-ref' not found",
        ("matrix", "--bug", "no_such_bug"): "--bug no_such_bug: unknown bug",
        ("verify", "--candidate", "0.1.50", "--claims", "no_such_bug"): "--claims no_such_bug: unknown bug",
        ("bisect", "--bug", "cross_task_close", "--from", "0.1.999"): "--from pypi:0.1.999: unknown claude-agent-sdk release",
        ("matrix", "--from-json", str(tmp_path / "missing.json")): "no such file or directory",
    }
    for args, message in cases.items():
        assert message in one_line_error(cli(*args)), args


def test_uv_is_found_beside_the_interpreter_then_on_path_then_as_a_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert subprocess.run([*envs.uv_command(), "--version"], capture_output=True, text=True).stdout.startswith("uv ")
    venv_bin = tmp_path / "venv" / "bin"  # a venv that is not activated: its bin/ is not on PATH
    venv_bin.mkdir(parents=True)
    monkeypatch.setattr(sys, "executable", str(venv_bin / "python"))
    assert envs.uv_command() == [str(venv_bin / "python"), "-m", "uv"]  # the uv package is importable here
    (venv_bin / "uv").write_text("#!/bin/sh\n")
    (venv_bin / "uv").chmod(0o755)
    assert envs.uv_command() == [str(venv_bin / "uv")]
    (venv_bin / "uv").unlink()
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *rest: None if name == "uv" else find_spec(name, *rest))
    with pytest.raises(envs.EnvError, match=r"^uv not found \(not beside .*venv/bin/python, not on PATH, no uv package\): pip install uv"):
        envs.uv_command()


def test_no_registry_is_one_line_and_builds_nothing(tmp_path: Path) -> None:
    offline = {"PYTEST_AGENTSDK_CACHE": str(tmp_path), "PYTEST_AGENTSDK_INDEX_URL": "http://127.0.0.1:9/simple"}
    line = one_line_error(cli("matrix", "--sdk", "latest", env=offline))
    assert "package index http://127.0.0.1:9/simple unreachable" in line
    assert cache_entries(tmp_path) == []


def test_an_unreachable_index_names_itself_in_the_one_line_error(tmp_path: Path) -> None:
    # with no release list, a pinned release is trusted (uv may have it); uv then cannot fetch it
    offline = {"PYTEST_AGENTSDK_CACHE": str(tmp_path / "cache"), "UV_CACHE_DIR": str(tmp_path / "uv"),
               "PYTEST_AGENTSDK_INDEX_URL": "http://127.0.0.1:9/simple"}
    line = one_line_error(cli("matrix", "--sdk", "0.2.140", "--sdk", "0.2.141", "--seed", "0", "--quiet", env=offline))
    assert line.startswith("pytest-agentsdk: error: 0.2.140: build failed from http://127.0.0.1:9/simple: "), line
    assert cache_entries(tmp_path / "cache") == []


@pytest.mark.parametrize("listed", [
    {"sdists": {v: [f"http://127.0.0.1:9/claude_agent_sdk-{v}.tar.gz", None] for v in ("0.1.48", "0.1.44")}},
    {"versions": ["0.1.44", "0.1.48"]},  # written by a harness of before the sdists were cached
])
def test_offline_uses_the_cached_release_list(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, listed: dict[str, Any]) -> None:
    monkeypatch.setenv("PYTEST_AGENTSDK_CACHE", str(tmp_path))
    monkeypatch.setenv("PYTEST_AGENTSDK_INDEX_URL", "http://127.0.0.1:9/simple")
    stale = {"index": "http://127.0.0.1:9/simple", "layout": envs.CACHE_LAYOUT, "fetched": 0, **listed}
    (tmp_path / "releases.json").write_text(json.dumps(stale))
    notes: list[str] = []
    assert envs.releases(progress=notes.append) == ["0.1.44", "0.1.48"]
    assert notes and "using the release list cached" in notes[0]
    assert envs.release_version(envs.parse_spec("latest")) == "0.1.48"


def test_failed_build_leaves_nothing_in_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "pyproject.toml").write_text('[build-system]\nrequires = ["no-such-build-backend-xyz-agentsdk"]\n'
                                           'build-backend = "nope"\n[project]\nname = "claude-agent-sdk"\nversion = "0.1.50"\n')
    monkeypatch.setenv("PYTEST_AGENTSDK_CACHE", str(tmp_path / "cache"))
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    abandoned = tmp_path / "cache" / "envs" / f".build-0123abcd-{gone.stdout.strip()}-1"  # its builder was SIGKILLed
    in_progress = tmp_path / "cache" / "envs" / f".build-4567ef01-{os.getpid()}-1"  # a live builder's
    for half_built in (abandoned, in_progress):
        (half_built / "bin").mkdir(parents=True)
    with pytest.raises(envs.EnvError, match="build failed"):
        envs.ensure_env(str(broken))
    assert cache_entries(tmp_path / "cache") == [in_progress.name]  # a build sweeps abandoned ones away
    in_progress.rename(tmp_path / "elsewhere")
    # a subject that does not build is an error row (the other subjects are still judged), exit 2
    proc = cli("matrix", "--quiet", "--json", "--sdk", str(broken), env={"PYTEST_AGENTSDK_CACHE": str(tmp_path / "cache")})
    assert proc.returncode == 2, proc.stderr[-2000:]
    (report,) = json.loads(proc.stdout)
    assert {r["verdict"] for r in report["results"]} == {"error"}
    assert all("build failed" in r["reason"] and "\n" not in r["reason"] for r in report["results"])


def test_releases_older_than_supported_get_error_without_a_build(tmp_path: Path) -> None:
    proc = cli("matrix", "--sdk", "0.1.40", "--json", "--quiet", env={"PYTEST_AGENTSDK_CACHE": str(tmp_path)})
    assert proc.returncode == 2, proc.stderr
    (report,) = json.loads(proc.stdout)
    assert report["subject"]["sdk_version"] == "0.1.40"
    assert report["results"] and {r["verdict"] for r in report["results"]} == {"error"}
    assert all("older than the supported range" in r["reason"] for r in report["results"])
    assert cache_entries(tmp_path) == []


# ---------------------------------------------------------------- envs
def test_env_is_built_from_the_sdist_then_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTEST_AGENTSDK_CACHE", str(tmp_path))
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")  # the caller's choice; the env still keeps its bytecode
    first = envs.ensure_env("pypi:0.1.48")
    assert list(first.path.glob("lib/python*/site-packages/claude_agent_sdk/__pycache__/*.pyc"))  # compiled once, by the build's probe
    again = envs.ensure_env("0.1.48")
    assert (first.reused, again.reused) == (False, True)
    assert again.path == first.path and cache_entries(tmp_path) == [first.path.name]
    probe = first.run(["-c", "import sys, claude_agent_sdk as s, pathlib, pytest_agentsdk as h; "
                             "print(s.__version__, (pathlib.Path(s.__file__).parent / '_bundled' / 'claude').exists(), sys.prefix, h.__file__)"])
    version, bundled, prefix, harness = probe.stdout.split()
    assert (version, bundled) == ("0.1.48", "False")  # sdist: no bundled CLI
    assert Path(prefix) == first.path != Path(sys.prefix)  # never the caller's env
    assert Path(harness).resolve() == (REPO / "pytest_agentsdk" / "__init__.py").resolve()  # this very harness


def test_envs_share_the_bytecode_of_the_files_they_share(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTEST_AGENTSDK_CACHE", str(tmp_path))
    first, second = envs.ensure_env("0.1.48"), envs.ensure_env("0.1.50")

    def compiled(env: envs.Env, package: str) -> Path:
        return next(env.path.glob(f"lib/python*/site-packages/{package}/__pycache__/__init__.*.pyc"))

    assert compiled(first, "mcp").samefile(compiled(second, "mcp"))  # one mcp, compiled once: by the first build's probe
    assert not compiled(first, "claude_agent_sdk").samefile(compiled(second, "claude_agent_sdk"))  # each release compiles its own


def test_sdk_release_fixture_judges_the_release(sdk_release: Any) -> None:
    env = sdk_release("0.1.48")
    assert sdk_release("0.1.48") is env and env.sdk_version == "0.1.48"
    report = env.run_check(["--bug", "cross_task_close", "--backend", "asyncio", "--seed", "0", "--examples", "3"])
    assert report["subject"]["sdk_version"] == "0.1.48" and report["seed"] == 0
    assert [(r["bug"], r["backend"], r["verdict"]) for r in report["results"]] == [("cross_task_close", "asyncio", "reproduced")]


def test_source_trees_are_keyed_by_content(release_0150_trees: dict[str, Path], tmp_path: Path) -> None:
    plain, patched = (envs.ensure_env(str(release_0150_trees[n])) for n in ("plain", "patched"))
    assert plain.key != patched.key and plain.sdk_version == patched.sdk_version == "0.1.50"
    copy = tmp_path / "copy"
    subprocess.run(["cp", "-r", str(release_0150_trees["plain"]), str(copy)], check=True)
    assert envs.ensure_env(str(copy)).key == plain.key


def test_git_subjects_are_keyed_by_commit(release_0150_trees: dict[str, Path], tmp_path: Path) -> None:
    repo = tmp_path / "sdk"
    subprocess.run(["cp", "-r", str(release_0150_trees["plain"]), str(repo)], check=True)
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    for step in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "0.1.50"], ["tag", "v0.1.50"]):
        subprocess.run(git + step, check=True)
    by_branch = envs.ensure_env(f"git+file://{repo}@main")
    assert by_branch.sdk_version == "0.1.50"
    assert envs.ensure_env(f"git+file://{repo}@v0.1.50").key == by_branch.key  # same commit, same env


# ---------------------------------------------------------------- verify, bisect, matrix
def verify(candidate: Path) -> tuple[int, dict[str, Any]]:
    proc = cli("verify", "--candidate", str(candidate), "--claims", "cross_task_close", "--bug", "cross_task_close",
               "--backend", "asyncio", "--seed", "0", "--examples", "5", "--json", "--quiet")
    assert proc.returncode in (0, 1), proc.stderr[-2000:]
    return proc.returncode, json.loads(proc.stdout)


def test_verify_judges_the_ported_fix_by_manifestations(release_0150_trees: dict[str, Path]) -> None:
    """0.1.51's close() ported onto 0.1.50 removes the cross-task cancel-scope error and nine other
    manifestations, but a close that takes real time (a subprocess exiting) now leaves the reader
    task pending ("Task was destroyed but it is pending!"), as 0.1.51 itself does: a new
    manifestation is a regression, shown with everything that is gone."""
    code, patched = verify(release_0150_trees["patched"])
    assert patched["baseline"]["subject"]["sdk_version"] == "0.1.50"  # the release the candidate's version names
    # the same version, told apart by where each was installed from: a release from the index, the candidate from its tree
    assert "installed_from" not in patched["baseline"]["subject"]
    assert patched["candidate"]["subject"]["installed_from"] == release_0150_trees["patched"].resolve().as_uri()
    (row,) = patched["comparison"]
    assert (row["bug"], row["change"]) == ("cross_task_close", "regresses")
    assert {"cancel_scope_cross_task", "task_exception_never_retrieved", "stray_cancellation"} <= set(row["gone"])
    assert row["new"] == ["task_destroyed_pending", "task_left_pending"]
    assert (code, patched["claims"]) == (1, {"cross_task_close": False})
    code, plain = verify(release_0150_trees["plain"])
    assert [(r["bug"], r["change"], r["gone"], r["new"]) for r in plain["comparison"]] == [("cross_task_close", "still reproduces", [], [])]
    assert (code, plain["claims"]) == (1, {"cross_task_close": False})  # claims a fix it does not make


def test_verify_markdown_carries_counterexample_and_replay(release_0150_trees: dict[str, Path]) -> None:
    proc = cli("verify", "--candidate", str(release_0150_trees["plain"]), "--bug", "cross_task_close", "--backend", "asyncio",
               "--seed", "0", "--examples", "5", "--markdown", "--quiet")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "| cross_task_close | - | asyncio | reproduced | reproduced | still reproduces |" in proc.stdout
    assert "```json" in proc.stdout and "python -m pytest_agentsdk replay --bug cross_task_close" in proc.stdout


def test_bisect_finds_the_cross_task_close_boundary() -> None:
    proc = cli("bisect", "--bug", "cross_task_close", "--manifestation", "cancel_scope_cross_task", "--backend", "asyncio",
               "--seed", "0", "--examples", "3", "--json", "--quiet")
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout)
    assert (result["last_same"], result["first_different"]) == ("0.1.50", "0.1.51")
    assert result["before"] == "cancel_scope_cross_task present" and result["after"] == "cancel_scope_cross_task absent"
    assert result["envs_judged"] <= 8 and result["from"] == "0.1.44"


def test_matrix_json_and_table_from_recorded_reports(tmp_path: Path) -> None:
    proc = cli("matrix", "--sdk", "0.1.50", "--sdk", "0.1.51", "--bug", "cross_task_close", "--seed", "0", "--examples", "3",
               "--json", "--quiet")
    assert proc.returncode == 1, proc.stderr[-2000:]  # 0.1.50 reproduces
    reports = json.loads(proc.stdout)
    assert [r["subject"]["sdk_version"] for r in reports] == ["0.1.50", "0.1.51"]
    verdicts = {(r["subject"]["sdk_version"], x["backend"]): x["verdict"] for r in reports for x in r["results"]}
    assert verdicts[("0.1.50", "asyncio")] == "reproduced" and verdicts[("0.1.51", "trio")] == "not_applicable"
    for report in reports:
        (tmp_path / f"{report['subject']['sdk_version']}.json").write_text(json.dumps(report))
    table = cli("matrix", "--from-json", str(tmp_path))
    assert table.returncode == 1
    rows = table.stdout.splitlines()
    assert rows[0].split() == ["claude-agent-sdk", "cross_task_close"]
    assert rows[1].split() == ["0.1.50", "reproduced"] and rows[2].split()[0] == "0.1.51"


def test_releases_of_one_source_are_judged_once_and_get_the_rows_judging_each_gives() -> None:
    # 0.2.141 only bumped the bundled CLI: its sdist differs from 0.2.140's in version strings alone
    args = ("matrix", "--sdk", "0.2.140", "--sdk", "0.2.141", "--bug", "late_task_notification", "--seed", "0",
            "--examples", "5", "--json", "--quiet")
    once, each = cli(*args), cli(*args, "--judge-each")
    assert once.returncode == each.returncode == 1, (once.stderr[-2000:], each.stderr[-2000:])
    judged_once, judged_each = json.loads(once.stdout), json.loads(each.stdout)
    assert [r["results"] for r in judged_once] == [r["results"] for r in judged_each]
    first, second = (r["subject"] for r in judged_once)  # the source is judged on its newest release
    assert (first["sdk_version"], second["sdk_version"], first["judged_as"]) == ("0.2.140", "0.2.141", "0.2.141")
    assert second["env"] == first["env"] and second["source"] == first["source"] and "judged_as" not in second
    assert judged_each[0]["subject"]["env"] != judged_each[1]["subject"]["env"]
    assert not any("judged_as" in r["subject"] for r in judged_each)
