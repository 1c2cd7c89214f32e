"""What detectors and the quality grade read: indicators per bar and the state at the last bar, per symbol.

Indicators are TA-Lib's (the same calls and conventions as analytics.indicators), one call per row; everything
after that is column arithmetic on (S,) or (S, K) arrays. Recent-bar arrays hold the last
RECENT bars, oldest first, so `rc[:, -1]` is the last close.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import talib
from scipy.signal import lfilter

from analytics.intervals import interval_minutes
from analytics.levels import LEVEL_WINDOW, Window, window_of
from analytics.panel import Panel
from analytics.session_levels import PriceVolume, SessionLevels, pv_start, session_levels, vwap_recent

#: How many recent bars detectors look at.
RECENT = 12
#: Fewest bars of the execution interval a plan needs.
MIN_BARS = 40
#: Indicator values kept per row: the last TAIL bars of the averages, RSI and MACD (detectors look at
#: the last value and a few bars back) and the last ATR_TAIL bars of ATR (levels' window, ATR regime).
TAIL = 8
ATR_TAIL = 128


@dataclass
class Features:
    """Indicators of one panel and the state of each row at its last bar."""

    panel: Panel
    # per-bar indicators over the panel's last columns: EMA50 (S, min(N, TAIL)), ATR (S, min(N, ATR_TAIL)),
    # the others (S, 1): their last value only
    ema9: np.ndarray
    ema21: np.ndarray
    ema50: np.ndarray
    ema200: np.ndarray
    atr: np.ndarray
    rsi: np.ndarray
    macd_hist: np.ndarray
    sess: SessionLevels
    pv: PriceVolume  # shared by every VWAP
    window: Window  # the level window, shared by the levels and the FVG detector
    # last RECENT bars, (S, RECENT), NaN-padded on the left
    ro: np.ndarray
    rh: np.ndarray
    rl: np.ndarray
    rc: np.ndarray
    rvwap: np.ndarray
    # at the last bar, (S,)
    atr_now: np.ndarray
    vol_ratio: np.ndarray
    atr_ratio: np.ndarray
    dollar_volume: np.ndarray
    enough: np.ndarray  # bool: enough bars to plan

    @property
    def close(self) -> np.ndarray:
        return self.rc[:, -1]

    @property
    def vwap(self) -> np.ndarray:
        return self.rvwap[:, -1]

    def now(self, name: str) -> np.ndarray:
        """Last value of a per-bar indicator (`ema21`, `rsi`, ...)."""
        a = getattr(self, name)
        return a[:, -1] if a.shape[1] else np.full(a.shape[0], np.nan)

    def ago(self, name: str, k: int) -> np.ndarray:
        """Value of a per-bar indicator `k` bars before the last."""
        a = getattr(self, name)
        return a[:, -1 - k] if a.shape[1] > k else np.full(a.shape[0], np.nan)


def _recent(a: np.ndarray, k: int) -> np.ndarray:
    s, n = a.shape
    out = np.full((s, k), np.nan)
    m = min(k, n)
    if m:
        out[:, k - m :] = a[:, n - m :]
    return out


def _bars_per_session(interval: str) -> float:
    m = interval_minutes(interval)
    if m >= 7 * 1440:
        return 0.2
    if m >= 1440:
        return 1.0
    return 390.0 / m


def compute_features(panel: Panel) -> Features:
    """Indicators and last-bar state of every row of `panel`."""
    s, n = panel.n_symbols, panel.n_bars
    c, h, l, v = panel.close, panel.high, panel.low, panel.volume  # noqa: E741
    t, ta = min(n, TAIL), min(n, ATR_TAIL)
    atr = np.empty((s, ta))
    e50: list[np.ndarray] = []
    lasts: list[list[float]] = [[] for _ in range(5)]
    e9, e21, e200, rs, mh = lasts
    # TA-Lib straight, not through analytics.indicators: the same calls (so the same conventions),
    # minus its per-call argument checks, which cost more than the indicator on a 500-row scan.
    # Rows of a Panel are already contiguous float64. Only what detectors read is kept (last values,
    # a short EMA50 tail, the ATR tail of the levels' window): copying seven full series per symbol
    # would cost a 500-symbol scan more than the indicators themselves.
    for i in range(s):
        ci, hi, li = c[i], h[i], l[i]
        e9.append(talib.EMA(ci, 9)[-1])
        e21.append(talib.EMA(ci, 21)[-1])
        e50.append(talib.EMA(ci, 50)[n - t :])
        e200.append(talib.EMA(ci, 200)[-1])
        atr[i] = talib.ATR(hi, li, ci, 14)[n - ta :]
        rs.append(talib.RSI(ci, 14)[-1])
        mh.append(talib.MACD(ci, 12, 26, 9)[2][-1])

    def col(x: list[float]) -> np.ndarray:
        return np.array(x, dtype=np.float64).reshape(s, -1) if s else np.empty((0, 1))

    ema9, ema21, ema200, rsi, hist = (col(x) for x in lasts)
    ema50 = np.array(e50) if s else np.empty((0, t))
    sess = session_levels(panel)
    pv = PriceVolume.of(panel, pv_start(panel, sess, LEVEL_WINDOW))
    rvwap = vwap_recent(panel, sess, RECENT, pv)

    with np.errstate(invalid="ignore", divide="ignore"):
        last = atr[:, -1] if n else np.full(s, np.nan)
        tail = slice(max(0, n - 30), n)
        fallback = np.nanmean(h[:, tail] - l[:, tail], axis=1) if n else np.full(s, np.nan)
        price = c[:, -1] if n else np.full(s, np.nan)
        atr_now = np.where(np.isfinite(last) & (last > 0), last, fallback)
        atr_now = np.where(np.isfinite(atr_now) & (atr_now > 0), atr_now, 0.001 * price)
        # volume expansion: the last 3 bars against the 30 before them
        vol_recent = np.nanmean(v[:, -3:], axis=1) if n >= 3 else np.full(s, np.nan)
        base = v[:, max(0, n - 33) : max(0, n - 3)]
        vol_base = np.nanmean(base, axis=1) if base.shape[1] else np.full(s, np.nan)
        vol_ratio = np.where(vol_base > 0, vol_recent / np.where(vol_base > 0, vol_base, 1.0), 1.0)
        atr_tail = atr[:, max(0, n - 100) :]
        atr_mean = np.nanmean(atr_tail, axis=1) if atr_tail.shape[1] else np.full(s, np.nan)
        atr_ratio = np.where(atr_mean > 0, atr_now / np.where(atr_mean > 0, atr_mean, 1.0), 1.0)
        dv_tail = slice(max(0, n - 390), n)
        # sum of close x volume per row in one pass (no temporaries); rows with gaps take the NaN-aware path
        dollar = np.einsum("ij,ij->i", c[:, dv_tail], v[:, dv_tail]) / max(1, dv_tail.stop - dv_tail.start)
        gappy = ~np.isfinite(dollar)
        if gappy.any():
            dollar[gappy] = np.nanmean(c[gappy, dv_tail] * v[gappy, dv_tail], axis=1)
        dollar_volume = dollar * _bars_per_session(panel.interval)
    # rows only ever miss their leading bars (see analytics.panel), so the last MIN_BARS tell
    have_bars = np.isfinite(c[:, -MIN_BARS:]).all(axis=1) if n >= MIN_BARS else np.zeros(s, dtype=bool)
    return Features(
        panel=panel,
        ema9=ema9,
        ema21=ema21,
        ema50=ema50,
        ema200=ema200,
        atr=atr,
        rsi=rsi,
        macd_hist=hist,
        sess=sess,
        pv=pv,
        window=window_of(panel, atr_now),
        ro=_recent(panel.open, RECENT),
        rh=_recent(h, RECENT),
        rl=_recent(l, RECENT),
        rc=_recent(c, RECENT),
        rvwap=rvwap,
        atr_now=atr_now,
        vol_ratio=np.nan_to_num(vol_ratio, nan=1.0),
        atr_ratio=np.nan_to_num(atr_ratio, nan=1.0),
        dollar_volume=np.nan_to_num(dollar_volume),
        enough=have_bars & np.isfinite(price),
    )


def ema_last(close: np.ndarray, period: int) -> np.ndarray:
    """Last value of TA-Lib's EMA for every row of a 2-D array, in one vectorised pass.

    Same definition as talib.EMA (alpha = 2/(period+1), seeded by the SMA of the first `period`
    values), run as one IIR filter over all rows. Rows with gaps fall back to TA-Lib itself.
    """
    s, n = close.shape
    out = np.full(s, np.nan)
    if n < period or s == 0:
        return out
    alpha = 2.0 / (period + 1.0)
    clean = np.isfinite(close).all(axis=1)
    if clean.any():
        x = close[clean]
        seed = x[:, :period].mean(axis=1)
        if n == period:
            out[clean] = seed
        else:
            y, _ = lfilter([alpha], [1.0, alpha - 1.0], x[:, period:], axis=1, zi=((1.0 - alpha) * seed)[:, None])
            out[clean] = y[:, -1]
    for i in np.flatnonzero(~clean):
        out[i] = talib.EMA(np.ascontiguousarray(close[i]), period)[-1]
    return out


def trend(panel: Panel) -> np.ndarray:
    """Trend of each row at its last bar: +1 (close > EMA21 >= EMA50), -1 (mirrored) or 0."""
    s, n = panel.n_symbols, panel.n_bars
    out = np.zeros(s)
    if n < 22:
        return out
    # 300 bars are 6 EMA50 time constants: older bars change the last value by less than 0.3%
    close = panel.close[:, -300:]
    e21 = ema_last(close, 21)
    e50 = ema_last(close, 50) if n >= 50 else e21
    last = panel.close[:, -1]
    with np.errstate(invalid="ignore"):
        out = np.where((last > e21) & (e21 >= e50), 1.0, np.where((last < e21) & (e21 <= e50), -1.0, 0.0))
    return out
