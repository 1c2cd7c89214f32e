"""Market data, price streams and the broker, chosen by configuration alone (called by the composition root).

`COACH_PROVIDER` picks the market:

* `sim` (default): the offline market;
* `auto`: the keys decide. With `POLYGON_API_KEY` and/or `TRADIER_ACCESS_TOKEN` set, a router
  over those providers with Yahoo as the keyless last resort for bars and quotes (bars:
  polygon -> tradier -> yahoo; quotes: tradier -> polygon -> yahoo; expirations and chains:
  tradier -> polygon). With no key at all, the offline market;
* `replay`: your own bar files in `COACH_REPLAY_DIR` (`providers.replay`), no options;
* a comma list such as `polygon,yahoo`, `tradier,polygon` or `replay,yahoo`: exactly those, in
  that order for every kind (Yahoo and replay serve no chains, so they are left out of the chain
  routes; a symbol without a replay file goes to the next provider).

The other switches are settings too (`bot.config.Settings`): `DISABLE_POLYGON_*`,
`COACH_STALE_MINUTES`, `COACH_BROKER`, `TRADIER_ENV`, and the base URLs that point the clients
elsewhere (a proxy, a recorder, a loopback fake).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot import metrics
from bot.config import Settings
from core.clock import Clock, utc_now
from core.errors import ConfigError
from providers.base import MarketData
from providers.broker.base import Broker
from providers.feed import PriceStream
from providers.router import MarketRouter

KNOWN = ("polygon", "tradier", "yahoo", "sim", "replay")
#: Providers that serve option expirations and chains.
OPTION_PROVIDERS = frozenset({"polygon", "tradier", "sim"})  # not yahoo, not replay


def _secret(value: Any) -> str | None:
    if value is None:
        return None
    v = value.get_secret_value().strip()
    return v or None


def _make(name: str, settings: Settings) -> MarketData:
    if name == "polygon":
        key = _secret(settings.polygon_api_key)
        if key is None:
            raise ConfigError("COACH_PROVIDER names polygon but POLYGON_API_KEY is not set")
        from providers.polygon import PolygonMarket

        return PolygonMarket(key, base_url=settings.polygon_base_url, disabled=settings.polygon_disabled(), clock=utc_now)
    if name == "tradier":
        token = _secret(settings.tradier_access_token)
        if token is None:
            raise ConfigError("COACH_PROVIDER names tradier but TRADIER_ACCESS_TOKEN is not set")
        from providers.tradier import TradierClient, TradierMarket

        client = TradierClient(token, env=settings.tradier_env_choice, base_url=settings.tradier_base_url)
        return TradierMarket(client, clock=utc_now)
    if name == "yahoo":
        from providers.yahoo import YahooMarket

        return YahooMarket(base_url=settings.yahoo_base_url, clock=utc_now)
    if name == "sim":
        from providers.sim import SimMarket

        return SimMarket(seed=settings.coach_seed)
    if name == "replay":
        return replay_market(settings, chained=True)
    raise ConfigError(f"unknown provider {name!r} in COACH_PROVIDER; accepted: auto, sim, or a list of {', '.join(KNOWN)}")


def replay_market(settings: Settings, now: Callable[[], datetime] | None = None, chained: bool = False) -> MarketData:
    """Bars from the folder `COACH_REPLAY_DIR` names; a ConfigError when it is unset or not a folder."""
    from core.errors import UserError
    from providers.replay import ReplayMarket

    folder = settings.coach_replay_dir
    if folder is None:
        raise ConfigError("COACH_PROVIDER names replay but COACH_REPLAY_DIR is not set; point it at a folder of bar files")
    try:
        ZoneInfo(settings.coach_replay_tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"COACH_REPLAY_TZ {settings.coach_replay_tz[:40]!r} is not a time zone; use a name like America/New_York or UTC"
        ) from None
    try:
        return ReplayMarket(folder, now=now or utc_now, naive_tz=settings.coach_replay_tz, chained=chained)
    except UserError as exc:
        raise ConfigError(f"COACH_REPLAY_DIR: {exc}") from None


def _router(routes: dict[str, list[str]], settings: Settings) -> MarketRouter:
    made: dict[str, MarketData] = {}
    for names in routes.values():
        for n in names:
            if n not in made:
                made[n] = _make(n, settings)
    router = MarketRouter(
        {k: [made[n] for n in v] for k, v in routes.items()},
        stale_after=timedelta(minutes=max(1.0, settings.coach_stale_minutes)),
    )
    return observe_router(router)


def observe_router(router: MarketRouter) -> MarketRouter:
    """Count the router's provider calls and fallbacks in the service's metrics."""
    router.on_call = _count_call
    router.on_fallback = _count_fallback
    return router


def _count_call(provider: str, kind: str, outcome: str, seconds: float) -> None:
    metrics.PROVIDER_SECONDS.labels(provider=provider, kind=kind, outcome=outcome).observe(seconds)


def _count_fallback(provider: str, kind: str) -> None:
    metrics.PROVIDER_FALLBACKS.labels(provider=provider, kind=kind).inc()


def parse_chain(value: str) -> list[str]:
    """`polygon, Yahoo` -> ["polygon", "yahoo"]; unknown or repeated names are a ConfigError."""
    names = [p.strip().lower() for p in value.split(",") if p.strip()]
    bad = [n for n in names if n not in KNOWN]
    if bad or not names:
        raise ConfigError(
            f"unknown provider {bad[0] if bad else value!r} in COACH_PROVIDER; accepted: auto, sim, "
            f"or a comma list of {', '.join(KNOWN)} (e.g. polygon,yahoo)"
        )
    if len(set(names)) != len(names):
        raise ConfigError(f"COACH_PROVIDER lists a provider twice: {value}")
    return names


def routes_for(names: list[str]) -> dict[str, list[str]]:
    """The same order for bars and quotes; option kinds keep only providers that serve options."""
    opt = [n for n in names if n in OPTION_PROVIDERS]
    return {"bars": list(names), "quote": list(names), "expirations": opt, "chain": opt}


def auto_routes(settings: Settings) -> dict[str, list[str]] | None:
    """Routes from the keys that are set, or None when there is none (the offline market then)."""
    has_p = _secret(settings.polygon_api_key) is not None
    has_t = _secret(settings.tradier_access_token) is not None
    if not (has_p or has_t):
        return None

    def pick(*ns: str) -> list[str]:
        return [n for n in ns if (n != "polygon" or has_p) and (n != "tradier" or has_t)]

    return {
        "bars": pick("polygon", "tradier", "yahoo"),
        "quote": pick("tradier", "polygon", "yahoo"),
        "expirations": pick("tradier", "polygon"),
        "chain": pick("tradier", "polygon"),
    }


def build_market(settings: Settings) -> MarketData:
    """The market data source named by COACH_PROVIDER (`sim` by default)."""
    name = settings.coach_provider.strip().lower()
    if name == "sim":
        from providers.sim import SimMarket

        return SimMarket(seed=settings.coach_seed)
    if name == "replay":
        return replay_market(settings)
    if name == "auto":
        routes = auto_routes(settings)
        if routes is None:
            from providers.sim import SimMarket

            return SimMarket(seed=settings.coach_seed)
        return _router(routes, settings)
    return _router(routes_for(parse_chain(name)), settings)


def stream_builder(settings: Settings) -> Callable[[Clock, datetime | None], PriceStream] | None:
    """What makes the runtime's price stream for COACH_PROVIDER, or None to poll quotes.

    The offline market replays its own ticks (from `start`, where the runtime resumes); Polygon
    streams over its WebSocket when a key is set and the stream is not switched off (paid plans).
    """
    names = [p.strip().lower() for p in settings.coach_provider.split(",") if p.strip()]
    key = _secret(settings.polygon_api_key)
    for name in names:
        if name == "sim":

            def sim(clock: Clock, start: datetime | None) -> PriceStream:
                from providers.sim_stream import SimClock, SimStream

                sim_clock = clock if isinstance(clock, SimClock) else SimClock(clock(), speed=1.0)
                return SimStream(sim_clock, seed=settings.coach_seed, start=start or sim_clock.now())

            return sim
        if name in ("auto", "polygon") and key is not None and not settings.disable_polygon_stream:

            def polygon(clock: Clock, start: datetime | None) -> PriceStream:
                from providers.polygon_stream import PolygonStream

                return PolygonStream(key, url=settings.polygon_ws_url)

            return polygon
    return None


def build_broker(settings: Settings, market: MarketData, clock: Clock) -> Broker:
    """The broker: paper by default (fills against the market's quotes), Tradier with COACH_BROKER=tradier."""
    if settings.coach_broker == "tradier":
        token = _secret(settings.tradier_access_token)
        if token is None:
            raise ConfigError("COACH_BROKER=tradier needs TRADIER_ACCESS_TOKEN")
        from providers.broker.tradier import TradierBroker
        from providers.tradier import TradierClient

        client = TradierClient(token, env=settings.tradier_env_choice, base_url=settings.tradier_base_url)
        # Broker declares `name` a settable attribute; TradierBroker's is a read-only property
        return TradierBroker(client, settings.tradier_account_id)
    from providers.broker.paper import PaperBroker

    return PaperBroker(market, clock)
