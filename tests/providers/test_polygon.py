"""Polygon REST client against documented payload shapes served by httpx.MockTransport."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime

import pandas as pd
import pytest

from core.errors import NotFoundError, ProviderError, RateLimited
from providers.base import MarketData
from providers.http import AuthFailed, BadPayload, NotEntitled, RetryPolicy, UnknownSymbol
from providers.polygon import PolygonMarket
from tests.providers.fakes import FakeAPI, SleepLog, fixture, resp

NOW = datetime(2024, 3, 13, 15, 0, tzinfo=UTC)  # 11:00 ET, session open
AGGS = r"/v2/aggs/ticker/AAPL/range/.*"


def market(api: FakeAPI, **kw) -> PolygonMarket:
    return PolygonMarket(
        "pk_test_SECRET", transport=api.transport(), clock=lambda: NOW, sleep=SleepLog(), policy=RetryPolicy(attempts=2), **kw
    )


async def test_is_market_data():
    assert isinstance(market(FakeAPI()), MarketData)


async def test_daily_aggs_follow_next_url_with_auth_re_added_and_restamp_to_session_open():
    api = FakeAPI().on(
        "GET", r"/v2/aggs/ticker/AAPL/range/1/day/1578114000000/2020-01-10", fixture("polygon/aggs_day_page2.json")
    )
    api.on("GET", AGGS, fixture("polygon/aggs_day_page1.json"))
    pm = market(api)
    b = await pm.bars("AAPL", "1D", datetime(2005, 4, 1, 13, tzinfo=UTC), datetime(2005, 4, 6, tzinfo=UTC))
    assert len(api.requests) == 2
    first, second = api.requests
    assert first.url.params["adjusted"] == "true" and first.url.params["sort"] == "asc" and first.url.params["limit"] == "50000"
    assert first.url.path == "/v2/aggs/ticker/AAPL/range/1/day/2005-04-01/2005-04-05"
    # the next page goes to our base URL with the cursor and the key (header), not the raw next_url host
    assert second.url.host == "api.massive.com" and second.url.params["cursor"] == "bGltaXQ9MiZzb3J0PWFzYw"
    assert second.headers["Authorization"] == "Bearer pk_test_SECRET"
    assert list(b.df.columns) == ["open", "high", "low", "close", "volume"]
    # midnight-ET stamps become each session's 09:30 ET open, in UTC
    assert [t.isoformat() for t in b.df.index] == [
        "2005-04-01T14:30:00+00:00",
        "2005-04-04T13:30:00+00:00",
        "2005-04-05T13:30:00+00:00",
    ]
    assert b.df["close"].tolist() == [1.4604, 1.4675, 1.4771]
    assert b.df.dtypes.unique().tolist() == ["float64"] and b.source == "polygon"


async def test_query_auth_mode_adds_api_key_back_to_next_url():
    api = FakeAPI().on(
        "GET", r"/v2/aggs/ticker/AAPL/range/1/day/1578114000000/2020-01-10", fixture("polygon/aggs_day_page2.json")
    )
    api.on("GET", AGGS, fixture("polygon/aggs_day_page1.json"))
    pm = market(api, auth_in_query=True)
    await pm.bars("AAPL", "1D", datetime(2005, 4, 1, tzinfo=UTC), datetime(2005, 4, 6, tzinfo=UTC))
    assert [r.url.params.get("apiKey") for r in api.requests] == ["pk_test_SECRET"] * 2
    assert all("Authorization" not in r.headers for r in api.requests)


async def test_minute_aggs_keep_regular_hours_and_last_of_duplicates():
    payload = fixture("polygon/aggs_minute.json")
    dup = dict(payload["results"][-1], c=999.0)  # the same window re-sent after a late trade
    payload["results"].append(dup)
    api = FakeAPI().on("GET", AGGS, payload)
    pm = market(api)
    b = await pm.bars("AAPL", "1m", datetime(2024, 3, 13, 11, tzinfo=UTC), NOW)
    req = api.requests[0]
    assert req.url.path.startswith("/v2/aggs/ticker/AAPL/range/1/minute/")
    assert len(b.df) == 5  # the 08:00 ET pre-market bar is dropped
    assert b.df.index[0] == pd.Timestamp("2024-03-13 14:30", tz="UTC")
    assert b.df["close"].iloc[-1] == 999.0
    assert b.df.index.is_unique and b.df.index.is_monotonic_increasing


async def test_hourly_bars_are_resampled_from_30m_at_the_open():
    base = 1710336600000  # 09:30 ET
    rows = [
        {"v": 100.0, "vw": 1, "o": 10 + i, "c": 10.5 + i, "h": 11 + i, "l": 9 + i, "t": base + i * 1_800_000, "n": 1}
        for i in range(3)
    ]
    api = FakeAPI().on(
        "GET",
        r"/v2/aggs/ticker/AAPL/range/30/minute/.*",
        {
            "ticker": "AAPL",
            "queryCount": 3,
            "resultsCount": 3,
            "adjusted": True,
            "results": rows,
            "status": "OK",
            "request_id": "x",
            "count": 3,
        },
    )
    b = await market(api).bars("AAPL", "1h", datetime(2024, 3, 13, 13, tzinfo=UTC), NOW)
    assert [t.strftime("%H:%M") for t in b.df.index.tz_convert("America/New_York")] == ["09:30", "10:30"]
    assert b.df["open"].tolist() == [10.0, 12.0] and b.df["high"].tolist() == [12.0, 13.0]


async def test_empty_range_and_unknown_ticker_give_empty_frames():
    api = FakeAPI().on("GET", AGGS, fixture("polygon/aggs_empty.json"))
    b = await market(api).bars("AAPL", "5m", datetime(2024, 3, 9, tzinfo=UTC), datetime(2024, 3, 10, tzinfo=UTC))
    assert b.df.empty and list(b.df.columns) == ["open", "high", "low", "close", "volume"]


async def test_delayed_status_is_labelled():
    api = FakeAPI().on("GET", AGGS, fixture("polygon/aggs_delayed.json"))
    b = await market(api).bars("AAPL", "1m", datetime(2024, 3, 13, 14, tzinfo=UTC), NOW)
    assert b.source == "polygon delayed"


async def test_long_minute_ranges_are_split_into_30_day_windows():
    api = FakeAPI().on("GET", AGGS, fixture("polygon/aggs_empty.json"))
    await market(api).bars("AAPL", "5m", datetime(2024, 1, 1, tzinfo=UTC), NOW)
    assert len(api.requests) == 3


async def test_snapshot_quote_reads_ticker_key_with_ask_upper_bid_lower_and_ns_stamp():
    api = FakeAPI().on("GET", "/v2/snapshot/locale/us/markets/stocks/tickers/AAPL", fixture("polygon/snapshot_ticker.json"))
    q = await market(api).quote("AAPL")
    assert (q.bid, q.ask, q.last, q.bid_size, q.ask_size) == (120.46, 120.47, 120.47, 8, 4)
    assert q.prev_close == 119.49 and q.volume == 28727868
    assert q.as_of == datetime.fromtimestamp(1605195918507251700 / 1e9, tz=UTC)


async def test_snapshot_not_entitled_switches_family_off_once_and_uses_last_trade_and_nbbo(caplog):
    api = FakeAPI().on("GET", "/v2/snapshot/.*", resp(403, fixture("polygon/error_403_not_entitled.json")))
    api.on("GET", "/v2/last/trade/AAPL", fixture("polygon/last_trade.json"))
    api.on("GET", "/v2/last/nbbo/AAPL", fixture("polygon/last_nbbo.json"))
    pm = market(api)
    with caplog.at_level(logging.INFO, logger="coach.providers"):
        q = await pm.quote("AAPL")
        pm.cache.invalidate()
        await pm.quote("AAPL")
        pm.cache.invalidate()
        await pm.quote("AAPL")
    assert (q.bid, q.ask, q.last) == (127.96, 127.98, 129.8473)
    assert q.bid_size == 1 and q.ask_size == 7
    assert q.as_of == datetime.fromtimestamp(1617901342969834000 / 1e9, tz=UTC)
    assert len(api.calls("/v2/snapshot/.*")) == 1  # switched off after the first 403
    lines = [r for r in caplog.records if "switched off" in r.getMessage()]
    assert len(lines) == 1 and lines[0].levelno == logging.INFO and "stock snapshots" in lines[0].getMessage()
    assert "pk_test_SECRET" not in caplog.text


async def test_disable_by_hand_sends_nothing_for_that_family():
    api = FakeAPI()
    pm = market(api, disabled=["options"])
    with pytest.raises(NotEntitled, match="options chain snapshots not available"):
        await pm.chain("AAPL", date(2023, 6, 16))
    assert api.requests == []


async def test_options_chain_pages_greeks_missing_iv_decimal_and_occ_symbols():
    api = FakeAPI().on(
        "GET",
        "/v3/snapshot/options/AAPL",
        fixture("polygon/options_chain_page1.json"),
        fixture("polygon/options_chain_page2.json"),
    )
    ch = await market(api).chain("AAPL", date(2023, 6, 16))
    assert api.requests[0].url.params["expiration_date"] == "2023-06-16" and api.requests[0].url.params["limit"] == "250"
    assert api.requests[1].url.params["cursor"].startswith("YXA9")
    assert [c.symbol for c in ch.contracts] == ["AAPL230616C00150000", "AAPL230616P00220000"]
    call, put = ch.contracts
    assert (call.bid, call.ask, call.iv, call.delta, call.open_interest) == (28.9, 29.25, 0.357, 0.6437, 8133)
    assert put.delta is None and put.gamma is None and put.iv == 0.512  # greeks omitted: left empty, not guessed
    assert put.bid == 0.0 and put.last == 60.1  # no last_quote on this one
    assert ch.underlying_price == 159.9606 and ch.source == "polygon"


async def test_empty_chain_for_unlisted_expiration_names_the_nearest_ones():
    api = FakeAPI().on("GET", "/v3/snapshot/options/AAPL", fixture("polygon/options_chain_empty.json"))
    api.on("GET", "/v3/reference/options/contracts", fixture("polygon/contracts.json"))
    pm = PolygonMarket("k", transport=api.transport(), clock=lambda: datetime(2023, 6, 1, 15, tzinfo=UTC))
    with pytest.raises(NotFoundError, match="nearest listed: 2023-06-16, 2023-06-23"):
        await pm.chain("AAPL", date(2023, 6, 9))
    assert await pm.expirations("AAPL") == [date(2023, 6, 16), date(2023, 6, 23)]
    ref = api.calls("/v3/reference/options/contracts")[0]
    assert ref.url.params["underlying_ticker"] == "AAPL" and ref.url.params["expiration_date.gte"] == "2023-06-01"


async def test_expired_key_is_one_line_naming_the_key_variable():
    api = FakeAPI().on("GET", AGGS, resp(401, fixture("polygon/error_401.json")))
    with pytest.raises(AuthFailed) as ei:
        await market(api).bars("AAPL", "1D", datetime(2024, 3, 1, tzinfo=UTC), NOW)
    msg = str(ei.value)
    assert msg.startswith("polygon:") and "Unknown API Key" in msg and "POLYGON_API_KEY" in msg
    assert "pk_test_SECRET" not in msg


async def test_free_tier_today_refusal_fetches_until_yesterday_without_switching_off():
    today = resp(403, fixture("polygon/error_403_today.json"))
    api = FakeAPI().on("GET", r"/v2/aggs/ticker/AAPL/range/1/day/2024-03-01/2024-03-13", today)
    api.on("GET", r"/v2/aggs/ticker/AAPL/range/1/day/2024-03-01/2024-03-12", fixture("polygon/aggs_empty.json"))
    pm = market(api)
    b = await pm.bars("AAPL", "1D", datetime(2024, 3, 1, 15, tzinfo=UTC), NOW)
    assert b.source == "polygon delayed" and "aggs" not in pm.disabled
    assert len(api.requests) == 2


async def test_rate_limited_after_retries():
    api = FakeAPI().on("GET", AGGS, resp(429, fixture("polygon/error_429.json")))
    with pytest.raises(RateLimited) as ei:
        await market(api).bars("AAPL", "1D", datetime(2024, 3, 1, tzinfo=UTC), NOW)
    assert ei.value.provider == "polygon" and "exceeded the maximum requests" in str(ei.value)


async def test_malformed_payloads_are_bad_payload_not_crashes():
    api = FakeAPI().on("GET", AGGS, {"status": "OK", "results": {"not": "a list"}})
    with pytest.raises(BadPayload):
        await market(api).bars("AAPL", "1D", datetime(2024, 3, 1, tzinfo=UTC), NOW)
    api2 = FakeAPI().on("GET", AGGS, {"status": "OK", "results": [{"o": 1, "c": 2}]})
    with pytest.raises(BadPayload, match="`t`"):
        await market(api2).bars("AAPL", "1D", datetime(2024, 3, 1, tzinfo=UTC), NOW)
    api3 = FakeAPI().on("GET", "/v2/snapshot/.*", {"status": "OK", "request_id": "x"})
    with pytest.raises(UnknownSymbol):
        await market(api3).quote("ZZZZQ")


async def test_bad_answers_are_not_cached():
    api = FakeAPI().on("GET", "/v2/snapshot/.*", resp(500, {"error": "x"}), fixture("polygon/snapshot_ticker.json"))
    pm = PolygonMarket("k", transport=api.transport(), clock=lambda: NOW, sleep=SleepLog(), policy=RetryPolicy(attempts=1))
    with pytest.raises(ProviderError):
        await pm.quote("AAPL")
    q = await pm.quote("AAPL")
    assert q.last == 120.47


async def test_ticker_details_give_the_sic_industry_cached_a_day():
    api = FakeAPI().on("GET", "/v3/reference/tickers/AAPL", fixture("polygon/ticker_details.json"))
    api.on("GET", "/v3/reference/tickers/SPY", fixture("polygon/ticker_details_etf.json"))
    pm = market(api)
    assert await pm.industry("aapl") == ("3571", "ELECTRONIC COMPUTERS")
    assert await pm.industry("AAPL") == ("3571", "ELECTRONIC COMPUTERS")
    assert len(api.calls("/v3/reference/tickers/AAPL")) == 1  # the second answer came from the cache
    assert api.requests[0].headers["Authorization"] == "Bearer pk_test_SECRET"
    assert await pm.industry("SPY") == (None, None)  # a fund has no SIC code


async def test_ticker_details_unknown_ticker_and_entitlement():
    api = FakeAPI().on("GET", "/v3/reference/tickers/ZZZZ", resp(404, {"status": "NOT_FOUND", "request_id": "x"}))
    api.on("GET", "/v3/reference/tickers/AAPL", resp(403, fixture("polygon/error_403_not_entitled.json")))
    pm = market(api)
    with pytest.raises(UnknownSymbol):
        await pm.industry("ZZZZ")
    with pytest.raises(NotEntitled):
        await pm.industry("AAPL")
    assert "reference" in pm.disabled
    with pytest.raises(NotEntitled):  # switched off: no second request
        await pm.industry("MSFT")
    assert api.calls("/v3/reference/tickers/MSFT") == []
