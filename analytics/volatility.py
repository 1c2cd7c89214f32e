"""The volatility regime of a symbol: ATM IV at 30 days, HV20/60/120, IV/HV, 25-delta skew, term slope, IV rank.

Definitions (all volatilities are decimals, 0.35 = 35 %):

* ATM IV of an expiration: the out-of-the-money smile (puts below the forward, calls
  above) interpolated linearly in log-moneyness at K = F.
* `atm_iv_30d`: ATM IVs interpolated to a constant 30-calendar-day maturity linearly in
  total variance (sigma^2 t) between the expirations that bracket 30 days; flat beyond
  the listed range. Expirations closer than one day are left out (their IV is noise).
* `skew_25d`: IV of the 25-delta put minus IV of the 25-delta call (positive when puts are
  richer), per expiration, interpolated linearly in time to 30 days.
* `term_slope`: ATM IV at 90 days minus ATM IV at 30 days; positive is contango (the usual
  shape), negative is backwardation (stress now). None when nothing is listed past 60 days.
* HV20/60/120 from `analytics.indicators.hv_set` (close-to-close, annualised).
* `iv_hv_ratio`: atm_iv_30d / hv20.
* IV rank = (today - min) / (max - min) and IV percentile = share of days below today,
  both 0-100, over the stored daily ATM IV history of the last 365 days, today included.
  With fewer than MIN_HISTORY stored days the true rank is not given; instead the rank
  and percentile of today's HV20 within its own last year are shown, labelled as a proxy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Literal

import numpy as np
from pydantic import Field

from analytics.chains import ChainView
from analytics.indicators import hv, hv_set
from analytics.models import Model
from analytics.vol_surface import VolSurface, atm_iv, build_surface, delta_iv, skew_25d

#: Stored days of ATM IV needed before IV rank and percentile are reported.
MIN_HISTORY = 60
#: Look-back of IV rank and of the HV proxy, in calendar days / trading days.
RANK_DAYS = 365
PROXY_SESSIONS = 252
CM_DAYS = 30.0
SLOPE_DAYS = 90.0

Regime = Literal["low", "normal", "elevated", "high", "unknown"]
TermShape = Literal["contango", "backwardation", "flat"]
RankBasis = Literal["iv_history", "hv_proxy", "none"]


class TermPoint(Model):
    """One expiration's ATM IV and skew."""

    expiration: date
    dte: float
    atm_iv: float | None
    skew_25d: float | None
    forward: float


class VolRegime(Model):
    """The volatility picture of one symbol; `rank_basis` says whether ranks come from stored IV or the HV proxy."""

    symbol: str
    as_of: datetime
    sources: list[str]
    spot: float
    atm_iv_30d: float | None
    hv20: float | None
    hv60: float | None
    hv120: float | None
    iv_hv_ratio: float | None
    skew_25d: float | None
    term_slope: float | None
    term_structure: TermShape | None
    term: list[TermPoint]
    iv_rank: float | None
    iv_percentile: float | None
    hv_rank_proxy: float | None = None
    hv_percentile_proxy: float | None = None
    rank_basis: RankBasis
    history_days: int
    regime: Regime
    note: str | None = None
    #: The IV surface the term structure and skew were read from; kept out of the regime's JSON (large):
    #: `/vol SYMBOL surface` answers with it (VolSurfaceAnswer).
    surface: VolSurface | None = Field(None, exclude=True)


class VolSurfaceAnswer(Model):
    """What `/vol SYMBOL surface` answers: the regime and the surface it was read from."""

    symbol: str
    as_of: datetime
    sources: list[str]
    regime: VolRegime
    surface: VolSurface | None


def term_points(views: Sequence[ChainView]) -> list[TermPoint]:
    """ATM IV and skew of each expiration, nearest first (read from the surface's slices)."""
    return _term(build_surface("", views, as_of=datetime.min, spot=0.0, sources=[]))


def _term(surface: VolSurface) -> list[TermPoint]:
    return [
        TermPoint(expiration=s.expiration, dte=s.dte, atm_iv=s.atm_iv, skew_25d=s.skew_25d, forward=s.forward)
        for s in surface.slices
    ]


def constant_maturity(points: Sequence[tuple[float, float | None]], days: float, *, variance: bool) -> float | None:
    """Value at `days` from (dte, value) points: linear in total variance (`variance=True`) or in time; flat outside."""
    pts = sorted((t, v) for t, v in points if v is not None and math.isfinite(v) and t > 0)
    if not pts:
        return None
    if days <= pts[0][0]:
        return pts[0][1]
    if days >= pts[-1][0]:
        return pts[-1][1]
    for (t1, v1), (t2, v2) in zip(pts, pts[1:]):
        if t1 <= days <= t2:
            w = (days - t1) / (t2 - t1)
            if variance:
                var = v1 * v1 * t1 + w * (v2 * v2 * t2 - v1 * v1 * t1)
                return math.sqrt(max(var, 0.0) / days)
            return v1 + w * (v2 - v1)
    return None


def rank_and_percentile(values: Sequence[float] | np.ndarray, current: float) -> tuple[float, float]:
    """(rank, percentile), 0-100: where `current` sits in the range of `values`, and the share of values below it."""
    arr = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    arr = np.append(arr, current)
    lo, hi = float(arr.min()), float(arr.max())
    rank = 50.0 if hi - lo < 1e-12 else (current - lo) / (hi - lo) * 100.0
    pct = float(np.mean(arr[:-1] < current)) * 100.0 if len(arr) > 1 else 50.0
    return round(rank, 2), round(pct, 2)


def _regime(rank: float | None) -> Regime:
    if rank is None:
        return "unknown"
    return "low" if rank < 20 else "normal" if rank < 50 else "elevated" if rank < 80 else "high"


def vol_regime(
    symbol: str,
    views: Sequence[ChainView],
    daily_close: Sequence[float] | np.ndarray,
    iv_history: Sequence[tuple[date, float]],
    *,
    as_of: datetime,
    today: date,
    sources: list[str],
    spot: float,
) -> VolRegime:
    """Compute the regime from analysed chains, daily closes (oldest first) and stored (date, atm_iv_30d) history."""
    surface = build_surface(symbol, views, as_of=as_of, spot=spot, sources=sources)
    term = _term(surface)
    usable = [p for p in term if p.dte >= 1.0]
    atm30 = constant_maturity([(p.dte, p.atm_iv) for p in usable], CM_DAYS, variance=True)
    skew30 = constant_maturity([(p.dte, p.skew_25d) for p in usable], CM_DAYS, variance=False)
    slope = None
    longest = max((p.dte for p in usable if p.atm_iv is not None), default=0.0)
    if atm30 is not None and longest >= 60.0:
        atm90 = constant_maturity([(p.dte, p.atm_iv) for p in usable], SLOPE_DAYS, variance=True)
        slope = None if atm90 is None else atm90 - atm30
    shape: TermShape | None = (
        None if slope is None else "contango" if slope > 0.005 else "backwardation" if slope < -0.005 else "flat"
    )

    closes = np.asarray(daily_close, dtype=float)
    closes = closes[np.isfinite(closes)]
    hvs = hv_set(closes)
    hv20 = hvs["hv20"]
    ratio = atm30 / hv20 if atm30 is not None and hv20 else None

    since = today - timedelta(days=RANK_DAYS)
    hist = [v for d, v in iv_history if since <= d < today and v is not None and math.isfinite(v) and v > 0]
    iv_rank = iv_pct = proxy_rank = proxy_pct = None
    notes: list[str] = []
    basis: RankBasis
    if atm30 is not None and len(hist) + 1 >= MIN_HISTORY:
        iv_rank, iv_pct = rank_and_percentile(hist, atm30)
        basis = "iv_history"
        regime = _regime(iv_rank)
    else:
        series = hv(closes, 20)[-PROXY_SESSIONS:]
        series = series[np.isfinite(series)]
        if atm30 is None:
            notes.append("no ATM IV: the chains had no usable quotes around the money")
        if len(series) >= 20 and hv20 is not None:
            proxy_rank, proxy_pct = rank_and_percentile(series[:-1], hv20)
            basis = "hv_proxy"
            regime = _regime(proxy_rank)
            notes.append(
                f"IV rank needs {MIN_HISTORY} days of stored IV history and there are {len(hist)}; "
                f"showing the rank of HV20 within its last {len(series)} sessions as a proxy"
            )
        else:
            basis = "none"
            regime = "unknown"
            notes.append(f"too little history for IV rank ({len(hist)} stored days) or an HV proxy")
    return VolRegime(
        symbol=symbol,
        as_of=as_of,
        sources=sources,
        spot=spot,
        atm_iv_30d=atm30,
        hv20=hv20,
        hv60=hvs["hv60"],
        hv120=hvs["hv120"],
        iv_hv_ratio=ratio,
        skew_25d=skew30,
        term_slope=slope,
        term_structure=shape,
        term=term,
        iv_rank=iv_rank,
        iv_percentile=iv_pct,
        hv_rank_proxy=proxy_rank,
        hv_percentile_proxy=proxy_pct,
        rank_basis=basis,
        history_days=len(hist),
        regime=regime,
        note="; ".join(notes) or None,
        surface=surface,
    )


def atm_iv_30d(views: Sequence[ChainView]) -> float | None:
    """Only the 30-day constant-maturity ATM IV (what the recorder stores)."""
    pts = [(v.dte, atm_iv(v)) for v in views if v.dte >= 1.0]
    return constant_maturity(pts, CM_DAYS, variance=True)


def expirations_for_regime(expirations: Sequence[date], today: date, *, max_count: int = 8) -> list[date]:
    """The expirations worth fetching for the regime: the two bracketing 30 and 90 days, plus a spread out to a year."""
    exps = sorted(e for e in expirations if (e - today).days >= 1)
    if not exps:
        return []
    dte = np.array([(e - today).days for e in exps], dtype=float)
    picks: set[int] = set()
    for target in (CM_DAYS, SLOPE_DAYS):
        i = int(np.searchsorted(dte, target))
        picks.update(j for j in (i - 1, i) if 0 <= j < len(exps))
    for target in (7.0, 14.0, 60.0, 180.0, 365.0):
        picks.add(int(np.argmin(np.abs(dte - target))))
    chosen = sorted(picks)
    # The bracketing ones first when trimming: they carry the 30-day and 90-day numbers.
    if len(chosen) > max_count:
        must: set[int] = set()
        for target in (CM_DAYS, SLOPE_DAYS):
            i = int(np.searchsorted(dte, target))
            must.update(j for j in (i - 1, i) if 0 <= j < len(exps))
        rest = [j for j in chosen if j not in must]
        chosen = sorted(must | set(rest[: max(0, max_count - len(must))]))
    return [exps[j] for j in chosen]


__all__ = [
    "MIN_HISTORY",
    "RANK_DAYS",
    "TermPoint",
    "VolRegime",
    "VolSurfaceAnswer",
    "atm_iv",
    "atm_iv_30d",
    "constant_maturity",
    "delta_iv",
    "expirations_for_regime",
    "rank_and_percentile",
    "skew_25d",
    "term_points",
    "vol_regime",
]
