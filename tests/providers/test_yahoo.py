"""Yahoo chart API fallback: null bars, exchange time zone, limits, errors, the crumb dance."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core.errors import RateLimited
from providers.base import MarketData
from providers.http import BadPayload, BadRequest, RetryPolicy, UnknownSymbol, Unsupported
from providers.yahoo import YahooMarket
from tests.providers.fakes import FakeAPI, SleepLog, fixture, resp

NOW = datetime(2024, 3, 13, 15, 0, tzinfo=UTC)
CHART = r"/v8/finance/chart/.*"


def market(api: FakeAPI, now: datetime = NOW) -> YahooMarket:
    return YahooMarket(transport=api.transport(), clock=lambda: now, sleep=SleepLog(), policy=RetryPolicy(attempts=2))


async def test_minute_chart_drops_null_and_live_partial_bars():
    api = FakeAPI().on("GET", CHART, fixture("yahoo/chart_1m.json"))
    ym = market(api)
    assert isinstance(ym, MarketData)
    b = await ym.bars("AAPL", "1m", datetime(2024, 3, 13, 14, 25, tzinfo=UTC), NOW)
    req = api.requests[0]
    assert req.url.params["interval"] == "1m" and req.url.params["includePrePost"] == "false"
    assert int(req.url.params["period1"]) == int(datetime(2024, 3, 13, 14, 25, tzinfo=UTC).timestamp())
    assert "Mozilla" in req.headers["User-Agent"]
    local = [t.strftime("%H:%M") for t in b.df.index.tz_convert("America/New_York")]
    assert local == ["10:30", "10:31", "10:33"]  # 10:32 has a null close, 10:33:17 is the live partial bar
    assert b.df["open"].iloc[0] == 172.05  # a null open is filled from the close
    assert b.source == "yahoo"


async def test_daily_chart_uses_exchange_timezone_and_session_open_stamps():
    api = FakeAPI().on("GET", CHART, fixture("yahoo/chart_1d.json"))
    b = await market(api).bars("AAPL", "1D", datetime(2024, 3, 11, 13, tzinfo=UTC), NOW)
    assert api.requests[0].url.params["interval"] == "1d"
    assert [t.isoformat() for t in b.df.index] == ["2024-03-11T13:30:00+00:00", "2024-03-12T13:30:00+00:00"]
    assert b.df["close"].tolist() == [172.75, 173.23]


async def test_gmtoffset_is_used_when_the_zone_name_is_missing():
    payload = fixture("yahoo/chart_1d.json")
    del payload["chart"]["result"][0]["meta"]["exchangeTimezoneName"]
    payload["chart"]["result"][0]["meta"]["gmtoffset"] = 3600  # a European listing
    api = FakeAPI().on("GET", CHART, payload)
    b = await market(api).bars("AAPL", "1D", datetime(2024, 3, 10, tzinfo=UTC), NOW)
    assert [t.isoformat() for t in b.df.index] == ["2024-03-10T23:00:00+00:00", "2024-03-11T23:00:00+00:00"]


async def test_thirty_minute_bars_come_from_15m_and_minutes_are_chunked_and_clipped_to_30_days():
    api = FakeAPI().on("GET", CHART, fixture("yahoo/chart_empty.json"))
    ym = market(api)
    await ym.bars("AAPL", "30m", NOW - timedelta(days=3), NOW)
    assert api.requests[-1].url.params["interval"] == "15m"
    api.requests.clear()
    await ym.bars("AAPL", "1m", NOW - timedelta(days=90), NOW)
    starts = [int(r.url.params["period1"]) for r in api.requests]
    assert len(api.requests) == 5  # 30 days in 7-day requests
    assert min(starts) >= int((NOW - timedelta(days=30)).timestamp())
    with pytest.raises(Unsupported, match="1m bars only cover the last 30 days"):
        await ym.bars("AAPL", "1m", NOW - timedelta(days=90), NOW - timedelta(days=60))


async def test_empty_chart_is_an_empty_frame_not_an_error():
    api = FakeAPI().on("GET", CHART, fixture("yahoo/chart_empty.json"))
    b = await market(api).bars("AAPL", "5m", NOW - timedelta(days=1), NOW)
    assert b.df.empty


async def test_404_not_found_is_unknown_symbol_and_422_a_one_line_refusal():
    api = FakeAPI().on("GET", CHART, resp(404, fixture("yahoo/chart_404.json")))
    with pytest.raises(UnknownSymbol) as ei:
        await market(api).bars("ZZZZQ", "1D", NOW - timedelta(days=5), NOW)
    assert str(ei.value) == "yahoo: unknown symbol ZZZZQ (No data found, symbol may be delisted)"
    api2 = FakeAPI().on("GET", CHART, resp(422, fixture("yahoo/chart_422.json")))
    with pytest.raises(BadRequest, match="Only 8 days worth of 1m"):
        await market(api2).bars("AAPL", "1m", NOW - timedelta(days=2), NOW)


async def test_429_text_body_is_rate_limited():
    api = FakeAPI().on("GET", CHART, resp(429, "Too Many Requests"))
    with pytest.raises(RateLimited, match="Too Many Requests"):
        await market(api).bars("AAPL", "1D", NOW - timedelta(days=5), NOW)


async def test_crumb_is_fetched_once_when_yahoo_asks_and_sent_on_the_retry():
    def chart(request):
        if request.url.params.get("crumb") != "Xy7.abc":
            return resp(401, {"finance": {"result": None, "error": {"code": "Unauthorized", "description": "Invalid Crumb"}}})
        return resp(200, fixture("yahoo/chart_1d.json"))

    api = FakeAPI().on("GET", CHART, chart)
    api.on("GET", "/", resp(404, "", {"Set-Cookie": "A3=d=AQABBK; Domain=.yahoo.com; Path=/"}))
    api.on("GET", "/v1/test/getcrumb", resp(200, "Xy7.abc"))
    ym = market(api)
    b = await ym.bars("AAPL", "1D", datetime(2024, 3, 11, 13, tzinfo=UTC), NOW)
    assert len(b.df) == 2
    assert [r.url.host for r in api.requests].count("fc.yahoo.com") == 1


async def test_a_too_many_requests_crumb_is_no_crumb():
    api = FakeAPI().on("GET", CHART, resp(403, {"finance": {"error": {"code": "Forbidden", "description": "Invalid Crumb"}}}))
    api.on("GET", "/", resp(200, "ok"))
    api.on("GET", "/v1/test/getcrumb", resp(200, "Too Many Requests"))
    with pytest.raises(Unsupported, match="cookie/crumb"):
        await market(api).bars("AAPL", "1D", NOW - timedelta(days=5), NOW)


async def test_quote_from_chart_meta_and_no_options():
    api = FakeAPI().on("GET", CHART, fixture("yahoo/chart_1m.json"))
    q = await market(api).quote("BRK.B")
    assert api.requests[0].url.path == "/v8/finance/chart/BRK-B"
    assert q.last == q.bid == q.ask == 172.31 and q.prev_close == 173.0
    assert q.as_of == datetime.fromtimestamp(1710340397, tz=UTC)
    with pytest.raises(Unsupported):
        await market(api).expirations("AAPL")


async def test_malformed_chart_payloads():
    bad = fixture("yahoo/chart_1m.json")
    bad["chart"]["result"][0]["indicators"]["quote"][0]["close"] = [1.0]
    api = FakeAPI().on("GET", CHART, bad)
    with pytest.raises(BadPayload, match="line up"):
        await market(api).bars("AAPL", "1m", NOW - timedelta(hours=1), NOW)
    api2 = FakeAPI().on("GET", CHART, {"unexpected": True})
    with pytest.raises(BadPayload, match="chart"):
        await market(api2).bars("AAPL", "1m", NOW - timedelta(hours=1), NOW)
