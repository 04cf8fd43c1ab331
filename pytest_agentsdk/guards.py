"""The guards to run in production, around your own SDK sessions: importing this module needs the
SDK and anyio only (neither pytest nor Hypothesis is imported), so an application can keep them on.

* :func:`find_untruthful_completions` / :func:`assert_truthful_completions`: subagents reported
  ``completed`` that stopped mid-work (premature completion), from the messages a session yielded;
* :class:`RecordingClient` + :func:`judge_session` / :func:`assert_turn_isolation`: did each
  ``receive_response()`` call yield only its own turn (late task notification), judged on a
  ScriptedTransport's log;
* :func:`assert_clean_teardown` / :class:`TeardownWatch`: a run whose teardown printed a
  cancel-scope error, "Task exception was never retrieved" and the like (cross-task close); one
  that showed only warnings (a ResourceWarning) warns, :class:`TeardownWarning`.

Each ``assert_*`` raises its bug's :class:`BugShown` (an AssertionError naming the bug).
"""

from __future__ import annotations

from .completions import UntruthfulCompletion, assert_truthful_completions, find_untruthful_completions
from .isolation import Isolation, assert_turn_isolation, judge_session
from .observe import TeardownWatch, assert_clean_teardown
from .recording import RecordingClient
from .shown import BugShown, CrossTaskCloseShown, LateTaskNotificationShown, PrematureCompletionShown, TeardownWarning

__all__ = [
    "BugShown",
    "CrossTaskCloseShown",
    "Isolation",
    "LateTaskNotificationShown",
    "PrematureCompletionShown",
    "RecordingClient",
    "TeardownWarning",
    "TeardownWatch",
    "UntruthfulCompletion",
    "assert_clean_teardown",
    "assert_truthful_completions",
    "assert_turn_isolation",
    "find_untruthful_completions",
    "judge_session",
]
