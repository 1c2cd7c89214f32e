"""Which tools a message is offered, and the lean schemas they are offered with."""

from __future__ import annotations

import json

import pytest

from bot.agent.schemas import MORE_KEY, MORE_TOOLS_SCHEMA, lean_schema, short_description
from bot.agent.toolsets import CORE, select_tools
from bot.app import command_registry

REGISTRY = command_registry()
TOOLS = {c.tool_name: c for c in REGISTRY.all() if c.tool}


@pytest.mark.parametrize(
    ("text", "needed"),
    [
        ("give me a plan for TSLA", "plan"),
        ("plan nvda swing", "plan"),
        ("where is MSFT trading?", "quote"),
        ("chart NVDA 15m", "chart"),
        ("iv on NVDA?", "vol"),
        ("are TSLA options expensive right now?", "vol"),
        ("best calls on SPY", "contracts"),
        ("which strike for a NVDA put?", "contracts"),
        ("scan the leaders for swing setups", "scan"),
        ("what's setting up on my watchlist?", "scan"),
        ("alert me if AAPL breaks 200", "alert_add"),
        ("ping me when NVDA RSI goes above 70", "alert_add"),
        ("what alerts do I have?", "alert_list"),
        ("cancel alert 3", "alert_remove"),
        ("move my TSLA alert to 250", "alert_edit"),
        ("is the alert feed running?", "alerts_status"),
        ("journal: chased the breakout again #fomo", "journal_add"),
        ("write down a lesson: wait for the retest", "journal_add"),
        ("show my journal entries about TSLA", "journal_list"),
        ("delete journal entry 4", "journal_remove"),
        ("how many shares can I buy risking $100, entry 50 stop 48?", "size"),
        ("set my account size to 25000", "risk"),
        ("add TSLA to my watchlist", "watch_add"),
        ("take NVDA off my watchlist", "watch_remove"),
        ("what's on my watchlist?", "watch_list"),
        ("track plan P-1A2B3C", "track"),
        ("stop tracking P-1A2B3C", "untrack"),
        ("how did my plans do?", "scorecard"),
        ("backtest SPY over 20 days", "backtest"),
        ("rsi and key levels on META", "context"),
        ("last 20 bars of QQQ", "bars"),
        ("is the market open?", "session"),
        ("what orders do I have?", "order_list"),
        ("prepare the order for P-1A2B3C", "order_plan"),
        ("ok, place it", "order_plan"),
        ("draft an order from my NVDA plan", "order_plan"),
    ],
)
def test_the_needed_tool_is_offered_and_the_set_is_small(text, needed):
    offered = select_tools(text, REGISTRY)
    assert needed in offered, offered
    assert set(CORE) <= set(offered)
    assert len(offered) <= 8, offered
    assert offered == sorted(offered) and set(offered) <= set(TOOLS)


def test_follow_ups_keep_the_tools_the_talk_used():
    assert "vol" not in select_tools("and for QQQ?", REGISTRY)
    assert "vol" in select_tools("and for QQQ?", REGISTRY, recent=["vol"])
    # a follow-up acts on the family in use: "open the first one" after a journal list
    assert "journal_show" in select_tools("open the first one in full", REGISTRY, recent=["journal_list"])
    assert "alert_edit" in select_tools("and make it repeat", REGISTRY, recent=["alert_list"])
    # names that are not tools (here) are never offered
    assert "drop_tables" not in select_tools("hi", REGISTRY, recent=["drop_tables"])


def test_lean_schemas_are_deterministic_and_much_smaller():
    for name, cmd in TOOLS.items():
        lean = lean_schema(cmd)
        assert json.dumps(lean) == json.dumps(lean_schema(cmd)), name
        assert len(json.dumps(lean)) <= len(json.dumps(cmd.tool_schema())), name
        text = json.dumps(lean)
        for noise in ('"title"', '"default"', '"anyOf"', '"greedy"', '"maxLength"', '"minimum"', '"rare"', '"brief"'):
            assert noise not in text, (name, noise)
        # every required field of the command is still there, with its type
        params = lean["function"]["parameters"]
        for req in cmd.tool_schema()["function"]["parameters"].get("required", []):
            assert req in params["properties"] and "type" in params["properties"][req]
    total_full = sum(len(json.dumps(c.tool_schema())) for c in TOOLS.values())
    total_lean = sum(len(json.dumps(lean_schema(c))) for c in TOOLS.values())
    assert total_lean < 0.7 * total_full


def test_big_commands_group_their_rare_options():
    alert = lean_schema(TOOLS["alert_add"])
    props = alert["function"]["parameters"]["properties"]
    assert len(json.dumps(alert)) < 1_100 < 2_000 < len(json.dumps(TOOLS["alert_add"].tool_schema()))
    assert {"symbol", "kind", "value"} <= set(props) and "cooldown" not in props and "expires" not in props
    assert "cooldown" in props[MORE_KEY]["description"] and "expires" in props[MORE_KEY]["description"]
    # the choices are an enumeration, not prose repeating them
    assert "rsi_above" in props["kind"]["enum"] and "description" not in props["kind"]
    for name, rare in (("backtest", "every"), ("chart", "theme")):
        p = lean_schema(TOOLS[name])["function"]["parameters"]["properties"]
        assert rare not in p and rare in p[MORE_KEY]["description"]
    assert MORE_TOOLS_SCHEMA["function"]["name"] == "more_tools"


def test_short_descriptions():
    assert short_description("ticker, e.g. TSLA") == "ticker"
    assert short_description("dollars to risk; defaults to your risk profile (/risk)") == "dollars to risk"
    assert short_description("reference price for pct (default: the last price)") == "reference price for pct"
    styles = ["scalp", "intraday", "swing", "leaps"]
    assert short_description("trading style: scalp (1m/5m), intraday (5m/15m/1h), swing, leaps", styles) == "trading style"
    assert short_description("dark (default) or light", ["dark", "light"]) == ""
