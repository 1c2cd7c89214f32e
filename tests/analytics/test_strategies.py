"""The strategy library: declarations, detectors on hand-made setups, and the quality formula."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analytics import quality as cf
from analytics.intervals import STYLE_INTERVALS
from analytics.panel import Panel
from analytics.strategies import STRATEGIES, by_id, for_style
from analytics.strategies.features import compute_features, ema_last
from core.errors import UserError

OPEN = datetime(2024, 3, 13, 13, 30, tzinfo=UTC)  # 09:30 ET
PRIOR_OPEN = OPEN - timedelta(days=1)


def frame(rows, start, minutes=5, volume=10_000.0) -> pd.DataFrame:
    idx = pd.DatetimeIndex([start + timedelta(minutes=minutes * i) for i in range(len(rows))])
    df = pd.DataFrame(rows, columns=["open", "high", "low", "close"], index=idx, dtype="float64")
    df["volume"] = volume
    return df


def quiet_day(level: float = 100.0, n: int = 78) -> pd.DataFrame:
    """A prior session drifting in a narrow band around `level`."""
    rows = []
    for i in range(n):
        c = level + 0.3 * np.sin(i / 3.0)
        rows.append((c - 0.05, c + 0.25, c - 0.25, c))
    return frame(rows, PRIOR_OPEN)


def signal_of(strategy_id: str, df: pd.DataFrame):
    f = compute_features(Panel.from_frame("X", df, "5m"))
    return by_id(strategy_id).detector(f), f


# ---------------------------------------------------------------------------- declarations


def test_every_strategy_is_declared_once_with_its_rules():
    ids = [s.id for s in STRATEGIES]
    assert len(ids) >= 7 and len(set(ids)) == len(ids)
    names = {s.name for s in STRATEGIES}
    for needle in ("ORB", "VWAP", "EMA", "prior-day", "gap-and-go", "gap-fill", "sweep", "FVG"):
        assert any(needle in n for n in names), needle
    for s in STRATEGIES:
        assert s.styles and s.styles <= set(STYLE_INTERVALS)
        assert s.min_rr >= 1.5 and callable(s.detector) and s.description
    assert for_style("leaps") and all(s.serves("leaps") for s in for_style("leaps"))
    assert {s.id for s in for_style("intraday")} >= {"orb", "vwap_reclaim", "gap_go"}
    with pytest.raises(UserError, match="known"):
        by_id("nope")


# ---------------------------------------------------------------------------- detectors


def test_orb_long_when_price_presses_the_range_high_above_vwap():
    opening = [
        (100.5, 102.0, 100.0, 101.5),
        (101.5, 101.8, 100.2, 100.6),
        (100.6, 101.2, 100.1, 101.0),
        (101.0, 101.6, 100.4, 101.4),
        (101.4, 101.9, 100.9, 101.2),
        (101.2, 101.7, 100.8, 101.5),
    ]
    drift = [(101.5, 101.8, 101.3, 101.6), (101.6, 101.9, 101.4, 101.7), (101.7, 101.95, 101.5, 101.85)]
    df = pd.concat([quiet_day(), frame(opening + drift, OPEN)])
    sig, f = signal_of("orb", df)
    assert f.sess.or_done and (f.sess.orh[0], f.sess.orl[0]) == (102.0, 100.0)
    assert sig.active[0] and sig.direction[0] == 1
    assert sig.entry[0] == 102.0 and sig.stop_basis[0] == 101.0  # the break of ORH, stop basis the range midpoint
    # during the opening range itself there is no breakout yet, and the reason says why
    early, _ = signal_of("orb", pd.concat([quiet_day(), frame(opening[:3], OPEN)]))
    assert not early.active[0] and "not complete" in early.reason[0]


def test_sweep_of_the_range_high_that_closes_back_inside_is_a_short():
    rng = [(100.5, 101.0, 100.0, 100.5 + 0.2 * ((i % 3) - 1)) for i in range(45)]
    sweep = [(100.6, 100.9, 100.4, 100.8), (100.9, 101.6, 100.4, 100.5)]  # runs the 101.0 highs, closes back under
    df = frame(rng + sweep, OPEN - timedelta(days=1) + timedelta(hours=2))
    sig, _ = signal_of("liquidity_sweep", df)
    assert sig.active[0] and sig.direction[0] == -1
    assert sig.entry[0] == 100.5 and sig.stop_basis[0] == 101.6
    calm, _ = signal_of("liquidity_sweep", frame(rng, OPEN - timedelta(days=1) + timedelta(hours=2)))
    assert not calm.active[0] and "no sweep" in calm.reason[0]


def test_fvg_retest_long_in_an_uptrend():
    rows = []
    c = 100.0
    for _ in range(60):  # a steady uptrend: EMAs stack up
        rows.append((c, c + 0.3, c - 0.2, c + 0.15))
        c += 0.15
    h_before = rows[-1][1]
    rows.append((c, c + 2.0, c - 0.1, c + 1.9))  # impulse
    gap_low = h_before + 1.0  # the next bar's low leaves a gap above h_before
    rows.append((c + 1.9, c + 3.0, gap_low, c + 2.8))
    top = c + 3.0
    for _ in range(4):  # drift higher
        rows.append((top - 0.2, top + 0.2, top - 0.4, top))
    mid = (h_before + gap_low) / 2
    rows.append((top, top + 0.1, mid, gap_low + 0.2))  # dips into the gap, closes inside it
    df = frame(rows, OPEN - timedelta(days=1) + timedelta(hours=1))
    sig, _ = signal_of("fvg_retest", df)
    assert sig.active[0] and sig.direction[0] == 1
    assert sig.stop_basis[0] == pytest.approx(h_before)
    assert sig.zone_low[0] == pytest.approx(h_before) and sig.zone_high[0] == pytest.approx(gap_low)


def test_flat_market_gives_reasons_not_signals():
    df = pd.concat([quiet_day(), frame([(100.0, 100.1, 99.9, 100.0)] * 20, OPEN)])
    f = compute_features(Panel.from_frame("X", df, "5m"))
    for s in STRATEGIES:
        sig = s.detector(f)
        assert sig.active.shape == (1,) and sig.direction.shape == (1,)
        if not sig.active[0]:
            assert isinstance(sig.reason[0], str) and sig.reason[0]
            assert sig.direction[0] == 0 and np.isnan(sig.entry[0])


def test_daily_bars_skip_intraday_only_strategies():
    idx = pd.bdate_range("2023-01-02", periods=120, tz="UTC") + pd.Timedelta(hours=14, minutes=30)
    c = 100 + np.cumsum(np.sin(np.arange(120) / 5.0))
    df = pd.DataFrame({"open": c, "high": c + 1, "low": c - 1, "close": c + 0.2, "volume": 1e6}, index=idx)
    f = compute_features(Panel.from_frame("X", df, "1D"))
    for sid in ("orb", "vwap_reclaim", "gap_go", "gap_fill"):
        sig = by_id(sid).detector(f)
        assert not sig.active[0] and "intraday" in sig.reason[0]


def test_vectorised_ema_matches_talib():
    import talib

    rng = np.random.default_rng(3)
    x = 100 + np.cumsum(rng.normal(0, 1, (6, 300)), axis=1)
    x[2, :7] = np.nan  # a row with leading gaps falls back to TA-Lib itself
    for p in (9, 21, 50):
        np.testing.assert_allclose(ema_last(x, p), [talib.EMA(np.ascontiguousarray(r), p)[-1] for r in x], rtol=1e-10)


# ---------------------------------------------------------------------------- quality


def test_weights_cover_every_factor_and_sum_to_one():
    assert set(cf.WEIGHTS) == set(cf.FACTORS) and sum(cf.WEIGHTS.values()) == pytest.approx(1.0)
    assert "quality = sum_i w_i * f_i" in cf.__doc__


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.just(float("nan"))), min_size=7, max_size=7))
def test_quality_is_the_documented_weighted_mean_in_unit_interval(values):
    cols = {name: np.array([v]) for name, v in zip(cf.FACTORS, values)}
    f = cf.factor_matrix(cols)
    c = cf.quality(f)[0]
    assert 0.0 <= c <= 1.0
    assert ((f >= 0) & (f <= 1)).all()
    assert c == pytest.approx(sum(cf.WEIGHTS[k] * f[0, i] for i, k in enumerate(cf.FACTORS)))


def test_factor_scores_move_the_right_way():
    d = np.array([1.0, -1.0])
    assert cf.vwap_score(d, np.array([101.0, 101.0]), np.array([100.0, 100.0]), np.array([1.0, 1.0])).tolist() == [1.0, 0.0]
    assert cf.mtf_score(d, [np.array([1.0, 1.0])]).tolist() == [1.0, 0.0]
    assert cf.room_score(np.array([4.0, 0.5]), np.array([1.0, 1.0])).tolist() == [1.0, 0.25]
    assert cf.atr_regime_score(np.array([1.0]))[0] == 1.0 > cf.atr_regime_score(np.array([2.5]))[0]
    assert cf.liquidity_score(np.array([1e7, 3.2e9])).tolist() == pytest.approx([0.0, 1.0], abs=0.01)
    stack = cf.ema_stack_score(
        d,
        np.array([104.0] * 2),
        np.array([103.0] * 2),
        np.array([102.0] * 2),
        np.array([101.0] * 2),
        np.array([100.0] * 2),
        np.array([0.5] * 2),
    )
    assert stack.tolist() == [1.0, 0.0]
    assert cf.rank_score(np.array([0.5, 0.5]), np.array([1.0, 4.0])).tolist() == pytest.approx([0.45, 0.6])
