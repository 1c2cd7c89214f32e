"""How fast the offline market answers: minutes for 60 sessions, two years of daily bars, a chain.

Run: .venv/bin/python benchmarks/bench_sim.py
"Cold" clears the per-symbol caches first (the daily path and the daily-bar cache); the NYSE
calendar itself is loaded once beforehand and reported separately.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analytics.sessions import last_sessions, schedule
from providers.sim import SimMarket, clear_cache

ET = ZoneInfo("America/New_York")
NOW = datetime(2025, 6, 30, 22, 0, tzinfo=UTC)


def _ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000.0


async def main(repeats: int = 7) -> None:
    t0 = time.perf_counter()
    schedule()
    print(f"NYSE calendar load (once per process): {_ms(t0):8.1f} ms")

    m = SimMarket(seed=0, now=lambda: NOW)
    end = datetime(2025, 6, 27, 20, 0, tzinfo=UTC)
    sess = last_sessions(end, 60)
    start = datetime.fromtimestamp(int(sess.opens[0]) / 1e9, tz=UTC)
    symbols = ["TSLA", "SPY", "AAPL", "QWRTY", "ZXCV", "NVDA", "MSFT"]

    cold, warm, rows = [], [], 0
    for i in range(repeats):
        sym = symbols[i % len(symbols)]
        clear_cache()
        t0 = time.perf_counter()
        res = await m.bars(sym, "1m", start, end)
        cold.append(_ms(t0))
        t0 = time.perf_counter()
        res = await m.bars(sym, "1m", start, end)
        warm.append(_ms(t0))
        rows = len(res.df)
    print(
        f"1m bars, 1 symbol x 60 sessions ({rows} bars): cold {statistics.median(cold):6.1f} ms, warm {statistics.median(warm):6.1f} ms (median of {repeats})"
    )

    t0 = time.perf_counter()
    await m.bars("TSLA", "5m", start, end)
    print(f"5m bars, 60 sessions (warm path):          {_ms(t0):6.1f} ms")

    d_start = datetime(2023, 6, 27, tzinfo=ET)
    cold, warm = [], []
    for i in range(repeats):
        sym = symbols[i % len(symbols)]
        clear_cache()
        t0 = time.perf_counter()
        res = await m.bars(sym, "1D", d_start, end)
        cold.append(_ms(t0))
        t0 = time.perf_counter()
        await m.bars(sym, "1D", d_start, end)
        warm.append(_ms(t0))
    print(
        f"1D bars, 2 years ({len(res.df)} bars):                 cold {statistics.median(cold):6.1f} ms, warm {statistics.median(warm):6.1f} ms"
    )

    clear_cache()
    t0 = time.perf_counter()
    res = await m.bars("SPY", "1D", datetime(2005, 1, 1, tzinfo=ET), end)
    print(f"1D bars, whole history 2005-2025 ({len(res.df)} bars), cold: {_ms(t0):6.1f} ms")

    at = datetime(2025, 6, 25, 15, 0, tzinfo=UTC)
    exp = (await m.expirations("SPY", at))[5]
    t0 = time.perf_counter()
    ch = await m.chain("SPY", exp, at)
    print(f"option chain SPY {exp} ({len(ch.contracts)} contracts): {_ms(t0):6.1f} ms")
    t0 = time.perf_counter()
    await m.quote("AAPL", at)
    print(f"quote:                                       {_ms(t0):6.1f} ms")


if __name__ == "__main__":
    asyncio.run(main())
