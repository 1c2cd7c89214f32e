"""The router over real clients whose transports fail on cue: fallback, staleness, breakers, 429, labels."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta

import pytest

from core.errors import NotFoundError, ProviderError, RateLimited
from providers.base import MarketData
from providers.http import CircuitBreaker, RetryPolicy
from providers.polygon import PolygonMarket
from providers.router import MarketRouter, build_router
from providers.sim import SimMarket
from providers.tradier import TradierClient, TradierMarket
from providers.yahoo import YahooMarket
from tests.providers.fakes import FakeAPI, SleepLog, fixture, polygon_aggs, resp, yahoo_chart

NOW = datetime(2024, 3, 13, 15, 0, tzinfo=UTC)  # 11:00 ET, regular session
AGGS = r"/v2/aggs/ticker/.*"
CHART = r"/v8/finance/chart/.*"


def minutes(end: datetime, n: int) -> list[datetime]:
    """n consecutive minute stamps, the last one starting at `end` - 1 min."""
    return [end - timedelta(minutes=n - i) for i in range(n)]


def ms(ts: list[datetime]) -> list[int]:
    return [int(t.timestamp() * 1000) for t in ts]


def secs(ts: list[datetime]) -> list[int]:
    return [int(t.timestamp()) for t in ts]


class Rig:
    """Polygon + Yahoo (+ Tradier) clients on fakes, all on one pinned clock."""

    def __init__(self, now: datetime = NOW, threshold: int = 5) -> None:
        self.now = now
        self.poly, self.yahoo, self.trad = FakeAPI(), FakeAPI(), FakeAPI()
        pol = RetryPolicy(attempts=2, max_wait=5)
        clock = lambda: self.now  # noqa: E731
        self.polygon = PolygonMarket("pk", transport=self.poly.transport(), clock=clock, sleep=SleepLog(), policy=pol)
        self.polygon.http.breaker = self.polygon.breaker = CircuitBreaker("polygon", threshold=threshold, cooldown=60)
        self.ymkt = YahooMarket(transport=self.yahoo.transport(), clock=clock, sleep=SleepLog(), policy=pol)
        self.tmkt = TradierMarket(
            TradierClient("tk", env="sandbox", transport=self.trad.transport(), sleep=SleepLog(), policy=pol), clock=clock
        )

    def router(self, **kw) -> MarketRouter:
        return MarketRouter(
            {
                "bars": [self.polygon, self.ymkt],
                "quote": [self.tmkt, self.polygon, self.ymkt],
                "expirations": [self.tmkt, self.polygon],
                "chain": [self.tmkt, self.polygon],
            },
            clock=lambda: self.now,
            **kw,
        )


async def test_router_is_market_data_and_primary_serves_when_fresh():
    rig = Rig()
    rig.poly.on("GET", AGGS, polygon_aggs("AAPL", ms(minutes(NOW, 30))))
    r = rig.router()
    assert isinstance(r, MarketData)
    b = await r.bars("AAPL", "1m", NOW - timedelta(hours=1), NOW)
    assert b.source == "polygon" and len(b.df) == 30
    assert rig.yahoo.requests == []


async def test_429_falls_back_and_the_source_says_why():
    rig = Rig()
    rig.poly.on("GET", AGGS, resp(429, fixture("polygon/error_429.json"), {"Retry-After": "60"}))
    rig.yahoo.on("GET", CHART, yahoo_chart("AAPL", secs(minutes(NOW, 30))))
    b = await rig.router().bars("AAPL", "1m", NOW - timedelta(hours=1), NOW)
    assert b.source == "yahoo (after polygon: rate limited)"
    assert len(rig.poly.requests) == 1  # a 60 s Retry-After beyond our patience: no pointless retry
    assert len(b.df) == 30


async def test_stale_primary_falls_back_before_warning():
    rig = Rig()
    old_end = NOW - timedelta(minutes=30)
    rig.poly.on("GET", AGGS, polygon_aggs("AAPL", ms(minutes(old_end, 30))))
    rig.yahoo.on("GET", CHART, yahoo_chart("AAPL", secs(minutes(NOW, 30))))
    b = await rig.router().bars("AAPL", "1m", NOW - timedelta(hours=2), NOW)
    assert b.source == "yahoo (after polygon: stale: newest bar ended 30 min ago)"
    assert b.df.index[-1] == NOW - timedelta(minutes=1)


async def test_all_stale_returns_labelled_stale_data_and_logs_a_stale_feed_warning(caplog):
    rig = Rig()
    rig.poly.on("GET", AGGS, polygon_aggs("AAPL", ms(minutes(NOW - timedelta(minutes=40), 10))))
    rig.yahoo.on("GET", CHART, yahoo_chart("AAPL", secs(minutes(NOW - timedelta(minutes=20), 10))))
    with caplog.at_level(logging.WARNING, logger="coach.providers"):
        b = await rig.router().bars("AAPL", "1m", NOW - timedelta(hours=2), NOW)
    assert b.source.startswith("polygon (stale: newest bar ended 40 min ago)")
    assert "yahoo: stale: newest bar ended 20 min ago" in b.source
    assert any("stale_feed" in r.getMessage() for r in caplog.records)


async def test_fifteen_minutes_is_the_default_threshold():
    rig = Rig()
    rig.poly.on("GET", AGGS, polygon_aggs("AAPL", ms(minutes(NOW - timedelta(minutes=14), 10))))
    b = await rig.router().bars("AAPL", "1m", NOW - timedelta(hours=1), NOW)
    assert b.source == "polygon"
    rig2 = Rig()
    rig2.poly.on("GET", AGGS, polygon_aggs("AAPL", ms(minutes(NOW - timedelta(minutes=14), 10))))
    rig2.yahoo.on("GET", CHART, yahoo_chart("AAPL", secs(minutes(NOW, 10))))
    b2 = await rig2.router(stale_after=timedelta(minutes=5)).bars("AAPL", "1m", NOW - timedelta(hours=1), NOW)
    assert b2.source.startswith("yahoo")


async def test_freshness_is_not_judged_for_history_or_outside_regular_hours():
    rig = Rig()
    rig.poly.on("GET", AGGS, polygon_aggs("AAPL", ms(minutes(NOW - timedelta(days=1, minutes=60), 10))))
    r = rig.router()
    b = await r.bars("AAPL", "1m", NOW - timedelta(days=2), NOW - timedelta(days=1))  # an old window
    assert b.source == "polygon"
    rig.now = datetime(2024, 3, 13, 22, 0, tzinfo=UTC)  # 18:00 ET, after the close
    b = await r.bars("AAPL", "1m", rig.now - timedelta(days=2), rig.now)
    assert b.source == "polygon"


async def test_daily_series_missing_the_previous_session_is_stale():
    rig = Rig()
    rig.poly.on("GET", AGGS, polygon_aggs("AAPL", [int(datetime(2024, 3, 8, 5, tzinfo=UTC).timestamp() * 1000)]))
    rig.yahoo.on("GET", CHART, fixture("yahoo/chart_1d.json"))  # has 2024-03-12
    b = await rig.router().bars("AAPL", "1D", datetime(2024, 3, 1, 15, tzinfo=UTC), NOW)
    assert b.source == "yahoo (after polygon: stale: newest daily bar 2024-03-08)"


async def test_circuit_breaker_skips_a_failing_provider_without_requests():
    rig = Rig(threshold=2)
    rig.poly.on("GET", AGGS, resp(503, {"status": "ERROR", "error": "upstream down"}))
    rig.yahoo.on("GET", CHART, yahoo_chart("AAPL", secs(minutes(NOW, 5))))
    r = rig.router()
    for _ in range(2):
        b = await r.bars("AAPL", "1m", NOW - timedelta(hours=1), NOW)
        assert b.source == "yahoo (after polygon: unavailable)"
    sent = len(rig.poly.requests)
    b = await r.bars("AAPL", "1m", NOW - timedelta(hours=1), NOW)
    assert b.source == "yahoo (after polygon: paused after failures)"
    assert len(rig.poly.requests) == sent
    assert r.describe()["health"]["polygon"] == "open"


async def test_unknown_symbol_everywhere_is_a_clear_not_found_naming_each_provider():
    rig = Rig()
    rig.poly.on("GET", AGGS, fixture("polygon/aggs_empty.json"))
    rig.yahoo.on("GET", CHART, resp(404, fixture("yahoo/chart_404.json")))
    with pytest.raises(NotFoundError) as ei:
        await rig.router().bars("ZZZZQ", "1D", datetime(2024, 3, 1, 15, tzinfo=UTC), NOW)
    msg = str(ei.value)
    assert "unknown symbol ZZZZQ" in msg and "polygon: no bars" in msg and "yahoo: unknown symbol" in msg


async def test_every_provider_failing_names_each_with_its_reason():
    rig = Rig()
    rig.poly.on("GET", AGGS, resp(401, fixture("polygon/error_401.json")))
    rig.yahoo.on("GET", CHART, resp(500, "Internal"))
    with pytest.raises(ProviderError) as ei:
        await rig.router().bars("AAPL", "1D", datetime(2024, 3, 1, 15, tzinfo=UTC), NOW)
    assert ei.value.provider == "polygon, yahoo"
    assert "Unknown API Key" in ei.value.reason and "HTTP 500" in ei.value.reason


async def test_all_rate_limited_is_rate_limited_with_the_shortest_wait():
    rig = Rig()
    rig.poly.on("GET", AGGS, resp(429, "", {"Retry-After": "40"}))
    rig.yahoo.on("GET", CHART, resp(429, "Too Many Requests", {"Retry-After": "20"}))
    with pytest.raises(RateLimited) as ei:
        await rig.router().bars("AAPL", "1D", datetime(2024, 3, 1, 15, tzinfo=UTC), NOW)
    assert ei.value.retry_after == 20


async def test_malformed_answer_falls_back_and_is_not_cached():
    rig = Rig()
    rig.poly.on("GET", "/v2/snapshot/.*", {"status": "OK", "ticker": {"ticker": "AAPL"}}, fixture("polygon/snapshot_ticker.json"))
    rig.yahoo.on("GET", CHART, yahoo_chart("AAPL", secs(minutes(NOW, 5)), price=120.0))
    rig.now = datetime(2020, 11, 12, 15, 45, tzinfo=UTC)  # the snapshot fixture's own day (open)
    r = rig.router()
    q = await r.quote("AAPL")
    assert q.source == "yahoo (after tradier sandbox: sandbox quotes unavailable, polygon: malformed answer)"
    q2 = await r.quote("AAPL")
    assert q2.source == "polygon (after tradier sandbox: sandbox quotes unavailable)" and q2.last == 120.47


async def test_chains_come_from_tradier_and_an_unlisted_expiration_is_not_a_fallback():
    rig = Rig()
    rig.trad.on("GET", "/v1/markets/options/chains", fixture("tradier/chain_list.json"), fixture("tradier/chain_null.json"))
    rig.trad.on("GET", "/v1/markets/quotes", fixture("tradier/quote_tsla.json"))
    rig.trad.on("GET", "/v1/markets/options/expirations", fixture("tradier/expirations.json"))
    rig.now = datetime(2024, 1, 12, 15, tzinfo=UTC)
    r = rig.router()
    ch = await r.chain("TSLA", date(2024, 1, 19))
    assert ch.source == "tradier sandbox" and len(ch.contracts) == 2
    with pytest.raises(NotFoundError, match="nearest listed"):
        await r.chain("TSLA", date(2024, 1, 20))
    assert rig.poly.requests == []


async def test_polygon_options_off_after_403_then_no_more_requests():
    rig = Rig()
    rig.trad.on("GET", "/v1/.*", resp(500, "oops"))
    rig.poly.on("GET", "/v3/snapshot/options/.*", resp(403, fixture("polygon/error_403_not_entitled.json")))
    r = rig.router()
    for _ in range(2):
        with pytest.raises(ProviderError) as ei:
            await r.chain("AAPL", date(2024, 3, 15))
        assert "polygon" in ei.value.provider
        assert "not in this plan" in ei.value.reason or "not available" in ei.value.reason
    assert len(rig.poly.calls("/v3/snapshot/options/.*")) == 1
    assert "options" in r.describe()["disabled"]["polygon"]


async def test_past_quotes_come_from_bars_for_live_providers_and_historical_chains_are_refused():
    rig = Rig()
    past = datetime(2024, 3, 6, 17, 0, tzinfo=UTC)
    rig.poly.on("GET", AGGS, polygon_aggs("AAPL", ms(minutes(past, 3)), price=170.0))
    r = MarketRouter(
        {"bars": [rig.polygon], "quote": [rig.polygon], "chain": [rig.polygon], "expirations": [rig.polygon]}, clock=lambda: NOW
    )
    q = await r.quote("AAPL", at=past)
    assert q.last == 170.02 and q.as_of == past and "1m close" in q.source
    assert rig.poly.calls("/v2/snapshot/.*") == []
    with pytest.raises(ProviderError, match="no historical chains"):
        await r.chain("AAPL", date(2024, 3, 8), at=past)


async def test_the_offline_market_answers_history_through_the_router():
    sim = SimMarket(seed=0, now=lambda: NOW)
    r = build_router([sim], clock=lambda: NOW)
    past = datetime(2024, 3, 6, 17, 0, tzinfo=UTC)
    exps = await r.expirations("SPY", at=past)
    ch = await r.chain("SPY", exps[0], at=past)
    assert ch.source == "sim" and ch.contracts
    q = await r.quote("SPY", at=past)
    assert q.source == "sim" and q.as_of <= past


async def test_a_provider_bug_is_contained_and_labelled():
    class Broken:
        name = "broken"

        async def bars(self, *a, **k):
            raise KeyError("oops")

    sim = SimMarket(seed=0, now=lambda: NOW)
    r = build_router([Broken(), sim], clock=lambda: NOW)
    b = await r.bars("AAPL", "5m", NOW - timedelta(hours=2), NOW)
    assert b.source == "sim (after broken: failed)"
