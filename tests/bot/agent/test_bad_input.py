"""Bad input from people and from the model: a clear reply each time, nothing crashes, nothing stored is lost."""

from __future__ import annotations

import json

import structlog.testing

from bot.agent.loop import MAX_PARALLEL_TOOLS
from storage import conversations, watchlists
from tests.bot.agent.conftest import ctx_for
from tests.conftest import run_text


async def stored_state(services, ctx):
    async with services.db() as s:
        owner = await ctx.owner(s)
        return await watchlists.list_symbols(s, owner), len(await conversations.history(s, owner, "ch:C1", 10**9))


async def seeded(services, fake, make_agent):
    """An agent installed as the free-text handler, and a user with a watchlist and one stored exchange."""
    agent = make_agent()
    services.free_text = agent
    ctx = ctx_for(services)
    await run_text(ctx, "/watch add TSLA NVDA")
    fake.text("Hi, I am your coach.")
    await run_text(ctx, "hello")
    return agent, ctx, len(fake.requests)


async def test_empty_huge_and_binary_text_get_clear_replies_without_a_model_call(services, fake, make_agent):
    agent, ctx, calls = await seeded(services, fake, make_agent)
    before = await stored_state(services, ctx)
    junk = "".join(chr(i) for i in range(32)) + "\x7f\x80\x9f\u200b"[:3]
    for text in ("", "   \n\t ", junk):
        for reply in (await agent(ctx, text), await run_text(ctx, text)):
            assert reply.severity == "error" and "empty message" in reply.body
    huge = "buy " * 5_000  # 20,000 characters
    for reply in (await agent(ctx, huge), await run_text(ctx, huge), await run_text(ctx, "/ask " + huge)):
        assert reply.severity == "error" and "too long" in reply.body
    assert len(fake.requests) == calls
    assert await stored_state(services, ctx) == before


async def test_binary_junk_around_words_reaches_the_model_cleaned(services, fake, make_agent):
    agent, ctx, _ = await seeded(services, fake, make_agent)
    fake.text("I could not read most of that; which symbol do you mean?")
    raw = bytes(range(256)).decode("latin-1") + " quote tsla \x00\x1b[31m"
    reply = await agent(ctx, raw)
    sent = fake.requests[-1]["messages"][-1]["content"]
    assert all(ch.isprintable() or ch in "\t\n" for ch in sent) and "quote tsla" in sent
    assert reply.severity == "info"


async def test_malformed_arguments_and_unknown_tool_names(services, fake, make_agent):
    agent, ctx, _ = await seeded(services, fake, make_agent)
    before = await stored_state(services, ctx)
    fake.tool_calls(
        ("c1", "quote", '{"symbol": '),
        ("c2", "delete_all_users", {"confirm": True}),
        ("c3", "quote", "null"),
        ("c4", "watch_remove", '{"symbols": 42}'),
    )
    fake.text("Sorry, my lookups failed.")
    reply = await agent(ctx, "quote tsla")
    req = fake.requests[-1]
    assert req["messages"][-5]["tool_calls"][0]["function"]["arguments"] == '{"symbol": '  # echoed as sent
    errors = [json.loads(m["content"])["error"] for m in req["messages"][-4:]]
    assert [m["tool_call_id"] for m in req["messages"][-4:]] == ["c1", "c2", "c3", "c4"]
    assert "not valid JSON" in errors[0]
    assert errors[1].startswith("unknown tool 'delete_all_users'")
    assert "missing symbol" in errors[2]
    assert "symbols" in errors[3]
    assert reply.severity == "info" and "Sorry, my lookups failed." in reply.body
    watch, stored = await stored_state(services, ctx)
    assert watch == before[0] and stored == before[1] + 2


async def test_too_many_parallel_calls_are_each_answered(services, fake, make_agent):
    agent, ctx, _ = await seeded(services, fake, make_agent)
    n = MAX_PARALLEL_TOOLS + 3
    fake.tool_calls(*[(f"c{i}", "session", {}) for i in range(n)])
    fake.text("The market is open.")
    await agent(ctx, "session?")
    tool_msgs = [m for m in fake.requests[-1]["messages"] if m["role"] == "tool"]
    assert [m["tool_call_id"] for m in tool_msgs] == [f"c{i}" for i in range(n)]
    assert sum(json.loads(m["content"])["ok"] for m in tool_msgs) == MAX_PARALLEL_TOOLS


async def test_model_failure_keeps_what_was_stored(services, fake, make_agent):
    agent, ctx, _ = await seeded(services, fake, make_agent)
    before = await stored_state(services, ctx)
    fake.tool_calls(("c1", "watch_add", {"symbols": ["AMD"]}))
    fake.fallback = {"kind": "error", "status": 500, "message": "boom", "headers": {"retry-after": "0"}}
    reply = await agent(ctx, "add amd to my list")
    assert reply.severity == "error" and "failed (500)" in reply.body and "ref " in reply.body
    watch, stored = await stored_state(services, ctx)
    assert watch == before[0] + ["AMD"]  # the tool's own transaction committed; nothing else changed
    assert stored == before[1]  # a turn without an answer is not stored


async def test_empty_model_answer(services, fake, make_agent):
    agent, ctx, _ = await seeded(services, fake, make_agent)
    fake.text("")
    reply = await agent(ctx, "hmm")
    assert "empty answer" in reply.body


async def stored_alerts(services) -> list[int]:
    from sqlalchemy import select

    from storage.alerts import Alert

    async with services.db() as s:
        return list((await s.execute(select(Alert.id))).scalars())


async def test_a_model_tool_call_with_nan_gets_a_clear_error_and_stores_nothing(services, fake, make_agent):
    agent = make_agent()
    services.free_text = agent
    ctx = ctx_for(services)
    # the model writes JSON with a bare NaN (Python's json accepts it), and an Infinity
    fake.tool_calls(
        ("c1", "alert_add", '{"symbol": "TSLA", "kind": "above", "value": NaN}'),
        ("c2", "alert_add", '{"symbol": "TSLA", "kind": "pct", "value": Infinity}'),
    )
    fake.text("That level is not a number; which price do you want?")
    with structlog.testing.capture_logs() as logs:
        reply = await agent(ctx, "alert me on TSLA")
    req = fake.requests[-1]
    errors = [json.loads(m["content"])["error"] for m in req["messages"][-2:]]
    assert errors[0].startswith("value must be a finite number, not nan"), errors
    assert errors[1].startswith("value must be a finite number, not inf"), errors
    assert reply.severity == "info" and "not a number" in reply.body
    assert not [e for e in logs if e.get("log_level") in ("error", "critical") or "exc_info" in e]
    assert await stored_alerts(services) == []
