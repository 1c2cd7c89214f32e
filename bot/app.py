"""Build the running service: settings -> database (upgraded) + market data + clock."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from core.errors import ConfigError
from core.clock import utc_now
from bot.config import Settings, get_settings
from bot.services import Services
from providers.base import MarketData
from storage.db import make_engine, make_sessionmaker, upgrade


def build_market(settings: Settings) -> MarketData:
    """The market data source named by COACH_PROVIDER (`sim` by default)."""
    name = settings.coach_provider.strip().lower()
    if name == "sim":
        from providers.sim import SimMarket

        return SimMarket(seed=settings.coach_seed)
    import bot.market  # noqa: F401 - registers the real providers (auto, polygon, tradier, yahoo, comma lists)

    builder = MARKET_BUILDERS.get(name) or MARKET_BUILDERS.get("*")  # "*": comma lists such as polygon,yahoo
    if builder is None:
        accepted = ", ".join(["sim", *sorted(MARKET_BUILDERS)])
        raise ConfigError(f"unknown COACH_PROVIDER {name!r}; accepted: {accepted}")
    return builder(settings)


#: Other market builders by COACH_PROVIDER value, registered by the provider integrations.
MARKET_BUILDERS: dict[str, Callable[[Settings], MarketData]] = {}


async def build_services(
    settings: Settings | None = None,
    *,
    market: MarketData | None = None,
    clock: Callable[[], datetime] | None = None,
    migrate: bool = True,
) -> Services:
    """Open the database (upgrading its schema) and the market; the caller closes them."""
    settings = settings or get_settings()
    engine = make_engine(settings.database_url)
    if migrate:
        try:
            await upgrade(engine)
        except BaseException:
            await engine.dispose()
            raise
    services = Services(
        settings=settings,
        market=market or build_market(settings),
        engine=engine,
        db=make_sessionmaker(engine),
        clock=clock or utc_now,
    )
    import bot.agent  # noqa: F401 - registers the free-text hook (LLM coach or intent parser)
    import bot.chart_service  # noqa: F401 - registers the chart service hook (services.extras["charts"])

    for hook in SERVICE_HOOKS:
        await hook(services)
    return services


#: Async callables run on every freshly built Services (feature packages attach their extras here).
SERVICE_HOOKS: list[Callable[[Services], object]] = []
