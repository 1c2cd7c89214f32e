"""The implied volatility surface of a symbol from its chains' own quotes: IV by strike and by delta, per expiry.

Each expiry is one slice: the out-of-the-money smile (`analytics.chains.smile`: puts below the
forward, calls above), and read off it

* the ATM IV: the smile interpolated linearly in log-moneyness at K = F;
* IVs at fixed deltas (10 and 25 delta puts and calls): the smile interpolated in call delta
  (a put of delta d sits at call delta d + e^(-qT)); none when the delta curve is not monotone
  (broken quotes give no skew rather than a wrong one);
* the 25-delta skew: the 25-delta put's IV minus the 25-delta call's.

Only strikes whose out-of-the-money contract is bid at MIN_BID or more count: a zero bid is no
price (the IV a provider prints for it is a placeholder), and a bid of a tick or two is mostly
rounding, which draws a saw-toothed wing instead of a smile.

The grid puts every slice on one strike axis (moneyness K/spot from 80 % to 120 %), each value
interpolated in log(K/F) inside the slice's quoted strikes and left empty outside them: the
surface shows what was quoted, never an extrapolation. The volatility regime's ATM term
structure, 25-delta skew and term slope are read from these same slices.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date, datetime

import numpy as np
import pandas as pd

from analytics.chains import ChainView, smile
from analytics.models import Model

#: The smallest bid whose out-of-the-money contract prices a point of the smile (five one-cent ticks).
MIN_BID = 0.05
#: Strike axis of the grid, as moneyness K/spot.
GRID_MONEYNESS: tuple[float, ...] = tuple(round(0.80 + 0.025 * i, 3) for i in range(17))
#: Fixed-delta points of each slice: label -> (call delta, or None for ATM; "put" deltas are given as put deltas).
DELTA_POINTS: tuple[tuple[str, float | None, bool], ...] = (
    ("10Δ put", 0.10, True),
    ("25Δ put", 0.25, True),
    ("ATM", None, False),
    ("25Δ call", 0.25, False),
    ("10Δ call", 0.10, False),
)
#: The smile a slice keeps for the picture and the result: strikes within this log-moneyness of the forward.
SMILE_WIDTH = 0.40


class SurfaceSlice(Model):
    """One expiry of the surface."""

    expiration: date
    dte: float
    forward: float
    atm_iv: float | None
    skew_25d: float | None
    #: IV at each of DELTA_POINTS (same order as VolSurface.delta_labels).
    delta_iv: list[float | None]
    #: The quoted OTM smile near the money: strikes and their IVs.
    strikes: list[float]
    ivs: list[float]


class VolSurface(Model):
    """IV by strike x expiry (`grid_iv`, rows = `slices`) and by delta x expiry (each slice's `delta_iv`)."""

    symbol: str
    as_of: datetime
    spot: float
    sources: list[str]
    slices: list[SurfaceSlice]
    grid_moneyness: list[float]
    grid_strikes: list[float]
    grid_iv: list[list[float | None]]
    delta_labels: list[str]


def quoted_smile(view: ChainView) -> pd.DataFrame:
    """The smile at strikes whose out-of-the-money contract is bid at least MIN_BID (see the module docstring).

    Kept with the view, like the smile itself.
    """
    cached = view._cache.get("quoted_smile")
    if cached is not None:
        return cached
    sm = smile(view)
    f = view.frame
    if sm.empty or f.empty:
        view._cache["quoted_smile"] = sm
        return sm
    bid = f["bid"].to_numpy(float)
    k = f["strike"].to_numpy(float)
    calls = f["is_call"].to_numpy(bool)
    priced = bid >= MIN_BID - 1e-9
    has_call = set(k[calls & priced].tolist())
    has_put = set(k[~calls & priced].tolist())
    strikes = sm["strike"].to_numpy(float)
    otm_call = strikes >= view.forward
    keep = np.array(
        [(x in has_call) if c else (x in has_put) for x, c in zip(strikes.tolist(), otm_call.tolist(), strict=True)], bool
    )
    out = sm[keep].reset_index(drop=True)
    view._cache["quoted_smile"] = out
    return out


def atm_iv(view: ChainView) -> float | None:
    """ATM IV of one expiration (smile interpolated at ln K/F = 0), or None when the forward is outside the strikes."""
    sm = quoted_smile(view)
    if len(sm) < 2:
        return None
    x, v = sm["log_moneyness"].to_numpy(), sm["iv"].to_numpy()
    if not (x[0] <= 0.0 <= x[-1]):
        return None
    return float(np.interp(0.0, x, v))


def delta_iv(view: ChainView, call_delta: float) -> float | None:
    """Smile IV at the strike whose call delta is `call_delta` (a put's delta d is call delta d + e^(-qT))."""
    sm = quoted_smile(view)
    if len(sm) < 2:
        return None
    d, v = sm["call_delta"].to_numpy()[::-1], sm["iv"].to_numpy()[::-1]  # call delta rises as strikes fall
    ok = np.isfinite(d)
    d, v = d[ok], v[ok]
    if len(d) < 2 or not (d[0] <= call_delta <= d[-1]) or np.any(np.diff(d) < 0):
        # a non-monotone delta curve means broken quotes; no skew rather than a wrong one
        return None
    return float(np.interp(call_delta, d, v))


def _put_delta_iv(view: ChainView, put_delta: float) -> float | None:
    return delta_iv(view, math.exp(-view.div_yield * view.T) - put_delta)


def skew_25d(view: ChainView) -> float | None:
    """IV of the 25-delta put minus IV of the 25-delta call for one expiration."""
    put = _put_delta_iv(view, 0.25)
    call = delta_iv(view, 0.25)
    return None if put is None or call is None else put - call


def surface_slice(view: ChainView) -> SurfaceSlice:
    """One expiry's slice: ATM IV, fixed-delta IVs, 25-delta skew and the quoted smile near the money."""
    atm = atm_iv(view)
    deltas: list[float | None] = []
    for _label, d, is_put in DELTA_POINTS:
        deltas.append(atm if d is None else _put_delta_iv(view, d) if is_put else delta_iv(view, d))
    put25, call25 = deltas[1], deltas[3]
    sm = quoted_smile(view)
    near = sm[np.abs(sm["log_moneyness"].to_numpy()) <= SMILE_WIDTH]
    return SurfaceSlice(
        expiration=view.expiration,
        dte=round(view.dte, 3),
        forward=view.forward,
        atm_iv=atm,
        skew_25d=None if put25 is None or call25 is None else put25 - call25,
        delta_iv=deltas,
        strikes=[float(k) for k in near["strike"]],
        ivs=[float(v) for v in near["iv"]],
    )


def _grid_row(view: ChainView, strikes: np.ndarray) -> list[float | None]:
    sm = quoted_smile(view)
    if len(sm) < 2:
        return [None] * len(strikes)
    x, v = sm["log_moneyness"].to_numpy(), sm["iv"].to_numpy()
    k = np.log(strikes / view.forward)
    vals = np.interp(k, x, v)
    inside = (k >= x[0]) & (k <= x[-1])
    return [float(val) if ok else None for val, ok in zip(vals, inside, strict=True)]


def build_surface(symbol: str, views: Sequence[ChainView], *, as_of: datetime, spot: float, sources: list[str]) -> VolSurface:
    """The surface of the expirations in `views` (nearest first; expired ones left out)."""
    live = sorted((v for v in views if v.T > 0), key=lambda v: v.T)
    strikes = np.round(np.asarray(GRID_MONEYNESS) * spot, 2)
    return VolSurface(
        symbol=symbol,
        as_of=as_of,
        spot=spot,
        sources=sources,
        slices=[surface_slice(v) for v in live],
        grid_moneyness=list(GRID_MONEYNESS),
        grid_strikes=[float(k) for k in strikes],
        grid_iv=[_grid_row(v, strikes) for v in live] if spot > 0 else [],
        delta_labels=[label for label, _d, _p in DELTA_POINTS],
    )
