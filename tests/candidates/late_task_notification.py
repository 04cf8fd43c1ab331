"""Candidates for bug 2 (late task notification), judged against 0.2.187 (tests/test_late_task_notification.py).

| candidate | what it changes | expected change vs 0.2.187 |
|---|---|---|
| turn_epoch | the reader tags each frame with the number of prompts written when it was read; a frame read before the latest prompt goes to ``Query.stale_messages`` (internal: no channel to the consumer) | narrows under both (the verdict stays ``reproduced``): the seed's flow is fixed (gone in that pattern), but a completion read after the next prompt leaks every kind, so nothing is gone from the union; what it diverts shows as ``lost`` |
| turn_epoch_origin | turn_epoch, and ``receive_response()`` does not stop at a result whose ``origin`` is an injected turn | notify-only as turn_epoch; wake-parent narrows: no call ends on the CLI's reaction turn |
| hide_notifications | ``receive_response()`` skips TaskNotificationMessage (silences the seed's symptom) | regresses under both: the stale notification is gone (``lost``), every other stale kind stays, and a turn's own notifications are dropped from the response that reads past them (``dropped:task_notification``; a foreground agent's: ``dropped:turn``); under wake-parent, a foreground agent's notification that a call ending on the CLI's reaction turn left to the next call is hidden there too (``lost:turn``). Judged on every bug, it regresses premature_completion too: a clean background finish whose report it hid shows no result, and its last message streams ``stop_reason: null``, so the consumer's guard flags a true completion (``truthful_looks_untruthful``; through ClaudeSDKClient over the real CLI as well) |
| drain_buffer_at_query | ``query()`` first discards what the SDK has buffered | narrows (the verdict stays ``reproduced``): the seed's flow is fixed, but a frame the reader holds and has not queued yet still leaks, so nothing is gone from the union |
| drain_until_settled | ``receive_response()`` reads on past the result while the reader tracks agent tasks in flight | notify-only narrows: the subagent's frames no longer leak, but the reader runs ahead of the consumer and may settle the task before the call sees its result; wake-parent regresses: reading on takes the CLI's reaction turn into flows that were free of it (``misattributed`` and ``stale:cli_turn`` new in "completes mid next turn", ``stale:turn`` in "completes after the next turn": the call ends on the reaction turn's result, not its own) |
| consume_through | ``receive_response()`` reads on past its result while a task it saw start runs, and through the CLI's reaction turn to one that ends after it when the CLI reports session state, until a result or idle (the seed's first fix) | wake-parent fixes; notify-only narrows: a state-less CLI gives no sign that a notification follows a terminal ``task_updated`` |
| separate_channel | ``receive_response()`` diverts what belongs to an earlier turn (its tasks, their subagents, the CLI's reaction turn) to ``client.stale_messages`` (the seed's second fix) | fixes under both, nothing lost |
| await_reaction | consume_through, but after a task ends it always waits for the CLI's reaction turn | wake-parent fixes; notify-only regresses: hang |
"""

from __future__ import annotations

from ._patch import Patch

def _after_prompt_written(statement: str) -> Patch:
    """``statement`` runs in ``ClaudeSDKClient.query()`` once the prompt is written to the CLI."""
    written = ('                    json.dumps(stamp_user_message(msg, self._verbatim_prompts)) + "\\n"\n'
               "                )\n")
    rest = "\n    async def interrupt(self) -> None:\n"
    return Patch("client.py", written + rest, written + f"        {statement}\n" + rest)


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
    _after_prompt_written("self._query.prompt_epoch += 1"),
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

#: The reader keeps host-only session state frames from the caller; these candidates still pass
#: the state down the message stream, in order, for receive_response() (parse_message skips it).
_STATE_IN_ORDER = Patch(
    "_internal/query.py",
    '                        if message.get("sdk_host_only") is True:\n                            continue\n',
    '                        if message.get("sdk_host_only") is True:\n'
    '                            await self._message_send.send({"type": "_host_session_state", "state": message.get("state")})\n'
    "                            continue\n",
)


def _consume_through(owed_on_end: str) -> tuple[Patch, ...]:
    """``receive_response()`` reads on past its result while a task it saw start is running; when
    one ends after the result, the CLI's reaction turn is owed if ``owed_on_end`` holds (``state``:
    the CLI's session state, None if it reports none), until a result or an idle state comes."""
    loop = (
        "        from ._internal.message_parser import parse_message\n"
        "        from .types import TERMINAL_TASK_STATUSES, TaskNotificationMessage, TaskStartedMessage, TaskUpdatedMessage\n"
        "\n"
        "        if not self._query:\n"
        '            raise CLIConnectionError("Not connected. Call connect() first.")\n'
        "        pending: set[str] = set()\n"
        "        answered = owed = False\n"
        "        state = None\n"
        "        async for data in self._query.receive_messages():\n"
        '            if data.get("type") == "_host_session_state":\n'
        '                state = data.get("state")\n'
        '                owed = owed and state != "idle"\n'
        "            elif (message := parse_message(data)) is not None:\n"
        "                ended = isinstance(message, TaskNotificationMessage) or (\n"
        "                    isinstance(message, TaskUpdatedMessage) and message.status in TERMINAL_TASK_STATUSES\n"
        "                )\n"
        "                if isinstance(message, TaskStartedMessage):\n"
        "                    pending.add(message.task_id)\n"
        "                elif ended and message.task_id in pending:\n"
        "                    pending.discard(message.task_id)\n"
        f"                    owed = owed or (answered and ({owed_on_end}))\n"
        "                yield message\n"
        "                if isinstance(message, ResultMessage):\n"
        "                    answered, owed = True, False  # this turn's answer, or the CLI's reaction\n"
        "            if answered and not pending and not owed:\n"
        "                return\n"
    )
    return _STATE_IN_ORDER, Patch("client.py", _RESPONSE_LOOP, loop)


_SEPARATE_CHANNEL = (
    Patch(
        "client.py",
        "        self._materialized: MaterializedResume | None = None\n",
        "        self._materialized: MaterializedResume | None = None\n"
        "        #: messages receive_response() kept out of a later turn: an earlier turn's background\n"
        "        #: tasks, their subagents, and the turns the CLI ran to react to them\n"
        "        self.stale_messages: list[Message] = []\n"
        "        self._prompts = 0\n"
        "        self._turn_of: dict[str, int] = {}  # task id / its tool_use_id -> the prompt that started it\n",
    ),
    _after_prompt_written("self._prompts += 1"),
    Patch(
        "client.py",
        _RESPONSE_LOOP,
        "        from .types import TERMINAL_TASK_STATUSES, SystemMessage, TaskNotificationMessage, TaskStartedMessage, TaskUpdatedMessage\n"
        "\n"
        "        turn = self._prompts\n"
        "        last_task_turn = turn  # background_tasks_changed follows the task frame it reports on\n"
        "        held: list[Message] | None = None  # after a stale completion: maybe the CLI's reaction turn\n"
        "        async for message in self.receive_messages():\n"
        "            if isinstance(message, TaskStartedMessage):\n"
        "                self._turn_of.setdefault(message.task_id, turn)\n"
        "                if message.tool_use_id:\n"
        "                    self._turn_of.setdefault(message.tool_use_id, turn)\n"
        "            data = message.data if isinstance(message, SystemMessage) else {}\n"
        '            key = data.get("task_id") or getattr(message, "parent_tool_use_id", None)\n'
        "            owner = self._turn_of.get(key, turn) if key else turn\n"
        '            if data.get("task_id"):\n'
        "                last_task_turn = owner\n"
        '            elif getattr(message, "subtype", None) == "background_tasks_changed":\n'
        '                listed = {t.get("task_id") for t in data.get("tasks") or []}\n'
        "                owner = last_task_turn if all(self._turn_of.get(t, turn) < turn for t in listed) else turn\n"
        "            if owner < turn:\n"
        "                self.stale_messages.append(message)\n"
        "                ended = isinstance(message, TaskNotificationMessage) or (\n"
        "                    isinstance(message, TaskUpdatedMessage) and message.status in TERMINAL_TASK_STATUSES\n"
        "                )\n"
        "                if ended and held is None:\n"
        "                    held = []\n"
        "                continue\n"
        "            if held is None:\n"
        "                yield message\n"
        "                if isinstance(message, ResultMessage):\n"
        "                    return\n"
        "                continue\n"
        "            held.append(message)\n"
        "            if isinstance(message, ResultMessage):\n"
        '                if (message.origin or {}).get("kind") not in (None, "human"):\n'
        "                    self.stale_messages += held  # the CLI's own turn, reacting to that completion\n"
        "                    held = None\n"
        "                    continue\n"
        "                for mine in held:\n"
        "                    yield mine\n"
        "                return\n",
    ),
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
    "consume_through": _consume_through("state is not None"),
    "separate_channel": _SEPARATE_CHANNEL,
    "await_reaction": _consume_through("True"),
}
