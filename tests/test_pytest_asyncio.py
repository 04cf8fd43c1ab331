"""The fixtures work in tests written with pytest-asyncio, as most SDK users write them."""

from __future__ import annotations

import pytest

from pytest_agentsdk import wire


@pytest.mark.asyncio
async def test_query_under_pytest_asyncio(agentsdk_script, scripted_transport) -> None:
    from claude_agent_sdk import ResultMessage, query

    agentsdk_script.turn(wire.system_init(), wire.assistant("hello"), wire.result("hello"))
    messages = [m async for m in query(prompt="hi", transport=scripted_transport)]
    assert isinstance(messages[-1], ResultMessage) and messages[-1].result == "hello"
