"""`coach iv backfill`: from the offline market's past chains, and from Polygon's contract reference + daily option bars."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pandas as pd
import pytest
from click.testing import CliRunner

from analytics.blackscholes import bs_price
from analytics.chains import DEFAULT_RATE, years_to_expiry
from analytics.sessions import EXCHANGE_TZ, last_sessions, schedule
from bot.cli.iv_backfill import backfill
from bot.services import Services
from providers.http import RetryPolicy
from providers.polygon import PolygonMarket
from providers.router import build_router
from providers.tradier import TradierClient, TradierMarket
from providers.yahoo import YahooMarket
from storage import iv_history
from tests.conftest import OPEN_AT, make_services
from tests.providers.fakes import FakeAPI, SleepLog, polygon_aggs, resp

SIGMA = 0.25
SPOT = 500.0


async def svc_with(engine, settings, market) -> Services:
    return await make_services(settings, engine, market, lambda: OPEN_AT)


async def stored(services: Services, sym: str) -> list[tuple[date, float]]:
    async with services.db() as s:
        return await iv_history.history(s, sym, date(2000, 1, 1), date(2100, 1, 1))


async def test_offline_market_backfills_each_close_and_skips_stored_days(services):
    res = await backfill(services, "SPY", 5)
    assert res.provider == "sim" and res.sessions == 5 and res.recorded == 5
    rows = await stored(services, "SPY")
    closes = [c.astimezone(EXCHANGE_TZ).date() for c in last_sessions(OPEN_AT, 6).frame()["close"].dt.to_pydatetime()]
    assert [d for d, _v in rows] == closes[:5]  # today's session has not closed at 11:00 ET
    assert all(0.05 < v < 1.5 for _d, v in rows)
    again = await backfill(services, "SPY", 5)
    assert again.recorded == 0 and {d.status for d in again.days} == {"exists"}
    forced = await backfill(services, "SPY", 2, force=True)
    assert forced.recorded == 2


def third_fridays_and_weeklies(day: date, horizon: int = 75) -> list[date]:
    out, d = [], day + timedelta(days=1)
    while d <= day + timedelta(days=horizon):
        if d.weekday() == 4:
            out.append(d)
        d += timedelta(days=1)
    return out


def polygon_fake(now: datetime) -> FakeAPI:
    api = FakeAPI()
    today = now.astimezone(EXCHANGE_TZ).date()
    sch = schedule()

    def session_close(d: date) -> datetime:
        j = int(sch.dates.searchsorted(pd.Timestamp(d).to_datetime64().astype("datetime64[D]")))
        return pd.Timestamp(int(sch.closes[j]), tz="UTC").to_pydatetime()

    def sessions(a: str, b: str) -> list[date]:
        frame = sch.frame()
        return [t.date() for t in frame.index if date.fromisoformat(a) <= t.date() <= date.fromisoformat(b)]

    def underlying(request):
        a, b = request.url.path.split("/")[-2:]
        stamps = [int(pd.Timestamp(d, tz=EXCHANGE_TZ).tz_convert("UTC").value // 10**6) for d in sessions(a, b)]
        payload = polygon_aggs("SPY", stamps, price=SPOT)
        for r in payload.get("results", []):
            r["c"] = SPOT
        return resp(200, payload)

    def contracts(request):
        p = request.url.params
        day = date.fromisoformat(p["as_of"])
        lo, hi = float(p["strike_price.gte"]), float(p["strike_price.lte"])
        expired = p["expired"] == "true"
        rows = []
        for e in third_fridays_and_weeklies(day):
            if (e < today) != expired or not (
                date.fromisoformat(p["expiration_date.gte"]) <= e <= date.fromisoformat(p["expiration_date.lte"])
            ):
                continue
            for k in range(425, 580, 5):
                if lo <= k <= hi:
                    for cp in ("C", "P"):
                        rows.append(
                            {
                                "cfi": "OCASPS",
                                "contract_type": "call" if cp == "C" else "put",
                                "exercise_style": "american",
                                "expiration_date": e.isoformat(),
                                "primary_exchange": "BATO",
                                "shares_per_contract": 100,
                                "strike_price": k,
                                "ticker": f"O:SPY{e:%y%m%d}{cp}{k * 1000:08d}",
                                "underlying_ticker": "SPY",
                            }
                        )
        return resp(200, {"results": rows, "status": "OK", "request_id": "r"})

    def option_bars(request):
        parts = request.url.path.split("/")
        tk, a, b = parts[4], parts[-2], parts[-1]
        occ = tk[2:]
        exp = datetime.strptime(occ[3:9], "%y%m%d").date()
        is_call, k = occ[9] == "C", int(occ[10:]) / 1000
        rows = []
        for d in sessions(a, b):
            if d >= exp:
                continue
            T = years_to_expiry(exp, session_close(d))
            px = float(bs_price(SPOT, k, T, DEFAULT_RATE, 0.0, SIGMA, is_call))
            t = int(pd.Timestamp(d, tz=EXCHANGE_TZ).tz_convert("UTC").value // 10**6)
            rows.append({"v": 10.0, "vw": px, "o": px, "c": px, "h": px, "l": px, "t": t, "n": 3})
        return resp(
            200,
            {
                "ticker": tk,
                "queryCount": len(rows),
                "resultsCount": len(rows),
                "adjusted": True,
                "results": rows,
                "status": "OK",
                "request_id": "r",
                "count": len(rows),
            },
        )

    api.on("GET", r"/v2/aggs/ticker/O:.*", option_bars)
    api.on("GET", r"/v2/aggs/ticker/SPY/range/1/day/.*", underlying)
    api.on("GET", "/v3/reference/options/contracts", contracts)
    return api


async def test_polygon_backfill_recovers_the_implied_volatility_from_daily_closes(engine, settings):
    api = polygon_fake(OPEN_AT)
    pm = PolygonMarket("pk", transport=api.transport(), clock=lambda: OPEN_AT, sleep=SleepLog(), policy=RetryPolicy(attempts=1))
    router = build_router([pm], clock=lambda: OPEN_AT)
    services = await svc_with(engine, settings, router)
    res = await backfill(services, "SPY", 4)
    assert res.provider == "polygon" and res.recorded == 4, res.days
    rows = await stored(services, "SPY")
    assert len(rows) == 4 and all(abs(v - SIGMA) < 2e-3 for _d, v in rows), rows
    first = api.calls("/v3/reference/options/contracts")[0].url.params
    assert first["as_of"] == rows[0][0].isoformat() and "strike_price.gte" in first
    # each contract's series is fetched once for the whole window
    tickers = [r.url.path.split("/")[4] for r in api.calls(r"/v2/aggs/ticker/O:.*")]
    assert len(tickers) == len(set(tickers))


async def test_providers_without_past_chains_store_nothing_and_say_so(engine, settings):
    tm = TradierMarket(TradierClient("t", env="production", transport=FakeAPI().transport()), clock=lambda: OPEN_AT)
    router = build_router([tm, YahooMarket(transport=FakeAPI().transport(), clock=lambda: OPEN_AT)], clock=lambda: OPEN_AT)
    services = await svc_with(engine, settings, router)
    res = await backfill(services, "SPY", 3)
    assert res.provider is None and res.recorded == 0 and "keep no past option chains" in res.note
    assert await stored(services, "SPY") == []


def test_cli_backfill_on_the_offline_market(tmp_path, monkeypatch):
    from bot.cli.main import build_cli
    from bot.config import get_settings

    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path}/cli.db")
    monkeypatch.setenv("COACH_PROVIDER", "sim")
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        out = runner.invoke(build_cli(), ["iv", "backfill", "SPY", "--days", "3", "--json"])
        assert out.exit_code == 0, out.output
        assert '"recorded":3' in out.output and '"provider":"sim"' in out.output
        bad = runner.invoke(build_cli(), ["iv", "backfill", "TS;LA"])
        assert bad.exit_code == 2 and "invalid symbol" in bad.output
    finally:
        get_settings.cache_clear()
    assert SleepLog
    pytest.importorskip("click")
