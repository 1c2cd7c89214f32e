"""Backtests against a market: fetch the bars a replay needs, then replay them in this process or over worker processes.

The replay itself is `analytics.backtest_engine`; this module adds what it cannot do: reading
bars from any MarketData (the offline market, a replay folder, a real provider), timing the run,
and spreading long day-style runs over the CPUs this process may use. The planner is shown the
windows `/plan` fetches live (`bot.planning.LOOKBACK_SESSIONS`).
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime, timedelta
from multiprocessing.context import BaseContext
from typing import Any

import numpy as np
import pandas as pd

from analytics.backtest_engine import (
    BacktestResult,
    BacktestSpec,
    History,
    arrange_history,
    backtest_result,
    bounded_decision_columns,
    check_spec,
    empty_run_reason,
    history_span,
    replay,
    run_columns_batched,
    session_chunks,
)
from analytics.intervals import is_intraday
from analytics.outcomes import TradeOutcome
from bot.planning import LOOKBACK_SESSIONS
from core.errors import NotFoundError
from providers.base import MarketData

#: Intraday history is fetched in windows of this many days (real providers page long ranges).
FETCH_DAYS = 92
#: Day-style runs with at least this many decisions are split over worker processes.
PARALLEL_MIN = 200


async def load_history(market: MarketData, spec: BacktestSpec, now: datetime | None = None) -> History:
    """Fetch every bar the run needs (warm-up before, the longest plan horizon after) and arrange it."""
    exec_iv = spec.exec_interval
    span = history_span(spec, LOOKBACK_SESSIONS, now)
    lo, hi = span.start, span.end
    frames: dict[str, pd.DataFrame] = {}
    daily_frames: dict[str, pd.DataFrame] = {}
    names: set[str] = set()

    async def fetch(sym: str) -> None:
        parts: list[pd.DataFrame] = []
        step = timedelta(days=FETCH_DAYS if is_intraday(exec_iv) else 365 * 30)
        t = lo
        while t < hi:
            u = min(hi, t + step)
            try:
                got = await market.bars(sym, exec_iv, t, u)
            except NotFoundError:
                if parts:  # a replay file ended inside the span: the run uses what there is
                    break
                raise
            names.add(got.source)
            if not got.empty:
                parts.append(got.df)
            t = u
        df = pd.concat(parts) if parts else None
        if df is None or df.empty:
            raise NotFoundError(f"no {exec_iv} bars for {sym} between {lo.date()} and {hi.date()}")
        frames[sym] = df[~df.index.duplicated(keep="last")]
        if span.daily_start is not None:
            got = await market.bars(sym, "1D", span.daily_start, hi)
            names.add(got.source)
            daily_frames[sym] = got.df

    await asyncio.gather(*(fetch(s) for s in spec.symbols))
    return arrange_history(spec, span, frames, daily_frames, sorted(names), LOOKBACK_SESSIONS)


# ---------------------------------------------------------------------------- parallel runs of day styles

# What each worker process replays, set once by the pool's initializer.
_WORKER: dict[str, Any] = {}


def _init_worker(history: History, spec: BacktestSpec) -> None:
    _WORKER["history"] = history
    _WORKER["spec"] = spec


def _run_chunk(columns: np.ndarray) -> tuple[list[dict[str, Any]], int, int]:
    outs, decisions = run_columns_batched(_WORKER["history"], _WORKER["spec"], columns)
    return [x.model_dump(mode="json") for x in outs], decisions, len(columns)


def default_workers() -> int:
    """Worker processes for long day-style runs: the CPUs this process may use, at most 4."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        n = os.cpu_count() or 1
    return max(1, min(4, n))


def _in_pool(
    history: History, spec: BacktestSpec, columns: np.ndarray, workers: int, tick: Callable[[int], None]
) -> tuple[list[TradeOutcome], int]:
    """(outcomes, decisions) of whole sessions replayed over `workers` processes."""
    chunks = session_chunks(history, columns, workers * 4)
    # fork is instant and shares the loaded bars, but forking while other threads run (an event
    # loop's executor, a database driver) is unsafe: then start fresh interpreters instead
    methods = mp.get_all_start_methods()
    ctx: BaseContext
    if "fork" in methods and threading.active_count() == 1:
        ctx = mp.get_context("fork")
    else:
        ctx = mp.get_context("forkserver" if "forkserver" in methods else "spawn")
    outcomes: list[TradeOutcome] = []
    decisions = 0
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_worker, initargs=(history, spec)) as pool:
        for outs, dec, n in pool.map(_run_chunk, chunks):
            outcomes.extend(TradeOutcome.model_validate(x) for x in outs)
            decisions += dec
            tick(n)
    return outcomes, decisions


def run(
    history: History,
    spec: BacktestSpec,
    *,
    progress: Callable[[int, int], None] | None = None,
    workers: int | None = None,
    parallel_min: int = PARALLEL_MIN,
) -> BacktestResult:
    """Replay the planner over the history; day styles split whole sessions over worker processes."""
    t0 = time.perf_counter()
    columns = bounded_decision_columns(history, spec)
    total = len(columns)
    done = 0

    def tick(k: int) -> None:
        nonlocal done
        done += k
        if progress is not None:
            progress(done, total)

    workers = default_workers() if workers is None else max(1, workers)
    if workers > 1 and spec.day_style and total >= parallel_min:
        outcomes, decisions = _in_pool(history, spec, columns, workers, tick)
    else:
        outcomes, decisions = replay(history, spec, columns, progress=tick)
    result = backtest_result(history, spec, outcomes, decisions, elapsed_s=time.perf_counter() - t0)
    if not result.plans:
        result.empty_reason = empty_run_reason(history, spec, columns, decisions)
    return result


async def backtest(
    market: MarketData,
    spec: BacktestSpec,
    *,
    now: datetime | None = None,
    progress: Callable[[int, int], None] | None = None,
    workers: int | None = None,
) -> BacktestResult:
    """Load the history from `market` and replay it (the CPU part runs off the event loop)."""
    spec = check_spec(spec)
    history = await load_history(market, spec, now=now)
    return await asyncio.to_thread(run, history, spec, progress=progress, workers=workers)
