"""``matrix --shard I/N`` slices and ``matrix --from-json`` merging them back into one run's table."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_agentsdk import envs, machine

REPO = Path(__file__).resolve().parents[1]
SLICES = REPO / "tests" / "data" / "bad_input"


def matrix(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest_agentsdk", "matrix", "--quiet", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=900)


def test_slices_partition_the_subjects_and_keep_them_as_releases_are_added() -> None:
    versions = ["0.2.87", "0.1.44", "0.1.51", "0.1.48", "0.1.60", "0.2.143", "0.1.50"]
    specs = [envs.parse_spec(v) for v in versions] + [envs.parse_spec("latest")]
    slices = [machine._slice(specs, (i, 3)) for i in (1, 2, 3)]
    assert sorted(sum(slices, [])) == list(range(len(specs)))  # every subject once
    assert [[specs[i].value for i in s] for s in slices] == [  # by release: 0.1.44 0.1.48 0.1.50 | 0.1.51 0.1.60 0.2.87 | 0.2.143 latest
        ["0.1.44", "0.1.51", "0.2.143"], ["0.1.48", "0.1.60", "latest"], ["0.2.87", "0.1.50"]]
    grown = specs[:-1] + [envs.parse_spec("0.2.200"), specs[-1]]  # a newer release joins the list
    grown_slices = [{grown[i].text for i in machine._slice(grown, (i, 3))} for i in (1, 2, 3)]
    for before, after in zip(slices, grown_slices):
        assert {v for v in after if v not in ("0.2.200", "latest")} == {specs[i].text for i in before} - {"latest"}


def test_releases_of_one_source_share_a_slice() -> None:
    versions = ["0.2.139", "0.2.140", "0.2.141", "0.2.142", "0.2.143", "0.2.150"]
    specs = [envs.parse_spec(v) for v in versions] + [envs.parse_spec("latest")]
    # 0.2.140 .. 0.2.143 and latest: one source; the others each their own (or none: judged alone)
    sources_of = {1: "b", 2: "b", 3: "b", 4: "b", 6: "b", 0: "a"}
    slices = [machine._slice(specs, (i, 2), sources_of) for i in (1, 2)]
    assert sorted(sum(slices, [])) == list(range(len(specs)))
    assert [[specs[i].text for i in s] for s in slices] == [  # turns: 0.2.139 | 0.2.140 (and its source) | 0.2.150
        ["0.2.139", "0.2.150"], ["0.2.140", "0.2.141", "0.2.142", "0.2.143", "latest"]]


@pytest.mark.machine
def test_shards_merged_print_the_table_and_exit_code_of_one_run(tmp_path: Path) -> None:
    # given out of release order, with one release that cannot be judged and two of one source (0.2.141 only bumped the
    # bundled CLI): the merge keeps the run's order and its exit code
    run = ["--sdk", "0.1.51", "--sdk", "0.1.40", "--sdk", "0.1.48", "--sdk", "0.2.141", "--sdk", "0.2.140", "--bug", "premature_completion",
           "--backend", "asyncio", "--examples", "2", "--seed", "0"]
    whole = matrix(*run)
    for i in (1, 2):
        part = matrix(*run, "--shard", f"{i}/2", "--json")
        assert part.returncode in (1, 2), part.stderr[-2000:]
        (tmp_path / f"shard-{i}.json").write_text(part.stdout)
    assert [r["subject"]["spec"] for r in json.loads((tmp_path / "shard-1.json").read_text())] == ["0.1.51", "0.1.40"]
    second = json.loads((tmp_path / "shard-2.json").read_text())  # one source, one slice: judged once
    assert [(r["subject"]["spec"], r["subject"].get("judged_as")) for r in second] == [("0.1.48", None), ("0.2.141", None), ("0.2.140", "0.2.141")]
    merged = matrix("--from-json", str(tmp_path / "shard-2.json"), "--from-json", str(tmp_path / "shard-1.json"))
    assert merged.stdout == whole.stdout and "reproduced" in whole.stdout
    assert merged.returncode == whole.returncode == 1
    assert merged.stderr.splitlines()[-1] == whole.stderr.splitlines()[-1]  # "no verdicts for 0.1.40: ..."
    assert matrix("--from-json", str(tmp_path)).stdout == whole.stdout  # a directory of slices merges the same


@pytest.mark.parametrize("given", [["--seed", "0"], ["--judge-each"], ["--warnings-as-errors"], ["--bug", "premature_completion"],
                                   ["--sdk", "0.1.48"], ["--all"]])
def test_options_that_say_what_to_judge_are_refused_with_from_json(given: list[str]) -> None:
    proc = matrix("--from-json", str(SLICES / "slice-1of2-seed0.json"), *given)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip() == (f"pytest-agentsdk: error: {given[0]}: --from-json merges slices already judged; "
                                   f"give {given[0]} to the runs that judge them")


@pytest.mark.parametrize(("name", "args"), [("slice-1of2-seed0", ["--seed", "0", "--shard", "1/2"]),
                                            ("slice-2of2-seed1", ["--seed", "1", "--shard", "2/2"]),
                                            ("slice-2of2-examples5", ["--seed", "0", "--examples", "5", "--shard", "2/2"])])
def test_the_bad_input_slices_are_what_matrix_prints(name: str, args: list[str]) -> None:
    """The README's bad-input slices are real ``matrix --json`` output (releases it judges without an env)."""
    proc = matrix("--sdk", "0.1.9", "--sdk", "0.1.40", "--json", *args)
    assert proc.returncode == 2, proc.stderr[-2000:]

    def essence(reports: list[dict]) -> list[dict]:
        return [{**r, "subject": {k: v for k, v in r["subject"].items() if k != "python"}} for r in reports]

    assert essence(json.loads(proc.stdout)) == essence(json.loads((SLICES / f"{name}.json").read_text()))


def test_a_slice_of_another_subject_list_is_refused(tmp_path: Path) -> None:
    other = matrix("--sdk", "0.1.9", "--sdk", "0.1.30", "--seed", "0", "--shard", "2/2", "--json")  # same size, another list
    (tmp_path / "other.json").write_text(other.stdout)
    proc = matrix("--from-json", str(SLICES / "slice-1of2-seed0.json"), str(tmp_path / "other.json"))
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    assert "are slices of different runs (subject lists or the sources compared:" in proc.stderr
