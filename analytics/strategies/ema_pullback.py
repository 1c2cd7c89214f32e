"""EMA-stack pullback in trend: 9 > 21 > 50 EMAs (rising 50), a dip to the 21 EMA, then a bounce; buy the break of the bounce."""

from __future__ import annotations

import numpy as np

from analytics.strategies.base import Signal, Strategy, px, side, signal, why_not
from analytics.strategies.features import Features

LOOK = 5


def detect(f: Features) -> Signal:
    s = f.panel.n_symbols
    c, a = f.close, f.atr_now
    e9, e21, e50, e50_ago = f.now("ema9"), f.now("ema21"), f.now("ema50"), f.ago("ema50", 5)
    rsi = f.now("rsi")
    lows = np.nanmin(np.where(np.isfinite(f.rl[:, -LOOK:]), f.rl[:, -LOOK:], np.inf), axis=1)
    highs = np.nanmax(np.where(np.isfinite(f.rh[:, -LOOK:]), f.rh[:, -LOOK:], -np.inf), axis=1)
    last_open = f.ro[:, -1]
    with np.errstate(invalid="ignore"):
        up = (e9 > e21) & (e21 > e50) & (c > e50) & (e50 > e50_ago)
        dn = (e9 < e21) & (e21 < e50) & (c < e50) & (e50 < e50_ago)
        dipped = np.where(up, lows <= e21 + 0.25 * a, highs >= e21 - 0.25 * a)
        bounced = np.where(up, (c > e21) & (c > last_open), (c < e21) & (c < last_open))
        stretched = np.abs(c - e21) > 1.5 * a
        hot = np.where(up, rsi >= 75, rsi <= 25)
    reason = why_not(
        s,
        [
            (~f.enough, "not enough bars"),
            (~(up | dn), "EMAs 9/21/50 are not stacked with a sloping 50"),
            (~dipped, f"no pullback to the 21 EMA in the last {LOOK} bars"),
            (~bounced, "no bounce off the 21 EMA yet"),
            (stretched, "price is more than 1.5 ATR from the 21 EMA"),
            (hot, "RSI already stretched"),
        ],
    )
    active = reason == None  # noqa: E711
    entry_long = np.fmax(np.nanmax(f.rh[:, -2:], axis=1), c)
    entry_short = np.fmin(np.nanmin(f.rl[:, -2:], axis=1), c)
    return signal(active, up, entry_long, entry_short, lows, highs, reason)


def trigger(f: Features, row: int, d: int, entry: float) -> str:
    return (
        f"trend {side(d, 'up', 'down')} with EMAs stacked; pullback to the 21 EMA ({px(f.now('ema21')[row])}) "
        f"and a {side(d, 'break above', 'break below')} {px(entry)}"
    )


def invalidation(f: Features, row: int, d: int, entry: float, stop: float) -> str:
    return (
        f"wrong on a close {side(d, 'below', 'above')} the 50 EMA ({px(f.now('ema50')[row])}) "
        f"or a trade {side(d, 'below', 'above')} {px(stop)}, which breaks the pullback's structure"
    )


STRATEGY = Strategy(
    id="ema_pullback",
    name="EMA-stack pullback",
    styles=frozenset({"scalp", "intraday", "swing", "leaps"}),
    min_rr=2.0,
    detector=detect,
    trigger=trigger,
    invalidation=invalidation,
    description="trend continuation after a dip to the 21 EMA; stop beyond the pullback low",
)
