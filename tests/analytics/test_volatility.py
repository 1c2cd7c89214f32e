"""The volatility regime on hand-made chains with known answers."""

from __future__ import annotations

import math
from datetime import date, timedelta

import numpy as np
import pytest

from analytics.chains import analyse_chain
from analytics.indicators import hv, hv_set
from analytics.volatility import (
    MIN_HISTORY,
    atm_iv,
    atm_iv_30d,
    constant_maturity,
    expirations_for_regime,
    rank_and_percentile,
    skew_25d,
    vol_regime,
)
from tests.analytics.test_options import AT, synthetic_chain

TODAY = date(2024, 3, 13)


def closes(n=400, vol=0.3, seed=3):
    rng = np.random.default_rng(seed)
    return 100.0 * np.exp(np.cumsum(rng.normal(0, vol / math.sqrt(252), n)))


def test_atm_iv_of_a_flat_smile_is_the_flat_vol():
    view = analyse_chain(synthetic_chain(atm=0.42, skew=0.0, spread=0.0), AT)
    assert atm_iv(view) == pytest.approx(0.42, abs=1e-6)
    assert skew_25d(view) == pytest.approx(0.0, abs=1e-6)


def test_skew_is_positive_when_puts_are_richer():
    view = analyse_chain(synthetic_chain(atm=0.30, skew=0.25, spread=0.0), AT)
    s = skew_25d(view)
    assert s is not None and s > 0.02
    # the 25-delta strikes sit roughly 0.6 standard deviations either side: skew ~ 0.25 * 2 * 0.6 * sigma sqrt(T)
    assert s == pytest.approx(0.25 * 1.2 * 0.30 * math.sqrt(view.T), rel=0.25)
    # ATM is unaffected by a skew that pivots at the forward
    assert atm_iv(view) == pytest.approx(0.30, abs=1e-6)


def test_constant_maturity_interpolates_total_variance():
    # 20 days at 40 %, 40 days at 30 %: variance-time halfway, 30 days
    v = constant_maturity([(20.0, 0.40), (40.0, 0.30)], 30.0, variance=True)
    assert v == pytest.approx(math.sqrt((0.16 * 20 + 0.5 * (0.09 * 40 - 0.16 * 20)) / 30), abs=1e-12)
    assert constant_maturity([(20.0, 0.40), (40.0, 0.30)], 30.0, variance=False) == pytest.approx(0.35)
    assert constant_maturity([(45.0, 0.3), (60.0, 0.2)], 30.0, variance=True) == 0.3  # flat before the first
    assert constant_maturity([(5.0, 0.3), (10.0, 0.2)], 30.0, variance=True) == 0.2  # flat after the last
    assert constant_maturity([], 30.0, variance=True) is None


def test_rank_and_percentile():
    assert rank_and_percentile([0.2, 0.3, 0.4], 0.3) == (50.0, pytest.approx(100 / 3, abs=0.01))
    assert rank_and_percentile([0.2, 0.3, 0.4], 0.5) == (100.0, 100.0)
    assert rank_and_percentile([0.2, 0.3, 0.4], 0.1) == (0.0, 0.0)


def term_views(atm_near=0.50, atm_far=0.30):
    """Three expirations whose ATM IV falls with maturity (backwardation) unless told otherwise."""
    exps = [date(2024, 3, 28), date(2024, 4, 19), date(2024, 6, 21)]
    out = []
    for e in exps:
        t = (e - TODAY).days
        atm = atm_near + (atm_far - atm_near) * (t - 15) / (100 - 15)
        out.append(analyse_chain(synthetic_chain(expiration=e, atm=atm, skew=0.1, spread=0.0), AT))
    return out


def test_regime_with_short_history_uses_the_labelled_hv_proxy():
    c = closes()
    r = vol_regime("XYZ", term_views(), c, [], as_of=AT, today=TODAY, sources=["test"], spot=100.0)
    assert r.rank_basis == "hv_proxy" and r.iv_rank is None and r.iv_percentile is None
    assert r.hv_rank_proxy is not None and 0 <= r.hv_rank_proxy <= 100
    assert "proxy" in r.note and f"{MIN_HISTORY}" in r.note
    series = hv(c, 20)[-252:]
    series = series[np.isfinite(series)]
    assert (r.hv_rank_proxy, r.hv_percentile_proxy) == rank_and_percentile(series[:-1], hv_set(c)["hv20"])
    assert (r.hv20, r.hv60, r.hv120) == tuple(hv_set(c)[k] for k in ("hv20", "hv60", "hv120"))
    assert r.iv_hv_ratio == pytest.approx(r.atm_iv_30d / r.hv20)
    assert r.term_structure == "backwardation" and r.term_slope < 0
    assert r.skew_25d > 0


def test_regime_with_enough_history_reports_true_iv_rank():
    views = term_views(0.30, 0.36)
    current = atm_iv_30d(views)
    hist = [(TODAY - timedelta(days=i + 1), 0.20 + 0.002 * (i % 50)) for i in range(MIN_HISTORY + 20)]
    r = vol_regime("XYZ", views, closes(), hist, as_of=AT, today=TODAY, sources=["test"], spot=100.0)
    assert r.rank_basis == "iv_history" and r.hv_rank_proxy is None
    assert r.atm_iv_30d == pytest.approx(current)
    assert (r.iv_rank, r.iv_percentile) == rank_and_percentile([v for _, v in hist], current)
    assert r.history_days == len(hist)
    assert r.term_structure == "contango" and r.term_slope > 0
    # today's own row (if stored) and rows older than a year do not count
    stale = hist + [(TODAY, 0.99), (TODAY - timedelta(days=400), 5.0)]
    assert vol_regime("XYZ", views, closes(), stale, as_of=AT, today=TODAY, sources=[], spot=100.0).iv_rank == r.iv_rank


def test_atm_30d_is_interpolated_between_bracketing_expirations():
    views = term_views()
    pts = [(v.dte, atm_iv(v)) for v in views]
    assert atm_iv_30d(views) == pytest.approx(constant_maturity(pts, 30.0, variance=True))
    lo = min(p[1] for p in pts)
    hi = max(p[1] for p in pts)
    assert lo < atm_iv_30d(views) < hi


def test_no_chains_and_no_history_says_so():
    r = vol_regime("XYZ", [], closes(30), [], as_of=AT, today=TODAY, sources=[], spot=100.0)
    assert r.atm_iv_30d is None and r.regime == "unknown" and r.rank_basis == "none"
    assert "no ATM IV" in r.note


def test_expirations_for_regime_keeps_the_brackets():
    exps = [TODAY + timedelta(days=d) for d in (0, 2, 9, 16, 23, 30, 37, 44, 58, 72, 100, 191, 310, 675)]
    picked = expirations_for_regime(exps, TODAY, max_count=5)
    days = [(e - TODAY).days for e in picked]
    assert 0 not in days and len(picked) <= 5
    assert 23 in days and 30 in days  # around 30
    assert 72 in days and 100 in days  # around 90
