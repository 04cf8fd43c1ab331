"""A verdict names the runtime it was judged on (anyio, trio), and a comparison of reports judged on
different runtimes says so: a change between them may be the runtime's, not the SDK's."""

from __future__ import annotations

import pytest

from pytest_agentsdk import verdict


def report(version: str, runtime: dict[str, str | None] | None, manifestations: list[str], *, env: bool = True,
           outcome: str | None = None) -> verdict.CheckReport:
    subject = verdict.subject_info(version, None, spec=version, **({"env": f"/envs/{version}"} if env else {}))
    if runtime is not None:
        subject["runtime"] = runtime
    row = verdict.Result("cross_task_close", outcome or ("reproduced" if manifestations else "fixed"), "asyncio", manifestations=manifestations)
    return verdict.CheckReport(subject, 0, [row])


OLD = {"anyio": "4.4.0", "trio": "0.25.0"}
NEW = {"anyio": "4.16.0", "trio": "0.35.0"}


@pytest.mark.parametrize("markdown", [False, True])
def test_a_comparison_across_runtimes_says_it_is_not_alike(markdown: bool) -> None:
    text = verdict.render_comparison(report("0.2.187", OLD, ["cancel_scope_cross_task"]), report("0.2.190", NEW, []), markdown=markdown)
    assert "fixes" in text
    assert ("ot judged alike: the subjects ran on anyio 4.4.0, trio 0.25.0 (0.2.187); anyio 4.16.0, trio 0.35.0 (0.2.190); "
            "a change between them may be the runtime's; an env keeps the versions it was built with: remove one (subject.env") in text


def test_a_comparison_on_one_runtime_says_nothing_of_it() -> None:
    text = verdict.render_comparison(report("0.2.187", NEW, ["cancel_scope_cross_task"]), report("0.2.190", NEW, []))
    assert "judged alike" not in text


def test_a_report_that_never_ran_is_left_out_and_one_naming_no_runtime_is_unknown() -> None:
    """An error report (its env never ran) has no runtime to compare; an older harness's report
    that ran does, unnamed: that is not alike with one that names its runtime."""
    assert verdict.runtime_groups([report("0.2.187", None, [], outcome="error"), report("0.2.190", NEW, [])]) == {}
    assert verdict.runtime_groups([report("0.2.187", None, []), report("0.2.190", NEW, [])]) == {
        "runtime unknown": ["0.2.187"], "anyio 4.16.0, trio 0.35.0": ["0.2.190"]}
    assert verdict.runtime_groups([report("0.2.187", None, []), report("0.2.190", None, [])]) == {}


def test_reports_from_elsewhere_are_told_to_be_judged_in_one_run() -> None:
    """Merged slices judged on other machines have no env here to remove."""
    line = verdict.unlike_runtimes([report("0.2.187", OLD, [], env=False), report("0.2.190", NEW, [], env=False)])
    assert line is not None and line.endswith("judge them in one run to compare them alike")


def test_the_matrix_footer_names_which_releases_ran_on_which_runtime() -> None:
    reports = [report(f"0.2.{n}", OLD if n < 182 else NEW, []) for n in range(180, 187)]
    footer = verdict.render_matrix(reports).splitlines()[len(reports) + 1]
    assert "anyio 4.4.0, trio 0.25.0 (0.2.180, 0.2.181)" in footer
    assert "anyio 4.16.0, trio 0.35.0 (0.2.182, 0.2.183, 0.2.184 and 2 more)" in footer


def test_the_table_header_names_the_runtime() -> None:
    assert verdict.render_table(report("0.2.190", NEW, [])).splitlines()[0] == \
        "claude-agent-sdk 0.2.190 (CLI none bundled) on anyio 4.16.0, trio 0.35.0, seed 0"
    assert verdict.render_table(report("0.2.190", None, [])).splitlines()[0] == "claude-agent-sdk 0.2.190 (CLI none bundled), seed 0"
