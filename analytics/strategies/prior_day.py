"""Prior-day high/low breakout: take out yesterday's high (low) with VWAP/trend agreeing; stop under the recent structure."""

from __future__ import annotations

import numpy as np

from analytics.intervals import interval_minutes
from analytics.strategies.base import Signal, Strategy, px, side, signal, why_not
from analytics.strategies.features import Features

LOOK = 10


def detect(f: Features) -> Signal:
    s = f.panel.n_symbols
    ss = f.sess
    c, a = f.close, f.atr_now
    ctx = np.where(np.isfinite(f.vwap), f.vwap, f.now("ema21"))
    lows = np.nanmin(np.where(np.isfinite(f.rl[:, -LOOK:]), f.rl[:, -LOOK:], np.inf), axis=1)
    highs = np.nanmax(np.where(np.isfinite(f.rh[:, -LOOK:]), f.rh[:, -LOOK:], -np.inf), axis=1)
    with np.errstate(invalid="ignore"):
        near_h = (c >= ss.pdh - 0.75 * a) & (c <= ss.pdh + 1.0 * a)
        near_l = (c <= ss.pdl + 0.75 * a) & (c >= ss.pdl - 1.0 * a)
        long = near_h & ~(c < ctx)
        short = near_l & ~(c > ctx)
        both = long & short
        long = np.where(both, np.abs(c - ss.pdh) <= np.abs(c - ss.pdl), long)
        short = short & ~long
        chased = (c > ss.pdh + 1.0 * a) | (c < ss.pdl - 1.0 * a)
    reason = why_not(
        s,
        [
            (~f.enough, "not enough bars"),
            (~np.isfinite(ss.pdh), "no prior session in the data"),
            (
                f.panel.intraday and interval_minutes(f.panel.interval) < 60 and ss.minute_now >= 15 * 60 + 30,
                "too late in the session",
            ),
            (chased & ~(long | short), "price already ran more than 1 ATR past the prior-day level"),
            (~(near_h | near_l), "price is not near the prior-day high or low"),
            (~(long | short), "VWAP/trend is against the break"),
        ],
    )
    active = reason == None  # noqa: E711
    basis_long = np.fmin(lows, ss.pdh - 0.25 * a)
    basis_short = np.fmax(highs, ss.pdl + 0.25 * a)
    return signal(active, long, ss.pdh, ss.pdl, basis_long, basis_short, reason)


def trigger(f: Features, row: int, d: int, entry: float) -> str:
    return f"a break {side(d, 'above', 'below')} (or retest of) the prior-day {side(d, 'high', 'low')} {px(entry)}"


def invalidation(f: Features, row: int, d: int, entry: float, stop: float) -> str:
    return (
        f"wrong if price closes back {side(d, 'below', 'above')} {px(entry)} and then trades "
        f"{side(d, 'below', 'above')} {px(stop)} (failed breakout)"
    )


STRATEGY = Strategy(
    id="pdh_pdl_break",
    name="prior-day high/low breakout",
    styles=frozenset({"scalp", "intraday", "swing"}),
    min_rr=1.5,
    detector=detect,
    trigger=trigger,
    invalidation=invalidation,
    description="break of yesterday's high or low with VWAP/trend agreeing; stop under the last 10 bars' structure",
)
