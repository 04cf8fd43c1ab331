"""Candidates for bug 1 (cross-task close), over claude-agent-sdk 0.2.187.

0.2.187 itself is not clean on asyncio (``check --seed 0 --examples 5``: verdict ``hang``): a
generator dropped in a reference cycle, collected, and ``asyncio.run`` returning at once still
exits ``Query.close()``'s own shield scope from another task (``cancel_scope_cross_task`` in
break_then_drop and exception_in_body, checkpoints timing), and with real transport delays the
shutdown never returns (``shutdown_hang``). So a candidate that brings the cross-task exit back
shows no *new* name in the union: verify sees it spread to patterns that were free of it
(``new_in_patterns``, judged on the sweep, the same examples on both sides).

| candidate | what it changes | expected change vs 0.2.187 |
|---|---|---|
| cross_task_scope | the reader runs in an anyio task group that ``start()`` enters and ``close()`` cancels and exits, as 0.1.48/0.1.50 did; ``close()`` runs in whatever task finalizes the generator, and inside 0.2.187's own shield scope | regresses: new ``cancel_scope_misnested``, ``consumer_error``, ``result_missing``, ``stray_cancellation`` (the exit is misnested under the shield scope even in the consumer's own task, so ``complete``, timeouts and both client patterns fail too); ``cancel_scope_cross_task`` new in break_then_return, aclose_other_task, aclosing, exception_escapes_run, wait_for_loop, wait_for_new_task; no pattern left safe. On trio it regresses too, ``cancel_scope_cross_task`` new in the union: the exit corrupts trio's cancel scope stack, which is the bug shown, not a release that cannot run there (the other bugs' sessions fail on it: errors on both backends) |
| close_is_noop (real CLI) | ``SubprocessCLITransport.close()`` returns at once, leaving the CLI process and its pipes to the garbage collector: a change to the subprocess transport itself, which only the real-CLI mode runs | over the real CLI: regresses, ``transport_not_closed`` new in the ClaudeSDKClient patterns (safe on the base: the CLI, its stdin still open, waits for input past the program's end); query() patterns close stdin first, so that CLI exits by itself; over the scripted CLI: unchanged (the scripted transport replaces the subprocess one) |
| slow_close | ``Query.close()`` waits 50 ms after stopping the reader, before closing the transport (a slow teardown, as a subprocess's exit is) | regresses: nothing new in the union, but ``transport_not_closed`` new in break_then_return: a consumer returning from ``asyncio.run`` at once has the finalizer's close cancelled by the loop's shutdown mid-sleep, so the CLI is never closed (even with an instant transport). ``cancel_scope_cross_task`` and ``shutdown_task_error`` are gone, but not fixed: the same examples now hang the shutdown (``shutdown_hang``, already in the base's union), because close() is still asleep when the shutdown cancels it instead of between two checkpoints |
"""

from __future__ import annotations

from pytest_agentsdk.mutants import MUTANTS

from ._patch import Patch

CANDIDATES: dict[str, tuple[Patch, ...]] = {
    "cross_task_scope": MUTANTS["task_group_reader"].patches,
    "close_is_noop": (
        Patch(
            "_internal/transport/subprocess_cli.py",
            "        if not self._process:\n            self._ready = False\n            return\n",
            "        self._ready = False\n        return  # close_is_noop: the process and its pipes are left to the GC\n",
        ),
    ),
    "slow_close": MUTANTS["slow_close"].patches,
}
