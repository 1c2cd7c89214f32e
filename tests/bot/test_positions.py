"""/positions: paper positions netted from fills, Tradier's from its positions endpoint; priced, tied to plans."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from analytics.models import Plan, Target
from bot.request import Ctx, Identity
from bot.services import Services
from providers.broker.tradier import TradierBroker
from providers.http import RetryPolicy
from providers.tradier import TradierClient
from storage import plans
from tests.conftest import OPEN_AT, run_text
from tests.providers.fakes import FakeAPI, SleepLog, fixture

ANN = Identity(platform="discord", tenant="G1", user="U-ann", channel="C1", display_name="ann")
BOB = Identity(platform="discord", tenant="G1", user="U-bob", channel="C1", display_name="bob")


async def say(svc: Services, who: Identity, text: str):
    return await run_text(Ctx(services=svc, identity=who), text)


async def buy(svc: Services, who: Identity, text: str):
    pv = await say(svc, who, f"/order preview {text}")
    assert pv.severity != "error", pv.body
    placed = await say(svc, who, pv.actions[0].command)
    assert placed.data.status == "filled", placed.body
    return placed.data


def a_plan(pid: str, entry: float, stop: float, targets: list[float]) -> Plan:
    return Plan(
        plan_id=pid,
        symbol="TSLA",
        style="intraday",
        strategy="orb",
        direction="long",
        interval="5m",
        entry=entry,
        stop=stop,
        targets=[Target(price=t, rr=(t - entry) / (entry - stop), reason="level") for t in targets],
        quality=0.6,
        quality_factors={},
        confluence=[],
        invalidation=f"below {stop}",
        as_of=OPEN_AT - timedelta(minutes=5),
        session="open",
        sources=["bars: sim"],
    )


async def save(svc: Services, who: Identity, plan: Plan) -> None:
    ctx = Ctx(services=svc, identity=who)
    async with ctx.tx() as s:
        await plans.save_plan(s, await ctx.owner(s), plan)


async def test_no_positions_is_a_plain_answer(svc):
    r = await say(svc, ANN, "/positions")
    assert r.severity == "info" and r.data.positions == [] and "No open positions at paper" in r.body


async def test_paper_positions_net_fills_price_and_tie_to_the_plan(svc):
    q = await svc.market.quote("TSLA", OPEN_AT)
    plan = a_plan("P-POS001", entry=q.ask, stop=round(q.ask - 5, 2), targets=[round(q.ask + 10, 2), round(q.ask + 20, 2)])
    await save(svc, ANN, plan)
    await buy(svc, ANN, "TSLA buy 10 plan=P-POS001")
    await buy(svc, ANN, "TSLA buy 10")
    await buy(svc, ANN, "TSLA sell 5")
    await buy(svc, ANN, "AMD sell_short 3")
    r = await say(svc, ANN, "/positions")
    assert r.severity == "info", r.body
    amd, tsla = r.data.positions
    assert (tsla.symbol, tsla.quantity, tsla.side) == ("TSLA", 15.0, "long")
    assert tsla.avg_cost == pytest.approx(q.ask) and tsla.last == pytest.approx(q.last)
    assert tsla.unrealized_pnl == pytest.approx(15 * (q.last - q.ask))
    assert tsla.today_pnl == pytest.approx(tsla.unrealized_pnl)  # opened today: today's P&L is all of it
    assert (tsla.plan_id, tsla.plan_stop, tsla.plan_targets) == ("P-POS001", plan.stop, [t.price for t in plan.targets])
    assert tsla.risk_to_stop == pytest.approx(15 * (q.last - plan.stop))
    assert tsla.r_at_risk == pytest.approx((q.last - plan.stop) / 5.0, rel=1e-3)
    assert tsla.sector == "Consumer Discretionary"
    assert (amd.quantity, amd.side, amd.plan_id, amd.risk_to_stop) == (-3.0, "short", None, None)
    assert r.data.risk_to_stops == pytest.approx(tsla.risk_to_stop)
    closes = [a.command for a in r.actions if a.label.startswith("Close")]
    assert closes == ["/order preview AMD buy_to_cover 3", "/order preview TSLA sell 15 plan=P-POS001"]
    assert [a.command for a in r.actions if a.label.startswith(("Plan", "Track", "Chart"))] == [
        "/plan AMD",
        "/chart AMD",
        "/track P-POS001",
        "/chart TSLA",
    ]
    # the close button previews an order that flattens the position
    pv = await say(svc, ANN, closes[1])
    assert pv.title == "Preview: SELL 15 TSLA market day"
    # someone else holds nothing
    assert (await say(svc, BOB, "/positions")).data.positions == []
    only = await say(svc, ANN, "/positions AMD")
    assert [p.symbol for p in only.data.positions] == ["AMD"]


async def test_a_fully_closed_position_is_gone(svc):
    await buy(svc, ANN, "TSLA buy 10")
    await buy(svc, ANN, "TSLA sell 10")
    assert (await say(svc, ANN, "/positions")).data.positions == []


async def test_paper_option_position_has_greeks_dte_and_premium_at_risk(svc):
    exps = await svc.market.expirations("SPY", OPEN_AT)
    exp = next(e for e in exps if (e - OPEN_AT.date()).days >= 20)
    chain = await svc.market.chain("SPY", exp, OPEN_AT)
    c = min((c for c in chain.contracts if c.right == "call"), key=lambda c: abs(c.strike - chain.underlying_price))
    await buy(svc, ANN, f"{c.symbol} buy_to_open 2")
    (p,) = (await say(svc, ANN, "/positions")).data.positions
    assert (p.asset_class, p.underlying, p.multiplier, p.option_type, p.strike, p.expiration) == (
        "option",
        "SPY",
        100,
        "call",
        c.strike,
        exp,
    )
    assert 0.3 < p.delta < 0.7 and p.gamma > 0 and p.theta < 0 and p.vega > 0 and 0.05 < p.iv < 1.0
    assert p.dte == pytest.approx((exp - OPEN_AT.date()).days, abs=1.0)
    assert p.avg_cost == pytest.approx(c.ask)
    assert p.market_value == pytest.approx(2 * 100 * p.last)
    assert p.risk_to_stop == pytest.approx(p.market_value)  # no plan: the premium is what a long option can lose
    assert p.delta_dollars == pytest.approx(p.delta * 200 * p.underlying_price)


def tradier_services(svc: Services, api: FakeAPI) -> Services:
    client = TradierClient("tok", env="sandbox", transport=api.transport(), sleep=SleepLog(), policy=RetryPolicy(attempts=1))
    broker = TradierBroker(client, "VA000001")
    return dataclasses.replace(svc, broker_factory=lambda: broker, closers=[])


async def test_tradier_positions_come_from_the_account(svc):
    api = FakeAPI().on("GET", "/v1/accounts/VA000001/positions", fixture("tradier/positions.json"))
    tsvc = tradier_services(svc, api)
    r = await say(tsvc, ANN, "/positions")
    assert r.severity != "error", r.body
    got = {p.symbol: p for p in r.data.positions}
    assert set(got) == {"IBM", "MSFT", "AMD", "SPY240419C00500000"}
    assert got["IBM"].quantity == 13 and got["IBM"].avg_cost == pytest.approx(1772.54 / 13)
    assert got["AMD"].side == "short" and got["AMD"].avg_cost == pytest.approx(190.0)
    spy = got["SPY240419C00500000"]
    assert spy.asset_class == "option" and spy.avg_cost == pytest.approx(2.15) and spy.delta is not None
    assert r.data.broker == "tradier sandbox" and "broker: tradier sandbox" in r.sources
    # held before today: today's P&L runs from the previous close
    q = await svc.market.quote("IBM", OPEN_AT)
    assert got["IBM"].today_pnl == pytest.approx(13 * (q.last - q.prev_close))


async def test_tradier_with_no_positions(svc):
    api = FakeAPI().on("GET", "/v1/accounts/VA000001/positions", fixture("tradier/positions_null.json"))
    r = await say(tradier_services(svc, api), ANN, "/positions")
    assert r.data.positions == [] and "No open positions at tradier sandbox" in r.body


async def test_positions_is_a_read_only_tool_with_a_cli_twin(svc):
    from bot.agent.toolsets import select_tools
    from bot.cli.main import build_cli

    cmd = {c.name: c for c in svc.registry.all()}["positions"]
    assert cmd.tool is True and not cmd.admin
    assert "positions" in build_cli().commands
    assert "positions" in select_tools("what positions do I hold right now?", svc.registry)
