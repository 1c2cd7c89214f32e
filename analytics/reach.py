"""How far price can plausibly travel within a style's horizon: the ceiling for a plan's targets.

A target the market would need an unusual move to reach within the plan's life is not a target,
however good its R:R looks. The reach is REACH_SIGMAS standard deviations of the move over the
style's horizon (the expected move, one standard deviation, is touched about a third of the time;
1.5 about one time in seven):

- from implied volatility when it is known: price x IV x sqrt(horizon in trading years);
- else from the execution interval's ATR: a bar's close-to-close sigma is about ATR / 1.6 (the mean
  range of a random walk over a bar is ~1.6 sigma), and sigmas add over n bars as sqrt(n).

Horizons: a scalp lives about an hour, an intraday plan one session (it is flat by the close), a
swing about two weeks, a LEAPS position about half a year.

Pure: numbers in, numbers out.
"""

from __future__ import annotations

import math

import numpy as np

from analytics.intervals import interval_minutes

#: Regular-session minutes in a trading day.
SESSION_MINUTES = 390
#: Trading days in a year (to scale an annual implied volatility).
TRADING_DAYS = 252
#: Each style's horizon in regular-session minutes.
HORIZON_MINUTES: dict[str, int] = {
    "scalp": 60,
    "intraday": SESSION_MINUTES,
    "swing": 10 * SESSION_MINUTES,
    "leaps": 126 * SESSION_MINUTES,
}
#: Horizons in words, for replies ("beyond the reach of one session").
HORIZON_WORDS: dict[str, str] = {
    "scalp": "an hour",
    "intraday": "one session",
    "swing": "two weeks",
    "leaps": "six months",
}
#: How many standard deviations of the horizon's move still count as within reach (1 would be the expected move).
REACH_SIGMAS = 1.5
#: ATR of a bar over the sigma of its close-to-close move.
ATR_PER_SIGMA = 1.6


def horizon_bars(style: str, interval: str) -> float:
    """Bars of `interval` in the style's horizon (a daily bar counts one session, a weekly five)."""
    minutes = interval_minutes(interval)
    per_bar = minutes if minutes < 1440 else SESSION_MINUTES * (minutes // 1440 if minutes < 10080 else 5)
    return max(1.0, HORIZON_MINUTES.get(style, SESSION_MINUTES) / per_bar)


def reach_from_atr(atr: np.ndarray | float, style: str, interval: str) -> np.ndarray:
    """The reach in price from the execution interval's ATR (element-wise)."""
    sigma_bar = np.asarray(atr, dtype=np.float64) / ATR_PER_SIGMA
    out: np.ndarray = REACH_SIGMAS * sigma_bar * math.sqrt(horizon_bars(style, interval))
    return out


def reach_from_iv(price: float, iv: float, style: str) -> float:
    """The reach in price from an annual implied volatility (0.35 = 35%)."""
    years = HORIZON_MINUTES.get(style, SESSION_MINUTES) / SESSION_MINUTES / TRADING_DAYS
    return float(REACH_SIGMAS * price * iv * math.sqrt(years))


def reach(price: float, atr: float, style: str, interval: str, iv: float | None = None) -> tuple[float, str]:
    """(reach in price, basis): implied volatility when a usable one is given, else the ATR."""
    if iv is not None and math.isfinite(iv) and 0.01 <= iv <= 5.0 and price > 0:
        return reach_from_iv(price, iv, style), "implied volatility"
    return float(reach_from_atr(atr, style, interval)), "ATR"


__all__ = [
    "ATR_PER_SIGMA",
    "HORIZON_MINUTES",
    "HORIZON_WORDS",
    "REACH_SIGMAS",
    "horizon_bars",
    "reach",
    "reach_from_atr",
    "reach_from_iv",
]
