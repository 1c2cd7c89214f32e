"""A coach turn is one request: its tool calls log under the turn's request id, the ref the person would quote."""

from __future__ import annotations

import structlog
from structlog.testing import capture_logs

from tests.bot.agent.conftest import ctx_for


async def test_the_tool_calls_of_a_turn_share_its_request_id(services, fake, make_agent) -> None:
    fake.tool_calls(("call_1", "quote", {"symbol": "TSLA"}), ("call_2", "quote", {"symbol": "NVDA"}))
    fake.text("TSLA and NVDA are both trading; size each so a stop-out is a loss you accept.")
    agent = make_agent()
    ctx = ctx_for(services)
    with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
        await agent(ctx, "how are tsla and nvda?")
    tool_runs = [e for e in logs if e["event"] == "command_done" and e.get("command") == "quote"]
    assert len(tool_runs) == 2
    assert {e["request_id"] for e in tool_runs} == {ctx.request_id}
    [turn] = [e for e in logs if e["event"] == "agent_turn"]
    assert turn["request_id"] == ctx.request_id and turn["calls"] == 2
