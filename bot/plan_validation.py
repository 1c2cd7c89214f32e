"""/plan validate: a trader's own entry, stop and targets checked against the symbol's levels.

The levels, the ATR and the last price come from the same bars and planner /plan uses (as of
`ctx.now()`, the last close when the market is closed); the reach of the style's horizon comes
from the 30-day ATM implied volatility when the options side has one, else from the ATR. The
verdict itself is `analytics.plan_check.check_plan`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import structlog

from analytics.intervals import STYLE_INTERVALS
from analytics.plan_check import PlanCheck, check_plan
from analytics.planner import plan_symbol, validate_style
from analytics.reach import reach
from analytics.sessions import market_time, session_info
from analytics.symbols import validate_symbol
from bot.current_odds import current_fit
from bot.planning import fetch_style_bars, session_note
from bot.reply import Action, Reply, ReplyField
from bot.request import Ctx
from core.errors import CoachError, UserError
from renderers.text import fmt_price

log = structlog.get_logger("coach.plan_validation")


async def validate_plan(
    ctx: Ctx, symbol: str, entry: float, stop: float, targets: Sequence[float], style: str | None = None
) -> PlanCheck:
    """The check of the trader's plan for `symbol` as of ctx.now()."""
    symbol = validate_symbol(symbol)
    checked_style = validate_style(style or "intraday")
    now = ctx.now()
    info = session_info(now)
    end = market_time(now)
    bars = await fetch_style_bars(ctx.market, symbol, checked_style, end)
    exec_iv = STYLE_INTERVALS[checked_style][0]
    exec_bars = bars[exec_iv]
    if exec_bars.empty:
        raise UserError(f"no {exec_iv} bars for {symbol} to check the plan against")
    as_of = exec_bars.as_of
    sources = [f"bars {'/'.join(bars)}: {exec_bars.source}"]
    answer = plan_symbol(
        symbol, checked_style, {iv: b.df for iv, b in bars.items()}, as_of=as_of, session=info.to_dict(), sources=sources
    )
    ev = answer.evaluation
    atr = float(ev.features.atr_now[0]) if ev is not None else float("nan")
    last = float(exec_bars.df["close"].iloc[-1])
    iv, iv_source = await _implied_vol(ctx, symbol)
    how_far, basis = reach(last, atr if np.isfinite(atr) else 0.0, checked_style, exec_iv, iv)
    return check_plan(
        symbol=symbol,
        style=checked_style,
        entry=entry,
        stop=stop,
        targets=list(targets),
        levels=answer.levels,
        atr=atr,
        last=last,
        reach=how_far,
        reach_basis=basis,
        as_of=as_of,
        sources=sources + ([f"IV: {iv_source}"] if iv is not None else []),
        fit=await current_fit(ctx.services, now),
    )


async def _implied_vol(ctx: Ctx, symbol: str) -> tuple[float | None, str]:
    """(30-day ATM implied volatility, its source) when the options side has one; None otherwise (the ATR sets the reach)."""
    try:
        value, source, _at = await ctx.services.options.current_atm_iv(symbol, ctx.now())
    except CoachError as exc:
        log.info("validate_without_iv", symbol=symbol, error=str(exc), request_id=ctx.request_id)
        return None, ""
    return (value, source) if value is not None and math.isfinite(value) else (None, "")


def check_reply(c: PlanCheck, session: Mapping[str, object] | None = None) -> Reply:
    """The reply for a plan check: the verdict in words, then R:R, the stop, levels in the way and the odds."""
    lines = [c.summary, "Targets:"]
    for i, t in enumerate(c.targets, 1):
        far = ", beyond reach" if t.beyond_reach else ""
        way = f"; in the way: {', '.join(t.in_the_way)}" if t.in_the_way else ""
        before = "the entry" if i == 1 else f"T{i - 1}"
        clear = "" if t.in_the_way else f"; nothing in the way from {before}"
        lines.append(f"• T{i} {fmt_price(t.price)}: {t.rr:.1f}R ({t.band}{far}){way}{clear}")
    note = session_note(session) if session else None
    if note:
        lines.insert(0, note.replace("plans now are", "the check is"))
    fields = [
        ReplyField(name="Entry / stop", value=f"{fmt_price(c.entry)} / {fmt_price(c.stop)} ({c.direction})"),
        ReplyField(name="Stop distance", value=f"{fmt_price(c.risk)} = {c.stop_atr:.1f} ATR (ATR {fmt_price(c.atr)})"),
        ReplyField(name="T1 before stop", value=f"{c.probability:.0%} ({c.probability_basis})"),
        ReplyField(name="Reach", value=f"about {fmt_price(c.reach)} ({c.reach_basis})"),
    ]
    body = "\n".join(lines)
    long = c.direction == "long"
    return Reply(
        title=f"{c.symbol} {c.direction} plan check ({c.style})",
        body=body,
        fields=fields,
        severity="warning" if c.warnings else "info",
        direction=c.direction,
        sources=c.sources,
        as_of=c.as_of,
        data=c,
        actions=[
            Action(label="Alert at entry", command=f"/alert add {c.symbol} {'above' if long else 'below'} {c.entry:.2f}"),
            Action(label="Coach's plan", command=f"/plan {c.symbol} {c.style}"),
        ],
    )


__all__ = ["check_reply", "validate_plan"]
