"""The multi-context block: for one symbol and several intervals, recent bars, indicator series, levels and volatility.

This is what a reader (a person, or the LLM through a tool) needs to see the symbol
across timeframes at once, kept compact: only the last `lookback` bars and indicator
values are returned, though indicators are computed over the full frame handed in so
their warm-up does not show.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from typing import Literal

import numpy as np
import pandas as pd

from analytics.indicators import compute_all
from analytics.intervals import is_intraday
from analytics.models import Level, Model
from analytics.volatility import VolRegime

#: Indicator series returned per interval (VWAP only for intraday intervals).
SERIES = ("ema9", "ema21", "ema50", "ema200", "vwap", "rsi14", "atr14", "macd_hist")
#: Bars of history needed before the slowest series (EMA 200) is meaningful.
WARMUP_BARS = 220
MAX_LOOKBACK = 200


class BarRow(Model):
    """One bar, short keys for compact JSON."""

    t: datetime
    o: float
    h: float
    l: float  # noqa: E741
    c: float
    v: float


class IntervalContext(Model):
    """One interval's view: recent bars, trimmed indicator series, the latest values, trend and levels."""

    interval: str
    as_of: datetime | None
    source: str
    bars: list[BarRow]
    series: dict[str, list[float | None]]
    latest: dict[str, float | None]
    trend: Literal["up", "down", "mixed", "unknown"]
    levels: list[Level]
    note: str | None = None


class MultiContext(Model):
    """A symbol across intervals, with the volatility block."""

    symbol: str
    as_of: datetime
    sources: list[str]
    session: str
    lookback: int
    intervals: list[IntervalContext]
    volatility: VolRegime | None
    volatility_note: str | None = None


def _clean(values: np.ndarray, digits: int = 4) -> list[float | None]:
    return [None if not math.isfinite(x) else round(float(x), digits) for x in values]


def ema_trend(ema9: float, ema21: float, ema50: float, close: float) -> Literal["up", "down", "mixed", "unknown"]:
    """'up' when close > EMA9 > EMA21 > EMA50, 'down' for the mirror, 'mixed' otherwise; 'unknown' during warm-up."""
    vals = (close, ema9, ema21, ema50)
    if not all(math.isfinite(v) for v in vals):
        return "unknown"
    if close > ema9 > ema21 > ema50:
        return "up"
    if close < ema9 < ema21 < ema50:
        return "down"
    return "mixed"


def interval_context(
    df: pd.DataFrame,
    interval: str,
    lookback: int,
    *,
    as_of: datetime | None,
    source: str,
    levels: Sequence[Level] = (),
) -> IntervalContext:
    """The IntervalContext of bars `df` (indicators over all of it, the last `lookback` returned)."""
    lookback = max(1, min(int(lookback), MAX_LOOKBACK))
    if df.empty:
        return IntervalContext(
            interval=interval,
            as_of=as_of,
            source=source,
            bars=[],
            series={},
            latest={},
            trend="unknown",
            levels=list(levels),
            note="no bars in the window",
        )
    ind = compute_all(df)
    tail = df.iloc[-lookback:]
    names = [s for s in SERIES if s != "vwap" or is_intraday(interval)]
    series = {k: _clean(ind[k][-lookback:]) for k in names}
    latest = {k: (None if not math.isfinite(ind[k][-1]) else round(float(ind[k][-1]), 4)) for k in names}
    close = float(df["close"].iloc[-1])
    latest["close"] = close
    bars = [
        BarRow(t=ts.to_pydatetime(), o=float(r[0]), h=float(r[1]), l=float(r[2]), c=float(r[3]), v=float(r[4]))
        for ts, r in zip(tail.index, tail[["open", "high", "low", "close", "volume"]].to_numpy())
    ]
    note = None
    if len(df) < WARMUP_BARS:
        note = f"only {len(df)} bars of history: the slow averages are still warming up"
    return IntervalContext(
        interval=interval,
        as_of=as_of,
        source=source,
        bars=bars,
        series=series,
        latest=latest,
        trend=ema_trend(ind["ema9"][-1], ind["ema21"][-1], ind["ema50"][-1], close),
        levels=list(levels),
        note=note,
    )


def build_context(
    symbol: str,
    per_interval: Sequence[IntervalContext],
    *,
    as_of: datetime,
    session: str,
    lookback: int,
    volatility: VolRegime | None,
    volatility_note: str | None = None,
    extra_sources: Sequence[str] = (),
) -> MultiContext:
    """Assemble the block, citing each interval's source and the volatility's sources."""
    sources = [f"bars {c.interval}: {c.source}" for c in per_interval]
    if volatility is not None:
        sources += [s for s in volatility.sources if s not in sources]
    sources += [s for s in extra_sources if s not in sources]
    return MultiContext(
        symbol=symbol,
        as_of=as_of,
        sources=sources,
        session=session,
        lookback=lookback,
        intervals=list(per_interval),
        volatility=volatility,
        volatility_note=volatility_note,
    )


def detect_levels(symbol: str, df: pd.DataFrame, interval: str, *, limit: int = 12) -> list[Level]:
    """The key levels of one interval's bars (analytics.levels with this interval as the execution one): the `limit` strongest, by price."""
    if df.empty:
        return []
    from analytics.levels import build_levels
    from analytics.panel import Panel
    from analytics.strategies.features import compute_features

    p = Panel.from_frame(symbol, df, interval)
    f = compute_features(p)
    book = build_levels(p, f.atr, f.atr_now, f.sess, f.vwap, None)
    found = sorted(book.levels(0), key=lambda lv: (-lv.strength, lv.price))[:limit]
    return sorted(found, key=lambda lv: lv.price)
