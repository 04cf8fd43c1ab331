"""Repro of anthropics/claude-code#47936 on the scripted CLI: a subagent stops mid-work
(stop_reason None, a tool call pending) and the parent is told ``completed``.

Two background research agents run; one dies after two tool results with a third call pending, the
other finishes. The CLI announces both as ``completed``; only the finished one carries a result.
This prints the two notifications the consumer received, as the seed report shows them, then the
dead agent's last messages. The lie is made by the CLI; exit 1 means the installed SDK passed it
through to the consumer as ``completed`` untouched (exit 0: the SDK flagged or converted it).

    python repros/subagent_stop_reason_none.py [--backend asyncio|trio]
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from pytest_agentsdk.bugs import premature_completion as pc


def render(notification: Any, descriptions: dict[str, str]) -> list[str]:
    """A TaskNotificationMessage as the ``<task-notification>`` block the parent model reads."""
    data = notification.data
    usage = data.get("usage") or {}
    lines = [
        "<task-notification>",
        f"<task-id>{notification.task_id}</task-id>",
        f"<tool-use-id>{data.get('tool_use_id')}</tool-use-id>",
        f"<output-file>{notification.output_file}</output-file>",
        f"<status>{notification.status}</status>",
    ]
    if data.get("summary_is_report"):
        lines.append(f'<summary>Agent "{descriptions.get(notification.task_id)}" {notification.status}</summary>')
        lines += ["<result>", notification.summary, "</result>"]
    else:
        lines.append(f"<summary>{notification.summary}</summary>")
    lines.append(f"<usage><tool_uses>{usage.get('tool_uses')}</tool_uses></usage>")
    return lines + ["</task-notification>"]


def side_by_side(left: list[str], right: list[str], heads: tuple[str, str]) -> list[str]:
    left, right = [heads[0], *left], [heads[1], *right]
    width = max(map(len, left))
    rows = max(len(left), len(right))
    left, right = left + [""] * (rows - len(left)), right + [""] * (rows - len(right))
    return [f"{a:<{width}} | {b}".rstrip() for a, b in zip(left, right)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("asyncio", "trio"), default="asyncio")
    args = parser.parse_args()

    import claude_agent_sdk

    if not hasattr(claude_agent_sdk, "TaskNotificationMessage"):
        print(f"claude-agent-sdk {claude_agent_sdk.__version__} has no typed task messages: not applicable", file=sys.stderr)
        return 2
    session = pc.run_session(pc.seed_example(), args.backend)
    received = session.received
    notes = [m for m in received if isinstance(m, claude_agent_sdk.TaskNotificationMessage)]
    descriptions = {m.task_id: m.description for m in received if isinstance(m, claude_agent_sdk.TaskStartedMessage)}
    dead_id, done_id = pc.agent_ids(0)[0], pc.agent_ids(1)[0]
    dead = next(m for m in notes if m.task_id == dead_id)
    done = next(m for m in notes if m.task_id == done_id)

    print(f"claude-agent-sdk {claude_agent_sdk.__version__}, scripted CLI, {args.backend}: what the consumer received\n")
    heads = ("agent that stopped mid-work", "agent that finished")
    print("\n".join(side_by_side(render(dead, descriptions), render(done, descriptions), heads)))

    truth = {f.task_id: f for f in pc.audit(session.emitted).untruthful}
    lie = truth[dead_id]
    print("\nThe stopped agent's last messages (what the CLI emitted):")
    print("\n".join(f"  {line}" for line in lie.last_frames))
    guard = pc.find_untruthful_completions(received)
    print("\nfind_untruthful_completions(messages) on what the consumer received:")
    print("\n".join(f"  {f}" for f in guard) or "  nothing flagged (this release's typed messages cannot show it)")

    reproduced = dead.status == "completed"
    print(
        f"\n{'REPRODUCED' if reproduced else 'NOT REPRODUCED'}: the CLI reported task {dead_id} completed although {lie.reason}; "
        + ("the SDK handed that claim to the consumer untouched." if reproduced else f"the SDK reported it as {dead.status!r}.")
    )
    return 1 if reproduced else 0


if __name__ == "__main__":
    sys.exit(main())
