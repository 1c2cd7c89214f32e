"""Session levels and VWAPs of a `Panel` (symbols x bars), whole-array NumPy like the rest of the level engine.

- Opening range: high/low of the regular-session bars stamped in [09:30, 09:30 + OR minutes).
- Prior day: high, low and close of the previous session in the data; session high/low: today so far.
- VWAPs: the session VWAP and VWAPs anchored at chosen columns (`vwap_recent`), from one cumulative
  price x volume pass over the bars every VWAP needs (`PriceVolume`, from `pv_start` on).

`analytics.levels` turns them into the level book's columns; the strategies' features read them too.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from analytics.panel import RTH_OPEN, Panel, rth_mask

#: Opening-range length by execution interval (minutes); none for hourly and above.
OR_MINUTES = {"1m": 15, "5m": 30, "15m": 30, "30m": 30}


@dataclass
class SessionLevels:
    """Where today's session starts in the panel and its levels, per symbol (S,) arrays."""

    s0: int  # first column of the last session
    p0: int | None  # first column of the session before it
    minute_now: int  # exchange minute of the last bar (for daily bars: 0)
    or_minutes: int | None
    or_done: bool
    orh: np.ndarray
    orl: np.ndarray
    pdh: np.ndarray
    pdl: np.ndarray
    pdc: np.ndarray
    hod: np.ndarray
    lod: np.ndarray
    sopen: np.ndarray  # the session's first regular-hours open

    @property
    def gap(self) -> np.ndarray:
        """Today's open minus the prior close."""
        gap: np.ndarray = self.sopen - self.pdc
        return gap

    def subset(self, rows: np.ndarray, shift: int = 0) -> SessionLevels:
        """These levels for `rows` only, with column positions moved `shift` columns left."""

        def pick(a: np.ndarray) -> np.ndarray:
            picked: np.ndarray = a[rows]
            return picked

        return SessionLevels(
            self.s0 - shift,
            None if self.p0 is None else self.p0 - shift,
            self.minute_now,
            self.or_minutes,
            self.or_done,
            pick(self.orh),
            pick(self.orl),
            pick(self.pdh),
            pick(self.pdl),
            pick(self.pdc),
            pick(self.hod),
            pick(self.lod),
            pick(self.sopen),
        )


def _nan(s: int) -> np.ndarray:
    return np.full(s, np.nan)


def session_levels(panel: Panel) -> SessionLevels:
    """Opening range, prior-day high/low/close and the session's high/low/open at the last bar."""
    s, n = panel.n_symbols, panel.n_bars
    if n == 0:
        return SessionLevels(0, None, 0, None, False, *[_nan(s) for _ in range(8)])
    with np.errstate(invalid="ignore"), _quiet():
        if not panel.intraday:
            # daily/weekly bars: "today" is the last bar, the prior day the bar before
            p = n - 2

            def pick(a: np.ndarray, j: int) -> np.ndarray:
                return a[:, j].copy() if j >= 0 else _nan(s)

            return SessionLevels(
                n - 1,
                p if p >= 0 else None,
                0,
                None,
                False,
                _nan(s),
                _nan(s),
                pick(panel.high, p),
                pick(panel.low, p),
                pick(panel.close, p),
                panel.high[:, -1].copy(),
                panel.low[:, -1].copy(),
                panel.open[:, -1].copy(),
            )
        starts = panel.session_starts
        s0 = int(starts[-1])
        p0 = int(starts[-2]) if len(starts) > 1 else None
        rth = rth_mask(panel)
        minute = panel.minute
        minute_now = int(minute[-1])
        cur = _span(rth, s0, n)
        hod, lod = _colmax(panel.high, cur), _colmin(panel.low, cur)
        sopen = panel.open[:, cur[0]].copy() if cur is not None else _nan(s)
        orm = OR_MINUTES.get(panel.interval)
        orh, orl, or_done = _nan(s), _nan(s), False
        if orm is not None:
            in_or = (minute >= RTH_OPEN) & (minute < RTH_OPEN + orm)
            window = _span(in_or, s0, n)
            if window is not None:
                orh, orl = _colmax(panel.high, window), _colmin(panel.low, window)
                or_done = minute_now >= RTH_OPEN + orm
        pdh, pdl, pdc = _nan(s), _nan(s), _nan(s)
        prev = _span(rth, p0, s0) if p0 is not None else None
        if prev is not None:
            pdh, pdl = _colmax(panel.high, prev), _colmin(panel.low, prev)
            pdc = panel.close[:, prev[1] - 1].copy()
    return SessionLevels(s0, p0, minute_now, orm, or_done, orh, orl, pdh, pdl, pdc, hod, lod, sopen)


def _span(mask: np.ndarray, a: int, b: int) -> tuple[int, int] | None:
    """[first, last + 1) of the True columns of mask[a:b] (regular hours are one contiguous run)."""
    idx = np.flatnonzero(mask[a:b])
    return (a + int(idx[0]), a + int(idx[-1]) + 1) if len(idx) else None


def _colmax(a: np.ndarray, span: tuple[int, int] | None) -> np.ndarray:
    """Per row, the max over columns `span`, ignoring NaN (NaN when the span is empty)."""
    if span is None:
        return _nan(a.shape[0])
    with np.errstate(invalid="ignore"):
        out: np.ndarray = np.fmax.reduce(a[:, span[0] : span[1]], axis=1)
        return out


def _colmin(a: np.ndarray, span: tuple[int, int] | None) -> np.ndarray:
    if span is None:
        return _nan(a.shape[0])
    with np.errstate(invalid="ignore"):
        out: np.ndarray = np.fmin.reduce(a[:, span[0] : span[1]], axis=1)
        return out


@contextmanager
def _quiet() -> Iterator[None]:
    """Silence 'All-NaN slice' warnings: an empty slice legitimately gives NaN here."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


# ---------------------------------------------------------------------------- VWAPs


@dataclass
class PriceVolume:
    """Typical price x volume and volume of every row from column `start` on (regular hours only for
    intraday bars; unusable bars count zero), computed once and shared by every VWAP."""

    start: int
    pv: np.ndarray  # (S, N - start)
    v: np.ndarray

    @classmethod
    def of(cls, panel: Panel, start: int) -> PriceVolume:
        start = max(0, min(start, panel.n_bars))
        h, l, c, v = (a[:, start:] for a in (panel.high, panel.low, panel.close, panel.volume))  # noqa: E741
        pv = (h + l + c) * v / 3.0
        bad = np.isnan(pv)
        if panel.intraday:
            bad |= ~rth_mask(panel)[start:][None, :]
        if bad.any():
            return cls(start, np.where(bad, 0.0, pv), np.where(bad, 0.0, v))
        return cls(start, pv, v)

    def sums_from(self, col: int) -> tuple[np.ndarray, np.ndarray]:
        """Per row, the sums over columns [col, N)."""
        i = max(0, col - self.start)
        return self.pv[:, i:].sum(axis=1), self.v[:, i:].sum(axis=1)

    def vwap_from(self, anchors: np.ndarray, window: int | None = None) -> np.ndarray:
        """VWAP at the last bar from per-row anchor columns (S,) (-1 = none).

        Anchors shared by many rows (session opens) cost one slice sum per distinct value; per-row
        anchors (swings) must lie in the last `window` columns and cost a masked sum over those.
        """
        s, w = self.pv.shape
        n = self.start + w
        ok = (anchors >= self.start) & (anchors < n)
        uniq = np.unique(anchors[ok])
        num, den = np.zeros(s), np.zeros(s)
        if len(uniq) <= 8 or window is None:
            for u in uniq:
                rows = anchors == u
                pn, pd_ = self.sums_from(int(u))
                num[rows], den[rows] = pn[rows], pd_[rows]
        else:
            w0 = max(self.start, n - window)
            ok &= anchors >= w0
            mask = np.arange(w0, n)[None, :] >= anchors[:, None]
            num = np.where(mask, self.pv[:, w0 - self.start :], 0.0).sum(axis=1)
            den = np.where(mask, self.v[:, w0 - self.start :], 0.0).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(ok & (den > 0), num / np.where(den > 0, den, 1.0), np.nan)


def vwap_recent(panel: Panel, sess: SessionLevels, k: int, pv: PriceVolume | None = None, rolling: int = 20) -> np.ndarray:
    """VWAP at each of the last `k` bars: session VWAP (regular hours) for intraday bars, a rolling
    `rolling`-bar VWAP for daily and weekly bars. NaN where not defined (before today's session)."""
    s, n = panel.n_symbols, panel.n_bars
    out = np.full((s, k), np.nan)
    if n == 0:
        return out
    if panel.intraday:
        start = sess.s0
        if pv is None or pv.start > start:
            pv = PriceVolume.of(panel, start)
        spv, sv = pv.pv[:, start - pv.start :], pv.v[:, start - pv.start :]
        m = min(k, n - start)
        # VWAP at bar t = (session sums) - (sums of the bars after t): plain sums, no wide cumulative scan
        after_pv = np.zeros((s, m))
        after_v = np.zeros((s, m))
        if m > 1:
            after_pv[:, :-1] = np.cumsum(spv[:, :-m:-1], axis=1)[:, ::-1]
            after_v[:, :-1] = np.cumsum(sv[:, :-m:-1], axis=1)[:, ::-1]
        num = spv.sum(axis=1)[:, None] - after_pv
        den = sv.sum(axis=1)[:, None] - after_v
        with np.errstate(invalid="ignore", divide="ignore"):
            out[:, k - m :] = np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)
        return out
    start = max(0, n - rolling - k + 1)
    if pv is None or pv.start > start:
        pv = PriceVolume.of(panel, start)
    spv, sv = pv.pv[:, start - pv.start :], pv.v[:, start - pv.start :]
    cpv = np.concatenate((np.zeros((s, 1)), np.cumsum(spv, axis=1)), axis=1)
    cv = np.concatenate((np.zeros((s, 1)), np.cumsum(sv, axis=1)), axis=1)
    w = n - start
    for j in range(k):
        end = w - (k - 1 - j)
        if end <= 0:
            continue
        a = max(0, end - rolling)
        num, den = cpv[:, end] - cpv[:, a], cv[:, end] - cv[:, a]
        with np.errstate(invalid="ignore", divide="ignore"):
            out[:, j] = np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)
    return out


def pv_start(panel: Panel, sess: SessionLevels, window: int) -> int:
    """First column any VWAP needs: the prior session's open (intraday) and the last `window` bars the levels search."""
    n = panel.n_bars
    start = n - window - 24
    if panel.intraday:
        start = min(start, sess.p0 if sess.p0 is not None else sess.s0)
    return max(0, start)
