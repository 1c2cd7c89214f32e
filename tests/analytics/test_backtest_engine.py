"""The replay engine shows the planner nothing of the future: poisoned future bars change nothing; runs keep
one trade per slot, batching days changes no outcome, and specs, spans and run sizes are checked."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from analytics import backtest_engine as engine
from analytics.backtest_engine import (
    BacktestSpec,
    History,
    HistorySpan,
    arrange_history,
    backtest_result,
    bounded_decision_columns,
    build_history,
    check_spec,
    decision_columns,
    history_span,
    replay,
    run_columns,
    run_columns_batched,
    structure_keys,
    warmup_sessions,
)
from analytics.models import Plan
from analytics.outcomes import TradeOutcome
from analytics.panel import Panel
from analytics.sessions import schedule, session_info
from bot.planning import LOOKBACK_SESSIONS  # the windows the live service shows the planner
from core.errors import UserError
from providers.sim import SimMarket

#: The arranged histories are shared by the module: under xdist these tests run in one process.
pytestmark = pytest.mark.xdist_group("backtest-engine")

NOW = datetime(2024, 3, 29, 22, 0, tzinfo=UTC)
SYMBOLS = ("TSLA", "SPY", "NVDA")
START = datetime(2024, 3, 11, 13, 30, tzinfo=UTC)
END = datetime(2024, 3, 14, 20, 0, tzinfo=UTC)
#: The poisoning point: Wednesday 2024-03-13 11:30 ET, a decision time.
CUT = datetime(2024, 3, 13, 15, 30, tzinfo=UTC)


def _load(market: SimMarket, spec: BacktestSpec) -> History:
    """The history of `spec` from the offline market: every bar of the span in one request per symbol and interval."""
    span = history_span(spec, LOOKBACK_SESSIONS, NOW)

    async def fetch() -> tuple[dict[str, pd.DataFrame], dict[str, pd.DataFrame]]:
        frames: dict[str, pd.DataFrame] = {}
        daily: dict[str, pd.DataFrame] = {}
        for sym in spec.symbols:
            frames[sym] = (await market.bars(sym, spec.exec_interval, span.start, span.end)).df
            if span.daily_start is not None:
                daily[sym] = (await market.bars(sym, "1D", span.daily_start, span.end)).df
        return frames, daily

    frames, daily = asyncio.run(fetch())
    return arrange_history(spec, span, frames, daily, ["sim"], LOOKBACK_SESSIONS)


@pytest.fixture(scope="module")
def market() -> SimMarket:
    return SimMarket(seed=0, now=lambda: NOW)


@pytest.fixture(scope="module")
def spec() -> BacktestSpec:
    return check_spec(BacktestSpec(SYMBOLS, "intraday", START, END, strategy="all", every=3))


@pytest.fixture(scope="module")
def history(market: SimMarket, spec: BacktestSpec) -> History:
    return _load(market, spec)


@pytest.fixture(scope="module")
def swing(market: SimMarket) -> tuple[History, BacktestSpec]:
    spec = check_spec(BacktestSpec(SYMBOLS, "swing", START, END + timedelta(days=2), strategy="all"))
    return _load(market, spec), spec


def _poisoned(history: History, cut_ns: int) -> History:
    """The same history with every bar that is not complete at `cut_ns` replaced by NaN."""
    ex = history.exec
    bad = ex.index.asi8 >= cut_ns
    arrays = {c: np.where(bad[None, :], np.nan, getattr(ex, c)) for c in ("open", "high", "low", "close", "volume")}
    exec_p = Panel(ex.symbols, ex.interval, ex.index, **arrays)
    if "1D" not in history.derived or history.derived["1D"].source != "exec" or not ex.intraday:
        return build_history(history.style, exec_p, None, history.sources, history.data_end_ns, lookback=history.lookback)
    daily = history.derived["1D"].full
    sch = schedule()
    days = daily.index.asi8
    closes = sch.closes[np.clip(np.searchsorted(sch.opens, days), 0, len(sch.opens) - 1)]
    dbad = closes > cut_ns
    darr = {c: np.where(dbad[None, :], np.nan, getattr(daily, c)) for c in ("open", "high", "low", "close", "volume")}
    daily_p = Panel(daily.symbols, "1D", daily.index, **darr)
    return build_history(history.style, exec_p, daily_p, history.sources, history.data_end_ns, lookback=history.lookback)


def _check_poisoned_future_changes_nothing(history: History, spec: BacktestSpec, min_plans: int) -> None:
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


def test_poisoned_future_bars_give_the_same_plans(history: History, spec: BacktestSpec) -> None:
    _check_poisoned_future_changes_nothing(history, spec, min_plans=3)


def test_poisoned_future_bars_give_the_same_swing_plans(swing: tuple[History, BacktestSpec]) -> None:
    history, spec = swing
    assert history.derived["1D"].full.n_bars > 400  # daily bars from the market, today's from the hour bars
    _check_poisoned_future_changes_nothing(history, spec, min_plans=1)


def test_a_poisoned_future_is_seen_when_the_view_reaches_it(history: History, spec: BacktestSpec) -> None:
    """The poisoning does reach the planner's view one bar past the cut: the checks above could fail."""
    cut_ns = int(pd.Timestamp(CUT).value)
    dirty = _poisoned(history, cut_ns)
    after = int(np.searchsorted(history.stamps, cut_ns)) + 1
    seen = dirty.panels_at(after)[history.exec.interval]
    assert np.isnan(seen.close[:, -1]).all()
    assert not np.isnan(history.panels_at(after)[history.exec.interval].close).any()


def test_a_run_resolves_every_plan_and_keeps_one_trade_per_slot(history: History, spec: BacktestSpec) -> None:
    outcomes, decisions = replay(history, spec, bounded_decision_columns(history, spec))
    res = backtest_result(history, spec, outcomes, decisions, elapsed_s=0.0)
    assert res.plans == len(res.outcomes) > 10 and res.decisions > 0
    assert res.outcomes == sorted(res.outcomes, key=lambda o: (o.planned_at, o.symbol, o.strategy))
    for o in res.outcomes:
        assert START <= o.planned_at < END
        if o.status == "closed":
            assert o.exited_at is not None
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


def test_best_and_single_strategy_runs_take_only_those_setups(history: History, spec: BacktestSpec) -> None:
    cols = decision_columns(history, spec)
    every, _ = replay(history, spec, cols)
    assert len({o.strategy for o in every}) > 1
    orb = BacktestSpec(spec.symbols, spec.style, spec.start, spec.end, strategy="orb", every=spec.every)
    only, _ = replay(history, orb, cols)
    assert only and {o.strategy for o in only} == {"orb"}
    best = BacktestSpec(spec.symbols, spec.style, spec.start, spec.end, strategy="best", every=spec.every)
    picks, _ = replay(history, best, cols)
    # one slot per symbol: a symbol never holds two plans at once, whatever their strategies
    by_symbol: dict[str, list] = {}
    for o in sorted(picks, key=lambda o: o.planned_at):
        by_symbol.setdefault(o.symbol, []).append(o)
    assert picks and len(picks) < len(every)
    for outs in by_symbol.values():
        for a, b in zip(outs, outs[1:]):
            if a.status == "closed":
                assert b.planned_at >= a.exited_at


def test_batched_days_give_the_same_outcomes_as_one_decision_at_a_time(market: SimMarket) -> None:
    """Stacking decisions of many days into one planner call changes nothing, across a half day too."""
    # 2023-11-24 closed at 13:00 ET: windows reaching back over it have another shape
    spec = check_spec(
        BacktestSpec(
            ("SPY", "TSLA"),
            "intraday",
            datetime(2023, 11, 20, 14, 0, tzinfo=UTC),
            datetime(2023, 12, 1, 21, 0, tzinfo=UTC),
            strategy="all",
            every=6,
        )
    )
    history = _load(market, spec)
    cols = decision_columns(history, spec)
    keys = structure_keys(history, cols)
    shared = Counter(keys).most_common(1)[0][1]
    # the three sessions before the half day share shapes; the ones after each have their own
    assert shared >= 3 and len(set(keys)) > len(keys) / 2
    one, _, _ = run_columns(history, spec, cols)
    many, decisions = run_columns_batched(history, spec, cols)
    assert decisions <= len(cols) and len(one) > 20

    def key(o: TradeOutcome) -> tuple[datetime, str, str]:
        return (o.planned_at, o.symbol, o.strategy)

    assert [o.model_dump() for o in sorted(one, key=key)] == [o.model_dump() for o in sorted(many, key=key)]


def test_kept_plans_are_the_plans_behind_the_outcomes(history: History, spec: BacktestSpec) -> None:
    cols = decision_columns(history, spec)[:30]
    outcomes, _, plans = run_columns(history, spec, cols, keep_plans=True)
    assert plans and len(plans) == len(outcomes)
    assert all(isinstance(p, Plan) for p in plans)
    assert [(p.symbol, p.strategy) for p in plans] == [(o.symbol, o.strategy) for o in outcomes]


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"strategy": "moonshot"}, "does not serve"),
        ({"strategy": "orb", "style": "swing"}, "does not serve"),
        ({"style": "yolo"}, "style"),
        ({"symbols": ()}, "at least one symbol"),
        ({"end": START}, "after its start"),
        ({"every": 0}, "--every"),
        ({"start": datetime(2024, 3, 11, 13, 30)}, "UTC offset"),
    ],
)
def test_bad_specs_are_one_clear_line(kwargs: dict, fragment: str) -> None:
    base = dict(symbols=SYMBOLS, style="intraday", start=START, end=END)
    with pytest.raises(UserError, match=fragment):
        check_spec(BacktestSpec(**{**base, **kwargs}))


def test_a_spec_is_normalised() -> None:
    s = check_spec(BacktestSpec(("SPY", "QQQ", "SPY"), "intraday", START, END, strategy=" ORB "))
    assert s.symbols == ("SPY", "QQQ") and s.strategy == "orb"
    assert s.exec_interval == "5m" and s.cadence == 3 and s.day_style
    assert not check_spec(BacktestSpec(("SPY",), "swing", START, END)).day_style


def test_the_span_reaches_back_over_the_warm_up_and_forward_over_the_horizon() -> None:
    spec = check_spec(BacktestSpec(("SPY",), "swing", START, END))
    warm, d_warm = warmup_sessions("swing", LOOKBACK_SESSIONS)
    assert warm == LOOKBACK_SESSIONS["4h"] + 1 and d_warm == LOOKBACK_SESSIONS["1D"] + 1
    sch = schedule()
    first = int(np.searchsorted(sch.opens, int(pd.Timestamp(START).value)))
    span = history_span(spec, LOOKBACK_SESSIONS)
    assert span.start == pd.Timestamp(int(sch.opens[first - warm]), tz="UTC")
    assert span.daily_start == pd.Timestamp(int(sch.opens[first - d_warm]), tz="UTC")
    assert span.end > END + timedelta(days=10)  # swing plans run for sessions after the range
    # `now` caps what may be read, to the nanosecond
    now = END + timedelta(hours=1, microseconds=7)
    capped = history_span(spec, LOOKBACK_SESSIONS, now)
    assert capped.end_ns == int(pd.Timestamp(now).value) and capped.start == span.start
    # no daily series when the execution bars feed every interval
    assert history_span(check_spec(BacktestSpec(("SPY",), "scalp", START, END)), LOOKBACK_SESSIONS).daily_start is None


def test_a_range_without_a_session_is_refused() -> None:
    saturday = datetime(2024, 3, 16, 14, 0, tzinfo=UTC)
    spec = check_spec(BacktestSpec(("SPY",), "intraday", saturday, saturday + timedelta(days=1)))
    with pytest.raises(UserError, match="no NYSE session"):
        history_span(spec, LOOKBACK_SESSIONS)


def test_the_history_ends_where_the_span_does(history: History, spec: BacktestSpec) -> None:
    span = history_span(spec, LOOKBACK_SESSIONS, NOW)
    assert isinstance(span, HistorySpan)
    assert history.data_end_ns == span.end_ns and history.sources == ["bars 5m/15m/1h: sim"]
    assert history.exec.symbols == SYMBOLS and history.stamps[0] >= int(pd.Timestamp(span.start).value)


def test_a_run_too_long_for_its_limit_is_refused_with_advice(
    history: History, spec: BacktestSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    n = len(decision_columns(history, spec))
    monkeypatch.setattr(engine, "MAX_DECISIONS", n)
    assert len(bounded_decision_columns(history, spec)) == n
    monkeypatch.setattr(engine, "MAX_DECISIONS", n - 1)
    with pytest.raises(UserError, match="--every"):
        bounded_decision_columns(history, spec)


def test_session_chunks_split_only_between_sessions(history: History, spec: BacktestSpec) -> None:
    cols = decision_columns(history, spec)
    sessions = len(set(history.exec.day[cols].tolist()))
    assert sessions == 4
    for n, expect in ((4, 4), (2, 2), (3, 2), (99, 4)):  # whole sessions per chunk, as even as they divide
        chunks = engine.session_chunks(history, cols, n)
        assert len(chunks) == expect and np.array_equal(np.concatenate(chunks), cols)
        days = [set(history.exec.day[c].tolist()) for c in chunks]
        assert all(not (a & b) for i, a in enumerate(days) for b in days[i + 1 :])
    assert engine.session_chunks(history, cols[:0], 3) == []
