"""``python -m pytest_agentsdk check|replay`` on the installed SDK: the JSON contract, exit codes,
determinism per seed, and one-line errors for bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

RESULT_KEYS = {"bug", "verdict", "backend", "model", "examples", "manifestations", "counterexample", "replay"}


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest_agentsdk", *args], capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def check_json() -> tuple[int, dict]:
    proc = run("check", "--json", "--seed", "7", "--examples", "5", "--backend", "asyncio")
    return proc.returncode, json.loads(proc.stdout)


def test_check_json_has_the_versioned_contract(check_json, sdk_info) -> None:
    code, report = check_json
    assert report["schema"].startswith("pytest-agentsdk/verdict/")
    assert report["subject"]["sdk_version"] == sdk_info.version
    assert report["seed"] == 7
    assert {r["bug"] for r in report["results"]} == {"cross_task_close", "late_task_notification", "premature_completion"}
    for result in report["results"]:
        assert RESULT_KEYS <= set(result)
        assert result["verdict"] in {"reproduced", "fixed", "hang", "not_applicable", "error"}
        assert result["verdict"] != "error", result.get("reason")
    failed = any(r["verdict"] in ("reproduced", "hang") for r in report["results"])
    assert code == (1 if failed else 0)


def test_check_names_the_runtime_it_judged_on(check_json) -> None:
    """anyio raises bug 1 and trio is the second backend: a report says which versions it ran on."""
    from importlib.metadata import version

    _, report = check_json
    assert report["subject"]["runtime"] == {"anyio": version("anyio"), "trio": version("trio")}


def test_late_task_notification_is_judged_per_model(check_json) -> None:
    _, report = check_json
    models = {r["model"] for r in report["results"] if r["bug"] == "late_task_notification"}
    assert models == {"notify-only", "wake-parent"}


def test_same_seed_same_verdicts_and_counterexamples(check_json) -> None:
    _, first = check_json
    again = json.loads(run("check", "--json", "--seed", "7", "--examples", "5", "--backend", "asyncio").stdout)

    def essence(report: dict) -> list:
        return [(r["bug"], r["model"], r["verdict"], r["manifestations"], r["counterexample"]) for r in report["results"]]

    assert essence(again) == essence(first)


def test_replay_command_reproduces_the_counterexample(check_json) -> None:
    _, report = check_json
    failing = [r for r in report["results"] if r["verdict"] == "reproduced"]
    assert failing, "the latest release is expected to reproduce at least one bug"
    result = failing[0]
    args = ["replay", "--bug", result["bug"], "--backend", result["backend"], "--example", json.dumps(result["counterexample"])]
    if result["model"]:
        args += ["--model", result["model"]]
    proc = run(*args)
    assert proc.returncode == 1
    assert json.loads(proc.stdout)["failed"] is True


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["check", "--bug", "nope"], "--bug nope: unknown bug"),
        (["check", "--model", "psychic"], "--model psychic: unknown CLI behaviour model"),
        (["check", "--examples", "0"], "argument --examples: must be at least 1"),
        (["replay", "--bug", "premature_completion", "--example", "/no/such/file"], "neither JSON nor a readable file"),
        (["replay", "--bug", "premature_completion", "--example", "{not json"], "not valid JSON"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: list[str], message: str) -> None:
    proc = run(*args)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_a_reader_that_stops_reading_ends_the_command_quietly() -> None:
    """``check --json | head``: the reader goes away (here before anything is written, so the
    outcome does not hang on how much a release's report holds), and the command ends as a process
    SIGPIPE ends (141), without an "internal error" line."""
    proc = subprocess.Popen([sys.executable, "-m", "pytest_agentsdk", "check", "--json", "--quiet", "--bug", "premature_completion",
                             "--backend", "asyncio", "--examples", "1", "--seed", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert (proc.wait(timeout=600), err.splitlines()) == (141, ["pytest-agentsdk check: seed 0"])  # the seed line --quiet keeps


def test_check_leaves_nothing_in_the_working_directory(tmp_path: Path) -> None:
    """No ./.hypothesis: the search reads no constants from the loaded modules, so Hypothesis
    caches none where the user runs a check."""
    env = {k: v for k, v in os.environ.items() if k != "HYPOTHESIS_STORAGE_DIRECTORY"}
    proc = subprocess.run([sys.executable, "-m", "pytest_agentsdk", "check", "--bug", "cross_task_close", "--backend", "asyncio",
                           "--examples", "2", "--seed", "1", "--quiet"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode in (0, 1), proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_checks_sharing_drawings_report_what_a_check_alone_reports(tmp_path: Path) -> None:
    """The first check writes its search's drawings to --drawings, the next reads them: the same
    report as a check that draws its own."""
    args = ("check", "--json", "--bug", "late_task_notification", "--backend", "asyncio", "--examples", "5", "--seed", "3")
    alone = run(*args)
    first = run(*args, "--drawings", str(tmp_path))
    drawn = sorted(p.name for p in tmp_path.iterdir())
    second = run(*args, "--drawings", str(tmp_path))
    assert drawn == ["late_task_notification-notify-only-seed3-examples5.pickle"]
    assert json.loads(alone.stdout) == json.loads(first.stdout) == json.loads(second.stdout)


@pytest.mark.parametrize(("version", "baseline", "why"), [
    ("0.2.187+separate.channel", "0.2.187", "names"),  # a candidate built on a release (tests/candidates): its public version
    ("0.2.187", "0.2.187", "names"),
    ("0.2.188.dev0", "latest", "no release on the index"),
    ("not a version", "latest", "names no release"),
    (None, "latest", "did not build"),
])
def test_verify_s_default_baseline_is_the_release_the_candidate_s_version_names(monkeypatch, version, baseline, why) -> None:
    from pytest_agentsdk import envs, machine

    monkeypatch.setattr(envs, "releases", lambda progress=None: ["0.2.186", "0.2.187", "0.2.190"])
    spec, reason = machine._default_baseline(version, print)
    assert (spec.label if spec.kind == "latest" else spec.value) == baseline and why in reason
