"""Gap-and-go and gap-fill: after an opening gap, ride it past the session extreme, or fade it back toward the prior close."""

from __future__ import annotations

import numpy as np

from analytics.strategies.base import NOT_INTRADAY, Signal, Strategy, px, side, signal, why_not
from analytics.strategies.features import Features

#: A gap counts when the open is at least this fraction from the prior close ...
MIN_GAP = 0.005
#: ... and at least this share of the prior day's range.
MIN_GAP_OF_RANGE = 0.25
#: Gap plays are for the first part of the session (ET minutes).
LAST_MINUTE = 13 * 60


def _gap(f: Features) -> tuple[np.ndarray, np.ndarray]:
    ss = f.sess
    with np.errstate(invalid="ignore"):
        g = ss.gap
        big = (np.abs(g) >= MIN_GAP * ss.pdc) & (np.abs(g) >= MIN_GAP_OF_RANGE * (ss.pdh - ss.pdl))
    return g, big


def _common(f: Features, big: np.ndarray) -> list[tuple[np.ndarray | bool, str]]:
    ss = f.sess
    return [
        (not f.panel.intraday, NOT_INTRADAY),
        (~f.enough, "not enough bars"),
        (~np.isfinite(ss.gap), "no prior close to measure a gap"),
        (~big, "no meaningful opening gap today"),
        (ss.minute_now >= LAST_MINUTE, "gap plays are for the first half of the session"),
    ]


def detect_go(f: Features) -> Signal:
    s = f.panel.n_symbols
    ss = f.sess
    c, a, vw = f.close, f.atr_now, f.vwap
    g, big = _gap(f)
    with np.errstate(invalid="ignore"):
        long = (g > 0) & (c > ss.sopen) & ~(c < vw) & (c >= ss.hod - 1.0 * a)
        short = (g < 0) & (c < ss.sopen) & ~(c > vw) & (c <= ss.lod + 1.0 * a)
    reason = why_not(s, _common(f, big) + [(~(long | short), "the gap is not holding near the session extreme")])
    active = reason == None  # noqa: E711
    basis_long = np.fmin(vw, ss.sopen)
    basis_short = np.fmax(vw, ss.sopen)
    return signal(active, long, ss.hod, ss.lod, basis_long, basis_short, reason)


def detect_fill(f: Features) -> Signal:
    s = f.panel.n_symbols
    ss = f.sess
    c, a, vw = f.close, f.atr_now, f.vwap
    g, big = _gap(f)
    highs = np.nanmax(np.where(np.isfinite(f.rh[:, -5:]), f.rh[:, -5:], -np.inf), axis=1)
    lows = np.nanmin(np.where(np.isfinite(f.rl[:, -5:]), f.rl[:, -5:], np.inf), axis=1)
    with np.errstate(invalid="ignore"):
        # gap up failing -> short toward the prior close; gap down failing -> long toward it
        short = (g > 0) & (c < ss.sopen) & ~(c > vw) & (c > ss.pdc + 0.5 * a)
        long = (g < 0) & (c > ss.sopen) & ~(c < vw) & (c < ss.pdc - 0.5 * a)
    reason = why_not(
        s, _common(f, big) + [(~(long | short), "the gap is not failing (price not back through the open and VWAP)")]
    )
    active = reason == None  # noqa: E711
    entry_long = np.fmax(f.rh[:, -1], c)
    entry_short = np.fmin(f.rl[:, -1], c)
    return signal(active, long, entry_long, entry_short, np.fmin(lows, vw), np.fmax(highs, vw), reason)


def trigger_go(f: Features, row: int, d: int, entry: float) -> str:
    pct = 100 * f.sess.gap[row] / f.sess.pdc[row]
    return f"gap {pct:+.1f}% holding; a break {side(d, 'above', 'below')} the session {side(d, 'high', 'low')} {px(entry)}"


def invalidation_go(f: Features, row: int, d: int, entry: float, stop: float) -> str:
    return (
        f"wrong if price loses {side(d, 'VWAP and the open', 'VWAP and the open')} "
        f"({px(f.sess.sopen[row])}) or trades {side(d, 'below', 'above')} {px(stop)}"
    )


def trigger_fill(f: Features, row: int, d: int, entry: float) -> str:
    pct = 100 * f.sess.gap[row] / f.sess.pdc[row]
    return (
        f"gap {pct:+.1f}% failing back through the open; {side(d, 'a break above', 'a break below')} {px(entry)} "
        f"toward the prior close {px(f.sess.pdc[row])}"
    )


def invalidation_fill(f: Features, row: int, d: int, entry: float, stop: float) -> str:
    return f"wrong if price reclaims {side(d, 'below', 'above')} the open {px(f.sess.sopen[row])} and trades {side(d, 'below', 'above')} {px(stop)}"


GAP_GO = Strategy(
    id="gap_go",
    name="gap-and-go",
    styles=frozenset({"scalp", "intraday"}),
    min_rr=1.5,
    detector=detect_go,
    trigger=trigger_go,
    invalidation=invalidation_go,
    description="an opening gap that holds above (below) the open and VWAP; buy (sell) the break of the session extreme",
)

GAP_FILL = Strategy(
    id="gap_fill",
    name="gap-fill",
    styles=frozenset({"scalp", "intraday"}),
    min_rr=1.5,
    detector=detect_fill,
    trigger=trigger_fill,
    invalidation=invalidation_fill,
    description="an opening gap failing back through the open and VWAP; trade toward the prior close",
)
