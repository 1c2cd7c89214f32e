"""Backtest throughput: one year of 5-minute bars for 20 symbols, every intraday strategy, on the offline market.

Run: .venv/bin/python benchmarks/bench_backtest.py [--every N] [--workers N]

Reports the time to fetch and arrange the bars, the replay itself (the planner asked every N
five-minute bars over all 20 symbols at once, every plan played forward to its outcome), plans
per second, and the whole run against the issue's budget of one minute.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analytics.backtest_engine import BacktestSpec, check_spec, decision_columns
from analytics.sessions import schedule
from bot.backtest_runner import default_workers, load_history, run
from providers.sim import SimMarket

SYMBOLS = (
    "SPY",
    "QQQ",
    "AAPL",
    "MSFT",
    "NVDA",
    "TSLA",
    "AMZN",
    "META",
    "GOOGL",
    "AMD",
    "NFLX",
    "AVGO",
    "JPM",
    "BAC",
    "XOM",
    "V",
    "UNH",
    "COST",
    "WMT",
    "DIS",
)
START = datetime(2024, 1, 2, 14, 0, tzinfo=UTC)
END = datetime(2025, 1, 1, 0, 0, tzinfo=UTC)
NOW = datetime(2025, 1, 31, 22, 0, tzinfo=UTC)
BUDGET_S = 60.0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--every", type=int, default=6, help="planner every N 5-minute bars (6 = every 30 minutes)")
    ap.add_argument("--workers", type=int, default=None)
    args = ap.parse_args()
    workers = args.workers or default_workers()

    schedule()  # the calendar loads once per process; not part of a run
    t0 = time.perf_counter()
    spec = check_spec(BacktestSpec(SYMBOLS, "intraday", START, END, strategy="all", every=args.every))
    history = asyncio.run(load_history(SimMarket(seed=0, now=lambda: NOW), spec, now=NOW))
    t_load = time.perf_counter() - t0
    cols = decision_columns(history, spec)
    in_range = history.exec.index[cols]
    sessions = len(set(in_range.tz_convert("America/New_York").date))
    bars = int(((history.exec.index >= START) & (history.exec.index < END)).sum()) * len(SYMBOLS)

    t1 = time.perf_counter()
    res = run(history, spec, workers=workers)
    t_run = time.perf_counter() - t1
    total = time.perf_counter() - t0
    rep = res.summary()
    print(
        f"data: {len(SYMBOLS)} symbols x {sessions} sessions of 5m bars ({bars:,} bars in range, "
        f"{history.exec.n_bars * len(SYMBOLS):,} with warm-up and horizon), fetched and arranged in {t_load:6.1f} s"
    )
    print(
        f"replay: planner every {args.every} bars ({args.every * 5} min), {res.decisions:,} decisions over all "
        f"{len(SYMBOLS)} symbols, {workers} worker process{'es' if workers != 1 else ''}: {t_run:6.1f} s"
    )
    print(
        f"plans: {res.plans:,} ({rep.overall.trades:,} entered and closed) -> {res.plans / t_run:7.1f} plans/s, "
        f"{res.decisions / t_run:6.1f} decisions/s ({res.decisions * len(SYMBOLS) / t_run:7.1f} symbol-decisions/s)"
    )
    print(
        f"whole run: {total:6.1f} s = {total / BUDGET_S:4.2f}x the {BUDGET_S:.0f} s budget "
        f"({'within' if total <= BUDGET_S else 'OVER'} budget)"
    )
    print(
        f"figures: expectancy {rep.overall.expectancy_r:+.3f}R, hit rate {rep.overall.hit_rate:.1%}, "
        f"Brier {rep.calibration.brier:.3f} vs base-rate {rep.calibration.brier_reference:.3f}"
    )


if __name__ == "__main__":
    main()
