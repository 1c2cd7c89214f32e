"""Implied-volatility solver throughput: analytics.iv.implied_vol (vectorised) against QuantLib, one option at a time.

Prints options per second for both over the same prices (a grid of strikes, expiries and
volatilities with a dividend yield), the ratio, and the worst round-trip error.
Run: .venv/bin/python benchmarks/bench_iv.py
"""

from __future__ import annotations

import time

import numpy as np
import QuantLib as ql

from analytics.blackscholes import bs_price
from analytics.iv import implied_vol, iv_bounds


def grid(n_strikes: int = 200, seed: int = 1) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    S = 100.0
    K = S * np.exp(np.linspace(-0.8, 0.8, n_strikes))
    days = np.array([2, 7, 14, 30, 60, 91, 182, 365, 730])
    vols = np.array([0.12, 0.25, 0.45, 0.8, 1.3])
    K, D, V = (a.ravel() for a in np.meshgrid(K, days, vols, indexing="ij"))
    call = rng.random(K.size) < 0.5
    T = D / 365.0
    r, q = 0.045, 0.015
    price = bs_price(S, K, T, r, q, V, call)
    lower, _ = iv_bounds(S, K, T, r, q, call)
    keep = (price - lower) > 1e-6 * S  # prices QuantLib can also invert
    return S, K[keep], D[keep], T[keep], V[keep], call[keep], price[keep], r, q


def quantlib_loop(S, K, D, V, call, price, r, q, limit):
    today = ql.Date(15, 3, 2024)
    ql.Settings.instance().evaluationDate = today
    dc = ql.Actual365Fixed()
    spot = ql.QuoteHandle(ql.SimpleQuote(S))
    rate = ql.YieldTermStructureHandle(ql.FlatForward(today, r, dc, ql.Continuous))
    div = ql.YieldTermStructureHandle(ql.FlatForward(today, q, dc, ql.Continuous))
    vol = ql.BlackVolTermStructureHandle(ql.BlackConstantVol(today, ql.NullCalendar(), 0.3, dc))
    process = ql.BlackScholesMertonProcess(spot, div, rate, vol)
    out = np.empty(limit)
    for i in range(limit):
        opt = ql.VanillaOption(
            ql.PlainVanillaPayoff(ql.Option.Call if call[i] else ql.Option.Put, float(K[i])),
            ql.EuropeanExercise(today + int(D[i])),
        )
        out[i] = opt.impliedVolatility(float(price[i]), process, 1e-10, 500, 1e-4, 10.0)
    return out


def main() -> None:
    S, K, D, T, V, call, price, r, q = grid()
    n = len(K)
    implied_vol(price[:100], S, K[:100], T[:100], r, q, call[:100])  # warm up
    t0 = time.perf_counter()
    ours = implied_vol(price, S, K, T, r, q, call)
    t_ours = time.perf_counter() - t0
    m = min(n, 3000)
    t0 = time.perf_counter()
    ref = quantlib_loop(S, K, D, V, call, price, r, q, m)
    t_ql = time.perf_counter() - t0
    ours_rate = n / t_ours
    ql_rate = m / t_ql
    print(f"options: {n:,} (QuantLib timed on the first {m:,})")
    print(f"analytics.iv.implied_vol: {t_ours * 1e3:8.1f} ms  -> {ours_rate:12,.0f} options/s")
    print(f"QuantLib impliedVolatility loop: {t_ql * 1e3:8.1f} ms  -> {ql_rate:12,.0f} options/s")
    print(f"speed ratio (ours / QuantLib): {ours_rate / ql_rate:.1f}x")
    print(
        f"max |iv - true vol|: {np.max(np.abs(ours - V)):.2e}; max |ours - QuantLib| (first {m}): {np.max(np.abs(ours[:m] - ref)):.2e}"
    )


if __name__ == "__main__":
    main()
