"""record: a real CLI's trace becomes a Script whose replay shows the same bug, in milliseconds."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio

from pytest_agentsdk import ScriptedTransport
from pytest_agentsdk.isolation import judge_session
from pytest_agentsdk.record import record
from pytest_agentsdk.script import Script

DATA = Path(__file__).parent / "data"
TRACE = DATA / "c_client_bg_2turn.timed.jsonl"  # reference/traces: CLI 2.1.330 under SDK 0.2.187, two turns, a background agent


def _two_turns(script: Script) -> tuple[ScriptedTransport, list[list[Any]]]:
    transport = ScriptedTransport(script)
    turns: list[list[Any]] = []

    async def main() -> None:
        from claude_agent_sdk import ClaudeSDKClient

        async with ClaudeSDKClient(transport=transport) as client:
            for prompt in ("spawn a background agent", "second turn"):
                await client.query(prompt)
                turns.append([m async for m in client.receive_response()])

    anyio.run(main)
    return transport, turns


def test_a_recorded_incident_replays_as_the_same_misattributed_turn() -> None:
    script = record(TRACE)
    # between the turns: the background agent's frames (task:ID), then the CLI's own reaction turn
    assert [(s.name, s.cause.split(":")[0]) for s in script.segments] == [
        ("turn0", "prompt"), ("after_turn0", "task"), ("after_turn0_1", "cli"), ("turn1", "prompt"), ("after_turn1", "recorded")]
    transport, turns = _two_turns(script)
    isolation = judge_session(transport, turns)
    # what the trace shows: turn 2 yields the background agent's frames and the CLI's own
    # reaction turn, and ends on that turn's result
    assert {"misattributed", "stale:cli_turn", "stale:task_notification", "stale:subagent"} <= set(isolation.manifestations)
    (report,) = [t for t in isolation.turns if t.misattributed]
    assert report.turn == 1 and report.ended_on is not None and report.ended_on.startswith("result of cli:task:")


def test_record_command_prints_a_script_and_rejects_what_is_not_a_capture(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "pytest_agentsdk", "record", str(TRACE)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert Script.from_json(json.loads(done.stdout)).segments[0].name == "turn0"
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"type": "assistant"}\nnot json\n')
    done = subprocess.run([sys.executable, "-m", "pytest_agentsdk", "record", str(bad)], capture_output=True, text=True)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.strip().endswith("bad.jsonl:2: not JSON (Expecting value)") and len(done.stderr.strip().splitlines()) == 1


def test_record_refuses_the_sdk_s_writes_as_the_capture_and_names_each_bad_path(tmp_path: Path) -> None:
    stdin = tmp_path / "session.stdin.jsonl"  # what the SDK writes: its initialize request, then the prompt
    stdin.write_text(json.dumps({"type": "control_request", "request_id": "req_1", "request": {"subtype": "initialize"}}) + "\n"
                     + json.dumps({"type": "user", "message": {"role": "user", "content": "hi"}}) + "\n")

    def said(*args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "pytest_agentsdk", "record", *args], capture_output=True, text=True, cwd=tmp_path)
        assert (done.returncode, done.stdout) == (2, ""), done.stderr
        return done.stderr.strip()

    assert said(str(stdin)).endswith("the capture holds what the SDK writes (its initialize request): give it as --stdin, "
                                     "and the CLI's stdout as the capture")
    assert said(str(TRACE), "--stdin", "nope.jsonl").endswith("--stdin nope.jsonl: no such file; give the SDK's writes beside a "
                                                              "stdout capture (JSONL)")
    assert said(str(tmp_path)).endswith(f"capture {tmp_path}: a directory; give a stdout capture (JSONL) or a timed trace")
    assert said(str(TRACE), "--out", "no/such/dir/x.json").endswith("--out no/such/dir/x.json: directory no/such/dir does not exist; "
                                                                    "create it or write elsewhere")
