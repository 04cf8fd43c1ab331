"""Jobs in fresh forks: results in job order, the parent's state in every job, a dead child reported."""

from __future__ import annotations

import gc
import os
import select
import signal
import subprocess
import sys
from collections.abc import Callable

import pytest

from pytest_agentsdk import forked

pytestmark = pytest.mark.skipif(not forked.can_fork(), reason="no os.fork here, or threads running")

COUNTER = {"n": 0}


def _bump_and_report(label: str, wait_for: str | None, pipes: dict[str, tuple[int, int]]) -> Callable[[], tuple[str, int]]:
    def job() -> tuple[str, int]:
        if wait_for is not None:  # finish only after the job named here has finished
            os.read(pipes[wait_for][0], 1)
        COUNTER["n"] += 1
        if label in pipes:
            os.write(pipes[label][1], b"x")
        return label, COUNTER["n"]

    return job


def test_results_come_in_job_order_each_from_the_parent_s_state() -> None:
    """Job a finishes only after job b (the pipe makes it so): a is still reported first, and
    neither sees the other's change to the module state."""
    pipes = {"b": os.pipe()}
    try:
        jobs = [_bump_and_report("a", "b", pipes), _bump_and_report("b", None, pipes), _bump_and_report("c", None, pipes)]
        results = list(forked.run(jobs, 2, lambda i, why: ("crashed", i)))
    finally:
        for read, write in pipes.values():
            os.close(read)
            os.close(write)
    assert results == [("a", 1), ("b", 1), ("c", 1)]
    assert COUNTER["n"] == 0


def test_a_job_that_finishes_starts_the_next_while_an_earlier_one_still_runs() -> None:
    """Two workers; job a runs until job c has run. When b finishes, c must start then (a core
    idle behind a long job is what made a check wait), not once a is done: a would never be."""
    read, write = os.pipe()

    def waits_for_c() -> str:
        ready, _, _ = select.select([read], [], [], 10.0)
        return "a after c" if ready else "a starved: c never started"

    def c() -> str:
        os.write(write, b"x")
        return "c"

    try:
        results = list(forked.run([waits_for_c, lambda: "b", c], 2, lambda i, why: f"crashed {i}: {why}"))
    finally:
        os.close(read)
        os.close(write)
    assert results == ["a after c", "b", "c"]


def test_a_job_collects_only_what_it_made_and_the_parent_s_collector_is_left_as_it_was() -> None:
    """What the parent holds is frozen in its forks, so a collection in a fork never touches (and
    copies) the parent's pages; the parent itself collects everything, even while its results are
    still being read."""
    parent_object = [[]]  # a container: the collector tracks it
    frozen_before = gc.get_freeze_count()

    def job() -> tuple[int, bool]:
        return gc.get_freeze_count(), any(o is parent_object for o in gc.get_objects())

    results = forked.run([job, job], 1, lambda i, why: (-1, True))
    frozen_in_job, parent_object_collectable = next(results)
    assert frozen_in_job > 0 and not parent_object_collectable
    assert gc.get_freeze_count() == frozen_before
    assert [collectable for _, collectable in results] == [False]
    assert gc.get_freeze_count() == frozen_before


def test_a_child_that_dies_gives_the_crashed_result() -> None:
    def dies() -> str:
        os.kill(os.getpid(), signal.SIGKILL)
        return "unreachable"

    results = list(forked.run([lambda: "fine", dies], 2, lambda i, why: f"crashed {i}: {why}"))
    assert results[0] == "fine"
    assert results[1] == "crashed 1: the process judging it died (killed by signal 9) without a result"


def test_check_reports_the_same_whatever_jobs_is() -> None:
    """One judgement per fork from the same parent state: --jobs changes the time, not the report."""
    cmd = [sys.executable, "-m", "pytest_agentsdk", "check", "--json", "-q", "--seed", "3", "--examples", "3",
           "--bug", "premature_completion"]
    reports = [subprocess.run(cmd + ["--jobs", jobs], capture_output=True, text=True, check=False).stdout for jobs in ("1", "2")]
    assert reports[0] and reports[0] == reports[1]

