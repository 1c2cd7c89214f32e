"""FVG retest: price returns into an unfilled fair value gap in the trend's direction and holds; stop beyond the gap."""

from __future__ import annotations

import numpy as np

from analytics.levels import last_true, take
from analytics.strategies.base import Signal, Strategy, px, side, signal, why_not
from analytics.strategies.features import Features

WINDOW = 60  # bars searched for gaps
MIN_AGE = 3  # a gap must be at least this many bars old to be "retested"


def detect(f: Features) -> Signal:
    s = f.panel.n_symbols
    g = f.window.gaps  # gaps of the level window, filled state included
    w = g.bull.shape[1]
    age = w - 1 - np.arange(w)
    old = (age >= MIN_AGE) & (age < WINDOW)
    bull_cols, _ = last_true(g.bull & ~g.filled & old[None, :], 1)
    bear_cols, _ = last_true(g.bear & ~g.filled & old[None, :], 1)
    b_lo, b_hi = take(g.bottom, bull_cols)[:, 0], take(g.top, bull_cols)[:, 0]
    s_lo, s_hi = take(g.bottom, bear_cols)[:, 0], take(g.top, bear_cols)[:, 0]
    c, e21, e50 = f.close, f.now("ema21"), f.now("ema50")
    lo_now, hi_now = f.rl[:, -1], f.rh[:, -1]
    with np.errstate(invalid="ignore"):
        up = (c > e50) & (e21 > e50)
        dn = (c < e50) & (e21 < e50)
        in_bull = (lo_now <= b_hi) & (c >= b_lo)
        in_bear = (hi_now >= s_lo) & (c <= s_hi)
        long = up & in_bull
        short = dn & in_bear & ~long
    reason = why_not(
        s,
        [
            (~f.enough, "not enough bars"),
            (~(np.isfinite(b_lo) | np.isfinite(s_lo)), f"no unfilled fair value gap in the last {WINDOW} bars"),
            (~(in_bull | in_bear), "price is not retesting an unfilled gap"),
            (~(long | short), "the gap's side disagrees with the 21/50 EMA trend"),
        ],
    )
    active = reason == None  # noqa: E711
    zone = (np.where(long, b_lo, s_lo), np.where(long, b_hi, s_hi))
    return signal(active, long, c, c, b_lo, s_hi, reason, zone=zone)


def trigger(f: Features, row: int, d: int, entry: float) -> str:
    return f"retest of an unfilled {side(d, 'bullish', 'bearish')} fair value gap holding; enter near {px(entry)}"


def invalidation(f: Features, row: int, d: int, entry: float, stop: float) -> str:
    return f"wrong if the gap fills: a trade {side(d, 'below', 'above')} {px(stop)}"


STRATEGY = Strategy(
    id="fvg_retest",
    name="FVG retest",
    styles=frozenset({"scalp", "intraday", "swing", "leaps"}),
    min_rr=2.0,
    detector=detect,
    trigger=trigger,
    invalidation=invalidation,
    description="a pullback into an unfilled fair value gap with the trend; stop beyond the gap",
)
