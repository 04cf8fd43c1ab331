"""Candidates for bug 2 (late task notification).

| candidate | what it changes | expected verdicts |
|---|---|---|
| turn_epoch | the reader tags each frame with the number of prompts written when it was read; a frame read before the latest prompt is diverted to ``Query.stale_messages`` | notify-only fixed (stale frames show as lost); wake-parent still misattributed |
| turn_epoch_origin | turn_epoch, and ``receive_response()`` does not stop at a result whose ``origin`` is an injected turn | fixed under both models |
| hide_notifications | ``receive_response()`` skips TaskNotificationMessage (silences the seed's symptom) | not a fix: reproduced under both |
| drain_buffer_at_query | ``query()`` first discards what the SDK has buffered | racy: a frame the reader holds but has not queued yet still leaks (notify-only reproduced) |
| drain_until_settled | ``receive_response()`` reads on past the result while agent tasks are in flight (the seed's "consume them in turn 1") | hangs when a task outlives the next turn |
"""

from __future__ import annotations

from ._patch import Patch

_EPOCH = (
    Patch(
        "_internal/query.py",
        "        self._read_task: TaskHandle | None = None\n",
        "        self._read_task: TaskHandle | None = None\n"
        "        self.prompt_epoch = 0\n"
        "        self.stale_messages: list[dict[str, Any]] = []\n",
    ),
    Patch(
        "_internal/query.py",
        "            async for message in self.transport.read_messages():\n",
        "            async for message in self.transport.read_messages():\n"
        "                read_epoch = self.prompt_epoch\n",
    ),
    Patch(
        "_internal/query.py",
        "                await self._message_send.send(message)\n",
        '                await self._message_send.send({**message, "_read_epoch": read_epoch})\n',
    ),
    Patch(
        "_internal/query.py",
        '                raise Exception(message.get("error", "Unknown error"))\n\n            yield message\n',
        '                raise Exception(message.get("error", "Unknown error"))\n\n'
        '            if message.pop("_read_epoch", self.prompt_epoch) < self.prompt_epoch:\n'
        "                self.stale_messages.append(message)  # read before the latest prompt\n"
        "                continue\n"
        "            yield message\n",
    ),
    Patch(
        "client.py",
        '                    json.dumps(stamp_user_message(msg, self._verbatim_prompts)) + "\\n"\n'
        "                )\n\n    async def interrupt(self) -> None:\n",
        '                    json.dumps(stamp_user_message(msg, self._verbatim_prompts)) + "\\n"\n'
        "                )\n"
        "        self._query.prompt_epoch += 1\n\n    async def interrupt(self) -> None:\n",
    ),
)

_RESPONSE_LOOP = (
    "        async for message in self.receive_messages():\n"
    "            yield message\n"
    "            if isinstance(message, ResultMessage):\n"
    "                return\n"
)

_SKIP_INJECTED_RESULTS = Patch(
    "client.py",
    _RESPONSE_LOOP,
    "        async for message in self.receive_messages():\n"
    "            yield message\n"
    "            if isinstance(message, ResultMessage) and (message.origin or {}).get(\"kind\") in (None, \"human\"):\n"
    "                return\n",
)

CANDIDATES: dict[str, tuple[Patch, ...]] = {
    "turn_epoch": _EPOCH,
    "turn_epoch_origin": (*_EPOCH, _SKIP_INJECTED_RESULTS),
    "hide_notifications": (
        Patch(
            "client.py",
            _RESPONSE_LOOP,
            "        async for message in self.receive_messages():\n"
            '            if type(message).__name__ == "TaskNotificationMessage":\n'
            "                continue\n"
            "            yield message\n"
            "            if isinstance(message, ResultMessage):\n"
            "                return\n",
        ),
    ),
    "drain_buffer_at_query": (
        Patch(
            "client.py",
            "        # Handle string prompts\n        if isinstance(prompt, str):\n",
            "        while True:\n"
            "            try:\n"
            "                self._query._message_receive.receive_nowait()\n"
            "            except (anyio.WouldBlock, anyio.EndOfStream):\n"
            "                break\n"
            "        # Handle string prompts\n        if isinstance(prompt, str):\n",
        ),
        Patch("client.py", "\nimport json\n", "\nimport json\n\nimport anyio\n"),
    ),
    "drain_until_settled": (
        Patch(
            "client.py",
            _RESPONSE_LOOP,
            "        settling = False\n"
            "        async for message in self.receive_messages():\n"
            "            yield message\n"
            "            settling = settling or isinstance(message, ResultMessage)\n"
            "            if settling and not self._query._inflight_tasks:\n"
            "                return\n",
        ),
    ),
}

