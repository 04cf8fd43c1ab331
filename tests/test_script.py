"""Scripts are data: they round-trip through JSON and bad ones are rejected naming the field."""

from __future__ import annotations

import json

import pytest
from hypothesis import find, given

from pytest_agentsdk import wire
from pytest_agentsdk.script import Script, ScriptError
from pytest_agentsdk.strategies import bug_examples, transport_checkpoints


def two_turns() -> Script:
    return (
        Script(eof="close", checkpoints={"read": 2, "close": 1})
        .turn(wire.system_init(), wire.assistant(wire.tool_use("toolu_1", "Agent")), wire.task_started("t1"), wire.result("one"))
        .turn(wire.assistant("two"), wire.result("two"))
        .event("task:t1", wire.task_notification("t1"), after=("turn0", 3), delay=2)
        .reply("interrupt", error="not now")
    )


def test_json_round_trip_is_lossless() -> None:
    script = two_turns()
    again = Script.loads(script.dumps())
    assert again.to_json() == script.to_json()
    assert again.segment("task:t1").trigger.after == ("turn0", 3)
    assert again.control_reply("interrupt").error == "not now"


def test_turns_answer_prompts_in_order() -> None:
    script = two_turns()
    assert [s.cause for s in script.segments] == ["prompt:0", "prompt:1", "task:t1"]
    assert script.control_reply("initialize").payload["commands"] == []


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda s: s.turn({"type": "bogus"}), "frames[0].type"),
        (lambda s: s.turn(wire.task_notification("ghost")), "task_id"),
        (lambda s: s.checkpoints.update(close=-1), "checkpoints.close"),
        (lambda s: s.checkpoints.update(flush=1), "checkpoints.flush"),
        (lambda s: s.turn(wire.control_response("req_9")), "control_response"),
        (lambda s: s.event("x", wire.result(), after=("nowhere", 0)), "trigger.after"),
        (lambda s: s.event("y", wire.result(), after=("turn0", 99)), "trigger.after"),
        (lambda s: s.event("z", wire.result()), "trigger"),
        (lambda s: s.event("task:t1", wire.result(), on_block=True), "used twice"),
        (lambda s: setattr(s, "eof", "never"), "eof"),
    ],
)
def test_bad_script_is_rejected_naming_the_field(mutate, field) -> None:
    script = two_turns()
    mutate(script)
    with pytest.raises(ScriptError) as err:
        script.validate()
    message = str(err.value)
    assert field in message and "\n" not in message


def test_loads_rejects_non_json_in_one_line() -> None:
    with pytest.raises(ScriptError, match="not valid JSON"):
        Script.loads("{segments: [")
    with pytest.raises(ScriptError, match="schema"):
        Script.loads('{"schema": 99}')


@given(transport_checkpoints())
def test_drawn_checkpoints_make_valid_scripts(checkpoints: dict[str, int]) -> None:
    assert Script(checkpoints=checkpoints).validate().checkpoints == checkpoints


def test_simplest_checkpoints_suspend_nowhere() -> None:
    assert find(transport_checkpoints(), lambda _: True) == {}


@pytest.mark.parametrize(("bug", "model"), [("cross_task_close", None), ("late_task_notification", "wake-parent"), ("premature_completion", None)])
def test_bug_examples_are_json(bug: str, model: str | None) -> None:
    example = find(bug_examples(bug, model), lambda _: True)
    assert json.loads(json.dumps(example)) == example
