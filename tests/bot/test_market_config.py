"""Real providers and the broker switched on by configuration alone (no network touched)."""

from __future__ import annotations

import pytest

from bot.app import build_services
from bot.config import Settings
from bot.market_setup import build_broker, build_market, stream_builder
from core.errors import ConfigError
from providers.polygon import PolygonMarket
from providers.polygon_stream import PolygonStream
from providers.router import MarketRouter
from providers.sim import SimMarket
from providers.tradier import TradierMarket
from providers.yahoo import YahooMarket


def settings(tmp_path, **kw) -> Settings:
    return Settings(_env_file=None, database_url=f"sqlite+aiosqlite:///{tmp_path}/m.db", **kw)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for var in ("DISABLE_POLYGON_OPTIONS", "DISABLE_POLYGON_STREAM", "COACH_BROKER", "COACH_STALE_MINUTES", "TRADIER_ENV"):
        monkeypatch.delenv(var, raising=False)


def names(router: MarketRouter) -> dict[str, list[str]]:
    return router.describe()["routes"]


def test_comma_lists_route_in_order_and_keep_yahoo_out_of_options(tmp_path):
    m = build_market(settings(tmp_path, coach_provider="polygon,yahoo", polygon_api_key="pk"))
    assert isinstance(m, MarketRouter)
    assert names(m) == {
        "bars": ["polygon", "yahoo"],
        "quote": ["polygon", "yahoo"],
        "expirations": ["polygon"],
        "chain": ["polygon"],
    }
    m = build_market(settings(tmp_path, coach_provider=" Tradier , polygon", polygon_api_key="pk", tradier_access_token="tk"))
    assert names(m)["chain"] == ["tradier", "polygon"] and names(m)["bars"] == ["tradier", "polygon"]
    assert isinstance(m.routes["bars"][0], TradierMarket) and isinstance(m.routes["bars"][1], PolygonMarket)


def test_auto_lets_the_keys_decide(tmp_path):
    assert isinstance(build_market(settings(tmp_path, coach_provider="auto")), SimMarket)
    both = build_market(settings(tmp_path, coach_provider="auto", polygon_api_key="pk", tradier_access_token="tk"))
    assert names(both) == {
        "bars": ["polygon", "tradier", "yahoo"],
        "quote": ["tradier", "polygon", "yahoo"],
        "expirations": ["tradier", "polygon"],
        "chain": ["tradier", "polygon"],
    }
    only_p = build_market(settings(tmp_path, coach_provider="auto", polygon_api_key="pk"))
    assert names(only_p)["chain"] == ["polygon"] and isinstance(only_p.routes["bars"][1], YahooMarket)


def test_tradier_env_unset_means_the_token_decides(tmp_path, monkeypatch):
    m = build_market(settings(tmp_path, coach_provider="tradier", tradier_access_token="tk"))
    assert m.routes["quote"][0].client.env == "auto"
    monkeypatch.setenv("TRADIER_ENV", "production")
    m = build_market(Settings(_env_file=None, coach_provider="tradier", tradier_access_token="tk"))
    assert m.routes["quote"][0].client.env == "production"


def test_switches_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("DISABLE_POLYGON_OPTIONS", "1")
    monkeypatch.setenv("COACH_STALE_MINUTES", "5")
    m = build_market(settings(tmp_path, coach_provider="polygon", polygon_api_key="pk"))
    assert set(m.routes["chain"][0].disabled) == {"options", "contracts"}
    assert m.stale_after.total_seconds() == 300


@pytest.mark.parametrize(
    "provider,kw,words",
    [
        ("polygon", {}, "POLYGON_API_KEY is not set"),
        ("tradier,yahoo", {}, "TRADIER_ACCESS_TOKEN is not set"),
        ("bloomberg", {}, "unknown provider 'bloomberg'"),
        ("polygon;yahoo", {"polygon_api_key": "pk"}, "accepted: auto, sim, or a comma list"),
        ("yahoo,yahoo", {}, "twice"),
    ],
)
def test_bad_configuration_is_one_clear_config_error(tmp_path, provider, kw, words):
    with pytest.raises(ConfigError, match=words):
        build_market(settings(tmp_path, coach_provider=provider, **kw))


async def test_services_close_the_router_and_the_broker_defaults_to_paper(tmp_path):
    s = settings(tmp_path, coach_provider="polygon,yahoo", polygon_api_key="pk")
    services = await build_services(s)
    try:
        assert services.broker().name == "paper"
    finally:
        await services.close()
    assert services.market.routes["bars"][0].http._client.is_closed


async def test_tradier_broker_by_configuration(tmp_path, monkeypatch):
    monkeypatch.setenv("COACH_BROKER", "tradier")
    market = SimMarket()
    with pytest.raises(ConfigError, match="COACH_BROKER=tradier needs TRADIER_ACCESS_TOKEN"):
        build_broker(settings(tmp_path), market, lambda: None)
    b = build_broker(
        settings(tmp_path, tradier_access_token="tk", tradier_env="sandbox", tradier_account_id="VA1"), market, lambda: None
    )
    assert b.name == "tradier sandbox" and b.account_id == "VA1"
    await b.aclose()


def test_polygon_stream_for_the_alert_runtime(tmp_path, monkeypatch):
    make = stream_builder(settings(tmp_path, coach_provider="auto", polygon_api_key="pk"))
    stream = make(lambda: None, None)
    assert isinstance(stream, PolygonStream) and stream.url == "wss://socket.massive.com/stocks"
    monkeypatch.setenv("POLYGON_WS_URL", "wss://delayed.massive.com/stocks")
    assert (
        stream_builder(settings(tmp_path, coach_provider="polygon", polygon_api_key="pk"))(lambda: None, None).url
        == "wss://delayed.massive.com/stocks"
    )
    monkeypatch.setenv("DISABLE_POLYGON_STREAM", "true")
    assert stream_builder(settings(tmp_path, coach_provider="polygon", polygon_api_key="pk")) is None
    assert stream_builder(settings(tmp_path, coach_provider="yahoo")) is None  # the runtime polls quotes
