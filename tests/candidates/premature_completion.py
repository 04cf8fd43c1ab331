"""Candidates for bug 3 (premature completion): parsers that change the typed ``status`` of a
``TaskNotificationMessage`` (``data`` keeps what the CLI said, so only an oracle reading the typed
field sees them).

| candidate | what it changes | expected change vs the base release |
|---|---|---|
| all_failed | every task_notification is reported ``failed`` | regresses: ``truthful_reported_failed`` new; the lie still reaches the consumer through ``TaskUpdatedMessage`` (a completion sent as task_updated, alone or before the notification) |
| flag_unfinished | a ``completed`` task_notification without a result (``result`` / ``summary_is_report``) is reported ``failed`` | regresses: the seed's lie is caught, but an agent that ended its turn cleanly with no result in its report is a false alarm (``truthful_reported_failed``); the lie still passes when the report carries a result while a tool call is left pending, and through ``TaskUpdatedMessage``, which carries no result to judge by |
| judge_the_agent | the reader follows each background subagent's transcript (tool calls answered, its last stop_reason); a ``completed`` task_notification for one is reported ``failed`` when a tool call or a tool result is left unanswered, or when its report has no result and the agent did not end its turn (last ``stop_reason`` not ``end_turn``); a foreground agent is left alone (its result is the parent's tool result, which comes after the notification; the real CLI streams neither its last message nor a result in the notification, so judging it by its transcript reports a clean finish failed: over the real CLI one ends on its last tool result); a ``completed`` task_updated is not passed on (the notification that follows carries the news, and its result) | narrows: every background lie the frames show is reported failed and no clean finish is, but the lie a result hides (a cut text the CLI sent as the result) and the foreground lies still pass; drops ``task_report`` where a completion is announced by task_updated alone. Over the real CLI 2.1.330 it still reproduces: that CLI sends every background lie of its stories with a result, or reports it failed itself. Judged on every bug (``verify`` without ``--bug``) it regresses late_task_notification: the task_updated frames it holds back never reach the consumer (``dropped:task_lifecycle``, and ``dropped:turn`` for a foreground agent, whose frames are its turn's) |

The first two are not fixes: the notification alone does not say whether the agent finished (a
clean ``end_turn`` may come without a result, a pending tool call with one), and the task_updated
patch that announces the same completion arrives first, with no result at all. judge_the_agent
reads the agent's own transcript, as the guard does, and is as blind as the guard where a result
hides the lie: no SDK-side change fixes bug 3 whole, only a CLI that tells. Judging a foreground
agent too made it report the real CLI's clean foreground finishes failed, a regression that only
the real CLI's foreground clean-finish story (and the scripted CLI's faithful foreground report)
showed.
"""

from __future__ import annotations

from pytest_agentsdk.mutants import MUTANTS

from ._patch import Patch

_NOTIFICATION_STATUS = '                            status=data["status"],\n                            output_file=data["output_file"],\n'

CANDIDATES: dict[str, tuple[Patch, ...]] = {
    "all_failed": MUTANTS["all_failed"].patches,
    "flag_unfinished": (
        Patch(
            "_internal/message_parser.py",
            _NOTIFICATION_STATUS,
            '                            status=(\n'
            '                                "failed"\n'
            '                                if data["status"] == "completed"\n'
            '                                and not (data.get("result") or data.get("summary_is_report"))\n'
            '                                else data["status"]\n'
            '                            ),\n'
            '                            output_file=data["output_file"],\n',
        ),
    ),
    "judge_the_agent": (
        Patch(
            "_internal/query.py",
            "                # Regular SDK messages go to the stream\n",
            "                # judge_the_agent: follow each background subagent's transcript; tell a completion it did not reach\n"
            '                agents = self.__dict__.setdefault("_agent_transcripts", {})\n'
            '                background = self.__dict__.setdefault("_background_spawns", set())\n'
            '                if msg_type == "system" and message.get("subtype") == "task_started" and message.get("is_backgrounded"):\n'
            '                    background.add(message.get("tool_use_id"))\n'
            '                if msg_type in ("assistant", "user") and message.get("parent_tool_use_id"):\n'
            '                    agent = agents.setdefault(message["parent_tool_use_id"], {"pending": set(), "last": None})\n'
            '                    blocks = [b for b in (message.get("message") or {}).get("content") or [] if isinstance(b, dict)]\n'
            "                    for block in blocks:\n"
            '                        if block.get("type") == "tool_use":\n'
            '                            agent["pending"].add(block.get("id"))\n'
            '                        elif block.get("type") == "tool_result":\n'
            '                            agent["pending"].discard(block.get("tool_use_id"))\n'
            '                    if msg_type == "assistant":\n'
            '                        agent["last"] = (message.get("message") or {}).get("stop_reason")\n'
            '                    elif any(b.get("type") == "tool_result" for b in blocks):\n'
            '                        agent["last"] = "tool_result"\n'
            '                if msg_type == "system" and message.get("subtype") == "task_updated" and (message.get("patch") or {}).get("status") == "completed":\n'
            "                    continue\n"
            '                if msg_type == "system" and message.get("subtype") == "task_notification" and message.get("status") == "completed":\n'
            '                    agent = agents.get(message.get("tool_use_id")) if message.get("tool_use_id") in background else None\n'
            '                    has_result = bool(message.get("result") or message.get("summary_is_report"))\n'
            '                    if agent is not None and (agent["pending"] or agent["last"] == "tool_result" or (not has_result and agent["last"] != "end_turn")):\n'
            '                        message = {**message, "status": "failed"}\n'
            "                # Regular SDK messages go to the stream\n",
        ),
    ),
}
