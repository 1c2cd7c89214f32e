"""/quote, /session and /bars: the market as it stands."""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import Field

from analytics.intervals import interval_minutes
from bot.args import ArgsModel, IntervalArg, SymbolArg
from bot.registry import command
from bot.reply import Reply, ReplyField
from bot.request import Ctx

# The handlers import the session calendar (pandas, numpy) and the renderers when they run: declaring
# the commands, as a chat front does to validate arguments, loads none of them.


class QuoteArgs(ArgsModel):
    symbol: SymbolArg = Field(description="ticker, e.g. TSLA")


@command(
    "quote",
    "Latest price, spread and change for a symbol.",
    QuoteArgs,
    examples=("/quote TSLA",),
    result="analytics.models:Quote",
)
async def quote(ctx: Ctx, a: QuoteArgs) -> Reply:
    from analytics.sessions import session_info
    from renderers.text import fmt_pct, fmt_price, fmt_volume

    q = await ctx.market.quote(a.symbol, at=ctx.now())
    info = session_info(ctx.now())
    chg = q.change_pct
    return Reply(
        title=f"{q.symbol} {fmt_price(q.last, q.tick)}",
        body=f"{fmt_pct(chg)} vs prior close {fmt_price(q.prev_close, q.tick)} · market {info.status}",
        fields=[
            ReplyField(name="Bid", value=f"{fmt_price(q.bid, q.tick)} × {q.bid_size}"),
            ReplyField(name="Ask", value=f"{fmt_price(q.ask, q.tick)} × {q.ask_size}"),
            ReplyField(name="Spread", value=fmt_price(q.ask - q.bid, q.tick)),
            ReplyField(name="Volume", value=fmt_volume(q.volume)),
        ],
        severity="success" if (chg or 0) >= 0 else "warning",
        sources=[f"quote: {q.source}"],
        as_of=q.as_of,
        data=q,
    )


class SessionArgs(ArgsModel):
    pass


@command("session", "Is the market open? Status, next open and the last close (NYSE).", SessionArgs, examples=("/session",))
async def session(ctx: Ctx, a: SessionArgs) -> Reply:
    from analytics.sessions import session_info
    from renderers.text import fmt_time

    info = session_info(ctx.now())
    body = {
        "open": "Regular session is open.",
        "pre": "Pre-market: the regular session has not opened yet.",
        "post": "After hours: the regular session has closed.",
        "closed": "The market is closed.",
    }[info.status]
    if info.half_day:
        body += " Today is a half day (13:00 ET close)." if info.status != "closed" else ""
    return Reply(
        title=f"NYSE {info.status}",
        body=body,
        fields=[
            ReplyField(name="Now", value=fmt_time(info.as_of)),
            ReplyField(name="Next open", value=fmt_time(info.next_open)),
            ReplyField(name="Last close", value=fmt_time(info.last_close)),
        ],
        as_of=info.as_of,
        sources=["calendar: NYSE"],
        data=info.to_dict(),
    )


class BarsArgs(ArgsModel):
    symbol: SymbolArg = Field(description="ticker, e.g. TSLA")
    interval: IntervalArg = Field("5m", description="bar interval: 1m 5m 15m 30m 1h 4h 1D 1W")
    count: int = Field(10, ge=1, le=200, description="how many recent bars (1-200)")


@command("bars", "The most recent bars for a symbol and interval.", BarsArgs, examples=("/bars TSLA 5m", "/bars SPY 1D 20"))
async def bars(ctx: Ctx, a: BarsArgs) -> Reply:
    from analytics.sessions import last_sessions
    from renderers.text import fmt_price, fmt_time, fmt_volume

    end = ctx.now()
    minutes = interval_minutes(a.interval)
    # enough sessions back to cover `count` bars of this interval, with room for holidays
    per_session = max(1, 390 // minutes) if minutes < 1440 else 1
    sessions_needed = a.count // per_session + 2
    if a.interval == "1W":
        sessions_needed = a.count * 5 + 5
    sch = last_sessions(end, sessions_needed + 3)
    start: datetime = sch.frame()["open"].iloc[0].to_pydatetime() if len(sch.dates) else end - timedelta(days=7)
    res = await ctx.market.bars(a.symbol, a.interval, start, end)
    df = res.df.tail(a.count)
    if df.empty:
        return Reply(
            title=f"{a.symbol} {a.interval}",
            body="No bars in that window.",
            as_of=res.as_of,
            sources=[f"bars: {res.source}"],
            data={"bars": []},
        )
    intraday = minutes < 1440
    lines = ["time              open      high      low       close     volume"]
    rows = []
    for ts, r in df.iterrows():
        stamp = fmt_time(ts.to_pydatetime(), with_date=True)[: 16 if intraday else 10]
        lines.append(
            f"{stamp:<17} {fmt_price(r.open):>9} {fmt_price(r.high):>9} {fmt_price(r.low):>9} {fmt_price(r.close):>9} {fmt_volume(r.volume):>8}"
        )
        rows.append({"t": ts.isoformat(), "o": r.open, "h": r.high, "l": r.low, "c": r.close, "v": r.volume})
    return Reply(
        title=f"{a.symbol} {a.interval} — last {len(df)} bars",
        body="```\n" + "\n".join(lines) + "\n```",
        as_of=res.as_of,
        sources=[f"bars: {res.source}"],
        data={"symbol": a.symbol, "interval": a.interval, "as_of": res.as_of, "source": res.source, "bars": rows},
    )
