"""Candidates for bug 3 (premature completion): parsers that change the typed ``status`` of a
``TaskNotificationMessage`` (``data`` keeps what the CLI said, so only an oracle reading the typed
field sees them).

| candidate | what it changes | expected change vs the base release |
|---|---|---|
| all_failed | every task_notification is reported ``failed`` | regresses: ``truthful_reported_failed`` new; the lie still reaches the consumer through ``TaskUpdatedMessage`` (a completion sent as task_updated, alone or before the notification) |
| flag_unfinished | a ``completed`` task_notification without a result (``result`` / ``summary_is_report``) is reported ``failed`` | regresses: the seed's lie is caught, but an agent that ended its turn cleanly with no result in its report is a false alarm (``truthful_reported_failed``); the lie still passes when the report carries a result while a tool call is left pending, and through ``TaskUpdatedMessage``, which carries no result to judge by |

Neither is a fix: the notification alone does not say whether the agent finished (a clean
``end_turn`` may come without a result, a pending tool call with one), and the task_updated
patch that announces the same completion arrives first, with no result at all.
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
}
