"""Tradier market data against documented payloads: the object-for-one / null-for-none quirk, batching, sandbox."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime

import pandas as pd
import pytest

from core.errors import NotFoundError
from providers.base import MarketData
from providers.http import AuthFailed, BadPayload, RetryPolicy, UnknownSymbol, Unsupported
from providers.tradier import SANDBOX_URL, TradierClient, TradierMarket, items
from tests.providers.fakes import FakeAPI, SleepLog, fixture, resp

NOW = datetime(2024, 3, 13, 15, 0, tzinfo=UTC)


def market(api: FakeAPI, env: str = "production") -> TradierMarket:
    client = TradierClient("tok_SECRET", env=env, transport=api.transport(), sleep=SleepLog(), policy=RetryPolicy(attempts=2))
    return TradierMarket(client, clock=lambda: NOW)


def test_items_handles_object_list_and_null_in_one_place():
    assert items(fixture("tradier/quotes_single.json"), "quotes", "quote")[0]["symbol"] == "AAPL"
    assert [q["symbol"] for q in items(fixture("tradier/quotes_list_unmatched.json"), "quotes", "quote")] == ["AAPL", "SPY"]
    assert items(fixture("tradier/quotes_unmatched.json"), "quotes", "quote") == []
    assert items(fixture("tradier/quotes_unmatched.json"), "quotes", "unmatched_symbols", "symbol") == ["SEFDF"]
    assert items(fixture("tradier/chain_null.json"), "options", "option") == []
    assert items(fixture("tradier/history_null.json"), "history", "day") == []
    assert items(fixture("tradier/timesales_null.json"), "series", "data") == []
    assert items(fixture("tradier/expirations_single.json"), "expirations", "date") == ["2024-01-19"]
    assert len(items(fixture("tradier/chain_single.json"), "options", "option")) == 1
    with pytest.raises(BadPayload):
        items({"quotes": ["not", "an", "object"]}, "quotes", "quote")


async def test_is_market_data_and_sends_json_accept_and_bearer():
    api = FakeAPI().on("GET", "/v1/markets/quotes", fixture("tradier/quotes_single.json"))
    tm = market(api)
    assert isinstance(tm, MarketData)
    q = await tm.quote("AAPL")
    req = api.requests[0]
    assert req.headers["Accept"] == "application/json" and req.headers["Authorization"] == "Bearer tok_SECRET"
    assert req.url.host == "api.tradier.com" and req.url.params["symbols"] == "AAPL"
    assert (q.bid, q.ask, q.last, q.bid_size, q.ask_size, q.prev_close) == (186.08, 186.09, 186.07, 2, 3, 185.59)
    assert q.as_of == datetime.fromtimestamp(1705072235, tz=UTC)  # *_date fields are ms


async def test_quotes_are_batched_25_per_request_and_cached_15s():
    seen: list[list[str]] = []

    def answer(request):
        syms = request.url.params["symbols"].split(",")
        seen.append(syms)
        one = fixture("tradier/quotes_single.json")["quotes"]["quote"]
        return resp(200, {"quotes": {"quote": [dict(one, symbol=s) for s in syms]}})

    api = FakeAPI().on("GET", "/v1/markets/quotes", answer)
    tm = market(api)
    syms = [f"S{i:02d}" for i in range(60)]
    got = await tm.quotes(syms)
    assert sorted(len(b) for b in seen) == [10, 25, 25] and set(got) == set(syms)
    await tm.quotes(syms[:30])
    assert len(seen) == 3  # all cached


async def test_unknown_symbol_comes_back_unmatched():
    api = FakeAPI().on("GET", "/v1/markets/quotes", fixture("tradier/quotes_unmatched.json"))
    with pytest.raises(UnknownSymbol, match="tradier: unknown symbol SEFDF"):
        await market(api).quote("SEFDF")


async def test_expirations_single_list_and_null():
    api = FakeAPI().on("GET", "/v1/markets/options/expirations", fixture("tradier/expirations_single.json"))
    tm = market(api)
    at = datetime(2024, 1, 12, 15, tzinfo=UTC)
    assert await tm.expirations("SPY", at) == [date(2024, 1, 19)]
    api2 = FakeAPI().on("GET", "/v1/markets/options/expirations", fixture("tradier/expirations.json"))
    assert await market(api2).expirations("SPY", at) == [date(2024, 1, 19), date(2024, 1, 26), date(2024, 2, 16)]
    api3 = FakeAPI().on("GET", "/v1/markets/options/expirations", fixture("tradier/expirations_null.json"))
    assert await market(api3).expirations("ZZZZ", at) == []


async def test_chain_with_greeks_guarded_and_single_object():
    api = FakeAPI().on("GET", "/v1/markets/options/chains", fixture("tradier/chain_list.json"))
    api.on("GET", "/v1/markets/quotes", fixture("tradier/quote_tsla.json"))
    tm = market(api)
    ch = await tm.chain("TSLA", date(2024, 1, 19))
    req = api.calls("/v1/markets/options/chains")[0]
    assert req.url.params["greeks"] == "true" and req.url.params["expiration"] == "2024-01-19"
    call, put = ch.contracts  # sorted by strike
    assert put.symbol == "TSLA240119P00290000" and put.iv == pytest.approx(1.282883) and put.delta == pytest.approx(-0.99985)
    assert call.delta is None and call.iv is None  # "greeks": null
    assert ch.underlying_price == 218.89 and ch.source == "tradier"
    await tm.chain("TSLA", date(2024, 1, 19))
    assert len(api.calls("/v1/markets/options/chains")) == 1  # cached 15 s
    api2 = FakeAPI().on("GET", "/v1/markets/options/chains", fixture("tradier/chain_single.json"))
    api2.on("GET", "/v1/markets/quotes", fixture("tradier/quote_tsla.json"))
    assert len((await market(api2).chain("TSLA", date(2024, 1, 19))).contracts) == 1


async def test_null_chain_means_unlisted_expiration_or_unknown_symbol():
    api = FakeAPI().on("GET", "/v1/markets/options/chains", fixture("tradier/chain_null.json"))
    api.on("GET", "/v1/markets/options/expirations", fixture("tradier/expirations.json"))
    tm = TradierMarket(
        TradierClient("t", env="production", transport=api.transport()), clock=lambda: datetime(2024, 1, 12, 15, tzinfo=UTC)
    )
    with pytest.raises(NotFoundError, match="nearest listed"):
        await tm.chain("TSLA", date(2024, 1, 20))
    assert "chain" not in str(tm.cache._data.keys())  # nothing cached from a bad answer
    api2 = FakeAPI().on("GET", "/v1/markets/options/chains", fixture("tradier/chain_null.json"))
    api2.on("GET", "/v1/markets/options/expirations", fixture("tradier/expirations_null.json"))
    with pytest.raises(UnknownSymbol):
        await market(api2).chain("ZZZZ", date(2024, 1, 19))


async def test_daily_history_and_single_day_object():
    api = FakeAPI().on("GET", "/v1/markets/history", fixture("tradier/history.json"))
    b = await market(api).bars("AAPL", "1D", datetime(2024, 3, 11, 13, tzinfo=UTC), NOW)
    req = api.requests[0]
    assert (
        req.url.params["interval"] == "daily"
        and req.url.params["start"] == "2024-03-11"
        and req.url.params["end"] == "2024-03-13"
    )
    assert [t.isoformat() for t in b.df.index] == ["2024-03-11T13:30:00+00:00", "2024-03-12T13:30:00+00:00"]
    api2 = FakeAPI().on("GET", "/v1/markets/history", fixture("tradier/history_single.json"))
    assert len((await market(api2).bars("AAPL", "1D", datetime(2024, 3, 11, 13, tzinfo=UTC), NOW)).df) == 1
    api3 = FakeAPI().on("GET", "/v1/markets/history", fixture("tradier/history_null.json"))
    assert (await market(api3).bars("AAPL", "1D", datetime(2024, 3, 11, 13, tzinfo=UTC), NOW)).df.empty


async def test_timesales_minutes_use_second_timestamps_and_regular_session():
    api = FakeAPI().on("GET", "/v1/markets/timesales", fixture("tradier/timesales.json"))
    b = await market(api).bars("AAPL", "1m", datetime(2024, 3, 13, 14, tzinfo=UTC), NOW)
    req = api.requests[0]
    assert req.url.params["interval"] == "1min" and req.url.params["session_filter"] == "open"
    assert req.url.params["start"] == "2024-03-13 10:00" and req.url.params["end"] == "2024-03-13 11:00"
    assert b.df.index[0] == pd.Timestamp("2024-03-13 14:30", tz="UTC") and len(b.df) == 3
    api2 = FakeAPI().on("GET", "/v1/markets/timesales", fixture("tradier/timesales_single.json"))
    assert len((await market(api2).bars("AAPL", "1m", datetime(2024, 3, 13, 14, tzinfo=UTC), NOW)).df) == 1


async def test_sandbox_skips_quotes_logs_once_and_uses_sandbox_host(caplog):
    api = FakeAPI().on("GET", "/v1/markets/history", fixture("tradier/history.json"))
    tm = market(api, env="sandbox")
    with caplog.at_level(logging.INFO, logger="coach.providers"):
        for _ in range(3):
            with pytest.raises(Unsupported, match="sandbox quotes unavailable"):
                await tm.quote("AAPL")
    assert [r.getMessage() for r in caplog.records].count("tradier sandbox: quotes skipped (sandbox quotes unavailable)") == 1
    b = await tm.bars("AAPL", "1D", datetime(2024, 3, 11, 13, tzinfo=UTC), NOW)
    assert api.requests[0].url.host == "sandbox.tradier.com" and b.source == "tradier sandbox"
    assert not api.calls("/v1/markets/quotes")


async def test_auto_env_detects_a_sandbox_token():
    def profile(request):
        if request.url.host == "api.tradier.com":
            return resp(401, "Invalid Access Token")
        return resp(200, fixture("tradier/profile.json"))

    api = FakeAPI().on("GET", "/v1/user/profile", profile)
    api.on("GET", "/v1/markets/history", fixture("tradier/history.json"))
    tm = market(api, env="auto")
    with pytest.raises(Unsupported, match="sandbox quotes unavailable"):
        await tm.quote("AAPL")
    assert tm.client.env == "sandbox" and tm.source == "tradier sandbox"
    await tm.bars("AAPL", "1D", datetime(2024, 3, 11, 13, tzinfo=UTC), NOW)
    assert api.requests[-1].url.host == "sandbox.tradier.com"


async def test_production_401_says_the_token_belongs_to_the_sandbox():
    def any_call(request):
        if request.url.host == "api.tradier.com":
            return resp(401, "Invalid Access Token")
        return resp(200, fixture("tradier/profile.json"))

    api = FakeAPI().on("GET", "/v1/.*", any_call)
    with pytest.raises(AuthFailed, match="belongs to the sandbox account; set TRADIER_ENV=sandbox"):
        await market(api).quote("AAPL")
    api2 = FakeAPI().on("GET", "/v1/.*", resp(401, "Invalid Access Token"))
    with pytest.raises(AuthFailed) as ei:
        await market(api2).quote("AAPL")
    assert "Invalid Access Token" in str(ei.value) and "TRADIER_ACCESS_TOKEN" in str(ei.value)
    assert "tok_SECRET" not in str(ei.value)


async def test_refusal_inside_a_200_body_and_malformed_rows():
    api = FakeAPI().on("GET", "/v1/markets/quotes", fixture("tradier/order_rejected.json"))
    with pytest.raises(Exception, match="DayTradingBuyingPowerExceeded"):
        await market(api).quote("AAPL")
    api2 = FakeAPI().on("GET", "/v1/markets/timesales", {"series": {"data": [{"time": "x", "price": 1}]}})
    with pytest.raises(BadPayload, match="timestamp"):
        await market(api2).bars("AAPL", "1m", datetime(2024, 3, 13, 14, tzinfo=UTC), NOW)
    assert SANDBOX_URL.startswith("https://sandbox")
