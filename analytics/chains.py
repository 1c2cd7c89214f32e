"""Option chains made ready for analysis: time to expiry, implied forward, solved IV and greeks per contract.

A provider's chain carries quotes and, sometimes, its own IV and greeks. Everything
downstream (volatility regime, contract ranking) works from one consistent view
computed here from the quotes themselves:

* time to expiry runs to the expiration session's close (16:00 ET, 13:00 on half days),
  in years of 365 days, from the moment the analysis is made (passed in, never a clock);
* the forward comes from put-call parity on the strikes nearest the money (median of
  K + (C - P) / df), so dividends need not be known: the implied dividend yield is
  q = r - ln(F / S) / T;
* IV is solved from each mid with `analytics.iv.implied_vol`; where the mid has none (no
  bid, outside the bounds) the provider's IV is used if it gave one, and the source says so;
* greeks come from `analytics.blackscholes` at that IV.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any

import numpy as np
import pandas as pd

from analytics.blackscholes import bs_greeks
from analytics.iv import implied_vol
from analytics.models import OptionChain
from analytics.sessions import EXCHANGE_TZ, schedule

#: Risk-free rate used when the caller gives none (decimal, continuously compounded).
DEFAULT_RATE = 0.045
_YEAR_S = 365.0 * 86_400.0
#: Strikes nearest the money used to imply the forward.
_PARITY_STRIKES = 6


def expiry_moment(expiration: date) -> datetime:
    """When an expiration stops trading: its session's close, or 16:00 ET when it is not a listed session."""
    sch = schedule()
    d64 = np.datetime64(expiration, "D")
    j = int(np.searchsorted(sch.dates, d64))
    at: datetime
    if j < len(sch.dates) and sch.dates[j] == d64:
        at = pd.Timestamp(int(sch.closes[j]), tz="UTC").to_pydatetime()
    else:
        at = pd.Timestamp(datetime.combine(expiration, time(16, 0)), tz=EXCHANGE_TZ).tz_convert("UTC").to_pydatetime()
    return at


def years_to_expiry(expiration: date, at: datetime) -> float:
    """Years (of 365 days) from `at` to the expiration's close; 0 once it has passed."""
    return max(0.0, (expiry_moment(expiration) - at).total_seconds() / _YEAR_S)


@dataclass(frozen=True)
class ChainView:
    """One expiration, analysed: `frame` has a row per contract with quotes, IV and greeks."""

    underlying: str
    expiration: date
    spot: float
    T: float  # years to expiry
    dte: float  # calendar days to expiry
    rate: float
    forward: float
    div_yield: float  # implied from parity (or 0 when it could not be)
    forward_source: str  # "parity" or "carry"
    frame: pd.DataFrame
    as_of: datetime
    source: str
    #: Derived results kept with the view (the smile), filled on first use.
    _cache: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def discount(self) -> float:
        return math.exp(-self.rate * self.T)


def _mids(bid: np.ndarray, ask: np.ndarray) -> np.ndarray:
    """Mid where the market is two-sided (bid > 0, ask >= bid); NaN otherwise."""
    ok = (bid > 0) & (ask >= bid) & np.isfinite(bid) & np.isfinite(ask)
    return np.where(ok, 0.5 * (bid + ask), np.nan)


def implied_forward(
    strikes: np.ndarray, call_mid: np.ndarray, put_mid: np.ndarray, spot: float, T: float, rate: float
) -> tuple[float, str]:
    """(forward, how): median of K + (C - P) e^(rT) over the two-sided strikes nearest spot, else spot e^(rT)."""
    carry = spot * math.exp(rate * T)
    ok = np.isfinite(call_mid) & np.isfinite(put_mid)
    if T <= 0 or not ok.any():
        return carry, "carry"
    k, c, p = strikes[ok], call_mid[ok], put_mid[ok]
    near = np.argsort(np.abs(k - spot))[:_PARITY_STRIKES]
    fwd = float(np.median(k[near] + (c[near] - p[near]) * math.exp(rate * T)))
    # A forward far from spot means crossed or stale quotes, not a dividend: fall back to carry.
    if not (0.5 * spot < fwd < 2.0 * spot):
        return carry, "carry"
    return fwd, "parity"


def analyse_chain(chain: OptionChain, at: datetime, rate: float = DEFAULT_RATE, spot: float | None = None) -> ChainView:
    """The chain as a ChainView at moment `at` (spot defaults to the chain's underlying price)."""
    S = float(spot if spot is not None else chain.underlying_price)
    T = years_to_expiry(chain.expiration, at)
    rows = chain.contracts
    n = len(rows)
    strike = np.fromiter((c.strike for c in rows), float, n)
    is_call = np.fromiter((c.right == "call" for c in rows), bool, n)
    bid = np.fromiter((c.bid for c in rows), float, n)
    ask = np.fromiter((c.ask for c in rows), float, n)
    prov_iv = np.fromiter((np.nan if c.iv is None else c.iv for c in rows), float, n)
    mid = _mids(bid, ask)

    # Pair calls and puts by strike for the parity forward.
    frame_cp = pd.DataFrame({"k": strike, "call": is_call, "mid": mid})
    calls = frame_cp[frame_cp.call].groupby("k")["mid"].first()
    puts = frame_cp[~frame_cp.call].groupby("k")["mid"].first()
    both = calls.index.intersection(puts.index)
    F, how = implied_forward(both.to_numpy(float), calls[both].to_numpy(float), puts[both].to_numpy(float), S, T, rate)
    q = rate - math.log(F / S) / T if T > 0 and S > 0 else 0.0

    iv = implied_vol(mid, S, strike, T, rate, q, is_call) if n else np.empty(0)
    iv = np.asarray(iv, dtype=float).reshape(n)
    iv_src = np.where(np.isfinite(iv), "mid", np.where(np.isfinite(prov_iv), "provider", "none"))
    iv_use = np.where(np.isfinite(iv), iv, prov_iv)
    g = bs_greeks(S, strike, T, rate, q, np.nan_to_num(iv_use, nan=0.0), is_call) if n else {}
    spread = ask - bid
    frame = pd.DataFrame(
        {
            "symbol": [c.symbol for c in rows],
            "strike": strike,
            "right": np.where(is_call, "call", "put"),
            "is_call": is_call,
            "bid": bid,
            "ask": ask,
            "mid": mid,
            "spread": spread,
            "spread_pct": np.where(np.isfinite(mid) & (mid > 0), spread / np.where(mid > 0, mid, 1.0), np.nan),
            "volume": np.fromiter((c.volume for c in rows), float, n),
            "open_interest": np.fromiter((c.open_interest for c in rows), float, n),
            "multiplier": np.fromiter((c.multiplier for c in rows), float, n),
            "iv": iv_use,
            "iv_source": iv_src,
        }
    )
    for k in ("delta", "gamma", "theta", "vega"):
        frame[k] = np.where(np.isfinite(iv_use), np.asarray(g[k], dtype=float).reshape(n), np.nan) if n else np.empty(0)
    return ChainView(
        underlying=chain.underlying,
        expiration=chain.expiration,
        spot=S,
        T=T,
        dte=T * 365.0,
        rate=rate,
        forward=F,
        div_yield=q,
        forward_source=how,
        frame=frame,
        as_of=chain.as_of,
        source=chain.source,
    )


def smile(view: ChainView) -> pd.DataFrame:
    """The out-of-the-money smile: one row per strike (puts below the forward, calls at and above).

    Columns: strike, log_moneyness (ln K/F), iv, call_delta. A strike whose OTM side has no
    IV falls back to the other side's IV (parity makes them equal in theory). Computed once
    per view and kept.
    """
    cached = view._cache.get("smile")
    if cached is None:
        cached = view._cache["smile"] = _smile(view)
    return cached


def _smile(view: ChainView) -> pd.DataFrame:
    f = view.frame
    cols = ["strike", "log_moneyness", "iv", "call_delta"]
    if f.empty:
        return pd.DataFrame({c: np.empty(0) for c in cols})
    k = f["strike"].to_numpy(float)
    iv_all = f["iv"].to_numpy(float)
    call = f["is_call"].to_numpy(bool)
    strikes = np.unique(k)
    pos = np.searchsorted(strikes, k)
    c = np.full(len(strikes), np.nan)
    p = np.full(len(strikes), np.nan)
    # the first listing of a strike wins (reversed assignment keeps the first)
    c[pos[call][::-1]] = iv_all[call][::-1]
    p[pos[~call][::-1]] = iv_all[~call][::-1]
    otm_call = strikes >= view.forward
    iv = np.where(otm_call, np.where(np.isfinite(c), c, p), np.where(np.isfinite(p), p, c))
    keep = np.isfinite(iv) & (iv > 0)
    strikes, iv = strikes[keep], iv[keep]
    cd = bs_greeks(view.spot, strikes, view.T, view.rate, view.div_yield, iv, True)["delta"] if len(strikes) else np.empty(0)
    return pd.DataFrame(
        {
            "strike": strikes,
            "log_moneyness": np.log(strikes / view.forward) if len(strikes) else np.empty(0),
            "iv": iv,
            "call_delta": np.asarray(cd, dtype=float).reshape(len(strikes)),
        }
    )
