"""/portfolio: exposure, sectors, beta and correlation, greeks, open risk, warnings and the picture."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from analytics.portfolio import beta, correlation_matrix, daily_returns
from analytics.risk_rules import RiskRules
from bot.holdings import PositionsResult, PositionView
from bot.portfolio import build_portfolio
from tests.bot.test_positions import ANN, BOB, a_plan, buy, save, say
from tests.conftest import OPEN_AT

T = datetime(2024, 3, 13, 15, 0, tzinfo=UTC)


def pos(symbol: str, qty: float, last: float, **kw) -> PositionView:
    base = dict(
        symbol=symbol,
        underlying=kw.pop("underlying", symbol),
        asset_class="equity",
        side="long" if qty > 0 else "short",
        quantity=qty,
        multiplier=1,
        avg_cost=last,
        last=last,
        underlying_price=last,
        market_value=qty * last,
        unrealized_pnl=0.0,
        unrealized_pct=0.0,
        today_pnl=0.0,
        opened_at=T,
        sector="x",
        delta_dollars=qty * last,
    )
    return PositionView(**(base | kw))


def held(*ps: PositionView) -> PositionsResult:
    return PositionsResult(
        broker="paper",
        positions=list(ps),
        market_value=sum(p.market_value or 0 for p in ps),
        unrealized_pnl=0.0,
        today_pnl=0.0,
        risk_to_stops=sum(p.risk_to_stop or 0 for p in ps),
        as_of=T,
        sources=["broker: paper"],
    )


def closes(n: int = 61) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    spy_r = rng.normal(0, 0.01, n - 1)
    idx = pd.date_range("2024-01-01", periods=n, freq="B", tz="UTC")
    spy = 500 * np.cumprod(np.concatenate(([1.0], 1 + spy_r)))
    nvda = 100 * np.cumprod(np.concatenate(([1.0], 1 + 2 * spy_r)))  # beta exactly 2, correlation 1
    xom = 100 * np.cumprod(np.concatenate(([1.0], 1 + rng.normal(0, 0.01, n - 1))))
    return pd.DataFrame({"NVDA": nvda, "XOM": xom, "SPY": spy}, index=idx)


def test_build_portfolio_golden():
    book = held(
        pos("NVDA", 100, 100.0, risk_to_stop=500.0),
        pos("XOM", -50, 100.0, risk_to_stop=250.0),
        pos(
            "NVDA240419C00100000",
            2,
            5.0,
            underlying="NVDA",
            asset_class="option",
            multiplier=100,
            underlying_price=100.0,
            delta=0.5,
            gamma=0.04,
            theta=-0.05,
            vega=0.12,
            delta_dollars=0.5 * 200 * 100.0,
            risk_to_stop=1000.0,
        ),
    )
    c = closes()
    res = build_portfolio(book, c, RiskRules(max_position_pct=20.0, max_open_risk_pct=3.0), 100_000.0)
    # NVDA: 10,000 shares + 10,000 delta dollars of calls; XOM short 5,000
    assert [(s.symbol, s.value, s.pct) for s in res.symbols] == [("NVDA", 20_000.0, 20.0), ("XOM", -5_000.0, -5.0)]
    assert (res.gross, res.net, res.long, res.short) == (25_000.0, 15_000.0, 20_000.0, 5_000.0)
    assert (res.gross_pct, res.net_pct) == (25.0, 15.0)
    assert res.sectors == {"Information Technology": 20.0, "Energy": 5.0}
    rets = daily_returns(c.to_numpy().T)
    assert res.symbols[0].beta == pytest.approx(2.0)
    assert res.symbols[1].beta == pytest.approx(beta(rets[1], rets[2]))
    assert res.beta == pytest.approx(0.2 * 2.0 - 0.05 * res.symbols[1].beta)
    assert res.correlation_symbols == ["NVDA", "XOM"] and res.sessions == 60
    assert np.allclose(res.correlation, correlation_matrix(rets[:2]), atol=1e-4)
    # greeks of 2 contracts: gamma dollars per 1% = 0.04 x 200 x 100^2 x 1%
    assert res.gamma_dollars == pytest.approx(0.04 * 200 * 100.0**2 * 0.01)
    assert (res.vega, res.theta) == (pytest.approx(24.0), pytest.approx(-10.0))
    assert (res.open_risk, res.open_risk_pct) == (1750.0, 1.75)
    assert res.breaches == []  # 20% is at the limit, not over it
    tight = build_portfolio(book, c, RiskRules(max_position_pct=10.0, max_open_risk_pct=1.0), 100_000.0)
    assert [(b.rule, b.subject) for b in tight.breaches] == [("max_open_risk_pct", "portfolio"), ("max_position_pct", "NVDA")]


def test_build_portfolio_warns_on_concentration_correlation_and_no_account():
    c = closes()
    c["AMD"] = c["NVDA"] * 1.5  # perfectly correlated with NVDA
    book = held(pos("NVDA", 400, 100.0), pos("AMD", 200, 150.0, risk_to_stop=100.0))
    res = build_portfolio(book, c, RiskRules(), 100_000.0)
    text = " | ".join(res.warnings)
    assert "NVDA is 40% of the account (over 25%)" in text
    assert "Information Technology is 70% of the account (over 40%)" in text
    assert "move together (correlation 1.00)" in text
    assert "no stop known for NVDA" in text
    none = build_portfolio(book, c, RiskRules(max_position_pct=1.0), None)
    assert none.account_source == "gross exposure" and none.gross_pct == pytest.approx(100.0)
    assert none.breaches == [] and "no account size" in none.warnings[0]
    empty = build_portfolio(held(), pd.DataFrame(), RiskRules(), 10_000.0)
    assert empty.symbols == [] and empty.beta is None and empty.correlation == []


async def test_portfolio_command_over_paper_fills(svc):
    assert (await say(svc, ANN, "/portfolio")).body == "No open positions at paper."
    await say(svc, ANN, "/risk 50000 1")
    q = await svc.market.quote("TSLA", OPEN_AT)
    await save(svc, ANN, a_plan("P-PORT01", entry=q.ask, stop=round(q.ask - 10, 2), targets=[round(q.ask + 20, 2)]))
    await buy(svc, ANN, "TSLA buy 40 plan=P-PORT01")
    await buy(svc, ANN, "XOM sell_short 50")
    r = await say(svc, ANN, "/portfolio")
    assert r.severity == "warning", r.body
    d = r.data
    tsla_value = 40 * q.last
    assert d.symbols[0].symbol == "TSLA" and d.symbols[0].pct == pytest.approx(100 * tsla_value / 50_000)
    assert d.account_source == "risk profile" and d.short > 0 and d.net == pytest.approx(d.long - d.short)
    assert d.open_risk == pytest.approx(40 * (q.last - round(q.ask - 10, 2)))
    assert d.open_risk_pct == pytest.approx(100 * d.open_risk / 50_000)
    assert d.correlation_symbols == ["TSLA", "XOM"] and len(d.correlation) == 2 and d.sessions == 60
    assert d.symbols[0].beta is not None and d.beta is not None
    assert "no stop known for XOM" in r.body
    (png,) = r.attachments
    assert png.data[:8] == b"\x89PNG\r\n\x1a\n" and len(png.data) > 20_000
    assert [a.command for a in r.actions] == ["/positions", "/risk"]
    text = await say(svc, ANN, "/portfolio --no-chart")
    assert text.attachments == [] and text.data.gross == pytest.approx(d.gross)
    # private to each person
    assert (await say(svc, BOB, "/portfolio")).data.symbols == []


async def test_portfolio_is_a_read_only_tool(svc):
    from bot.agent.toolsets import select_tools

    cmd = {c.name: c for c in svc.registry.all()}["portfolio"]
    assert cmd.tool and not cmd.admin
    assert "portfolio" in select_tools("how concentrated is my portfolio?", svc.registry)
