"""Chart rendering: the fast path vs mplfinance on the same chart specifications, in one run.

    .venv/bin/python benchmarks/bench_charts.py [--rounds 5]

Twelve specifications from the offline market (4 symbols x 5m with a plan, 1h, 1D; 1200x700
px, dark theme) are rendered round-robin, the paths interleaved so machine load hits them
alike. Printed per path: median wall ms per chart (and median CPU ms, steadier on a shared
machine), PNG size, and the ratio to the anchor:

- `mplfinance.plot`: the anchor named by the issue: mplfinance drawing the same candles,
  volume, EMA/VWAP addplots, level hlines and fill_between bands, saved to PNG;
- `mpf path`: the reference render path (the anchor plus our title, labels and footer);
- `fast path`: matplotlib collections on a reused Figure with cached glyphs (the default);
- `fast via pool`: the fast path through ChartService's worker process (pickling + IPC included).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import statistics
import sys
import time
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import matplotlib

matplotlib.use("Agg")

from analytics.models import Plan, Target
from bot.chart_service import ChartService, fetch_bars
from providers.sim import SimMarket
from renderers import fast_render, mpf_render
from renderers.chart_spec import ChartSpec
from renderers.plan_chart import build_spec

AS_OF = datetime(2024, 3, 13, 15, 0, tzinfo=UTC)
SYMBOLS = ("TSLA", "AAPL", "NVDA", "SPY")
INTERVALS = ("5m", "1h", "1D")


def _plan(symbol: str, df) -> Plan:
    last = float(df["close"].iloc[-1])
    risk = last * 0.01
    return Plan(
        plan_id=f"P-{symbol[:3]}001",
        symbol=symbol,
        style="intraday",
        strategy="orb_breakout",
        direction="long",
        interval="5m",
        entry=round(last + risk * 0.2, 2),
        stop=round(last - risk, 2),
        targets=[
            Target(price=round(last + 2.2 * risk, 2), rr=2.0, reason="2R"),
            Target(price=round(last + 3.4 * risk, 2), rr=3.0, reason="3R"),
        ],
        quality=0.7,
        quality_factors={},
        confluence=[],
        invalidation="-",
        as_of=AS_OF - timedelta(minutes=30),
        session="open",
        sources=["sim"],
    )


async def make_specs() -> list[ChartSpec]:
    market = SimMarket(seed=0, now=lambda: AS_OF)
    specs = []
    for sym in SYMBOLS:
        for iv in INTERVALS:
            df = (await fetch_bars(market, sym, iv, AS_OF)).df
            plan = _plan(sym, df) if iv == "5m" else None
            specs.append(
                build_spec(
                    symbol=sym,
                    interval=iv,
                    bars=df,
                    plan=plan,
                    as_of=AS_OF,
                    session_status="open",
                    source="sim",
                    style="intraday" if plan else None,
                )
            )
    return specs


def bare_mplfinance(spec: ChartSpec) -> bytes:
    """The anchor: `mplfinance.plot` with the spec's candles, volume, lines, levels and bands, saved as PNG."""
    import matplotlib.pyplot as plt
    import mplfinance as mpf

    kwargs = {
        "type": "candle",
        "style": mpf_render.mpf_style(spec.theme),
        "volume": True,
        "returnfig": True,
        "figsize": (spec.width / spec.dpi, spec.height / spec.dpi),
        "ylim": spec.y_range,
        "warn_too_much_data": 100_000,
    }
    plots = mpf_render._addplots(spec)
    if plots:
        kwargs["addplot"] = plots
    if spec.levels:
        kwargs["hlines"] = mpf_render._hlines(spec)
    if spec.bands:
        kwargs["fill_between"] = mpf_render._fill_between(spec)
    with matplotlib.rc_context(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fig, _ = mpf.plot(spec.candles.frame(spec.tz), **kwargs)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=spec.dpi)
        plt.close(fig)
    return buf.getvalue()


def timed(fn, spec) -> tuple[float, float, int]:
    w0, c0 = time.perf_counter(), time.process_time()
    png = fn(spec)
    return (time.perf_counter() - w0) * 1000, (time.process_time() - c0) * 1000, len(png)


async def pool_round_trips(specs: list[ChartSpec], rounds: int) -> list[float]:
    service = ChartService(workers=1)
    try:
        await service.warm()
        await service.render(specs[:1])
        out = []
        for _ in range(rounds):
            for spec in specs:
                t0 = time.perf_counter()
                await service.render([spec])  # no key: never served from the cache
                out.append((time.perf_counter() - t0) * 1000)
        return out
    finally:
        await service.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    specs = asyncio.run(make_specs())
    paths = {"mplfinance.plot": bare_mplfinance, "mpf path": mpf_render.render, "fast path": fast_render.render}
    for fn in paths.values():  # imports, font cache, first figure: not part of a steady-state chart
        fn(specs[0])
    wall: dict[str, list[float]] = {k: [] for k in paths}
    cpu: dict[str, list[float]] = {k: [] for k in paths}
    size: dict[str, list[int]] = {k: [] for k in paths}
    for _ in range(args.rounds):
        for spec in specs:
            for name, fn in paths.items():
                w, c, n = timed(fn, spec)
                wall[name].append(w)
                cpu[name].append(c)
                size[name].append(n)
    pool = asyncio.run(pool_round_trips(specs, max(1, args.rounds // 2)))
    med = {k: statistics.median(v) for k, v in wall.items()}
    cmed = {k: statistics.median(v) for k, v in cpu.items()}
    anchor, anchor_cpu = med["mplfinance.plot"], cmed["mplfinance.plot"]
    print(f"charts: {len(specs)} specs x {args.rounds} rounds, 1200x700 px ({', '.join(INTERVALS)}; 5m with a plan)")
    print(f"{'path':<16} {'wall ms':>8} {'cpu ms':>8} {'PNG KB':>8} {'vs mplfinance.plot':>20}")
    for name in paths:
        ratio = anchor / med[name]
        print(
            f"{name:<16} {med[name]:>8.0f} {cmed[name]:>8.0f} {statistics.median(size[name]) / 1024:>8.0f} "
            f"{ratio:>16.1f}x  (cpu {anchor_cpu / cmed[name]:.1f}x)"
        )
    pm = statistics.median(pool)
    print(f"{'fast via pool':<16} {pm:>8.0f} {'':>8} {'':>8} {anchor / pm:>16.1f}x  (round trip incl. IPC)")
    ratio = anchor / med["fast path"]
    verdict = "meets the 1/4 target" + (" and the 1/6 stretch" if ratio >= 6 else "") if ratio >= 4 else "misses the 1/4 target"
    print(f"fast path = 1/{ratio:.1f} of mplfinance.plot: {verdict}")


if __name__ == "__main__":
    main()
