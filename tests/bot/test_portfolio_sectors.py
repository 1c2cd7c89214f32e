"""Portfolio sectors from Polygon's ticker details (SIC codes) where Polygon is configured, else the shipped mapping."""

from __future__ import annotations

import dataclasses

from bot.services import Later
from providers.http import RetryPolicy
from providers.polygon import PolygonMarket
from providers.router import MarketRouter
from tests.bot.test_positions import ANN, buy, say
from tests.providers.fakes import FakeAPI, SleepLog, fixture, resp


def with_polygon(svc, api: FakeAPI):
    """The offline market serves prices; Polygon is configured behind it (as the router's last quote source)."""
    pm = PolygonMarket("pk_test_SECRET", transport=api.transport(), sleep=SleepLog(), policy=RetryPolicy(attempts=1))
    sim = svc.market
    router = MarketRouter({"bars": [sim], "quote": [sim, pm], "expirations": [sim], "chain": [sim]}, clock=svc.clock)
    return dataclasses.replace(svc, market_part=Later.of(router), closers=[]), pm


async def test_sectors_come_from_polygon_sic_and_funds_keep_the_shipped_mapping(svc):
    # Polygon files AAPL under 3571 (computers); say TSLA answered 2834 (drugs) to see Polygon's answer win
    tsla = fixture("polygon/ticker_details.json")
    tsla["results"].update(ticker="TSLA", sic_code="2834", sic_description="PHARMACEUTICAL PREPARATIONS")
    api = FakeAPI().on("GET", "/v3/reference/tickers/AAPL", fixture("polygon/ticker_details.json"))
    api.on("GET", "/v3/reference/tickers/TSLA", tsla)
    api.on("GET", "/v3/reference/tickers/SPY", fixture("polygon/ticker_details_etf.json"))
    psvc, pm = with_polygon(svc, api)
    for line in ("AAPL buy 10", "TSLA buy 5", "SPY buy 3"):
        await buy(psvc, ANN, line)
    r = await say(psvc, ANN, "/portfolio --no-chart")
    res = r.data
    by = {s.symbol: s.sector for s in res.symbols}
    assert by == {"AAPL": "Information Technology", "TSLA": "Health Care", "SPY": "Index"}
    assert res.sector_source == "polygon SIC (shipped mapping for SPY)"
    assert "sectors: polygon SIC (shipped mapping for SPY)" in res.sources
    assert "(from polygon SIC (shipped mapping for SPY))" in r.body
    assert set(res.sectors) == {"Information Technology", "Health Care", "Index"}
    # a second /portfolio asks Polygon nothing: the details are cached
    before = len(api.requests)
    await say(psvc, ANN, "/portfolio --no-chart")
    assert len(api.requests) == before
    await pm.aclose()


async def test_polygon_failing_falls_back_to_the_shipped_mapping(svc):
    api = FakeAPI().on("GET", "/v3/reference/tickers/.*", resp(403, fixture("polygon/error_403_not_entitled.json")))
    psvc, pm = with_polygon(svc, api)
    await buy(psvc, ANN, "TSLA buy 5")
    res = (await say(psvc, ANN, "/portfolio --no-chart")).data
    assert res.sector_source == "shipped mapping" and res.symbols[0].sector == "Consumer Discretionary"
    await pm.aclose()


async def test_without_polygon_the_shipped_mapping_is_said(svc):
    await buy(svc, ANN, "TSLA buy 5")
    r = await say(svc, ANN, "/portfolio --no-chart")
    assert r.data.sector_source == "shipped mapping" and "(from shipped mapping)" in r.body
