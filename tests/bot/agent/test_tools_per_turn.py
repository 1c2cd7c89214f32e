"""Tools per turn through the real openai SDK and the loopback server: the offer, more_tools, the window, the caps."""

from __future__ import annotations

import json

from pydantic import Field

from bot.agent.schemas import MORE_TOOLS
from bot.agent.tools import MAX_RESULT_CHARS, ToolBox
from bot.agent.window import DROPPED_RESULT, Window, estimate_tokens
from bot.app import command_registry
from bot.args import ArgsModel, SymbolArg
from bot.registry import Registry
from bot.reply import Reply
from storage import watchlists
from tests.bot.agent.conftest import ctx_for
from tests.conftest import OPEN_AT, run_text


def offered(body: dict) -> list[str]:
    return [t["function"]["name"] for t in body.get("tools") or []]


def results(body: dict) -> list[dict]:
    return [json.loads(m["content"]) for m in body["messages"] if m["role"] == "tool"]


async def test_a_plan_question_is_offered_few_lean_tools(services, fake, make_agent):
    fake.tool_calls(("c1", "plan", {"symbol": "TSLA"}))
    fake.text("No setup qualifies for TSLA right now; wait for one.")
    await make_agent()(ctx_for(services), "give me a plan for TSLA")
    first, second = fake.requests
    names = offered(first)
    assert "plan" in names and MORE_TOOLS in names and len(names) <= 6
    assert names == sorted(names)
    assert offered(second) == names  # the same prefix on the next call of the turn
    # about a third of what every tool in full cost (22,000+ characters a call)
    for body in (first, second):
        assert estimate_tokens(body["messages"], body["tools"]) < 2_000
    assert len(results(second)[0]["result"]["reason"]) > 0


async def test_more_tools_lists_the_rest_and_offers_them_next(services, fake, make_agent):
    ctx = ctx_for(services)
    async with services.db() as s, s.begin():
        await watchlists.add(s, await ctx.owner(s), ["AMD"])
    fake.tool_calls(("m1", MORE_TOOLS, {}))
    fake.tool_calls(("c1", "watch_list", {}))
    fake.text("Your watchlist holds AMD.")
    reply = await make_agent()(ctx, "hmm, the usual")

    first, second, third = fake.requests
    assert "watch_list" not in offered(first)
    (listing,) = results(second)
    catalogue = listing["result"]["tools"]
    assert catalogue["watch_list"] == command_registry().commands["watch list"].summary
    assert "plan" not in catalogue  # already offered
    assert {"watch_list", "journal_add", "alert_add"} <= set(offered(second))
    assert MORE_TOOLS not in offered(second)  # everything is offered now
    assert results(third)[-1]["result"]["watchlist"] == ["AMD"]
    # the escape is bookkeeping, not a lookup: the reply cites the watchlist only
    assert [t.tool for t in reply.data.tools] == ["watch_list"]


async def test_more_tools_by_name_gives_every_option(services, fake, make_agent):
    fake.tool_calls(("m1", MORE_TOOLS, {"names": ["alert_add", "no_such_tool"]}))
    fake.tool_calls(
        ("c1", "alert_add", {"symbol": "TSLA", "kind": "above", "value": 600, "expires": "eod", "session": "extended"})
    )
    fake.text("Alert set.")
    await make_agent()(ctx_for(services), "hello")
    _, second, third = fake.requests
    (loaded,) = results(second)
    assert loaded["result"]["loaded"] == ["alert_add"] and loaded["result"]["unknown"] == ["no_such_tool"]
    schema = next(t for t in second["tools"] if t["function"]["name"] == "alert_add")
    assert schema == command_registry().commands["alert add"].tool_schema()  # the full one, cooldown and all
    (added,) = results(third)[-1:]
    assert added["ok"] is True
    listed = await run_text(ctx_for(services), "/alert list")
    assert "extended hours" in listed.body


async def test_rare_options_grouped_under_more_are_applied(services, fake, make_agent):
    fake.tool_calls(
        ("c1", "alert_add", {"symbol": "TSLA", "kind": "above", "value": 600, "more": {"session": "extended", "repeat": True}})
    )
    fake.text("Alert set.")
    await make_agent()(ctx_for(services), "alert me if TSLA goes above 600, extended hours too")
    (added,) = results(fake.requests[1])
    assert added["ok"] is True, added
    listed = await run_text(ctx_for(services), "/alert list")
    assert "extended hours" in listed.body and "repeats" in listed.body


async def test_a_tool_not_offered_still_runs_for_its_caller(services, fake, make_agent):
    fake.tool_calls(("c1", "watch_add", {"symbols": ["NVDA"]}))
    fake.tool_calls(("c2", "session", {}))
    fake.text("Added NVDA.")
    await make_agent()(ctx_for(services), "hello there")
    first, second, _ = fake.requests
    assert "watch_add" not in offered(first)
    (added,) = results(second)
    assert added["ok"] is True and added["result"]["watchlist"] == ["NVDA"]
    assert "watch_add" in offered(second)  # named once, it stays on offer for the turn


async def test_a_tool_not_offered_keeps_admin_and_ownership_checks(services, fake, make_agent):
    reg = Registry()
    ran: list[str] = []

    class A(ArgsModel):
        symbol: SymbolArg = Field(description="ticker")

    @reg.command("quote", "Price.", A)
    async def quote(ctx, a):
        return Reply(title="q", data={"symbol": a.symbol, "last": 1.0}, as_of=OPEN_AT)

    @reg.command("purge", "Admins only.", A, admin=True)
    async def purge(ctx, a):
        ran.append(ctx.identity.user)
        return Reply(title="purged", data={"ok": True})

    fake.tool_calls(("c1", "purge", {"symbol": "TSLA"}))
    fake.text("I cannot do that.")
    await make_agent()(ctx_for(services, registry=reg), "hello")
    (denied,) = results(fake.requests[1])
    assert denied["ok"] is False and "unknown tool 'purge'" in denied["error"] and ran == []

    fake.tool_calls(("c1", "purge", {"symbol": "TSLA"}))
    fake.text("Done.")
    await make_agent()(ctx_for(services, "ADMIN", admin=True, registry=reg), "hello")
    assert results(fake.requests[3])[0]["ok"] is True and ran == ["ADMIN"]

    # someone else's alert id, through a tool the message never pointed to
    victim = await run_text(ctx_for(services, "42"), "/alert add TSLA above 600")
    fake.tool_calls(("c1", "alert_remove", {"ids": str(victim.data.id)}))
    fake.text("Removed.")
    await make_agent()(ctx_for(services, "U1"), "hello")
    assert "alert_remove" not in offered(fake.requests[4])
    (refused,) = results(fake.requests[5])
    assert refused["ok"] is False and f"no alert #{victim.data.id}" in refused["error"]
    assert len((await run_text(ctx_for(services, "42"), "/alert list")).data["alerts"]) == 1


async def test_a_follow_up_is_offered_the_tools_of_the_last_turns(services, fake, make_agent):
    agent = make_agent()
    fake.tool_calls(("c1", "vol", {"symbol": "NVDA"}))
    fake.text("NVDA's implied volatility is in a normal regime.")
    await agent(ctx_for(services), "iv on NVDA?")
    fake.text("Same for QQQ.")
    await agent(ctx_for(services), "and for QQQ?")
    follow_up = fake.requests[2]
    assert "vol" in offered(follow_up)
    # the stored tool names are never sent as a message
    assert [m["role"] for m in follow_up["messages"]] == ["system", "user", "assistant", "user"]
    # another conversation does not inherit them
    fake.text("Hello.")
    await agent(ctx_for(services, channel="C2"), "and for QQQ?")
    assert "vol" not in offered(fake.requests[3])
    # /reset forgets them with the messages, and counts the messages only
    reset = await run_text(ctx_for(services), "/reset")
    assert reset.data == {"deleted": 4}
    fake.text("Hello again.")
    await agent(ctx_for(services), "and for QQQ?")
    assert "vol" not in offered(fake.requests[4])


async def test_the_prompt_and_tools_are_the_same_bytes_for_the_same_question(services, fake, make_agent):
    agent = make_agent()
    fake.fallback = fake.make_text("Hello.")
    await agent(ctx_for(services, "A"), "give me a plan for TSLA")
    await agent(ctx_for(services, "B"), "give me a plan for TSLA")
    a, b = fake.requests
    assert json.dumps(a["tools"]) == json.dumps(b["tools"])
    assert a["messages"][0] == b["messages"][0]


async def test_a_small_context_keeps_the_first_call_under_it(services, fake, make_agent):
    context = 3_000
    agent = make_agent(coach_llm_context=context, coach_memory_tokens=4_000)
    ctx = ctx_for(services)
    fake.fallback = fake.make_text("An answer " + "x" * 1_200)
    for i in range(6):
        await agent(ctx, f"question {i} about alerts, my journal and the watchlist " + "y" * 1_000)
    limit = Window(context).input_limit
    for body in fake.requests:
        assert estimate_tokens(body["messages"], body.get("tools")) <= limit
    last = fake.requests[-1]["messages"]
    assert last[0]["role"] == "system" and last[-1]["content"].startswith("question 5")
    assert 1 < len(last) < 12  # memory was cut, the question was not
    assert offered(fake.requests[-1])  # and some tools are still offered


async def test_a_small_context_trims_results_to_fit(services, fake, make_agent):
    reg = Registry()

    class A(ArgsModel):
        pass

    @reg.command("big", "Big.", A)
    async def big(ctx, a):
        return Reply(title="big", data={"rows": [{"name": "x" * 200, "price": float(i)} for i in range(500)]})

    context = 2_048
    fake.tool_calls(("c1", "big", {}))
    fake.tool_calls(("c2", "big", {}))
    fake.text("Too much data.")
    await make_agent(coach_llm_context=context)(ctx_for(services, registry=reg), "show me everything")
    limit = Window(context).input_limit
    for body in fake.requests:
        assert estimate_tokens(body["messages"], body.get("tools")) <= limit
    first_result, second_result = (m["content"] for m in fake.requests[2]["messages"] if m["role"] == "tool")
    assert first_result == DROPPED_RESULT or len(first_result) < MAX_RESULT_CHARS
    assert "truncated" in json.loads(second_result)


async def test_results_are_capped_with_a_marker(services):
    reg = Registry()

    class A(ArgsModel):
        pass

    @reg.command("big", "Big.", A)
    async def big(ctx, a):
        return Reply(
            title="big",
            data={"symbol": "X", "rows": [{"name": "x" * 200, "price": float(i)} for i in range(500)], "notes": "n" * 9_000},
        )

    box = ToolBox(ctx_for(services, registry=reg))
    r = await box.run("c", "big", "{}")
    body = json.loads(r.content)
    assert r.ok and len(r.content) <= MAX_RESULT_CHARS
    assert body["result"]["symbol"] == "X"  # small facts survive
    assert "notes" in body["truncated"]["dropped"] and "cut from" in body["truncated"]["note"]
    box.result_chars = 600
    small = await box.run("c", "big", "{}")
    assert len(small.content) <= 600 and "truncated" in json.loads(small.content)

    # the largest real result, a plan, fits whole
    plan = await ToolBox(ctx_for(services)).run("c", "plan", '{"symbol": "AAPL"}')
    assert plan.ok and "truncated" not in json.loads(plan.content) and len(plan.content) <= MAX_RESULT_CHARS
