"""Risk rules per person: /risk sets and shows them, /portfolio reports breaches, /order preview warns before one."""

from __future__ import annotations

import dataclasses

import pytest

from tests.bot.test_positions import ANN, BOB, a_plan, buy, save, say
from tests.conftest import OPEN_AT


async def test_risk_sets_shows_and_clears_rules_per_person(svc):
    r = await say(svc, ANN, "/risk max_open_risk=6 max_position=20% max_sector=40")
    assert r.severity == "success" and r.title == "Risk profile saved"
    assert r.data["rules"] == {
        "max_open_risk_pct": 6.0,
        "max_position_pct": 20.0,
        "max_sector_pct": 40.0,
        "max_correlated_pct": None,
    }
    assert "Rules: open risk ≤ 6%, one symbol ≤ 20%, one sector ≤ 40%" in r.body
    # the account and the rules are set independently; neither erases the other
    r = await say(svc, ANN, "/risk 50000 1")
    assert r.data["rules"]["max_position_pct"] == 20.0 and r.data["account_size"] == 50000.0
    r = await say(svc, ANN, "/risk max_sector=off")
    assert r.data["rules"] == {
        "max_open_risk_pct": 6.0,
        "max_position_pct": 20.0,
        "max_sector_pct": None,
        "max_correlated_pct": None,
    }
    shown = await say(svc, ANN, "/risk")
    assert shown.severity == "info" and shown.data["rules"]["max_sector_pct"] is None and "one sector" not in shown.body
    assert (await say(svc, BOB, "/risk")).data["rules"] == {
        "max_open_risk_pct": None,
        "max_position_pct": None,
        "max_sector_pct": None,
        "max_correlated_pct": None,
    }


@pytest.mark.parametrize(
    ("line", "needle"),
    [
        ("/risk max_position=-5", "max_position"),
        ("/risk max_open_risk=150", "max_open_risk"),
        ("/risk max_sector=lots", "max_sector"),
    ],
)
async def test_bad_rules_are_one_line(svc, line, needle):
    r = await say(svc, ANN, line)
    assert r.severity == "error" and needle in r.body and "\n" not in r.body


async def test_preview_warns_when_an_order_would_break_a_rule(svc):
    q = await svc.market.quote("TSLA", OPEN_AT)
    await say(svc, ANN, "/risk 50000 1")
    await say(svc, ANN, "/risk max_position=20 max_open_risk=1 max_sector=25")
    n = int(0.15 * 50_000 / q.ask)  # about 15% of the account: within every rule
    ok = await say(svc, ANN, f"/order preview TSLA buy {n}")
    assert ok.severity == "info" and "breaks your rule" not in ok.body, ok.body
    await buy(svc, ANN, f"TSLA buy {n}")
    # as many again makes ~30%: over the 20% position limit and the 25% sector limit
    big = await say(svc, ANN, f"/order preview TSLA buy {n}")
    assert big.severity == "warning"
    assert "breaks your rule: TSLA exposure" in big.body and "Consumer Discretionary sector exposure" in big.body
    assert big.actions[0].label == "Place order"  # a warning, not a refusal
    # a plan's stop gives the order's risk: $100 a share on 6 shares is over 1% of 50,000
    await save(svc, ANN, a_plan("P-RULE01", entry=q.ask, stop=round(q.ask - 100, 2), targets=[round(q.ask + 200, 2)]))
    risky = await say(svc, ANN, "/order preview TSLA buy 6 plan=P-RULE01")
    assert "open risk to stops" in risky.body
    # selling part of what is held only lowers exposure: no warning
    trim = await say(svc, ANN, "/order preview TSLA sell 2")
    assert "breaks your rule" not in trim.body
    # no rules, no warnings
    assert "breaks your rule" not in (await say(svc, BOB, "/order preview TSLA buy 500")).body


async def test_portfolio_reports_breaches(svc):
    await say(svc, ANN, "/risk 50000 1")
    await say(svc, ANN, "/risk max_position=10")
    await buy(svc, ANN, "TSLA buy 20")
    r = await say(svc, ANN, "/portfolio --no-chart")
    assert r.severity == "error"
    assert [(b.rule, b.subject) for b in r.data.breaches] == [("max_position_pct", "TSLA")]
    assert "⛔ TSLA exposure" in r.body


async def outbox(svc) -> list:
    from sqlalchemy import select

    from storage.outbox import OutboxRow

    async with svc.db() as s:
        return list((await s.execute(select(OutboxRow).order_by(OutboxRow.id))).scalars())


async def test_a_fill_that_breaks_a_rule_fires_a_risk_alert_once_a_day(svc):
    await say(svc, ANN, "/risk 50000 1")
    await say(svc, ANN, "/risk max_position=10")
    pv = await say(svc, ANN, "/order preview TSLA buy 20")
    placed = await say(svc, ANN, pv.actions[0].command)
    assert "⛔ TSLA exposure" in placed.body
    rows = await outbox(svc)
    assert len(rows) == 1
    (row,) = rows
    assert row.kind == "alert" and row.destination == "discord" and row.status == "pending"
    assert row.payload["reply"]["title"] == "Risk rule broken" and "TSLA exposure" in row.payload["reply"]["body"]
    assert row.payload["event_key"].endswith(":max_position_pct:TSLA:2024-03-13")
    # the same breach again today: nothing new is queued
    await buy(svc, ANN, "TSLA buy 1")
    assert len(await outbox(svc)) == 1
    # a fill that breaks nothing queues nothing
    await buy(svc, BOB, "TSLA buy 20")
    assert len(await outbox(svc)) == 1


async def test_a_channel_that_refuses_risk_alerts_gets_none(svc):
    admin = dataclasses.replace(ANN, is_admin=True)
    r = await say(svc, admin, "/settings types price,plan")
    assert r.severity != "error", r.body
    await say(svc, ANN, "/risk 50000 1")
    await say(svc, ANN, "/risk max_position=10")
    await buy(svc, ANN, "TSLA buy 20")
    assert await outbox(svc) == []
    r = await say(svc, admin, "/settings types all")
    assert "risk" in r.data.allowed_kinds


async def test_correlated_rule_is_set_cleared_and_checked_on_the_book(svc):
    import numpy as np
    import pandas as pd

    from analytics.risk_rules import RiskRules
    from bot.holdings import load_positions
    from bot.portfolio import build_portfolio
    from bot.request import Ctx

    r = await say(svc, ANN, "/risk max_correlated=35")
    assert r.data["rules"]["max_correlated_pct"] == 35.0 and "correlated holdings ≤ 35%" in r.body
    assert (await say(svc, ANN, "/risk max_correlated=off")).data["rules"]["max_correlated_pct"] is None
    await buy(svc, ANN, "NVDA buy 10")
    await buy(svc, ANN, "AMD buy 10")
    await buy(svc, ANN, "XOM buy 10")
    ctx = Ctx(services=svc, identity=ANN)
    async with ctx.tx() as s:
        owner = await ctx.owner(s)
    held = await load_positions(ctx, owner)
    value = {p.underlying: p.delta_dollars for p in held.positions}
    account = 2.0 * sum(value.values())
    # NVDA and AMD move together (AMD = NVDA + a little noise); XOM moves on its own
    rng = np.random.default_rng(1)
    base = rng.normal(0, 0.02, 61)
    idx = pd.bdate_range("2024-01-01", periods=62)
    closes = pd.DataFrame(
        {
            "NVDA": 100 * np.cumprod(np.r_[1.0, 1 + base]),
            "AMD": 50 * np.cumprod(np.r_[1.0, 1 + base + rng.normal(0, 0.003, 61)]),
            "XOM": 80 * np.cumprod(np.r_[1.0, 1 + rng.normal(0, 0.02, 61)]),
            "SPY": 400 * np.cumprod(np.r_[1.0, 1 + rng.normal(0, 0.01, 61)]),
        },
        index=idx,
    )
    pair = 100.0 * (value["NVDA"] + value["AMD"]) / account
    res = build_portfolio(held, closes, RiskRules(max_correlated_pct=pair - 1.0), account)
    assert res.correlated == {"NVDA+AMD": pytest.approx(pair)} or res.correlated == {"AMD+NVDA": pytest.approx(pair)}
    assert [b.rule for b in res.breaches] == ["max_correlated_pct"]
    assert build_portfolio(held, closes, RiskRules(max_correlated_pct=pair + 1.0), account).breaches == []
