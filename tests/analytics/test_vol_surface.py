"""The IV surface from hand-made chains with a known smile; the regime's term structure and skew are read from it."""

from __future__ import annotations

import math
from datetime import date

import numpy as np
import pytest

from analytics.chains import analyse_chain
from analytics.models import OptionChain
from analytics.vol_surface import GRID_MONEYNESS, MIN_BID, build_surface, quoted_smile
from analytics.volatility import vol_regime
from tests.analytics.test_options import AT, synthetic_chain
from tests.analytics.test_volatility import closes

EXPIRIES = (date(2024, 3, 22), date(2024, 4, 19), date(2024, 6, 21))


def views(skew: float = 0.2):
    # the ATM level falls with maturity (backwardation), the skew is the same slope in log-moneyness
    return [analyse_chain(synthetic_chain(expiration=e, atm=0.40 - 0.05 * i, skew=skew), AT) for i, e in enumerate(EXPIRIES)]


def test_the_grid_is_iv_by_strike_and_expiry_from_the_quotes():
    s = build_surface("XYZ", views(), as_of=AT, spot=100.0, sources=["chains: test"])
    assert [sl.expiration for sl in s.slices] == list(EXPIRIES)
    assert s.grid_moneyness == list(GRID_MONEYNESS) and s.grid_strikes[0] == 80.0 and s.grid_strikes[-1] == 120.0
    assert len(s.grid_iv) == 3 and all(len(row) == len(GRID_MONEYNESS) for row in s.grid_iv)
    for sl, row, v in zip(s.slices, s.grid_iv, views(), strict=True):
        # the known smile, atm - skew * ln(K/F), at every grid strike inside the quoted (bid) strikes; nothing outside
        for k, iv in zip(s.grid_strikes, row, strict=True):
            if min(sl.strikes) <= k <= max(sl.strikes):
                assert iv == pytest.approx(sl.atm_iv - 0.2 * math.log(k / v.forward), abs=2e-3)
            else:
                assert iv is None
        assert sl.atm_iv == pytest.approx(0.40 - 0.05 * EXPIRIES.index(sl.expiration), abs=1e-3)
        # puts richer than calls by delta too
        p10, p25, atm, c25, c10 = sl.delta_iv
        assert p10 > p25 > atm > c25 > c10
        assert sl.skew_25d == pytest.approx(p25 - c25)
    # the week's chain has bids from 82.5 to 117.5 only: its 80 and 120 cells are empty
    assert s.grid_iv[0][0] is None and s.grid_iv[0][-1] is None and None not in s.grid_iv[-1]
    assert s.delta_labels == ["10Δ put", "25Δ put", "ATM", "25Δ call", "10Δ call"]


def test_strikes_outside_the_quotes_are_left_empty_not_extrapolated():
    s = build_surface("XYZ", views(), as_of=AT, spot=150.0, sources=[])
    # the June chain is bid up to 140: at spot 150 the grid runs 120-180, and stops there
    row = s.grid_iv[-1]
    assert [v is not None for v in row] == [k <= max(s.slices[-1].strikes) for k in s.grid_strikes]
    assert row[0] is not None and row[-1] is None


def test_a_zero_bid_is_no_price_and_gives_no_iv():
    chain = synthetic_chain(expiration=EXPIRIES[1], skew=0.2)
    # the 60-70 puts lose their bids (a provider still prints an IV for them)
    dead = [c.model_copy(update={"bid": 0.0}) if c.right == "put" and c.strike <= 70 else c for c in chain.contracts]
    view = analyse_chain(OptionChain(**{**chain.model_dump(), "contracts": dead}), AT)
    strikes = quoted_smile(view)["strike"].to_numpy()
    assert 70.0 not in strikes and 100.0 in strikes
    # a put bid at a tick or two (under MIN_BID) prices no point either: its IV would be mostly rounding
    puts = {c.strike: c.bid for c in dead if c.right == "put" and c.strike < 100}
    pennies = [k for k, b in puts.items() if 0 < b < MIN_BID]
    assert pennies and not set(pennies) & set(strikes.tolist())
    assert strikes.min() == min(k for k, b in puts.items() if b >= MIN_BID)


def test_the_regime_reads_its_term_structure_and_skew_from_the_same_surface():
    vs = views()
    v = vol_regime("XYZ", vs, closes(), [], as_of=AT, today=AT.date(), sources=["chains: test"], spot=100.0)
    s = v.surface
    assert s is not None and [p.expiration for p in v.term] == [sl.expiration for sl in s.slices]
    assert [p.atm_iv for p in v.term] == [sl.atm_iv for sl in s.slices]
    assert [p.skew_25d for p in v.term] == [sl.skew_25d for sl in s.slices]
    assert v.term_structure == "backwardation" and v.skew_25d > 0
    # the surface stays out of the regime's JSON (it is large); /vol SYMBOL surface answers with it
    assert "surface" not in v.model_dump(mode="json")


def test_no_quotes_no_surface_rows():
    s = build_surface("XYZ", [], as_of=AT, spot=100.0, sources=[])
    assert s.slices == [] and s.grid_iv == []
    assert np.isfinite(s.spot)
