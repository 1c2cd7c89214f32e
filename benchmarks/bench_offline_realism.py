"""Is the offline market as calm as the markets traders know? Volatility by symbol class, 2006-2025.

For every symbol the offline market knows by name (and a few it invents), from its daily bars
as `SimMarket.bars` serves them (seed 0):

* annualised volatility of daily log returns over the whole window;
* HV20 (20-session realised volatility, annualised): 10th, 50th and 90th percentile and max;
* the largest one-day and twenty-session moves;
* how often SPY rose 11% in 20 sessions, and how many TSLA days moved 10% at an HV20 over 100%.

Each class is held to its band (`providers.sim_symbols.VOL_BANDS`: index ETFs 12-20%, megacaps 20-40%,
high-beta names 50-70%): the long-run level must sit inside it.

The anchor, measured in the same run: real GOOG daily history as the `backtesting` package
ships it (2004-08..2013-03), against the offline market's GOOG over the same sessions.

    .venv/bin/python benchmarks/bench_offline_realism.py          # ~1 minute
"""

from __future__ import annotations

import asyncio
import importlib.resources
import statistics
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from providers.sim import SimMarket
from providers.sim_symbols import KNOWN, VOL_BANDS, symbol_class

START = datetime(2006, 1, 1, tzinfo=UTC)
END = datetime(2026, 1, 1, tzinfo=UTC)
INVENTED = ("QWRTY", "ZXCV", "ABCD", "LMNOP", "FOOB", "KRAK")


@dataclass(frozen=True)
class Stats:
    ann: float
    hv_p10: float
    hv_p50: float
    hv_p90: float
    hv_max: float
    max_1d: float
    max_20d: float


def stats(closes: pd.Series) -> Stats:
    c = closes.to_numpy(dtype=float)
    r = np.diff(np.log(c))
    windows = np.lib.stride_tricks.sliding_window_view(r, 20)
    hv = windows.std(axis=1, ddof=1) * np.sqrt(252.0)
    r20 = np.log(c[20:] / c[:-20])
    return Stats(
        ann=float(r.std(ddof=1) * np.sqrt(252.0)),
        hv_p10=float(np.percentile(hv, 10)),
        hv_p50=float(np.median(hv)),
        hv_p90=float(np.percentile(hv, 90)),
        hv_max=float(hv.max()),
        max_1d=float(np.expm1(np.abs(r)).max()),
        max_20d=float(np.expm1(np.abs(r20)).max()),
    )


def row(name: str, s: Stats) -> str:
    return (
        f"  {name:<7} {s.ann:6.1%}   {s.hv_p10:6.1%} {s.hv_p50:6.1%} {s.hv_p90:6.1%} {s.hv_max:7.1%}"
        f"   {s.max_1d:6.1%} {s.max_20d:7.1%}"
    )


HEADER = "  symbol  annual   HV20 p10    p50    p90     max   max 1d  max 20d"


def goog_real() -> pd.Series:
    path = importlib.resources.files("backtesting") / "test" / "GOOG.csv"
    with importlib.resources.as_file(path) as p:
        raw = pd.read_csv(p, index_col=0, parse_dates=True)
    closes: pd.Series = raw["Close"].astype(float)
    return closes


async def main() -> None:
    t0 = time.perf_counter()
    market = SimMarket(seed=0, now=lambda: END)
    symbols = [*KNOWN, *INVENTED]
    by_class: dict[str, list[tuple[str, Stats]]] = {}
    for sym in symbols:
        bars = await market.bars(sym, "1D", START, END)
        by_class.setdefault(symbol_class(sym), []).append((sym, stats(bars.df["close"])))

    failures = []
    for kind, (lo, hi) in VOL_BANDS.items():
        members = by_class.get(kind, [])
        if not members:
            continue
        print(f"{kind}: band {lo:.0%}-{hi:.0%} annualised, {len(members)} symbols")
        print(HEADER)
        for sym, s in members:
            inside = lo <= s.ann <= hi
            print(row(sym, s) + ("" if inside else "   <- outside the band"))
            if not inside:
                failures.append(sym)
        med = statistics.median(s.ann for _, s in members)
        p90 = statistics.median(s.hv_p90 for _, s in members)
        print(f"  class median: annual {med:.1%}, HV20 p90 {p90:.1%}, largest 1d {max(s.max_1d for _, s in members):.1%}")
        print()

    # the two moves that made the old market read wild: SPY up 11% in 20 sessions, TSLA up 10% in a day at 110% HV20
    spy = (await market.bars("SPY", "1D", START, END)).df["close"].to_numpy(dtype=float)
    spy20 = spy[20:] / spy[:-20] - 1.0
    tsla = (await market.bars("TSLA", "1D", START, END)).df["close"].to_numpy(dtype=float)
    r = np.diff(np.log(tsla))
    hv20 = np.lib.stride_tricks.sliding_window_view(r, 20).std(axis=1, ddof=1) * np.sqrt(252.0)
    wild = (np.abs(np.expm1(r[19:])) > 0.10) & (hv20 > 1.0)
    print(
        f"SPY up 11% or more in 20 sessions: {(spy20 >= 0.11).mean():.2%} of windows; "
        f"TSLA days of 10% or more with HV20 (that day included) over 100%: {int(wild.sum())} in {len(r) / 252:.0f} years"
    )
    print()

    real = goog_real()
    first, last = real.index[0], real.index[-1]
    sim = await market.bars(
        "GOOG",
        "1D",
        datetime(first.year, first.month, first.day, tzinfo=UTC),
        datetime(last.year, last.month, last.day, 23, tzinfo=UTC),
    )
    r, s = stats(real), stats(sim.df["close"])
    print(f"anchor: GOOG daily {first:%Y-%m-%d}..{last:%Y-%m-%d}, real (backtesting/test/GOOG.csv) against the offline market")
    print(HEADER)
    print(row("real", r))
    print(row("offline", s))
    print(
        f"  offline / real: annual {s.ann / r.ann:.2f}x, HV20 median {s.hv_p50 / r.hv_p50:.2f}x, "
        f"HV20 p90 {s.hv_p90 / r.hv_p90:.2f}x, largest 1d {s.max_1d / r.max_1d:.2f}x"
    )
    print()
    print(f"symbols outside their band: {len(failures)}{' (' + ', '.join(failures) + ')' if failures else ''}")
    print(f"total {time.perf_counter() - t0:.0f}s")


if __name__ == "__main__":
    asyncio.run(main())
