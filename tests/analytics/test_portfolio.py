"""Portfolio statistics and fills-to-positions netting, against values worked out by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from analytics.portfolio import beta, correlation_matrix, daily_returns, exposure, portfolio_beta, weights_by
from analytics.positions import FillEvent, net_positions, r_multiple, risk_to_stop
from analytics.scan_scope import NAMED_LISTS
from analytics.sectors import UNKNOWN, sector_map, sector_of

T0 = datetime(2024, 3, 13, 15, 0, tzinfo=UTC)


def test_daily_returns_close_to_close():
    assert np.allclose(daily_returns([100.0, 110.0, 99.0]), [0.10, -0.10])
    two = daily_returns([[1.0, 2.0, 4.0], [10.0, 5.0, 5.0]])
    assert np.allclose(two, [[1.0, 1.0], [-0.5, 0.0]])


def test_beta_golden():
    m = np.array([0.01, -0.02, 0.03, 0.0, -0.01])
    assert beta(2.0 * m + 0.001, m) == pytest.approx(2.0)
    assert beta(-0.5 * m, m) == pytest.approx(-0.5)
    # hand-worked: cov([1,2,3],[1,3,2]) = 0.5, var([1,2,3]) = 1 -> 0.5
    assert beta([1.0, 3.0, 2.0], [1.0, 2.0, 3.0]) == pytest.approx(0.5)
    assert beta([0.01, 0.02, 0.03], [0.0, 0.0, 0.0]) is None
    assert beta([0.01, np.nan, 0.03, 0.02], [0.01, 0.02, 0.03, 0.01]) == pytest.approx(
        np.cov([0.01, 0.03, 0.02], [0.01, 0.03, 0.01])[0, 1] / np.var([0.01, 0.03, 0.01], ddof=1)
    )


def test_correlation_matrix_golden_and_flat_rows():
    r = np.array([[1.0, 2.0, 3.0, 4.0], [2.0, 4.0, 6.0, 8.0], [4.0, 3.0, 2.0, 1.0], [5.0, 5.0, 5.0, 5.0]])
    c = correlation_matrix(r)
    expect = np.array([[1, 1, -1, 0], [1, 1, -1, 0], [-1, -1, 1, 0], [0, 0, 0, 1]], dtype=float)
    assert np.allclose(c, expect)
    # hand-worked: x=[1,2,3], y=[1,3,2] -> r = 0.5
    assert correlation_matrix([[1.0, 2.0, 3.0], [1.0, 3.0, 2.0]])[0, 1] == pytest.approx(0.5)
    rng = np.random.default_rng(7)
    x = rng.normal(size=(3, 60))
    assert np.allclose(correlation_matrix(x), np.corrcoef(x))
    assert correlation_matrix(np.zeros((0, 5))).shape == (0, 0)


def test_exposure_weights_and_portfolio_beta():
    e = exposure([10_000.0, -4_000.0, 6_000.0])
    assert (e.gross, e.net, e.long, e.short) == (20_000.0, 12_000.0, 16_000.0, 4_000.0)
    w = weights_by(["Tech", "Energy", "Tech"], [10_000.0, -4_000.0, 6_000.0], 50_000.0)
    assert w == {"Tech": 32.0, "Energy": 8.0} and list(w) == ["Tech", "Energy"]
    assert weights_by(["A"], [1.0], 0.0) == {}
    assert portfolio_beta([0.2, -0.1, 0.3], [1.5, 2.0, None]) == pytest.approx(0.2 * 1.5 - 0.1 * 2.0)
    assert portfolio_beta([0.2], [None]) is None


def fill(side: str, qty: float, px: float, minutes: int, inst: str = "TSLA", plan: str | None = None) -> FillEvent:
    return FillEvent(inst, "TSLA", "equity", side, qty, px, T0 + timedelta(minutes=minutes), plan)


def test_net_positions_average_cost_reduce_flip_and_close():
    # 10 @ 100 then 10 @ 110 -> 20 @ 105; sell 5 -> 15 @ 105 (average unchanged)
    got = net_positions([fill("buy", 10, 100, 0, plan="P-1"), fill("buy", 10, 110, 1), fill("sell", 5, 120, 2)])
    assert [(p.quantity, p.avg_cost, p.plan_id, p.opened_at) for p in got] == [(15, 105, "P-1", T0)]
    # selling 25 of 15 flips to short 10 at the flipping fill's price
    flip = net_positions([fill("buy", 15, 105, 0), fill("sell", 25, 90, 5, plan="P-2")])
    assert [(p.quantity, p.avg_cost, p.plan_id) for p in flip] == [(-10, 90, "P-2")]
    # flat positions disappear, other instruments stay; fills are taken in time order
    book = net_positions(
        [
            fill("sell", 10, 101, 3),
            fill("buy", 10, 100, 0),
            fill("sell_short", 3, 50, 4, inst="AMD"),
            fill("buy_to_cover", 1, 48, 6, inst="AMD"),
        ]
    )
    assert [(p.instrument, p.quantity, p.avg_cost) for p in book] == [("AMD", -2, 50)]


def test_risk_to_stop_and_r_multiple():
    assert risk_to_stop(100, 105.0, 100.0) == 500.0
    assert risk_to_stop(-100, 95.0, 100.0) == 500.0
    assert risk_to_stop(100, 99.0, 100.0) == 0.0  # already through the stop: nothing more to lose to it
    assert risk_to_stop(2, 3.0, 1.0, multiplier=100) == 400.0
    assert r_multiple(100, 100.0, 106.0, 100.0, 97.0) == pytest.approx(2.0)
    assert r_multiple(-100, 100.0, 103.0, 100.0, 103.0) == pytest.approx(-1.0)
    assert r_multiple(1, 1.0, 1.0, 5.0, 5.0) is None


def test_every_named_list_symbol_has_a_sector():
    names = {s for lst in NAMED_LISTS.values() for s in lst}
    missing = sorted(s for s in names if sector_of(s) == UNKNOWN)
    assert missing == []
    assert sector_of("nvda") == "Information Technology" and sector_of("ZZZZ") == UNKNOWN
    assert "_about" not in sector_map()


def test_risk_rules_report_each_breach_worst_first():
    from analytics.risk_rules import RiskRules, check_rules

    rules = RiskRules(max_open_risk_pct=2.0, max_position_pct=20.0, max_sector_pct=30.0)
    got = check_rules(
        rules,
        open_risk_pct=2.5,
        symbol_pct={"TSLA": 18.0, "NVDA": 26.0, "AMD": -22.0},
        sector_pct={"Information Technology": 48.0, "Consumer Discretionary": 18.0},
    )
    assert [(b.rule, b.subject, b.value_pct) for b in got] == [
        ("max_open_risk_pct", "portfolio", 2.5),
        ("max_position_pct", "NVDA", 26.0),
        ("max_position_pct", "AMD", 22.0),
        ("max_sector_pct", "Information Technology", 48.0),
    ]
    assert got[1].describe() == "NVDA exposure 26.0% of the account is over your 20% limit"
    assert check_rules(RiskRules(), open_risk_pct=90.0, symbol_pct={"X": 500.0}, sector_pct={}) == []
    assert (
        check_rules(rules, open_risk_pct=2.0, symbol_pct={"X": 20.0}, sector_pct={"S": 30.0}) == []
    )  # at the limit is within it
    assert RiskRules().empty and not rules.empty


def test_correlated_groups_golden():
    from analytics.risk_rules import RiskRules, check_rules, correlated_groups

    syms = ["NVDA", "AMD", "AVGO", "XOM", "TSLA"]
    pct = [20.0, 15.0, 10.0, 12.0, -8.0]
    corr = [
        [1.00, 0.85, 0.50, 0.10, 0.90],  # NVDA~AMD; NVDA~TSLA but TSLA is short: a hedge, not the same bet
        [0.85, 1.00, 0.75, 0.05, 0.20],  # AMD~AVGO: AVGO joins NVDA through AMD though NVDA~AVGO is only 0.50
        [0.50, 0.75, 1.00, 0.00, 0.10],
        [0.10, 0.05, 0.00, 1.00, 0.70],  # exactly at the threshold is not above it
        [0.90, 0.20, 0.10, 0.70, 1.00],
    ]
    assert correlated_groups(syms, pct, corr) == {"NVDA+AMD+AVGO": 45.0}
    # a higher threshold breaks the chain at 0.75
    assert correlated_groups(syms, pct, corr, threshold=0.8) == {"NVDA+AMD": 35.0}
    # two shorts that move together are one bet too, told as a positive exposure
    assert correlated_groups(["A", "B"], [-10.0, -5.0], [[1.0, 0.9], [0.9, 1.0]]) == {"A+B": 15.0}
    assert correlated_groups([], [], []) == {}

    rules = RiskRules(max_correlated_pct=40.0)
    got = check_rules(rules, open_risk_pct=None, symbol_pct={}, sector_pct={}, correlated_pct={"NVDA+AMD+AVGO": 45.0})
    assert [(b.rule, b.subject, b.value_pct) for b in got] == [("max_correlated_pct", "NVDA+AMD+AVGO", 45.0)]
    assert got[0].describe() == "correlated exposure of NVDA+AMD+AVGO 45.0% of the account is over your 40% limit"
    assert not rules.empty
    assert check_rules(rules, open_risk_pct=None, symbol_pct={}, sector_pct={}, correlated_pct={"A+B": 40.0}) == []


def test_sector_of_sic_golden():
    from analytics.sectors import sector_of_sic

    cases = {
        "3571": "Information Technology",  # electronic computers (AAPL)
        "3674": "Information Technology",  # semiconductors (NVDA)
        "7372": "Information Technology",  # prepackaged software (MSFT)
        "7375": "Communication Services",  # information retrieval services
        "2834": "Health Care",  # pharmaceutical preparations
        "3841": "Health Care",  # surgical and medical instruments
        "6022": "Financials",  # state commercial banks (JPM)
        "6798": "Real Estate",  # REITs, inside the financial division
        "4911": "Utilities",  # electric services
        "1311": "Energy",  # crude petroleum and natural gas (XOM's peers)
        "2911": "Energy",  # petroleum refining
        "3711": "Consumer Discretionary",  # motor vehicles (TSLA)
        "5961": "Consumer Discretionary",  # catalog and mail-order (AMZN)
        "5331": "Consumer Staples",  # variety stores (WMT)
        "2844": "Consumer Staples",  # perfumes, cosmetics, inside chemicals
        "2800": "Materials",  # chemicals
        "3721": "Industrials",  # aircraft (BA)
        "4813": "Communication Services",  # telephone communications
        "7841": "Communication Services",  # video tape rental (NFLX)
    }
    assert {code: sector_of_sic(code) for code in cases} == cases
    assert sector_of_sic(3571) == "Information Technology"
    for nothing in (None, "", "n/a", "9995", "0"):
        assert sector_of_sic(nothing) is None
