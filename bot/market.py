"""Real market data and the broker, switched on by configuration alone.

`COACH_PROVIDER` picks the market:

* `sim` (default): the offline market;
* `auto`: the keys decide. With `POLYGON_API_KEY` and/or `TRADIER_ACCESS_TOKEN` set, a router
  over those providers with Yahoo as the keyless last resort for bars and quotes (bars:
  polygon -> tradier -> yahoo; quotes: tradier -> polygon -> yahoo; expirations and chains:
  tradier -> polygon). With no key at all, the offline market;
* a comma list such as `polygon,yahoo` or `tradier,polygon`: exactly those, in that order for
  every kind (Yahoo serves no chains, so it is left out of the chain routes).

Other switches (environment or `.env`): `DISABLE_POLYGON_OPTIONS`, `DISABLE_POLYGON_SNAPSHOTS`,
`DISABLE_POLYGON_LAST` switch Polygon call families off by hand (as a 403 does on its own);
`COACH_STALE_MINUTES` sets the freshness threshold; `COACH_BROKER` is `paper` (default) or
`tradier`; `TRADIER_ENV` left unset lets the token tell production from sandbox.
`POLYGON_BASE_URL`, `TRADIER_BASE_URL`, `YAHOO_BASE_URL` point the clients elsewhere (a proxy,
a recorder, a loopback fake).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal

from pydantic_settings import BaseSettings, SettingsConfigDict

from core.errors import ConfigError
from bot.app import MARKET_BUILDERS, SERVICE_HOOKS
from bot.config import Settings
from bot.services import Services
from providers.base import MarketData
from providers.router import MarketRouter

KNOWN = ("polygon", "tradier", "yahoo", "sim")
#: Providers that serve option expirations and chains.
OPTION_PROVIDERS = frozenset({"polygon", "tradier", "sim"})


class ProviderOptions(BaseSettings):
    """Provider switches that are not secrets; read from the environment and `.env`."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    polygon_base_url: str = "https://api.massive.com"
    polygon_ws_url: str = "wss://socket.massive.com/stocks"
    disable_polygon_options: bool = False
    disable_polygon_snapshots: bool = False
    disable_polygon_last: bool = False
    disable_polygon_stream: bool = False
    tradier_base_url: str | None = None
    yahoo_base_url: str = "https://query2.finance.yahoo.com"
    coach_stale_minutes: float = 15.0
    coach_broker: Literal["paper", "tradier"] = "paper"

    def polygon_disabled(self) -> list[str]:
        out = []
        if self.disable_polygon_options:
            out += ["options", "contracts"]
        if self.disable_polygon_snapshots:
            out.append("snapshot")
        if self.disable_polygon_last:
            out.append("last")
        if self.disable_polygon_stream:
            out.append("stream")
        return out


def _secret(value: Any) -> str | None:
    if value is None:
        return None
    v = value.get_secret_value().strip()
    return v or None


def tradier_env(settings: Settings) -> str:
    """`production`/`sandbox` when TRADIER_ENV is set, else `auto` (the token tells)."""
    return settings.tradier_env if "tradier_env" in settings.model_fields_set else "auto"


def _make(name: str, settings: Settings, opts: ProviderOptions) -> MarketData:
    from core.clock import utc_now

    if name == "polygon":
        key = _secret(settings.polygon_api_key)
        if key is None:
            raise ConfigError("COACH_PROVIDER names polygon but POLYGON_API_KEY is not set")
        from providers.polygon import PolygonMarket

        return PolygonMarket(key, base_url=opts.polygon_base_url, disabled=opts.polygon_disabled(), clock=utc_now)
    if name == "tradier":
        token = _secret(settings.tradier_access_token)
        if token is None:
            raise ConfigError("COACH_PROVIDER names tradier but TRADIER_ACCESS_TOKEN is not set")
        from providers.tradier import TradierClient, TradierMarket

        client = TradierClient(token, env=tradier_env(settings), base_url=opts.tradier_base_url)  # type: ignore[arg-type]
        return TradierMarket(client, clock=utc_now)
    if name == "yahoo":
        from providers.yahoo import YahooMarket

        return YahooMarket(base_url=opts.yahoo_base_url, clock=utc_now)
    if name == "sim":
        from providers.sim import SimMarket

        return SimMarket(seed=settings.coach_seed)
    raise ConfigError(f"unknown provider {name!r} in COACH_PROVIDER; accepted: auto, sim, or a list of {', '.join(KNOWN)}")


def _router(routes: dict[str, list[str]], settings: Settings, opts: ProviderOptions) -> MarketRouter:
    made: dict[str, MarketData] = {}
    for names in routes.values():
        for n in names:
            if n not in made:
                made[n] = _make(n, settings, opts)
    return MarketRouter({k: [made[n] for n in v] for k, v in routes.items()},
                        stale_after=timedelta(minutes=max(1.0, opts.coach_stale_minutes)))


def parse_chain(value: str) -> list[str]:
    """`polygon, Yahoo` -> ["polygon", "yahoo"]; unknown or repeated names are a ConfigError."""
    names = [p.strip().lower() for p in value.split(",") if p.strip()]
    bad = [n for n in names if n not in KNOWN]
    if bad or not names:
        raise ConfigError(f"unknown provider {bad[0] if bad else value!r} in COACH_PROVIDER; accepted: auto, sim, "
                          f"or a comma list of {', '.join(KNOWN)} (e.g. polygon,yahoo)")
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
    pick = lambda *ns: [n for n in ns if (n != "polygon" or has_p) and (n != "tradier" or has_t)]  # noqa: E731
    return {
        "bars": pick("polygon", "tradier", "yahoo"),
        "quote": pick("tradier", "polygon", "yahoo"),
        "expirations": pick("tradier", "polygon"),
        "chain": pick("tradier", "polygon"),
    }


def build_chain(settings: Settings) -> MarketData:
    """The market for a comma list in COACH_PROVIDER."""
    return _router(routes_for(parse_chain(settings.coach_provider)), settings, ProviderOptions())


def build_auto(settings: Settings) -> MarketData:
    """The market the configured keys allow; the offline market without keys."""
    routes = auto_routes(settings)
    if routes is None:
        from providers.sim import SimMarket

        return SimMarket(seed=settings.coach_seed)
    return _router(routes, settings, ProviderOptions())


def register() -> None:
    """Put the builders where `bot.app.build_market` looks (idempotent)."""
    MARKET_BUILDERS.setdefault("auto", build_auto)
    for name in ("polygon", "tradier", "yahoo"):
        MARKET_BUILDERS.setdefault(name, build_chain)
    MARKET_BUILDERS.setdefault("*", build_chain)  # any comma list; reports unknown names itself
    try:
        from bot.runtime.feed import STREAM_BUILDERS
    except ImportError:  # the alert runtime is optional
        return
    # importing the runtime first ran its own registrations; these honour the Polygon switches above
    STREAM_BUILDERS["auto"] = _polygon_stream
    STREAM_BUILDERS["polygon"] = _polygon_stream


def _polygon_stream(services: Services, clock: Any) -> Any:
    """Polygon's WebSocket when a Polygon key is set and the stream is not switched off (paid plans only)."""
    opts = ProviderOptions()
    key = _secret(services.settings.polygon_api_key)
    if key is None or opts.disable_polygon_stream:
        return None
    from providers.polygon_stream import PolygonStream

    return PolygonStream(key, url=opts.polygon_ws_url)


# -- broker


def get_broker(services: Services) -> Any:
    """The broker for these services (built on first use): paper by default, Tradier with COACH_BROKER=tradier."""
    broker = services.extras.get("broker")
    if broker is not None:
        return broker
    opts = ProviderOptions()
    if opts.coach_broker == "tradier":
        token = _secret(services.settings.tradier_access_token)
        if token is None:
            raise ConfigError("COACH_BROKER=tradier needs TRADIER_ACCESS_TOKEN")
        from providers.broker.tradier import TradierBroker
        from providers.tradier import TradierClient

        client = TradierClient(token, env=tradier_env(services.settings), base_url=opts.tradier_base_url)  # type: ignore[arg-type]
        broker = TradierBroker(client, services.settings.tradier_account_id)
    else:
        from providers.broker.paper import PaperBroker

        broker = PaperBroker(services.market, services.clock)
    services.extras["broker"] = broker
    return broker


async def _close_router(services: Services) -> None:
    """Let Services.close() close the router's HTTP clients."""
    if isinstance(services.market, MarketRouter):
        services.extras.setdefault("market_router", services.market)


register()
if _close_router not in SERVICE_HOOKS:
    SERVICE_HOOKS.append(_close_router)
