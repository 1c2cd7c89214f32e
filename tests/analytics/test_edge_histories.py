"""Short, gapped, halted and flat histories: nothing in analytics raises on them.

Real files are rarely the clean NYSE sessions the offline market serves: a listing a few days
old, a halted or flat name, missing sessions, rows a vendor left empty. Hypothesis generates
such histories (1 bar up to a few hundred, constant prices, zero volume, gaps, NaN rows, a single
session, daily and intraday) and every layer that plans on bars must answer without an
exception: indicators, each level function, each strategy detector, the planner, the scanner,
the interval context and the backtest engine (which must also say why when it plans nothing).
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analytics import indicators, levels
from analytics.backtest_engine import BacktestSpec, backtest_result, build_history, decision_columns, empty_run_reason, replay
from analytics.bars import COLUMNS, resample_bars
from analytics.interval_context import detect_levels, interval_context
from analytics.intervals import STYLE_INTERVALS, interval_minutes
from analytics.panel import Panel
from analytics.planner import plan_symbol
from analytics.scanner import scan_frames
from analytics.sessions import schedule, session_info
from analytics.strategies import STRATEGIES
from analytics.strategies.features import compute_features

#: Styles a history of each interval can feed (the style's execution interval is the file's or coarser).
STYLES_FOR = {"5m": ("intraday", "swing"), "1h": ("swing",), "1D": ("leaps",)}
LOOKBACK = {"1m": 5, "5m": 10, "15m": 20, "30m": 30, "1h": 60, "4h": 250, "1D": 500, "1W": 1300}
_MIN = 60 * 10**9


def _stamps(interval: str, n: int, first_session: int, single_session: bool, around_the_clock: bool) -> np.ndarray:
    """n bar stamps (ns) on NYSE sessions from `first_session`, as a provider would serve them."""
    sch = schedule()
    if interval == "1D":
        return sch.opens[first_session : first_session + n].astype(np.int64)
    step = interval_minutes(interval) * _MIN
    if around_the_clock:  # a 24-hour market: bars on the hour, nights and weekends included
        t0 = int(sch.opens[first_session]) // (3600 * 10**9) * 3600 * 10**9
        return t0 + step * np.arange(n, dtype=np.int64)
    out: list[int] = []
    k = first_session
    while len(out) < n:
        out.extend(range(int(sch.opens[k]), int(sch.closes[k]), step))
        k += 1
        if single_session:
            break
    return np.array(out[:n], dtype=np.int64)


@st.composite
def histories(draw: st.DrawFn) -> tuple[str, pd.DataFrame]:
    interval = draw(st.sampled_from(["5m", "1h", "1D"]))
    n = draw(st.integers(1, 260))
    single = draw(st.booleans()) if interval != "1D" else False
    first = draw(st.integers(4600, 4900))  # sessions of 2023-2024 in the calendar
    stamps = _stamps(interval, n, first, single, interval != "1D" and draw(st.booleans()))
    n = len(stamps)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    shape = draw(st.sampled_from(["walk", "flat", "halted", "tiny", "jumpy"]))
    if shape == "flat":
        close = np.full(n, 42.0)
    else:
        scale = 0.0001 if shape == "tiny" else 0.01
        steps = rng.normal(0.0, scale, n)
        if shape == "jumpy":  # gaps of 10-30% now and then (news, splits a vendor did not adjust)
            steps += np.where(rng.random(n) < 0.05, rng.choice([-1.0, 1.0], n) * rng.uniform(0.1, 0.3, n), 0.0)
        close = 100.0 * np.exp(np.cumsum(steps))
        if shape == "halted":  # long stretches at one price, as in a halt
            hold = rng.random(n) < 0.7
            for i in range(1, n):
                if hold[i]:
                    close[i] = close[i - 1]
    close = np.round(close, 2)
    open_ = np.concatenate(([close[0]], close[:-1]))
    wiggle = 0.0 if shape in ("flat", "halted") else 0.002
    high = np.maximum(open_, close) * (1 + wiggle * rng.random(n))
    low = np.minimum(open_, close) * (1 - wiggle * rng.random(n))
    volume = np.zeros(n) if draw(st.booleans()) else rng.integers(0, 10_000, n).astype(float)
    df = pd.DataFrame(
        {"open": open_, "high": high, "low": low, "close": close, "volume": volume},
        index=pd.DatetimeIndex(stamps.astype("datetime64[ns]")).tz_localize("UTC"),
    )[COLUMNS]
    if n > 2 and draw(st.booleans()):  # gaps: missing bars and missing sessions
        keep = rng.random(n) > draw(st.floats(0.05, 0.6))
        keep[-1] = True
        df = df[keep]
    if len(df) > 2 and draw(st.booleans()):  # rows a vendor left empty
        df = df.copy()
        rows = rng.random(len(df)) < 0.15
        rows[-1] = draw(st.booleans()) and rows[-1]
        df.loc[rows, ["open", "high", "low", "close"]] = np.nan
    return interval, df


def _style_bars(df: pd.DataFrame, interval: str, style: str) -> dict[str, pd.DataFrame]:
    """The style's intervals built from the history (coarser ones resampled, as the providers do)."""
    out = {}
    clean = df.dropna()
    for iv in STYLE_INTERVALS[style]:
        if iv == interval:
            out[iv] = df
        elif interval_minutes(iv) > interval_minutes(interval):
            out[iv] = resample_bars(clean, iv) if len(clean) else clean
    return out


def _as_of(df: pd.DataFrame, interval: str) -> datetime:
    last = int(df.index.asi8[-1])
    return datetime.fromtimestamp((last + interval_minutes(interval) * _MIN) / 1e9, tz=UTC)


SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@SETTINGS
@given(histories())
def test_indicators_levels_and_detectors_take_any_history(h: tuple[str, pd.DataFrame]) -> None:
    interval, df = h
    ind = indicators.compute_all(df)
    assert all(len(v) == len(df) for v in ind.values())
    indicators.hv_set(df["close"].to_numpy())
    for fn in (levels.fair_value_gaps, levels.swing_levels, levels.liquidity_pools, levels.supply_demand_zones):
        for lv in fn(df, interval):
            assert np.isfinite(lv.price)
    detect_levels("EDGE", df, interval)
    ctx = interval_context(df, interval, 50, as_of=_as_of(df, interval), source="test")
    assert len(ctx.bars) == min(50, len(df))
    panel = Panel.from_frame("EDGE", df, interval)
    f = compute_features(panel)
    for strat in STRATEGIES:
        sig = strat.detector(f)
        assert sig.active.shape == (1,)
        assert sig.active[0] or sig.reason[0]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@SETTINGS
@given(histories())
def test_planner_and_scanner_take_any_history(h: tuple[str, pd.DataFrame]) -> None:
    interval, df = h
    as_of = _as_of(df, interval)
    info = session_info(as_of).to_dict()
    for style in STYLES_FOR[interval]:
        bars = _style_bars(df, interval, style)
        answer = plan_symbol("EDGE", style, bars, as_of=as_of, session=info, sources=["test"])
        res = answer.result
        assert (res.plan is None) == bool(res.reason)
        if res.plan is not None:
            assert np.isfinite([res.plan.entry, res.plan.stop]).all()
        scan, _ = scan_frames({"EDGE": bars, "FLAT": bars}, style, as_of=as_of, session=info, sources=["test"])
        assert scan.scanned in (0, 2) and (scan.candidates or scan.reason)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(histories())
def test_backtest_takes_any_history_and_says_why_when_it_plans_nothing(h: tuple[str, pd.DataFrame]) -> None:
    interval, df = h
    df = df.dropna()  # the replay loader drops empty rows before a run sees them
    if df.empty:
        return
    style = STYLES_FOR[interval][-1]
    exec_iv = STYLE_INTERVALS[style][0]
    exec_df = df if exec_iv == interval else resample_bars(df, exec_iv)
    daily = resample_bars(df, "1D") if exec_iv != "1D" else None
    start = datetime.fromtimestamp(int(exec_df.index.asi8[0]) / 1e9, tz=UTC)
    end = _as_of(df, interval)
    # decide about 20 times at most: enough to cross every early-history state, quick to run
    spec = BacktestSpec(("EDGE",), style, start, end, every=max(1, len(exec_df) // 20))
    history = build_history(
        style,
        Panel.from_frame("EDGE", exec_df, exec_iv),
        Panel.from_frame("EDGE", daily, "1D") if daily is not None and len(daily) else None,
        ["test"],
        lookback=LOOKBACK,
    )
    columns = decision_columns(history, spec)
    outcomes, decisions = replay(history, spec, columns)
    result = backtest_result(history, spec, outcomes, decisions, elapsed_s=0.0)
    if not result.plans:
        why = empty_run_reason(history, spec, columns, decisions)
        assert why and "\n" not in why
