"""The planner: properties over many symbols, styles and moments of the offline market, and its target rules."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from analytics.intervals import STYLE_INTERVALS
from analytics.levels import LevelBook
from analytics.panel import Panel
from analytics.planner import (
    MAX_RR,
    Candidates,
    candidates,
    make_plan_id,
    nearest_in_rows,
    pick_targets,
    plan_symbol,
    rr_band,
    validate_style,
)
from analytics.scanner import scan_frames
from analytics.sessions import last_sessions, market_time, session_info
from analytics.strategies import by_id
from core.errors import UserError
from providers.sim import SimMarket

LOOKBACK = {"1m": 5, "5m": 10, "15m": 20, "1h": 60, "4h": 250, "1D": 500, "1W": 1300}
KNOWN = ["TSLA", "NVDA", "AAPL", "SPY", "QQQ", "AMD", "META", "XOM", "JPM", "COIN", "PLTR", "BAC"]


def fetch(symbol: str, style: str, at: datetime) -> tuple[dict[str, pd.DataFrame], datetime, dict]:
    """The style's bars of `symbol` as the bot fetches them: up to market_time(at), a fresh market each time."""
    end = market_time(at)
    market = SimMarket(seed=0, now=lambda: at)

    async def go():
        out = {}
        for iv in STYLE_INTERVALS[style]:
            start = pd.Timestamp(int(last_sessions(end, LOOKBACK[iv]).opens[0]), tz="UTC").to_pydatetime()
            out[iv] = (await market.bars(symbol, iv, start, end)).df
        return out

    return asyncio.run(go()), end, session_info(at).to_dict()


def check_plan(result, style: str) -> None:
    """The plan invariants: ordering, R:R floors, quality range, odds, ids."""
    if result.plan is None:
        assert result.reason and len(result.reason) > 20
        return
    p = result.plan
    assert p.style == style and p.interval == STYLE_INTERVALS[style][0]
    prices = [t.price for t in p.targets]
    assert 1 <= len(prices) <= 3
    if p.direction == "long":
        assert p.stop < p.entry < prices[0]
        assert prices == sorted(prices) and len(set(prices)) == len(prices)
    else:
        assert p.stop > p.entry > prices[0]
        assert prices == sorted(prices, reverse=True) and len(set(prices)) == len(prices)
    risk = abs(p.entry - p.stop)
    floor = by_id(p.strategy).min_rr
    for t in p.targets:
        assert abs(t.price - p.entry) / risk >= floor - 1e-6
        assert floor - 0.01 <= t.rr <= MAX_RR + 0.01 and t.reason
    assert 0.0 <= p.quality <= 1.0
    assert all(0.0 <= v <= 1.0 for v in p.quality_factors.values()) and len(p.quality_factors) == 7
    # without a fit the odds are the no-edge prior at T1, and the summary leads with them
    assert p.probability == pytest.approx(1 / (1 + abs(p.targets[0].price - p.entry) / abs(p.entry - p.stop)), abs=1e-4)
    assert p.summary.splitlines()[0] == f"T1 before the stop: {p.probability:.0%}, no past outcomes yet: no-edge prior."
    assert re.fullmatch(r"P-[0-9A-Z]{6}", p.plan_id) and p.version == 1
    assert p.invalidation and p.summary and "R:R bands" in p.summary
    assert p.as_of == result.as_of and p.sources == result.sources


moments = st.datetimes(min_value=datetime(2016, 1, 4), max_value=datetime(2024, 6, 28), timezones=st.just(UTC))
symbols = st.one_of(st.sampled_from(KNOWN), st.from_regex(r"[A-Z]{1,4}", fullmatch=True))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(symbol=symbols, style=st.sampled_from(list(STYLE_INTERVALS)), at=moments)
def test_plans_are_ordered_keep_min_rr_and_repeat(symbol, style, at):
    bars, end, session = fetch(symbol, style, at)
    a = plan_symbol(symbol, style, bars, as_of=end, session=session, sources=["bars: sim"]).result
    check_plan(a, style)
    event("plan" if a.plan else "no plan")
    assert a.as_of <= at
    # same input, same plan: bars fetched again from a fresh market give an identical result
    bars2, end2, session2 = fetch(symbol, style, at)
    b = plan_symbol(symbol, style, bars2, as_of=end2, session=session2, sources=["bars: sim"]).result
    assert a.model_dump(mode="json") == b.model_dump(mode="json")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(style=st.sampled_from(["scalp", "intraday"]), day=st.integers(0, 2000), minute=st.integers(0, 389))
def test_intraday_moments_inside_sessions(style, day, minute):
    """Inside regular hours, where most intraday setups live (the random moments above are mostly closed)."""
    sch = last_sessions(datetime(2024, 6, 28, 20, tzinfo=UTC), 2100)
    i = min(day, len(sch.opens) - 1)
    at = pd.Timestamp(int(sch.opens[i]), tz="UTC").to_pydatetime() + timedelta(minutes=minute + 1)
    for symbol in ("TSLA", "SPY"):
        bars, end, session = fetch(symbol, style, at)
        result = plan_symbol(symbol, style, bars, as_of=end, session=session, sources=["bars: sim"]).result
        check_plan(result, style)
        # nothing from after the moment: the plan is as of it and every bar it saw had closed by then
        assert result.as_of == end <= at
        assert all(df.index[-1] < end for df in bars.values() if len(df))
        event("plan" if result.plan else "no plan")


def test_closed_market_plans_as_of_the_last_close():
    saturday = datetime(2024, 3, 16, 15, 0, tzinfo=UTC)
    bars, end, session = fetch("AAPL", "intraday", saturday)
    assert end == datetime(2024, 3, 15, 20, 0, tzinfo=UTC) and session["status"] == "closed"
    a = plan_symbol("AAPL", "intraday", bars, as_of=end, session=session, sources=["bars: sim"]).result
    assert a.as_of == end and a.session["status"] == "closed"
    assert bars["5m"].index[-1] < end
    # a later moment of the same weekend gives the same answer
    bars2, end2, session2 = fetch("AAPL", "intraday", saturday + timedelta(hours=20))
    b = plan_symbol("AAPL", "intraday", bars2, as_of=end2, session=session2, sources=["bars: sim"]).result
    assert (a.plan.model_dump() if a.plan else a.reason) == (b.plan.model_dump() if b.plan else b.reason)


def test_scan_and_plan_agree():
    at = datetime(2024, 3, 14, 14, 15, tzinfo=UTC)
    syms = ["NVDA", "AAPL", "XOM", "QQQ", "TSLA", "META"]
    frames, ends = {}, set()
    for s in syms:
        frames[s], end, session = fetch(s, "intraday", at)
        ends.add(end)
    (end,) = ends
    result, plans = scan_frames(frames, "intraday", as_of=end, session=session, sources=["bars: sim"], limit=10)
    assert result.scanned == len(syms) and result.found == len(plans) >= 2
    scores = [c.score for c in result.candidates]
    assert scores == sorted(scores, reverse=True) and [c.rank for c in result.candidates] == list(range(1, len(plans) + 1))
    for plan in plans:
        single = plan_symbol(plan.symbol, "intraday", frames[plan.symbol], as_of=end, session=session, sources=["bars: sim"])
        assert single.result.plan == plan


def test_no_bars_is_a_reason_not_an_error():
    empty = pd.DataFrame(
        {c: pd.Series(dtype="float64") for c in ["open", "high", "low", "close", "volume"]}, index=pd.DatetimeIndex([], tz="UTC")
    )
    at = datetime(2024, 3, 13, 15, tzinfo=UTC)
    r = plan_symbol("ZZZZ", "swing", {"1h": empty}, as_of=at, session={"status": "open"}, sources=[]).result
    assert r.plan is None and "no 1h bars" in r.reason


def test_bad_style_is_one_clear_line():
    assert validate_style(" Swing ") == "swing"
    with pytest.raises(UserError) as e:
        validate_style("weekly")
    assert "accepted: scalp, intraday, swing, leaps" in str(e.value) and "\n" not in str(e.value)


def test_plan_id_is_short_typable_and_deterministic():
    at = datetime(2024, 3, 13, 15, tzinfo=UTC)
    a = make_plan_id("TSLA", "intraday", "orb", at, 251.2, "long")
    assert a == make_plan_id("TSLA", "intraday", "orb", at, 251.2, "long")
    assert re.fullmatch(r"P-[0-9A-HJKMNP-TV-Z]{6}", a)
    assert a != make_plan_id("TSLA", "intraday", "orb", at + timedelta(minutes=5), 251.2, "long")
    assert [rr_band(x) for x in (1.2, 1.5, 2.5, 3.0)] == ["poor", "fair", "good", "excellent"]


# ---------------------------------------------------------------------------- targets on a hand-made book


def _book(levels: list[tuple[float, bool, str]]) -> LevelBook:
    book = LevelBook(n=1)
    for price, htf, label in levels:
        book.add("htf" if htf else "swing_high", label, "1h" if htf else "5m", np.array([price]), 0.8 if htf else 0.5, htf=htf)
    return book.finish()


def test_targets_snap_to_htf_merge_clusters_and_drop_micro_take_profits():
    book = _book(
        [
            (100.8, False, "obstacle"),  # 0.8R: in the way, never a target
            (101.6, False, "5m swing high"),  # within 0.3 ATR of the 1h level: snapped onto 101.7
            (101.7, True, "1h swing high"),
            (103.0, False, "5m high B"),  # 3R
            (103.2, False, "5m high C"),  # merges with 103.0 (closer than 0.5 ATR)
            (108.0, True, "1D swing high"),  # 8R
            (125.0, True, "far"),  # 25R: beyond MAX_RR
        ]
    )
    cands = candidates(book, np.array([1.0]))
    assert cands[1].price[0, 1] == 101.7 and cands[1].snapped_to[0, 1] == 2
    t = pick_targets(cands, np.array([1]), np.array([100.0]), np.array([1.0]), np.array([1.0]), 1.5)
    assert t.price[0].tolist() == [101.7, 103.0, 108.0]
    assert t.rr[0].tolist() == pytest.approx([1.7, 3.0, 8.0])
    assert t.room[0] == pytest.approx(0.8) and t.first_rr[0] == pytest.approx(0.8)
    # a stricter minimum drops the first target rather than moving it
    strict = pick_targets(cands, np.array([1]), np.array([100.0]), np.array([1.0]), np.array([1.0]), 2.0)
    assert strict.price[0, :2].tolist() == [103.0, 108.0] and np.isnan(strict.price[0, 2])
    # shorts read the same book downward: nothing below the entry, no target
    short = pick_targets(cands, np.array([-1]), np.array([100.0]), np.array([1.0]), np.array([1.0]), 1.5)
    assert np.isnan(short.price[0]).all()


def test_nearest_in_rows_matches_brute_force():
    rng = np.random.default_rng(7)
    vals = rng.uniform(10, 500, (40, 25))
    refs = rng.uniform(10, 500, (40, 9))
    refs[rng.random(refs.shape) < 0.3] = np.nan
    vals[rng.random(vals.shape) < 0.1] = np.nan
    refs[5] = np.nan
    col, dist = nearest_in_rows(vals, refs)
    brute = np.abs(vals[:, :, None] - refs[:, None, :])
    brute = np.where(np.isnan(brute), np.inf, brute)
    np.testing.assert_allclose(dist, brute.min(axis=2))
    ok = np.isfinite(dist)
    np.testing.assert_allclose(
        np.take_along_axis(refs, col, axis=1)[ok], np.take_along_axis(refs, brute.argmin(axis=2), axis=1)[ok]
    )


def test_one_symbol_panel_equals_its_row_in_a_wide_panel():
    """The scanner's rows are the planner's single plans: stacking does not change a symbol's numbers."""
    at = datetime(2024, 3, 14, 15, 0, tzinfo=UTC)
    frames = {s: fetch(s, "scalp", at)[0]["1m"] for s in ("AMD", "BAC")}
    wide = Panel.from_frames(frames, "1m")
    one = Panel.from_frame("BAC", frames["BAC"], "1m")
    assert np.array_equal(wide.close[1], one.close[0]) and wide.index.equals(one.index)
    assert isinstance(candidates(_book([(1.0, True, "x")]), np.array([1.0]))[1], Candidates)
