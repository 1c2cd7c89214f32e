"""Option chains, the volatility regime, multi-context and the IV recorder, on top of `ctx.market` with short caches.

* `OptionsService.vol_regime` is cached 120 s per (symbol, pinned as_of);
* `OptionsService.interval_context` is cached 30 s per (symbol, interval, lookback, as_of);
* `record_iv(services, symbols, at)` stores the day's 30-day ATM IV per symbol (the
  recorder job; the alert runtime and `coach iv record` call it).

One service per Services (`services.options`), built by the composition root.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Literal

import numpy as np
import pandas as pd
import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from analytics.chains import DEFAULT_RATE, ChainView, analyse_chain
from analytics.interval_context import WARMUP_BARS, IntervalContext, MultiContext, build_context, detect_levels, interval_context
from analytics.intervals import interval_minutes
from analytics.models import Model, Plan, Right, Style
from analytics.options import ContractRanking, expirations_for_style, rank_contracts
from analytics.sessions import EXCHANGE_TZ, last_sessions, session_info
from analytics.volatility import MIN_HISTORY, RANK_DAYS, VolRegime, atm_iv_30d, expirations_for_regime, vol_regime
from bot.services import Services
from core.cache import TTLCache
from core.errors import NotFoundError, ProviderError, UserError
from providers.base import MarketData
from storage import iv_history

log = structlog.get_logger("coach.options")

VOL_TTL = 120.0
CONTEXT_TTL = 30.0
#: Daily bars fetched for HV20/60/120 and the one-year HV proxy.
DAILY_SESSIONS = 420


def _day(at: datetime) -> date:
    """The session date `at` belongs to (the last session's when closed)."""
    return session_info(at).session_date


class OptionsService:
    """Chains, volatility and context for commands; holds the caches."""

    def __init__(self, market: MarketData, db: async_sessionmaker[AsyncSession], rate: float = DEFAULT_RATE) -> None:
        self.market = market
        self.db = db
        self.rate = rate
        self.vol_cache = TTLCache(VOL_TTL, maxsize=512)
        self.context_cache = TTLCache(CONTEXT_TTL, maxsize=512)

    # -- chains

    async def expirations(self, symbol: str, at: datetime) -> list[date]:
        """Listed expirations, or NotFoundError when the symbol has no options."""
        try:
            exps = await self.market.expirations(symbol, at=at)
        except NotFoundError:
            raise NotFoundError(f"{symbol} has no listed options (no option chain)") from None
        if not exps:
            raise NotFoundError(f"{symbol} has no listed options (no option chain)")
        return list(exps)

    async def views(self, symbol: str, expirations: Sequence[date], at: datetime) -> list[ChainView]:
        """Analysed chains of `expirations` (fetched concurrently)."""
        chains = await asyncio.gather(*(self.market.chain(symbol, e, at=at) for e in expirations))
        out = []
        for ch in chains:
            if ch.contracts:
                out.append(analyse_chain(ch, min(at, ch.as_of) if ch.as_of else at, self.rate))
        return out

    # -- volatility

    async def daily_closes(self, symbol: str, at: datetime) -> tuple[np.ndarray, str]:
        sch = last_sessions(at, DAILY_SESSIONS)
        start = sch.frame()["open"].iloc[0].to_pydatetime() if len(sch.dates) else at - timedelta(days=600)
        bars = await self.market.bars(symbol, "1D", start, at)
        return bars.df["close"].to_numpy(float), bars.source

    async def vol_regime(self, symbol: str, at: datetime, *, pinned: bool = False) -> VolRegime:
        """The regime (cached 120 s per symbol and pinned time)."""
        return await self.vol_cache.get_or_load((symbol, at if pinned else None), lambda: self._vol_regime(symbol, at))

    async def _vol_regime(self, symbol: str, at: datetime) -> VolRegime:
        today = _day(at)
        exps = await self.expirations(symbol, at)
        picks = expirations_for_regime(exps, at.astimezone(EXCHANGE_TZ).date())
        views, (closes, bar_src) = await asyncio.gather(self.views(symbol, picks, at), self.daily_closes(symbol, at))
        async with self.db() as s:
            hist = await iv_history.history(s, symbol, today - timedelta(days=RANK_DAYS), today)
        q = await self.market.quote(symbol, at=at)
        chain_src = views[0].source if views else self.market.name
        as_of = views[0].as_of if views else q.as_of
        sources = [f"chains: {chain_src}", f"daily bars: {bar_src}"]
        past = sum(1 for d, _ in hist if d < today)
        if past:
            sources.append(f"iv history: {past} stored days")
        return vol_regime(symbol, views, closes, hist, as_of=as_of, today=today, sources=sources, spot=q.last)

    async def current_atm_iv(self, symbol: str, at: datetime) -> tuple[float | None, str, datetime | None]:
        """(30-day ATM IV, source, chains' as_of) from the two expirations bracketing 30 days."""
        exps = await self.expirations(symbol, at)
        today = at.astimezone(EXCHANGE_TZ).date()
        dte = np.array([(e - today).days for e in exps], dtype=float)
        i = int(np.searchsorted(dte, 30.0))
        picks = [exps[j] for j in (i - 1, i) if 0 <= j < len(exps) and dte[j] >= 1]
        if not picks:
            picks = [e for e, d in zip(exps, dte) if d >= 1][:1]
        views = await self.views(symbol, picks, at)
        if not views:
            return None, self.market.name, None
        return atm_iv_30d(views), views[0].source, views[0].as_of

    # -- contracts

    async def rank_for_plan(
        self,
        plan: Plan | None,
        symbol: str,
        style: Style,
        at: datetime,
        *,
        risk_amount: float | None = None,
        expiration: date | None = None,
        no_plan_reason: str | None = None,
        extra_sources: Sequence[str] = (),
        top: int = 5,
        asked: Right | None = None,
    ) -> ContractRanking:
        """Rank contracts for `plan` over the style's expirations (or the one given); `asked` is the side the person wants."""
        exps = await self.expirations(symbol, at)
        today = at.astimezone(EXCHANGE_TZ).date()
        if expiration is not None:
            if expiration not in exps:
                near = sorted(exps, key=lambda d: abs((d - expiration).days))[:4]
                raise NotFoundError(
                    f"no {symbol} options expire on {expiration.isoformat()}; nearest listed: {', '.join(d.isoformat() for d in sorted(near))}"
                )
            picks = [expiration]
        else:
            picks = expirations_for_style(exps, today, style)
        if plan is None:
            return rank_contracts(
                None,
                [],
                at=at,
                style=style,
                risk_amount=risk_amount,
                sources=list(extra_sources),
                no_plan_reason=no_plan_reason,
                symbol=symbol,
                asked=asked,
            )
        views = await self.views(symbol, picks, at)
        src = sorted({f"chains: {v.source}" for v in views})
        return rank_contracts(
            plan,
            views,
            at=views[0].as_of if views else at,
            style=style,
            risk_amount=risk_amount,
            sources=[*extra_sources, *src],
            check_dte=expiration is None,
            top=top,
            asked=asked,
        )

    async def find_contract(self, occ: str, at: datetime) -> tuple[ChainView, pd.Series]:
        """The analysed chain and row of an OCC contract symbol like TSLA240419C00250000."""
        underlying, expiration, right, strike = parse_occ(occ)
        exps = await self.expirations(underlying, at)
        if expiration not in exps:
            raise NotFoundError(f"{occ}: no {underlying} options expire on {expiration.isoformat()}")
        views = await self.views(underlying, [expiration], at)
        if not views:
            raise NotFoundError(f"{occ}: the {expiration.isoformat()} chain is empty")
        f = views[0].frame
        row = f[(f["right"] == right) & (np.abs(f["strike"] - strike) < 1e-6)]
        if row.empty:
            raise NotFoundError(f"{occ}: strike {strike:g} {right} is not listed for {expiration.isoformat()}")
        return views[0], row.iloc[0]

    # -- context

    async def interval_context(self, symbol: str, interval: str, lookback: int, at: datetime, *, pinned: bool) -> IntervalContext:
        key = (symbol, interval, lookback, at if pinned else None)
        return await self.context_cache.get_or_load(key, lambda: self._interval_context(symbol, interval, lookback, at))

    async def _interval_context(self, symbol: str, interval: str, lookback: int, at: datetime) -> IntervalContext:
        start = bars_start(interval, lookback + WARMUP_BARS, at)
        res = await self.market.bars(symbol, interval, start, at)
        levels = detect_levels(symbol, res.df, interval)
        return interval_context(res.df, interval, lookback, as_of=res.as_of, source=res.source, levels=levels)

    async def context(self, symbol: str, intervals: Sequence[str], lookback: int, at: datetime, *, pinned: bool) -> MultiContext:
        """The multi-context block for `symbol` over `intervals`."""
        per = await asyncio.gather(*(self.interval_context(symbol, iv, lookback, at, pinned=pinned) for iv in intervals))
        vol, note = None, None
        try:
            vol = await self.vol_regime(symbol, at, pinned=pinned)
        except (UserError, ProviderError) as exc:
            note = f"no volatility block: {exc.message}"
        info = session_info(at)
        as_of = max((c.as_of for c in per if c.as_of is not None), default=at)
        return build_context(
            symbol, per, as_of=as_of, session=info.status, lookback=lookback, volatility=vol, volatility_note=note
        )


def bars_start(interval: str, bars_needed: int, at: datetime) -> datetime:
    """A start time early enough for `bars_needed` bars of `interval` ending at `at` (holidays allowed for)."""
    minutes = interval_minutes(interval)
    if interval == "1W":
        sessions = bars_needed * 5 + 10
    elif minutes >= 1440:
        sessions = bars_needed + 10
    else:
        per_session = max(1, 390 // minutes)
        sessions = math.ceil(bars_needed / per_session) + 2
    sch = last_sessions(at, sessions)
    if not len(sch.dates):
        return at - timedelta(days=7)
    first: datetime = sch.frame()["open"].iloc[0].to_pydatetime()
    return first


_OCC = re.compile(r"^([A-Z][A-Z0-9.]{0,5})(\d{6})([CP])(\d{8})$")


def parse_occ(occ: str) -> tuple[str, date, Literal["call", "put"], float]:
    """(underlying, expiration, right, strike) of an OCC symbol, or a UserError showing the format."""
    text = (occ or "").strip().upper().replace(" ", "")
    m = _OCC.match(text)
    if not m:
        raise UserError(
            f"{occ[:40]!r} is not an OCC option symbol; expected like TSLA240419C00250000 (root, YYMMDD, C/P, strike x 1000)"
        )
    root, ymd, cp, k = m.groups()
    try:
        exp = date(2000 + int(ymd[:2]), int(ymd[2:4]), int(ymd[4:6]))
    except ValueError:
        raise UserError(f"{occ}: {ymd} is not a valid YYMMDD expiration") from None
    return root, exp, "call" if cp == "C" else "put", int(k) / 1000.0


# ---------------------------------------------------------------------------- the recorder


class IVRecord(Model):
    """What the recorder did for one symbol on one day."""

    symbol: str
    date: date | None
    atm_iv_30d: float | None
    source: str | None
    #: recorded; skipped (nothing usable to store); rejected (the symbol has no options); failed (provider trouble)
    status: Literal["recorded", "skipped", "rejected", "failed"]
    reason: str | None = None


async def record_iv(services: Services, symbols: Sequence[str], at: datetime) -> list[IVRecord]:
    """Store each symbol's 30-day ATM IV for the session `at` belongs to; one IVRecord per symbol, never raises for one symbol's trouble.

    A value is stored only when the chains answered for that same session: a live
    provider asked about a past day answers for today, and that is skipped, not stored
    under the wrong date.
    """
    svc = services.options
    out: list[IVRecord] = []
    for sym in dict.fromkeys(symbols):
        day = _day(at)
        try:
            value, source, chain_as_of = await svc.current_atm_iv(sym, at)
        except UserError as exc:
            out.append(IVRecord(symbol=sym, date=day, atm_iv_30d=None, source=None, status="rejected", reason=exc.message))
            continue
        except ProviderError as exc:
            out.append(IVRecord(symbol=sym, date=day, atm_iv_30d=None, source=None, status="failed", reason=exc.message))
            continue
        except Exception as exc:  # one symbol's bug must not stop the job
            log.exception("iv_record_failed", symbol=sym)
            out.append(
                IVRecord(symbol=sym, date=day, atm_iv_30d=None, source=None, status="failed", reason=exc.__class__.__name__)
            )
            continue
        if value is None or not math.isfinite(value):
            out.append(
                IVRecord(
                    symbol=sym,
                    date=day,
                    atm_iv_30d=None,
                    source=source,
                    status="skipped",
                    reason="no ATM IV: no usable quotes around the money",
                )
            )
            continue
        answered = _day(chain_as_of) if chain_as_of else None
        if answered != day:
            out.append(
                IVRecord(
                    symbol=sym,
                    date=day,
                    atm_iv_30d=None,
                    source=source,
                    status="skipped",
                    reason=f"{source} answered for {answered}, not {day}: it cannot give past chains",
                )
            )
            continue
        async with services.db() as s, s.begin():
            await iv_history.record(s, sym, day, value, source, services.clock())
        out.append(IVRecord(symbol=sym, date=day, atm_iv_30d=round(value, 6), source=source, status="recorded"))
    return out


async def recorder_universe(services: Services) -> list[str]:
    """Symbols worth recording daily: every watched symbol plus every symbol already in the history."""
    from storage import watchlists

    async with services.db() as s:
        watched = await watchlists.runtime_watched_symbols(s)
        stored = await iv_history.recorded_symbols(s)
    return sorted(set(watched) | set(stored))


def history_needed() -> int:
    """Stored days before IV rank is reported."""
    return MIN_HISTORY
