"""/context: one symbol across several intervals — recent bars, indicators, levels and the volatility block."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Annotated

from pydantic import BeforeValidator, Field

from analytics.intervals import STYLE_INTERVALS, normalise_interval
from bot.args import ArgsModel, SymbolArg
from bot.registry import command
from bot.reply import Reply, ReplyField
from bot.request import Ctx

# The analytics and renderers (pandas, numpy) are imported where a reply is computed: declaring the
# command, as a chat front does to validate arguments, loads none of them.
if TYPE_CHECKING:
    from analytics.interval_context import MultiContext

MAX_INTERVALS = 5


def _intervals(v: object) -> object:
    """'5m,1h,1D', ['5m', '1h'] or a style name ('swing' -> its intervals); normalised, deduplicated."""
    items = v.replace(",", " ").split() if isinstance(v, str) else v
    if not isinstance(items, list):
        return v
    if len(items) == 1 and isinstance(items[0], str) and items[0].strip().lower() in STYLE_INTERVALS:
        return list(STYLE_INTERVALS[items[0].strip().lower()])
    out = list(dict.fromkeys(normalise_interval(str(i)) for i in items))
    if len(out) > MAX_INTERVALS:
        raise ValueError(f"at most {MAX_INTERVALS} intervals at once")
    return out


class ContextArgs(ArgsModel):
    symbol: SymbolArg = Field(description="ticker, e.g. TSLA")
    intervals: Annotated[list[str], BeforeValidator(_intervals)] = Field(
        default_factory=lambda: ["5m", "1h", "1D"], min_length=1, description="intervals, e.g. 5m,1h,1D, or a style (swing)"
    )
    lookback: int = Field(20, ge=1, le=200, description="recent bars per interval (1-200)")


def _n(x: float | None, tick: float = 0.01) -> str:
    from renderers.text import fmt_price

    return "—" if x is None or not math.isfinite(x) else fmt_price(x, tick)


def context_reply(c: MultiContext) -> Reply:
    lines = []
    for ic in c.intervals:
        lat = ic.latest
        if not ic.bars:
            lines.append(f"**{ic.interval}**: no bars ({ic.note})")
            continue
        last = ic.bars[-1]
        first = ic.bars[0]
        chg = (last.c / first.o - 1.0) * 100.0 if first.o else float("nan")
        hi = max(b.h for b in ic.bars)
        lo = min(b.l for b in ic.bars)
        parts = [
            f"**{ic.interval}** trend {ic.trend}: close {_n(last.c)}, last {len(ic.bars)} bars {chg:+.2f}% (range {_n(lo)}–{_n(hi)})",
            f"EMA 9/21/50/200 {_n(lat.get('ema9'))} / {_n(lat.get('ema21'))} / {_n(lat.get('ema50'))} / {_n(lat.get('ema200'))}",
            f"RSI {lat.get('rsi14') or float('nan'):.0f} · ATR {_n(lat.get('atr14'))}"
            + (f" · VWAP {_n(lat.get('vwap'))}" if "vwap" in lat else ""),
        ]
        if ic.levels:
            near = sorted(sorted(ic.levels, key=lambda lv: abs(lv.price - last.c))[:6], key=lambda lv: -lv.price)
            parts.append("levels near price: " + ", ".join(f"{lv.label} {_n(lv.price)}" for lv in near))
        if ic.note:
            parts.append(f"_{ic.note}_")
        lines.append("\n  ".join(parts))
    fields = []
    v = c.volatility
    if v is not None:
        rank = (
            f"IV rank {v.iv_rank:.0f}"
            if v.iv_rank is not None
            else f"HV20 rank {v.hv_rank_proxy:.0f} (proxy)"
            if v.hv_rank_proxy is not None
            else "no rank"
        )
        iv = "—" if v.atm_iv_30d is None else f"{v.atm_iv_30d * 100:.1f}%"
        fields.append(ReplyField(name="Volatility", value=f"{v.regime}: ATM IV 30d {iv}, {rank}"))
    elif c.volatility_note:
        fields.append(ReplyField(name="Volatility", value=c.volatility_note))
    return Reply(
        title=f"{c.symbol} context — {', '.join(ic.interval for ic in c.intervals)} (market {c.session})",
        body="\n".join(lines),
        fields=fields,
        sources=c.sources,
        as_of=c.as_of,
        data=c,
    )


@command(
    "context",
    "A symbol across intervals: recent bars, indicator series, key levels and the volatility block.",
    ContextArgs,
    result="analytics.interval_context:MultiContext",
    examples=("/context TSLA", "/context NVDA 5m,15m,1h", "/context SPY swing lookback=10"),
    tool_hint="Result per interval: bars (t,o,h,l,c,v), series (ema9/21/50/200, vwap, rsi14, atr14, macd_hist) trimmed to lookback, latest values, trend, levels; plus volatility.",
)
async def context(ctx: Ctx, a: ContextArgs) -> Reply:
    c = await ctx.services.options.context(a.symbol, a.intervals, a.lookback, ctx.now(), pinned=ctx.as_of is not None)
    return context_reply(c)
