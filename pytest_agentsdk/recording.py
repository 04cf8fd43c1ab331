"""What a ``ClaudeSDKClient`` consumer received, call by call.

Turn oracles judge each ``receive_response()`` call on its own (which prompt it belongs to, what it
yielded, whether it raised), so the recording keeps those boundaries instead of one flat list.
Wrap a connected client in :class:`RecordingClient` and use it exactly like the client.

A release (or a fix) may also hand the consumer, on a channel of its own, the messages it keeps
out of ``receive_response()``: a list attribute of the client named :data:`SIDE_CHANNEL`, in
arrival order. What it holds counts as delivered (:attr:`RecordingClient.side_messages`).
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass, field
from typing import Any

#: The client attribute a release can use as a separate channel for stale messages (a list).
SIDE_CHANNEL = "stale_messages"


@dataclass
class Call:
    """One ``receive_response()`` / ``receive_messages()`` call and what it yielded."""

    method: str
    prompts_sent: int  # prompts the consumer had sent (query() returned) when the call began
    messages: list[Any] = field(default_factory=list)
    error: BaseException | None = None
    completed: bool = False  # the iterator ran out by itself (no exception, no early exit)

    @property
    def turn(self) -> int:
        """The 0-based prompt this call answers: the last one sent before it."""
        return self.prompts_sent - 1


class RecordingClient:
    """A ``ClaudeSDKClient`` stand-in that forwards to the real client and records every call."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.calls: list[Call] = []
        self.prompts = 0

    async def query(self, prompt: str | AsyncIterable[dict[str, Any]], session_id: str = "default") -> None:
        await self.client.query(prompt, session_id)
        self.prompts += 1

    @property
    def side_messages(self) -> list[Any]:
        """What the client handed over on its :data:`SIDE_CHANNEL` (empty if it has none)."""
        channel = getattr(self.client, SIDE_CHANNEL, None)
        return list(channel) if isinstance(channel, list) else []

    def receive_response(self) -> AsyncIterator[Any]:
        return self._record("receive_response", self.client.receive_response())

    def receive_messages(self) -> AsyncIterator[Any]:
        return self._record("receive_messages", self.client.receive_messages())

    async def _record(self, method: str, source: AsyncIterator[Any]) -> AsyncIterator[Any]:
        call = Call(method, self.prompts)
        self.calls.append(call)
        try:
            async for message in source:
                call.messages.append(message)
                yield message
            call.completed = True
        except Exception as exc:
            call.error = exc
            raise


__all__ = ["SIDE_CHANNEL", "Call", "RecordingClient"]
