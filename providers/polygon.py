"""Polygon (Massive) market data over REST: aggregates, last trade/NBBO, snapshots, option chains.

REST (`PolygonMarket`, a `MarketData`):

* bars from `/v2/aggs/ticker/{T}/range/{mult}/{timespan}/{from}/{to}` with `adjusted=true`,
  `sort=asc`, `limit=50000`, following `next_url` pages. A `next_url` carries a cursor but no
  key: we keep only its path and query, send it to our own base URL and add the key back
  (Bearer header by default, `apiKey=` when `auth_in_query`). Minute-based requests are split
  into 30-day windows (longer ones show gaps). 30m bars feed 1h/4h (resampled at 09:30), day
  bars feed 1W.
* a company's SEC industry (`sic_code`, `sic_description`) from `/v3/reference/tickers/{T}`,
  cached a day (portfolio sector weights).
* quotes from the ticker snapshot (data under `ticker`, not `results`); without the snapshot
  entitlement, from last trade + last NBBO (upper-case fields = ask side, nanosecond stamps).
* expirations from `/v3/reference/options/contracts`, chains from `/v3/snapshot/options/{T}`
  (greeks sometimes absent, IV a decimal, `last_quote` only on plans with quotes).

Entitlements: a 403 (or a 400 worded as an entitlement) switches that call family off for
the rest of the run with ONE INFO log line, exactly as `DISABLE_POLYGON_OPTIONS` (etc.) does
by hand; later calls of that family fail at once with `NotEntitled`, without a request, so the
router moves on. The free tier's "today's data before end of day" refusal is not an
entitlement switch: the bars are fetched up to yesterday and the router judges them stale.

The stocks WebSocket (`PolygonStream`) is in `providers.polygon_stream`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import numpy as np
import pandas as pd

from analytics.bars import empty_bars
from analytics.intervals import normalise_interval
from analytics.models import OptionChain, OptionContract, Quote, Right
from analytics.sessions import EXCHANGE_TZ
from analytics.symbols import validate_symbol
from core.cache import TTLCache
from core.clock import utc_now
from core.errors import NotFoundError, UserError
from core.values import to_float
from providers.barframes import build_frame, daily_frame, finish
from providers.base import Bars, SessionVolume, SessionVolumes
from providers.http import (
    AuthFailed,
    BadPayload,
    BadRequest,
    HttpClient,
    NotEntitled,
    ProviderUnavailable,
    RetryPolicy,
    UnknownSymbol,
    default_reason,
    one_line,
)

NAME = "polygon"
BASE_URL = "https://api.massive.com"
WS_URL = "wss://socket.massive.com/stocks"
DELAYED_WS_URL = "wss://delayed.massive.com/stocks"

log = logging.getLogger("coach.providers.polygon")

#: Call families that can be switched off (by an entitlement answer or by hand).
FAMILIES: dict[str, str] = {
    "aggs": "aggregates (bars)",
    "snapshot": "stock snapshots",
    "last": "last trade / NBBO",
    "options": "options chain snapshots",
    "contracts": "options contract reference",
    "stream": "WebSocket stream",
    "reference": "ticker reference (details)",
}
#: A company's SIC code changes rarely: ticker details are kept this long.
DETAILS_TTL = 24 * 3600.0

# interval -> (multiplier, timespan, the interval Polygon serves that we resample from)
_NATIVE: dict[str, tuple[int, str, str]] = {
    "1m": (1, "minute", "1m"),
    "5m": (5, "minute", "5m"),
    "15m": (15, "minute", "15m"),
    "30m": (30, "minute", "30m"),
    "1h": (30, "minute", "30m"),
    "4h": (30, "minute", "30m"),
    "1D": (1, "day", "1D"),
    "1W": (1, "day", "1D"),
}
#: Minute-based requests are split into windows of this many days.
WINDOW_DAYS = 30
#: At most this many windows per bars call (about two years of minute data).
MAX_WINDOWS = 26
#: Page cap per paged call: protects a 5-requests-per-minute plan from a runaway cursor.
MAX_PAGES = 40
#: `contract_type` values (lower-cased) that name a contract's right; anything else is not a contract we read.
_RIGHTS: dict[str, Right] = {"call": "call", "put": "put"}

_ENTITLEMENT_WORDS = ("not entitled", "upgrade your plan", "plan doesn't include", "not authorized", "entitlement")


def ns_to_dt(ns: Any) -> datetime | None:
    """A Polygon stamp (ns or ms) as an aware UTC datetime; None when absent or not a stamp."""
    try:
        v = int(ns)
    except (TypeError, ValueError):
        return None
    if v <= 0:
        return None
    # Polygon mixes ns (trades, quotes, snapshots) and ms (bars); tell them apart by size
    if v < 10**14:
        v *= 10**6
    return datetime.fromtimestamp(v / 1e9, tz=UTC)


def occ_from_polygon(ticker: str) -> str:
    """`O:AAPL230616C00150000` -> `AAPL230616C00150000`."""
    return ticker[2:] if ticker.startswith("O:") else ticker


class PolygonMarket:
    """Polygon REST client implementing `providers.base.MarketData`."""

    name = NAME

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str = BASE_URL,
        transport: httpx.AsyncBaseTransport | None = None,
        policy: RetryPolicy | None = None,
        disabled: Iterable[str] = (),
        auth_in_query: bool = False,
        clock: Callable[[], datetime] = utc_now,
        sleep: Callable[[float], Any] = asyncio.sleep,
    ) -> None:
        if not api_key:
            raise ValueError("PolygonMarket needs an API key")
        self._key = api_key
        self.auth_in_query = auth_in_query
        headers = {"Accept": "application/json", "Accept-Encoding": "gzip", "User-Agent": "trading-coach"}
        if not auth_in_query:
            headers["Authorization"] = f"Bearer {api_key}"
        self.http = HttpClient(
            NAME, base_url, headers=headers, transport=transport, policy=policy, describe=_describe, sleep=sleep
        )
        self.breaker = self.http.breaker
        self._clock = clock
        #: family -> why it is off (by hand, or the provider's own words)
        self.disabled: dict[str, str] = {f: "switched off by configuration" for f in disabled if f in FAMILIES}
        self.cache = TTLCache(maxsize=512)

    async def aclose(self) -> None:
        await self.http.aclose()

    # -- plumbing

    def _auth(self, params: dict[str, Any]) -> dict[str, Any]:
        if self.auth_in_query:
            params = {**params, "apiKey": self._key}
        return params

    def _disable(self, family: str, reason: str) -> None:
        if family not in self.disabled:
            self.disabled[family] = reason
            log.info("polygon %s switched off for this run: %s", FAMILIES[family], reason)

    def _check_family(self, family: str) -> None:
        why = self.disabled.get(family)
        if why is not None:
            raise NotEntitled(NAME, f"{FAMILIES[family]} not available: {why}", None, family)

    async def _get(self, family: str, path: str, params: dict[str, Any], what: str) -> dict[str, Any]:
        self._check_family(family)
        try:
            resp = await self.http.request("GET", path, params=self._auth(params), what=what)
        except AuthFailed as exc:
            raise AuthFailed(
                NAME, f"key rejected ({exc.detail}); check POLYGON_API_KEY or renew it", exc.status, exc.detail
            ) from None
        except NotEntitled as exc:
            reason = exc.reason
            low = reason.lower()
            if "api key" in low and "upgrade" not in low:
                raise AuthFailed(NAME, f"key rejected ({reason}); check POLYGON_API_KEY", exc.status, reason) from None
            if "today" in low or "timeframe" in low:
                # a limit on how recent/old the data may be, not on the family: keep it on
                raise NotEntitled(NAME, reason, exc.status, None) from None
            self._disable(family, reason)
            raise NotEntitled(NAME, f"{FAMILIES[family]} not in this plan ({reason})", exc.status, family) from None
        except BadRequest as exc:
            if any(w in exc.reason.lower() for w in _ENTITLEMENT_WORDS):
                self._disable(family, exc.reason)
                raise NotEntitled(NAME, f"{FAMILIES[family]} not in this plan ({exc.reason})", exc.status, family) from None
            if exc.status == 404:
                raise BadRequest(NAME, f"{what}: not found", 404, exc.payload) from None
            raise
        data = self.http.json_of(resp, what)
        if not isinstance(data, dict):
            raise BadPayload(NAME, f"{what}: expected a JSON object")
        status = str(data.get("status", "OK")).upper()
        if status in ("ERROR", "NOT_AUTHORIZED"):
            raise BadPayload(NAME, f"{what}: {one_line(data.get('message') or data.get('error') or status)}")
        return data

    async def _pages(self, family: str, path: str, params: dict[str, Any], what: str) -> AsyncIterator[dict[str, Any]]:
        """Yield each page, following `next_url` on our own base URL with the key added back."""
        data = await self._get(family, path, params, what)
        yield data
        pages = 1
        while isinstance(data.get("next_url"), str) and data["next_url"]:
            if pages >= MAX_PAGES:
                log.warning("polygon %s: stopped after %d pages", what, pages)
                return
            url = httpx.URL(data["next_url"])
            # only the path and query (cursor) are taken: the key is never sent to another host
            nxt = {k: v for k, v in url.params.multi_items() if k != "apiKey"}
            data = await self._get(family, url.path, nxt, what)
            pages += 1
            yield data

    # -- bars

    async def bars(self, symbol: str, interval: str, start: datetime, end: datetime) -> Bars:
        """Bars stamped in [start, end), regular hours for intraday; `source` says `polygon` (or `polygon delayed`)."""
        sym = validate_symbol(symbol)
        iv = normalise_interval(interval)
        now = self._clock()
        end = min(end, now)
        mult, span, native = _NATIVE[iv]
        if end <= start:
            return Bars(sym, iv, empty_bars(), end, NAME)
        rows: list[dict[str, Any]] = []
        delayed = False
        for a, b in self._windows(span, start, end, iv):
            got, d = await self._agg_window(sym, mult, span, a, b, now)
            rows.extend(got)
            delayed = delayed or d
        df = self._frame(rows, span)
        df = finish(df, native, iv, start, end)
        return Bars(sym, iv, df, end, NAME + (" delayed" if delayed else ""))

    def _windows(self, span: str, start: datetime, end: datetime, iv: str) -> list[tuple[Any, Any]]:
        if span == "day":
            a = pd.Timestamp(start).tz_convert(EXCHANGE_TZ).date()
            b = pd.Timestamp(end).tz_convert(EXCHANGE_TZ).date()
            return [(a, b)]
        out = []
        a = start
        while a < end:
            b = min(end, a + timedelta(days=WINDOW_DAYS))
            out.append((a, b))
            a = b
        if len(out) > MAX_WINDOWS:
            raise UserError(
                f"{iv} bars from polygon are limited to about {MAX_WINDOWS * WINDOW_DAYS} days per request; narrow the range"
            )
        return out

    async def _agg_window(
        self, sym: str, mult: int, span: str, a: Any, b: Any, now: datetime
    ) -> tuple[list[dict[str, Any]], bool]:
        def fmt(x: Any) -> str:
            return x.isoformat() if isinstance(x, date) and not isinstance(x, datetime) else str(int(x.timestamp() * 1000))

        what = f"{sym} {mult} {span} bars"
        params = {"adjusted": "true", "sort": "asc", "limit": 50000}
        rows: list[dict[str, Any]] = []
        delayed = False
        try:
            path = f"/v2/aggs/ticker/{sym}/range/{mult}/{span}/{fmt(a)}/{fmt(b)}"
            async for page in self._pages("aggs", path, params, what):
                rows.extend(self._rows(page, what))
                delayed = delayed or str(page.get("status", "")).upper() == "DELAYED"
        except NotEntitled as exc:
            if exc.family is not None or "today" not in exc.reason.lower():
                raise
            # free tier: no same-day data before the close; take what ends yesterday (exchange date)
            today = pd.Timestamp(now).tz_convert(EXCHANGE_TZ).normalize()
            cut = today.date() - timedelta(days=1) if span == "day" else today.tz_convert("UTC").to_pydatetime()
            if (span == "day" and cut < a) or (span != "day" and cut <= a):
                return [], True
            path = f"/v2/aggs/ticker/{sym}/range/{mult}/{span}/{fmt(a)}/{fmt(cut)}"
            async for page in self._pages("aggs", path, params, what):
                rows.extend(self._rows(page, what))
            delayed = True
        return rows, delayed

    @staticmethod
    def _rows(page: dict[str, Any], what: str) -> list[dict[str, Any]]:
        res = page.get("results")
        if res is None:
            return []  # no data in the window: Polygon leaves `results` out
        if not isinstance(res, list):
            raise BadPayload(NAME, f"{what}: `results` is not a list")
        return res

    @staticmethod
    def _frame(rows: list[dict[str, Any]], span: str) -> pd.DataFrame:
        try:
            t = np.array([int(r["t"]) for r in rows], dtype=np.int64)
            cols = [[r.get(k) for r in rows] for k in ("o", "h", "l", "c", "v")]
        except (KeyError, TypeError, ValueError):
            raise BadPayload(NAME, "bars: a result lacks its `t` stamp") from None
        if span == "day":
            days = pd.to_datetime(t, unit="ms", utc=True).tz_convert(EXCHANGE_TZ).date if len(t) else []
            return daily_frame(list(days), *cols)
        return build_frame(t * 10**6, *cols)

    # -- reference

    async def industry(self, symbol: str) -> tuple[str | None, str | None]:
        """The ticker's SEC industry: (`sic_code`, `sic_description`) from `/v3/reference/tickers/{T}`, cached a day.

        Funds and ETFs have neither (both None). An unknown ticker raises UnknownSymbol.
        """
        sym = validate_symbol(symbol)
        return await self.cache.get_or_load(("industry", sym), lambda: self._industry(sym), ttl=DETAILS_TTL)

    async def _industry(self, sym: str) -> tuple[str | None, str | None]:
        what = f"{sym} ticker details"
        try:
            data = await self._get("reference", f"/v3/reference/tickers/{sym}", {}, what)
        except BadRequest as exc:
            if exc.status == 404:
                raise UnknownSymbol(NAME, sym) from None
            raise
        res = data.get("results")
        if not isinstance(res, dict):
            raise BadPayload(NAME, f"{what}: no `results` object")
        code, desc = res.get("sic_code"), res.get("sic_description")
        return (str(code) if code not in (None, "") else None, str(desc) if desc not in (None, "") else None)

    # -- the market-wide session summary

    async def session_volumes(self, day: date) -> SessionVolumes:
        """Every stock's bar of session `day` from the grouped daily aggregates, cached a day (one call, ~10k rows)."""
        return await self.cache.get_or_load(("grouped", day), lambda: self._session_volumes(day), ttl=DETAILS_TTL)

    async def _session_volumes(self, day: date) -> SessionVolumes:
        what = f"grouped daily bars {day.isoformat()}"
        data = await self._get("aggs", f"/v2/aggs/grouped/locale/us/market/stocks/{day.isoformat()}", {"adjusted": "true"}, what)
        rows: list[SessionVolume] = []
        for r in self._rows(data, what):
            if not isinstance(r, dict) or r.get("otc"):
                continue  # OTC names are not what a scan of leaders means
            sym, close, vol = r.get("T"), to_float(r.get("c")), to_float(r.get("v"))
            if not isinstance(sym, str) or close is None or vol is None:
                continue
            rows.append(SessionVolume(symbol=sym, close=close, volume=vol, vwap=to_float(r.get("vw"))))
        if not rows:
            raise ProviderUnavailable(NAME, f"{what}: no results (not a session, or not published yet)")
        delayed = str(data.get("status", "")).upper() == "DELAYED"
        return SessionVolumes(day=day, rows=tuple(rows), source=NAME + (" delayed" if delayed else ""))

    # -- quotes

    async def quote(self, symbol: str, at: datetime | None = None) -> Quote:
        """The latest quote: the snapshot, or last trade + NBBO when snapshots are not in the plan."""
        sym = validate_symbol(symbol)
        return await self.cache.get_or_load(("quote", sym), lambda: self._quote(sym), ttl=2.0)

    async def _quote(self, sym: str) -> Quote:
        try:
            return await self._snapshot_quote(sym)
        except NotEntitled:
            pass
        return await self._last_quote(sym)

    async def _snapshot_quote(self, sym: str) -> Quote:
        what = f"{sym} snapshot"
        try:
            data = await self._get("snapshot", f"/v2/snapshot/locale/us/markets/stocks/tickers/{sym}", {}, what)
        except BadRequest as exc:
            if exc.status == 404:
                raise UnknownSymbol(NAME, sym) from None
            raise
        t = data.get("ticker")
        if not isinstance(t, dict):
            if data.get("status", "").upper() == "NOT_FOUND" or t is None:
                raise UnknownSymbol(NAME, sym)
            raise BadPayload(NAME, f"{what}: `ticker` is not an object")
        lq, lt = t.get("lastQuote") or {}, t.get("lastTrade") or {}
        day, prev, mn = t.get("day") or {}, t.get("prevDay") or {}, t.get("min") or {}
        last = to_float(lt.get("p")) or to_float(mn.get("c")) or to_float(day.get("c")) or to_float(prev.get("c"))
        if not last:
            raise BadPayload(NAME, f"{what}: no price in the snapshot")
        bid, ask = to_float(lq.get("p")) or last, to_float(lq.get("P")) or last
        stamps = [x for x in (ns_to_dt(t.get("updated")), ns_to_dt(lt.get("t")), ns_to_dt(lq.get("t"))) if x]
        return Quote(
            symbol=sym,
            bid=bid,
            ask=max(ask, bid),
            last=last,
            bid_size=int(to_float(lq.get("s")) or 0),
            ask_size=int(to_float(lq.get("S")) or 0),
            volume=to_float(day.get("v")) or to_float(mn.get("av")) or 0.0,
            prev_close=to_float(prev.get("c")),
            as_of=max(stamps) if stamps else self._clock(),
            source=NAME,
        )

    async def _last_quote(self, sym: str) -> Quote:
        trade = await self._get("last", f"/v2/last/trade/{sym}", {}, f"{sym} last trade")
        nbbo = await self._get("last", f"/v2/last/nbbo/{sym}", {}, f"{sym} last quote")
        tr, q = trade.get("results"), nbbo.get("results")
        if tr is None and q is None:
            raise UnknownSymbol(NAME, sym)
        if not isinstance(tr, dict) or not isinstance(q, dict):
            raise BadPayload(NAME, f"{sym} last trade/quote: `results` is not an object")
        last = to_float(tr.get("p"))
        bid, ask = to_float(q.get("p")), to_float(q.get("P"))
        if not last:
            raise BadPayload(NAME, f"{sym} last trade has no price")
        stamps = [x for x in (ns_to_dt(tr.get("t")), ns_to_dt(q.get("t"))) if x]
        return Quote(
            symbol=sym,
            bid=bid or last,
            ask=max(ask or last, bid or last),
            last=last,
            bid_size=int(to_float(q.get("s")) or 0),
            ask_size=int(to_float(q.get("S")) or 0),
            volume=0.0,
            prev_close=None,
            as_of=max(stamps) if stamps else self._clock(),
            source=NAME,
        )

    # -- options

    async def expirations(self, symbol: str, at: datetime | None = None) -> list[date]:
        """Listed expirations on or after today's exchange date, from the contracts reference (cached 1 h)."""
        sym = validate_symbol(symbol)
        day = pd.Timestamp(at or self._clock()).tz_convert(EXCHANGE_TZ).date()
        return await self.cache.get_or_load(("exp", sym, day), lambda: self._expirations(sym, day), ttl=3600.0, cacheable=bool)

    async def _expirations(self, sym: str, day: date) -> list[date]:
        params = {
            "underlying_ticker": sym,
            "contract_type": "call",  # every expiration lists calls; halves the pages
            "expiration_date.gte": day.isoformat(),
            "expired": "false",
            "sort": "expiration_date",
            "order": "asc",
            "limit": 1000,
        }
        found: set[date] = set()
        async for page in self._pages("contracts", "/v3/reference/options/contracts", params, f"{sym} expirations"):
            for r in self._rows(page, f"{sym} expirations"):
                try:
                    found.add(date.fromisoformat(str(r["expiration_date"])))
                except (KeyError, TypeError, ValueError):
                    continue
        return sorted(d for d in found if d >= day)

    async def chain(self, symbol: str, expiration: date, at: datetime | None = None) -> OptionChain:
        """Every contract of one expiration from the chain snapshot."""
        sym = validate_symbol(symbol)
        exp = _as_date(expiration)
        return await self.cache.get_or_load(
            ("chain", sym, exp), lambda: self._chain(sym, exp), ttl=15.0, cacheable=lambda c: bool(c.contracts)
        )

    async def _chain(self, sym: str, exp: date) -> OptionChain:
        what = f"{sym} {exp} chain"
        params = {"expiration_date": exp.isoformat(), "limit": 250, "sort": "strike_price", "order": "asc"}
        results: list[dict[str, Any]] = []
        async for page in self._pages("options", f"/v3/snapshot/options/{sym}", params, what):
            results.extend(self._rows(page, what))
        if not results:
            listed = await self.expirations(sym)
            if not listed:
                raise UnknownSymbol(NAME, sym, "no listed options")
            if exp not in listed:
                raise NotFoundError(_not_listed(sym, exp, listed))
            raise ProviderUnavailable(NAME, f"{what} came back empty")
        contracts: list[OptionContract] = []
        under_px: float | None = None
        stamps: list[datetime] = []
        delayed = False
        for r in results:
            c = _contract(r, sym)
            if c is None:
                continue
            contracts.append(c)
            ua = r.get("underlying_asset") or {}
            under_px = under_px or to_float(ua.get("price"))
            lq = r.get("last_quote") or {}
            for x in (ns_to_dt(lq.get("last_updated")), ns_to_dt(ua.get("last_updated"))):
                if x:
                    stamps.append(x)
            delayed = delayed or "DELAYED" in (str(lq.get("timeframe", "")), str(ua.get("timeframe", "")))
        if not contracts:
            raise BadPayload(NAME, f"{what}: no contract had the documented fields")
        if under_px is None:
            under_px = (await self.quote(sym)).last
        contracts.sort(key=lambda c: (c.strike, c.right))
        return OptionChain(
            underlying=sym,
            expiration=exp,
            underlying_price=under_px,
            as_of=max(stamps) if stamps else self._clock(),
            source=NAME + (" delayed" if delayed else ""),
            contracts=contracts,
        )

    # -- history for IV backfill

    async def option_daily_closes(self, occ: str, start: date, end: date) -> pd.Series:
        """Daily closes of one option contract (`O:` ticker aggregates), indexed by session date."""
        tk = occ if occ.startswith("O:") else f"O:{occ}"
        rows: list[dict[str, Any]] = []
        path = f"/v2/aggs/ticker/{tk}/range/1/day/{start.isoformat()}/{end.isoformat()}"
        async for page in self._pages("options", path, {"adjusted": "true", "sort": "asc", "limit": 50000}, f"{occ} daily bars"):
            rows.extend(self._rows(page, occ))
        df = self._frame(rows, "day")
        return pd.Series(df["close"].to_numpy(), index=[t.tz_convert(EXCHANGE_TZ).date() for t in df.index], dtype=float)

    async def contracts_as_of(
        self, symbol: str, day: date, exp_from: date, exp_to: date, strike_range: tuple[float, float] | None = None
    ) -> list[dict[str, Any]]:
        """Contracts listed on `day` expiring in [exp_from, exp_to] (reference data with `as_of`)."""
        sym = validate_symbol(symbol)
        today = pd.Timestamp(self._clock()).tz_convert(EXCHANGE_TZ).date()
        # Polygon lists expired and live contracts separately; a window across today needs both
        flags = [f for f, wanted in (("true", exp_from < today), ("false", exp_to >= today)) if wanted]
        out: list[dict[str, Any]] = []
        for flag in flags:
            params: dict[str, Any] = {
                "underlying_ticker": sym,
                "as_of": day.isoformat(),
                "expiration_date.gte": exp_from.isoformat(),
                "expiration_date.lte": exp_to.isoformat(),
                "expired": flag,
                "limit": 1000,
            }
            if strike_range is not None:
                params["strike_price.gte"] = round(strike_range[0], 2)
                params["strike_price.lte"] = round(strike_range[1], 2)
            async for page in self._pages("contracts", "/v3/reference/options/contracts", params, f"{sym} contracts as of {day}"):
                out.extend(self._rows(page, sym))
        return out


class PolygonHistory:
    """Past option chains rebuilt from Polygon: the contracts listed on a day (reference `as_of`)
    priced by each contract's daily close (`O:` aggregates). For IV backfill.

    Daily closes are last trades, not quotes: each contract's close is used as its mid
    (bid = ask = close), and a contract that did not trade that day is left out. Each
    contract's series is fetched once for the whole window, so a backfill costs about one
    request per session (listings) plus one per contract that was ever near the money.
    """

    def __init__(self, market: PolygonMarket, start: date, end: date, *, strikes_each_side: int = 3) -> None:
        self.market = market
        self.start, self.end = start, end
        self.width = strikes_each_side
        self._listed: dict[tuple[str, date], list[dict[str, Any]]] = {}
        self._series: dict[str, pd.Series] = {}

    async def closes(self, symbol: str) -> pd.Series:
        """The underlying's daily closes over the window, indexed by session date."""
        sym = validate_symbol(symbol)
        a = pd.Timestamp(self.start, tz=EXCHANGE_TZ).tz_convert("UTC").to_pydatetime()
        b = pd.Timestamp(self.end + timedelta(days=1), tz=EXCHANGE_TZ).tz_convert("UTC").to_pydatetime()
        bars = await self.market.bars(sym, "1D", a, b)
        return pd.Series(
            bars.df["close"].to_numpy(), index=[t.tz_convert(EXCHANGE_TZ).date() for t in bars.df.index], dtype=float
        )

    async def expirations(self, symbol: str, day: date, spot: float) -> list[date]:
        """Expirations listed on `day` within 75 days, from contracts struck within 15% of `spot`."""
        sym = validate_symbol(symbol)
        key = (sym, day)
        if key not in self._listed:
            rows = await self.market.contracts_as_of(
                sym, day, day + timedelta(days=1), day + timedelta(days=75), strike_range=(spot * 0.85, spot * 1.15)
            )
            self._listed[key] = rows
        out = set()
        for r in self._listed[key]:
            try:
                out.add(date.fromisoformat(str(r["expiration_date"])))
            except (KeyError, TypeError, ValueError):
                continue
        return sorted(out)

    async def chain(self, symbol: str, expiration: date, day: date, spot: float, at: datetime) -> OptionChain:
        """The chain of `expiration` as it closed on `day`: the strikes nearest `spot`, calls and puts."""
        sym = validate_symbol(symbol)
        rows = [r for r in self._listed.get((sym, day), []) if str(r.get("expiration_date")) == expiration.isoformat()]
        strikes = sorted({float(r["strike_price"]) for r in rows if to_float(r.get("strike_price")) is not None})
        below = [k for k in strikes if k <= spot][-self.width :]
        above = [k for k in strikes if k > spot][: self.width]
        keep = set(below + above)
        contracts = []
        for r in rows:
            k = to_float(r.get("strike_price"))
            right = _RIGHTS.get(str(r.get("contract_type", "")).lower())
            tk = str(r.get("ticker", ""))
            if k not in keep or right is None or not tk:
                continue
            series = await self._series_of(tk)
            px = series.get(day)
            if px is None or not np.isfinite(px) or px <= 0:
                continue
            contracts.append(
                OptionContract(
                    symbol=occ_from_polygon(tk),
                    underlying=sym,
                    expiration=expiration,
                    strike=k,
                    right=right,
                    bid=float(px),
                    ask=float(px),
                    last=float(px),
                    multiplier=int(to_float(r.get("shares_per_contract")) or 100),
                )
            )
        if not contracts:
            raise ProviderUnavailable(NAME, f"no {sym} {expiration} contract near the money traded on {day}")
        contracts.sort(key=lambda c: (c.strike, c.right))
        return OptionChain(
            underlying=sym,
            expiration=expiration,
            underlying_price=spot,
            as_of=at,
            source="polygon daily closes",
            contracts=contracts,
        )

    async def _series_of(self, ticker: str) -> pd.Series:
        if ticker not in self._series:
            self._series[ticker] = await self.market.option_daily_closes(ticker, self.start, self.end)
        return self._series[ticker]


def _as_date(expiration: Any) -> date:
    if isinstance(expiration, datetime):
        return expiration.date()
    if isinstance(expiration, date):
        return expiration
    try:
        return date.fromisoformat(str(expiration).strip())
    except ValueError:
        raise UserError(f"expiration {str(expiration)[:20]!r} is not a date like 2024-01-19") from None


def _not_listed(sym: str, exp: date, listed: list[date]) -> str:
    nearest = sorted(sorted(listed, key=lambda d: (abs((d - exp).days), d))[:4])
    return f"no {sym} options expire on {exp.isoformat()}; nearest listed: {', '.join(d.isoformat() for d in nearest)}"


def _contract(r: dict[str, Any], sym: str) -> OptionContract | None:
    """One chain-snapshot result as an OptionContract, or None when it lacks the documented fields."""
    d = r.get("details")
    if not isinstance(d, dict):
        return None
    strike = to_float(d.get("strike_price"))
    right = _RIGHTS.get(str(d.get("contract_type", "")).lower())
    try:
        exp = date.fromisoformat(str(d.get("expiration_date")))
    except ValueError:
        return None
    if strike is None or right is None or not d.get("ticker"):
        return None
    lq, lt, day = r.get("last_quote") or {}, r.get("last_trade") or {}, r.get("day") or {}
    g = r.get("greeks") or {}  # absent for some contracts (deep ITM); never guessed
    bid, ask = to_float(lq.get("bid")) or 0.0, to_float(lq.get("ask")) or 0.0
    return OptionContract(
        symbol=occ_from_polygon(str(d["ticker"])),
        underlying=sym,
        expiration=exp,
        strike=strike,
        right=right,
        bid=bid,
        ask=max(ask, bid),
        last=to_float(lt.get("price")) or to_float(day.get("close")),
        volume=int(to_float(day.get("volume")) or 0),
        open_interest=int(to_float(r.get("open_interest")) or 0),
        iv=to_float(r.get("implied_volatility")),
        delta=to_float(g.get("delta")),
        gamma=to_float(g.get("gamma")),
        theta=to_float(g.get("theta")),
        vega=to_float(g.get("vega")),
        multiplier=int(to_float(d.get("shares_per_contract")) or 100),
    )


def _describe(resp: httpx.Response) -> str:
    """Polygon error bodies carry `message` or `error` (read both); an empty 429 body says nothing."""
    try:
        data = resp.json()
    except ValueError:
        return default_reason(resp)
    if isinstance(data, dict):
        for k in ("message", "error"):
            if isinstance(data.get(k), str) and data[k]:
                return one_line(data[k])
    return default_reason(resp)
