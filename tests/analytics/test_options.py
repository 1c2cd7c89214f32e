"""Black-Scholes against QuantLib, parity, greeks by finite differences, the IV solver, chain analysis and contract ranking."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest
import QuantLib as ql
from hypothesis import given, settings
from hypothesis import strategies as st

from analytics.blackscholes import bs_greeks, bs_price
from analytics.chains import analyse_chain, expiry_moment, years_to_expiry
from analytics.iv import implied_vol, iv_bounds, no_solution_reason, solve_iv
from analytics.models import OptionChain, OptionContract, Plan, Target
from analytics.options import (
    GATES,
    HORIZON_DAYS,
    SCORE_WEIGHTS,
    contract_loss_at_stop,
    expirations_for_style,
    rank_contracts,
)

# ---------------------------------------------------------------------------- QuantLib reference

QL_TODAY = ql.Date(15, 3, 2024)


def ql_option(S, K, days, r, q, sigma, is_call):
    """A QuantLib European option priced analytically; T = days / 365 exactly (Actual/365 Fixed)."""
    ql.Settings.instance().evaluationDate = QL_TODAY
    dc = ql.Actual365Fixed()
    spot = ql.SimpleQuote(S)
    rate = ql.YieldTermStructureHandle(ql.FlatForward(QL_TODAY, r, dc, ql.Continuous))
    div = ql.YieldTermStructureHandle(ql.FlatForward(QL_TODAY, q, dc, ql.Continuous))
    vol = ql.BlackVolTermStructureHandle(ql.BlackConstantVol(QL_TODAY, ql.NullCalendar(), sigma, dc))
    process = ql.BlackScholesMertonProcess(ql.QuoteHandle(spot), div, rate, vol)
    payoff = ql.PlainVanillaPayoff(ql.Option.Call if is_call else ql.Option.Put, K)
    opt = ql.VanillaOption(payoff, ql.EuropeanExercise(QL_TODAY + days))
    opt.setPricingEngine(ql.AnalyticEuropeanEngine(process))
    return opt, process


GRID = [
    # S, K, days, r, q, sigma
    (100.0, 100.0, 30, 0.045, 0.0, 0.25),
    (100.0, 80.0, 7, 0.045, 0.013, 0.60),
    (100.0, 130.0, 365, 0.03, 0.02, 0.35),
    (587.0, 620.0, 58, 0.045, 0.0, 0.95),
    (452.0, 400.0, 191, 0.05, 0.013, 0.18),
    (36.9, 37.5, 2, 0.045, 0.018, 0.45),
    (250.0, 150.0, 730, 0.04, 0.01, 0.55),
    (120.0, 125.0, 1, 0.045, 0.0003, 1.20),
]


@pytest.mark.parametrize("is_call", [True, False])
@pytest.mark.parametrize("S,K,days,r,q,sigma", GRID)
def test_price_and_greeks_match_quantlib(S, K, days, r, q, sigma, is_call):
    opt, _ = ql_option(S, K, days, r, q, sigma, is_call)
    T = days / 365.0
    price = bs_price(S, K, T, r, q, sigma, is_call)
    g = bs_greeks(S, K, T, r, q, sigma, is_call)
    assert price == pytest.approx(opt.NPV(), abs=1e-6)
    assert g["delta"] == pytest.approx(opt.delta(), abs=1e-6)
    assert g["gamma"] == pytest.approx(opt.gamma(), abs=1e-6)
    assert g["vega"] == pytest.approx(opt.vega() / 100.0, abs=1e-6)  # ours per vol point
    assert g["theta"] == pytest.approx(opt.theta() / 365.0, abs=1e-6)  # ours per calendar day
    assert g["rho"] == pytest.approx(opt.rho() / 100.0, abs=1e-6)


@pytest.mark.parametrize("S,K,days,r,q,sigma", GRID)
def test_implied_vol_matches_quantlib(S, K, days, r, q, sigma):
    for is_call in (True, False):
        opt, process = ql_option(S, K, days, r, q, sigma, is_call)
        target = opt.NPV()
        if target - float(iv_bounds(S, K, days / 365, r, q, is_call)[0]) < 1e-6:
            continue  # no time value left to carry a volatility
        ref = opt.impliedVolatility(target, process, 1e-12, 1000, 1e-4, 10.0)
        ours = solve_iv(target, S, K, days / 365.0, r, q, is_call)
        assert ours == pytest.approx(ref, abs=1e-6)
        assert ours == pytest.approx(sigma, abs=1e-6)


def test_put_call_parity_with_dividends():
    rng = np.random.default_rng(11)
    n = 2000
    S = rng.uniform(5, 900, n)
    K = S * np.exp(rng.normal(0, 0.35, n))
    T = rng.uniform(1 / 365, 3.0, n)
    r = rng.uniform(0.0, 0.07, n)
    q = rng.uniform(0.0, 0.05, n)
    sig = rng.uniform(0.05, 2.0, n)
    c = bs_price(S, K, T, r, q, sig, True)
    p = bs_price(S, K, T, r, q, sig, False)
    np.testing.assert_allclose(c - p, S * np.exp(-q * T) - K * np.exp(-r * T), rtol=0, atol=1e-9 * S.max())


@pytest.mark.parametrize("is_call", [True, False])
def test_greeks_match_finite_differences_across_a_grid(is_call):
    rng = np.random.default_rng(5)
    S = 100.0
    K = rng.uniform(70, 140, 40)
    T = rng.uniform(0.02, 2.0, 40)
    sig = rng.uniform(0.1, 0.9, 40)
    r, q = 0.045, 0.02
    g = bs_greeks(S, K, T, r, q, sig, is_call)
    h = 1e-3
    delta = (bs_price(S + h, K, T, r, q, sig, is_call) - bs_price(S - h, K, T, r, q, sig, is_call)) / (2 * h)
    gamma = (
        bs_price(S + h, K, T, r, q, sig, is_call)
        - 2 * bs_price(S, K, T, r, q, sig, is_call)
        + bs_price(S - h, K, T, r, q, sig, is_call)
    ) / h**2
    vega = (bs_price(S, K, T, r, q, sig + 1e-6, is_call) - bs_price(S, K, T, r, q, sig - 1e-6, is_call)) / 2e-6 * 0.01
    theta = -(bs_price(S, K, T + 1e-6, r, q, sig, is_call) - bs_price(S, K, T - 1e-6, r, q, sig, is_call)) / 2e-6 / 365.0
    np.testing.assert_allclose(g["delta"], delta, atol=1e-7)
    np.testing.assert_allclose(g["gamma"], gamma, atol=1e-5)
    np.testing.assert_allclose(g["vega"], vega, atol=1e-7)
    np.testing.assert_allclose(g["theta"], theta, atol=1e-6)


# ---------------------------------------------------------------------------- IV solver

STRIKES = 100.0 * np.exp(np.linspace(-1.2, 1.2, 49))
EXPIRIES = np.array([1, 3, 7, 14, 30, 60, 91, 182, 365, 730, 1095]) / 365.0
VOLS = np.array([0.05, 0.12, 0.25, 0.5, 0.9, 1.6, 3.0])


@pytest.mark.parametrize("is_call", [True, False])
def test_iv_round_trips_across_strikes_expiries_and_vols(is_call):
    S, r, q = 100.0, 0.045, 0.015
    K = STRIKES[None, None, :]
    T = EXPIRIES[:, None, None]
    sig = VOLS[None, :, None]
    price = bs_price(S, K, T, r, q, sig, is_call)
    lower, _ = iv_bounds(S, K, T, r, q, is_call)
    # Only prices that still carry information: time value above 1e-8 of spot (below that the
    # double-precision price itself has lost the volatility).
    informative = (price - lower) > 1e-8 * S
    assert informative.sum() > 0.6 * informative.size
    iv = implied_vol(price, S, K, T, r, q, is_call)
    sig_b = np.broadcast_to(sig, iv.shape)
    assert np.all(np.isfinite(iv[informative]))
    assert np.max(np.abs(iv - sig_b)[informative]) < 1e-6


@pytest.mark.parametrize("is_call", [True, False])
def test_iv_round_trips_densely_around_the_money(is_call):
    # Near-ATM strikes (|ln F/K| of a few 0.1 %) once sent the bracket's lower end into a region
    # where the far-from-money formula underflows; every one of these must solve.
    S, r, q = 100.0, 0.045, 0.015
    T = EXPIRIES[:, None, None]
    F = S * np.exp((r - q) * T)
    K = F * np.exp(np.linspace(-0.02, 0.02, 81))[None, None, :]
    sig = VOLS[None, :, None]
    price = bs_price(S, K, T, r, q, sig, is_call)
    lower, _ = iv_bounds(S, K, T, r, q, is_call)
    informative = (price - lower) > 1e-8 * S  # all but 1-day 5 %-vol options 2 % in the money
    assert informative.mean() > 0.99
    iv = implied_vol(price, S, K, T, r, q, is_call)
    assert np.all(np.isfinite(iv[informative]))
    assert np.max(np.abs(iv - np.broadcast_to(sig, iv.shape))[informative]) < 1e-6


def test_iv_deep_wings_far_beyond_the_informative_range_are_exact_when_prices_are():
    # Deep OTM prices computed in a form without cancellation (put far below spot, one day):
    # the solver still returns the volatility, even for prices around 1e-30.
    S, K, T, r, q, sig = 100.0, 60.0, 5 / 365.0, 0.0, 0.0, 0.5
    price = bs_price(S, K, T, r, q, sig, False)
    assert 0 < price < 1e-12
    assert solve_iv(price, S, K, T, r, q, False) == pytest.approx(sig, abs=1e-6)


@pytest.mark.parametrize(
    "price,S,K,T,is_call,why",
    [
        (5.0, 100.0, 90.0, 0.5, True, "intrinsic"),  # below the discounted intrinsic value (~12.2)
        (100.0, 100.0, 90.0, 0.5, True, "upper bound"),  # at the discounted forward
        (150.0, 100.0, 110.0, 0.5, False, "upper bound"),  # above the discounted strike
        (0.0, 100.0, 100.0, 0.5, True, "positive"),
        (-1.0, 100.0, 100.0, 0.5, False, "positive"),
        (float("nan"), 100.0, 100.0, 0.5, True, "positive"),
        (3.0, 100.0, 100.0, 0.0, True, "expired"),
    ],
)
def test_no_solution_outside_the_bounds(price, S, K, T, is_call, why):
    assert solve_iv(price, S, K, T, 0.045, 0.01, is_call) is None
    assert np.isnan(implied_vol(price, S, K, T, 0.045, 0.01, is_call))
    assert why in no_solution_reason(price, S, K, T, 0.045, 0.01, is_call)


def test_exactly_at_intrinsic_has_no_solution_and_just_above_has_one():
    S, K, T, r, q = 100.0, 90.0, 0.5, 0.045, 0.0
    lower = float(iv_bounds(S, K, T, r, q, True)[0])
    assert solve_iv(lower, S, K, T, r, q, True) is None
    v = solve_iv(lower + 1e-4, S, K, T, r, q, True)
    assert v is not None and 0 < v < 0.1
    assert bs_price(S, K, T, r, q, v, True) == pytest.approx(lower + 1e-4, abs=1e-9)


@settings(max_examples=300, deadline=None)
@given(
    S=st.floats(1.0, 2000.0),
    m=st.floats(-2.5, 2.5),
    days=st.floats(0.1, 1500.0),
    sigma=st.floats(0.01, 4.0),
    r=st.floats(0.0, 0.1),
    q=st.floats(0.0, 0.08),
    is_call=st.booleans(),
    bump=st.floats(-0.5, 0.5),
)
def test_iv_never_returns_garbage(S, m, days, sigma, r, q, is_call, bump):
    """Whatever the input, the answer is either 'no solution' or a volatility that reprices the input."""
    K = S * math.exp(m)
    T = days / 365.0
    price = bs_price(S, K, T, r, q, sigma, is_call) * (1.0 + bump)
    v = solve_iv(price, S, K, T, r, q, is_call)
    lower, upper = (float(x) for x in iv_bounds(S, K, T, r, q, is_call))
    if not (lower < price < upper):
        assert v is None
        return
    if price - lower > 1e-8 * S and upper - price > 1e-3 * upper:
        # comfortably inside the bounds there is always a volatility, and the solver finds it
        assert v is not None
    if v is not None:
        assert 0 < v < 1000
        assert bs_price(S, K, T, r, q, v, is_call) == pytest.approx(price, rel=1e-7, abs=1e-10 * S)


def test_vectorised_shapes_and_scalars():
    assert isinstance(implied_vol(5.0, 100, 100, 0.25, 0.04, 0.0, "call"), float)
    out = implied_vol(np.array([[5.0, 7.0], [0.0, 9.0]]), 100.0, 100.0, 0.25, 0.04, 0.0, True)
    assert out.shape == (2, 2) and np.isnan(out[1, 0]) and np.all(np.isfinite(out[0]))


# ---------------------------------------------------------------------------- chains

AT = datetime(2024, 3, 13, 15, 0, tzinfo=UTC)


def synthetic_chain(
    spot=100.0, expiration=date(2024, 4, 19), q=0.02, r=0.045, skew=0.0, atm=0.30, spread=0.02, oi=2000, vol=500, at=AT
):
    """A chain quoted symmetrically around Black-Scholes values with a known smile."""
    T = years_to_expiry(expiration, at)
    strikes = np.arange(60.0, 141.0, 2.5)
    F = spot * math.exp((r - q) * T)
    x = np.log(strikes / F)
    ivs = atm - skew * x
    contracts = []
    for K, iv in zip(strikes, ivs):
        for right in ("call", "put"):
            theo = float(bs_price(spot, K, T, r, q, iv, right == "call"))
            half = max(0.005, spread * theo / 2)
            contracts.append(
                OptionContract(
                    symbol=f"XYZ{expiration:%y%m%d}{right[0].upper()}{int(K * 1000):08d}",
                    underlying="XYZ",
                    expiration=expiration,
                    strike=float(K),
                    right=right,
                    bid=max(0.0, theo - half),
                    ask=theo + half,
                    volume=vol,
                    open_interest=oi,
                )
            )
    return OptionChain(
        underlying="XYZ", expiration=expiration, underlying_price=spot, as_of=at, source="test", contracts=contracts
    )


def test_expiry_moment_is_the_session_close():
    assert expiry_moment(date(2024, 4, 19)) == datetime(2024, 4, 19, 20, 0, tzinfo=UTC)
    assert expiry_moment(date(2024, 11, 29)).hour == 18  # day after Thanksgiving closes 13:00 ET
    assert years_to_expiry(date(2024, 3, 1), AT) == 0.0


def test_analyse_chain_recovers_forward_dividend_and_iv():
    view = analyse_chain(synthetic_chain(q=0.02, skew=0.2), AT, rate=0.045)
    assert view.forward_source == "parity"
    assert view.div_yield == pytest.approx(0.02, abs=2e-4)
    f = view.frame
    # one-sided quotes (no bid) have no mid, and this chain gives no provider IV to fall back on
    assert (f.iv_source[f.bid > 0] == "mid").all() and (f.iv_source[f.bid == 0] == "none").all()
    f = f[f.bid > 0]
    x = np.log(f.strike / view.forward)
    # symmetric quotes around theory: mids are the model prices, so IV comes back exactly
    np.testing.assert_allclose(f.iv, 0.30 - 0.2 * x, atol=2e-3)


def test_analyse_chain_falls_back_to_provider_iv_and_flags_it():
    ch = synthetic_chain()
    broken = [
        c.model_copy(update={"bid": 0.0, "iv": 0.33}) if c.strike == 100.0 and c.right == "call" else c for c in ch.contracts
    ]
    view = analyse_chain(ch.model_copy(update={"contracts": broken}), AT)
    row = view.frame[(view.frame.strike == 100.0) & view.frame.is_call].iloc[0]
    assert row.iv_source == "provider" and row.iv == 0.33


# ---------------------------------------------------------------------------- ranking


def make_plan(direction="long", entry=101.0, stop=97.0, targets=(109.0, 115.0), style="swing"):
    sign = 1 if direction == "long" else -1
    return Plan(
        plan_id="P-TEST",
        symbol="XYZ",
        style=style,
        strategy="test",
        direction=direction,
        interval="1h",
        entry=entry,
        stop=stop,
        targets=[Target(price=t, rr=abs(t - entry) / abs(entry - stop), reason="level") for t in targets] if sign else [],
        quality=0.6,
        quality_factors={},
        confluence=[],
        invalidation="close below stop",
        as_of=AT,
        session="open",
        sources=["test"],
    )


def views_for(style="swing", **kw):
    exps = [date(2024, 4, 5), date(2024, 4, 19), date(2024, 5, 17)]
    return [analyse_chain(synthetic_chain(expiration=e, **kw), AT) for e in exps]


def test_long_plan_gets_calls_that_pass_every_gate_with_scenarios():
    plan = make_plan()
    r = rank_contracts(plan, views_for(), at=AT, sources=["test"])
    assert r.reason is None and r.right == "call" and r.candidates
    g = GATES["swing"]
    for c in r.candidates:
        assert c.right == "call"
        assert g.delta_min <= abs(c.delta) <= g.delta_max
        assert c.spread_pct <= g.max_spread_pct
        assert g.dte_min <= c.dte <= g.dte_max
        assert 0.0 <= c.score <= 1.0
        assert c.score == pytest.approx(sum(SCORE_WEIGHTS[k] * v for k, v in c.score_factors.items()), abs=1e-3)
        anchors = {s.anchor: s for s in c.scenarios}
        assert list(anchors) == ["entry", "stop", "T1", "T2"]
        assert anchors["stop"].pnl < 0 < anchors["T1"].pnl < anchors["T2"].pnl
        # theta: at the entry price a week later the long call is worth less than paid
        assert anchors["entry"].pnl < 0
        assert c.loss_at_stop == pytest.approx(-anchors["stop"].pnl)
        assert c.rr[0] == pytest.approx(anchors["T1"].pnl / c.loss_at_stop, rel=1e-3)
    scores = [c.score for c in r.candidates]
    assert scores == sorted(scores, reverse=True)


def test_scenario_values_are_black_scholes_at_the_horizon_holding_iv():
    plan = make_plan()
    views = views_for()
    r = rank_contracts(plan, views, at=AT)
    c = r.candidates[0]
    view = next(v for v in views if v.expiration == c.expiration)
    row = view.frame[view.frame.symbol == c.symbol].iloc[0]
    T_h = view.T - HORIZON_DAYS["swing"] / 365.0
    half = row.spread / 2
    premium = bs_price(plan.entry, c.strike, view.T, view.rate, view.div_yield, row.iv, True) + half
    assert c.premium == pytest.approx(premium, abs=1e-4)
    at_t1 = bs_price(115.0, c.strike, T_h, view.rate, view.div_yield, row.iv, True) - half
    t2 = next(s for s in c.scenarios if s.anchor == "T2")
    assert t2.value == pytest.approx(at_t1, abs=1e-4)
    assert t2.pnl == pytest.approx((at_t1 - premium) * 100, abs=0.01)


def test_short_plan_gets_puts():
    plan = make_plan("short", entry=99.0, stop=103.0, targets=(92.0, 88.0))
    r = rank_contracts(plan, views_for(), at=AT)
    assert r.right == "put" and r.candidates
    assert all(c.right == "put" and c.delta < 0 for c in r.candidates)
    t1 = [s for s in r.candidates[0].scenarios if s.anchor == "T1"][0]
    assert t1.pnl > 0


def test_risk_amount_only_sets_the_count_and_never_filters():
    plan = make_plan()
    views = views_for()
    free = rank_contracts(plan, views, at=AT, top=50)
    tiny = rank_contracts(plan, views, at=AT, risk_amount=1.0, top=50)
    big = rank_contracts(plan, views, at=AT, risk_amount=10_000.0, top=50)
    assert [c.symbol for c in free.candidates] == [c.symbol for c in tiny.candidates] == [c.symbol for c in big.candidates]
    assert all(c.contracts == 0 and c.max_loss == 0 for c in tiny.candidates)
    for c in big.candidates:
        assert c.contracts == math.floor(10_000.0 / c.loss_at_stop)
        assert c.max_loss <= 10_000.0 and c.max_loss == pytest.approx(c.contracts * c.loss_at_stop, abs=0.01)
    assert all(c.contracts is None for c in free.candidates)


def test_no_plan_and_failed_gates_say_why():
    none = rank_contracts(None, views_for(), at=AT, style="swing", no_plan_reason="no setup: range-bound")
    assert none.plan is None and none.candidates == [] and "range-bound" in none.reason
    wide = rank_contracts(make_plan(), views_for(spread=0.6), at=AT)
    assert wide.candidates == [] and "spread" in wide.reason and wide.rejected["spread"] > 0
    thin = rank_contracts(make_plan(), views_for(oi=3, vol=0), at=AT)
    assert thin.candidates == [] and "open interest" in thin.reason
    assert sum(thin.rejected.values()) == thin.considered


def test_asked_side_against_the_plan_keeps_the_plans_side_and_says_why_in_one_line():
    short = make_plan("short", entry=99.0, stop=103.0, targets=(92.0, 88.0))
    r = rank_contracts(short, views_for(), at=AT, asked="call")
    assert r.right == "put" and r.asked == "call" and r.candidates
    assert r.side_note and "\n" not in r.side_note
    assert "calls" in r.side_note and "short" in r.side_note and "puts" in r.side_note
    agreed = rank_contracts(short, views_for(), at=AT, asked="put")
    assert agreed.side_note is None and [c.symbol for c in agreed.candidates] == [c.symbol for c in r.candidates]
    assert rank_contracts(make_plan(), views_for(), at=AT, asked="call").side_note is None


def test_contracts_under_the_plans_minimum_rr_are_flagged_and_ranked_below_the_rest():
    plan = make_plan()
    free = rank_contracts(plan, views_for(), at=AT, top=50)
    rr1 = sorted(c.rr[0] for c in free.candidates if c.rr[0] is not None)
    floor = rr1[len(rr1) // 2]  # about half pass
    r = rank_contracts(plan, views_for(), at=AT, top=50, min_rr=floor)
    assert r.plan is not None and r.plan.min_rr == floor
    flags = [c.below_min_rr for c in r.candidates]
    assert any(flags) and not all(flags)
    for c in r.candidates:
        assert c.below_min_rr == (c.rr[0] is not None and c.rr[0] < floor)
    # every contract that keeps the minimum comes before any that does not, each part by score
    assert flags == sorted(flags)
    for part in (False, True):
        scores = [c.score for c in r.candidates if c.below_min_rr is part]
        assert scores == sorted(scores, reverse=True)
    assert not any(c.below_min_rr for c in free.candidates)  # strategy "test" has no known minimum


def test_the_plans_minimum_rr_comes_from_its_strategy():
    plan = make_plan().model_copy(update={"strategy": "fvg_retest"})
    r = rank_contracts(plan, views_for(), at=AT, top=50)
    assert r.plan is not None and r.plan.min_rr == 2.0
    assert all(c.below_min_rr == (c.rr[0] is not None and c.rr[0] < 2.0) for c in r.candidates)


def test_one_contract_priced_alone_loses_what_the_ranking_says_at_the_stop():
    plan = make_plan("short", entry=99.0, stop=103.0, targets=(92.0, 88.0))
    views = views_for()
    r = rank_contracts(plan, views, at=AT, top=50)
    for c in r.candidates:
        view = next(v for v in views if v.expiration == c.expiration)
        row = view.frame[view.frame.symbol == c.symbol].iloc[0]
        premium, loss = contract_loss_at_stop(
            plan.entry,
            plan.stop,
            strike=c.strike,
            T_now=view.T,
            horizon_days=HORIZON_DAYS["swing"],
            rate=view.rate,
            div_yield=view.div_yield,
            iv=row.iv,
            call=False,
            spread=row.spread,
            multiplier=row.multiplier,
        )
        assert loss == c.loss_at_stop and premium == pytest.approx(c.premium, abs=1e-4)


def test_expirations_for_style_respects_the_window():
    today = date(2024, 3, 13)
    exps = [today + timedelta(days=d) for d in (2, 9, 16, 23, 30, 37, 44, 58, 72, 100, 191, 310, 675)]
    for style, g in GATES.items():
        picked = expirations_for_style(exps, today, style)
        assert all(g.dte_min <= (e - today).days <= g.dte_max for e in picked)
        assert len(picked) <= 6
    assert expirations_for_style(exps, today, "swing")
