"""The `leaders` universe: ranked by the last session's dollar volume where the provider can tell, else the fixed list."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from analytics.scan_scope import LEADERS
from analytics.sessions import last_sessions
from bot.leaders_source import living_leaders
from bot.request import Ctx, Identity
from providers.router import MarketRouter
from providers.sim import SimMarket
from tests.conftest import OPEN_AT, run_text
from tests.providers.fakes import FakeAPI, fixture, resp
from tests.providers.test_polygon import market as polygon_market

GROUPED = r"/v2/aggs/grouped/locale/us/market/stocks/2024-03-12"


def grouped_payload(n: int = 30) -> dict:
    """A grouped daily answer with `n` ordinary stocks, dollar volume falling with the index."""
    rows = [
        {
            "T": f"S{chr(65 + i // 26)}{chr(65 + i % 26)}",
            "v": 1e6 * (n - i),
            "vw": 50.0,
            "o": 50,
            "c": 50,
            "h": 51,
            "l": 49,
            "t": 0,
        }
        for i in range(n)
    ]
    rows.append({"T": "PENNY", "v": 9e9, "vw": 1.0, "o": 1, "c": 1, "h": 1, "l": 1, "t": 0})
    return {"status": "OK", "adjusted": True, "resultsCount": len(rows), "results": rows}


async def test_the_offline_market_ranks_the_last_closed_session_and_rotates_by_session():
    at = OPEN_AT  # Wednesday 2024-03-13, open: the last closed session is Tuesday's
    sim = SimMarket(seed=0, now=lambda: at)
    first = await living_leaders(sim, at)
    assert first.ranked and first.session == date(2024, 3, 12) and len(first.symbols) == len(LEADERS)
    assert first.basis == "top 20 by dollar volume on 2024-03-12 (sim)"
    # the same session gives the same list, from another instance too
    assert (await living_leaders(SimMarket(seed=0, now=lambda: at), at + timedelta(minutes=30))).symbols == first.symbols
    # and other sessions give other orders: the universe follows the market
    closes = list(last_sessions(at, 6).frame()["close"].dt.to_pydatetime())[:-1]
    lists = {tuple((await living_leaders(SimMarket(seed=0, now=lambda c=c: c), c + timedelta(hours=1))).symbols) for c in closes}
    assert len(lists) > 1


async def test_polygon_behind_the_router_ranks_by_its_grouped_daily_bars():
    api = FakeAPI().on("GET", GROUPED, grouped_payload())
    router = MarketRouter({"bars": [polygon_market(api)], "quote": [polygon_market(api)]})
    got = await living_leaders(router, OPEN_AT)
    assert got.ranked and got.symbols[:3] == ["SAA", "SAB", "SAC"] and "PENNY" not in got.symbols
    assert got.basis == "top 20 by dollar volume on 2024-03-12 (polygon)"
    assert api.calls(GROUPED)[0].url.path.endswith("/2024-03-12")


async def test_without_a_ranking_the_fixed_list_stands_and_says_why():
    api = FakeAPI().on("GET", GROUPED, resp(403, fixture("polygon/error_403_not_entitled.json")))
    got = await living_leaders(polygon_market(api), OPEN_AT)
    assert not got.ranked and got.symbols == list(LEADERS)
    assert got.basis.startswith("fixed list of 20: polygon could not rank 2024-03-12: ")
    # too few names (a partial summary) is not trusted either
    api = FakeAPI().on("GET", GROUPED, fixture("polygon/grouped_daily.json"))
    got = await living_leaders(polygon_market(api), OPEN_AT)
    assert not got.ranked and got.basis == "fixed list of 20: polygon ranked only 6 names on 2024-03-12"


async def test_scan_leaders_says_which_universe_it_used(services):
    ctx = Ctx(services=services, identity=Identity(platform="console", tenant="local", user="me", channel="console"))
    reply = await run_text(ctx, "/scan leaders --limit 3")
    res = reply.data
    assert res.universe == "leaders" and res.universe_basis == "top 20 by dollar volume on 2024-03-12 (sim)"
    assert res.scanned + len(res.skipped) == 20
    assert "Universe: top 20 by dollar volume on 2024-03-12 (sim)." in reply.body
    ranked = (await living_leaders(services.market, OPEN_AT)).symbols
    assert ranked != list(LEADERS), "the offline market's leaders are its own ranking, not the fixed list"


async def test_a_weekend_scan_ranks_fridays_session():
    saturday = datetime(2024, 3, 16, 15, 0, tzinfo=UTC)
    got = await living_leaders(SimMarket(seed=0, now=lambda: saturday), saturday)
    assert got.session == date(2024, 3, 15)
