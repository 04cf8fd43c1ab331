"""Every frame the builders make parses with the installed release's own parser."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_agentsdk import wire

SAMPLES = {
    "system/init": wire.system_init(),
    "assistant": wire.assistant(
        wire.thinking("hm"), "text", wire.tool_use("toolu_1", "Bash", {"command": "ls"}),
        stop_reason="tool_use", parent_tool_use_id="toolu_0", agent_id="a1",
    ),
    "user": wire.user_tool_result("toolu_1", "ok", parent_tool_use_id="toolu_0"),
    "result": wire.result("done"),
    "stream_event": wire.stream_event({"type": "message_start"}),
    "rate_limit_event": wire.rate_limit_event(),
    "system/task_started": wire.task_started("t1", tool_use_id="toolu_9"),
    "system/task_progress": wire.task_progress("t1", last_tool_name="Bash"),
    "system/task_notification": wire.task_notification("t1", "completed", result_text="all done"),
    "system/task_updated": wire.task_updated("t1", "failed"),
    "system/session_state_changed": wire.session_state_changed("idle"),
    "system/background_tasks_changed": wire.background_tasks_changed([]),
}


def test_every_consumer_frame_kind_has_a_sample() -> None:
    assert set(SAMPLES) == set(wire.FRAME_KINDS) - {"control_request"}


@pytest.mark.parametrize("kind", sorted(SAMPLES))
def test_built_frame_parses_on_installed_release(kind: str) -> None:
    from pytest_agentsdk.compat import parse_message

    frame = wire.stamp(SAMPLES[kind], "u1")
    assert wire.kind(frame) == kind
    message = parse_message()(frame)
    if kind == "rate_limit_event" and message is None:
        return  # releases before 0.1.50 skip this type by design (WIRE.md 3.2)
    assert message is not None, f"{kind} was dropped by the parser"


def test_typed_task_notification_keeps_status_and_id(sdk_info) -> None:
    if not sdk_info.has("typed_task_messages"):
        pytest.skip(f"claude-agent-sdk {sdk_info.version} has no typed task messages")
    from claude_agent_sdk import TaskNotificationMessage

    from pytest_agentsdk.compat import parse_message

    message = parse_message()(wire.stamp(wire.task_notification("t7", "failed"), "u"))
    assert isinstance(message, TaskNotificationMessage)
    assert (message.task_id, message.status) == ("t7", "failed")


def test_real_cli_frames_parse_like_built_ones() -> None:
    """The builders make the same kinds the real CLI 2.1.330 emitted (reference traces)."""
    examples = Path(__file__).parent / "data" / "real_cli_frame_examples.json"  # shared/reference/traces/FRAME_EXAMPLES.json
    real = {wire.kind(entry["frame"]) for entry in json.loads(examples.read_text()).values()}
    assert set(SAMPLES) - {"stream_event", "rate_limit_event"} <= real | {"system/task_progress"}


def test_control_response_puts_payload_under_response() -> None:
    frame = wire.control_response("req_1", {"commands": []})
    assert frame["response"] == {"subtype": "success", "request_id": "req_1", "response": {"commands": []}}
    assert wire.control_response("req_2", error="boom")["response"]["subtype"] == "error"


def test_task_status_reads_both_report_kinds() -> None:
    assert wire.task_status(wire.task_notification("t", "stopped")) == "stopped"
    assert wire.task_status(wire.task_updated("t", "killed")) == "killed"
    assert wire.task_status(wire.result()) is None


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: wire.assistant(42), "wire.assistant(blocks[0]): expected dict or str, got 42 (int)"),
        (lambda: wire.assistant("ok", None), "wire.assistant(blocks[1]): expected dict or str, got None (NoneType)"),
        (lambda: wire.assistant("ok", stop_reason=3), "wire.assistant(stop_reason=...): expected str or None, got 3 (int)"),
        (lambda: wire.text(None), "wire.text(value): expected str, got None (NoneType)"),
        (lambda: wire.tool_use("t1", "Bash", ["ls"]), "wire.tool_use(input): expected dict or None, got ['ls'] (list)"),
        (lambda: wire.result(num_turns=True), "wire.result(num_turns=...): expected int, got True (bool)"),
        (lambda: wire.result(is_error="no"), "wire.result(is_error=...): expected bool, got 'no' (str)"),
        (lambda: wire.task_started(7), "wire.task_started(task_id): expected str, got 7 (int)"),
        (lambda: wire.task_notification("t1", status=None), "wire.task_notification(status=...): expected str, got None (NoneType)"),
        (lambda: wire.background_tasks_changed("t1"), "wire.background_tasks_changed(tasks): expected list or None, got 't1' (str)"),
        (lambda: wire.control_response("r1", error=RuntimeError("x")), "wire.control_response(error=...)"),
    ],
)
def test_builders_check_argument_types(build, message) -> None:
    with pytest.raises(TypeError) as err:
        build()
    assert message in str(err.value)


def test_builders_keep_their_extra_fields_and_optional_nones() -> None:
    frame = wire.assistant("hi", wire.tool_use("t1", "Bash"), stop_reason=None, agent_id=None, custom={"any": object})
    assert frame["message"]["stop_reason"] is None and frame["custom"] == {"any": object}
    assert wire.tool_result("t1", content=["any", 1])["content"] == ["any", 1]  # content is Any
