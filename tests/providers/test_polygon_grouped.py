"""Polygon's grouped daily bars (one call: every stock's session) as the source of the leaders, via httpx.MockTransport."""

from __future__ import annotations

from datetime import date

import pytest

from analytics.scan_scope import rank_by_dollar_volume
from core.errors import ProviderError
from providers.http import NotEntitled
from tests.providers.fakes import FakeAPI, fixture, resp
from tests.providers.test_polygon import market

GROUPED = r"/v2/aggs/grouped/locale/us/market/stocks/2024-03-12"


async def test_grouped_daily_reads_every_stock_of_the_session_once_a_day():
    api = FakeAPI().on("GET", GROUPED, fixture("polygon/grouped_daily.json"))
    pm = market(api)
    vols = await pm.session_volumes(date(2024, 3, 12))
    (req,) = api.requests
    assert req.url.params["adjusted"] == "true" and req.headers["Authorization"] == "Bearer pk_test_SECRET"
    assert vols.day == date(2024, 3, 12) and vols.source == "polygon"
    by = {r.symbol: r for r in vols.rows}
    # OTC names are left out; a missing VWAP stays unknown, not zero
    assert "GRLT" not in by and by["MSFT"].vwap is None and by["NVDA"].vwap == 875.12
    assert by["TSLA"].volume == 101200000.0 and by["TSLA"].close == 173.5
    await pm.session_volumes(date(2024, 3, 12))
    assert len(api.requests) == 1, "a session's summary is fetched once"


def test_leaders_rank_by_dollar_volume_of_plain_shares_above_five_dollars():
    rows = [
        type("R", (), {"symbol": r["T"], "close": r["c"], "volume": r["v"], "vwap": r.get("vw")})()
        for r in fixture("polygon/grouped_daily.json")["results"]
        if not r.get("otc")
    ]
    # NVDA 42.2B, SPY 31.3B, TSLA 17.3B, AAPL 10.3B, MSFT 8.1B (close x volume: no VWAP), BRK.B 1.3B;
    # SNDL trades the most shares but under $5, ABCDW is a warrant
    assert rank_by_dollar_volume(rows, 20) == ["NVDA", "SPY", "TSLA", "AAPL", "MSFT", "BRK.B"]
    assert rank_by_dollar_volume(rows, 2) == ["NVDA", "SPY"]


async def test_a_plan_without_grouped_bars_is_a_provider_error_not_a_crash():
    api = FakeAPI().on("GET", GROUPED, resp(403, fixture("polygon/error_403_not_entitled.json")))
    with pytest.raises(NotEntitled):
        await market(api).session_volumes(date(2024, 3, 12))


async def test_an_empty_summary_says_so():
    api = FakeAPI().on("GET", GROUPED, {"status": "OK", "queryCount": 0, "resultsCount": 0, "adjusted": True})
    with pytest.raises(ProviderError, match="no results"):
        await market(api).session_volumes(date(2024, 3, 12))
