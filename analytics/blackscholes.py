"""Black-Scholes-Merton prices and greeks with a continuous dividend yield, vectorised over numpy arrays.

Every argument broadcasts against the others, so one call prices a whole option chain.
Expired contracts (T <= 0) and zero volatility fall back to the deterministic limit
(discounted intrinsic value of the forward), so results never contain NaN or inf.

Units: T in years, r, q and sigma as decimals (0.045, 0.35); theta is per calendar day,
vega per one volatility point (0.01).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import ndtr

#: Below this total volatility (sigma * sqrt(T)) the option is treated as deterministic.
_MIN_STD = 1e-12
_INV_SQRT_2PI = 0.3989422804014327

ArrayLike = Any


def _as_call(is_call: ArrayLike) -> np.ndarray:
    """Boolean array from booleans or from 'call'/'put' ('c'/'p') labels."""
    arr = np.asarray(is_call)
    if arr.dtype.kind in "US":
        low = np.char.lower(arr.astype(str))
        calls: np.ndarray = (low == "call") | (low == "c")
        return calls
    return arr.astype(bool)


def _scalar_or_array(x: np.ndarray) -> np.ndarray | float:
    return float(x) if x.ndim == 0 else x


def _prepare(
    S: ArrayLike, K: ArrayLike, T: ArrayLike, r: ArrayLike, q: ArrayLike, sigma: ArrayLike, is_call: ArrayLike
) -> tuple[np.ndarray, ...]:
    S, K, T, r, q, sigma = (np.asarray(v, dtype=np.float64) for v in (S, K, T, r, q, sigma))
    call = _as_call(is_call)
    S, K, T, r, q, sigma, call = np.broadcast_arrays(S, K, T, r, q, sigma, call)
    T = np.maximum(T, 0.0)
    sigma = np.maximum(sigma, 0.0)
    sqrt_t = np.sqrt(T)
    std = sigma * sqrt_t
    df_q = np.exp(-q * T)
    df_r = np.exp(-r * T)
    fwd_s = S * df_q  # spot net of dividends
    pv_k = K * df_r  # present value of the strike
    live = std > _MIN_STD
    safe_std = np.where(live, std, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_m = np.log(fwd_s / pv_k)
    # Deterministic limit: d1 = d2 = +-inf by the sign of forward moneyness (0 exactly at the money).
    limit = np.where(log_m > 0, np.inf, np.where(log_m < 0, -np.inf, 0.0))
    d1 = np.where(live, (log_m + 0.5 * std * std) / safe_std, limit)
    d2 = np.where(live, d1 - std, limit)
    return S, K, T, r, q, sigma, call, sqrt_t, std, df_q, df_r, fwd_s, pv_k, live, d1, d2


def bs_price(
    S: ArrayLike, K: ArrayLike, T: ArrayLike, r: ArrayLike, q: ArrayLike, sigma: ArrayLike, is_call: ArrayLike
) -> np.ndarray | float:
    """Option value per share; a float for scalar inputs, else an array of the broadcast shape."""
    S, K, T, r, q, sigma, call, sqrt_t, std, df_q, df_r, fwd_s, pv_k, live, d1, d2 = _prepare(S, K, T, r, q, sigma, is_call)
    call_v = fwd_s * ndtr(d1) - pv_k * ndtr(d2)
    put_v = pv_k * ndtr(-d2) - fwd_s * ndtr(-d1)
    price = np.where(call, call_v, put_v)
    # Cancellation can leave a tiny negative value deep out of the money.
    return _scalar_or_array(np.maximum(price, 0.0))


def bs_greeks(
    S: ArrayLike, K: ArrayLike, T: ArrayLike, r: ArrayLike, q: ArrayLike, sigma: ArrayLike, is_call: ArrayLike
) -> dict[str, np.ndarray | float]:
    """Greeks as a dict: delta, gamma, theta (per calendar day), vega (per 0.01 of vol), rho (per 0.01 of rate)."""
    S, K, T, r, q, sigma, call, sqrt_t, std, df_q, df_r, fwd_s, pv_k, live, d1, d2 = _prepare(S, K, T, r, q, sigma, is_call)
    pdf = np.where(live, _INV_SQRT_2PI * np.exp(-0.5 * np.square(np.where(live, d1, 0.0))), 0.0)
    n_d1, n_d2 = ndtr(d1), ndtr(d2)
    n_md1, n_md2 = ndtr(-d1), ndtr(-d2)
    safe_s_std = np.where(live & (S > 0), S * std, 1.0)
    safe_sqrt_t = np.where(live, sqrt_t, 1.0)

    delta = np.where(call, df_q * n_d1, -df_q * n_md1)
    gamma = np.where(live & (S > 0), df_q * pdf / safe_s_std, 0.0)
    # Time decay of the diffusion part; zero in the deterministic limit.
    decay = np.where(live, -fwd_s * pdf * sigma / (2.0 * safe_sqrt_t), 0.0)
    theta_call = decay - r * pv_k * n_d2 + q * fwd_s * n_d1
    theta_put = decay + r * pv_k * n_md2 - q * fwd_s * n_md1
    theta = np.where(call, theta_call, theta_put) / 365.0
    vega = fwd_s * pdf * sqrt_t * 0.01
    rho = np.where(call, T * pv_k * n_d2, -T * pv_k * n_md2) * 0.01
    return {
        "delta": _scalar_or_array(delta),
        "gamma": _scalar_or_array(gamma),
        "theta": _scalar_or_array(theta),
        "vega": _scalar_or_array(vega),
        "rho": _scalar_or_array(rho),
    }
