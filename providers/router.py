"""The market data router: per data kind an ordered chain of providers; the first healthy, fresh answer wins.

    bars         polygon -> yahoo             (for example)
    quote        tradier -> polygon -> yahoo
    expirations  tradier -> polygon
    chain        tradier -> polygon

For each call the router walks the kind's chain:

* a provider whose circuit breaker is open is skipped without a request;
* a `ProviderError` (rate limited, not in plan, key rejected, unknown symbol, bad payload,
  unavailable, unsupported such as "sandbox quotes unavailable") moves on to the next one;
  a `UserError` (an expiration that is not listed) is the answer and is raised at once;
* an answer that is not fresh moves on too, and is kept as a last resort. Freshness is only
  judged for requests that reach the present during regular hours: the newest intraday bar
  must end no more than `stale_after` (15 min by default) plus one bar before now, a daily
  series must include the previous session, a quote must be younger than `stale_after`.
  When every provider is stale, the freshest stale answer is returned with "stale" in its
  `source` and a `stale_feed` warning is logged: stale data is labelled, never passed off;
* the answer's `source` names who served it and why others were passed over, e.g.
  `yahoo (after polygon: rate limited)`; replies cite it in their `sources`;
* when every provider failed: all "unknown symbol" -> `NotFoundError` naming each provider;
  otherwise a `ProviderError` naming each provider and its one-line reason.

Requests pinned in the past (`--as-of`) go to providers that answer historically (the
offline market); live providers answer quotes from their bars (last 1m close) and refuse
historical chains.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import date, datetime, timedelta
from typing import Any, TypeVar

from analytics.intervals import interval_timedelta, is_intraday, normalise_interval
from analytics.models import OptionChain, Quote
from analytics.sessions import last_sessions, session_info, sessions_between
from analytics.symbols import validate_symbol
from core.clock import utc_now
from core.errors import NotFoundError, ProviderError, RateLimited, UserError
from providers.base import Bars, MarketData
from providers.http import (
    AuthFailed,
    BadPayload,
    BadRequest,
    CircuitBreaker,
    CircuitOpen,
    NotEntitled,
    ProviderUnavailable,
    UnknownSymbol,
    Unsupported,
    counts_against_health,
)

log = logging.getLogger("coach.providers.router")

T = TypeVar("T")  # what one walk over the providers answers: Bars, Quote, expirations or a chain

KINDS = ("bars", "quote", "expirations", "chain")
#: The verdict on an empty answer where data was expected.
EMPTY = "no bars"
STALE_AFTER = timedelta(minutes=15)
#: A request whose end/at is within this of now is a live request (freshness applies).
LIVE_WINDOW = timedelta(minutes=2)
#: Providers that answer any `at` truthfully (synthetic or replayed history).
HISTORICAL = frozenset({"sim", "replay"})


def short_reason(exc: ProviderError) -> str:
    """A few words for a source label: why a provider was passed over."""
    if isinstance(exc, CircuitOpen):
        return "paused after failures"
    if isinstance(exc, RateLimited):
        return "rate limited"
    if isinstance(exc, NotEntitled):
        return "not in plan"
    if isinstance(exc, AuthFailed):
        return "key rejected"
    if isinstance(exc, UnknownSymbol):
        return "unknown symbol"
    if isinstance(exc, Unsupported):
        return exc.reason
    if isinstance(exc, BadPayload):
        return "malformed answer"
    if isinstance(exc, ProviderUnavailable):
        return "unavailable"
    if isinstance(exc, BadRequest):
        return "refused the request"
    return "failed"


@dataclasses.dataclass
class ProviderRecord:
    """What the router last saw of one provider (for the operator's /diag)."""

    last_seconds: float | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None
    calls: int = 0
    errors: int = 0


#: Told (provider, kind, outcome, seconds) after each provider call; outcome: ok, error, circuit_open.
CallObserver = Callable[[str, str, str, float], None]
#: Told (provider fallen back from, kind) when a later provider in the chain served the answer.
FallbackObserver = Callable[[str, str], None]


@dataclasses.dataclass
class _Attempt:
    provider: str
    note: str
    error: ProviderError | None = None


class MarketRouter:
    """A `MarketData` over ordered provider chains per kind, with fallback, freshness and breakers."""

    name = "router"

    def __init__(
        self,
        routes: dict[str, Sequence[MarketData]],
        *,
        clock: Callable[[], datetime] = utc_now,
        stale_after: timedelta = STALE_AFTER,
    ) -> None:
        unknown = set(routes) - set(KINDS)
        if unknown:
            raise ValueError(f"unknown data kinds {sorted(unknown)}; accepted: {', '.join(KINDS)}")
        self.routes: dict[str, list[MarketData]] = {k: list(routes.get(k, ())) for k in KINDS}
        self._clock = clock
        self.stale_after = stale_after
        self._own_breakers: dict[str, CircuitBreaker] = {}
        #: Per provider: last latency and error (kept here so the router stays free of any metrics library).
        self.records: dict[str, ProviderRecord] = {}
        self.on_call: CallObserver | None = None
        self.on_fallback: FallbackObserver | None = None

    @property
    def providers(self) -> list[MarketData]:
        """Every distinct provider, in first-seen order."""
        seen: dict[int, MarketData] = {}
        for chain in self.routes.values():
            for p in chain:
                seen.setdefault(id(p), p)
        return list(seen.values())

    async def aclose(self) -> None:
        for p in self.providers:
            closer = getattr(p, "aclose", None)
            if closer is not None:
                await closer()

    def describe(self) -> dict[str, Any]:
        """The routing table and each provider's health, for status replies and logs."""
        return {
            "routes": {k: [p.name for p in v] for k, v in self.routes.items()},
            "health": {p.name: (br.state if (br := self._breaker(p)) else "closed") for p in self.providers},
            "disabled": {p.name: dict(getattr(p, "disabled", {}) or {}) for p in self.providers if getattr(p, "disabled", None)},
        }

    # -- plumbing

    def _breaker(self, p: MarketData) -> CircuitBreaker | None:
        if hasattr(p, "breaker"):
            theirs: CircuitBreaker | None = p.breaker  # a provider with an HTTP client keeps its own
            return theirs
        return self._own_breakers.setdefault(p.name, CircuitBreaker(p.name))

    def _is_live(self, at: datetime | None) -> bool:
        return at is None or at >= self._clock() - LIVE_WINDOW

    async def _walk(
        self,
        kind: str,
        call: Callable[[MarketData], Awaitable[T]],
        judge: Callable[[T], str | None] | None = None,
        what: str = "",
    ) -> tuple[T, MarketData, list[_Attempt]]:
        attempts: list[_Attempt] = []
        spare: list[tuple[T, MarketData, str]] = []
        chain = self.routes[kind]
        if not chain:
            raise ProviderError("router", f"no provider is configured for {kind}")
        for p in chain:
            br = self._breaker(p)
            own = p.name in self._own_breakers and br is self._own_breakers[p.name]
            if br is not None and not br.healthy:
                err: ProviderError = CircuitOpen(p.name, br.cooldown)
                attempts.append(_Attempt(p.name, short_reason(err), err))
                self._observe(p.name, kind, "circuit_open", 0.0)
                continue
            started = time.perf_counter()
            try:
                if own and br is not None:
                    br.check()
                res = await call(p)
            except UserError:
                self._observe(p.name, kind, "ok", time.perf_counter() - started)  # the provider answered: bad input
                raise
            except ProviderError as exc:
                if own and br is not None:
                    br.failure() if counts_against_health(exc) else br.release()
                attempts.append(_Attempt(exc.provider or p.name, short_reason(exc), exc))
                self._observe(p.name, kind, "error", time.perf_counter() - started, exc.reason)
                continue
            except Exception as exc:  # a provider bug must not take the whole answer down
                log.exception("provider %s failed on %s", p.name, what or kind)
                if own and br is not None:
                    br.failure()
                err = ProviderError(p.name, f"internal error ({exc.__class__.__name__})")
                attempts.append(_Attempt(p.name, "failed", err))
                self._observe(p.name, kind, "error", time.perf_counter() - started, err.reason)
                continue
            self._observe(p.name, kind, "ok", time.perf_counter() - started)
            if p is not chain[0] and self.on_fallback is not None:
                self.on_fallback(chain[0].name, kind)
            if own and br is not None:
                br.success()
            verdict = judge(res) if judge is not None else None
            if verdict is None:
                return res, p, attempts
            attempts.append(_Attempt(p.name, verdict))
            spare.append((res, p, verdict))
        if spare:
            unknown = [a.error for a in attempts if isinstance(a.error, UnknownSymbol)]
            if unknown and all(note == EMPTY for _r, _p, note in spare):
                detail = "; ".join(f"{a.provider}: {a.error.reason if a.error else a.note}" for a in attempts)
                raise NotFoundError(f"unknown symbol {unknown[0].symbol} ({detail})")
            res, p, note = spare[0]
            if note != EMPTY:
                log.warning("stale_feed kind=%s what=%s: %s", kind, what, "; ".join(f"{a.provider}: {a.note}" for a in attempts))
            return res, p, attempts
        raise self._failure(attempts, what or kind)

    def _observe(self, provider: str, kind: str, outcome: str, seconds: float, error: str | None = None) -> None:
        rec = self.records.setdefault(provider, ProviderRecord())
        if outcome != "circuit_open":
            rec.calls += 1
            rec.last_seconds = seconds
        if error is not None:
            rec.errors += 1
            rec.last_error, rec.last_error_at = error[:200], utc_now()
        if self.on_call is not None:
            self.on_call(provider, kind, outcome, seconds)

    @staticmethod
    def _failure(attempts: list[_Attempt], what: str) -> Exception:
        errors = [a.error for a in attempts if a.error is not None]
        if len(errors) == 1:
            return errors[0]
        if (
            errors
            and all(isinstance(e, (UnknownSymbol, Unsupported)) for e in errors)
            and any(isinstance(e, UnknownSymbol) for e in errors)
        ):
            sym = next(e.symbol for e in errors if isinstance(e, UnknownSymbol))
            return NotFoundError(f"unknown symbol {sym}: " + "; ".join(f"{e.provider}: {e.reason}" for e in errors))
        names = ", ".join(dict.fromkeys(a.provider for a in attempts))
        reason = "; ".join(f"{e.provider} {e.reason}" for e in errors)
        if errors and all(isinstance(e, (RateLimited, CircuitOpen)) for e in errors):
            waits = [e.retry_after for e in errors if isinstance(e, RateLimited) and e.retry_after]
            waits += [e.retry_in for e in errors if isinstance(e, CircuitOpen)]
            return RateLimited(names, reason, retry_after=min(waits) if waits else None)
        err = ProviderError(names, reason or f"no provider could answer {what}")
        err.transient = not errors or any(e.transient for e in errors)
        return err

    @staticmethod
    def _label(served: MarketData, source: str, attempts: list[_Attempt]) -> str:
        """`source` of the answer, plus who was passed over and why."""
        mine = [a.note for a in attempts if a.provider in (served.name, source) and a.error is None]
        others = [f"{a.provider}: {a.note}" for a in attempts if a.error is not None or a.provider not in (served.name, source)]
        label = source or served.name
        if mine:
            label += f" ({mine[-1]})"
        if others:
            label += f" (after {', '.join(dict.fromkeys(others))})"
        return label

    # -- MarketData

    async def bars(self, symbol: str, interval: str, start: datetime, end: datetime) -> Bars:
        """Bars from the first provider with a fresh, non-empty answer (stale/empty ones only as a last resort)."""
        sym = validate_symbol(symbol)
        iv = normalise_interval(interval)

        def judge(b: Bars) -> str | None:
            return self._bars_verdict(b, iv, start, end)

        res, p, attempts = await self._walk("bars", lambda p: p.bars(sym, iv, start, end), judge, f"{sym} {iv} bars")
        return dataclasses.replace(res, source=self._label(p, res.source, attempts))

    async def quote(self, symbol: str, at: datetime | None = None) -> Quote:
        """The latest quote from the first provider with a fresh one; a past `at` is answered from bars."""
        sym = validate_symbol(symbol)
        if not self._is_live(at):
            assert at is not None
            res, p, attempts = await self._walk("quote", lambda p: self._past_quote(p, sym, at), None, f"{sym} quote")
        else:
            res, p, attempts = await self._walk("quote", lambda p: p.quote(sym, at), self._quote_verdict, f"{sym} quote")
        return res.model_copy(update={"source": self._label(p, res.source, attempts)})

    async def expirations(self, symbol: str, at: datetime | None = None) -> list[date]:
        sym = validate_symbol(symbol)
        live = self._is_live(at)

        async def call(p: MarketData) -> list[date]:
            if not live and not _historical(p):
                raise Unsupported(p.name, "no historical option listings; drop --as-of")
            got = await p.expirations(sym, at)
            if not got:
                raise UnknownSymbol(p.name, sym, "no listed options")
            return got

        res, _p, _ = await self._walk("expirations", call, None, f"{sym} expirations")
        return res

    async def chain(self, symbol: str, expiration: date, at: datetime | None = None) -> OptionChain:
        sym = validate_symbol(symbol)
        live = self._is_live(at)

        async def call(p: MarketData) -> OptionChain:
            if not live and not _historical(p):
                raise Unsupported(p.name, "no historical chains; drop --as-of")
            return await p.chain(sym, expiration, at)

        res, p, attempts = await self._walk("chain", call, None, f"{sym} {expiration} chain")
        return res.model_copy(update={"source": self._label(p, res.source, attempts)})

    # -- freshness

    def _bars_verdict(self, b: Bars, iv: str, start: datetime, end: datetime) -> str | None:
        """None when the bars are usable; else a few words on why not (empty, stale)."""
        if b.df.empty:
            sch = sessions_between(start, end)
            expected = len(sch.dates) > 0 and int(sch.opens[0]) < int(end.timestamp() * 1e9)
            return EMPTY if expected else None
        now = self._clock()
        if end < now - LIVE_WINDOW:
            return None
        info = session_info(now)
        if info.status != "open":
            return None
        newest = b.df.index[-1].to_pydatetime()
        if is_intraday(iv):
            step = interval_timedelta(iv)
            deadline = now - self.stale_after - step
            today_open = last_sessions(now, 1).frame()["open"].iloc[0].to_pydatetime()
            if deadline <= today_open:
                return None  # too early in the session to judge
            if newest + step <= deadline:
                age = (now - (newest + step)).total_seconds() / 60
                return f"stale: newest bar ended {age:.0f} min ago"
            return None
        prev_open = last_sessions(now, 2).frame()["open"].iloc[0].to_pydatetime()
        if newest < prev_open:
            return f"stale: newest daily bar {newest.date().isoformat()}"
        return None

    def _quote_verdict(self, q: Quote) -> str | None:
        now = self._clock()
        if session_info(now).status != "open":
            return None
        age = now - q.as_of
        if age > self.stale_after:
            return f"stale: quote {age.total_seconds() / 60:.0f} min old"
        return None

    async def _past_quote(self, p: MarketData, sym: str, at: datetime) -> Quote:
        """A quote as of a past moment: the provider's own when it answers history, else the last bar's close."""
        if _historical(p):
            return await p.quote(sym, at)
        for iv, back in (("1m", timedelta(days=5)), ("1D", timedelta(days=10))):
            try:
                b = await p.bars(sym, iv, at - back, at)
            except Unsupported:
                continue
            if not b.df.empty:
                row = b.df.iloc[-1]
                stamp = b.df.index[-1].to_pydatetime() + interval_timedelta(iv) if iv == "1m" else min(at, b.as_of)
                last = float(row["close"])
                return Quote(
                    symbol=sym,
                    bid=last,
                    ask=last,
                    last=last,
                    volume=float(row["volume"]),
                    as_of=min(stamp, at),
                    source=f"{b.source} {iv} close",
                )
        raise Unsupported(p.name, f"no bars before {at.isoformat()} to price {sym}")


def _historical(p: MarketData) -> bool:
    return bool(getattr(p, "historical", p.name in HISTORICAL))


def build_router(
    order: Iterable[MarketData],
    *,
    chains_order: Iterable[MarketData] | None = None,
    clock: Callable[[], datetime] = utc_now,
    stale_after: timedelta = STALE_AFTER,
) -> MarketRouter:
    """A router with one order for bars and quotes and (optionally) another for expirations and chains."""
    order = list(order)
    chains = list(chains_order) if chains_order is not None else order
    return MarketRouter(
        {"bars": order, "quote": order, "expirations": chains, "chain": chains},
        clock=clock,
        stale_after=stale_after,
    )
