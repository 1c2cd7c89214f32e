"""Yahoo Finance chart API as a keyless fallback for bars (and a last-price quote). Unofficial: may change.

`GET /v8/finance/chart/{SYMBOL}?period1=&period2=&interval=&includePrePost=false`:

* intervals used: 1m, 5m, 15m (also feeding 30m: Yahoo has answered 60-minute bars when
  asked for 30m), 60m (feeding 1h and 4h; its bars start at 09:30), 1d (feeding 1W);
* limits: 1m only within the last 30 days and about 8 days per request (we ask 7), 2m-90m
  the last 60 days, 60m the last 730 days; older starts are clipped, a window wholly outside
  them is refused with the limit named;
* `timestamp` is UTC seconds, converted with `meta.exchangeTimezoneName` (or `gmtoffset`);
  the OHLCV arrays line up by index and hold nulls: a bar without a close is dropped; the
  live, still-forming last bar of an intraday request is dropped too;
* errors: `{"chart":{"result":null,"error":{"code":"Not Found",...}}}` (404) is an unknown
  symbol, 422 an out-of-range request, 429 "Too Many Requests";
* a current browser User-Agent and one cookie-keeping client; when Yahoo asks for a crumb
  (401/403), we fetch the cookie and crumb once and retry (a crumb reading "Too Many
  Requests" is no crumb).

Yahoo serves no option chains here and no order book: quotes carry bid = ask = last.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import numpy as np
import pandas as pd

from analytics.bars import empty_bars
from analytics.intervals import interval_minutes, normalise_interval
from analytics.models import OptionChain, Quote
from analytics.sessions import EXCHANGE_TZ
from analytics.symbols import validate_symbol
from core.cache import TTLCache
from core.clock import utc_now
from core.values import to_float
from providers.barframes import build_frame, daily_frame, finish
from providers.base import Bars
from providers.http import (
    AuthFailed,
    BadPayload,
    BadRequest,
    HttpClient,
    NotEntitled,
    RetryPolicy,
    UnknownSymbol,
    Unsupported,
    default_reason,
    one_line,
)

NAME = "yahoo"
BASE_URL = "https://query2.finance.yahoo.com"
COOKIE_URL = "https://fc.yahoo.com"
USER_AGENT = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"

log = logging.getLogger("coach.providers.yahoo")

# interval -> (Yahoo interval, the interval it gives us, days back Yahoo keeps or None, days per request)
_NATIVE: dict[str, tuple[str, str, int | None, int]] = {
    "1m": ("1m", "1m", 30, 7),
    "5m": ("5m", "5m", 60, 60),
    "15m": ("15m", "15m", 60, 60),
    "30m": ("15m", "15m", 60, 60),
    "1h": ("60m", "1h", 730, 730),
    "4h": ("60m", "1h", 730, 730),
    "1D": ("1d", "1D", None, 36500),
    "1W": ("1d", "1D", None, 36500),
}


def yahoo_symbol(sym: str) -> str:
    """Yahoo spells share classes with a dash: BRK.B -> BRK-B."""
    return sym.replace(".", "-")


class YahooMarket:
    """Yahoo chart API client implementing `providers.base.MarketData` (bars and last price only)."""

    name = NAME

    def __init__(
        self,
        *,
        base_url: str = BASE_URL,
        transport: httpx.AsyncBaseTransport | None = None,
        policy: RetryPolicy | None = None,
        clock: Callable[[], datetime] = utc_now,
        sleep: Callable[[float], Any] = asyncio.sleep,
        cookie_url: str = COOKIE_URL,
    ) -> None:
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json,text/plain,*/*"}
        self.http = HttpClient(
            NAME, base_url, headers=headers, transport=transport, policy=policy, describe=_describe, sleep=sleep
        )
        self.breaker = self.http.breaker
        self._clock = clock
        self._cookie_url = cookie_url
        self._crumb: str | None = None
        self._crumb_tried = False
        self.cache = TTLCache(maxsize=256)

    async def aclose(self) -> None:
        await self.http.aclose()

    # -- chart requests

    async def _chart(self, sym: str, params: dict[str, Any]) -> dict[str, Any]:
        """The `chart.result[0]` object for one request (crumb fetched once if Yahoo asks for it)."""
        ysym = yahoo_symbol(sym)
        what = f"{sym} chart"
        for attempt in (1, 2):
            # a crumb is only sent once Yahoo asked for one
            p = dict(params, **({"crumb": self._crumb} if self._crumb else {}))
            try:
                resp = await self.http.request("GET", f"/v8/finance/chart/{ysym}", params=p, what=what)
                break
            except (AuthFailed, NotEntitled):
                if attempt == 2 or not await self._fetch_crumb():
                    raise Unsupported(NAME, "Yahoo refused the chart request (cookie/crumb); try again later") from None
            except BadRequest as exc:
                raise self._refusal(sym, exc) from None
        body = self.http.json_of(resp, what)
        chart = body.get("chart") if isinstance(body, dict) else None
        if not isinstance(chart, dict):
            raise BadPayload(NAME, f"{what}: no `chart` object")
        err = chart.get("error")
        if err:
            desc = err.get("description") or err.get("code") if isinstance(err, dict) else err
            raise self._refusal(sym, BadRequest(NAME, one_line(desc), 200, body))
        result = chart.get("result")
        if not isinstance(result, list) or not result or not isinstance(result[0], dict):
            raise UnknownSymbol(NAME, sym) if result is None else BadPayload(NAME, f"{what}: empty `result`")
        return result[0]

    def _refusal(self, sym: str, exc: BadRequest) -> Exception:
        payload = exc.payload if isinstance(exc.payload, dict) else {}
        err = ((payload.get("chart") or {}).get("error") or {}) if isinstance(payload.get("chart"), dict) else {}
        code = str(err.get("code", ""))
        desc = one_line(err.get("description") or exc.reason)
        if exc.status == 404 or code == "Not Found":
            return UnknownSymbol(NAME, sym, desc)
        return BadRequest(NAME, desc, exc.status, payload)

    async def _fetch_crumb(self) -> bool:
        """Get Yahoo's cookie, then a crumb; False when none could be had (asked once per run)."""
        if self._crumb_tried:
            return False
        self._crumb_tried = True
        try:
            await self.http._client.get(self._cookie_url)  # sets the cookie; its status does not matter
            resp = await self.http._client.get("/v1/test/getcrumb")
        except httpx.HTTPError:
            return False
        text = resp.text.strip()
        if resp.status_code != 200 or not text or "too many requests" in text.lower() or "<" in text or " " in text:
            return False
        self._crumb = text
        return True

    # -- bars

    async def bars(self, symbol: str, interval: str, start: datetime, end: datetime) -> Bars:
        """Bars stamped in [start, end) (regular session for intraday), within Yahoo's history limits."""
        sym = validate_symbol(symbol)
        iv = normalise_interval(interval)
        now = self._clock()
        end = min(end, now)
        yiv, native, keep_days, per_req = _NATIVE[iv]
        if end <= start:
            return Bars(sym, iv, empty_bars(), end, NAME)
        a = start
        if keep_days is not None:
            oldest = now - timedelta(days=keep_days) + timedelta(minutes=5)
            if end <= oldest:
                raise Unsupported(NAME, f"{yiv} bars only cover the last {keep_days} days")
            a = max(start, oldest)
        key = ("bars", sym, iv, int(a.timestamp()) // 60, int(end.timestamp()) // 60)
        ttl = 300.0 if native == "1D" else 30.0
        df, tz = await self.cache.get_or_load(
            key, lambda: self._bars(sym, yiv, native, a, end, per_req, now), ttl=ttl, cacheable=lambda v: not v[0].empty
        )
        return Bars(sym, iv, finish(df, native, iv, start, end), end, NAME)

    async def _bars(
        self, sym: str, yiv: str, native: str, a: datetime, b: datetime, per_req: int, now: datetime
    ) -> tuple[pd.DataFrame, str]:
        frames = []
        tz = "America/New_York"
        t = a
        while t < b:
            u = min(b, t + timedelta(days=per_req))
            res = await self._chart(
                sym,
                {
                    "period1": int(t.timestamp()),
                    "period2": int(u.timestamp()),
                    "interval": yiv,
                    "includePrePost": "false",
                    "events": "div,splits",
                },
            )
            df, tz = self._frame(res, native, now)
            frames.append(df)
            t = u
        frames = [f for f in frames if not f.empty]
        if not frames:
            return empty_bars(), tz
        df = pd.concat(frames)
        df = df[~df.index.duplicated(keep="last")].sort_index()
        return df, tz

    def _frame(self, res: dict[str, Any], native: str, now: datetime) -> tuple[pd.DataFrame, str]:
        got = res.get("meta")
        meta: dict[str, Any] = got if isinstance(got, dict) else {}
        tz = _exchange_tz(meta)
        ts = res.get("timestamp") or []
        if not ts:
            return empty_bars(), str(tz)
        try:
            q = res["indicators"]["quote"][0]
            cols = [q.get(k) or [None] * len(ts) for k in ("open", "high", "low", "close", "volume")]
            t = np.asarray(ts, dtype=np.int64)
        except (KeyError, IndexError, TypeError, ValueError):
            raise BadPayload(NAME, "chart: `indicators.quote` missing or malformed") from None
        if any(len(c) != len(t) for c in cols):
            raise BadPayload(NAME, "chart: OHLCV arrays do not line up with `timestamp`")
        if native == "1D":
            local = pd.to_datetime(t, unit="s", utc=True).tz_convert(tz)
            days = list(local.date)
            if str(tz) == "America/New_York":
                return daily_frame(days, *cols), str(tz)
            stamps = pd.DatetimeIndex(local.normalize()).tz_convert("UTC").as_unit("ns").asi8
            return build_frame(stamps, *cols), str(tz)
        df = build_frame(t * 10**9, *cols)
        step = interval_minutes(native)
        local = df.index.tz_convert(tz)
        minutes = local.hour * 60 + local.minute - 570
        aligned = (local.second == 0) & (np.asarray(minutes) % step == 0)
        complete = df.index + pd.Timedelta(minutes=step) <= pd.Timestamp(now)
        return df[np.asarray(aligned) & np.asarray(complete)], str(tz)

    # -- quote

    async def quote(self, symbol: str, at: datetime | None = None) -> Quote:
        """The last regular-market price from the chart metadata; no book, so bid = ask = last."""
        sym = validate_symbol(symbol)
        return await self.cache.get_or_load(("quote", sym), lambda: self._quote(sym), ttl=5.0)

    async def _quote(self, sym: str) -> Quote:
        res = await self._chart(sym, {"range": "1d", "interval": "1m", "includePrePost": "false"})
        got = res.get("meta")
        meta: dict[str, Any] = got if isinstance(got, dict) else {}
        last = to_float(meta.get("regularMarketPrice"))
        ts = res.get("timestamp") or []
        if last is None:
            closes = ((res.get("indicators") or {}).get("quote") or [{}])[0].get("close") or []
            last = next((to_float(c) for c in reversed(closes) if to_float(c) is not None), None)
        if last is None:
            raise BadPayload(NAME, f"{sym} chart has no price")
        stamp = to_float(meta.get("regularMarketTime")) or (float(ts[-1]) if ts else None)
        as_of = datetime.fromtimestamp(stamp, tz=UTC) if stamp else self._clock()
        prev = to_float(meta.get("chartPreviousClose")) or to_float(meta.get("previousClose"))
        return Quote(
            symbol=sym,
            bid=last,
            ask=last,
            last=last,
            volume=to_float(meta.get("regularMarketVolume")) or 0.0,
            prev_close=prev,
            as_of=as_of,
            source=NAME,
        )

    # -- options: not served

    async def expirations(self, symbol: str, at: datetime | None = None) -> list[date]:
        raise Unsupported(NAME, "option data is not served by the Yahoo fallback")

    async def chain(self, symbol: str, expiration: date, at: datetime | None = None) -> OptionChain:
        raise Unsupported(NAME, "option data is not served by the Yahoo fallback")


def _exchange_tz(meta: dict[str, Any]) -> Any:
    name = meta.get("exchangeTimezoneName")
    if isinstance(name, str):
        try:
            return ZoneInfo(name)
        except (KeyError, ValueError):
            pass
    off = to_float(meta.get("gmtoffset"))
    if off is not None:
        return timezone(timedelta(seconds=int(off)))
    return EXCHANGE_TZ


def _describe(resp: httpx.Response) -> str:
    """Yahoo errors: `chart.error.description`, or a plain-text body such as "Too Many Requests"."""
    try:
        data = resp.json()
    except ValueError:
        return default_reason(resp)
    if isinstance(data, dict):
        for top in ("chart", "finance"):
            err = (data.get(top) or {}).get("error") if isinstance(data.get(top), dict) else None
            if isinstance(err, dict) and (err.get("description") or err.get("code")):
                return one_line(err.get("description") or err.get("code"))
    return default_reason(resp)
