"""Do verdicts flicker? ``check`` under many seeds, where each bug reproduces and where a fix moves it.

Subjects: the latest release (every bug reproduces) and the fix candidates of tests/candidates
that move one bug each (``separate_channel`` fixes late_task_notification, a verdict that once
moved with the seed; ``judge_the_agent`` narrows premature_completion: no SDK can fix the lies a
result hides; no release or candidate fixes cross_task_close yet). For each, ``check``
runs once per seed in the subject's env; a (bug, model, backend) whose verdict or manifestation
set differs between seeds is a flip. Seed 0 runs twice: the two JSON reports (counterexamples
included; check prints no timings) must be identical. Last, the installed release is judged by
pytest through ``agentsdk_check``, serially and with ``-n 2``: the ``--agentsdk-report`` files must
be identical. Prints one table; exits 1 on any flip or difference.

    python benchmarks/determinism.py [--seeds 20] [--examples 30] [--jobs 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from candidates import BASE_VERSION, build_candidate  # noqa: E402

from pytest_agentsdk import envs, patching, verdict  # noqa: E402
from pytest_agentsdk.options import DEFAULT_EXAMPLES  # noqa: E402
from pytest_agentsdk.bugs import BUG_NAMES  # noqa: E402

#: (label, candidate name or None for the release itself, the bugs judged on it)
SUBJECTS: tuple[tuple[str, str | None, tuple[str, ...]], ...] = (
    ("latest", None, BUG_NAMES),
    ("separate_channel", "separate_channel", ("late_task_notification",)),
    ("judge_the_agent", "judge_the_agent", ("premature_completion",)),
)

_XDIST_TESTS = """\
import pytest

from pytest_agentsdk.bugs import BUG_NAMES, scenario


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@pytest.mark.parametrize(("bug", "model"), [(bug, model) for bug in BUG_NAMES for model in scenario(bug).models])
def test_judged(agentsdk_check, bug, model, backend):
    agentsdk_check(bug, backend=backend, model=model, examples={examples})
"""


def subject_envs(tmp: Path) -> dict[str, envs.Env]:
    """The env of each subject (candidates built over BASE_VERSION's package)."""
    base = Path(envs.ensure_env(envs.parse_spec(BASE_VERSION)).run(["-c", patching.PACKAGE_DIR_CODE]).stdout.strip())
    built = {}
    for label, candidate, _ in SUBJECTS:
        spec = "latest" if candidate is None else str(build_candidate(candidate, base, tmp / candidate))
        built[label] = envs.ensure_env(envs.parse_spec(spec))
    return built


def check(env: envs.Env, bugs: tuple[str, ...], seed: int, examples: int) -> dict[str, Any]:
    args = [arg for bug in bugs for arg in ("--bug", bug)] + ["--seed", str(seed), "--examples", str(examples), "--quiet"]
    return env.run_check(args)


def pytest_reports(tmp: Path, examples: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """The --agentsdk-report of a serial and of an ``-n 2`` run of the same judging tests."""
    (tmp / "test_judged.py").write_text(_XDIST_TESTS.format(examples=examples))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    reports = []
    for name, extra in (("serial", []), ("xdist", ["-n", "2"])):
        path = tmp / f"{name}.json"
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "agentsdk", "-p", "no:cacheprovider", f"--agentsdk-report={path}", *extra]
        proc = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True)
        if proc.returncode != 0 or not path.exists():
            sys.exit(f"pytest {' '.join(extra) or '(serial)'} failed (exit {proc.returncode}): {proc.stdout.strip().splitlines()[-1:]}")
        reports.append(json.loads(path.read_text()))
    return reports[0], reports[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20, help="seeds 0..N-1 per subject (default 20)")
    parser.add_argument("--examples", type=int, default=DEFAULT_EXAMPLES,
                        help=f"check's searched examples per bug/model/backend (default {DEFAULT_EXAMPLES}, check's own: a class "
                             "only the search finds may show only past a small budget)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="checks run at once (default: the number of cores)")
    args = parser.parse_args()
    started = time.perf_counter()
    print(f"check over seeds 0..{args.seeds - 1}, --examples {args.examples} ({os.cpu_count()} cores, {args.jobs} jobs)")
    failures = []
    with tempfile.TemporaryDirectory(prefix="agentsdk-determinism-") as tmp:
        built = subject_envs(Path(tmp))
        bugs_of = {label: bugs for label, _, bugs in SUBJECTS}
        runs = [(label, seed, 0) for label in bugs_of for seed in range(args.seeds)] + [(label, 0, 1) for label in bugs_of]
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            data = dict(zip(runs, pool.map(lambda run: check(built[run[0]], bugs_of[run[0]], run[1], args.examples), runs)))
        serial, parallel = pytest_reports(Path(tmp), args.examples)
    table = [["subject", "bug", "model", "backend", "outcome over the seeds (verdict: manifestations; seeds)", "flip"]]
    for label in bugs_of:
        reports = [verdict.CheckReport.from_json(data[(label, seed, 0)]) for seed in range(args.seeds)]
        version = reports[0].subject.get("sdk_version")
        for (bug, model, backend), outcomes in verdict.outcomes_across_seeds(reports).items():
            cells = [f"{v}: {', '.join(names) or '-'}" + (f" (seeds {', '.join(map(str, seeds))})" if len(outcomes) > 1 else "")
                     for (v, names), seeds in outcomes.items()]
            flip = len(outcomes) > 1
            failures += [f"{label} {bug}/{model or '-'}/{backend}: {len(outcomes)} outcomes"] if flip else []
            table.append([f"{label} ({version})", bug, model or "-", backend, " | ".join(cells), "FLIP" if flip else "no"])
        if data[(label, 0, 0)] != data[(label, 0, 1)]:
            failures.append(f"{label}: seed 0 twice gave different JSON")
    print("\n".join(verdict._fixed_width(table)))
    same_seed = "identical" if not any("seed 0 twice" in f for f in failures) else "DIFFERENT"
    print(f"same seed twice (seed 0, every subject): JSON {same_seed}")
    xdist = "identical" if serial == parallel else "DIFFERENT"
    if serial != parallel:
        failures.append("pytest -n 2 wrote a different --agentsdk-report than the serial run")
    print(f"pytest serial vs -n 2 ({len(serial['results'])} verdicts of claude-agent-sdk {serial['subject']['sdk_version']}, "
          f"seed {serial['seed']}): reports {xdist}")
    print(f"wall time {time.perf_counter() - started:.0f} s; " + (f"{len(failures)} problem(s): {'; '.join(failures)}" if failures else "no flips"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
