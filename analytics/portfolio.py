"""Portfolio statistics: daily returns, beta to a benchmark, the correlation matrix, exposure and greek totals.

Pure numpy on aligned arrays: the caller lines the closes up by session and passes them in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

#: Sessions of daily returns the portfolio statistics use.
LOOKBACK = 60


def daily_returns(closes: ArrayLike) -> NDArray[np.float64]:
    """Simple returns close-to-close along the last axis (one fewer column than `closes`)."""
    c = np.asarray(closes, dtype=np.float64)
    return c[..., 1:] / c[..., :-1] - 1.0


def beta(asset: ArrayLike, market: ArrayLike) -> float | None:
    """Beta of `asset` returns to `market` returns: cov / var (None when the market does not move or too few points)."""
    a, m = np.asarray(asset, dtype=np.float64), np.asarray(market, dtype=np.float64)
    ok = np.isfinite(a) & np.isfinite(m)
    a, m = a[ok], m[ok]
    if a.size < 3:
        return None
    var = float(np.var(m, ddof=1))
    if var <= 0:
        return None
    return float(np.cov(a, m, ddof=1)[0, 1] / var)


def correlation_matrix(returns: ArrayLike) -> NDArray[np.float64]:
    """Pearson correlation of the rows of `returns` (n assets x t sessions); a row that never moves correlates 0 (1 with itself)."""
    r = np.asarray(returns, dtype=np.float64)
    n = r.shape[0]
    if n == 0:
        return np.zeros((0, 0))
    centred = r - r.mean(axis=1, keepdims=True)
    norm = np.sqrt((centred**2).sum(axis=1))
    safe = np.where(norm > 0, norm, 1.0)
    z = centred / safe[:, None]
    corr = z @ z.T
    corr[norm == 0, :] = 0.0
    corr[:, norm == 0] = 0.0
    np.fill_diagonal(corr, 1.0)
    out: NDArray[np.float64] = np.clip(corr, -1.0, 1.0)
    return out


def portfolio_beta(weights: ArrayLike, betas: Sequence[float | None]) -> float | None:
    """Exposure-weighted beta (weights as fractions of the account, signed); None when no beta is known."""
    w = np.asarray(weights, dtype=np.float64)
    known = np.array([b is not None for b in betas])
    if not known.any():
        return None
    b = np.array([0.0 if x is None else x for x in betas])
    return float((w[known] * b[known]).sum())


@dataclass(frozen=True)
class Exposure:
    """Dollar exposure: gross (sum of absolute values), net (signed sum), long and short (short as a positive number)."""

    gross: float
    net: float
    long: float
    short: float


def exposure(values: ArrayLike) -> Exposure:
    """Exposure of signed position values (delta dollars for options)."""
    v = np.asarray(values, dtype=np.float64)
    long = float(v[v > 0].sum())
    short = abs(float(v[v < 0].sum()))
    return Exposure(gross=long + short, net=long - short, long=long, short=short)


def weights_by(keys: Sequence[str], values: ArrayLike, account: float) -> dict[str, float]:
    """Percent of `account` of the absolute values summed per key, largest first."""
    v = np.abs(np.asarray(values, dtype=np.float64))
    out: dict[str, float] = {}
    for k, x in zip(keys, v, strict=True):
        out[k] = out.get(k, 0.0) + float(x)
    return {k: 100.0 * x / account for k, x in sorted(out.items(), key=lambda kv: -kv[1])} if account > 0 else {}
