"""The ``mutants`` command: every mutant applies to the latest release, a stale anchor is reported,
and end to end a property-breaking mutant regresses while a neutral one leaves every bug unchanged."""

from __future__ import annotations

import json
import py_compile
from collections.abc import Callable
from pathlib import Path

import pytest

from pytest_agentsdk import envs, mutants, patching, verdict
from pytest_agentsdk.__main__ import main


def test_a_stale_anchor_names_its_file(tmp_path: Path) -> None:
    package = tmp_path / "claude_agent_sdk"
    package.mkdir()
    (package / "_version.py").write_text('__version__ = "1.0"\n')
    (package / "client.py").write_text("x = 1\nx = 1\n")
    with pytest.raises(patching.StalePatch, match=r"client.py found 2 times"):
        patching.build_source_tree(package, tmp_path / "tree", [patching.Patch("client.py", "x = 1\n", "x = 2\n")],
                                   local="m", what="mutant m")
    tree = patching.build_source_tree(package, tmp_path / "ok", [patching.Patch("client.py", "x = 1\nx", "y = 1\nx")],
                                      local="m_1", what="mutant m_1")
    assert (tree / "src/claude_agent_sdk/client.py").read_text() == "y = 1\nx = 1\n"
    assert patching.package_version(tree / "src/claude_agent_sdk") == "1.0+m.1"
    assert (package / "client.py").read_text() == "x = 1\nx = 1\n"  # the base is never written to


def test_every_mutant_applies_once_to_the_latest_release(sdk_release: Callable[[str], envs.Env], tmp_path: Path) -> None:
    package = Path(sdk_release("latest").run(["-c", patching.PACKAGE_DIR_CODE]).stdout.strip())
    assert len([m for m in mutants.MUTANTS.values() if m.bugs]) >= 16
    assert len([m for m in mutants.MUTANTS.values() if not m.bugs]) >= 2
    for mutant in mutants.MUTANTS.values():
        tree = patching.build_source_tree(package, tmp_path / mutant.name, mutant.patches, local=mutant.name, what=mutant.name)
        for file in {p.file for p in mutant.patches}:
            patched = tree / "src/claude_agent_sdk" / file
            assert patched.read_text() != (package / file).read_text(), (mutant.name, file)
            py_compile.compile(str(patched), doraise=True)


def test_a_regression_through_a_harness_error_is_not_caught() -> None:
    """verify calls a candidate that errors where the baseline ran a regression; a mutant caught
    that way proves nothing about the oracles, so it is judged ``error``, and missed."""
    ran = verdict.Result("late_task_notification", "reproduced", "asyncio", "notify-only", manifestations=["stale:subagent"])
    crashed = verdict.Result("late_task_notification", "error", "asyncio", "notify-only", reason="ScriptedCLIError: never emitted")
    row = mutants.judge_mutant(mutants.MUTANTS["notification_duplicated"], verdict.CheckReport({}, 0, [crashed]),
                               verdict.CheckReport({}, 0, [ran]), None)
    assert (row["got"], row["caught"]) == ("error", False)


def test_a_neutral_fault_says_why() -> None:
    """A real fault judged neutral carries its reason; a breaking one needs none."""
    for mutant in mutants.MUTANTS.values():
        assert not (mutant.bugs and mutant.why_neutral), mutant.name
    assert {m.name for m in mutants.MUTANTS.values() if m.why_neutral} == {"cancel_swallowed", "stdin_closed_early"}


@pytest.mark.machine
def test_a_breaking_mutant_regresses_and_a_neutral_one_is_unchanged(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["mutants", "--only", "all_failed", "--only", "notification_duplicated", "--only", "extra_log_line",
                 "--json", "--quiet", "--jobs", "2"])
    out = json.loads(capsys.readouterr().out)
    rows = {row["name"]: row for row in out["mutants"]}
    assert {name: row["got"] for name, row in rows.items()} == {"all_failed": "regresses", "notification_duplicated": "regresses",
                                                                "extra_log_line": "unchanged"}
    assert code == 0 and out["seed"] == 0
    assert all("truthful_reported_failed" in r["new"] for r in rows["all_failed"]["comparison"])
    # caught through the oracle (a consumer-visible duplicate), not through a harness crash
    assert all(r["candidate"] == "reproduced" and "duplicated" in r["new"] for r in rows["notification_duplicated"]["comparison"])
    assert {r["bug"] for r in rows["extra_log_line"]["comparison"]} == {"cross_task_close", "late_task_notification", "premature_completion"}
