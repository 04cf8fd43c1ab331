"""Candidates for bug 1 (cross-task close), over claude-agent-sdk 0.2.187.

| candidate | what it changes | expected change vs 0.2.187 |
|---|---|---|
| cross_task_scope | the reader runs in an anyio task group that ``start()`` enters and ``close()`` cancels and exits, as 0.1.48 did; ``close()`` runs in whatever task finalizes the generator | regresses: ``cancel_scope_cross_task`` new |
| slow_close | ``Query.close()`` waits 50 ms before closing the transport (a slow teardown, as a subprocess's exit is) | regresses: judged by the oracle, see tests/test_cross_task_close.py |
"""

from __future__ import annotations

from ._patch import Patch

_CLOSE_READER = (
    "        if self._read_task is not None and not self._read_task.done():\n"
    "            self._read_task.cancel()\n"
    "            await self._read_task.wait()\n"
    "        self._read_task = None\n"
)

CANDIDATES: dict[str, tuple[Patch, ...]] = {
    "cross_task_scope": (
        Patch(
            "_internal/query.py",
            "        if self._read_task is None:\n            self._read_task = spawn_detached(self._read_messages())\n",
            '        if getattr(self, "_tg", None) is None:\n'
            "            self._tg = anyio.create_task_group()\n"
            "            await self._tg.__aenter__()\n"
            "            self._tg.start_soon(self._read_messages)\n",
        ),
        Patch(
            "_internal/query.py",
            _CLOSE_READER,
            '        if getattr(self, "_tg", None) is not None:\n'
            "            self._tg.cancel_scope.cancel()\n"
            "            with suppress(anyio.get_cancelled_exc_class()):\n"
            "                await self._tg.__aexit__(None, None, None)\n"
            "            self._tg = None\n",
        ),
    ),
    "slow_close": (
        Patch("_internal/query.py", _CLOSE_READER, _CLOSE_READER + "        await anyio.sleep(0.05)\n"),
    ),
}
