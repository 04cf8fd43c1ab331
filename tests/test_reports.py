"""Reports read back (``matrix --from-json``): what the harness writes loads, and anything else is
refused naming the field, never drawn as a table or crashing as it renders."""

from __future__ import annotations

import copy
import dataclasses
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pytest_agentsdk import machine, verdict

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def written() -> dict[str, Any]:
    """A report as ``check --json`` writes it, on the installed release."""
    proc = subprocess.run([sys.executable, "-m", "pytest_agentsdk", "check", "--bug", "premature_completion", "--backend", "asyncio",
                           "--examples", "1", "--seed", "0", "--json", "--quiet"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode in (0, 1), proc.stderr[-2000:]
    return dict(json.loads(proc.stdout))


def edited(report: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of ``report`` with the field at ``path`` (dots; ``results.0`` indexes) set to ``value``."""
    out = copy.deepcopy(report)
    *parents, last = path.split(".")
    node: Any = out
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node.setdefault(key, {})
    node[int(last) if isinstance(node, list) else last] = value
    return out


def test_what_the_harness_writes_loads(written: dict[str, Any]) -> None:
    for report in (written, edited(written, "seed", -1)):  # the plugin's --agentsdk-seed took any int before
        assert machine._known_report(report, "")[0].to_json() == report
    error_rows = machine._error_report(machine.envs.parse_spec("0.1.9"), "0.1.9", "too old", machine.argparse.Namespace(bug=None, backend=None), 0)
    assert machine._known_report(error_rows.to_json(), "")[0].to_json() == error_rows.to_json()


@pytest.mark.parametrize(("path", "value", "problem"), [
    ("schema", "pytest-agentsdk/verdict/1", "schema: 'pytest-agentsdk/verdict/1' is not pytest-agentsdk/verdict/2"),
    ("colour", "red", "report: ['colour'] are unknown fields"),
    ("seed", "0", "seed: '0' is not a whole number"),
    ("subject.sdk_version", 187, "subject.sdk_version: 187 is not a string or null"),
    ("subject.runtime", "anyio", "subject.runtime: 'anyio' is not an object of versions"),
    ("results.0.manifestations", 42, "results[0].manifestations: 42 is not a list of strings"),
    ("results.0.verdict", "sort of", "results[0].verdict: 'sort of' is not one of reproduced, warnings"),
    ("results.0.evidence.patterns", 5, "results[0].evidence.patterns: 5 is not an object of patterns"),
    ("results.0.examples", -3, "results[0].examples: -3 is not a whole number >= 0"),
    ("results.0.bug", "no_such_bug", "results[0].bug: 'no_such_bug' is not a bug this harness judges"),
    ("results.0.backend", "curio", "results[0].backend: 'curio' is not one of asyncio, trio"),
    ("results.0.colour", "red", "results[0].colour: 'red' is an unknown field; the fields are bug, verdict"),
    ("matrix", {"shard": "1/2", "index": "0", "subjects": 2, "run": "r", "options": []}, "matrix.index: '0' is not a whole number"),
])
def test_a_malformed_report_is_refused_naming_the_field(written: dict[str, Any], path: str, value: Any, problem: str) -> None:
    with pytest.raises(ValueError) as one:
        machine._known_report(edited(written, path, value), "")
    assert str(one.value).startswith(problem)
    with pytest.raises(ValueError) as in_a_list:  # matrix --json writes a list: the position comes first
        machine._known_report(edited(written, path, value), "[1]")
    top = problem.startswith("report:")  # the report as a whole: named by its position alone
    assert str(in_a_list.value).startswith(problem.replace("report", "[1]", 1) if top else f"[1].{problem}")


def test_a_change_between_releases_names_them() -> None:
    ran = verdict.Result("cross_task_close", "reproduced", "trio", manifestations=["cancel_scope_cross_task"])
    lacks = verdict.Result("cross_task_close", "not_applicable", "trio", reason="release cannot run under trio")
    older, newer = (verdict.CheckReport(verdict.subject_info(v, None, spec=v), 0, [r]) for v, r in (("0.1.50", ran), ("0.1.51", lacks)))
    assert "; 0.1.51 lacks the surface where 0.1.50 ran: release cannot run under trio" in verdict.render_matrix([older, newer])
    (row,) = verdict.compare(older, newer)
    assert row["reason"] == "candidate lacks the surface where baseline ran: release cannot run under trio"


def test_examples_that_could_not_run_leave_the_two_sides_unlike() -> None:
    """A story that never ran on the candidate is no fix of what it showed on the baseline, nor is
    one that never ran on the baseline a regression of the candidate's; a new manifestation against
    a baseline that ran everything still regresses."""
    lie = verdict.Result("premature_completion", "reproduced", "asyncio", manifestations=["lie"])
    both = verdict.Result("premature_completion", "reproduced", "asyncio", manifestations=["gc_warning", "lie"], quiet=["gc_warning"])
    broken = {"could_not_run": [{"example": "b", "error": "the CLI asked for a reply nothing queued"}]}
    quiet = verdict.Result("premature_completion", "warnings", "asyncio", manifestations=["gc_warning"], quiet=["gc_warning"], evidence=broken)
    assert verdict.classify_change(both, dataclasses.replace(quiet, evidence={}))["change"] == "fixes"
    row = verdict.classify_change(both, quiet, ("0.2.187", "candidate"))
    assert (row["change"], row["reason"]) == ("error", "candidate: 1 example(s) could not run (evidence.could_not_run), so the two are not like for like")
    shows_more = verdict.Result("premature_completion", "reproduced", "asyncio", manifestations=["lie", "false_alarm"], evidence=broken)
    assert verdict.classify_change(lie, shows_more)["change"] == "regresses"
    base_broken = verdict.Result("premature_completion", "reproduced", "asyncio", manifestations=["lie"], evidence=broken)
    assert verdict.classify_change(base_broken, shows_more)["change"] == "error"
    assert verdict.classify_change(lie, lie)["change"] == "still reproduces"
    # nothing shown and a story that could not run is an error row of its own: not a candidate that lost the surface
    none_ran = verdict.Result("premature_completion", "error", "asyncio", reason="1 of 3 examples could not run", evidence=broken)
    assert verdict.classify_change(lie, none_ran)["change"] == "error"
    # what needs no like for like still regresses: a hang, a surface lost
    hung = verdict.Result("premature_completion", "hang", "asyncio", manifestations=["hang"], reason="stalled")
    lacks = verdict.Result("premature_completion", "not_applicable", "asyncio", reason="no typed task messages")
    assert [verdict.classify_change(base_broken, c)["change"] for c in (hung, lacks)] == ["regresses", "regresses"]


def test_a_release_that_runs_where_the_one_before_could_not_gains_the_surface_not_a_regression() -> None:
    """0.1.64 cannot run under trio, 0.1.71 can and has the bug: nothing was there to compare with,
    so the change says what the newer one showed alone, and fails no verify."""
    lacks = verdict.Result("premature_completion", "not_applicable", "trio", reason="release cannot run under trio")
    ran = verdict.Result("premature_completion", "reproduced", "trio", manifestations=["untruthful_completed_passed_through"])
    row = verdict.classify_change(lacks, ran, ("0.1.64", "0.1.71"))
    assert (row["change"], row["new"], row["gone"]) == (verdict.GAINS, [], [])
    assert verdict.describe_change(row) == ("gains the surface; 0.1.71 runs where 0.1.64 did not (release cannot run under trio); "
                                            "judged alone: reproduced (untruthful_completed_passed_through)")
    assert verdict.classify_change(lacks, lacks)["change"] == "unchanged"
    hung = verdict.Result("premature_completion", "hang", "trio", manifestations=["hang"], reason="stalled")
    assert verdict.classify_change(lacks, hung)["change"] == "regresses"  # a hang regresses wherever it appears
    # a claimed fix is not met while the bug shows where only the candidate runs, nor with nothing compared
    fixed_here = {"change": "fixes", "candidate": "fixed", "model": None, "backend": "asyncio"}
    gained = {**row, "model": None, "backend": "trio"}
    assert machine.claim_problem([fixed_here]) is None and machine.claim_problem([fixed_here, {**gained, "candidate": "fixed"}]) is None
    assert machine.claim_problem([fixed_here, {**gained, "candidate": "reproduced"}]) == "-/trio: gains the surface (reproduced)"
    assert machine.claim_problem([{**gained, "candidate": "fixed"}]) == (
        "no row fixes it: the baseline ran on none of its rows, so there is nothing it fixed")


def test_a_pattern_s_moves_are_the_sweep_s_said_as_such_whatever_the_search_found() -> None:
    """The sweep runs the same examples on both sides at any budget; the search does not. What
    moved in a pattern is read from the sweep alone, and said as the sweep of that pattern: a
    manifestation gone from it may still be found there by the search (no contradiction with the
    pattern's evidence), and the change line is the same at every budget."""
    def judged(swept: list[str], found: list[str]) -> verdict.Result:
        flows = {"several tasks": {"swept_manifestations": swept, "manifestations": sorted(set(swept) | set(found))}}
        return verdict.Result("late_task_notification", "reproduced", "asyncio", manifestations=["stale:task_notification", "stale:turn"],
                              evidence={"patterns": flows})
    stale = ["stale:task_notification"]
    small, large = (verdict.classify_change(judged(stale, stale), judged([], found)) for found in ([], stale))
    assert small == large and small["gone_in_patterns"] == {"stale:task_notification": ["several tasks"]} and small["change"] == "narrows"
    assert verdict.describe_change(small) == "narrows (gone from the sweep of: stale:task_notification (several tasks))"


def _report(version: str, manifestations: list[str], **subject: Any) -> verdict.CheckReport:
    shown = verdict.Result("late_task_notification", "reproduced" if manifestations else "fixed", "asyncio", manifestations=manifestations)
    return verdict.CheckReport(verdict.subject_info(version, None, **subject), 0, [shown])


def test_a_candidate_is_compared_with_the_release_it_is_built_on_never_with_its_neighbours(tmp_path: Path) -> None:
    """tox's report and a matrix with a candidate among its subjects: the release after a candidate
    did not lose its fix, and the release before it is not what it changed."""
    stale = ["stale:task_notification"]
    older, base, latest = (_report(v, stale, spec=f"sdk-{v}") for v in ("0.2.143", "0.2.187", "0.2.190"))
    fix = _report("0.2.187+separate.channel", [], spec="candidate")  # a local label: no index publishes it
    changes = verdict.render_matrix([older, base, fix, latest]).split("changes (")[1].splitlines()[1:]
    assert changes == ["  sdk-0.2.187 (0.2.187) -> candidate (0.2.187+separate.channel)  late_task_notification/-/asyncio: "
                       "fixes (gone: stale:task_notification)"]
    lone = verdict.render_matrix([older, fix, latest]).split("changes (")[1].splitlines()[1:]
    assert lone == ["  candidate (0.2.187+separate.channel): not compared: no release 0.2.187 in the table; verify --candidate "
                    "CANDIDATE judges it beside the release its version names"]
    # a source tree at a release's own version is a candidate by where it came from, and sorts after that release
    tree = _report("0.2.190", [], installed_from="file:///src/claude-agent-sdk-python")
    for name, report in (("candidate", tree), ("sdk-latest", _report("0.2.190", stale)), ("sdk-0.2.143", _report("0.2.143", stale))):
        (tmp_path / f"{name}.json").write_text(report.dumps())
    loaded = machine._load_reports([str(tmp_path)])
    assert [(r.subject["spec"], verdict.is_candidate(r)) for r in loaded] == [("sdk-0.2.143", False), ("sdk-latest", False), ("candidate", True)]
    assert [line.split(":")[0] for line in verdict.render_matrix(loaded).split("changes (")[1].splitlines()[1:]] == [
        "  sdk-latest (0.2.190) -> candidate (0.2.190)  late_task_notification/-/asyncio"]


def test_a_candidate_that_did_not_build_is_no_step_between_releases(tmp_path: Path) -> None:
    args = machine.argparse.Namespace(bug=["late_task_notification"], backend=["asyncio"])
    tree = tmp_path / "sdk"
    broken = machine._error_report(machine.envs.Spec("path", str(tree), "sdk"), None, "build failed", args, 0)
    assert broken.subject["installed_from"] == tree.as_uri() and verdict.is_candidate(broken)
    assert machine._error_report(machine.envs.parse_spec("0.2.187"), "0.2.187", "x", args, 0).subject.get("installed_from") is None
    stale = ["stale:task_notification"]
    changes = verdict.render_matrix([_report("0.2.187", stale), broken, _report("0.2.190", stale)]).split("changes (")[1].splitlines()[1:]
    assert changes == ["  sdk (None): not compared: its version is unknown (it was not judged: see its error)"]


def test_a_release_that_errored_is_bridged_and_each_real_cli_has_its_own_chain() -> None:
    """An error row is said (the SDK or the harness broke there), then stepped over: the release
    after it is compared with the last one judged. Over real CLIs, rows are compared only with rows
    of the same CLI."""
    stale = ["stale:task_notification"]
    errored = verdict.CheckReport(verdict.subject_info("0.2.188", None), 0, [
        verdict.Result("late_task_notification", "error", "asyncio", reason="check printed no JSON")])
    changes = verdict.render_matrix([_report("0.2.187", stale), errored, _report("0.2.190", [])]).split("changes (")[1].splitlines()[1:]
    assert changes == ["  0.2.187 -> 0.2.188  late_task_notification/-/asyncio: regresses; 0.2.188 errors where 0.2.187 ran: check printed no JSON",
                       "  0.2.187 -> 0.2.190  late_task_notification/-/asyncio: fixes (gone: stale:task_notification)"]
    # the releases in release order, whatever order --sdk gave them in
    backwards = verdict.render_matrix([_report("0.2.190", []), _report("0.2.187", stale)]).split("changes (")[1].splitlines()[1:]
    assert backwards == changes[1:]

    def over(cli: str, version: str, shown: list[str], **subject: Any) -> verdict.CheckReport:
        report = _report(version, shown, **subject)
        report.subject.update(cli_version=cli, cli={"path": f"/clis/{cli}", "source": "npm"})
        return report

    # subject-major, as matrix --cli A --cli B places them: base on A, base on B, candidate on A, candidate on B
    rows = [over("2.0.1", "0.2.187", stale), over("2.0.2", "0.2.187", []),
            over("2.0.1", "0.2.187+fix", [], installed_from="file:///src/fix"), over("2.0.2", "0.2.187+fix", stale, installed_from="file:///src/fix")]
    changes = verdict.render_matrix(rows).split("changes (")[1].splitlines()[1:]
    assert changes == [
        "  0.2.187 / CLI 2.0.1 -> 0.2.187+fix / CLI 2.0.1  late_task_notification/-/asyncio: fixes (gone: stale:task_notification)",
        "  0.2.187 / CLI 2.0.2 -> 0.2.187+fix / CLI 2.0.2  late_task_notification/-/asyncio: regresses (new: stale:task_notification)"]
    alone = verdict.render_matrix([_report("0.2.190", []), _report("0.2.191.dev0", stale, installed_from="file:///src/my%20main")])
    assert alone.split("changes (")[1].splitlines()[1:] == [
        "  0.2.191.dev0: not compared: no release 0.2.191.dev0 in the table; verify --candidate '/src/my main' judges it beside the "
        "release its version names"]
    # the base release judged over another CLI only: not the same row
    assert "no release 0.2.187 over CLI 2.0.2 in the table; verify --candidate /src/fix --cli 2.0.2" in verdict.render_matrix(rows[:1] + rows[3:])


def test_a_candidate_that_could_not_be_judged_errors_on_each_model_and_loses_nothing() -> None:
    """A subject that did not build has one error row per bug and backend: it stands for every model
    the other side judged there, and the change says it errored, not that the bug is gone."""
    base = verdict.CheckReport(verdict.subject_info("0.2.187", None), 0, [
        verdict.Result("late_task_notification", "reproduced", "asyncio", model, manifestations=["stale:turn"])
        for model in ("notify-only", "wake-parent")])
    broken = verdict.CheckReport(verdict.subject_info(None, None), 0, [
        verdict.Result("late_task_notification", "error", "asyncio", None, reason="does not import")])
    rows = verdict.compare(base, broken)
    assert [(r["model"], r["candidate"], r["change"], r["gone"], r["reason"]) for r in rows] == [
        (model, "error", "regresses", [], "candidate errors where baseline ran: does not import") for model in ("notify-only", "wake-parent")]
    assert [(r["model"], r["change"]) for r in verdict.compare(broken, base)] == [("notify-only", "error"), ("wake-parent", "error")]


def test_a_table_of_reports_judged_under_different_seeds_says_so() -> None:
    one, other = _report("0.2.187", []), _report("0.2.190", [])
    other.seed = 1
    assert "judged under different seeds" in verdict.render_matrix([one, other])
    assert "judged under different seeds" not in verdict.render_matrix([one, _report("0.2.190", [])])


def test_verify_notes_a_baseline_other_than_the_release_a_candidate_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(machine.envs, "releases", lambda progress=None: ["0.1.48", "0.1.50", "0.2.187"])
    progress = machine._Progress(quiet=True)
    fix, base, other = _report("0.2.187+fix", []), _report("0.2.187", []), _report("0.1.50", [])
    assert machine._other_base(fix, base, progress) is None
    assert (machine._other_base(fix, other, progress) or "").startswith("baseline 0.1.50 is not the release the candidate's version names (0.2.187)")
    assert machine._other_base(_report("0.1.50", []), _report("0.1.48", []), progress) is None, "a release judged as a candidate"
    unreleased = _report("0.2.191.dev0", [], installed_from="file:///src/main")
    assert machine._other_base(unreleased, base, progress) is None, "its version names no release"
