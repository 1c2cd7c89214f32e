"""`coach demo`: a scripted console session over the commands, on the offline market."""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

from bot.app import build_services
from bot.config import Settings
from bot.demo_alerts import run_alerts_demo
from bot.surfaces.console import chat

#: The lines the demo types, in order. Features add their own lines here. `{entry}`, `{stop}` and `{limit}`
#: are filled from TSLA's price when the demo runs (last, 2 % under it, 3 % under it), so sizes and orders
#: read against the market the demo shows.
SCRIPT: list[str] = [
    "/help",
    "/session",
    "/quote TSLA",
    "/bars TSLA 5m 6",
    "/bars SPY 1D 5",
    "/watch add TSLA NVDA AAPL",
    "/watch remove NVDA",
    "/watch list",
    "# plans: odds of T1 before the stop, entry, stop, targets that keep the strategy's minimum R:R, invalidation, a quality grade; or why there is none",
    "/plan TSLA",
    "/plan NVDA swing --no-chart",
    "# scans rank every strategy's setups over your watchlist, a named list or tickers",
    "/scan --limit 5",
    "/scan megacaps swing --limit 3",
    "/vol TSLA",
    "/contracts TSLA swing 500",
    "/size TSLA {entry} {stop} 500",
    "/context TSLA 5m,1h,1D lookback=5",
    "# charts: one PNG per interval (saved under out/demo), or one grid image",
    "/chart TSLA 5m plan",
    "/chart SPY 5m,1h,1D --grid",
    "# orders: a preview first (paper broker by default); its Place button places it, for you only",
    "/order preview TSLA buy 10 limit {limit}",
    "/order list",
    "# journal: free text, a leading ticker and #tags are picked up; fills and tracked-plan outcomes arrive on their own",
    "/journal add TSLA chased the open, no plan #fomo",
    "/journal list",
    "# backtest: the planner replayed over recent sessions, scored in R, with how well its odds held up",
    "/backtest SPY,TSLA orb days=3",
    "/scorecard",
    "# plain words go to the coach; with no LLM configured a few phrasings map to commands",
    "what's the session?",
    "iv on nvda?",
    "plan tsla swing",
    "/reset",
    "# bad input gets one clear line",
    "/quote TS;LA",
    "/bars TSLA 7m",
    "/plan TSLA weekly",
    "/size TSLA {entry} {entry} 500",
    "/order preview TSLA buy_to_open 10",
]


async def run_demo(out_dir: Path | None = None) -> int:
    """Run the script against a throwaway database and the offline market; returns lines answered."""
    with tempfile.TemporaryDirectory(prefix="coach-demo-") as tmp:
        settings = Settings(
            database_url=f"sqlite+aiosqlite:///{tmp}/demo.db",
            coach_provider="sim",
            coach_out_dir=out_dir or Path("./out/demo"),
            # the demo is offline by design: plain words go to the rule-based parser
            openai_api_key=None,
            openai_base_url=None,
        )
        services = await build_services(settings)
        try:
            last = (await services.market.quote("TSLA")).last
            prices = {"entry": f"{last:.2f}", "stop": f"{last * 0.98:.2f}", "limit": f"{last * 0.97:.2f}"}
            lines = [line.format(**prices) for line in SCRIPT]
            answered = await chat(services, stdin=io.StringIO("\n".join(lines) + "\n"))
            # the alerts and live-plans step needs more than typed lines: a clock and the runtime
            answered += await run_alerts_demo(services)
            return answered
        finally:
            await services.close()
