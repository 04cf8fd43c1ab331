"""Scripts are data: they round-trip through JSON and bad ones are rejected naming the field."""

from __future__ import annotations

import json

import pytest
from hypothesis import find, given

from pytest_agentsdk import wire
from pytest_agentsdk.script import ControlReply, Script, ScriptError, one_of
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


def _task_segment(s: Script):
    return s.segment("task:t1")


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda s: s.segments[0].frames[0].update(type=7), "frames[0]"),
        (lambda s: s.segments[0].frames[1].update(type="control_response"), "control_response"),
        (lambda s: s.segments[0].frames[0].update(subtype="task_progress"), "task_id"),
        (lambda s: _task_segment(s).frames[0].update(task_id="ghost"), "task_id"),
        (lambda s: s.segments[0].frames.__setitem__(0, "hello"), "frames[0]"),
        (lambda s: setattr(s.segments[0], "gap", False), "gap"),  # == 0, not a count
        (lambda s: setattr(s.segments[0], "optional", 0), "optional"),  # == False, not a flag
        (lambda s: setattr(s.segments[0].trigger, "prompt", False), "trigger.prompt"),
        (lambda s: setattr(_task_segment(s).trigger, "delay", -1), "trigger.delay"),
        (lambda s: setattr(_task_segment(s).trigger, "on_block", 0), "on_block"),
        (lambda s: _task_segment(s).trigger.after.__setitem__(1, 99), "trigger.after"),
        (lambda s: _task_segment(s).trigger.after.__setitem__(1, True), "trigger.after"),  # == 1
        (lambda s: setattr(s.control["interrupt"], "never", 0), "never"),
        (lambda s: setattr(s.control["interrupt"], "payload", []), "payload"),
        (lambda s: s.checkpoints.update(close=True), "checkpoints.close"),
        (lambda s: s.checkpoints.update(read=2.0), "checkpoints.read"),
        (lambda s: s.delays.update(close=-0.5), "delays.close"),
        (lambda s: setattr(s, "session_id", ""), "session_id"),
        (lambda s: s.segments.append("turn"), "segments[3]"),
        (lambda s: setattr(_task_segment(s).trigger, "after", 5), "trigger.after"),
    ],
)
def test_a_script_changed_in_place_after_it_passed_is_checked_again(mutate, field) -> None:
    """connect() skips checking a script that passed and has not changed: every change counts."""
    script = two_turns()
    _task_segment(script).trigger.after = ["turn0", 1]
    assert script.validate() is script
    mutate(script)
    with pytest.raises(ScriptError) as err:
        script.validate()
    assert field in str(err.value)


class _Frame(dict):
    pass


class _Reply(ControlReply):
    pass


@pytest.mark.parametrize(
    ("prepare", "mutate", "field"),
    [
        (lambda s: s.segments[0].frames.__setitem__(1, _Frame(s.segments[0].frames[1])),
         lambda s: s.segments[0].frames[1].update(type="control_response"), "control_response"),
        (lambda s: s.control.__setitem__("interrupt", _Reply(error="not now")),
         lambda s: setattr(s.control["interrupt"], "never", 0), "never"),
    ],
)
def test_a_script_of_subclasses_is_checked_every_time(prepare, mutate, field) -> None:
    """What the memo cannot see into (a dict or ControlReply subclass) is never taken as unchanged."""
    script = two_turns()
    prepare(script)
    script.validate()
    mutate(script)
    with pytest.raises(ScriptError) as err:
        script.validate()
    assert field in str(err.value)


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


def segment_json(**fields) -> dict:
    """A script's JSON with one segment whose fields are overridden by ``fields`` (None removes one)."""
    segment = {"name": "turn0", "cause": "prompt:0", "trigger": {"prompt": 0}, "frames": [wire.result()], "gap": 0, "optional": False}
    segment.update(fields)
    return {"segments": [{k: v for k, v in segment.items() if v is not None}]}


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ("not an object", "script: 'not an object' must be a JSON object"),
        ({"segmets": []}, "script.segmets: unknown field"),
        ({"segments": "abc"}, "segments: 'abc' must be a list"),
        ({"segments": ["abc"]}, "segments[0]: 'abc' must be a JSON object"),
        (segment_json(name=None), "segments[0].name: missing"),
        (segment_json(name=5), "segments[0].name: 5 must be a non-empty string"),
        (segment_json(cause=["x"]), "segments[turn0].cause"),
        (segment_json(frames="abc"), "segments[turn0].frames: 'abc' must be a list of frame objects"),
        (segment_json(frames=["abc"]), "segments[turn0].frames[0]: 'abc' (str) is not a frame"),
        (segment_json(frames=[{"type": 3}]), "segments[turn0].frames[0]: a frame is a JSON object with a string 'type'"),
        (segment_json(frame=[]), "segments[0].frame: unknown field"),
        (segment_json(gap=True), "segments[turn0].gap"),
        (segment_json(optional="no"), "segments[turn0].optional: 'no' must be true or false"),
        (segment_json(trigger="soon"), "segments[0].trigger: 'soon' must be a JSON object"),
        (segment_json(trigger={"promt": 0}), "segments[0].trigger.promt: unknown field"),
        (segment_json(trigger={"prompt": "0"}), "segments[turn0].trigger.prompt"),
        (segment_json(trigger={"after": ["b"]}), "segments[turn0].trigger.after: ['b'] must be a (segment name, frame index) pair"),
        (segment_json(trigger={"after": ["turn0", "1"]}), "segments[turn0].trigger.after[1]: '1' must be a whole number"),
        (segment_json(trigger={"on_block": 1}), "segments[turn0].trigger.on_block: 1 must be true or false"),
        ({**segment_json(), "control": []}, "control: [] must be a JSON object"),
        ({**segment_json(), "control": {"interrupt": "yes"}}, "control.interrupt: 'yes' must be a JSON object"),
        ({**segment_json(), "control": {"interrupt": {"payload": 1}}}, "control.interrupt.payload: 1 must be a JSON object or null"),
        ({**segment_json(), "control": {"interrupt": {"never": "no"}}}, "control.interrupt.never"),
        ({**segment_json(), "session_id": 3}, "session_id: 3 must be a non-empty string"),
        ({**segment_json(), "delays": {"read": True}}, "delays.read"),
    ],
)
def test_every_field_of_a_json_script_is_checked(data, field) -> None:
    with pytest.raises(ScriptError) as err:
        Script.from_json(data)
    assert field in str(err.value) and "\n" not in str(err.value)


def test_a_json_script_with_every_field_set_loads() -> None:
    data = two_turns().to_json()
    assert Script.from_json(data).to_json() == data


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda s: s.turn("str"), "Script.turn(frame 0): 'str' (str) is not a frame"),
        (lambda s: s.turn(wire.result(), 42), "Script.turn(frame 1): 42 (int) is not a frame"),
        (lambda s: s.turn(wire.result(), prompt="1"), "Script.turn(prompt=...)"),
        (lambda s: s.turn(wire.result(), gap=-1), "Script.turn(gap=...)"),
        (lambda s: s.turn(wire.result(), name=""), "Script.turn(name=...)"),
        (lambda s: s.event(7, wire.result()), "Script.event(name): 7 must be a non-empty string"),
        (lambda s: s.event("t", "str", on_block=True), "Script.event('t', frame 0)"),
        (lambda s: s.event("t", wire.result(), after="turn0"), "Script.event(after=...): 'turn0' must be a (segment name, frame index) pair"),
        (lambda s: s.event("t", wire.result(), after=("turn0",)), "Script.event(after=...): ('turn0',)"),
        (lambda s: s.event("t", wire.result(), after=("turn0", "2")), "Script.event(after=...)[1]"),
        (lambda s: s.event("t", wire.result(), after=5), "Script.event(after=...): 5"),
        (lambda s: s.event("t", wire.result(), on_block="yes"), "Script.event(on_block=...)"),
        (lambda s: s.event("t", wire.result(), on_block=True, delay=1.5), "Script.event(delay=...)"),
        (lambda s: s.reply(3), "Script.reply(subtype)"),
        (lambda s: s.reply("interrupt", "yes"), "Script.reply.payload: 'yes'"),
        (lambda s: s.reply("interrupt", error=5), "Script.reply.error"),
    ],
)
def test_builders_reject_bad_arguments_naming_them(build, message) -> None:
    with pytest.raises(ScriptError) as err:
        build(Script())
    assert message in str(err.value) and "\n" not in str(err.value)


def test_a_list_after_pair_is_accepted_like_a_tuple() -> None:
    script = Script().turn(wire.result()).event("t", wire.result(), after=["turn0", 0]).validate()
    assert script.segment("t").trigger.after == ("turn0", 0)


def test_a_turn_s_own_frame_after_its_result_is_refused_and_a_system_frame_is_not() -> None:
    """A real CLI ends a turn with its result: an assistant frame scripted after it would leak into
    the next receive_response() by the script's doing, not the SDK's; an event says it instead."""
    with pytest.raises(ScriptError, match=r"^segments\[turn0\]\.frames\[1\]: an assistant frame after the turn's result \(frames\[0\]\)"
                                          r".*\.event\('late', \.\.\., after=\('turn0', 0\)\)$"):
        Script().turn(wire.result("4"), wire.assistant("4")).turn(wire.result("6")).validate()
    Script().turn(wire.result("4"), wire.session_state_changed("idle", sdk_host_only=True)).validate()  # what the CLI sends after it
    Script().turn(wire.result("4")).event("late", wire.assistant("late"), after=("turn0", 0)).validate()


def test_a_choice_is_checked_by_type_and_value_and_a_misspelt_one_is_named() -> None:
    """``one_of`` behind every example's and script's choices: 1 is no True, a list no pattern
    name (no crash on an unhashable value), a missing field says so, a near miss gets its match."""
    assert one_of("x", False, (True, False)) is False
    with pytest.raises(ScriptError, match=r"^x: 1 is not one of True, False$"):
        one_of("x", 1, (True, False))
    with pytest.raises(ScriptError, match=r"^example\.pattern: \['aclosing'\] is not one of aclosing, complete$"):
        one_of("example.pattern", ["aclosing"], {"aclosing": None, "complete": None})
    with pytest.raises(ScriptError, match=r"^x: missing; give one of a, b$"):
        one_of("x", None, ("a", "b"), missing=True)
    with pytest.raises(ScriptError, match=r"^eof: 'closed' is not one of end_input, close \(did you mean 'close'\?\)$"):
        one_of("eof", "closed", ("end_input", "close"))
