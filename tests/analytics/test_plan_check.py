"""A trader's own plan checked against levels; the reach of a style's horizon; how long a plan stays valid."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from analytics.models import Level, Plan, Target
from analytics.plan_check import PRIOR_LABEL, check_plan, t1_probability
from analytics.plan_window import expired_reason, expires_at, plan_expires_at
from analytics.planner import Candidates, pick_targets
from analytics.reach import horizon_bars, reach, reach_from_atr, reach_from_iv
from core.errors import UserError

AT = datetime(2024, 3, 14, 14, 15, tzinfo=UTC)


def lv(label: str, price: float) -> Level:
    return Level(kind="swing_high", price=price, label=label)


LEVELS = [
    lv("ORH", 191.0),
    lv("PDH", 193.5),
    lv("1D swing high", 197.0),
    lv("PDL", 186.6),  # just beyond a long's stop at 187
    lv("VWAP", 187.3),  # between the stop and the entry
]


def check(entry=190.0, stop=187.0, targets=(195.0, 200.0), levels=LEVELS, atr=1.0, last=190.2, reach_px=12.0):
    return check_plan(
        symbol="AAPL",
        style="intraday",
        entry=entry,
        stop=stop,
        targets=list(targets),
        levels=levels,
        atr=atr,
        last=last,
        reach=reach_px,
        reach_basis="ATR",
        as_of=AT,
    )


def test_a_long_is_checked_target_by_target_with_levels_in_the_way_and_the_prior():
    c = check()
    assert c.direction == "long" and c.risk == 3.0 and c.stop_atr == 3.0
    t1, t2 = c.targets
    assert (t1.rr, t1.band) == (pytest.approx(5 / 3, abs=0.01), "fair")
    assert (t2.rr, t2.band) == (pytest.approx(10 / 3, abs=0.01), "excellent")
    # T1 lists what lies between the entry and it; T2 what lies between T1 and T2
    assert t1.in_the_way == ["ORH 191.00", "PDH 193.50"] and t2.in_the_way == ["1D swing high 197.00"]
    # the no-edge prior: T1 at R multiples of the risk comes first with probability 1/(1+R)
    assert c.probability == pytest.approx(1 / (1 + t1.rr), abs=1e-3) and c.probability_basis == PRIOR_LABEL
    assert "no-edge prior" in c.summary and "not a forecast" in c.summary
    # the VWAP between stop and entry shelters the stop; the PDL just beyond it draws price into the stop
    assert any(n.startswith("VWAP 187.30") and "must break before the stop" in n for n in c.near_stop)
    assert any(n.startswith("PDL 186.60") and "tags the stop" in n for n in c.near_stop)
    assert "Near the stop" in c.summary and "R:R bands" in c.summary


def test_a_short_is_read_from_the_stop_above_the_entry_and_targets_sorted_as_price_meets_them():
    c = check(entry=190.0, stop=192.0, targets=(184.0, 187.0), last=189.9)
    assert c.direction == "short" and [t.price for t in c.targets] == [187.0, 184.0]
    assert c.targets[0].rr == pytest.approx(1.5) and c.targets[1].rr == pytest.approx(3.0)
    assert c.targets[0].in_the_way == ["VWAP 187.30"]


def test_targets_beyond_the_reach_are_flagged_in_words():
    c = check(targets=(195.0, 215.0), reach_px=12.0)
    assert [t.beyond_reach for t in c.targets] == [False, True]
    assert any("215.00 lies beyond the reach of one session (about 12.00, from ATR)" in w for w in c.warnings)
    assert "beyond the reach of one session" in c.summary


@pytest.mark.parametrize(
    ("entry", "stop", "targets", "words"),
    [
        (190.0, 187.0, (185.0,), "target 185.00 is below the entry 190.00"),
        (190.0, 192.0, (195.0,), "this is a short, so targets go below it"),
        (190.0, 190.0, (195.0,), "the stop equals the entry"),
        (1900.0, 1890.0, (1950.0,), "far from AAPL's last price"),
        (190.0, -1.0, (195.0,), "the stop must be a positive price"),
        (190.0, 187.0, (), "give at least one target"),
    ],
)
def test_a_plan_that_cannot_be_one_is_one_clear_line(entry, stop, targets, words):
    with pytest.raises(UserError) as exc:
        check(entry=entry, stop=stop, targets=targets)
    assert words in exc.value.message and "\n" not in exc.value.message


def test_stop_distance_warnings_say_noise_or_too_wide():
    assert any("inside ordinary noise" in w for w in check(stop=189.8, targets=(191.5,)).warnings)
    assert any("wider than 3 ATR" in w for w in check(stop=185.0, targets=(200.0,)).warnings)


def test_the_prior_is_one_small_function():
    assert t1_probability(1.0) == (0.5, PRIOR_LABEL)
    assert t1_probability(3.0)[0] == pytest.approx(0.25)


# ---------------------------------------------------------------------------- reach


def test_reach_grows_with_the_horizon_and_prefers_implied_volatility():
    assert horizon_bars("intraday", "5m") == 78 and horizon_bars("swing", "1h") == pytest.approx(65)
    assert horizon_bars("leaps", "1D") == 126
    day = float(reach_from_atr(1.0, "intraday", "5m"))
    assert day == pytest.approx(1.5 * (1 / 1.6) * np.sqrt(78))  # 1.5 standard deviations of a session's move
    assert float(reach_from_atr(1.0, "scalp", "1m")) < day
    # 30% IV on a $100 stock: one session's expected move is 100 x 0.30 / sqrt(252); the reach 1.5 times that
    assert reach_from_iv(100.0, 0.30, "intraday") == pytest.approx(1.5 * 100 * 0.30 / np.sqrt(252))
    assert reach(100.0, 1.0, "intraday", "5m", 0.30)[1] == "implied volatility"
    assert reach(100.0, 1.0, "intraday", "5m", None)[1] == "ATR"
    assert reach(100.0, 1.0, "intraday", "5m", float("nan"))[1] == "ATR"


def test_pick_targets_leaves_out_levels_beyond_reach_and_says_which():
    prices = np.array([[102.0, 104.0, 109.0]])  # R at risk 1: 2R, 4R, 9R
    order = np.argsort(prices, axis=1)
    up = Candidates(prices, np.full(prices.shape, -1), order, np.take_along_axis(prices, order, axis=1))
    down = Candidates(prices, np.full(prices.shape, -1), order[:, ::-1], np.take_along_axis(prices, order[:, ::-1], axis=1))
    cands = {1: up, -1: down}
    args = (cands, np.array([1]), np.array([100.0]), np.array([1.0]), np.array([1.0]), 1.5)
    free = pick_targets(*args)
    assert list(free.price[0]) == [102.0, 104.0, 109.0]
    held = pick_targets(*args, reach=np.array([5.0]))
    assert list(held.price[0][:2]) == [102.0, 104.0] and np.isnan(held.price[0][2])
    assert held.beyond is not None and held.beyond[0] == pytest.approx(9.0)
    none = pick_targets(*args, reach=np.array([1.0]))
    assert np.isnan(none.price[0]).all() and none.beyond[0] == pytest.approx(2.0)


# ---------------------------------------------------------------------------- plan window


def plan(style="intraday", as_of=AT, session="open") -> Plan:
    return Plan(
        plan_id="P-ABC123",
        symbol="AAPL",
        style=style,
        strategy="orb",
        direction="long",
        interval="5m",
        entry=190.0,
        stop=187.0,
        targets=[Target(price=195.0, rr=1.7, reason="level")],
        confidence=0.6,
        confidence_factors={},
        confluence=[],
        invalidation="",
        as_of=as_of,
        session=session,
        sources=[],
    )


def test_a_plan_lasts_its_session_or_the_next_one_when_made_while_closed():
    # Thursday 2024-03-14 10:15 ET, market open: that day's close
    assert plan_expires_at("intraday", AT, "open") == datetime(2024, 3, 14, 20, 0, tzinfo=UTC)
    # made on Saturday as of Friday's close: Monday's close
    friday_close = datetime(2024, 3, 15, 20, 0, tzinfo=UTC)
    assert plan_expires_at("intraday", friday_close, "closed") == datetime(2024, 3, 18, 20, 0, tzinfo=UTC)
    # Good Friday 2024-03-29 is a holiday: a plan made Thursday evening is for Monday 2024-04-01
    assert plan_expires_at("intraday", datetime(2024, 3, 28, 20, 0, tzinfo=UTC), "post") == datetime(
        2024, 4, 1, 20, 0, tzinfo=UTC
    )
    # a swing plan waits five sessions for its entry: Thu, Fri, Mon, Tue, Wed
    assert plan_expires_at("swing", AT, "open") == datetime(2024, 3, 20, 20, 0, tzinfo=UTC)


def test_expired_reason_names_the_time_and_the_rule():
    p = plan()
    assert expires_at(p) == datetime(2024, 3, 14, 20, 0, tzinfo=UTC)
    assert expired_reason(p, datetime(2024, 3, 14, 19, 59, tzinfo=UTC)) is None
    why = expired_reason(p, datetime(2024, 3, 15, 14, 0, tzinfo=UTC))
    assert why == "plan P-ABC123 expired Thu 2024-03-14 16:00 ET (an intraday plan lasts the session it was made for)"


def test_a_fit_of_the_style_calibrates_the_chance_and_says_so():
    from analytics.calibration import OddsFit, OddsNode

    at = datetime(2024, 3, 1, tzinfo=UTC)
    # intraday plans reached T1 far less often than the prior said: the style's offset is negative
    fit = OddsFit(
        fitted_at=at,
        n=400,
        hits=60,
        nodes={
            "*": OddsNode(n=400, hits=60, expected=130.0, offset=-0.5),
            "intraday": OddsNode(n=300, hits=40, expected=100.0, offset=-0.9),
        },
    )
    prior, label = t1_probability(2.0)
    calibrated, basis = t1_probability(2.0, "intraday", fit)
    assert label == PRIOR_LABEL and prior == pytest.approx(1 / 3)
    assert calibrated < prior and "300 past intraday plans" in basis
    # a style the fit never saw keeps the labelled prior
    assert t1_probability(2.0, "leaps", fit) == (prior, PRIOR_LABEL)
