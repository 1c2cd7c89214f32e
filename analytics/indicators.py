"""Technical indicators on bars: moving averages, ATR, RSI, MACD, Bollinger, VWAP, volatility, session levels.

Conventions, shared by every function here:

- Series in, NumPy out. Functions that take one series (`close`, `high`, ...) accept a
  NumPy array, a pandas Series or any 1-D sequence of numbers, and return
  ``numpy.ndarray`` of float64 with the same length, aligned position by position with
  the input (an input Series' index is not carried over). Bars before the indicator
  has enough data (the warm-up) are NaN; a series shorter than the warm-up gives an
  all-NaN array, never an error.
- Functions that take bars take the project's bar DataFrame (UTC index, ascending,
  float64 ``open high low close volume``). Per-bar results are again aligned NumPy
  arrays; per-session results are DataFrames indexed by session date (a naive
  ``DatetimeIndex`` named ``session``, like ``Schedule.frame()``).
- A session is an exchange-time calendar date: a bar belongs to the date of its stamp
  in America/New_York. Extended-hours bars, when present, count toward their date.
- Stamps are bar open times, so a 1-minute bar stamped 09:59 ET covers 09:59-10:00.
- TA-Lib computes what it has (SMA, EMA, ATR, RSI, MACD) with its classic seeding:
  EMA starts from the SMA of its first ``period`` values; ATR and RSI use Wilder's
  smoothing seeded by a simple mean. The rest is vectorised NumPy/pandas: no per-bar
  Python loops, so everything is fit for a scanner's hot path.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TypeAlias

import numpy as np
import numpy.typing as npt
import pandas as pd
import talib

from analytics.sessions import EXCHANGE_TZ

FloatArray: TypeAlias = npt.NDArray[np.float64]
Series1D: TypeAlias = np.ndarray | pd.Series | Sequence[float]
Anchor: TypeAlias = int | np.integer | pd.Timestamp | datetime | str

#: Trading days per year, for annualising daily volatility.
TRADING_DAYS = 252
#: Regular session open in exchange time, minutes after midnight (09:30).
OPEN_MINUTE = 9 * 60 + 30
#: Historical-volatility windows reported by `hv_set`, in trading days.
HV_WINDOWS: tuple[int, ...] = (20, 60, 120)

_NS_PER_DAY = 86_400 * 10**9
_NS_PER_MINUTE = 60 * 10**9


# --------------------------------------------------------------------------- inputs


def _as_float(values: Series1D, name: str = "values") -> FloatArray:
    """`values` as a contiguous 1-D float64 array (TA-Lib needs exactly that)."""
    if isinstance(values, (pd.Series, pd.Index)):
        arr = values.to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    return np.ascontiguousarray(arr)


def _check_period(name: str, value: int, minimum: int = 1) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _same_length(**arrays: FloatArray) -> None:
    lengths = {k: len(v) for k, v in arrays.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"series lengths differ: {lengths}")


def _hlcv(df: pd.DataFrame) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    return (
        _as_float(df["high"], "high"),
        _as_float(df["low"], "low"),
        _as_float(df["close"], "close"),
        _as_float(df["volume"], "volume"),
    )


def _local_wall_ns(index: pd.DatetimeIndex) -> npt.NDArray[np.int64]:
    """Exchange-time wall clock of each stamp as int64 nanoseconds since 1970-01-01 (naive)."""
    if not isinstance(index, pd.DatetimeIndex) or index.tz is None:
        raise ValueError("bars need a tz-aware DatetimeIndex")
    local = index.tz_convert(EXCHANGE_TZ).tz_localize(None).as_unit("ns")
    wall: npt.NDArray[np.int64] = local.asi8
    return wall


def _day_numbers(index: pd.DatetimeIndex) -> npt.NDArray[np.int64]:
    """Exchange-time session date of each stamp as days since 1970-01-01 (cheap group keys)."""
    return np.floor_divide(_local_wall_ns(index), _NS_PER_DAY)


def _dates_index(days: npt.NDArray[np.int64]) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(np.asarray(days, dtype=np.int64).astype("datetime64[D]"), name="session")


def session_dates(index: pd.DatetimeIndex) -> npt.NDArray[np.datetime64]:
    """The exchange-time session date of each stamp, as ``datetime64[D]`` aligned with `index`."""
    return _day_numbers(index).astype("datetime64[D]")


# --------------------------------------------------------------------------- TA-Lib backed


def sma(close: Series1D, period: int) -> FloatArray:
    """Simple moving average of `close` over `period` bars; NaN for the first ``period - 1``."""
    period = _check_period("period", period)
    return talib.SMA(_as_float(close, "close"), timeperiod=period)


def ema(close: Series1D, period: int) -> FloatArray:
    """Exponential moving average (alpha = 2/(period+1)) seeded by the SMA of the first `period` closes."""
    period = _check_period("period", period)
    return talib.EMA(_as_float(close, "close"), timeperiod=period)


def atr(high: Series1D, low: Series1D, close: Series1D, period: int = 14) -> FloatArray:
    """Wilder's average true range; the first value (at bar `period`) is the mean of the first `period` true ranges."""
    period = _check_period("period", period)
    h, lo, c = _as_float(high, "high"), _as_float(low, "low"), _as_float(close, "close")
    _same_length(high=h, low=lo, close=c)
    return talib.ATR(h, lo, c, timeperiod=period)


def rsi(close: Series1D, period: int = 14) -> FloatArray:
    """Wilder's RSI in [0, 100]; first value at bar `period`.

    TA-Lib reports 0 (not 50) while average gain and loss are both zero, i.e. on a flat line.
    """
    period = _check_period("period", period, minimum=2)
    return talib.RSI(_as_float(close, "close"), timeperiod=period)


def macd(close: Series1D, fast: int = 12, slow: int = 26, signal: int = 9) -> tuple[FloatArray, FloatArray, FloatArray]:
    """(macd line, signal line, histogram), all NaN until bar ``slow + signal - 2``.

    TA-Lib's MACD seeds the fast EMA with the SMA of the `fast` closes ending at bar
    ``slow - 1`` (where the slow EMA starts), so its line differs slightly from
    ``ema(close, fast) - ema(close, slow)`` early on; the two converge.
    """
    fast = _check_period("fast", fast, minimum=2)
    slow = _check_period("slow", slow, minimum=2)
    signal = _check_period("signal", signal)
    if fast >= slow:
        raise ValueError(f"fast period ({fast}) must be shorter than slow ({slow})")
    line, sig, hist = talib.MACD(_as_float(close, "close"), fastperiod=fast, slowperiod=slow, signalperiod=signal)
    return line, sig, hist


# --------------------------------------------------------------------------- rolling windows (NumPy)


def _windows(x: FloatArray, period: int) -> npt.NDArray[np.float64]:
    return np.lib.stride_tricks.sliding_window_view(x, period)


def bollinger(close: Series1D, period: int = 20, k: float = 2.0) -> tuple[FloatArray, FloatArray, FloatArray]:
    """(upper, middle, lower) bands: SMA of `period` closes plus/minus `k` population standard deviations.

    Same definition as TA-Lib's BBANDS, but computed two-pass per window: BBANDS keeps
    running sums of x and x**2, which cancel badly for high-priced instruments, and it
    zeroes any variance under 1e-8, which flattens the bands of sub-dollar tickers.
    """
    period = _check_period("period", period)
    x = _as_float(close, "close")
    upper = np.full(len(x), np.nan)
    mid = np.full(len(x), np.nan)
    lower = np.full(len(x), np.nan)
    if len(x) < period:
        return upper, mid, lower
    w = _windows(x, period)
    m = w.mean(axis=1)
    sd = w.std(axis=1, ddof=0)
    mid[period - 1 :] = m
    upper[period - 1 :] = m + k * sd
    lower[period - 1 :] = m - k * sd
    return upper, mid, lower


def historical_volatility(close: Series1D, window: int, periods_per_year: float = TRADING_DAYS) -> FloatArray:
    """Annualised close-to-close volatility: sample std (ddof=1) of the last `window` log returns × sqrt(periods_per_year).

    Aligned with `close`; the first value is at bar `window` (it needs ``window + 1``
    closes). A fraction (0.25 = 25 %), not a percentage. Non-positive closes give NaN.
    """
    window = _check_period("window", window, minimum=2)
    c = _as_float(close, "close")
    out = np.full(len(c), np.nan)
    if len(c) <= window:
        return out
    with np.errstate(divide="ignore", invalid="ignore"):
        logc = np.log(np.where(c > 0, c, np.nan))
    returns = np.diff(logc)
    out[window:] = _windows(returns, window).std(axis=1, ddof=1) * np.sqrt(periods_per_year)
    return out


def hv(closes_daily: Series1D, window: int) -> FloatArray:
    """Annualised historical volatility of daily closes over `window` trading days (sqrt(252) scaling)."""
    return historical_volatility(closes_daily, window, TRADING_DAYS)


def hv_set(daily_close: Series1D) -> dict[str, float | None]:
    """Latest 20-, 60- and 120-day historical volatility as ``{"hv20", "hv60", "hv120"}``; None when too little data.

    Missing (NaN) closes are dropped first, so a gap in the daily series does not
    blank out the whole window. None rather than NaN keeps the dict valid JSON.
    """
    c = _as_float(daily_close, "daily_close")
    c = c[~np.isnan(c)]
    result: dict[str, float | None] = {}
    for window in HV_WINDOWS:
        value = hv(c, window)[-1] if len(c) > window else np.nan
        result[f"hv{window}"] = float(value) if np.isfinite(value) else None
    return result


# --------------------------------------------------------------------------- VWAP


def _typical_pv(high: FloatArray, low: FloatArray, close: FloatArray, volume: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Price×volume and volume per bar, with unusable bars (NaN price or volume) contributing nothing."""
    tp = (high + low + close) / 3.0
    ok = np.isfinite(tp) & np.isfinite(volume)
    return np.where(ok, tp * volume, 0.0), np.where(ok, volume, 0.0)


def _ratio(num: FloatArray, den: FloatArray) -> FloatArray:
    # no volume traded yet means no VWAP yet: NaN, never inf or 0/0 warnings
    ratio: FloatArray = np.divide(num, den, out=np.full(len(num), np.nan), where=den > 0)
    return ratio


def _vwap_arrays(
    high: FloatArray, low: FloatArray, close: FloatArray, volume: FloatArray, days: npt.NDArray[np.int64]
) -> FloatArray:
    if len(days) == 0:
        return np.empty(0)
    pv, v = _typical_pv(high, low, close, volume)
    # grouped cumsum, not a global cumsum minus offsets: sums restart each day, so
    # a long history does not erode the precision of today's VWAP
    sums = pd.DataFrame({"pv": pv, "v": v}).groupby(days, sort=False).cumsum()
    return _ratio(sums["pv"].to_numpy(), sums["v"].to_numpy())


def vwap(df: pd.DataFrame) -> FloatArray:
    """Session VWAP per bar: cumulative typical price ((h+l+c)/3) × volume over cumulative volume, reset each session date.

    NaN while the session has traded no volume yet; a zero-volume bar later in the
    session carries the running value. Bars with a NaN price or volume are skipped.
    """
    h, lo, c, v = _hlcv(df)
    return _vwap_arrays(h, lo, c, v, _day_numbers(df.index))


def _anchor_position(index: pd.DatetimeIndex, anchor: Anchor) -> int:
    n = len(index)
    if isinstance(anchor, (bool, np.bool_)):
        raise TypeError("anchor must be a bar position or a timestamp, not a bool")
    if isinstance(anchor, (int, np.integer)):
        pos = int(anchor) + (n if anchor < 0 else 0)
        if not 0 <= pos < n:
            raise IndexError(f"anchor position {int(anchor)} outside the {n} bars")
        return pos
    ts = pd.Timestamp(anchor)
    if ts.tzinfo is None:
        raise ValueError("anchor timestamp needs a time zone (bars are indexed in UTC)")
    return int(index.searchsorted(ts.tz_convert("UTC"), side="left"))


def anchored_vwap(df: pd.DataFrame, anchor: Anchor) -> FloatArray:
    """VWAP accumulated from the anchor bar onward, across sessions without reset; NaN before the anchor.

    `anchor` is a bar position (negative counts from the end, like Python indexing) or
    a tz-aware timestamp, meaning the first bar stamped at or after it. An anchor
    after the last bar gives all NaN.
    """
    n = len(df)
    out = np.full(n, np.nan)
    if n == 0:
        return out
    start = _anchor_position(df.index, anchor)
    if start >= n:
        return out
    h, lo, c, v = _hlcv(df.iloc[start:])
    pv, vol = _typical_pv(h, lo, c, v)
    out[start:] = _ratio(np.cumsum(pv), np.cumsum(vol))
    return out


# --------------------------------------------------------------------------- session levels


def session_high_low(df: pd.DataFrame) -> tuple[FloatArray, FloatArray]:
    """(hod, lod): the session's running high and low up to and including each bar."""
    if len(df) == 0:
        return np.empty(0), np.empty(0)
    days = _day_numbers(df.index)
    frame = pd.DataFrame({"high": _as_float(df["high"]), "low": _as_float(df["low"])})
    grouped = frame.groupby(days, sort=False)
    return grouped["high"].cummax().to_numpy(np.float64), grouped["low"].cummin().to_numpy(np.float64)


def opening_range(df: pd.DataFrame, minutes: int = 30) -> pd.DataFrame:
    """Opening range per session: columns ``orh``, ``orl`` = high/low of bars stamped in [09:30, 09:30 + minutes) ET.

    Indexed by every session date present in `df`; NaN where none of that session's
    bars fall in the window (pre-market bars never do). Meant for intraday bars. While
    the window is still open the values are the range so far.
    """
    minutes = _check_period("minutes", minutes)
    wall = _local_wall_ns(df.index)
    days = np.floor_divide(wall, _NS_PER_DAY)
    minute_of_day = np.floor_divide(wall - days * _NS_PER_DAY, _NS_PER_MINUTE)
    in_window = (minute_of_day >= OPEN_MINUTE) & (minute_of_day < OPEN_MINUTE + minutes)
    frame = pd.DataFrame({"orh": _as_float(df["high"])[in_window], "orl": _as_float(df["low"])[in_window]})
    grouped = frame.groupby(days[in_window], sort=True)
    ranges = pd.DataFrame({"orh": grouped["orh"].max(), "orl": grouped["orl"].min()})
    all_days = np.unique(days)
    out = ranges.reindex(all_days).astype(np.float64)
    out.index = _dates_index(all_days)
    return out


def prior_day_levels(df: pd.DataFrame) -> pd.DataFrame:
    """Per session date, the previous session's high, low and close as columns ``pdh``, ``pdl``, ``pdc``.

    "Previous" is the previous session present in `df`, so Monday gets Friday's levels
    and a holiday is skipped. The first session's row is NaN.
    """
    days = _day_numbers(df.index)
    frame = pd.DataFrame({"high": _as_float(df["high"]), "low": _as_float(df["low"]), "close": _as_float(df["close"])})
    grouped = frame.groupby(days, sort=True)
    daily = pd.DataFrame({"pdh": grouped["high"].max(), "pdl": grouped["low"].min(), "pdc": grouped["close"].last()})
    out = daily.shift(1).astype(np.float64)
    out.index = _dates_index(daily.index.to_numpy(np.int64))
    return out


# --------------------------------------------------------------------------- scanner bundle


def compute_all(df: pd.DataFrame) -> dict[str, FloatArray]:
    """The scanner's indicator set as arrays aligned with `df`.

    Keys: ema9, ema21, ema50, ema200, atr14, rsi14, vwap, macd, macd_signal, macd_hist.
    """
    h, lo, c, v = _hlcv(df)
    line, sig, hist = talib.MACD(c, fastperiod=12, slowperiod=26, signalperiod=9)
    return {
        "ema9": talib.EMA(c, timeperiod=9),
        "ema21": talib.EMA(c, timeperiod=21),
        "ema50": talib.EMA(c, timeperiod=50),
        "ema200": talib.EMA(c, timeperiod=200),
        "atr14": talib.ATR(h, lo, c, timeperiod=14),
        "rsi14": talib.RSI(c, timeperiod=14),
        "vwap": _vwap_arrays(h, lo, c, v, _day_numbers(df.index)),
        "macd": line,
        "macd_signal": sig,
        "macd_hist": hist,
    }
