"""Black-Scholes-Merton prices and greeks: textbook values, parity, finite differences, limits."""

from __future__ import annotations

import numpy as np
import pytest

from analytics.blackscholes import bs_greeks, bs_price


def test_textbook_values():
    # Hull, Options Futures and Other Derivatives, example 15.6: S=42 K=40 r=10% sigma=20% T=0.5
    assert bs_price(42, 40, 0.5, 0.10, 0.0, 0.20, True) == pytest.approx(4.7594, abs=1e-4)
    assert bs_price(42, 40, 0.5, 0.10, 0.0, 0.20, False) == pytest.approx(0.8086, abs=1e-4)
    # with a dividend yield (Merton): S=K=100 T=1 r=5% q=2% sigma=20%
    assert bs_price(100, 100, 1.0, 0.05, 0.02, 0.20, True) == pytest.approx(9.2270, abs=1e-4)


def test_scalar_inputs_give_floats_and_arrays_broadcast():
    assert isinstance(bs_price(100, 100, 1, 0.05, 0, 0.2, True), float)
    K = np.array([90.0, 100.0, 110.0])
    T = np.array([[0.1], [1.0]])
    out = bs_price(100.0, K, T, 0.05, 0.01, 0.3, True)
    assert out.shape == (2, 3)
    g = bs_greeks(100.0, K, T, 0.05, 0.01, 0.3, np.array([True, False, True]))
    assert set(g) >= {"delta", "gamma", "theta", "vega"}
    assert all(v.shape == (2, 3) for v in g.values())


def test_rights_as_labels():
    assert bs_price(100, 95, 0.5, 0.04, 0.0, 0.3, "call") == bs_price(100, 95, 0.5, 0.04, 0.0, 0.3, True)
    assert bs_price(100, 95, 0.5, 0.04, 0.0, 0.3, "P") == bs_price(100, 95, 0.5, 0.04, 0.0, 0.3, False)


def test_put_call_parity():
    rng = np.random.default_rng(7)
    n = 500
    S = rng.uniform(5, 800, n)
    K = S * np.exp(rng.normal(0, 0.4, n))
    T = rng.uniform(0.001, 3.0, n)
    r = rng.uniform(0.0, 0.08, n)
    q = rng.uniform(0.0, 0.04, n)
    sig = rng.uniform(0.05, 1.5, n)
    c = bs_price(S, K, T, r, q, sig, True)
    p = bs_price(S, K, T, r, q, sig, False)
    np.testing.assert_allclose(c - p, S * np.exp(-q * T) - K * np.exp(-r * T), atol=1e-8 * S.max())


@pytest.mark.parametrize("is_call", [True, False])
@pytest.mark.parametrize("S,K,T,sig", [(100, 100, 0.5, 0.25), (250, 200, 0.08, 0.6), (50, 60, 2.0, 0.35), (500, 505, 0.02, 0.15)])
def test_greeks_match_finite_differences(is_call, S, K, T, sig):
    r, q = 0.045, 0.015
    g = bs_greeks(S, K, T, r, q, sig, is_call)

    def price(S=S, T=T, sig=sig, r=r):
        return bs_price(S, K, T, r, q, sig, is_call)

    hs = S * 1e-4
    delta = (price(S=S + hs) - price(S=S - hs)) / (2 * hs)
    gamma = (price(S=S + hs) - 2 * price() + price(S=S - hs)) / hs**2
    hv = 1e-5
    vega = (price(sig=sig + hv) - price(sig=sig - hv)) / (2 * hv) * 0.01
    ht = 1e-6
    theta = -(price(T=T + ht) - price(T=T - ht)) / (2 * ht) / 365.0
    hr = 1e-6
    rho = (price(r=r + hr) - price(r=r - hr)) / (2 * hr) * 0.01

    assert g["delta"] == pytest.approx(delta, rel=1e-5, abs=1e-8)
    assert g["gamma"] == pytest.approx(gamma, rel=1e-3, abs=1e-7)
    assert g["vega"] == pytest.approx(vega, rel=1e-5, abs=1e-8)
    assert g["theta"] == pytest.approx(theta, rel=1e-4, abs=1e-7)
    assert g["rho"] == pytest.approx(rho, rel=1e-4, abs=1e-8)


def test_expiry_gives_intrinsic_without_nan():
    K = np.array([90.0, 100.0, 110.0])
    np.testing.assert_array_equal(bs_price(100.0, K, 0.0, 0.05, 0.0, 0.3, True), [10.0, 0.0, 0.0])
    np.testing.assert_array_equal(bs_price(100.0, K, 0.0, 0.05, 0.0, 0.3, False), [0.0, 0.0, 10.0])
    np.testing.assert_array_equal(bs_price(100.0, K, -1.0, 0.05, 0.0, 0.3, True), [10.0, 0.0, 0.0])
    g = bs_greeks(100.0, K, 0.0, 0.05, 0.0, 0.3, True)
    for v in g.values():
        assert np.all(np.isfinite(v))
    np.testing.assert_array_equal(g["delta"], [1.0, 0.5, 0.0])
    np.testing.assert_array_equal(g["gamma"], 0.0)
    np.testing.assert_array_equal(g["vega"], 0.0)


def test_zero_vol_is_discounted_forward_intrinsic():
    S, K, T, r, q = 100.0, np.array([80.0, 100.0, 120.0]), 1.0, 0.05, 0.01
    fwd_diff = S * np.exp(-q * T) - K * np.exp(-r * T)
    np.testing.assert_allclose(bs_price(S, K, T, r, q, 0.0, True), np.maximum(fwd_diff, 0.0), rtol=0, atol=1e-12)
    np.testing.assert_allclose(bs_price(S, K, T, r, q, 0.0, False), np.maximum(-fwd_diff, 0.0), rtol=0, atol=1e-12)
    g = bs_greeks(S, K, T, r, q, 0.0, False)
    for v in g.values():
        assert np.all(np.isfinite(v))
    # tiny vol converges to the zero-vol limit
    np.testing.assert_allclose(bs_price(S, K, T, r, q, 1e-9, True), bs_price(S, K, T, r, q, 0.0, True), atol=1e-9)


def test_extreme_inputs_stay_finite():
    S = np.array([0.0, 1e-6, 100.0, 1e6])
    K = np.array([100.0, 100.0, 1e-9, 1.0])
    for call in (True, False):
        p = bs_price(S, K, 5.0, 0.05, 0.02, 3.0, call)
        assert np.all(np.isfinite(p)) and np.all(p >= 0)
        for v in bs_greeks(S, K, 5.0, 0.05, 0.02, 3.0, call).values():
            assert np.all(np.isfinite(v))


def test_call_delta_bounds_and_monotone():
    K = np.linspace(50, 150, 41)
    d = bs_greeks(100.0, K, 0.25, 0.045, 0.01, 0.3, True)["delta"]
    assert np.all((d > 0) & (d < 1))
    assert np.all(np.diff(d) < 0)
    pd_ = bs_greeks(100.0, K, 0.25, 0.045, 0.01, 0.3, False)["delta"]
    assert np.all((pd_ < 0) & (pd_ > -1))
    np.testing.assert_allclose(d - pd_, np.exp(-0.01 * 0.25))
