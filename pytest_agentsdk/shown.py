"""What a guard raises when it sees one of the three bugs: an AssertionError (a test fails on it as
on any assert) that names the bug, so ``@pytest.mark.agentsdk_known_bug`` can tell the known bug
showing from any other failure, which it never hides; and what it warns of when the bug showed only
as warnings do (a ResourceWarning, an async generator's GC warning)."""

from __future__ import annotations


class BugShown(AssertionError):
    """A guard saw ``bug``'s manifestations (the message says which)."""

    bug = ""


class CrossTaskCloseShown(BugShown):
    bug = "cross_task_close"


class LateTaskNotificationShown(BugShown):
    bug = "late_task_notification"


class PrematureCompletionShown(BugShown):
    bug = "premature_completion"


class TeardownWarning(UserWarning):
    """A teardown that showed cross_task_close only as warnings do (a ResourceWarning, trio's
    warning that an async generator was garbage collected unfinished): ``check`` calls that
    ``warnings``, not ``reproduced``, so a guard warns rather than fails; ``-W error`` fails on it."""


#: bug name -> what its guards raise
SHOWN: dict[str, type[BugShown]] = {cls.bug: cls for cls in (CrossTaskCloseShown, LateTaskNotificationShown, PrematureCompletionShown)}
