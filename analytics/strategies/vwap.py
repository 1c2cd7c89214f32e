"""VWAP reclaim / reject: price crosses back over session VWAP and holds; trade the break of the crossing bar."""

from __future__ import annotations

import numpy as np

from analytics.strategies.base import NOT_INTRADAY, Signal, Strategy, px, side, signal, why_not
from analytics.strategies.features import Features

LOOK = 6  # bars searched for the cross


def detect(f: Features) -> Signal:
    s = f.panel.n_symbols
    c, a, vw = f.close, f.atr_now, f.vwap
    rc, rv = f.rc[:, -LOOK:], f.rvwap[:, -LOOK:]
    with np.errstate(invalid="ignore"):
        was_below = (rc[:, :-1] < rv[:, :-1]).any(axis=1)
        was_above = (rc[:, :-1] > rv[:, :-1]).any(axis=1)
        reclaim = was_below & (c > vw) & (c - vw <= 0.75 * a)
        reject = was_above & (c < vw) & (vw - c <= 0.75 * a)
        stretched = (was_below & (c - vw > 0.75 * a)) | (was_above & (vw - c > 0.75 * a))
    lows = np.nanmin(np.where(np.isfinite(f.rl[:, -LOOK:]), f.rl[:, -LOOK:], np.inf), axis=1)
    highs = np.nanmax(np.where(np.isfinite(f.rh[:, -LOOK:]), f.rh[:, -LOOK:], -np.inf), axis=1)
    early = f.sess.minute_now < 9 * 60 + 45
    reason = why_not(
        s,
        [
            (not f.panel.intraday, NOT_INTRADAY),
            (~f.enough, "not enough bars"),
            (~np.isfinite(vw), "no session VWAP yet"),
            (early, "VWAP needs the first 15 minutes"),
            (f.sess.minute_now >= 15 * 60 + 30, "too late in the session"),
            (stretched & ~(reclaim | reject), "price already stretched more than 0.75 ATR from VWAP"),
            (~(reclaim | reject), f"no VWAP cross in the last {LOOK - 1} bars"),
        ],
    )
    active = reason == None  # noqa: E711
    long = reclaim
    entry_long = np.fmax(f.rh[:, -1], c)
    entry_short = np.fmin(f.rl[:, -1], c)
    return signal(active, long, entry_long, entry_short, np.fmin(lows, vw), np.fmax(highs, vw), reason)


def trigger(f: Features, row: int, d: int, entry: float) -> str:
    what = side(d, "reclaim", "rejection")
    return f"VWAP {what} ({px(f.vwap[row])}): {side(d, 'a break above', 'a break below')} {px(entry)}, the crossing bar's {side(d, 'high', 'low')}"


def invalidation(f: Features, row: int, d: int, entry: float, stop: float) -> str:
    return (
        f"wrong on a close back {side(d, 'below', 'above')} VWAP {px(f.vwap[row])}, "
        f"or a trade {side(d, 'below', 'above')} {px(stop)}"
    )


STRATEGY = Strategy(
    id="vwap_reclaim",
    name="VWAP reclaim/reject",
    styles=frozenset({"scalp", "intraday"}),
    min_rr=1.5,
    detector=detect,
    trigger=trigger,
    invalidation=invalidation,
    description="price crosses back over session VWAP; stop beyond the swing that made the cross",
)
