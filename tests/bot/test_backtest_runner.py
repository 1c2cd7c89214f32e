"""Backtests against a market: each decision equals what /plan answers on bars fetched live at that moment,
paged fetches arrange the same history, and runs over worker processes match the one-process run."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from analytics import planner
from analytics.backtest_engine import BacktestSpec, History, check_spec, decision_columns
from analytics.bars import empty_bars
from analytics.sessions import session_info
from bot import backtest_runner
from bot.backtest_runner import backtest, load_history, run
from core.errors import NotFoundError
from providers.base import Bars
from providers.sim import SimMarket

#: The loaded histories and the one-process run are shared by the module: under xdist these tests run in one process.
pytestmark = pytest.mark.xdist_group("backtest-runner")

NOW = datetime(2024, 3, 29, 22, 0, tzinfo=UTC)
SYMBOLS = ("TSLA", "SPY", "NVDA")
START = datetime(2024, 3, 11, 13, 30, tzinfo=UTC)
END = datetime(2024, 3, 14, 20, 0, tzinfo=UTC)


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


@pytest.fixture(scope="module")
def swing(market):
    import asyncio

    spec = check_spec(BacktestSpec(SYMBOLS, "swing", START, END + timedelta(days=2), strategy="all"))
    return asyncio.run(load_history(market, spec, now=NOW)), spec


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
            live = planner.plan_symbol(
                sym, spec.style, {iv: b.df for iv, b in bars.items()}, as_of=t, session=session_info(t).to_dict(), sources=["x"]
            )
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
    assert history.derived["1D"].full.n_bars > 400  # daily bars from the market, today's from the hour bars
    assert await _check_live(history, spec, market, 5, 5) >= 1


def _same_history(a: History, b: History) -> None:
    assert a.sources == b.sources and a.data_end_ns == b.data_end_ns and a.order == b.order
    for pa, pb in [(a.exec, b.exec), *((a.derived[iv].full, b.derived[iv].full) for iv in a.order)]:
        assert pa.index.equals(pb.index) and pa.symbols == pb.symbols
        for c in ("open", "high", "low", "close", "volume"):
            np.testing.assert_array_equal(getattr(pa, c), getattr(pb, c))


async def test_paged_fetches_arrange_the_same_history(history, spec, market, monkeypatch):
    monkeypatch.setattr(backtest_runner, "FETCH_DAYS", 5)
    calls: list[tuple[str, datetime, datetime]] = []

    class Counting:
        name = "sim"

        async def bars(self, symbol, interval, start, end):
            calls.append((interval, start, end))
            return await market.bars(symbol, interval, start, end)

    paged = await load_history(Counting(), spec, now=NOW)
    windows = [c for c in calls if c[0] == "5m"]
    assert len(windows) > 10 * len(SYMBOLS)  # the warm-up alone is months of 5-minute bars
    assert all(e - s <= timedelta(days=5) for _, s, e in windows)
    _same_history(paged, history)


async def test_a_symbol_without_bars_is_named():
    class Empty:
        name = "empty"

        async def bars(self, symbol, interval, start, end):
            return Bars(symbol, interval, empty_bars(), end, "empty")

    with pytest.raises(NotFoundError, match="no 5m bars for SPY"):
        await load_history(Empty(), check_spec(BacktestSpec(("SPY",), "intraday", START, END)), now=NOW)


@pytest.fixture(scope="module")
def sequential(history, spec):
    return run(history, spec, workers=1)


def test_a_run_counts_its_bars_and_time(history, sequential):
    assert sequential.bars == history.exec.n_bars * len(SYMBOLS)
    assert sequential.sources == history.sources and sequential.elapsed_s > 0


async def test_parallel_run_of_whole_sessions_matches_the_sequential_one(history, spec, sequential):
    seen = []
    b = run(history, spec, workers=2, parallel_min=1, progress=lambda done, total: seen.append((done, total)))
    a = sequential
    assert seen and seen[-1][0] == seen[-1][1] == len(decision_columns(history, spec))
    assert len(seen) > 1  # the four sessions went to more than one chunk
    assert [o.model_dump() for o in a.outcomes] == [o.model_dump() for o in b.outcomes]
    assert a.decisions == b.decisions


async def test_best_and_single_strategy_runs(market):
    s = BacktestSpec(("SPY",), "intraday", START, START + timedelta(days=2), strategy="best", every=6)
    best = await backtest(market, s, now=NOW, workers=1)
    assert all(o.symbol == "SPY" for o in best.outcomes)
    one = await backtest(
        market, BacktestSpec(("SPY", "TSLA"), "intraday", START, END, strategy="orb", every=3), now=NOW, workers=1
    )
    assert {o.strategy for o in one.outcomes} <= {"orb"}
