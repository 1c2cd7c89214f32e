"""`coach iv backfill SYMBOL`: fill the daily ATM IV history from historical chains, where a provider has them.

Which provider can answer for past days decides how:

* the offline market (and replays) answer chains for any past moment: each session's close
  is recorded with the same recorder the daily job uses (`bot.options_service.record_iv`);
* Polygon rebuilds past chains from its contract reference (`as_of`) and each contract's daily
  bars (`providers.polygon.PolygonHistory`); the 30-day ATM IV comes from the same analytics
  as the live recorder (`analyse_chain` + `atm_iv_30d`), with the contracts' closes as mids;
* Tradier and Yahoo keep no past chains: the command says so and stores nothing.

Days already stored are left alone unless `--force`. One bad day is reported and skipped;
it never stops the run.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from datetime import date, datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

import click
import numpy as np
from pydantic import BaseModel

MAX_DAYS = 500


class BackfillDay(BaseModel):
    date: date
    status: Literal["recorded", "exists", "skipped", "failed"]
    atm_iv_30d: float | None = None
    source: str | None = None
    reason: str | None = None


class BackfillResult(BaseModel):
    symbol: str
    provider: str | None
    sessions: int
    recorded: int
    days: list[BackfillDay]
    note: str | None = None


def _candidates(market: Any) -> list[Any]:
    from providers.router import MarketRouter

    if isinstance(market, MarketRouter):
        return list(market.routes["chain"]) or list(market.routes["quote"])
    return [market]


def _pick_expirations(exps: list[date], day: date) -> list[date]:
    """The two expirations bracketing 30 days (as the live recorder picks them)."""
    dte = np.array([(e - day).days for e in exps], dtype=float)
    i = int(np.searchsorted(dte, 30.0))
    picks = [exps[j] for j in (i - 1, i) if 0 <= j < len(exps) and dte[j] >= 1]
    return picks or [e for e, d in zip(exps, dte) if d >= 1][:1]


async def backfill(
    services: Any, symbol: str, days: int, *, force: bool = False, tick: Callable[[], None] | None = None
) -> BackfillResult:
    """Record the 30-day ATM IV of `symbol` at each of the last `days` session closes before now."""
    from analytics.sessions import last_sessions
    from analytics.symbols import validate_symbol
    from providers.polygon import PolygonMarket
    from providers.router import _historical
    from storage import iv_history

    sym = validate_symbol(symbol)
    now = services.clock()
    sch = last_sessions(now, days + 1)
    closes = [c for c in sch.frame()["close"].dt.to_pydatetime() if c <= now][-days:]
    sessions = [(c.astimezone(_et()).date(), c) for c in closes]
    async with services.db() as s:
        stored = {d for d, _v in await iv_history.history(s, sym, sessions[0][0], sessions[-1][0])} if sessions else set()
    todo = [(d, c) for d, c in sessions if force or d not in stored]
    out = [BackfillDay(date=d, status="exists") for d, _c in sessions if d in stored and not force]
    passed_over = []
    for p in _candidates(services.market):
        if _historical(p):
            out += await _from_historical(services, sym, todo, tick)
            return _result(sym, p.name, sessions, out)
        if isinstance(p, PolygonMarket):
            out += await _from_polygon(services, p, sym, todo, tick)
            return _result(sym, "polygon", sessions, out)
        passed_over.append(p.name)
    why = f"{', '.join(passed_over) or 'the configured market'} keep no past option chains; Polygon (options plan) or the offline market can backfill"
    return _result(sym, None, sessions, out, note=why)


def _result(
    sym: str, provider: str | None, sessions: list[tuple[date, datetime]], out: list[BackfillDay], note: str | None = None
) -> BackfillResult:
    out.sort(key=lambda d: d.date)
    return BackfillResult(
        symbol=sym,
        provider=provider,
        sessions=len(sessions),
        recorded=sum(d.status == "recorded" for d in out),
        days=out,
        note=note,
    )


def _et() -> ZoneInfo:
    from analytics.sessions import EXCHANGE_TZ

    return EXCHANGE_TZ


async def _from_historical(
    services: Any, sym: str, todo: list[tuple[date, datetime]], tick: Callable[[], None] | None
) -> list[BackfillDay]:
    from bot.options_service import record_iv

    out = []
    for d, close in todo:
        (r,) = await record_iv(services, [sym], close)
        status = r.status if r.status in ("recorded", "skipped", "failed") else "failed"
        out.append(BackfillDay(date=d, status=status, atm_iv_30d=r.atm_iv_30d, source=r.source, reason=r.reason))
        if tick:
            tick()
    return out


async def _from_polygon(
    services: Any, pm: Any, sym: str, todo: list[tuple[date, datetime]], tick: Callable[[], None] | None
) -> list[BackfillDay]:
    from analytics.chains import analyse_chain
    from analytics.volatility import atm_iv_30d
    from core.errors import CoachError
    from providers.polygon import PolygonHistory
    from storage import iv_history

    if not todo:
        return []
    hist = PolygonHistory(pm, todo[0][0], todo[-1][0])
    try:
        spots = await hist.closes(sym)
    except CoachError as exc:
        return [BackfillDay(date=d, status="failed", reason=exc.message) for d, _c in todo]
    out = []
    for d, close in todo:
        try:
            spot = spots.get(d)
            if spot is None:
                raise _Skip(f"no {sym} close on {d}")
            exps = _pick_expirations(await hist.expirations(sym, d, spot), d)
            if not exps:
                raise _Skip("no listed expirations within 75 days")
            views = []
            for e in exps:
                try:
                    views.append(analyse_chain(await hist.chain(sym, e, d, spot, close), close))
                except CoachError:
                    continue
            value = atm_iv_30d(views) if views else None
            if value is None or not math.isfinite(value) or value <= 0:
                raise _Skip("too few contracts traded near the money to read the ATM IV")
            async with services.db() as s, s.begin():
                await iv_history.record(s, sym, d, value, "polygon daily closes", services.clock())
            out.append(BackfillDay(date=d, status="recorded", atm_iv_30d=round(value, 6), source="polygon daily closes"))
        except _Skip as exc:
            out.append(BackfillDay(date=d, status="skipped", reason=str(exc)))
        except CoachError as exc:
            out.append(BackfillDay(date=d, status="failed", reason=exc.message))
        if tick:
            tick()
    return out


class _Skip(Exception):
    """A day with nothing to record (not an error of the provider)."""


def register(group: click.Group) -> None:
    """Add `coach iv backfill` to the `iv` group (created here when it is not there yet)."""
    iv_group = group.commands.get("iv")
    if not isinstance(iv_group, click.Group):
        iv_group = click.Group(name="iv", help="Daily 30-day ATM implied volatility history (feeds IV rank in /vol).")
        group.add_command(iv_group)

    @iv_group.command("backfill")
    @click.argument("symbol")
    @click.option("--days", type=click.IntRange(1, MAX_DAYS), default=30, show_default=True, help="sessions back from today")
    @click.option("--force", is_flag=True, help="re-record days already stored")
    @click.option("--json", "json_out", is_flag=True, help="print one JSON object")
    def backfill_cmd(symbol: str, days: int, force: bool, json_out: bool) -> None:
        """Fill SYMBOL's IV history from historical chains (Polygon or the offline market)."""
        from bot.cli.common import fail, run

        async def go() -> None:
            from rich.progress import Progress

            from analytics.symbols import validate_symbol
            from bot.app import build_services
            from core.errors import UserError

            try:
                sym = validate_symbol(symbol)
            except UserError as exc:
                fail(exc.message, 2)
            services = await build_services()
            try:
                with Progress(transient=True, disable=json_out) as bar:
                    task = bar.add_task(f"backfilling {sym}", total=days)
                    res = await backfill(services, sym, days, force=force, tick=lambda: bar.advance(task))
            finally:
                await services.close()
            if json_out:
                click.echo(json.dumps(res.model_dump(mode="json"), separators=(",", ":")))
            else:
                for d in res.days:
                    if d.status == "recorded" and d.atm_iv_30d is not None:
                        click.echo(f"{d.date}  {d.atm_iv_30d * 100:6.2f}%  {d.source}")
                    elif d.status != "exists":
                        click.echo(f"{d.date}  {d.status}: {d.reason}")
                kept = sum(d.status == "exists" for d in res.days)
                click.echo(
                    f"{res.symbol}: recorded {res.recorded} of {res.sessions} sessions"
                    + (f" from {res.provider}" if res.provider else "")
                    + (f"; {kept} already stored" if kept else "")
                )
            if res.provider is None:
                fail(res.note or "no provider keeps past chains", 1)

        run(go)
