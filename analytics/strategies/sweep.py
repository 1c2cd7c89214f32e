"""Liquidity-sweep reversal: price runs the stops beyond a prior range extreme, then closes back inside; fade it."""

from __future__ import annotations

import numpy as np

from analytics.strategies.base import Signal, Strategy, px, side, signal, why_not
from analytics.strategies.features import Features

SWEEP = 4  # bars in which the sweep happens
RANGE = 30  # bars before that whose extreme holds the resting stops


def _extreme(a: np.ndarray, hi: bool) -> np.ndarray:
    fill = -np.inf if hi else np.inf
    if a.shape[1] == 0:  # a short history leaves no range before the sweep bars: no extreme, no sweep
        return np.full(a.shape[0], fill)
    x = np.where(np.isfinite(a), a, fill)
    ext: np.ndarray = x.max(axis=1) if hi else x.min(axis=1)
    return ext


def detect(f: Features) -> Signal:
    s = f.panel.n_symbols
    p = f.panel
    n = p.n_bars
    c, a = f.close, f.atr_now
    lo_col, hi_col = max(0, n - SWEEP - RANGE), max(0, n - SWEEP)
    ref_hi = _extreme(p.high[:, lo_col:hi_col], True)
    ref_lo = _extreme(p.low[:, lo_col:hi_col], False)
    run_hi = _extreme(f.rh[:, -SWEEP:], True)
    run_lo = _extreme(f.rl[:, -SWEEP:], False)
    last_open = f.ro[:, -1]
    with np.errstate(invalid="ignore"):
        swept_hi = (run_hi > ref_hi + 0.05 * a) & (c < ref_hi) & (c < last_open)
        swept_lo = (run_lo < ref_lo - 0.05 * a) & (c > ref_lo) & (c > last_open)
        # both sides swept: the deeper run decides
        long = swept_lo & ~(swept_hi & (run_hi - ref_hi > ref_lo - run_lo))
    reason = why_not(
        s,
        [
            ((~f.enough) | (n < SWEEP + RANGE), "not enough bars"),
            (~(swept_hi | swept_lo), f"no sweep of the prior {RANGE}-bar high/low that closed back inside"),
        ],
    )
    active = reason == None  # noqa: E711
    return signal(active, long, c, c, run_lo, run_hi, reason)


def trigger(f: Features, row: int, d: int, entry: float) -> str:
    return f"stops {side(d, 'below', 'above')} the prior range were swept and price closed back inside; enter near {px(entry)}"


def invalidation(f: Features, row: int, d: int, entry: float, stop: float) -> str:
    return f"wrong if price trades back {side(d, 'below', 'above')} the sweep extreme, stop {px(stop)}"


STRATEGY = Strategy(
    id="liquidity_sweep",
    name="liquidity-sweep reversal",
    styles=frozenset({"scalp", "intraday", "swing", "leaps"}),
    min_rr=2.0,
    detector=detect,
    trigger=trigger,
    invalidation=invalidation,
    description="a stop run beyond a range extreme that closes back inside; stop beyond the sweep",
)
