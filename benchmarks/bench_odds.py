"""Do the plans' odds hold up out of sample? Brier skill of `probability` against the base rate, the quality grade beside it.

Two histories, replayed with the backtest's rules (every strategy on its own, outcomes by
analytics.outcomes), each plan's probability walk-forward (calibrated only on that run's plans
resolved before its day began):

* the offline market: several symbols, intraday (5-minute bars) and swing (1-hour bars);
* real history: GOOG daily 2007-2013 as the `backtesting` package ships it
  (`backtesting/test/GOOG.csv`, read from the installed package), in the leaps style, the one
  whose execution interval is daily.

Printed per run: resolved plans, average probability against the realised T1 rate, the Brier
score of the probability and of always saying the base rate, the Brier skill with its
bootstrap standard error (trading days resampled), and the same for the quality grade read as
odds, as the anchor.

    .venv/bin/python benchmarks/bench_odds.py            # ~5 minutes on 2 cores
    .venv/bin/python benchmarks/bench_odds.py --quick    # the offline intraday run and GOOG only
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.resources
import time
from datetime import UTC, datetime

import pandas as pd

from analytics.backtest_engine import BacktestResult, BacktestSpec
from analytics.backtest_stats import Calibration
from analytics.bars import daily_bars
from bot.backtest_runner import backtest
from bot.odds import replay_bars
from providers.sim import SimMarket

SIM_SYMBOLS = ("SPY", "AAPL", "TSLA", "NVDA", "MSFT", "QQQ")


def goog_daily() -> pd.DataFrame:
    """GOOG daily bars from the installed `backtesting` package (an unnamed first column of dates)."""
    path = importlib.resources.files("backtesting") / "test" / "GOOG.csv"
    with importlib.resources.as_file(path) as p:
        raw = pd.read_csv(p, index_col=0, parse_dates=True)
    return daily_bars(raw)


async def sim_run(style: str, start: datetime, end: datetime, workers: int) -> BacktestResult:
    now = end
    market = SimMarket(seed=0, now=lambda: now)
    spec = BacktestSpec(SIM_SYMBOLS, style, start, end, strategy="all")
    return await backtest(market, spec, now=now, workers=workers)


def line(name: str, c: Calibration) -> str:
    if not c.n or c.brier is None or c.skill is None:
        return f"  {name:<24} no resolved plan"
    se = f" ± {c.skill_se:.3f}" if c.skill_se is not None else ""
    return (
        f"  {name:<24} said {c.mean_forecast or 0:6.1%}  happened {c.base_rate or 0:6.1%}  "
        f"Brier {c.brier:.4f}  base rate {c.brier_reference:.4f}  skill {c.skill:+.3f}{se}"
    )


def show(title: str, res: BacktestResult) -> None:
    rep = res.summary()
    c, q = rep.calibration, rep.quality_calibration
    print(f"{title}: {res.plans:,} plans, {c.n:,} resolved (entered, T1 or stop or closed), {res.elapsed_s:.0f}s")
    print(line("probability (odds)", c))
    if q is not None:
        print(line("quality read as odds", q))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="only the offline intraday run and GOOG")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    t0 = time.perf_counter()
    runs = [("intraday", datetime(2024, 3, 1, tzinfo=UTC), datetime(2024, 6, 1, tzinfo=UTC))]
    if not args.quick:
        runs.append(("swing", datetime(2023, 6, 1, tzinfo=UTC), datetime(2024, 6, 1, tzinfo=UTC)))
    for style, start, end in runs:
        res = asyncio.run(sim_run(style, start, end, args.workers))
        show(f"offline market {','.join(SIM_SYMBOLS)} {style} {start:%Y-%m-%d}..{end:%Y-%m-%d}", res)
    goog = goog_daily()
    res = replay_bars(
        {"GOOG": goog},
        "leaps",
        datetime(2007, 1, 1, tzinfo=UTC),
        datetime(2014, 1, 1, tzinfo=UTC),
        source="GOOG.csv (backtesting)",
    )
    show(f"GOOG daily (backtesting/test/GOOG.csv, to {goog.index[-1]:%Y-%m-%d}) leaps 2007-01-01..2013", res)
    print(f"total {time.perf_counter() - t0:.0f}s")


if __name__ == "__main__":
    main()
