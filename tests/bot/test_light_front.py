"""A chat front only admits requests, so it must load none of what the handlers compute with.

A front (the Discord gateway or Slack's HTTP end of `coach serve`, handing requests to worker
processes) builds the command registry, the pipeline and the chat surfaces, and validates arguments
before it acknowledges. None of that may import the numeric stack (numpy, pandas, scipy, TA-Lib),
the chart stack (matplotlib, mplfinance), the exchange calendar, or the analytics, renderers and
providers behind the handlers: its resident memory stays small and it starts fast.

The check runs in a fresh interpreter, since this test process has imported everything already.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from analytics.strategy_ids import STRATEGY_IDS

ROOT = Path(__file__).resolve().parents[2]

#: Libraries a front must not load, with everything under them.
HEAVY_LIBRARIES = ("numpy", "pandas", "scipy", "talib", "matplotlib", "mplfinance", "exchange_calendars")
#: Project layers that hold what the handlers compute with.
HANDLER_LAYERS = ("analytics", "renderers", "providers")
#: The few modules of those layers a front needs, each pure Python with no heavy import of its own.
LIGHT_MODULES = {
    "analytics",
    "analytics.symbols",  # every symbol argument
    "analytics.intervals",  # interval arguments, and the intervals of a style (/context swing)
    "analytics.alert_kinds",  # /alert add's kinds
    "analytics.money",  # amounts of money (/contracts, /size, /risk)
    "analytics.scan_scope",  # /scan's lists and limit
    "analytics.strategy_ids",  # /backtest's strategy choices
    "analytics.models",  # the domain models storage types its rows with (pydantic only)
    "analytics.no_edge",  # the no-edge odds every plan model fills in (no import at all)
    "providers",
    "providers.broker",
    "providers.broker.base",  # OCC option symbols in /order preview
    "providers.http",  # Retry-After of the reply deliveries (bot.surfaces.webhooks)
}
#: The front's budget of resident memory.
MAX_RSS_MB = 150

#: Lines the front validates, each through an argument type that must stay light.
LINES = (
    "/plan TSLA swing",
    "/context SPY swing",
    "/scan leaders --limit 5",
    "/chart tsla 5min,1h plan",
    "/alert add tsla over 250",
    "/contracts NVDA swing $1.5k",
    "/backtest SPY orb",
    "/order preview SPY240419C00500000 buy_to_open 1 limit 2.15",
    "/journal add $TSLA broke out #breakout",
)
#: Lines the front refuses without running a handler.
BAD_LINES = (
    "/plan TSLA! swing",
    "/scan --limit 51",
    "/chart SPY 1m,5m,15m,30m,1h",
    "/size TSLA 250 245 1e10",
    "/backtest SPY strategy=sideways",
)

PROBE = """
import json, sys, time

started = time.perf_counter()
from bot.app import command_registry
import bot.config, bot.pipeline, bot.registry, bot.reply, bot.request
import bot.surfaces.discord, bot.surfaces.render_discord, bot.surfaces.render_slack, bot.surfaces.slack
from bot.pipeline import Pipeline
from bot.ratelimit import RateLimiter
from core.errors import UserError

registry = command_registry()
pipeline = Pipeline(registry, RateLimiter(30))
parsed = {}
for line in LINES:
    command, args = pipeline.parse_line(line)
    parsed[line] = [command.name, args.model_dump(mode="json")]
refused = {}
for line in BAD_LINES:
    try:
        pipeline.parse_line(line)
    except UserError as exc:
        refused[line] = exc.message
seconds = time.perf_counter() - started
with open("/proc/self/status") as status:
    rss_kb = next(int(row.split()[1]) for row in status if row.startswith("VmRSS:"))
print(json.dumps({
    "modules": sorted(sys.modules), "parsed": parsed, "refused": refused,
    "commands": len(registry.all()), "rss_mb": rss_kb / 1024, "seconds": seconds,
}))
"""


def heavy_modules(modules: list[str]) -> list[str]:
    """The modules of `modules` a front must not have loaded."""
    return [
        m for m in modules if m.split(".")[0] in HEAVY_LIBRARIES or (m.split(".")[0] in HANDLER_LAYERS and m not in LIGHT_MODULES)
    ]


def run_front() -> dict:
    """Import and run what a front does in a fresh interpreter; what it loaded and parsed, its memory and time."""
    code = f"LINES = {LINES!r}\nBAD_LINES = {BAD_LINES!r}\n{PROBE}"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_a_front_validates_every_command_without_loading_the_handlers_stack() -> None:
    front = run_front()
    print(f"front: RSS {front['rss_mb']:.1f} MB, imports and parsing {front['seconds']:.2f} s, {len(front['modules'])} modules")

    # the probe saw the real thing: every command declared, the surfaces imported
    assert front["commands"] >= 40
    assert {"bot.commands.plan", "bot.commands.backtest", "bot.surfaces.discord", "bot.surfaces.slack"} <= set(front["modules"])
    assert heavy_modules(front["modules"]) == []
    assert front["rss_mb"] < MAX_RSS_MB

    parsed = front["parsed"]
    assert parsed["/plan TSLA swing"] == ["plan", {"symbol": "TSLA", "style": "swing", "chart": True}]
    assert parsed["/context SPY swing"][1]["intervals"] == ["1h", "4h", "1D"]
    assert parsed["/scan leaders --limit 5"][1] == {"universe": ["leaders"], "style": "intraday", "limit": 5}
    assert {"symbol": "TSLA", "interval": ["5m", "1h"], "plan": True}.items() <= parsed["/chart tsla 5min,1h plan"][1].items()
    assert {"symbol": "TSLA", "kind": "above", "value": 250.0}.items() <= parsed["/alert add tsla over 250"][1].items()
    assert parsed["/contracts NVDA swing $1.5k"][1]["risk_amount"] == 1500.0
    assert {"symbols": ["SPY"], "style": "intraday", "strategy": "orb"}.items() <= parsed["/backtest SPY orb"][1].items()
    assert parsed["/order preview SPY240419C00500000 buy_to_open 1 limit 2.15"][1]["symbol"] == "SPY240419C00500000"
    assert parsed["/journal add $TSLA broke out #breakout"][0] == "journal add"

    refused = front["refused"]
    assert set(refused) == set(BAD_LINES)
    assert refused["/plan TSLA! swing"].startswith("invalid symbol 'TSLA!'")
    assert refused["/scan --limit 51"].startswith("limit: input should be less than or equal to 50")
    assert refused["/chart SPY 1m,5m,15m,30m,1h"].startswith("interval: value should have at most 4 items")
    assert refused["/size TSLA 250 245 1e10"].startswith("risk: risk amount 10,000,000,000 is not plausible")
    assert refused["/backtest SPY strategy=sideways"].startswith("strategy: input should be 'all', 'best', 'orb'")


def test_the_filter_catches_heavy_modules_and_spares_the_light_ones() -> None:
    loaded = ["numpy", "numpy.linalg", "pandas.core.frame", "talib._ta_lib", "analytics.planner", "renderers.text"]
    loaded += ["providers.router", "analytics.symbols", "providers.broker.base", "numpydoc", "bot.commands.plan"]
    assert heavy_modules(loaded) == loaded[:7]


def test_the_light_strategy_ids_are_the_librarys() -> None:
    # /backtest offers STRATEGY_IDS without loading the library: the two must name the same strategies in the same order
    from analytics.strategies import STRATEGIES

    assert STRATEGY_IDS == tuple(s.id for s in STRATEGIES)


SERVE_PROBE = """
import asyncio, json, sys, tempfile

from pydantic import SecretStr

from bot.app import build_services, build_surfaces
from bot.config import Settings


async def main():
    tmp = tempfile.mkdtemp()
    settings = Settings(_env_file=None, database_url=f"sqlite+aiosqlite:///{tmp}/front.db", coach_queue_url=SecretStr(QUEUE),
                        discord_token=SecretStr("front-token"), slack_bot_token=SecretStr("xoxb-front"),
                        slack_signing_secret=SecretStr("s"))
    services = await build_services(settings)  # the schema is upgraded too, as `coach serve` does
    surfaces = build_surfaces(services, host="127.0.0.1", port=0)
    names = [type(s).__name__ for s in surfaces] + [type(services.executor).__name__]
    await services.close()
    with open("/proc/self/status") as status:
        rss_kb = next(int(row.split()[1]) for row in status if row.startswith("VmRSS:"))
    print(json.dumps({"modules": sorted(sys.modules), "built": names, "rss_mb": rss_kb / 1024}))


asyncio.run(main())
"""


def test_coach_serve_with_a_queue_builds_a_front_without_the_handlers_stack() -> None:
    code = f"QUEUE = {'redis://127.0.0.1:6379/0'!r}\n{SERVE_PROBE}"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    front = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"coach serve front with a queue: RSS {front['rss_mb']:.1f} MB, {len(front['modules'])} modules")
    assert front["built"] == ["DiscordSurface", "SlackSurface", "ApiSurface", "QueueExecutor"]
    assert heavy_modules(front["modules"]) == []
    assert front["rss_mb"] < MAX_RSS_MB
