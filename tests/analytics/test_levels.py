"""Levels and overlays on small hand-made bar sequences with known answers, and the panel they run on."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from analytics import indicators as ind
from analytics.bars import resample_bars
from analytics.levels import (
    build_levels,
    fair_value_gaps,
    last_true,
    liquidity_pools,
    supply_demand_zones,
    swing_levels,
)
from analytics.panel import Panel
from analytics.session_levels import PriceVolume, session_levels, vwap_recent
from analytics.strategies.features import compute_features
from providers.sim import SimMarket

#: 09:30 ET on Wednesday 2024-03-13, in UTC.
OPEN = datetime(2024, 3, 13, 13, 30, tzinfo=UTC)


def bars(
    rows: list[tuple[float, float, float, float]], start: datetime = OPEN, minutes: int = 5, volume: float = 1000.0
) -> pd.DataFrame:
    """A bar frame from (open, high, low, close) rows, `minutes` apart."""
    idx = pd.DatetimeIndex([start + timedelta(minutes=minutes * i) for i in range(len(rows))])
    df = pd.DataFrame(rows, columns=["open", "high", "low", "close"], index=idx, dtype="float64")
    df["volume"] = volume
    return df


# ---------------------------------------------------------------------------- fair value gaps


def test_textbook_bullish_fvg_and_its_fill():
    rows = [
        (100.0, 101.0, 99.0, 100.5),  # bar i-2: high 101
        (100.6, 106.0, 100.4, 105.5),  # the impulse
        (105.4, 107.0, 103.0, 106.5),  # bar i: low 103 > 101 -> gap [101, 103]
        (106.4, 106.8, 102.0, 102.5),  # trades into the gap, not through it
    ]
    gaps = fair_value_gaps(bars(rows))
    assert len(gaps) == 1
    g = gaps[0]
    assert (g.kind, g.low, g.high, g.filled) == ("fvg_bull", 101.0, 103.0, False)
    assert g.since == OPEN + timedelta(minutes=10)
    filled = fair_value_gaps(bars(rows + [(102.5, 103.5, 100.9, 101.2)]))  # a low through 101 fills it
    assert [(x.kind, x.filled) for x in filled] == [("fvg_bull", True)]


def test_bearish_fvg_and_minimum_size():
    rows = [
        (100.0, 101.0, 99.0, 99.5),  # low 99
        (99.4, 99.6, 94.0, 94.5),
        (94.4, 97.0, 93.0, 93.5),  # high 97 < 99 -> gap [97, 99]
    ]
    (g,) = fair_value_gaps(bars(rows))
    assert (g.kind, g.low, g.high, g.filled) == ("fvg_bear", 97.0, 99.0, False)
    assert fair_value_gaps(bars(rows), min_gap=2.5) == []  # a 2.0 gap is below a 2.5 minimum


def test_no_gap_when_bars_overlap():
    rows = [(100, 101, 99, 100.5), (100.5, 102, 100, 101.5), (101.5, 102.5, 100.9, 102)]
    assert fair_value_gaps(bars(rows)) == []


# ---------------------------------------------------------------------------- swings and liquidity


def _zigzag(highs: list[float], base: float = 100.0) -> list[tuple[float, float, float, float]]:
    """Bars rising to each peak and falling back to `base` (two bars up, two down, peak in the middle)."""
    rows = []
    for peak in highs:
        up = [base + (peak - base) * f for f in (0.3, 0.6)]
        rows += [(u - 0.2, u + 0.1, u - 0.3, u) for u in up]
        rows.append((peak - 0.5, peak, peak - 0.8, peak - 0.3))
        rows += [(u + 0.2, u + 0.3, u - 0.1, u) for u in reversed(up)]
    rows.append((base, base + 0.2, base - 0.2, base))
    return rows


def test_swing_highs_at_the_peaks():
    df = bars(_zigzag([105.0, 108.0, 104.0]))
    highs = [lv.price for lv in swing_levels(df, k=2) if lv.kind == "swing_high"]
    assert highs == [105.0, 108.0, 104.0]


def test_equal_highs_make_a_liquidity_pool_until_taken():
    df = bars(_zigzag([110.0, 107.0, 110.02, 106.0]))
    pools = liquidity_pools(df, tolerance=0.05)
    assert [(p.kind, p.price) for p in pools] == [("liquidity_high", 110.02)]
    assert "x2" in pools[0].label
    # a later bar trading above both highs takes the liquidity: no pool left
    taken = pd.concat([df, bars([(100, 110.5, 99.8, 100.1)], start=df.index[-1] + timedelta(minutes=5))])
    assert [p for p in liquidity_pools(taken, tolerance=0.05) if p.kind == "liquidity_high"] == []
    # outside the tolerance they are two separate highs, not a pool
    assert liquidity_pools(df, tolerance=0.01) == []


# ---------------------------------------------------------------------------- supply / demand


def test_supply_zone_base_then_impulsive_drop():
    rows = [
        (100.0, 101.0, 99.8, 100.8),
        (100.8, 102.0, 100.6, 101.8),
        (101.8, 102.3, 101.9, 102.1),  # the base: a small bar, range 0.4
        (102.1, 102.2, 98.5, 98.7),  # impulsive departure: body 3.4 >= 1.2 ATR, closes below the base
        (98.7, 99.5, 98.0, 99.0),
    ]
    zones = supply_demand_zones(bars(rows), atr_value=1.5)
    assert [(z.kind, z.low, z.high) for z in zones] == [("supply", 101.9, 102.3)]
    assert "fresh" in zones[0].label
    # price back into the zone: no longer fresh; a close above it: broken and gone
    touched = supply_demand_zones(bars(rows + [(99.0, 102.0, 98.9, 99.5)]), atr_value=1.5)
    assert [(z.kind, "fresh" in z.label) for z in touched] == [("supply", False)]
    broken = supply_demand_zones(bars(rows + [(99.0, 103.0, 98.9, 102.8)]), atr_value=1.5)
    assert broken == []


def test_demand_zone_mirror_and_weak_departure_is_not_a_zone():
    rows = [
        (100.0, 100.2, 99.0, 99.2),
        (99.2, 99.4, 99.0, 99.1),  # base
        (99.1, 102.8, 99.0, 102.6),  # impulse up, closes above the base high
    ]
    zones = supply_demand_zones(bars(rows), atr_value=1.5)
    assert [(z.kind, z.low, z.high) for z in zones] == [("demand", 99.0, 99.4)]
    assert supply_demand_zones(bars(rows), atr_value=4.0) == []  # a 3.5 body is not 1.2 x 4.0


# ---------------------------------------------------------------------------- session levels and VWAPs


def _two_sessions() -> pd.DataFrame:
    day1 = bars(
        [(100 + i * 0.1, 100.5 + i * 0.1, 99.5 + i * 0.1, 100.2 + i * 0.1) for i in range(78)], start=OPEN - timedelta(days=1)
    )
    day2 = bars(
        [
            (108.0, 109.0, 107.5, 108.5),
            (108.5, 110.0, 108.0, 109.5),
            (109.5, 109.8, 106.0, 106.5),
            (106.5, 107.2, 106.2, 107.0),
            (107.0, 107.5, 106.8, 107.4),
            (107.4, 108.2, 107.2, 108.0),
            (108.0, 108.6, 107.9, 108.3),
        ],
        start=OPEN,
    )
    return pd.concat([day1, day2])


def test_opening_range_prior_day_and_session_levels():
    df = _two_sessions()
    p = Panel.from_frame("X", df, "5m")
    ss = session_levels(p)
    day1 = df.iloc[:78]
    assert ss.pdh[0] == day1["high"].max() and ss.pdl[0] == day1["low"].min() and ss.pdc[0] == day1["close"].iloc[-1]
    # the first 30 minutes are six 5m bars: 09:30 .. 09:55
    assert ss.orh[0] == 110.0 and ss.orl[0] == 106.0 and ss.or_done
    assert ss.hod[0] == 110.0 and ss.lod[0] == 106.0 and ss.sopen[0] == 108.0
    assert ss.gap[0] == pytest.approx(108.0 - day1["close"].iloc[-1])
    # before 10:00 the range is not complete yet
    assert not session_levels(Panel.from_frame("X", df.iloc[:-2], "5m")).or_done


def test_vwaps_match_the_indicator_module():
    df = asyncio.run(
        SimMarket(seed=0, now=lambda: OPEN + timedelta(hours=2)).bars(
            "AAPL", "5m", OPEN - timedelta(days=3), OPEN + timedelta(hours=2)
        )
    ).df
    p = Panel.from_frame("AAPL", df, "5m")
    ss = session_levels(p)
    pv = PriceVolume.of(p, 0)
    np.testing.assert_allclose(vwap_recent(p, ss, 5, pv)[0], ind.vwap(df)[-5:], rtol=1e-12)
    for anchor in (ss.p0, 10, len(df) - 7):
        got = pv.vwap_from(np.array([anchor]))[0]
        assert got == pytest.approx(ind.anchored_vwap(df, anchor)[-1], rel=1e-12)


def test_level_book_of_a_sim_session_has_every_kind_of_level():
    at = datetime(2024, 3, 14, 15, 30, tzinfo=UTC)
    df = asyncio.run(SimMarket(seed=0, now=lambda: at).bars("NVDA", "5m", at - timedelta(days=14), at)).df
    p = Panel.from_frame("NVDA", df, "5m")
    f = compute_features(p)
    htf = {iv: p.resample(iv) for iv in ("1h", "4h", "1D")}
    book = build_levels(p, f.atr, f.atr_now, f.sess, f.vwap, htf, pv=f.pv)
    levels = book.levels(0)
    kinds = {lv.kind for lv in levels}
    assert {"pdh", "pdl", "pdc", "orh", "orl", "hod", "lod", "swing_high", "swing_low", "htf", "avwap", "vwap"} <= kinds
    assert all(lv.strength >= 0 and lv.strength <= 1 and lv.label for lv in levels)
    assert all(lv.low <= lv.high for lv in levels if lv.low is not None)
    assert {lv.interval for lv in levels if lv.kind == "htf"} == {"1h", "4h", "1D"}
    assert levels == sorted(levels, key=lambda lv: (lv.price, lv.kind))


@pytest.mark.parametrize("symbols", [("TSLA", "SPY", "NVDA"), ("TSLA", "SPY", "NVDA", "AAPL")])
def test_each_rows_levels_are_those_of_its_symbol_alone(symbols):
    # 3 and 4 symbols: as many rows as a block of swing columns, where a per-column fade could pass for a per-row one
    at = datetime(2024, 3, 11, 13, 45, tzinfo=UTC)
    m = SimMarket(seed=0, now=lambda: at)
    frames = {s: asyncio.run(m.bars(s, "5m", at - timedelta(days=14), at)).df for s in symbols}

    def book(p: Panel):
        f = compute_features(p)
        htf = {iv: p.resample(iv) for iv in ("1h", "4h", "1D")}
        return build_levels(p, f.atr, f.atr_now, f.sess, f.vwap, htf, pv=f.pv)

    many = book(Panel.from_frames(frames, "5m"))
    for row, sym in enumerate(symbols):
        alone = book(Panel.from_frame(sym, frames[sym], "5m"))
        assert many.labels == alone.labels
        np.testing.assert_array_equal(many.strength[row], alone.strength[0], err_msg=sym)
    swings = [c for c, lb in enumerate(many.labels) if lb == "1D swing low"]
    assert len(set(many.strength[0, swings])) > 1  # older swings fade


# ---------------------------------------------------------------------------- the panel


def test_panel_resample_matches_resample_bars():
    at = datetime(2024, 3, 13, 17, 7, tzinfo=UTC)
    frames = {
        s: asyncio.run(SimMarket(seed=0, now=lambda: at).bars(s, "1m", at - timedelta(days=9), at)).df for s in ("TSLA", "SPY")
    }
    p = Panel.from_frames(frames, "1m")
    for iv in ("5m", "15m", "30m", "1h", "4h", "1D", "1W"):
        for i, sym in enumerate(p.symbols):
            pd.testing.assert_frame_equal(p.resample(iv).frame(i), resample_bars(frames[sym], iv), check_freq=False)
    closes = p.resample("5m", closes_only=True)
    assert closes.closes_only and np.array_equal(closes.close, p.resample("5m").close)
    with pytest.raises(ValueError):
        closes.resample("1h")


def test_panel_aligns_symbols_with_missing_bars():
    a = bars([(1, 2, 0.5, 1.5)] * 4)
    b = bars([(10, 11, 9, 10.5), (10.5, 12, 10, 11.0)], start=OPEN + timedelta(minutes=5))
    p = Panel.from_frames({"A": a, "B": b}, "5m")
    assert p.n_bars == 4
    assert np.isnan(p.close[1, 0])  # before B's first bar
    assert p.close[1, 3] == 11.0 and p.volume[1, 3] == 0.0  # carried forward, no trades
    pd.testing.assert_frame_equal(p.frame(1).iloc[:2], b, check_freq=False)


def test_last_true_returns_most_recent_first():
    m = np.array([[0, 1, 0, 1, 1, 0], [0, 0, 0, 0, 0, 0]], dtype=bool)
    cols, ok = last_true(m, 2)
    assert cols.tolist() == [[4, 3], [-1, -1]] and ok.tolist() == [[True, True], [False, False]]


def test_confluence_raises_strength_once_per_other_kind_at_the_same_price():
    from analytics.levels import CONFLUENCE_BONUS, with_confluence
    from analytics.models import Level

    levels = [
        Level(kind="pdh", price=100.0, strength=0.8, label="PDH"),
        Level(kind="swing_high", price=100.05, strength=0.5, label="Swing H"),
        Level(kind="swing_high", price=100.02, strength=0.45, label="Swing H"),
        Level(kind="supply", price=100.5, low=100.1, high=100.9, strength=0.6, label="Supply"),
        Level(kind="pdl", price=95.0, strength=0.8, label="PDL"),
    ]
    out = with_confluence(levels, tolerance=0.1)
    s = [lv.strength for lv in out]
    assert s[0] == pytest.approx(0.8 + 2 * CONFLUENCE_BONUS)  # swings (one kind, two levels) and the supply band
    assert s[1] == pytest.approx(0.5 + 2 * CONFLUENCE_BONUS)  # the PDH and the supply band (100.05 is within 0.1 of 100.1)
    assert s[3] == pytest.approx(0.6 + 2 * CONFLUENCE_BONUS)
    assert s[4] == 0.8  # alone
    assert max(lv.strength for lv in with_confluence(levels, tolerance=50.0)) <= 1.0
