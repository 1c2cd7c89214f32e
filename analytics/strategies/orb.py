"""Opening-range breakout: trade the break (or retest) of the first 15/30 minutes' range in the direction VWAP agrees with."""

from __future__ import annotations

import numpy as np

from analytics.strategies.base import NOT_INTRADAY, Signal, Strategy, px, side, signal, why_not
from analytics.strategies.features import Features

#: No new breakouts after 15:00 ET: too little session left to reach targets.
LAST_MINUTE = 15 * 60


def detect(f: Features) -> Signal:
    s = f.panel.n_symbols
    ss = f.sess
    c, a, vw = f.close, f.atr_now, f.vwap
    with np.errstate(invalid="ignore"):
        rng = ss.orh - ss.orl
        mid = (ss.orh + ss.orl) / 2
        near = np.maximum(0.25 * rng, 0.5 * a)
        ext = np.maximum(0.5 * rng, 1.0 * a)
        vw_up = ~(c < vw)  # NaN VWAP does not veto
        vw_dn = ~(c > vw)
        long = (c >= mid) & vw_up & (c >= ss.orh - near) & (c <= ss.orh + ext)
        short = (c < mid) & vw_dn & (c <= ss.orl + near) & (c >= ss.orl - ext)
        chased = (c > ss.orh + ext) | (c < ss.orl - ext)
    reason = why_not(
        s,
        [
            (not f.panel.intraday or ss.or_minutes is None, NOT_INTRADAY),
            (~f.enough, "not enough bars"),
            (~np.isfinite(rng) | ~(rng > 0), "no opening range today yet"),
            (not ss.or_done, "the opening range is not complete yet"),
            (ss.minute_now >= LAST_MINUTE, "too late in the session for a breakout"),
            (chased, "price already ran more than 1 ATR past the range"),
            (~(long | short), "price is not at a range edge on the side VWAP favours"),
        ],
    )
    active = reason == None  # noqa: E711
    return signal(active, long, ss.orh, ss.orl, mid, mid, reason)


def trigger(f: Features, row: int, d: int, entry: float) -> str:
    edge = side(d, "high", "low")
    return f"a break {side(d, 'above', 'below')} (or retest of) the opening-range {edge} {px(entry)}"


def invalidation(f: Features, row: int, d: int, entry: float, stop: float) -> str:
    mid = (f.sess.orh[row] + f.sess.orl[row]) / 2
    return (
        f"wrong if price falls back {side(d, 'below', 'above')} the range midpoint {px(mid)} on a closing basis, "
        f"or trades {side(d, 'below', 'above')} {px(stop)}; void if not triggered by 15:00 ET"
    )


STRATEGY = Strategy(
    id="orb",
    name="ORB breakout",
    styles=frozenset({"scalp", "intraday"}),
    min_rr=1.5,
    detector=detect,
    trigger=trigger,
    invalidation=invalidation,
    description="break of the opening range in the direction of VWAP; stop beyond the range midpoint",
)
