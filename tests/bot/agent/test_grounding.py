"""Price verification, citations and the grounding score, computed by the server from tool results."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.agent.grounding import find_prices, ground
from bot.agent.tools import ToolResult
from bot.reply import Reply
from tests.conftest import OPEN_AT


def result(numbers, *, ok=True, source="quote: sim", as_of=OPEN_AT, name="quote") -> ToolResult:
    reply = Reply(title="t", sources=[source], as_of=as_of, data={})
    return ToolResult(call_id="c", name=name, ok=ok, content="{}", reply=reply if ok else None, numbers=list(numbers))


@pytest.mark.parametrize(
    "text,prices",
    [
        ("TSLA is at $586.46 with support at 571.2.", [586.46, 571.2]),
        ("Entry 182.50, stop 179, targets 188.25 and $1,234.50", [182.5, 179.0, 188.25, 1234.5]),
        ("Up 2.35% today, RSI 61, 3 contracts, 2:1 reward to risk", []),
        ("On 2024-03-13 at 10:30 ET the 5m bars were 20 bars long", []),
        ("Target 1: 190.50; risk $500 max? no: $5k account", [190.5, 500.0]),
        ("IV is 0.45 and the 30-day mean", [0.45]),
    ],
)
def test_find_prices(text, prices):
    assert [p.value for p in find_prices(text)] == prices


def test_verified_by_precision_and_tick():
    g = ground(
        "Last $586.46, about $586.5 or roughly 586; entry 586.46, not 586.47", [result([586.4612])], now=OPEN_AT, market_open=True
    )
    assert g.unverified == [586.47]  # more than half a tick away from 586.4612


def test_unverified_marked_in_place_and_lowers_the_grounding():
    good = ground("Entry $100.00", [result([100.0])], now=OPEN_AT, market_open=True)
    bad = ground("Entry $100.00, target $130.00", [result([100.0])], now=OPEN_AT, market_open=True)
    assert bad.text == "Entry $100.00, target $130.00 (unverified)"
    assert bad.unverified == [130.0] and bad.score < good.score


def test_numbers_the_person_wrote_are_not_data_claims():
    g = ground(
        "An alert at $200.00 sits above the last price of 186.20.",
        [result([186.2])],
        now=OPEN_AT,
        market_open=True,
        user_text="alert me if AAPL breaks 200",
    )
    assert g.unverified == []


def test_failed_tools_verify_nothing():
    g = ground("It trades at $50.00", [result([50.0], ok=False)], now=OPEN_AT, market_open=True)
    assert g.unverified == [50.0] and g.citations == []


def test_citations_as_of_and_staleness():
    fresh = result([1.0], source="quote: sim", as_of=OPEN_AT)
    old = result([2.0], source="bars: polygon", as_of=OPEN_AT - timedelta(minutes=45), name="bars")
    g = ground("ok", [fresh, old], now=OPEN_AT, market_open=True)
    assert {(c.tool, c.source) for c in g.citations} == {("quote", "quote: sim"), ("bars", "bars: polygon")}
    assert g.as_of == OPEN_AT - timedelta(minutes=45)
    assert g.stale and "45 minutes old" in g.stale_note
    closed = ground("ok", [old], now=OPEN_AT, market_open=False)
    assert not closed.stale  # the last close is the right data when the market is shut


def test_grounding_rests_on_lookups_not_on_a_plans_grade():
    g = ground("Plan entry 10.00", [result([10.0])], now=OPEN_AT, market_open=True)
    assert g.score == 0.8
    unchecked = ground("Plan entry 10.00 and 12.00", [result([10.0])], now=OPEN_AT, market_open=True)
    assert unchecked.score < g.score  # a price no tool returned costs grounding
    nothing = ground("A stop limits the loss of a trade.", [], now=OPEN_AT, market_open=True)
    assert nothing.score == 0.4 and nothing.citations == []
