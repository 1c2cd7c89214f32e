"""Implied volatility: the Black-Scholes-Merton inverse, vectorised, robust in the wings.

The solver never returns garbage. A price outside the no-arbitrage bounds (below the
discounted intrinsic value of the forward, or at/above the discounted forward for a call
and the discounted strike for a put) has no implied volatility, and the answer is NaN
(`solve_iv` returns None).

How it stays accurate far from the money: every price is first turned into the price of
the out-of-the-money option of the same strike (put-call parity), then normalised as in
Jäckel's "Let's be rational": with x = ln(F/K) <= 0 and s = sigma * sqrt(T), the
normalised out-of-the-money price is

    b(x, s) = e^(x/2) N(x/s + s/2) - e^(-x/2) N(x/s - s/2).

Its logarithm is evaluated without underflow or cancellation through the scaled
complementary error function erfcx, so ln b stays exact even where b is 1e-300. The
iteration solves ln b(s) = ln b* with Newton steps in u = 1/s^2 (where ln b is nearly
linear far from the money) or in s, always inside a shrinking bracket, bisecting when a
step would leave it; it converges in a handful of steps across strikes and expiries.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy.special import erf, erfcx, ndtr

from analytics.blackscholes import _as_call

ArrayLike = Any

_SQRT2 = math.sqrt(2.0)
_SQRT_2PI = math.sqrt(2.0 * math.pi)
#: Bracket of total volatility s = sigma * sqrt(T) searched by the solver.
S_MIN, S_MAX = 1e-9, 40.0
#: Relative room under the upper bound before a price counts as "at the bound" (no solution).
_EDGE = 1e-13


def _log_norm_otm(x: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(ln b(x, s), d ln b / ds) for x <= 0, s > 0, without underflow or cancellation."""
    h1 = x / s + 0.5 * s
    h2 = x / s - 0.5 * s
    base = -0.5 * (x / s) ** 2 - 0.125 * s * s  # ln of e^(x/2) * phi(h1) * sqrt(2 pi)
    far = h1 < 0.0
    # Far from the money both N() terms are tiny: N(h) = erfcx(-h/sqrt2) e^(-h^2/2) / 2 and the
    # Gaussian factors of the two terms are equal, so only the erfcx difference remains.
    diff = erfcx(-h1 / _SQRT2) - erfcx(-h2 / _SQRT2)
    with np.errstate(divide="ignore", invalid="ignore"):
        # diff <= 0 only when s is so small that the two erfcx terms agree to the last bit:
        # b is far below anything a price can express, so ln b is -inf (the bracket moves up).
        log_far = np.where(diff > 0, base + np.log(np.where(diff > 0, 0.5 * diff, 1.0)), -np.inf)
        # Near the money: h1 >= 0 > h2, so the erf difference has no cancellation either.
        near_b = np.exp(0.5 * x) * 0.5 * (erf(h1 / _SQRT2) - erf(h2 / _SQRT2)) + 2.0 * np.sinh(0.5 * x) * ndtr(h2)
        log_near = np.log(near_b)
        log_b = np.where(far, log_far, log_near)
        # d b / ds = e^(x/2) phi(h1) = exp(base) / sqrt(2 pi)
        dlog = np.exp(base - log_b) / _SQRT_2PI
    return log_b, dlog


def iv_bounds(
    S: ArrayLike, K: ArrayLike, T: ArrayLike, r: ArrayLike, q: ArrayLike, is_call: ArrayLike
) -> tuple[np.ndarray, np.ndarray]:
    """(lower, upper) no-arbitrage price bounds: discounted intrinsic of the forward, and the discounted forward (call) or strike (put)."""
    S, K, T, r, q = (np.asarray(v, dtype=np.float64) for v in (S, K, T, r, q))
    call = _as_call(is_call)
    S, K, T, r, q, call = np.broadcast_arrays(S, K, T, r, q, call)
    T = np.maximum(T, 0.0)
    fs, pk = S * np.exp(-q * T), K * np.exp(-r * T)
    lower = np.where(call, np.maximum(fs - pk, 0.0), np.maximum(pk - fs, 0.0))
    upper = np.where(call, fs, pk)
    return lower, upper


def implied_vol(
    price: ArrayLike,
    S: ArrayLike,
    K: ArrayLike,
    T: ArrayLike,
    r: ArrayLike,
    q: ArrayLike,
    is_call: ArrayLike,
    *,
    tol: float = 1e-12,
    max_iter: int = 100,
) -> np.ndarray | float:
    """Implied volatility (decimal) for each price; NaN where none exists (outside the bounds, T <= 0, bad input).

    Arguments broadcast like `bs_price`. A float for scalar inputs.
    """
    price, S, K, T, r, q = (np.asarray(v, dtype=np.float64) for v in (price, S, K, T, r, q))
    call = _as_call(is_call)
    price, S, K, T, r, q, call = np.broadcast_arrays(price, S, K, T, r, q, call)
    shape = price.shape
    price, S, K, T, r, q, call = (a.ravel() for a in (price, S, K, T, r, q, call))
    out = np.full(price.shape, np.nan)

    ok = np.isfinite(price) & np.isfinite(S) & np.isfinite(K) & np.isfinite(T) & np.isfinite(r) & np.isfinite(q)
    ok &= (S > 0) & (K > 0) & (T > 0) & (price > 0)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        df = np.exp(-r * T)
        F = S * np.exp((r - q) * T)
        lower, upper = iv_bounds(S, K, T, r, q, call)
        ok &= (price > lower) & (price < upper * (1.0 - _EDGE))
        # Out-of-the-money equivalent by parity, normalised by df * sqrt(F K).
        otm = price - lower
        norm = df * np.sqrt(F * K)
        beta = otm / norm
        x = -np.abs(np.log(F / K))
        log_beta = np.log(beta)
        # the normalised upper bound is e^(x/2); at it the volatility is infinite
        ok &= np.isfinite(log_beta) & (log_beta < 0.5 * x - 1e-15 * np.maximum(1.0, -x))
    idx = np.flatnonzero(ok)
    if len(idx):
        out[idx] = _solve(x[idx], log_beta[idx], tol, max_iter) / np.sqrt(T[idx])
    out = out.reshape(shape)
    return float(out) if out.ndim == 0 else out


def _solve(x: np.ndarray, log_beta: np.ndarray, tol: float, max_iter: int) -> np.ndarray:
    """Total volatility s with ln b(x, s) = log_beta (inputs already inside the bounds); NaN if unresolved."""
    lo = np.full(x.shape, S_MIN)
    hi = np.full(x.shape, S_MAX)
    f_lo, _ = _log_norm_otm(x, lo)
    f_hi, _ = _log_norm_otm(x, hi)
    # Targets beyond the bracket: a price too close to its bound to carry a volatility.
    solvable = (f_lo <= log_beta) & (f_hi >= log_beta)
    # Start at the inflection point of b(s), where Newton is well behaved from either side.
    s = np.clip(np.sqrt(2.0 * np.abs(x)), 0.05, 5.0)
    s = np.where(np.abs(x) < 1e-12, np.clip(np.exp(log_beta) * _SQRT_2PI, S_MIN * 10, 5.0), s)
    done = ~solvable
    for _ in range(max_iter):
        active = ~done
        if not active.any():
            break
        xa, sa = x[active], s[active]
        f, d = _log_norm_otm(xa, sa)
        g = f - log_beta[active]
        lo_a, hi_a = lo[active], hi[active]
        lo_a = np.where(g < 0, sa, lo_a)
        hi_a = np.where(g > 0, sa, hi_a)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            # Newton in s, and Newton in u = 1/s^2. Far from the money ln b ~ -x^2 u / 2 is
            # almost linear in u, so the u-step lands next to the root where the s-step crawls
            # (from below) or overshoots (from above); the bracket guards both.
            s_newton = sa - g / d
            u_new = sa**-2 + 2.0 * g / (d * sa**3)
            s_u = np.where(u_new > 0, 1.0 / np.sqrt(u_new), np.nan)
        inside_u = np.isfinite(s_u) & (s_u > lo_a) & (s_u < hi_a)
        inside_n = np.isfinite(s_newton) & (s_newton > lo_a) & (s_newton < hi_a)
        mid = np.where(hi_a / lo_a > 4.0, np.sqrt(lo_a * hi_a), 0.5 * (lo_a + hi_a))
        s_new = np.where(inside_u, s_u, np.where(inside_n, s_newton, mid))
        conv = (np.abs(s_new - sa) <= tol * np.maximum(sa, 1e-6)) | (g == 0) | ((hi_a - lo_a) <= tol * sa)
        lo[active], hi[active], s[active] = lo_a, hi_a, s_new
        d_idx = np.flatnonzero(active)[conv]
        done[d_idx] = True
    s = np.where(solvable & done, s, np.nan)
    return s


def solve_iv(price: float, S: float, K: float, T: float, r: float, q: float, right: str | bool) -> float | None:
    """Implied volatility of one option, or None when the price admits no solution."""
    v = implied_vol(price, S, K, T, r, q, right)
    return float(v) if np.isfinite(v) else None


def no_solution_reason(price: float, S: float, K: float, T: float, r: float, q: float, right: str | bool) -> str | None:
    """Why `price` has no implied volatility (one line), or None when it has one."""
    if solve_iv(price, S, K, T, r, q, right) is not None:
        return None
    if not (math.isfinite(price) and price > 0):
        return f"price {price} is not a positive number"
    if T <= 0:
        return "the option has expired"
    lower, upper = (float(v) for v in iv_bounds(S, K, T, r, q, right))
    if price <= lower:
        return f"price {price:.4f} is at or below the discounted intrinsic value {lower:.4f}"
    if price >= upper * (1 - _EDGE):
        return f"price {price:.4f} is at or above the no-arbitrage upper bound {upper:.4f}"
    return f"price {price:.4f} is too close to a no-arbitrage bound to imply a volatility"
