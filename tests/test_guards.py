"""The production guards: importable with the SDK alone, one implementation behind every public name."""

from __future__ import annotations

import subprocess
import sys

import pytest_agentsdk
from pytest_agentsdk import guards
from pytest_agentsdk.bugs import late_task_notification, premature_completion


def test_guards_import_neither_pytest_nor_hypothesis() -> None:
    code = ("import sys, pytest_agentsdk.guards; "
            "print(sorted(m for m in ('pytest', '_pytest', 'hypothesis') if m in sys.modules))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.split() == ["[]"]


def test_every_public_name_is_the_guards_own_object() -> None:
    """The bug scenarios build on the guards (not the reverse), and old import paths keep working."""
    shared = set(guards.__all__) & set(pytest_agentsdk.__all__)
    assert shared >= {"find_untruthful_completions", "assert_truthful_completions", "assert_turn_isolation", "assert_clean_teardown"}
    for name in shared:
        assert getattr(pytest_agentsdk, name) is getattr(guards, name), name
    for module, names in ((premature_completion, ("find_untruthful_completions", "assert_truthful_completions", "UntruthfulCompletion")),
                          (late_task_notification, ("assert_turn_isolation", "judge_session", "Isolation"))):
        for name in names:
            assert getattr(module, name) is getattr(guards, name), f"{module.__name__}.{name}"
