"""Price levels and overlays: session levels, swings, higher-timeframe levels, zones, liquidity pools, FVGs, VWAPs.

Every detector works on a `Panel` (symbols x bars) with whole-array NumPy operations, so the
scanner computes the levels of 500 symbols in one pass and a single plan is the same code
with one row. The result is a `LevelBook`: fixed columns (column 0 is always the prior-day
high, and so on), one row per symbol, NaN where a symbol has no such level. `LevelBook.levels(row)`
turns a row into `Level` models for replies and charts.

Definitions (k = pivot half-width, ATR = the execution interval's ATR(14) at the last bar):

- Opening range, prior day (high, low, close) and session high/low: `analytics.session_levels`.
- Swing high: a bar whose high is above the k bars before it and not below the k bars after it
  (swing lows mirrored). The last k bars cannot be confirmed swings yet.
- Higher-timeframe levels: swings (k = 2) and the previous completed bar of each higher interval.
- Supply/demand zone: a base bar (range <= 0.8 ATR) followed by an impulsive departure bar
  (body >= 1.2 ATR and >= 60 % of its range) that closes beyond the base; the zone is the base's
  range. A zone closed through afterwards is broken and dropped; one not revisited is fresh.
- Liquidity pool: two or more swing highs (lows) within 0.15 ATR of each other; the pool sits at
  the highest (lowest) of them and is "taken" once price trades beyond it.
- Fair value gap: a three-bar imbalance. Bullish when bar i's low is above bar i-2's high
  (gap = [high[i-2], low[i]]), bearish when bar i's high is below bar i-2's low; at least 0.1 ATR.
  Filled once a later bar trades through the far edge.
- VWAPs: the session VWAP and VWAPs anchored at the prior session's open, the most recent swing
  high and swing low, and the open of the most recent gap day (open >= 0.5 % from the prior close).

Strength in [0, 1] says how much a level is worth watching: by kind and timeframe (prior day 0.8,
higher timeframes by interval), by touches (liquidity pools: 0.4 + 0.15 per swing in the pool),
by recency (swings fade 0.05 per older swing), by impulse and freshness (zones), filled FVGs 0.2.
`with_confluence` adds CONFLUENCE_BONUS for each level of another kind at the same price.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import pandas as pd

from analytics.intervals import interval_minutes
from analytics.models import Level
from analytics.panel import Panel
from analytics.session_levels import PriceVolume, SessionLevels, pv_start
from core.values import utc_from_ns

#: Bars of the execution interval searched for swings, zones, pools and FVGs.
LEVEL_WINDOW = 120
#: Bars of a higher interval searched for its swings.
HTF_WINDOW = 120
#: Strength of a higher-timeframe swing by interval.
HTF_STRENGTH = {"15m": 0.55, "30m": 0.6, "1h": 0.65, "4h": 0.75, "1D": 0.85, "1W": 0.9}
#: Gap-day threshold: open at least this far (fraction) from the prior close.
GAP_FRACTION = 0.005


# ---------------------------------------------------------------------------- small array tools


def last_true(mask: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Columns of the last `k` True values of each row, most recent first: (cols (S,k), ok (S,k))."""
    s, w = mask.shape
    cols = np.full((s, k), -1, dtype=np.int64)
    if w == 0 or k == 0:
        return cols, cols >= 0
    rev = mask[:, ::-1].copy()
    rows = np.arange(s)
    for j in range(k):
        pos = rev.argmax(axis=1)  # first True of the reversed row = last True of the row
        has = rev[rows, pos]
        cols[:, j] = np.where(has, w - 1 - pos, -1)
        if not has.any():
            break
        rev[rows, pos] = False
    return cols, cols >= 0


def take(a: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """`a[row, cols[row, j]]` with NaN where cols is -1."""
    if a.shape[1] == 0:
        return np.full(cols.shape, np.nan)
    out = a[np.arange(a.shape[0])[:, None], np.maximum(cols, 0)].astype(np.float64, copy=False)
    return np.where(cols >= 0, out, np.nan)


def suffix_min(a: np.ndarray) -> np.ndarray:
    """`out[:, i] = nanmin(a[:, i+1:])` (inf where nothing follows)."""
    out = np.full(a.shape, np.inf)
    if a.shape[1] > 1:
        x = np.where(np.isnan(a[:, :0:-1]), np.inf, a[:, :0:-1])
        out[:, :-1] = np.minimum.accumulate(x, axis=1)[:, ::-1]
    return out


def suffix_max(a: np.ndarray) -> np.ndarray:
    """`out[:, i] = nanmax(a[:, i+1:])` (-inf where nothing follows)."""
    return -suffix_min(-a)


# ---------------------------------------------------------------------------- structure


def swing_masks(high: np.ndarray, low: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(is_swing_high, is_swing_low), (S, N) bool: pivots with `k` bars on each side."""
    s, n = high.shape
    is_hi = np.zeros((s, n), dtype=bool)
    is_lo = np.zeros((s, n), dtype=bool)
    if n < 2 * k + 1:
        return is_hi, is_lo
    core_h, core_l = high[:, k : n - k], low[:, k : n - k]
    lmax, rmax = high[:, k - 1 : n - k - 1].copy(), high[:, k + 1 : n - k + 1].copy()
    lmin, rmin = low[:, k - 1 : n - k - 1].copy(), low[:, k + 1 : n - k + 1].copy()
    for j in range(2, k + 1):
        np.fmax(lmax, high[:, k - j : n - k - j], out=lmax)
        np.fmax(rmax, high[:, k + j : n - k + j], out=rmax)
        np.fmin(lmin, low[:, k - j : n - k - j], out=lmin)
        np.fmin(rmin, low[:, k + j : n - k + j], out=rmin)
    with np.errstate(invalid="ignore"):
        is_hi[:, k : n - k] = (core_h > lmax) & (core_h >= rmax)
        is_lo[:, k : n - k] = (core_l < lmin) & (core_l <= rmin)
    return is_hi, is_lo


@dataclass
class Gaps:
    """Fair value gaps found in a window, (S, W) arrays aligned with its columns."""

    bull: np.ndarray  # bool
    bear: np.ndarray  # bool
    bottom: np.ndarray
    top: np.ndarray
    filled: np.ndarray  # bool: price has traded through the far edge since


def fair_value_gap_arrays(
    high: np.ndarray, low: np.ndarray, min_gap: np.ndarray, after: tuple[np.ndarray, np.ndarray] | None = None
) -> Gaps:
    """Three-bar imbalances in every row; `min_gap` (S,) is the smallest gap that counts.

    `after` = (suffix_min(low), suffix_max(high)) when the caller already has them.
    """
    s, n = high.shape
    z = np.zeros((s, n), dtype=bool)
    nan = np.full((s, n), np.nan)
    if n < 3:
        return Gaps(z, z.copy(), nan, nan.copy(), z.copy())
    mg = min_gap[:, None]
    bull, bear = z.copy(), z.copy()
    with np.errstate(invalid="ignore"):
        bull[:, 2:] = low[:, 2:] > high[:, :-2] + mg
        bear[:, 2:] = high[:, 2:] < low[:, :-2] - mg
    bottom, top = nan.copy(), nan.copy()
    bottom[:, 2:] = np.where(bull[:, 2:], high[:, :-2], np.where(bear[:, 2:], high[:, 2:], np.nan))
    top[:, 2:] = np.where(bull[:, 2:], low[:, 2:], np.where(bear[:, 2:], low[:, :-2], np.nan))
    after_low, after_high = after if after is not None else (suffix_min(low), suffix_max(high))
    with np.errstate(invalid="ignore"):
        filled = (bull & (after_low <= bottom)) | (bear & (after_high >= top))
    return Gaps(bull, bear, bottom, top, filled)


@dataclass
class Window:
    """The last LEVEL_WINDOW bars of a panel and what several detectors read from them, computed once."""

    w0: int  # first column of the window in the panel
    o: np.ndarray
    h: np.ndarray
    l: np.ndarray  # noqa: E741
    c: np.ndarray
    after_low: np.ndarray  # suffix_min(l)
    after_high: np.ndarray  # suffix_max(h)
    gaps: Gaps  # fair value gaps of at least 0.1 ATR


def window_of(panel: Panel, atr_now: np.ndarray) -> Window:
    """The level window of `panel` with its suffix extremes and fair value gaps."""
    w0 = max(0, panel.n_bars - LEVEL_WINDOW)
    o, h, l, c = (a[:, w0:] for a in (panel.open, panel.high, panel.low, panel.close))  # noqa: E741
    after_l, after_h = suffix_min(l), suffix_max(h)
    gaps = fair_value_gap_arrays(h, l, 0.1 * atr_now, after=(after_l, after_h))
    return Window(w0, o, h, l, c, after_l, after_h, gaps)


@dataclass
class Zones:
    """The most recent supply/demand zones per row, (S, k) arrays, most recent first (NaN where none)."""

    low: np.ndarray
    high: np.ndarray
    impulse: np.ndarray  # departure body in ATRs
    fresh: np.ndarray  # bool: price has not come back into the zone
    cols: np.ndarray  # departure bar's column in the window (-1 where none)


def departures(o: np.ndarray, h: np.ndarray, l: np.ndarray, c: np.ndarray, atr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # noqa: E741
    """(up, down) (S, W) masks of departure bars: a decisive bar leaving a small base bar (the bar before)."""
    s, n = h.shape
    up = np.zeros((s, n), dtype=bool)
    dn = np.zeros((s, n), dtype=bool)
    if n < 3:
        return up, dn
    a = np.broadcast_to(atr, (s, n))[:, 1:]
    body = c[:, 1:] - o[:, 1:]
    ab = np.abs(body)
    with np.errstate(invalid="ignore"):
        decisive = (ab >= 1.2 * a) & (ab >= 0.6 * (h[:, 1:] - l[:, 1:])) & (h[:, :-1] - l[:, :-1] <= 0.8 * a)
        up[:, 1:] = decisive & (c[:, 1:] > h[:, :-1]) & (body > 0)
        dn[:, 1:] = decisive & (c[:, 1:] < l[:, :-1]) & (body < 0)
    return up, dn


def recent_zones(
    o: np.ndarray,
    h: np.ndarray,
    l: np.ndarray,  # noqa: E741 - open, high, low, close as o, h, l, c
    c: np.ndarray,
    atr: np.ndarray,
    k: int,
    demand: bool,
    after: tuple[np.ndarray, np.ndarray] | None = None,
    masks: tuple[np.ndarray, np.ndarray] | None = None,
) -> Zones:
    """The last `k` unbroken demand (or supply) zones of every row.

    A zone is the base bar's range; it is broken once a later close goes through it (below a demand
    zone, above a supply zone), fresh while no later bar has traded back into it. Only the last
    k + 2 departures are examined, so a run of broken zones can leave fewer than k.
    `after` = (suffix_min(l), suffix_max(h)) and `masks` = departures(...) when the caller has them.
    """
    s, n = h.shape
    up, dn = masks if masks is not None else departures(o, h, l, c, atr)
    cols, _ = last_true(up if demand else dn, k + 2)
    base = np.where(cols > 0, cols - 1, -1)
    lo, hi = take(l, base), take(h, base)
    a = np.broadcast_to(atr, (s, n))
    with np.errstate(invalid="ignore", divide="ignore"):
        imp = np.abs(take(c, cols) - take(o, cols)) / take(np.ascontiguousarray(a), cols)
    after_low, after_high = after if after is not None else (suffix_min(l), suffix_max(h))
    # the closes after each candidate: k + 2 masked reductions beat a full suffix scan of the window
    idx = np.arange(n)[None, :]
    closes_after = np.full(cols.shape, np.nan)
    for jc in range(cols.shape[1]):
        later = idx > cols[:, jc : jc + 1]
        if demand:
            closes_after[:, jc] = np.where(later, c, np.inf).min(axis=1)
        else:
            closes_after[:, jc] = np.where(later, c, -np.inf).max(axis=1)
    with np.errstate(invalid="ignore"):
        broken = closes_after < lo if demand else closes_after > hi
        fresh = take(after_low, cols) > hi if demand else take(after_high, cols) < lo
    ok = (cols >= 0) & ~broken
    # keep the first k surviving slots, in order
    rank = np.cumsum(ok, axis=1)
    keep = ok & (rank <= k)
    r, j = np.nonzero(keep)
    slot = rank[r, j] - 1
    out = [np.full((s, k), np.nan) for _ in range(3)]
    fr = np.zeros((s, k), dtype=bool)
    oc = np.full((s, k), -1, dtype=np.int64)
    for arr, src in zip(out, (lo, hi, imp)):
        arr[r, slot] = src[r, j]
    fr[r, slot] = fresh[r, j]
    oc[r, slot] = cols[r, j]
    return Zones(out[0], out[1], out[2], fr, oc)


def pools(
    prices: np.ndarray, cols: np.ndarray, after_extreme: np.ndarray, tol: np.ndarray, highs: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Liquidity pools among swing `prices` (S, K) at `cols`: (pool price, touches, untaken), one slot per pool.

    `after_extreme[s, j]` is the highest high (lowest low for `highs=False`) after column cols[s, j].
    A pool is reported in the slot of its most recent member; other slots are NaN.
    """
    s, k = prices.shape
    valid = np.isfinite(prices)
    with np.errstate(invalid="ignore"):
        near = (np.abs(prices[:, :, None] - prices[:, None, :]) <= tol[:, None, None]) & valid[:, :, None] & valid[:, None, :]
    touches = near.sum(axis=2)
    member_price = np.where(near, prices[:, None, :], -np.inf if highs else np.inf)
    pool_price = member_price.max(axis=2) if highs else member_price.min(axis=2)
    latest_col = np.where(near, cols[:, None, :], -1).max(axis=2)
    is_pool = valid & (touches >= 2) & (cols == latest_col)
    # the pool's slot is its latest member, so after_extreme there is what traded after the whole pool
    with np.errstate(invalid="ignore"):
        untaken = after_extreme <= pool_price if highs else after_extreme >= pool_price
    return np.where(is_pool, pool_price, np.nan), np.where(is_pool, touches, 0), is_pool & untaken


# ---------------------------------------------------------------------------- the book


@dataclass
class LevelBook:
    """Levels of every symbol in fixed columns: (S, M) arrays plus per-column kind/label/interval."""

    n: int
    kinds: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    intervals: list[str | None] = field(default_factory=list)
    htf_cols: list[bool] = field(default_factory=list)
    _cols: list[tuple[np.ndarray, ...]] = field(default_factory=list)
    price: np.ndarray = field(default_factory=lambda: np.empty((0, 0)))
    low: np.ndarray = field(default_factory=lambda: np.empty((0, 0)))
    high: np.ndarray = field(default_factory=lambda: np.empty((0, 0)))
    strength: np.ndarray = field(default_factory=lambda: np.empty((0, 0)))
    filled: np.ndarray = field(default_factory=lambda: np.empty((0, 0)))
    since: np.ndarray = field(default_factory=lambda: np.empty((0, 0), dtype=np.int64))
    usable: np.ndarray = field(default_factory=lambda: np.empty((0, 0), dtype=bool))

    def add(
        self,
        kind: str,
        label: str | list[str],
        interval: str | None,
        price: np.ndarray,
        strength: float | np.ndarray,
        *,
        low: np.ndarray | None = None,
        high: np.ndarray | None = None,
        filled: np.ndarray | None = None,
        since: np.ndarray | None = None,
        usable: np.ndarray | None = None,
        htf: bool = False,
    ) -> None:
        """Append a block of columns: arrays are (S,) for one column or (S, k) for k columns of one kind."""
        price = np.asarray(price, dtype=np.float64)
        if price.ndim == 1:
            price = price[:, None]
        k = price.shape[1]
        shape = (self.n, k)

        def fit(x: object, fill: float | int, dtype: type) -> np.ndarray:
            if x is None:
                return np.full(shape, fill, dtype=dtype)
            arr: np.ndarray = np.asarray(x, dtype=dtype)
            if arr.shape == shape:
                return arr
            if arr.ndim == 1 and arr.shape[0] == self.n:
                arr = arr[:, None]
            return np.broadcast_to(arr, shape)

        ok = np.isfinite(price) if usable is None else (fit(usable, False, bool) & np.isfinite(price))
        labels = [label] * k if isinstance(label, str) else list(label)
        self.kinds.extend([kind] * k)
        self.labels.extend(labels)
        self.intervals.extend([interval] * k)
        self.htf_cols.extend([htf] * k)
        self._cols.append(
            (
                price,
                fit(low, np.nan, np.float64),
                fit(high, np.nan, np.float64),
                fit(strength, 0.0, np.float64),
                fit(filled, np.nan, np.float64),
                fit(since, -1, np.int64),
                ok,
            )
        )

    def finish(self) -> LevelBook:
        """Join the blocks into (S, M) arrays."""
        if self._cols:
            parts = list(zip(*self._cols))
            self.price, self.low, self.high, self.strength, self.filled, self.since, self.usable = (
                np.concatenate(p, axis=1) for p in parts
            )
            self.strength = np.clip(np.where(np.isnan(self.strength), 0.0, self.strength), 0.0, 1.0)
        else:
            z = np.empty((self.n, 0))
            self.price = self.low = self.high = self.strength = self.filled = z
            self.since, self.usable = z.astype(np.int64), z.astype(bool)
        self._cols = []
        return self

    @property
    def htf(self) -> np.ndarray:
        return np.asarray(self.htf_cols, dtype=bool)

    def edge(self, direction: np.ndarray) -> np.ndarray:
        """Where price meets each level coming from below (direction +1) or above (-1): bands' near edge."""
        d = np.asarray(direction)[:, None] if np.ndim(direction) else direction
        band = np.isfinite(self.low) & np.isfinite(self.high)
        near = np.where(d > 0, self.low, self.high)
        return np.where(band, near, self.price)

    def levels(self, row: int) -> list[Level]:
        """The row's levels as models, strongest first among duplicates, sorted by price."""
        out: dict[tuple[str, float, str | None], Level] = {}
        for j, kind in enumerate(self.kinds):
            p = self.price[row, j]
            if not np.isfinite(p):
                continue
            lo, hi, f, t = self.low[row, j], self.high[row, j], self.filled[row, j], self.since[row, j]
            lvl = Level(
                kind=kind,
                price=float(round(p, 4)),
                low=float(round(lo, 4)) if np.isfinite(lo) else None,
                high=float(round(hi, 4)) if np.isfinite(hi) else None,
                strength=float(round(self.strength[row, j], 3)),
                label=self.labels[j],
                interval=self.intervals[j],
                filled=bool(f) if np.isfinite(f) else None,
                since=_stamp(t),
            )
            key = (kind, lvl.price, lvl.interval)
            if key not in out or out[key].strength < lvl.strength:
                out[key] = lvl
        return sorted(out.values(), key=lambda lv: (lv.price, lv.kind))


#: Strength a level gains for each level of another kind within the confluence tolerance.
CONFLUENCE_BONUS = 0.1
#: Levels closer than this many ATRs are at the same price (the planner snaps within 0.3 ATR).
CONFLUENCE_ATR = 0.25


def with_confluence(levels: list[Level], tolerance: float) -> list[Level]:
    """The levels with strength raised by CONFLUENCE_BONUS per level of another kind within `tolerance` (at most 1).

    A zone meets another level that lies inside its band widened by the tolerance.
    """
    lo = np.array([lv.low if lv.low is not None else lv.price for lv in levels], dtype=np.float64) - tolerance
    hi = np.array([lv.high if lv.high is not None else lv.price for lv in levels], dtype=np.float64) + tolerance
    kinds = np.array([lv.kind for lv in levels], dtype=object)
    # band overlap, pairwise: [lo_i, hi_i] meets [lo_j + tol, hi_j - tol] (the other's own extent)
    own_lo, own_hi = lo + tolerance, hi - tolerance
    meets = (lo[:, None] <= own_hi[None, :]) & (own_lo[None, :] <= hi[:, None]) & (kinds[:, None] != kinds[None, :])
    # one bonus per other kind, however many of that kind sit there
    out = []
    for i, lv in enumerate(levels):
        others = {str(k) for k in kinds[meets[i]]}
        bonus = CONFLUENCE_BONUS * len(others)
        out.append(lv.model_copy(update={"strength": round(min(1.0, lv.strength + bonus), 3)}) if bonus else lv)
    return out


def _stamp(ns: int) -> datetime | None:
    return utc_from_ns(ns) if ns >= 0 else None


def _stamps(panel: Panel, offset: int, cols: np.ndarray) -> np.ndarray:
    """UTC ns of the panel's stamps at window columns `cols` (-1 stays -1)."""
    ns = panel.stamps_ns
    if not len(ns):
        return np.full(cols.shape, -1, dtype=np.int64)
    return np.where(cols >= 0, ns[np.clip(cols + offset, 0, len(ns) - 1)], -1)


def build_levels_for_rows(
    panel: Panel,
    atr: np.ndarray,
    atr_now: np.ndarray,
    sess: SessionLevels,
    vwap_now: np.ndarray,
    htf: dict[str, Panel] | None,
    pv: PriceVolume,
    rows: np.ndarray,
) -> LevelBook:
    """build_levels for the selected `rows` only; the other rows of the book are empty (NaN).

    The scanner only needs levels where a setup is live (they become its targets), so it skips
    the rest. The work runs on a copy of just the columns the levels read.
    """
    s = panel.n_symbols
    rows = np.asarray(rows, dtype=np.int64)
    start = min(pv.start, max(0, panel.n_bars - LEVEL_WINDOW))
    sub = panel.tail(panel.n_bars - start).rows(rows)
    sub_pv = PriceVolume(pv.start - start, pv.pv[rows], pv.v[rows])
    sub_htf = {iv: hp.rows(rows) for iv, hp in (htf or {}).items()}
    part = build_levels(sub, atr[rows], atr_now[rows], sess.subset(rows, start), vwap_now[rows], sub_htf, pv=sub_pv)
    book = LevelBook(n=s, kinds=part.kinds, labels=part.labels, intervals=part.intervals, htf_cols=part.htf_cols)
    m = len(part.kinds)
    for name, fill, dtype in (
        ("price", np.nan, np.float64),
        ("low", np.nan, np.float64),
        ("high", np.nan, np.float64),
        ("strength", 0.0, np.float64),
        ("filled", np.nan, np.float64),
        ("since", -1, np.int64),
        ("usable", False, bool),
    ):
        full = np.full((s, m), fill, dtype=dtype)
        full[rows] = getattr(part, name)
        setattr(book, name, full)
    return book


def build_levels(
    panel: Panel,
    atr: np.ndarray,
    atr_now: np.ndarray,
    sess: SessionLevels,
    vwap_now: np.ndarray,
    htf: dict[str, Panel] | None = None,
    pv: PriceVolume | None = None,
    window: Window | None = None,
) -> LevelBook:
    """Every level of every row of `panel` (the execution interval) plus `htf` higher-interval panels.

    `atr` is the per-bar ATR(14) of `panel`'s last columns (any tail length), `atr_now` its last value (S,),
    `vwap_now` the session VWAP; `pv` (price-volume sums) and `window` (the level window) are built
    here when not given.
    """
    s, n = panel.n_symbols, panel.n_bars
    book = LevelBook(n=s)
    iv = panel.interval

    # session levels
    book.add("pdh", "prior-day high", "1D", sess.pdh, 0.8, htf=True)
    book.add("pdl", "prior-day low", "1D", sess.pdl, 0.8, htf=True)
    book.add("pdc", "prior-day close", "1D", sess.pdc, 0.6, htf=True)
    if panel.intraday:
        book.add("orh", "opening-range high", iv, sess.orh, 0.7)
        book.add("orl", "opening-range low", iv, sess.orl, 0.7)
        book.add("hod", "session high", iv, sess.hod, 0.6)
        book.add("lod", "session low", iv, sess.lod, 0.6)
        book.add("vwap", "session VWAP", iv, vwap_now, 0.7, usable=np.zeros(s, bool))

    win = window if window is not None else window_of(panel, atr_now)
    w0 = win.w0
    o, h, l, c = win.o, win.h, win.l, win.c  # noqa: E741
    w = n - w0
    a_w = np.full((s, w), np.nan)
    have = min(w, atr.shape[1])
    if have:
        a_w[:, w - have :] = atr[:, atr.shape[1] - have :]
    a_w = np.where(np.isfinite(a_w), a_w, atr_now[:, None])

    # swings
    k = 3 if panel.intraday else 2
    is_hi, is_lo = swing_masks(h, l, k)
    hcols, _ = last_true(is_hi, 8)
    lcols, _ = last_true(is_lo, 8)
    sh, sl = take(h, hcols), take(l, lcols)
    # (1, k): one strength per column for every row; a flat (k,) would read as one per symbol when S == k
    fade = (0.5 - 0.05 * np.arange(4))[None, :]
    book.add("swing_high", f"{iv} swing high", iv, sh[:, :4], fade, since=_stamps(panel, w0, hcols[:, :4]))
    book.add("swing_low", f"{iv} swing low", iv, sl[:, :4], fade, since=_stamps(panel, w0, lcols[:, :4]))

    # liquidity pools: equal highs / lows among the last 8 swings
    tol = 0.15 * atr_now
    after_h, after_l = win.after_high, win.after_low
    for prices, cols, after, highs, kind, label in (
        (sh, hcols, after_h, True, "liquidity_high", "equal highs (liquidity)"),
        (sl, lcols, after_l, False, "liquidity_low", "equal lows (liquidity)"),
    ):
        pp, touches, untaken = pools(prices, cols, take(after, cols), tol, highs=highs)
        pp = np.where(untaken, pp, np.nan)
        order = np.argsort(np.isnan(pp), axis=1, kind="stable")[:, :3]  # the pools first, most recent first
        top_pp, top_touches, top_cols = (np.take_along_axis(x, order, axis=1) for x in (pp, touches, cols))
        book.add(kind, label, iv, top_pp, np.minimum(1.0, 0.4 + 0.15 * top_touches), since=_stamps(panel, w0, top_cols))

    # supply / demand zones
    masks = departures(o, h, l, c, a_w)
    for demand, kind in ((True, "demand"), (False, "supply")):
        zn = recent_zones(o, h, l, c, a_w, 2, demand, after=(after_l, after_h), masks=masks)
        strength = np.minimum(1.0, 0.35 + 0.15 * np.nan_to_num(zn.impulse)) * np.where(zn.fresh, 1.0, 0.75)
        book.add(
            kind,
            f"{iv} {kind} zone",
            iv,
            (zn.low + zn.high) / 2,
            strength,
            low=zn.low,
            high=zn.high,
            since=_stamps(panel, w0, zn.cols),
        )

    # fair value gaps (filled ones are shown but never targeted)
    gaps = win.gaps
    for mask, kind, name in ((gaps.bull, "fvg_bull", "bullish FVG"), (gaps.bear, "fvg_bear", "bearish FVG")):
        cols, _ = last_true(mask, 3)
        lo, hi, fl = take(gaps.bottom, cols), take(gaps.top, cols), take(gaps.filled.astype(float), cols)
        book.add(
            kind,
            f"{iv} {name}",
            iv,
            (lo + hi) / 2,
            np.where(fl > 0, 0.2, 0.55),
            low=lo,
            high=hi,
            filled=fl,
            since=_stamps(panel, w0, cols),
            usable=~(fl > 0),
        )

    # anchored VWAPs: prior session open, last swing high / low, last gap day
    if pv is None:
        pv = PriceVolume.of(panel, pv_start(panel, sess, LEVEL_WINDOW))
    anchors = np.full((s, 4), -1, np.int64)
    if panel.intraday and sess.p0 is not None:
        anchors[:, 0] = sess.p0
    anchors[:, 1] = np.where(hcols[:, 0] >= 0, hcols[:, 0] + w0, -1)
    anchors[:, 2] = np.where(lcols[:, 0] >= 0, lcols[:, 0] + w0, -1)
    anchors[:, 3] = _gap_day_anchor(panel, pv.start)
    av = np.column_stack([pv.vwap_from(anchors[:, j], window=n - w0) for j in range(4)])
    book.add(
        "avwap",
        ["AVWAP from prior day", "AVWAP from swing high", "AVWAP from swing low", "AVWAP from gap day"],
        iv,
        av,
        0.6,
        since=_stamps(panel, 0, anchors),
    )

    # higher timeframes
    for hiv, hp in (htf or {}).items():
        _add_htf(book, hp, hiv)
    return book.finish()


def _gap_day_anchor(panel: Panel, start: int) -> np.ndarray:
    """Per row, the first column of the most recent session (after `start`) that opened with a gap."""
    s = panel.n_symbols
    out = np.full(s, -1, np.int64)
    if not panel.intraday:
        if panel.n_bars < 2:
            return out
        lo = max(1, start)
        with np.errstate(invalid="ignore", divide="ignore"):
            gap = np.abs(panel.open[:, lo:] / panel.close[:, lo - 1 : -1] - 1.0) >= GAP_FRACTION * 4
        cols, ok = last_true(gap, 1)
        return np.where(ok[:, 0], cols[:, 0] + lo, -1)
    for st in panel.session_starts:
        if st <= start or st == 0:
            continue
        with np.errstate(invalid="ignore", divide="ignore"):
            gapped = np.abs(panel.open[:, st] / panel.close[:, st - 1] - 1.0) >= GAP_FRACTION
        out = np.where(gapped, st, out)
    return out


def _add_htf(book: LevelBook, hp: Panel, iv: str) -> None:
    """Swings (k = 2) and the previous completed bar's high/low of one higher interval."""
    s = book.n
    strength = HTF_STRENGTH.get(iv, 0.7)
    n = hp.n_bars
    w0 = max(0, n - HTF_WINDOW)
    h, l = hp.high[:, w0:], hp.low[:, w0:]  # noqa: E741
    is_hi, is_lo = swing_masks(h, l, 2)
    hcols, _ = last_true(is_hi, 3)
    lcols, _ = last_true(is_lo, 3)
    # (1, k): one strength per column for every row; a flat (k,) would read as one per symbol when S == k
    fade = (strength - 0.05 * np.arange(3))[None, :]
    book.add("htf", f"{iv} swing high", iv, take(h, hcols), fade, since=_stamps(hp, w0, hcols), htf=True)
    book.add("htf", f"{iv} swing low", iv, take(l, lcols), fade, since=_stamps(hp, w0, lcols), htf=True)
    if iv != "1D":
        prior = np.column_stack((hp.high[:, -2], hp.low[:, -2])) if n >= 2 else np.full((s, 2), np.nan)
        book.add("htf", [f"prior {iv} high", f"prior {iv} low"], iv, prior, strength - 0.1, htf=True)


def htf_intervals(exec_interval: str, available: list[str] | None = None) -> list[str]:
    """Up to three higher intervals among 1h/4h/1D/1W above `exec_interval` for HTF levels, nearest first.

    `available` is accepted for callers that pass what they have; missing intervals are resampled.
    """
    m = interval_minutes(exec_interval)
    return [iv for iv in ("1h", "4h", "1D", "1W") if interval_minutes(iv) > m][:3]


# ---------------------------------------------------------------------------- one-frame helpers


def _frame_panel(df: pd.DataFrame, interval: str) -> Panel:
    return Panel.from_frame("X", df, interval)


def _atr_of(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    from analytics.indicators import atr

    a = atr(df["high"], df["low"], df["close"], 14) if len(df) else np.empty(0)
    fallback = float(np.nanmean((df["high"] - df["low"]).to_numpy())) if len(df) else np.nan
    now = a[-1] if len(a) and np.isfinite(a[-1]) else fallback
    return a[None, :], np.array([now])


def fair_value_gaps(df: pd.DataFrame, interval: str = "5m", min_gap: float = 0.0) -> list[Level]:
    """Every fair value gap in `df` with its filled state, oldest first."""
    p = _frame_panel(df, interval)
    g = fair_value_gap_arrays(p.high, p.low, np.array([min_gap]))
    out = []
    for col in np.flatnonzero(g.bull[0] | g.bear[0]):
        bull = bool(g.bull[0, col])
        lo, hi = float(g.bottom[0, col]), float(g.top[0, col])
        out.append(
            Level(
                kind="fvg_bull" if bull else "fvg_bear",
                price=(lo + hi) / 2,
                low=lo,
                high=hi,
                strength=0.55,
                label=f"{interval} {'bullish' if bull else 'bearish'} FVG",
                interval=interval,
                filled=bool(g.filled[0, col]),
                since=p.index[col].to_pydatetime(),
            )
        )
    return out


def swing_levels(df: pd.DataFrame, interval: str = "5m", k: int = 3) -> list[Level]:
    """Every confirmed swing high and low in `df`, oldest first."""
    p = _frame_panel(df, interval)
    hi, lo = swing_masks(p.high, p.low, k)
    out = []
    for col in np.flatnonzero(hi[0] | lo[0]):
        for flag, kind, arr in ((hi, "swing_high", p.high), (lo, "swing_low", p.low)):
            if flag[0, col]:
                out.append(
                    Level(
                        kind=kind,
                        price=float(arr[0, col]),
                        strength=0.5,
                        label=f"{interval} {kind.replace('_', ' ')}",
                        interval=interval,
                        since=p.index[col].to_pydatetime(),
                    )
                )
    return out


def liquidity_pools(df: pd.DataFrame, interval: str = "5m", tolerance: float | None = None, k: int = 2) -> list[Level]:
    """Clusters of equal swing highs / lows (within `tolerance`, default 0.15 ATR) that price has not taken yet."""
    p = _frame_panel(df, interval)
    a, a_now = _atr_of(df)
    tol = np.array([0.15 * a_now[0] if tolerance is None else tolerance])
    is_hi, is_lo = swing_masks(p.high, p.low, k)
    out = []
    for mask, arr, after, highs, kind in (
        (is_hi, p.high, suffix_max(p.high), True, "liquidity_high"),
        (is_lo, p.low, suffix_min(p.low), False, "liquidity_low"),
    ):
        cols, _ = last_true(mask, 8)
        prices = take(arr, cols)
        price, touches, untaken = pools(prices, cols, take(after, cols), tol, highs=highs)
        for j in np.flatnonzero(untaken[0]):
            out.append(
                Level(
                    kind=kind,
                    price=float(price[0, j]),
                    strength=float(min(1.0, 0.4 + 0.15 * touches[0, j])),
                    label=f"equal {'highs' if highs else 'lows'} x{int(touches[0, j])}",
                    interval=interval,
                    since=p.index[cols[0, j]].to_pydatetime(),
                )
            )
    return sorted(out, key=lambda lv: lv.price)


def supply_demand_zones(df: pd.DataFrame, interval: str = "5m", atr_value: float | None = None, k: int = 3) -> list[Level]:
    """The last `k` unbroken supply and demand zones (base, then impulsive departure), oldest first."""
    p = _frame_panel(df, interval)
    a, a_now = _atr_of(df)
    aw = np.full((1, p.n_bars), atr_value) if atr_value is not None else np.where(np.isfinite(a), a, a_now[0])
    out = []
    for demand, kind in ((True, "demand"), (False, "supply")):
        zn = recent_zones(p.open, p.high, p.low, p.close, aw, k, demand)
        for j in range(k):
            col = int(zn.cols[0, j])
            if col < 0:
                continue
            lo, hi = float(zn.low[0, j]), float(zn.high[0, j])
            out.append(
                Level(
                    kind=kind,
                    price=(lo + hi) / 2,
                    low=lo,
                    high=hi,
                    strength=float(min(1.0, 0.35 + 0.15 * zn.impulse[0, j])),
                    label=f"{interval} {kind} zone{' (fresh)' if zn.fresh[0, j] else ''}",
                    interval=interval,
                    since=p.index[col].to_pydatetime(),
                )
            )
    return sorted(out, key=lambda lv: lv.since or datetime.min)
