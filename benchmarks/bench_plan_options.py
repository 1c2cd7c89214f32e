"""What the option line adds to /plan on the offline market: planning alone against the top-contract lookup.

    .venv/bin/python benchmarks/bench_plan_options.py

Runs on the composition root's services (a temporary SQLite file, the offline market, the clock
pinned to Thursday 2024-03-14 10:15 ET and 13:30 ET). For each of the fixed leaders in the
intraday and swing styles it times `make_plan` (bars, planner, storing the plan) and then, when
there is a plan, `plan_option` (the style's chains, the contract ranking with the caller's risk
budget): what /plan now adds (it runs while the chart is drawn). Printed: plans found, median and
95th percentile of each part in wall and CPU time, the added share of a plan's time, and the
machine's load (wall times on a busy machine are inflated; CPU times much less).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from analytics.scan_scope import LEADERS
from bot.app import build_services
from bot.config import Settings
from bot.plan_options import plan_option
from bot.planning import make_plan
from bot.request import Ctx, Identity
from providers.sim import SimMarket

TIMES = (datetime(2024, 3, 14, 14, 15, tzinfo=UTC), datetime(2024, 3, 14, 17, 30, tzinfo=UTC))
STYLES = ("intraday", "swing")


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            _env_file=None, database_url=f"sqlite+aiosqlite:///{tmp}/bench.db", coach_provider="sim", coach_out_dir=Path(tmp)
        )
        at = TIMES[0]
        services = await build_services(settings, market=SimMarket(seed=0), clock=lambda: at, chart_workers=0, workers=0)
        ident = Identity(platform="console", tenant="local", user="bench", channel="console", dm=True)
        await services.registry.commands["risk"](
            Ctx(services=services, identity=ident), services.registry.commands["risk"].args(account_size=25000, risk_pct=1)
        )
        plan_s: list[float] = []
        option_s: list[float] = []
        plan_cpu: list[float] = []
        option_cpu: list[float] = []
        picked = 0
        try:
            for when in TIMES:
                for style in STYLES:
                    for sym in LEADERS:
                        ctx = Ctx(services=services, identity=ident, as_of=when)
                        t0, c0 = time.perf_counter(), time.process_time()
                        out = await make_plan(ctx, sym, style)
                        plan_s.append(time.perf_counter() - t0)
                        plan_cpu.append(time.process_time() - c0)
                        if out.result.plan is None:
                            continue
                        t0, c0 = time.perf_counter(), time.process_time()
                        o = await plan_option(ctx, out.result, timeout=60.0)
                        option_s.append(time.perf_counter() - t0)
                        option_cpu.append(time.process_time() - c0)
                        picked += o.contract is not None
        finally:
            await services.close()
    print(f"plans requested: {len(plan_s)}; plans found: {len(option_s)}; with a contract: {picked}")
    print(f"make_plan:   median {statistics.median(plan_s) * 1e3:7.1f} ms   p95 {pct(plan_s, 0.95) * 1e3:7.1f} ms")
    print(f"plan_option: median {statistics.median(option_s) * 1e3:7.1f} ms   p95 {pct(option_s, 0.95) * 1e3:7.1f} ms")
    print(f"make_plan CPU:   median {statistics.median(plan_cpu) * 1e3:7.1f} ms   p95 {pct(plan_cpu, 0.95) * 1e3:7.1f} ms")
    print(f"plan_option CPU: median {statistics.median(option_cpu) * 1e3:7.1f} ms   p95 {pct(option_cpu, 0.95) * 1e3:7.1f} ms")
    print(f"added to a plan's time (median, wall): {statistics.median(option_s) / statistics.median(plan_s) * 100:.0f}%")
    print(f"load average while measuring: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    asyncio.run(main())
