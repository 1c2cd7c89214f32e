"""Tradier market data (and the HTTP client its broker shares): quotes, expirations, chains, history, time-sales.

* Base URL by `TRADIER_ENV`: production `https://api.tradier.com`, sandbox
  `https://sandbox.tradier.com`; `auto` finds out from the token itself (a profile call on
  production, then on the sandbox: whichever accepts it). A 401 under an explicit env also
  probes the other one, so the reply can say "this token belongs to the sandbox".
* Always `Accept: application/json` (the default is XML).
* Tradier's JSON is converted XML: a one-item collection arrives as an object, an empty one
  as `null` (`{"options": null}`). `items()` is the one place that turns all of those into
  lists; every parser here goes through it.
* Quotes go out in batches of at most 25 symbols; quotes and chains are cached 15 s.
* The sandbox's market data is delayed and it does not serve tick time-sales or streaming:
  in sandbox mode `quote()` is skipped with "sandbox quotes unavailable" (logged once), so
  the router takes quotes from the next provider and the reply names why.
* Greeks and IV come from ORATS and update about once an hour; a contract without greeks
  keeps them empty (never guessed).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

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
from providers.base import Bars
from providers.http import (
    AuthFailed,
    BadPayload,
    BadRequest,
    CircuitBreaker,
    HttpClient,
    ProviderError,
    ProviderUnavailable,
    RetryPolicy,
    UnknownSymbol,
    Unsupported,
    one_line,
)

NAME = "tradier"
PRODUCTION_URL = "https://api.tradier.com"
SANDBOX_URL = "https://sandbox.tradier.com"
Env = Literal["production", "sandbox", "auto"]

#: Most symbols Tradier takes in one quotes request.
QUOTE_BATCH = 25
QUOTE_TTL = 15.0
CHAIN_TTL = 15.0

log = logging.getLogger("coach.providers.tradier")

# interval -> (timesales interval or "daily", the interval we resample from)
_NATIVE: dict[str, tuple[str, str]] = {
    "1m": ("1min", "1m"),
    "5m": ("5min", "5m"),
    "15m": ("15min", "15m"),
    "30m": ("15min", "15m"),
    "1h": ("15min", "15m"),
    "4h": ("15min", "15m"),
    "1D": ("daily", "1D"),
    "1W": ("daily", "1D"),
}
#: Days of regular-session time-sales Tradier keeps per interval (older requests come back short).
TIMESALES_DAYS = {"1min": 20, "5min": 40, "15min": 40}
#: `option_type` values (lower-cased) that name a contract's right; anything else is not a contract we read.
_RIGHTS: dict[str, Right] = {"call": "call", "put": "put"}


def items(payload: Any, *path: str) -> list[Any]:
    """The collection at `payload[path[0]][path[1]]...` as a list: Tradier's object-for-one and null-for-none undone.

    `{"quotes": {"quote": {...}}}` -> `[{...}]`; `{"options": null}` -> `[]`; a list stays a list.
    A non-object on the way (other than null) means the payload is not what the API documents.
    """
    node = payload
    for i, key in enumerate(path):
        if node is None or node == "null":
            return []
        if not isinstance(node, dict):
            raise BadPayload(NAME, f"expected an object at {'.'.join(path[:i]) or 'top level'}")
        node = node.get(key)
    if node is None or node == "null" or node == "":
        return []
    return node if isinstance(node, list) else [node]


def _ms(x: Any) -> datetime | None:
    v = to_float(x)
    if not v or v <= 0:
        return None
    return datetime.fromtimestamp(v / 1000.0, tz=UTC)


def _errors_in(body: Any) -> list[str]:
    """Messages of a 200 answer that is really a refusal: `{"errors": {"error": "..." | [...]}}`."""
    if isinstance(body, dict) and "errors" in body:
        return [one_line(e) for e in items(body, "errors", "error")] or ["refused without a reason"]
    return []


class TradierClient:
    """Tradier HTTP session: env/base URL, auth headers, and JSON with Tradier's refusals mapped."""

    def __init__(
        self,
        token: str,
        *,
        env: Env = "sandbox",
        base_url: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        policy: RetryPolicy | None = None,
        sleep: Callable[[float], Any] = asyncio.sleep,
    ) -> None:
        if not token:
            raise ValueError("TradierClient needs an access token")
        if env not in ("production", "sandbox", "auto"):
            raise ValueError(f"TRADIER_ENV must be production, sandbox or auto, not {env!r}")
        self._token = token
        self._transport = transport
        self._policy = policy
        self._sleep = sleep
        self._fixed_base = base_url
        self.env: Env = env
        self._http: HttpClient | None = None
        self._env_lock = asyncio.Lock()
        self._probed_other = False
        if env != "auto":
            self._http = self._make(env)

    def _make(self, env: str) -> HttpClient:
        base = self._fixed_base or (PRODUCTION_URL if env == "production" else SANDBOX_URL)
        headers = {"Authorization": f"Bearer {self._token}", "Accept": "application/json", "User-Agent": "trading-coach"}
        return HttpClient(
            f"{NAME} {env}" if env == "sandbox" else NAME,
            base,
            headers=headers,
            transport=self._transport,
            policy=self._policy,
            sleep=self._sleep,
        )

    @property
    def sandbox(self) -> bool:
        return self.env == "sandbox"

    @property
    def breaker(self) -> CircuitBreaker | None:
        return self._http.breaker if self._http is not None else None

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()

    async def resolve_env(self) -> HttpClient:
        """The HTTP client for this token's environment, probing production then sandbox when env is `auto`."""
        if self._http is not None:
            return self._http
        async with self._env_lock:
            if self._http is not None:
                return self._http
            for env in ("production", "sandbox"):
                http = self._make(env)
                try:
                    await http.request("GET", "/v1/user/profile", what="profile")
                except AuthFailed:
                    await http.aclose()
                    continue
                except BaseException:
                    await http.aclose()
                    raise
                self.env, self._http = env, http
                log.info("tradier token belongs to %s", env)
                return http
        raise AuthFailed(NAME, "token refused by both production and sandbox; check TRADIER_ACCESS_TOKEN")

    async def _other_env_accepts(self) -> bool:
        """After a 401: does the other environment accept this token? (asked once per run)"""
        if self._probed_other or self._fixed_base:
            return False
        self._probed_other = True
        other = "production" if self.env == "sandbox" else "sandbox"
        http = self._make(other)
        try:
            await http.request("GET", "/v1/user/profile", what="profile", retry=False)
            return True
        except ProviderError:
            return False
        finally:
            await http.aclose()

    async def call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        data: dict[str, Any] | None = None,
        what: str = "",
        retry: bool = True,
    ) -> dict[str, Any]:
        """One request; the JSON object it returns. Refusals inside a 200 body raise BadRequest."""
        http = await self.resolve_env()
        try:
            resp = await http.request(method, path, params=params, data=data, what=what, retry=retry)
        except AuthFailed as exc:
            if await self._other_env_accepts():
                other = "production" if self.env == "sandbox" else "sandbox"
                raise AuthFailed(
                    NAME, f"this token belongs to the {other} account; set TRADIER_ENV={other}", exc.status
                ) from None
            raise AuthFailed(
                NAME, f"token refused ({exc.detail}); check TRADIER_ACCESS_TOKEN or renew it", exc.status, exc.detail
            ) from None
        body = http.json_of(resp, what)
        if body is None:
            return {}
        if not isinstance(body, dict):
            raise BadPayload(http.provider, f"{what}: expected a JSON object")
        errs = _errors_in(body)
        if errs:
            raise BadRequest(http.provider, f"{what}: {'; '.join(errs)}", resp.status_code, body)
        return body

    async def get(self, path: str, params: dict[str, Any] | None = None, what: str = "") -> dict[str, Any]:
        return await self.call("GET", path, params=params, what=what)


class TradierMarket:
    """Tradier market data implementing `providers.base.MarketData`."""

    name = NAME

    def __init__(self, client: TradierClient, *, clock: Callable[[], datetime] = utc_now) -> None:
        self.client = client
        self._clock = clock
        self.cache = TTLCache(maxsize=2048)
        self._said: set[str] = set()

    @property
    def breaker(self) -> CircuitBreaker | None:
        return self.client.breaker

    @property
    def source(self) -> str:
        return "tradier sandbox" if self.client.sandbox else NAME

    async def aclose(self) -> None:
        await self.client.aclose()

    def _sandbox_skip(self, what: str, reason: str) -> None:
        """Refuse a call the sandbox does not serve, logging it once per kind."""
        if what not in self._said:
            self._said.add(what)
            log.info("tradier sandbox: %s skipped (%s)", what, reason)
        raise Unsupported(self.source, reason)

    # -- quotes

    async def quote(self, symbol: str, at: datetime | None = None) -> Quote:
        """The latest quote (cached 15 s). Sandbox tokens: "sandbox quotes unavailable" (delayed data)."""
        sym = validate_symbol(symbol)
        await self.client.resolve_env()
        if self.client.sandbox:
            self._sandbox_skip("quotes", "sandbox quotes unavailable")
        got = await self.quotes([sym])
        if sym not in got:
            raise UnknownSymbol(self.source, sym)
        return got[sym]

    async def quotes(self, symbols: Iterable[str]) -> dict[str, Quote]:
        """Quotes for many symbols: cached ones first, the rest in batches of at most 25 per request."""
        syms = list(dict.fromkeys(validate_symbol(s) for s in symbols))
        out: dict[str, Quote] = {}
        missing = []
        for s in syms:
            q = self.cache.get(("quote", s))
            if q is not None:
                out[s] = q
            else:
                missing.append(s)
        batches = [missing[i : i + QUOTE_BATCH] for i in range(0, len(missing), QUOTE_BATCH)]
        for got in await asyncio.gather(*(self._quote_batch(b) for b in batches)):
            for q in got:
                self.cache.set(("quote", q.symbol), q, QUOTE_TTL)
                out[q.symbol] = q
        return out

    async def _quote_batch(self, syms: list[str]) -> list[Quote]:
        body = await self.client.get("/v1/markets/quotes", {"symbols": ",".join(syms), "greeks": "false"}, "quotes")
        out = []
        for raw in items(body, "quotes", "quote"):
            q = self._parse_quote(raw)
            if q is not None:
                out.append(q)
        return out

    def _parse_quote(self, raw: Any) -> Quote | None:
        if not isinstance(raw, dict) or not raw.get("symbol"):
            return None
        last = to_float(raw.get("last")) or to_float(raw.get("close")) or to_float(raw.get("prevclose"))
        if not last:
            return None
        bid, ask = to_float(raw.get("bid")), to_float(raw.get("ask"))
        stamps = [x for x in (_ms(raw.get("trade_date")), _ms(raw.get("bid_date")), _ms(raw.get("ask_date"))) if x]
        return Quote(
            symbol=str(raw["symbol"]).upper(),
            bid=bid or last,
            ask=max(ask or last, bid or last),
            last=last,
            bid_size=int(to_float(raw.get("bidsize")) or 0),
            ask_size=int(to_float(raw.get("asksize")) or 0),
            volume=to_float(raw.get("volume")) or 0.0,
            prev_close=to_float(raw.get("prevclose")),
            as_of=max(stamps) if stamps else self._clock(),
            source=self.source,
        )

    # -- options

    async def expirations(self, symbol: str, at: datetime | None = None) -> list[date]:
        """Listed expirations on or after today's exchange date (cached 15 min)."""
        sym = validate_symbol(symbol)
        today = pd.Timestamp(at or self._clock()).tz_convert(EXCHANGE_TZ).date()
        listed = await self.cache.get_or_load(("exp", sym), lambda: self._expirations(sym), ttl=900.0, cacheable=bool)
        return [d for d in listed if d >= today]

    async def _expirations(self, sym: str) -> list[date]:
        body = await self.client.get("/v1/markets/options/expirations", {"symbol": sym}, f"{sym} expirations")
        raw = items(body, "expirations", "date") or [
            e.get("date") for e in items(body, "expirations", "expiration") if isinstance(e, dict)
        ]
        out = set()
        for d in raw:
            try:
                out.add(date.fromisoformat(str(d)))
            except ValueError:
                continue
        return sorted(out)

    async def chain(self, symbol: str, expiration: date, at: datetime | None = None) -> OptionChain:
        """Every contract of one expiration with greeks (cached 15 s)."""
        sym = validate_symbol(symbol)
        exp = _as_date(expiration)
        return await self.cache.get_or_load(
            ("chain", sym, exp), lambda: self._chain(sym, exp), ttl=CHAIN_TTL, cacheable=lambda c: bool(c.contracts)
        )

    async def _chain(self, sym: str, exp: date) -> OptionChain:
        what = f"{sym} {exp} chain"
        body = await self.client.get(
            "/v1/markets/options/chains", {"symbol": sym, "expiration": exp.isoformat(), "greeks": "true"}, what
        )
        rows = items(body, "options", "option")
        if not rows:
            listed = await self.expirations(sym)
            if not listed:
                raise UnknownSymbol(self.source, sym, "no listed options")
            if exp not in listed:
                nearest = sorted(sorted(listed, key=lambda d: (abs((d - exp).days), d))[:4])
                raise NotFoundError(
                    f"no {sym} options expire on {exp.isoformat()}; nearest listed: {', '.join(d.isoformat() for d in nearest)}"
                )
            raise ProviderUnavailable(self.source, f"{what} came back empty")
        contracts = [c for c in (_contract(r, sym) for r in rows) if c is not None]
        if not contracts:
            raise BadPayload(self.source, f"{what}: no contract had the documented fields")
        under = await self._underlying(sym)
        contracts.sort(key=lambda c: (c.strike, c.right))
        return OptionChain(
            underlying=sym,
            expiration=exp,
            underlying_price=under.last,
            as_of=under.as_of,
            source=self.source,
            contracts=contracts,
        )

    async def _underlying(self, sym: str) -> Quote:
        # the chain's own environment prices the underlying, sandbox included (its chain is delayed alike)
        got: Quote | None = self.cache.get(("quote", sym))
        if got is None:
            batch = await self._quote_batch([sym])
            if not batch:
                raise UnknownSymbol(self.source, sym)
            got = batch[0]
            self.cache.set(("quote", sym), got, QUOTE_TTL)
        return got

    # -- bars

    async def bars(self, symbol: str, interval: str, start: datetime, end: datetime) -> Bars:
        """Daily bars from history, intraday from time-sales (regular session), clipped to [start, end)."""
        sym = validate_symbol(symbol)
        iv = normalise_interval(interval)
        end = min(end, self._clock())
        kind, native = _NATIVE[iv]
        if end <= start:
            return Bars(sym, iv, empty_bars(), end, self.source)
        if kind == "daily":
            df = await self._history(sym, start, end)
        else:
            df = await self._timesales(sym, kind, start, end)
        return Bars(sym, iv, finish(df, native, iv, start, end), end, self.source)

    async def _history(self, sym: str, start: datetime, end: datetime) -> pd.DataFrame:
        a = pd.Timestamp(start).tz_convert(EXCHANGE_TZ).date()
        b = pd.Timestamp(end).tz_convert(EXCHANGE_TZ).date()
        body = await self.client.get(
            "/v1/markets/history",
            {"symbol": sym, "interval": "daily", "start": a.isoformat(), "end": b.isoformat()},
            f"{sym} history",
        )
        rows = [r for r in items(body, "history", "day") if isinstance(r, dict)]
        try:
            days = [date.fromisoformat(str(r["date"])) for r in rows]
        except (KeyError, ValueError):
            raise BadPayload(self.source, f"{sym} history: a day lacks its date") from None
        return daily_frame(days, *([r.get(k) for r in rows] for k in ("open", "high", "low", "close", "volume")))

    async def _timesales(self, sym: str, kind: str, start: datetime, end: datetime) -> pd.DataFrame:
        if kind == "tick" and self.client.sandbox:
            self._sandbox_skip("tick time-sales", "tick data is not served by the sandbox")
        oldest = end - timedelta(days=TIMESALES_DAYS.get(kind, 40) * 7 // 5 + 2)  # trading days -> calendar days
        a = max(start, oldest)

        def fmt(t: datetime) -> str:
            return str(pd.Timestamp(t).tz_convert(EXCHANGE_TZ).strftime("%Y-%m-%d %H:%M"))

        body = await self.client.get(
            "/v1/markets/timesales",
            {"symbol": sym, "interval": kind, "start": fmt(a), "end": fmt(end), "session_filter": "open"},
            f"{sym} {kind} time-sales",
        )
        rows = [r for r in items(body, "series", "data") if isinstance(r, dict)]
        try:
            t = np.array([int(r["timestamp"]) for r in rows], dtype=np.int64) * 10**9
        except (KeyError, TypeError, ValueError):
            raise BadPayload(self.source, f"{sym} time-sales: a row lacks its timestamp") from None
        cols = [
            [r.get(k, r.get("price") if k != "volume" else None) for r in rows]
            for k in ("open", "high", "low", "close", "volume")
        ]
        return build_frame(t, *cols)


def _as_date(expiration: Any) -> date:
    if isinstance(expiration, datetime):
        return expiration.date()
    if isinstance(expiration, date):
        return expiration
    try:
        return date.fromisoformat(str(expiration).strip())
    except ValueError:
        raise UserError(f"expiration {str(expiration)[:20]!r} is not a date like 2024-01-19") from None


def _contract(r: Any, sym: str) -> OptionContract | None:
    """One chain item as an OptionContract, or None when it lacks the documented fields."""
    if not isinstance(r, dict):
        return None
    strike = to_float(r.get("strike"))
    right = _RIGHTS.get(str(r.get("option_type", "")).lower())
    try:
        exp = date.fromisoformat(str(r.get("expiration_date")))
    except ValueError:
        return None
    if strike is None or right is None or not r.get("symbol"):
        return None
    greeks = r.get("greeks")
    g: dict[str, Any] = greeks if isinstance(greeks, dict) else {}
    iv = to_float(g.get("mid_iv")) or to_float(g.get("smv_vol"))
    bid, ask = to_float(r.get("bid")) or 0.0, to_float(r.get("ask")) or 0.0
    return OptionContract(
        symbol=str(r["symbol"]),
        underlying=sym,
        expiration=exp,
        strike=strike,
        right=right,
        bid=bid,
        ask=max(ask, bid),
        last=to_float(r.get("last")),
        volume=int(to_float(r.get("volume")) or 0),
        open_interest=int(to_float(r.get("open_interest")) or 0),
        iv=iv if iv and iv > 0 else None,
        delta=to_float(g.get("delta")),
        gamma=to_float(g.get("gamma")),
        theta=to_float(g.get("theta")),
        vega=to_float(g.get("vega")),
        multiplier=int(to_float(r.get("contract_size")) or 100),
    )
