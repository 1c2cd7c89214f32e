"""Position sizing: shares and contracts from a risk amount or a profile, and the bad inputs."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from analytics.money import MAX_MONEY
from analytics.sizing import size_contracts, size_shares
from core.errors import UserError


def test_shares_from_risk_and_stop_distance():
    r = size_shares("TSLA", 250.0, 245.0, risk_amount=500.0)
    assert (r.quantity, r.max_loss, r.notional, r.direction) == (100, 500.0, 25000.0, "long")
    assert r.risk_source == "given" and r.instrument == "shares"
    s = size_shares("TSLA", 250.0, 253.0, risk_amount=500.0)
    assert (s.quantity, s.max_loss, s.direction) == (166, 498.0, "short")


def test_profile_supplies_the_risk():
    r = size_shares("AAPL", 190.0, 187.5, account_size=25_000.0, risk_pct=1.0)
    assert r.risk_amount == 250.0 and r.risk_source == "profile"
    assert r.quantity == 100 and r.risk_pct_of_account == pytest.approx(1.0)
    # an explicit amount wins over the profile, which still gives the share of the account
    g = size_shares("AAPL", 190.0, 187.5, risk_amount=100.0, account_size=25_000.0, risk_pct=1.0)
    assert g.risk_source == "given" and g.quantity == 40 and g.risk_pct_of_account == pytest.approx(0.4)


def test_zero_quantity_is_an_answer_not_an_error():
    r = size_shares("BRK.B", 410.0, 400.0, risk_amount=5.0)
    assert r.quantity == 0 and r.max_loss == 0 and "less than one share" in r.note


@pytest.mark.parametrize(
    "kwargs,needle",
    [
        (dict(entry=250.0, stop=250.0, risk_amount=500.0), "entry equals stop"),
        (dict(entry=250.0, stop=245.0, risk_amount=-5.0), "must be positive"),
        (dict(entry=250.0, stop=245.0, risk_amount=0.0), "must be positive"),
        (dict(entry=250.0, stop=245.0, risk_amount=1e12), "not plausible"),
        (dict(entry=250.0, stop=245.0, risk_amount=float("nan")), "must be a number"),
        (dict(entry=250.0, stop=245.0, risk_amount=float("inf")), "must be a number"),
        (dict(entry=-1.0, stop=245.0, risk_amount=500.0), "entry must be a positive price"),
        (dict(entry=250.0, stop=245.0), "risk profile"),
        (dict(entry=250.0, stop=245.0, risk_amount=50_000.0, account_size=10_000.0, risk_pct=1.0), "more than the whole account"),
        (dict(entry=250.0, stop=245.0, account_size=10_000.0, risk_pct=150.0), "risk %"),
    ],
)
def test_bad_input_is_one_clear_line(kwargs, needle):
    with pytest.raises(UserError) as exc:
        size_shares("TSLA", **kwargs)
    assert needle in exc.value.message and "\n" not in exc.value.message


def test_contracts_from_the_modelled_loss_at_stop():
    r = size_contracts(
        "TSLA", 250.0, 245.0, contract="TSLA240419C00250000", premium=8.4, loss_per_contract=260.0, risk_amount=1000.0
    )
    assert (r.quantity, r.max_loss, r.notional) == (3, 780.0, 2520.0)
    assert r.instrument == "contracts" and "whole premium" in r.note
    with pytest.raises(UserError):
        size_contracts("TSLA", 250.0, 245.0, contract="X", premium=1.0, loss_per_contract=0.0, risk_amount=100.0)


@given(
    entry=st.floats(0.5, 5000.0),
    frac=st.floats(0.001, 0.5),
    long=st.booleans(),
    risk=st.floats(1.0, 1e6),
)
def test_max_loss_never_exceeds_the_risk(entry, frac, long, risk):
    stop = entry * (1 - frac) if long else entry * (1 + frac)
    r = size_shares("XYZ", entry, stop, risk_amount=risk)
    assert r.max_loss <= risk + 0.01
    # one more share would exceed it
    assert (r.quantity + 1) * abs(entry - stop) > risk - 1e-6
    assert r.direction == ("long" if long else "short")
    assert math.isfinite(r.notional) and r.risk_amount <= MAX_MONEY
