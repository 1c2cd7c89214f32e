"""The backtest replays the planner without look-ahead: poisoned future bars change nothing, and each
decision equals what the planner answers on bars fetched live at that moment."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest

from analytics import planner
from core.errors import UserError
from analytics.panel import Panel
from analytics.sessions import schedule, session_info
from bot.backtesting import (
    BacktestSpec,
    backtest,
    build_history,
    check_spec,
    decision_columns,
    load_history,
    run,
    run_columns,
)
from providers.sim import SimMarket

NOW = datetime(2024, 3, 29, 22, 0, tzinfo=timezone.utc)
SYMBOLS = ("TSLA", "SPY", "NVDA")
START = datetime(2024, 3, 11, 13, 30, tzinfo=timezone.utc)
END = datetime(2024, 3, 14, 20, 0, tzinfo=timezone.utc)
#: The poisoning point: Wednesday 2024-03-13 11:30 ET, a decision time.
CUT = datetime(2024, 3, 13, 15, 30, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def market():
    return SimMarket(seed=0, now=lambda: NOW)


@pytest.fixture(scope="module")
def spec():
    return check_spec(BacktestSpec(SYMBOLS, "intraday", START, END, strategy="all", every=3))


@pytest.fixture(scope="module")
def history(market, spec):
    import asyncio

    return asyncio.run(load_history(market, spec, now=NOW))


def _poisoned(history, cut_ns: int):
    """The same history with every bar that is not complete at `cut_ns` replaced by NaN."""
    ex = history.exec
    bad = ex.index.asi8 >= cut_ns
    arrays = {c: np.where(bad[None, :], np.nan, getattr(ex, c)) for c in ("open", "high", "low", "close", "volume")}
    exec_p = Panel(ex.symbols, ex.interval, ex.index, **arrays)
    if "1D" not in history.derived or history.derived["1D"].source != "exec" or not ex.intraday:
        return build_history(history.style, exec_p, None, history.sources, history.data_end_ns)
    daily = history.derived["1D"].full
    sch = schedule()
    days = daily.index.asi8
    closes = sch.closes[np.clip(np.searchsorted(sch.opens, days), 0, len(sch.opens) - 1)]
    dbad = closes > cut_ns
    darr = {c: np.where(dbad[None, :], np.nan, getattr(daily, c)) for c in ("open", "high", "low", "close", "volume")}
    daily_p = Panel(daily.symbols, "1D", daily.index, **darr)
    return build_history(history.style, exec_p, daily_p, history.sources, history.data_end_ns)


@pytest.fixture(scope="module")
def swing(market):
    import asyncio

    spec = check_spec(BacktestSpec(SYMBOLS, "swing", START, END + timedelta(days=2), strategy="all"))
    return asyncio.run(load_history(market, spec, now=NOW)), spec


def test_poisoned_future_bars_give_the_same_swing_plans(swing):
    history, spec = swing
    assert history.derived["1D"].full.n_bars > 400  # daily bars from the market, today's from the hour bars
    test_poisoned_future_bars_give_the_same_plans(history, spec, min_plans=1)


def test_poisoned_future_bars_give_the_same_plans(history, spec, min_plans=3):
    cut_ns = int(pd.Timestamp(CUT).value)
    cols = decision_columns(history, spec)
    upto = cols[history.stamps[cols] <= cut_ns]
    assert len(upto) >= 10 and history.stamps[upto[-1]] == cut_ns
    clean = history
    dirty = _poisoned(history, cut_ns)
    # what the planner sees is identical, bar for bar, at every decision up to the cut...
    for i in upto[-6:]:
        a, b = clean.panels_at(int(i)), dirty.panels_at(int(i))
        assert a.keys() == b.keys()
        for iv in a:
            assert a[iv].index.equals(b[iv].index)
            for c in ("open", "high", "low", "close", "volume"):
                np.testing.assert_array_equal(getattr(a[iv], c), getattr(b[iv], c), err_msg=f"{iv} {c}")
            assert not np.isnan(a[iv].close).any()
    # ...so the plans are too
    _, _, plans_clean = run_columns(clean, spec, upto, keep_plans=True)
    _, _, plans_dirty = run_columns(dirty, spec, upto, keep_plans=True)
    assert len(plans_clean) >= min_plans
    assert [p.model_dump() for p in plans_clean] == [p.model_dump() for p in plans_dirty]


def _comparable(plan) -> dict:
    """A plan without the words that name the levels behind each target.

    When levels of a target's cluster tie in strength, the planner may name a different few of
    them in a one-row and a many-row evaluation; every number of the plan agrees.
    """
    d = plan.model_dump()
    d.pop("summary")
    d["targets"] = [{k: v for k, v in t.items() if k != "reason"} for t in d["targets"]]
    return d


async def _check_live(history, spec, market, every: int, count: int) -> int:
    from bot.planning import fetch_style_bars

    cols = decision_columns(history, spec)
    checked = 0
    for i in cols[::every][:count]:
        t = pd.Timestamp(history.stamps[i], tz="UTC").to_pydatetime()
        ev = planner.evaluate(history.panels_at(int(i)), spec.style)
        for row, sym in enumerate(spec.symbols):
            # the bars /plan fetches at t, and the planner over them
            bars = await fetch_style_bars(market, sym, spec.style, t)
            live = planner.plan_symbol(sym, spec.style, {iv: b.df for iv, b in bars.items()}, as_of=t,
                                       session=session_info(t).to_dict(), sources=["x"])
            got = live.result.plan
            if ev.best[row] < 0:
                assert got is None, (sym, t)
                continue
            mine = planner.build_plan(ev, row, as_of=t, session_status="open", sources=["x"])
            assert got is not None, (sym, t)
            assert _comparable(mine) == _comparable(got), (sym, t)
            checked += 1
    return checked


async def test_each_decision_equals_what_plan_would_have_said_live(history, spec, market):
    assert await _check_live(history, spec, market, 9, 6) >= 3


async def test_each_swing_decision_equals_the_live_plan(swing, market):
    history, spec = swing
    assert await _check_live(history, spec, market, 5, 5) >= 1


@pytest.fixture(scope="module")
def sequential(history, spec):
    return run(history, spec, workers=1)


async def test_a_run_resolves_every_plan_and_keeps_one_trade_per_slot(sequential):
    res = sequential
    assert res.plans == len(res.outcomes) > 10 and res.decisions > 0
    for o in res.outcomes:
        assert START <= o.planned_at < END
        if o.status == "closed":
            # day styles are flat by the close of the session they were planned in
            assert session_info(o.exited_at - timedelta(seconds=1)).session_date == session_info(o.planned_at).session_date
    by_slot: dict[tuple[str, str], list] = {}
    for o in res.outcomes:
        by_slot.setdefault((o.symbol, o.strategy), []).append(o)
    for outs in by_slot.values():
        for a, b in zip(outs, outs[1:]):
            if a.status == "closed":
                assert b.planned_at >= a.exited_at
    rep = res.summary()
    assert rep.overall.plans == res.plans and rep.calibration.n > 0


async def test_parallel_run_of_whole_sessions_matches_the_sequential_one(history, spec, sequential):
    seen = []
    b = run(history, spec, workers=2, parallel_min=1, progress=lambda done, total: seen.append((done, total)))
    a = sequential
    assert seen and seen[-1][0] == seen[-1][1] == len(decision_columns(history, spec))
    assert [o.model_dump() for o in a.outcomes] == [o.model_dump() for o in b.outcomes]


async def test_best_and_single_strategy_runs(market):
    s = BacktestSpec(("SPY",), "intraday", START, START + timedelta(days=2), strategy="best", every=6)
    best = await backtest(market, s, now=NOW, workers=1)
    assert all(o.symbol == "SPY" for o in best.outcomes)
    one = await backtest(market, BacktestSpec(("SPY", "TSLA"), "intraday", START, END, strategy="orb", every=3), now=NOW, workers=1)
    assert {o.strategy for o in one.outcomes} <= {"orb"}


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"strategy": "moonshot"}, "does not serve"),
        ({"strategy": "orb", "style": "swing"}, "does not serve"),
        ({"style": "yolo"}, "style"),
        ({"symbols": ()}, "at least one symbol"),
        ({"end": START}, "after its start"),
        ({"every": 0}, "--every"),
    ],
)
def test_bad_specs_are_one_clear_line(kwargs, fragment):
    base = dict(symbols=SYMBOLS, style="intraday", start=START, end=END)
    with pytest.raises(UserError, match=fragment):
        check_spec(BacktestSpec(**{**base, **kwargs}))


def test_batched_days_give_the_same_outcomes_as_one_decision_at_a_time(market):
    """Stacking decisions of many days into one planner call changes nothing, across a half day too."""
    import asyncio

    from bot.backtesting import run_columns_batched, structure_keys

    # 2023-11-24 closed at 13:00 ET: windows reaching back over it have another shape
    spec = check_spec(BacktestSpec(("SPY", "TSLA"), "intraday", datetime(2023, 11, 20, 14, 0, tzinfo=timezone.utc),
                                   datetime(2023, 12, 1, 21, 0, tzinfo=timezone.utc), strategy="all", every=6))
    history = asyncio.run(load_history(market, spec, now=NOW))
    cols = decision_columns(history, spec)
    keys = structure_keys(history, cols)
    from collections import Counter

    shared = Counter(keys).most_common(1)[0][1]
    # the three sessions before the half day share shapes; the ones after each have their own
    assert shared >= 3 and len(set(keys)) > len(keys) / 2
    one, _, _ = run_columns(history, spec, cols)
    many, decisions = run_columns_batched(history, spec, cols)
    assert decisions <= len(cols) and len(one) > 20
    key = lambda o: (o.planned_at, o.symbol, o.strategy)  # noqa: E731
    assert [o.model_dump() for o in sorted(one, key=key)] == [o.model_dump() for o in sorted(many, key=key)]
