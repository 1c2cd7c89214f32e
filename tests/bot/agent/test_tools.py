"""Registry commands as tools: compact results, argument checks, identity never taken from arguments."""

from __future__ import annotations

import json

from pydantic import Field

from bot.agent.tools import MAX_RESULT_CHARS, ToolBox, compact
from bot.app import command_registry
from bot.args import ArgsModel, SymbolArg
from bot.registry import Registry
from bot.reply import Reply
from tests.bot.agent.conftest import ctx_for


def test_compact_rounds_prices_to_the_tick_and_trims_series():
    bars = [{"t": f"2024-03-13T14:{i:02d}:00", "o": 100.123456, "c": 100.5 + i / 1000, "v": 1200.0} for i in range(50)]
    out = compact(
        {
            "symbol": "X",
            "tick": 0.05,
            "last": 10.123,
            "iv": 0.345678,
            "gamma": 0.0012345,
            "bars": bars,
            "contracts": [{"strike": s} for s in range(30)],
        }
    )
    assert out["last"] == 10.1 and out["iv"] == 0.3457 and out["gamma"] == 0.001234
    assert len(out["bars"]) == 20 and out["bars_omitted"] == 30
    assert out["bars"][-1]["t"] == "2024-03-13T14:49:00"  # a series keeps its most recent items
    assert out["bars"][0]["o"] == 100.1 and out["bars"][0]["v"] == 1200
    assert [c["strike"] for c in out["contracts"]][:2] == [0, 1] and out["contracts_omitted"] == 10  # ranked lists keep the top


def test_specs_come_from_the_registry_and_hide_admin_tools_from_others(services):
    reg = Registry()

    class A(ArgsModel):
        symbol: SymbolArg = Field(description="ticker")

    async def h(ctx, a):
        return Reply(title="x")

    reg.command("pub", "Public.", A)(h)
    reg.command("adm", "Admin only.", A, admin=True)(h)
    reg.command("hidden", "Not a tool.", A, tool=False)(h)
    assert [t["function"]["name"] for t in ToolBox(ctx_for(services, registry=reg)).specs()] == ["pub"]
    assert [t["function"]["name"] for t in ToolBox(ctx_for(services, admin=True, registry=reg)).specs()] == ["adm", "pub"]
    full = ToolBox(ctx_for(services), lean=False).specs()
    assert full == [c.tool_schema() for c in command_registry().all() if c.tool and not c.admin]
    # offering a few: their lean schemas, sorted, and the escape to the rest
    few = ToolBox(ctx_for(services), ["quote", "plan", "adm"]).specs()
    assert [t["function"]["name"] for t in few] == ["more_tools", "plan", "quote"]


async def test_bad_calls_become_error_results(services):
    box = ToolBox(ctx_for(services))
    cases = {
        "unknown": await box.run("c1", "drop_tables", "{}"),
        "not json": await box.run("c2", "quote", "{symbol: TSLA"),
        "not an object": await box.run("c3", "quote", '["TSLA"]'),
        "bad value": await box.run("c4", "quote", '{"symbol": "$$$"}'),
        "missing": await box.run("c5", "quote", ""),
        "deep": await box.run("c6", "quote", "[" * 100_000),
    }
    for label, r in cases.items():
        body = json.loads(r.content)
        assert r.ok is False and body["ok"] is False and body["error"], label
    assert "available tools:" in json.loads(cases["unknown"].content)["error"]
    assert "not valid JSON" in json.loads(cases["not json"].content)["error"]
    assert "missing symbol" in json.loads(cases["missing"].content)["error"]


async def test_large_results_fit_the_limit(services):
    reg = Registry()

    class A(ArgsModel):
        pass

    @reg.command("big", "Big.", A)
    async def big(ctx, a):
        return Reply(title="big", data={"rows": [{"name": "x" * 200, "price": float(i)} for i in range(500)]})

    r = await ToolBox(ctx_for(services, registry=reg)).run("c", "big", "{}")
    assert r.ok and len(r.content) <= MAX_RESULT_CHARS
    body = json.loads(r.content)
    assert body["result"]["rows_omitted"] > 0 and "cut from" in body["truncated"]["note"]
