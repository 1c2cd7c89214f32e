"""Indicators against plain, loop-by-bar reference computations written out here.

The references deliberately share no code with the library: recursive Wilder and
EMA loops seeded the way TA-Lib seeds them, statistics.pstdev/stdev for the
deviations, and per-day dictionaries for the session quantities.
"""

from __future__ import annotations

import math
import statistics
import warnings
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analytics import indicators as ind
from analytics.bars import check_bars, empty_bars
from analytics.sessions import EXCHANGE_TZ

RTOL = 1e-9

# Wednesday to the next Tuesday: a weekend in between, and US daylight saving time
# starts on Sunday 2024-03-10, so 09:30 ET is 14:30 UTC before and 13:30 UTC after.
SESSIONS = ["2024-03-06", "2024-03-07", "2024-03-08", "2024-03-11", "2024-03-12"]


# --------------------------------------------------------------------------- test bars


def make_bars(sessions: list[str] = SESSIONS, seed: int = 7, start: str = "09:30", minutes: int = 390) -> pd.DataFrame:
    """Deterministic 1-minute bars for each session from `start` ET, UTC-indexed."""
    rs = np.random.RandomState(seed)
    frames = []
    price = 100.0
    for day in sessions:
        local = pd.date_range(f"{day} {start}", periods=minutes, freq="min", tz=EXCHANGE_TZ)
        price *= math.exp(rs.normal(0.0, 0.01))  # overnight gap
        close = price * np.exp(np.cumsum(rs.normal(0.0, 0.0008, minutes)))
        open_ = np.concatenate([[price], close[:-1]])
        high = np.maximum(open_, close) * (1 + np.abs(rs.normal(0.0, 0.0004, minutes)))
        low = np.minimum(open_, close) * (1 - np.abs(rs.normal(0.0, 0.0004, minutes)))
        volume = rs.randint(100, 5000, minutes).astype(np.float64)
        frames.append(
            pd.DataFrame(
                {"open": open_, "high": high, "low": low, "close": close, "volume": volume},
                index=local.tz_convert("UTC"),
            )
        )
        price = float(close[-1])
    return check_bars(pd.concat(frames).astype(np.float64))


@pytest.fixture(scope="module")
def bars() -> pd.DataFrame:
    return make_bars()


@pytest.fixture(scope="module")
def daily_closes() -> np.ndarray:
    rs = np.random.RandomState(11)
    return 50.0 * np.exp(np.cumsum(rs.normal(0.0, 0.015, 300)))


def et_date(ts: pd.Timestamp) -> date:
    return ts.tz_convert(EXCHANGE_TZ).date()


def assert_matches(
    actual: np.ndarray, expected: list[float] | np.ndarray, warm: int, rtol: float = RTOL, atol: float = 0.0
) -> None:
    """NaN exactly during the warm-up, equal to the reference after it."""
    expected = np.asarray(expected, dtype=np.float64)
    assert isinstance(actual, np.ndarray) and actual.dtype == np.float64
    assert actual.shape == expected.shape
    assert np.isnan(actual[:warm]).all()
    assert np.isfinite(actual[warm:]).all()
    np.testing.assert_allclose(actual[warm:], expected[warm:], rtol=rtol, atol=atol)


# --------------------------------------------------------------------------- references


def ref_sma(x: np.ndarray, period: int) -> list[float]:
    out = [math.nan] * len(x)
    for i in range(period - 1, len(x)):
        out[i] = math.fsum(x[i - period + 1 : i + 1]) / period
    return out


def ref_ema(x: np.ndarray, period: int, seed_end: int | None = None) -> list[float]:
    """EMA seeded with the SMA of the `period` values ending at `seed_end` (default: the first ones)."""
    seed_end = period - 1 if seed_end is None else seed_end
    out = [math.nan] * len(x)
    if len(x) <= seed_end:
        return out
    alpha = 2.0 / (period + 1)
    value = math.fsum(x[seed_end - period + 1 : seed_end + 1]) / period
    out[seed_end] = value
    for i in range(seed_end + 1, len(x)):
        value = value + alpha * (x[i] - value)
        out[i] = value
    return out


def ref_atr(h: np.ndarray, lo: np.ndarray, c: np.ndarray, period: int) -> list[float]:
    out = [math.nan] * len(c)
    true_ranges = [math.nan]
    for i in range(1, len(c)):
        true_ranges.append(max(h[i] - lo[i], abs(h[i] - c[i - 1]), abs(lo[i] - c[i - 1])))
    if len(c) <= period:
        return out
    value = sum(true_ranges[1 : period + 1]) / period
    out[period] = value
    for i in range(period + 1, len(c)):
        value = (value * (period - 1) + true_ranges[i]) / period
        out[i] = value
    return out


def ref_rsi(x: np.ndarray, period: int) -> list[float]:
    out = [math.nan] * len(x)
    if len(x) <= period:
        return out
    gain = loss = 0.0
    for i in range(1, period + 1):
        change = x[i] - x[i - 1]
        gain += max(change, 0.0)
        loss += max(-change, 0.0)
    gain /= period
    loss /= period
    out[period] = 100.0 * gain / (gain + loss)
    for i in range(period + 1, len(x)):
        change = x[i] - x[i - 1]
        gain = (gain * (period - 1) + max(change, 0.0)) / period
        loss = (loss * (period - 1) + max(-change, 0.0)) / period
        out[i] = 100.0 * gain / (gain + loss)
    return out


def ref_macd(x: np.ndarray, fast: int, slow: int, signal: int) -> tuple[list[float], list[float], list[float]]:
    # TA-Lib starts both EMAs at bar slow-1: the fast one is seeded there with the
    # SMA of the `fast` closes ending at that bar, not at bar fast-1.
    start = slow - 1
    fast_ema = ref_ema(x, fast, seed_end=start)
    slow_ema = ref_ema(x, slow, seed_end=start)
    line = [f - s for f, s in zip(fast_ema, slow_ema)]
    first = start + signal - 1
    sig = [math.nan] * len(x)
    value = math.fsum(line[start : first + 1]) / signal
    sig[first] = value
    alpha = 2.0 / (signal + 1)
    for i in range(first + 1, len(x)):
        value = value + alpha * (line[i] - value)
        sig[i] = value
    line = [v if i >= first else math.nan for i, v in enumerate(line)]
    hist = [m - s for m, s in zip(line, sig)]
    return line, sig, hist


def ref_bollinger(x: np.ndarray, period: int, k: float) -> tuple[list[float], list[float], list[float]]:
    upper, mid, lower = ([math.nan] * len(x) for _ in range(3))
    for i in range(period - 1, len(x)):
        window = [float(v) for v in x[i - period + 1 : i + 1]]
        m = statistics.fmean(window)
        sd = statistics.pstdev(window)
        upper[i], mid[i], lower[i] = m + k * sd, m, m - k * sd
    return upper, mid, lower


def ref_vwap(df: pd.DataFrame) -> list[float]:
    out = []
    pv: dict[date, float] = {}
    vol: dict[date, float] = {}
    for ts, row in df.iterrows():
        d = et_date(ts)
        typical = (row["high"] + row["low"] + row["close"]) / 3.0
        pv[d] = pv.get(d, 0.0) + typical * row["volume"]
        vol[d] = vol.get(d, 0.0) + row["volume"]
        out.append(pv[d] / vol[d] if vol[d] > 0 else math.nan)
    return out


def ref_anchored_vwap(df: pd.DataFrame, start: int) -> list[float]:
    out = [math.nan] * len(df)
    pv = vol = 0.0
    for i in range(start, len(df)):
        row = df.iloc[i]
        pv += (row["high"] + row["low"] + row["close"]) / 3.0 * row["volume"]
        vol += row["volume"]
        out[i] = pv / vol if vol > 0 else math.nan
    return out


def ref_hv(x: np.ndarray, window: int) -> list[float]:
    out = [math.nan] * len(x)
    for i in range(window, len(x)):
        returns = [math.log(x[j] / x[j - 1]) for j in range(i - window + 1, i + 1)]
        out[i] = statistics.stdev(returns) * math.sqrt(252)
    return out


# --------------------------------------------------------------------------- TA-Lib backed


@pytest.mark.parametrize("period", [1, 5, 20, 50])
def test_sma_matches_reference(bars: pd.DataFrame, period: int) -> None:
    close = bars["close"].to_numpy()
    assert_matches(ind.sma(close, period), ref_sma(close, period), warm=period - 1)


@pytest.mark.parametrize("period", [9, 21, 200])
def test_ema_matches_sma_seeded_reference(bars: pd.DataFrame, period: int) -> None:
    close = bars["close"].to_numpy()
    assert_matches(ind.ema(close, period), ref_ema(close, period), warm=period - 1)


@pytest.mark.parametrize("period", [14, 5])
def test_atr_matches_wilder_reference(bars: pd.DataFrame, period: int) -> None:
    h, lo, c = (bars[k].to_numpy() for k in ("high", "low", "close"))
    assert_matches(ind.atr(h, lo, c, period), ref_atr(h, lo, c, period), warm=period)


def test_atr_uses_previous_close_across_a_gap() -> None:
    # the true range of the second bar is the gap from 10 up to 13, not its own 0.5 range
    h, lo, c = np.array([10.5, 13.0, 13.2]), np.array([9.5, 12.5, 12.8]), np.array([10.0, 12.8, 13.0])
    assert ind.atr(h, lo, c, 1)[1] == pytest.approx(3.0)


@pytest.mark.parametrize("period", [14, 2])
def test_rsi_matches_wilder_reference(bars: pd.DataFrame, period: int) -> None:
    close = bars["close"].to_numpy()
    out = ind.rsi(close, period)
    assert_matches(out, ref_rsi(close, period), warm=period)
    assert ((out[period:] >= 0) & (out[period:] <= 100)).all()


@pytest.mark.parametrize(("fast", "slow", "signal"), [(12, 26, 9), (5, 13, 4)])
def test_macd_matches_reference(bars: pd.DataFrame, fast: int, slow: int, signal: int) -> None:
    close = bars["close"].to_numpy()
    line, sig, hist = ind.macd(close, fast, slow, signal)
    ref_line, ref_sig, ref_hist = ref_macd(close, fast, slow, signal)
    warm = slow + signal - 2
    # the MACD values sit near zero, so compare them absolutely (prices are ~100)
    assert_matches(line, ref_line, warm, rtol=0, atol=1e-9)
    assert_matches(sig, ref_sig, warm, rtol=0, atol=1e-9)
    assert_matches(hist, ref_hist, warm, rtol=0, atol=1e-9)
    np.testing.assert_allclose(hist[warm:], (line - sig)[warm:], rtol=0, atol=1e-12)


def test_macd_converges_to_difference_of_emas(bars: pd.DataFrame) -> None:
    close = bars["close"].to_numpy()
    line, _, _ = ind.macd(close)
    plain = ind.ema(close, 12) - ind.ema(close, 26)
    np.testing.assert_allclose(line[400:], plain[400:], rtol=0, atol=1e-9)


# --------------------------------------------------------------------------- NumPy rolling windows


@pytest.mark.parametrize(("period", "k"), [(20, 2.0), (10, 1.5)])
def test_bollinger_matches_population_std_reference(bars: pd.DataFrame, period: int, k: float) -> None:
    close = bars["close"].to_numpy()
    upper, mid, lower = ind.bollinger(close, period, k)
    ref_upper, ref_mid, ref_lower = ref_bollinger(close, period, k)
    for actual, expected in ((upper, ref_upper), (mid, ref_mid), (lower, ref_lower)):
        assert_matches(actual, expected, warm=period - 1)
    np.testing.assert_allclose(mid[period - 1 :], ind.sma(close, period)[period - 1 :], rtol=RTOL)


def test_bollinger_keeps_tiny_variance_of_sub_dollar_prices() -> None:
    close = 0.5 + 1e-5 * np.sin(np.arange(60.0))
    upper, mid, lower = ind.bollinger(close, 20)
    width = upper - lower
    ref_width = [4 * statistics.pstdev(close[i - 19 : i + 1]) for i in range(19, 60)]
    assert (width[19:] > 0).all()
    np.testing.assert_allclose(width[19:], ref_width, rtol=1e-6)


@pytest.mark.parametrize("window", [20, 60, 120])
def test_hv_matches_sample_std_of_log_returns(daily_closes: np.ndarray, window: int) -> None:
    assert_matches(ind.hv(daily_closes, window), ref_hv(daily_closes, window), warm=window)


def test_historical_volatility_scales_with_periods_per_year(daily_closes: np.ndarray) -> None:
    weekly = ind.historical_volatility(daily_closes, 20, periods_per_year=52)
    np.testing.assert_allclose(weekly[20:], ind.hv(daily_closes, 20)[20:] * math.sqrt(52 / 252), rtol=RTOL)


def test_hv_set_reports_latest_values_and_none_when_short(daily_closes: np.ndarray) -> None:
    full = ind.hv_set(daily_closes)
    assert set(full) == {"hv20", "hv60", "hv120"}
    for window in (20, 60, 120):
        assert full[f"hv{window}"] == pytest.approx(ref_hv(daily_closes, window)[-1], rel=RTOL)

    short = ind.hv_set(daily_closes[:61])  # 60 returns: enough for hv20 and hv60 only
    assert isinstance(short["hv20"], float) and isinstance(short["hv60"], float)
    assert short["hv120"] is None
    assert ind.hv_set([]) == {"hv20": None, "hv60": None, "hv120": None}


def test_hv_set_skips_missing_closes(daily_closes: np.ndarray) -> None:
    gappy = daily_closes.copy()
    gappy[-5] = np.nan
    assert ind.hv_set(gappy) == ind.hv_set(np.delete(daily_closes, -5))


# --------------------------------------------------------------------------- VWAP


def test_vwap_matches_per_day_reference(bars: pd.DataFrame) -> None:
    out = ind.vwap(bars)
    assert_matches(out, ref_vwap(bars), warm=0)
    # the reset: each session's first value is that bar's own typical price
    first = ~pd.Series(ind.session_dates(bars.index)).duplicated().to_numpy()
    assert first.sum() == len(SESSIONS)
    typical = ((bars["high"] + bars["low"] + bars["close"]) / 3).to_numpy()
    np.testing.assert_allclose(out[first], typical[first], rtol=RTOL)


def test_vwap_groups_by_exchange_date_not_utc_date() -> None:
    # 2024-03-08 is still standard time: a 19:30 ET post-market bar is stamped 00:30 UTC on the 9th
    regular = make_bars(["2024-03-08"], seed=3, minutes=30)
    late = make_bars(["2024-03-08"], seed=4, start="19:30", minutes=1)
    monday = make_bars(["2024-03-11"], seed=5, minutes=5)
    df = check_bars(pd.concat([regular, late, monday]))
    assert df.index[30].date() == date(2024, 3, 9)

    out = ind.vwap(df)
    assert_matches(out, ref_vwap(df), warm=0)
    pv = ((df["high"] + df["low"] + df["close"]) / 3 * df["volume"]).to_numpy()
    assert out[30] == pytest.approx(pv[:31].sum() / df["volume"].to_numpy()[:31].sum(), rel=RTOL)
    assert list(ind.session_dates(df.index)[[0, 30, 31]]) == [
        np.datetime64("2024-03-08"),
        np.datetime64("2024-03-08"),
        np.datetime64("2024-03-11"),
    ]


def test_vwap_with_zero_volume_bars_has_no_inf(bars: pd.DataFrame) -> None:
    df = bars.copy()
    volume = df["volume"].to_numpy().copy()
    volume[0] = 0.0  # the session opens on a zero-volume bar
    volume[100] = 0.0  # and has one later
    volume[390 * 2 : 390 * 3] = 0.0  # a whole session without volume
    df["volume"] = volume
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = ind.vwap(df)
    assert not np.isinf(out).any()
    assert np.isnan(out[0])
    assert out[100] == out[99]
    assert np.isnan(out[390 * 2 : 390 * 3]).all()
    expected = np.asarray(ref_vwap(df))
    np.testing.assert_array_equal(np.isnan(out), np.isnan(expected))
    np.testing.assert_allclose(out, expected, rtol=RTOL)  # NaNs compare equal here


def test_anchored_vwap_from_a_middle_bar(bars: pd.DataFrame) -> None:
    start = 390 + 217  # mid-morning of the second session, runs on through the later ones
    out = ind.anchored_vwap(bars, start)
    assert_matches(out, ref_anchored_vwap(bars, start), warm=start)

    by_stamp = ind.anchored_vwap(bars, bars.index[start])
    np.testing.assert_array_equal(by_stamp, out)
    # a stamp between bars anchors on the next bar; any time zone is accepted
    between = (bars.index[start - 1] + pd.Timedelta(seconds=30)).tz_convert(EXCHANGE_TZ)
    np.testing.assert_array_equal(ind.anchored_vwap(bars, between), out)
    np.testing.assert_array_equal(ind.anchored_vwap(bars, start - len(bars)), out)
    np.testing.assert_array_equal(ind.anchored_vwap(bars, np.int64(start)), out)


def test_anchored_vwap_at_session_open_equals_session_vwap(bars: pd.DataFrame) -> None:
    start = 390 * 3
    anchored = ind.anchored_vwap(bars, start)
    np.testing.assert_allclose(anchored[start : start + 390], ind.vwap(bars)[start : start + 390], rtol=RTOL)


def test_anchored_vwap_edges(bars: pd.DataFrame) -> None:
    after_last = bars.index[-1] + pd.Timedelta(minutes=1)
    assert np.isnan(ind.anchored_vwap(bars, after_last)).all()
    before_first = datetime(2024, 1, 2, tzinfo=UTC)
    assert_matches(ind.anchored_vwap(bars, before_first), ref_anchored_vwap(bars, 0), warm=0)
    with pytest.raises(ValueError, match="time zone"):
        ind.anchored_vwap(bars, pd.Timestamp("2024-03-07 15:00"))
    with pytest.raises(IndexError):
        ind.anchored_vwap(bars, len(bars))
    assert ind.anchored_vwap(empty_bars(), 0).shape == (0,)


# --------------------------------------------------------------------------- session levels


def test_opening_range_matches_reference(bars: pd.DataFrame) -> None:
    for minutes in (30, 5, 1):
        expected: dict[date, tuple[float, float]] = {}
        for ts, row in bars.iterrows():
            local = ts.tz_convert(EXCHANGE_TZ)
            open_ = local.replace(hour=9, minute=30)
            if open_ <= local < open_ + timedelta(minutes=minutes):
                hi, lo = expected.get(local.date(), (-math.inf, math.inf))
                expected[local.date()] = (max(hi, row["high"]), min(lo, row["low"]))
        out = ind.opening_range(bars, minutes)
        assert list(out.columns) == ["orh", "orl"]
        assert out.index.name == "session"
        assert [d.date() for d in out.index] == [date.fromisoformat(s) for s in SESSIONS]
        for d, (hi, lo) in expected.items():
            assert out.loc[pd.Timestamp(d), "orh"] == hi
            assert out.loc[pd.Timestamp(d), "orl"] == lo


def test_opening_range_of_a_session_ignores_pre_market_and_later_bars() -> None:
    pre = make_bars(["2024-03-11"], seed=1, start="09:00", minutes=30)  # 09:00-09:29 ET
    session = make_bars(["2024-03-11"], seed=2, minutes=60)  # 09:30-10:29 ET
    df = check_bars(pd.concat([pre, session]))
    df.iloc[5, df.columns.get_loc("high")] = 1e6  # a pre-market spike
    df.iloc[30 + 45, df.columns.get_loc("low")] = 0.01  # a 10:15 flush
    out = ind.opening_range(df, 30)
    row = out.loc[pd.Timestamp("2024-03-11")]
    assert row["orh"] == session["high"].iloc[:30].max()
    assert row["orl"] == session["low"].iloc[:30].min()


def test_opening_range_is_nan_for_a_session_without_opening_bars() -> None:
    late = make_bars(["2024-03-07"], seed=1, start="10:30", minutes=10)
    full = make_bars(["2024-03-08"], seed=2, minutes=40)
    out = ind.opening_range(check_bars(pd.concat([late, full])), 30)
    assert out.loc[pd.Timestamp("2024-03-07")].isna().all()
    assert out.loc[pd.Timestamp("2024-03-08"), "orh"] == full["high"].iloc[:30].max()


def test_prior_day_levels_across_the_weekend(bars: pd.DataFrame) -> None:
    out = ind.prior_day_levels(bars)
    assert list(out.columns) == ["pdh", "pdl", "pdc"]
    assert [d.date() for d in out.index] == [date.fromisoformat(s) for s in SESSIONS]
    assert out.iloc[0].isna().all()

    friday = bars[[et_date(ts) == date(2024, 3, 8) for ts in bars.index]]
    monday = out.loc[pd.Timestamp("2024-03-11")]
    assert monday["pdh"] == friday["high"].max()
    assert monday["pdl"] == friday["low"].min()
    assert monday["pdc"] == friday["close"].iloc[-1]

    # every other session, by a plain loop
    days: dict[date, list[float]] = {}
    for ts, row in bars.iterrows():
        d = et_date(ts)
        hi, lo, _ = days.get(d, [-math.inf, math.inf, math.nan])
        days[d] = [max(hi, row["high"]), min(lo, row["low"]), row["close"]]
    ordered = list(days.values())
    for i in range(1, len(ordered)):
        assert list(out.iloc[i]) == ordered[i - 1]


def test_session_high_low_matches_running_reference(bars: pd.DataFrame) -> None:
    hod, lod = ind.session_high_low(bars)
    ref_hod, ref_lod = [], []
    current = None
    for ts, row in bars.iterrows():
        if et_date(ts) != current:
            current, hi, lo = et_date(ts), -math.inf, math.inf
        hi, lo = max(hi, row["high"]), min(lo, row["low"])
        ref_hod.append(hi)
        ref_lod.append(lo)
    np.testing.assert_array_equal(hod, ref_hod)
    np.testing.assert_array_equal(lod, ref_lod)


# --------------------------------------------------------------------------- bundle, inputs, edges


def test_compute_all_matches_the_individual_functions(bars: pd.DataFrame) -> None:
    out = ind.compute_all(bars)
    h, lo, c = (bars[k].to_numpy() for k in ("high", "low", "close"))
    line, sig, hist = ind.macd(c)
    expected = {
        "ema9": ind.ema(c, 9),
        "ema21": ind.ema(c, 21),
        "ema50": ind.ema(c, 50),
        "ema200": ind.ema(c, 200),
        "atr14": ind.atr(h, lo, c, 14),
        "rsi14": ind.rsi(c, 14),
        "vwap": ind.vwap(bars),
        "macd": line,
        "macd_signal": sig,
        "macd_hist": hist,
    }
    assert set(out) == set(expected)
    for key, value in expected.items():
        assert out[key].dtype == np.float64 and out[key].shape == (len(bars),), key
        np.testing.assert_array_equal(out[key], value, err_msg=key)


def test_series_lists_and_arrays_give_the_same_numpy_result(bars: pd.DataFrame) -> None:
    series = bars["close"]
    for fn in (lambda x: ind.ema(x, 9), lambda x: ind.rsi(x), lambda x: ind.bollinger(x)[0], lambda x: ind.hv(x, 20)):
        from_series = fn(series)
        assert isinstance(from_series, np.ndarray)
        np.testing.assert_array_equal(from_series, fn(series.to_numpy()))
        np.testing.assert_array_equal(from_series, fn(series.tolist()))


def test_series_shorter_than_the_period_is_all_nan() -> None:
    x = np.array([10.0, 10.5, 10.2, 10.8])
    singles = [
        ind.sma(x, 5),
        ind.ema(x, 9),
        ind.rsi(x, 14),
        ind.atr(x + 0.5, x - 0.5, x, 14),
        ind.hv(x, 20),
        *ind.macd(x),
        *ind.bollinger(x, 20),
    ]
    for out in singles:
        assert out.shape == (4,) and np.isnan(out).all()
    for out in (ind.ema([], 9), ind.rsi(np.array([]), 14), ind.bollinger([], 20)[1], ind.hv([], 20)):
        assert out.shape == (0,)
    assert np.isnan(ind.ema(np.full(30, np.nan), 9)).all()

    short = make_bars(["2024-03-11"], minutes=10)
    all_of_it = ind.compute_all(short)
    assert np.isnan(all_of_it["ema200"]).all() and np.isnan(all_of_it["macd_hist"]).all()
    assert np.isfinite(all_of_it["vwap"]).all()
    assert all(v.shape == (0,) for v in ind.compute_all(empty_bars()).values())
    assert ind.opening_range(empty_bars()).empty and ind.prior_day_levels(empty_bars()).empty


def test_bad_parameters_are_rejected() -> None:
    x = np.arange(50.0)
    with pytest.raises(ValueError):
        ind.ema(x, 0)
    with pytest.raises(ValueError):
        ind.rsi(x, 1)
    with pytest.raises(ValueError):
        ind.macd(x, 26, 12)
    with pytest.raises(ValueError):
        ind.atr(x, x[:-1], x)
    with pytest.raises(ValueError):
        ind.sma(np.ones((3, 3)), 2)
    with pytest.raises(ValueError):
        ind.opening_range(make_bars(["2024-03-11"], minutes=5), 0)


# --------------------------------------------------------------------------- property


@st.composite
def session_bars(draw: st.DrawFn) -> pd.DataFrame:
    """1 to 60 consistent bars (low <= open, close <= high) over one to three sessions."""
    n = draw(st.integers(1, 60))
    new_session = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    price = st.floats(1.0, 1000.0, allow_nan=False)
    stamps, rows = [], []
    day, minute = date(2024, 3, 6), 0
    for i in range(n):
        if i and new_session[i]:
            day, minute = day + timedelta(days=1), 0
        stamps.append(pd.Timestamp(f"{day} 09:30", tz=EXCHANGE_TZ) + pd.Timedelta(minutes=minute))
        minute += 1
        low = draw(price)
        high = low + draw(st.floats(0.0, 50.0, allow_nan=False))
        open_ = draw(st.floats(low, high))
        close = draw(st.floats(low, high))
        # whole or fractional shares; subnormal volumes are not a thing a feed sends
        volume = draw(st.one_of(st.just(0.0), st.floats(0.0, 1e7, allow_nan=False, allow_subnormal=False)))
        rows.append((open_, high, low, close, volume))
    return pd.DataFrame(
        rows, columns=["open", "high", "low", "close", "volume"], index=pd.DatetimeIndex(stamps).tz_convert("UTC")
    )


@settings(max_examples=80, deadline=None)
@given(session_bars())
def test_vwap_stays_within_the_session_range_so_far(df: pd.DataFrame) -> None:
    out = ind.vwap(df)
    assert not np.isinf(out).any()
    current, hi, lo, volume = None, -math.inf, math.inf, 0.0
    for i, (ts, row) in enumerate(df.iterrows()):
        if et_date(ts) != current:
            current, hi, lo, volume = et_date(ts), -math.inf, math.inf, 0.0
        hi, lo, volume = max(hi, row["high"]), min(lo, row["low"]), volume + row["volume"]
        if volume > 0:
            slack = 1e-9 * hi
            assert lo - slack <= out[i] <= hi + slack
        else:
            assert np.isnan(out[i])
